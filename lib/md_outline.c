/* md_outline.c: heading outlines of CommonMark documents.
 *
 * The reference is markdown-it-py's "commonmark" preset, so this is a
 * line-for-line model of its block parser: the same per-line state arrays
 * (bMarks, eMarks, tShift, sCount, bsCount), the same rule order and the
 * same terminator sets. Only what decides block boundaries is modelled;
 * nothing is built but the heading records. Headings are written as soon
 * as a rule accepts them, which is markdown-it's token order.
 *
 * Input first goes through markdown-it's normalisation (CRLF and lone CR
 * to LF, NUL to U+FFFD) and, for invalid UTF-8, Python's
 * decode(errors="replace") (one U+FFFD per maximal invalid subpart), so
 * all later scanning sees valid UTF-8 and the text written out is what
 * the Python side would see.
 *
 * Nesting recurses through blockquote and list items, as in markdown-it,
 * but markdown-it stops descending at maxNesting (20 token levels) and so
 * does this: the C stack depth is bounded by a constant. */
#include "md_outline.h"

enum { MD_MAX_NESTING = 20 };   /* markdown-it-py commonmark preset */

/* Positions are S4: the normalised text is capped below 2 GiB. */
#define MD_MAX_TEXT ((U8)0x7ffffff0)

Enum_(MdParent) {
    MdParent_Root, MdParent_Blockquote, MdParent_List, MdParent_Paragraph, MdParent_Reference,
};
Enum_(MdOut) { MdOut_Records, MdOut_Summary };

/* The reference rule's text: its lines joined, one more each time the
 * rule asks. While it is one line it is read in place; from the second
 * line on it is copied into a Xar (never moved: lines are appended).
 * `win` is a contiguous start of it (the line, or the Xar's first chunk,
 * which holds nearly every definition): the rule's scans read slices of
 * it there, and past it chunk-wise. */
Struct_(MdRef) {
    Xar lines;
    U1 const *win;
    S8 win_len;
    S8 len;
    B4 copied;                      /* the text is in `lines` */
};

/* One line's state, saved while a blockquote re-bases it. */
Struct_(MdSaved) { S4 bm, ts, sc, bs; };

Struct_(Md) {
    Ctx *ctx;
    U1 const *src;
    S4 len;
    S4 *bm, *em, *ts, *sc, *bs;   /* markdown-it's bMarks eMarks tShift sCount bsCount */
    S4 line_max;
    S4 line_count;                  /* lines in the arrays (line_max shrinks in blockquotes) */
    S4 line;
    S4 blk_indent;
    S4 list_indent;
    S4 level;
    MdParent parent;
    MdOut out;
    Input const *input;             /* the input parsed, named in errors (0: none) */
    XarOf save;                     /* MdSaved: blockquote's saved line states, a LIFO */
    MdRef ref;                      /* the reference rule's joined lines */
    Xar text;                       /* a setext heading's lines */
};

/* ---- small helpers ----------------------------------------------------- */

IA_ B4 md_sp(S4 c) { return c == ' ' || c == '\t'; }
IA_ S4 md_mod4(S4 x) { return ((x % 4) + 4) % 4; }   /* Python's floor modulo */
IA_ B4 md_alpha(U1 c) { return (U1)((c | 0x20) - 'a') < 26; }
IA_ B4 md_digit(U1 c) { return (U1)(c - '0') < 10; }
IA_ B4 md_alnum(U1 c) { return md_alpha(c) || md_digit(c); }
IA_ U1 md_lower(U1 c) { return (U1)(c - 'A') < 26 ? (U1)(c | 0x20) : c; }

/* The scanner's one peek helper: the byte at pos, or -1 outside the text
 * (Python's IndexError, which markdown-it's rules meet as a value). Not a
 * Reader: a Reader takes byte fields front to back and makes running out
 * an error; these rules look at any position, ahead and behind, and
 * "outside" is an answer. Everywhere else the rules compare positions
 * with eMarks or m->len before they index. */
IA_ S4 md_ch(Md const *m, S4 pos) { return (pos >= 0 && pos < m->len) ? m->src[pos] : -1; }

/* Stop work: memory or the output limit gave out (the arena's flag) or an
 * error was set. */
IA_ B4 md_stopped(Md const *m) { return m->ctx->arena->failed != Fail_None || m->ctx->code != Code_Ok; }

/* Length of the UTF-8 sequence at p[0..n) if it is a character of the
 * given class, else 0. Python's str.isspace() (regex \s) when `py`,
 * markdown-it's trim set (MD_TRIM_CHARS) otherwise: the same less
 * U+001C..U+001F and U+0085. Input is valid UTF-8 here. */
static U4 md_space_len(U1 const *p, U8 n, B4 py) {
    if (n == 0) return 0;
    U1 c = p[0];
    if (c < 0x80) return (c == ' ' || (c >= 0x09 && c <= 0x0d) || (py && c >= 0x1c && c <= 0x1f)) ? 1 : 0;
    if (c == 0xc2 && n >= 2) return (p[1] == 0xa0 || (py && p[1] == 0x85)) ? 2 : 0;
    if (n < 3) return 0;
    if (c == 0xe1) return (p[1] == 0x9a && p[2] == 0x80) ? 3 : 0;
    if (c == 0xe3) return (p[1] == 0x80 && p[2] == 0x80) ? 3 : 0;
    if (c != 0xe2) return 0;
    if (p[1] == 0x80) return (p[2] <= 0x8a || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf) ? 3 : 0;
    return (p[1] == 0x81 && p[2] == 0x9f) ? 3 : 0;
}

/* Length of a trim-set character ending at p + n, else 0. */
static U4 md_space_len_back(U1 const *p, U8 n) {
    if (n == 0) return 0;
    if (p[n - 1] < 0x80) return md_space_len(p + n - 1, 1, 0);
    if (n >= 2 && p[n - 2] == 0xc2) return md_space_len(p + n - 2, 2, 0);
    if (n >= 3 && (p[n - 3] & 0xf0) == 0xe0) return md_space_len(p + n - 3, 3, 0);
    return 0;
}

/* markdown-it-py's mdTrim. */
static Str8 md_trim(U1 const *p, U8 n) {
    U4 k;
    while ((k = md_space_len(p, n, 0)) != 0) { p += k; n -= k; }
    while ((k = md_space_len_back(p, n)) != 0) n -= k;
    return str8(p, n);
}

/* Python-\s whitespace starting at p[i..n): returns the index after it. */
static S8 md_skip_pyspace(U1 const *p, S8 i, S8 n) {
    U4 k;
    while (i < n && (k = md_space_len(p + i, (U8)(n - i), 1)) != 0) i += k;
    return i;
}

static B4 md_find(U1 const *p, S8 n, char const *needle, S8 k) {
    for (S8 i = 0; i + k <= n; i += 1) {
        if (p[i] == (U1)needle[0] && memcmp(p + i, needle, (size_t)k) == 0) return 1;
    }
    return 0;
}

/* ---- line state -------------------------------------------------------- */

IA_ B4 md_is_empty(Md const *m, S4 line) {
    return line > m->line_count || m->bm[line] + m->ts[line] >= m->em[line];
}
IA_ B4 md_is_code(Md const *m, S4 line) {
    return line <= m->line_count && m->sc[line] - m->blk_indent >= 4;
}
static S4 md_skip_empty(Md const *m, S4 from) {
    while (from < m->line_max && m->bm[from] + m->ts[from] >= m->em[from]) from += 1;
    return from;
}
static S4 md_skip_spaces(Md const *m, S4 pos) {
    while (pos < m->len && md_sp(m->src[pos])) pos += 1;
    return pos;
}
static S4 md_skip_char(Md const *m, S4 pos, U1 c) {
    while (pos < m->len && m->src[pos] == c) pos += 1;
    return pos;
}
static S4 md_skip_spaces_back(Md const *m, S4 pos, S4 min) {
    while (pos > min && md_sp(m->src[pos - 1])) pos -= 1;
    return pos;
}
static S4 md_skip_char_back(Md const *m, S4 pos, U1 c, S4 min) {
    while (pos > min && m->src[pos - 1] == c) pos -= 1;
    return pos;
}

/* Word-at-a-time byte search: the index of the first `c` in s[i..n), or
 * n. The lowest flagged byte of the classic has-zero test is exact. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#  define MD_SWAR 1
#endif
IA_ S4 md_find_byte(U1 const *s, S4 i, S4 n, U1 c) {
#ifdef MD_SWAR
    U8 const ones = 0x0101010101010101ull, highs = 0x8080808080808080ull, pat = ones * c;
    for (; i + 8 <= n; i += 8) {
        U8 w;
        memcpy(&w, s + i, 8);
        w ^= pat;
        U8 z = (w - ones) & ~w & highs;
        if (z) return i + (S4)(__builtin_ctzll(z) >> 3);
    }
    while (i < n && s[i] != c) i += 1;
    return i;
#else
    U1 const *p = memchr(s + i, c, (size_t)(n - i));
    return p ? (S4)(p - s) : n;
#endif
}

static S4 md_count_byte(U1 const *s, S4 n, U1 c) {
    S4 count = 0, i = 0;
#ifdef MD_SWAR
    U8 const ones = 0x0101010101010101ull, lows = 0x7f7f7f7f7f7f7f7full, pat = ones * c;
    for (; i + 8 <= n; i += 8) {
        U8 w;
        memcpy(&w, s + i, 8);
        w ^= pat;
        U8 t = ((w & lows) + lows) | w;   /* high bit clear only in zero bytes */
        count += __builtin_popcountll(~t & ~lows);
    }
#endif
    for (; i < n; i += 1) count += s[i] == c;
    return count;
}

/* StateBlock's constructor: one entry per line plus a fake last line. A
 * last line of only spaces and tabs with no newline gets no entry. */
static B4 md_lines(Md *m) {
    U1 const *s = m->src;
    S4 n = m->len, lines = md_count_byte(s, n, '\n') + 1;
    S4 *a = farena_push_array(m->ctx->arena, S4, (U8)(lines + 1) * 5);
    if (!a) return 0;
    m->bm = a; m->em = a + lines + 1; m->ts = m->em + lines + 1;
    m->sc = m->ts + lines + 1; m->bs = m->sc + lines + 1;
    S4 start = 0, k = 0;
    while (start < n) {
        S4 end = md_find_byte(s, start, n, '\n'), pos = start, off = 0;
        for (; pos < end && md_sp(s[pos]); pos += 1) off += s[pos] == '\t' ? 4 - off % 4 : 1;
        if (pos == end && end == n) break;
        m->bm[k] = start; m->em[k] = end; m->ts[k] = pos - start; m->sc[k] = off; m->bs[k] = 0;
        k += 1;
        start = end < n ? end + 1 : n;
    }
    m->bm[k] = n; m->em[k] = n; m->ts[k] = 0; m->sc[k] = 0; m->bs[k] = 0;
    m->line_max = k;
    m->line_count = k;
    return 1;
}

/* ---- output ------------------------------------------------------------ */

static B4 md_write(Md *m, U1 const *p, U8 n) { return ctx_write(m->ctx, p, n); }

/* One heading: a "BIt" record (level, start line, text: valid UTF-8, as
 * all of the normalised text is), or a summary line. */
static void md_emit(Md *m, S4 level, S4 line, U1 const *p, U8 n) {
    Str8 t = md_trim(p, n);
    if (m->out == MdOut_Records) {
        if (ctx_rec_u1(m->ctx, (U1)level) && ctx_rec_u4(m->ctx, (U4)line)) ctx_rec_text(m->ctx, t);
        return;
    }
    static U1 const pad[13] = "          - ";
    U8 k = (U8)(level - 1) * 2;
    if (!md_write(m, pad + 10 - k, k + 2)) return;
    for (U1 const *q = t.ptr, *e = t.ptr + t.len; q < e;) {
        U1 const *nl = memchr(q, '\n', (size_t)(e - q));
        U1 const *stop = nl ? nl : e;
        if (!md_write(m, q, (U8)(stop - q))) return;
        if (nl && !md_write(m, (U1 const *)" ", 1)) return;
        q = nl ? nl + 1 : e;
    }
    md_write(m, (U1 const *)"\n", 1);
}

/* StateBlock.getLines(begin, end, indent, keepLastLF=False) into m->text. */
static B4 md_get_lines(Md *m, S4 begin, S4 end, S4 indent) {
    xar_truncate(&m->text, 0);
    for (S4 line = begin; line < end; line += 1) {
        S4 n_indent = 0, start = m->bm[line], first = start;
        S4 last = line + 1 < end ? m->em[line] + 1 : m->em[line];
        last = min_(last, m->len);
        while (first < last && n_indent < indent) {
            U1 c = m->src[first];
            if (c == '\t') n_indent += 4 - md_mod4(n_indent + m->bs[line]);
            else if (c == ' ' || first - start < m->ts[line]) n_indent += 1;
            else break;
            first += 1;
        }
        if (n_indent > indent && !xar_append(&m->text, (U1 const *)"    ", (U8)(n_indent - indent))) return 0;   /* at most 3 */
        if (first < last && !xar_append(&m->text, m->src + first, (U8)(last - first))) return 0;
    }
    return 1;
}

/* ---- rules (markdown-it's block rules, in its order) -------------------- */

static void md_tokenize(Md *m, S4 start, S4 end);
static B4 md_fence(Md *m, S4 start, S4 end, B4 silent);
static B4 md_blockquote(Md *m, S4 start, S4 end, B4 silent);
static B4 md_hr(Md *m, S4 start, S4 end, B4 silent);
static B4 md_list(Md *m, S4 start, S4 end, B4 silent);
static B4 md_html_block(Md *m, S4 start, S4 end, B4 silent);
static B4 md_heading(Md *m, S4 start, S4 end, B4 silent);

/* Does a block start at `line` that ends the current one? The paragraph,
 * reference and blockquote rules share one terminator set; lists use the
 * first three. */
static B4 md_terminates(Md *m, S4 line, S4 end, B4 for_list) {
    /* every terminator needs one of these first characters */
    static U1 const starts[256] = {
        ['`'] = 1, ['~'] = 1, ['>'] = 1, ['*'] = 1, ['-'] = 1, ['_'] = 1, ['+'] = 1, ['<'] = 1, ['#'] = 1,
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    };
    S4 c = md_ch(m, m->bm[line] + m->ts[line]);
    if (c < 0 || !starts[c]) return 0;
    if (md_fence(m, line, end, 1) || md_blockquote(m, line, end, 1) || md_hr(m, line, end, 1)) return 1;
    if (for_list) return 0;
    return md_list(m, line, end, 1) || md_html_block(m, line, end, 1) || md_heading(m, line, end, 1);
}

static B4 md_code(Md *m, S4 start, S4 end) {
    if (!md_is_code(m, start)) return 0;
    S4 last = start + 1, next = start + 1;
    while (next < end) {
        if (md_is_empty(m, next)) { next += 1; continue; }
        if (!md_is_code(m, next)) break;
        next += 1;
        last = next;
    }
    m->line = last;
    return 1;
}

static B4 md_fence(Md *m, S4 start, S4 end, B4 silent) {
    S4 pos = m->bm[start] + m->ts[start], max = m->em[start];
    if (md_is_code(m, start) || pos + 3 > max) return 0;
    U1 marker = m->src[pos];
    if (marker != '~' && marker != '`') return 0;
    S4 mem = pos;
    pos = md_skip_char(m, pos, marker);
    S4 open_len = pos - mem;
    if (open_len < 3) return 0;
    if (marker == '`' && pos < max && memchr(m->src + pos, '`', (size_t)(max - pos))) return 0;
    if (silent) return 1;
    S4 next = start;
    B4 closed = 0;
    for (;;) {
        next += 1;
        if (next >= end) break;
        pos = mem = m->bm[next] + m->ts[next];
        max = m->em[next];
        if (pos < max && m->sc[next] < m->blk_indent) break;
        S4 c = md_ch(m, pos);
        if (c < 0) break;
        if (c != marker || md_is_code(m, next)) continue;
        pos = md_skip_char(m, pos, marker);
        if (pos - mem < open_len) continue;
        pos = md_skip_spaces(m, pos);
        if (pos < max) continue;
        closed = 1;
        break;
    }
    m->line = next + (closed ? 1 : 0);
    return 1;
}

/* Save a line's state on the LIFO (blockquote restores it when done). */
static B4 md_save_line(Md *m, S4 line) {
    MdSaved *p = xar_of_push(&m->save);
    if (!p) return 0;
    *p = (MdSaved){ m->bm[line], m->ts[line], m->sc[line], m->bs[line] };
    return 1;
}

/* Lines first_line.. get back the states saved since `base`. */
static void md_restore_lines(Md *m, U8 base, S4 first_line) {
    for (U8 i = base; i < m->save.len; i += 1) {
        S4 line = first_line + (S4)(i - base);
        MdSaved const *p = xar_at(&m->save, i);
        m->bm[line] = p->bm; m->ts[line] = p->ts; m->sc[line] = p->sc; m->bs[line] = p->bs;
    }
    xar_of_truncate(&m->save, base);
}

/* Re-base one "> ..." line past its marker; pos is just after the '>'. */
static B4 md_quote_line(Md *m, S4 line, S4 pos, B4 *last_empty) {
    S4 max = m->em[line], initial = m->sc[line] + 1, offset = initial;
    B4 adjust_tab = 0, space_after = 0;
    S4 c = md_ch(m, pos);
    if (c == ' ') {
        pos += 1; initial += 1; offset += 1; space_after = 1;
    } else if (c == '\t') {
        space_after = 1;
        if (md_mod4(m->bs[line] + offset) == 3) { pos += 1; initial += 1; offset += 1; }
        else adjust_tab = 1;
    }
    if (!md_save_line(m, line)) return 0;
    m->bm[line] = pos;
    for (; pos < max && md_sp(m->src[pos]); pos += 1) {
        offset += m->src[pos] == '\t' ? 4 - md_mod4(offset + m->bs[line] + adjust_tab) : 1;
    }
    *last_empty = pos >= max;
    m->bs[line] = m->sc[line] + 1 + space_after;
    m->sc[line] = offset - initial;
    m->ts[line] = pos - m->bm[line];
    return 1;
}

static B4 md_blockquote(Md *m, S4 start, S4 end, B4 silent) {
    S4 old_line_max = m->line_max;
    S4 pos = m->bm[start] + m->ts[start];
    if (md_is_code(m, start) || md_ch(m, pos) != '>') return 0;
    if (silent) return 1;
    U8 base = m->save.len;
    B4 last_empty = 0;
    if (!md_quote_line(m, start, pos + 1, &last_empty)) return 1;
    MdParent old_parent = m->parent;
    m->parent = MdParent_Blockquote;
    S4 next = start + 1;
    B4 saved = 1;   /* 0: out of memory; the lines saved so far are still restored */
    for (; next < end; next += 1) {
        B4 outdented = m->sc[next] < m->blk_indent;
        pos = m->bm[next] + m->ts[next];
        if (pos >= m->em[next]) break;
        if (m->src[pos] == '>' && !outdented) {
            if (!md_quote_line(m, next, pos + 1, &last_empty)) { saved = 0; break; }
            continue;
        }
        if (last_empty) break;
        if (md_terminates(m, next, end, 0)) {
            m->line_max = next;   /* "hard termination" of the paragraph inside */
            if (m->blk_indent != 0) {
                if (!md_save_line(m, next)) { saved = 0; break; }
                m->sc[next] -= m->blk_indent;
            }
            break;
        }
        if (!md_save_line(m, next)) { saved = 0; break; }
        m->sc[next] = -1;   /* lazy continuation line */
    }
    S4 old_indent = m->blk_indent;
    if (saved) {
        m->blk_indent = 0;
        m->level += 1;
        md_tokenize(m, start, next);
        m->level -= 1;
    }
    m->line_max = old_line_max;
    m->parent = old_parent;
    md_restore_lines(m, base, start);
    m->blk_indent = old_indent;
    return 1;
}

static B4 md_hr(Md *m, S4 start, S4 end, B4 silent) {
    (void)end;
    S4 pos = m->bm[start] + m->ts[start], max = m->em[start];
    if (md_is_code(m, start)) return 0;
    S4 marker = md_ch(m, pos);
    if (marker != '*' && marker != '-' && marker != '_') return 0;
    S4 count = 1;
    for (pos += 1; pos < max; pos += 1) {
        U1 c = m->src[pos];
        if (c != marker && !md_sp(c)) return 0;
        if (c == marker) count += 1;
    }
    if (count < 3) return 0;
    if (!silent) m->line = start + 1;
    return 1;
}

/* `[-+*]` then a space, tab or end of line: the position after the
 * marker, or -1. */
static S4 md_bullet_marker(Md const *m, S4 line) {
    S4 pos = m->bm[line] + m->ts[line], max = m->em[line];
    S4 marker = md_ch(m, pos);
    if (marker != '*' && marker != '-' && marker != '+') return -1;
    pos += 1;
    if (pos < max && !md_sp(m->src[pos])) return -1;
    return pos;
}

/* `\d{1,9}[.)]` then a space, tab or end of line. */
static S4 md_ordered_marker(Md const *m, S4 line) {
    S4 start = m->bm[line] + m->ts[line], pos = start, max = m->em[line];
    if (pos + 1 >= max || !md_digit(m->src[pos])) return -1;
    for (pos += 1;; ) {
        if (pos >= max) return -1;
        U1 c = m->src[pos];
        pos += 1;
        if (md_digit(c)) {
            if (pos - start >= 10) return -1;
            continue;
        }
        if (c == ')' || c == '.') break;
        return -1;
    }
    if (pos < max && !md_sp(m->src[pos])) return -1;
    return pos;
}

/* The number before an ordered marker is 1 (markdown-it's int(...) == 1). */
static B4 md_marker_is_one(Md const *m, S4 from, S4 to) {
    while (from < to && m->src[from] == '0') from += 1;
    return to - from == 1 && m->src[from] == '1';
}

static B4 md_list(Md *m, S4 start, S4 end, B4 silent) {
    if (md_is_code(m, start)) return 0;
    if (m->list_indent >= 0 && m->sc[start] - m->list_indent >= 4 && m->sc[start] < m->blk_indent) return 0;
    B4 ends_para = silent && m->parent == MdParent_Paragraph && m->sc[start] >= m->blk_indent;
    S4 after = md_ordered_marker(m, start);
    B4 ordered = after >= 0;
    if (ordered) {
        if (ends_para && !md_marker_is_one(m, m->bm[start] + m->ts[start], after - 1)) return 0;
    } else if ((after = md_bullet_marker(m, start)) < 0) {
        return 0;
    }
    if (ends_para && md_skip_spaces(m, after) >= m->em[start]) return 0;
    U1 marker = m->src[after - 1];
    if (silent) return 1;

    m->level += 1;
    S4 next = start;
    MdParent old_parent = m->parent;
    m->parent = MdParent_List;
    while (next < end) {
        S4 pos = after, max = m->em[next];
        S4 initial = m->sc[next] + after - (m->bm[start] + m->ts[start]), offset = initial;
        for (; pos < max; pos += 1) {
            U1 c = m->src[pos];
            if (c == '\t') offset += 4 - md_mod4(offset + m->bs[next]);
            else if (c == ' ') offset += 1;
            else break;
        }
        S4 content = pos;
        S4 indent_after = content >= max ? 1 : offset - initial;
        if (indent_after > 4) indent_after = 1;   /* the rest is indented code */
        S4 old_ts = m->ts[start], old_sc = m->sc[start], old_list_indent = m->list_indent;
        m->level += 1;
        m->list_indent = m->blk_indent;
        m->blk_indent = initial + indent_after;
        m->ts[start] = content - m->bm[start];
        m->sc[start] = offset;
        if (content >= max && md_is_empty(m, start + 1)) m->line = min_(m->line + 2, end);
        else md_tokenize(m, start, end);
        if (md_stopped(m)) return 1;
        m->blk_indent = m->list_indent;
        m->list_indent = old_list_indent;
        m->ts[start] = old_ts;
        m->sc[start] = old_sc;
        m->level -= 1;
        next = start = m->line;
        if (next >= end || m->sc[next] < m->blk_indent || md_is_code(m, start)) break;
        if (md_terminates(m, next, end, 1)) break;
        after = ordered ? md_ordered_marker(m, next) : md_bullet_marker(m, next);
        if (after < 0 || m->src[after - 1] != marker) break;
    }
    m->level -= 1;
    m->line = next;
    m->parent = old_parent;
    return 1;
}

/* ---- link reference definitions ---------------------------------------- */

IA_ U1 md_ref_at_xar(Xar const *x, S8 p) {
    U4 k = xar_chunk_of((U8)p);
    return x->chunks[k][(U8)p - xar_chunk_start(k)];
}

/* Byte p of the reference text, p below m->ref.len. */
IA_ U1 md_ref_at(Md const *m, S8 p) {
    return EXPECT_(p < m->ref.win_len, 1) ? m->ref.win[p] : md_ref_at_xar(&m->ref.lines, p);
}

static void md_ref_begin(Md *m, U1 const *p, S8 n) {
    m->ref.win = p;
    m->ref.win_len = m->ref.len = n;
    m->ref.copied = 0;
}

static B4 md_ref_add(Md *m, U1 const *p, S8 n) {
    MdRef *r = &m->ref;
    if (!r->copied) {
        xar_truncate(&r->lines, 0);
        if (!xar_append(&r->lines, r->win, (U8)r->win_len)) return 0;
        r->copied = 1;
    }
    if (!xar_append(&r->lines, p, (U8)n)) return 0;
    r->len += n;
    r->win = r->lines.chunks[0];
    r->win_len = (S8)min_(r->lines.len, xar_chunk_size(0));
    return 1;
}

/* Bytes [a, b) of the reference text as one slice, a < b: in place when
 * they are contiguous (nearly always), else copied once; ptr 0 when
 * memory ran out. */
static Str8 md_ref_slice_xar(Md *m, S8 a, S8 b) {
    MdRef *r = &m->ref;
    U4 k = xar_chunk_of((U8)a);
    if (k == xar_chunk_of((U8)(b - 1))) return str8(r->lines.chunks[k] + ((U8)a - xar_chunk_start(k)), (U8)(b - a));
    U1 *p = farena_push(m->ctx->arena, (U8)(b - a), .alignment = 1);
    if (!p) return str8(0, 0);
    xar_copy_out(&r->lines, (U8)a, p, (U8)(b - a));
    return str8(p, (U8)(b - a));
}
IA_ Str8 md_ref_slice(Md *m, S8 a, S8 b) {
    if (b <= a) return str8((U1 const *)"", 0);
    return EXPECT_(b <= m->ref.win_len, 1) ? str8(m->ref.win + a, (U8)(b - a)) : md_ref_slice_xar(m, a, b);
}

/* The scanning loops read the text through a window, [at, at + s.len)
 * contiguous (a slice as above), taken again from the old end each time
 * a line is pulled in: byte q is s.ptr[q - at]. */
Struct_(MdWin) { Str8 s; S8 at; };
IA_ MdWin md_ref_win(Md *m, S8 from) { return (MdWin){ md_ref_slice(m, from, m->ref.len), from }; }
IA_ U1 md_win_at(MdWin const *w, S8 q) { return w->s.ptr[q - w->at]; }

/* reference.getNextLine: append the next line to the reference text if a definition
 * may continue on it. */
static B4 md_ref_next(Md *m, S4 next) {
    if (next >= m->line_max || md_is_empty(m, next)) return 0;
    if (!md_is_code(m, next) && m->sc[next] >= 0) {
        MdParent old = m->parent;
        m->parent = MdParent_Reference;
        B4 term = md_terminates(m, next, m->line_max, 0);
        m->parent = old;
        if (term) return 0;
    }
    S4 pos = m->bm[next] + m->ts[next], stop = min_(m->em[next] + 1, m->len);
    return pos < stop ? md_ref_add(m, m->src + pos, stop - pos) : 1;
}

Struct_(MdTitle) { B4 ok; B4 more; B4 nonempty; S8 pos; U1 marker; };

/* parseLinkTitle from p; `t->marker` set means a continuation. */
static void md_link_title(U1 const *s, S8 p, S8 max, MdTitle *t) {
    t->ok = 0;
    t->more = 0;
    if (!t->marker) {
        if (p >= max) return;
        U1 c = s[p];
        if (c != '"' && c != '\'' && c != '(') return;
        t->marker = c == '(' ? ')' : c;
        p += 1;
    }
    S8 from = p;
    for (; p < max; p += 1) {
        U1 c = s[p];
        if (c == t->marker) {
            t->nonempty |= p > from;
            t->pos = p + 1;
            t->ok = 1;
            return;
        }
        if (c == '(' && t->marker == ')') return;
        if (c == '\\' && p + 1 < max) p += 1;
    }
    t->nonempty |= p > from;
    t->more = 1;
}

/* parseLinkDestination: 1 with *end after it and [*raw0, *raw1) its raw
 * text (before unescaping). */
static B4 md_link_dest(U1 const *s, S8 p, S8 max, S8 *end, S8 *raw0, S8 *raw1) {
    S8 start = p;
    if (p < max && s[p] == '<') {
        for (p += 1; p < max; p += 1) {
            U1 c = s[p];
            if (c == '\n' || c == '<') return 0;
            if (c == '>') { *end = p + 1; *raw0 = start + 1; *raw1 = p; return 1; }
            if (c == '\\' && p + 1 < max) p += 1;
        }
        return 0;
    }
    S4 level = 0;
    while (p < max) {
        U1 c = s[p];
        if (c <= 0x20 || c == 0x7f) break;
        if (c == '\\' && p + 1 < max) {
            if (s[p + 1] == ' ') break;
            p += 2;
            continue;
        }
        if (c == '(' && ++level > 32) return 0;
        if (c == ')') {
            if (level == 0) break;
            level -= 1;
        }
        p += 1;
    }
    if (p == start || level != 0) return 0;
    *end = p; *raw0 = start; *raw1 = p;
    return 1;
}

Struct_(MdEntity) { char const *name; U1 name_len; char const *value; U1 value_len; };
#define ENT_(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }

/* The HTML entities whose value is only ASCII and whitespace: the only
 * ones that can change which scheme a destination starts with. Every
 * other entity decodes to a character that ends the scheme match. */
static MdEntity const md_entities[] = {
    ENT_("AMP", "&"), ENT_("DiacriticalGrave", "`"), ENT_("GT", ">"), ENT_("Hat", "^"),
    ENT_("LT", "<"), ENT_("MediumSpace", "\xe2\x81\x9f"), ENT_("NewLine", "\x0a"),
    ENT_("NonBreakingSpace", "\xc2\xa0"), ENT_("QUOT", "\x22"), ENT_("Tab", "\x09"),
    ENT_("ThickSpace", "\xe2\x81\x9f\xe2\x80\x8a"), ENT_("ThinSpace", "\xe2\x80\x89"),
    ENT_("UnderBar", "_"), ENT_("VerticalLine", "|"), ENT_("VeryThinSpace", "\xe2\x80\x8a"),
    ENT_("amp", "&"), ENT_("apos", "'"), ENT_("ast", "*"), ENT_("bsol", "\x5c"), ENT_("colon", ":"),
    ENT_("comma", ","), ENT_("commat", "@"), ENT_("dollar", "$"), ENT_("emsp", "\xe2\x80\x83"),
    ENT_("emsp13", "\xe2\x80\x84"), ENT_("emsp14", "\xe2\x80\x85"), ENT_("ensp", "\xe2\x80\x82"),
    ENT_("equals", "="), ENT_("excl", "!"), ENT_("fjlig", "fj"), ENT_("grave", "`"), ENT_("gt", ">"),
    ENT_("hairsp", "\xe2\x80\x8a"), ENT_("lbrace", "{"), ENT_("lbrack", "["), ENT_("lcub", "{"),
    ENT_("lowbar", "_"), ENT_("lpar", "("), ENT_("lsqb", "["), ENT_("lt", "<"), ENT_("midast", "*"),
    ENT_("nbsp", "\xc2\xa0"), ENT_("num", "#"), ENT_("numsp", "\xe2\x80\x87"), ENT_("percnt", "%"),
    ENT_("period", "."), ENT_("plus", "+"), ENT_("puncsp", "\xe2\x80\x88"), ENT_("quest", "?"),
    ENT_("quot", "\x22"), ENT_("rbrace", "}"), ENT_("rbrack", "]"), ENT_("rcub", "}"), ENT_("rpar", ")"),
    ENT_("rsqb", "]"), ENT_("semi", ";"), ENT_("sol", "/"), ENT_("thinsp", "\xe2\x80\x89"),
    ENT_("vert", "|"), ENT_("verbar", "|"),
};

/* Prefix of a destination after unescaping and leading-whitespace strip:
 * ASCII lower-cased, anything else as 0x80. */
Struct_(MdPrefix) { U1 b[16]; S4 n; B4 started; };

static void md_prefix_push(MdPrefix *x, U1 const *u, S8 n) {
    for (S8 i = 0; i < n && x->n < 16;) {
        U4 k = x->started ? 0 : md_space_len(u + i, (U8)(n - i), 1);
        if (k) { i += k; continue; }
        x->started = 1;
        if (u[i] < 0x80) { x->b[x->n++] = md_lower(u[i]); i += 1; continue; }
        x->b[x->n++] = 0x80;
        i += 1;
        while (i < n && (u[i] & 0xc0) == 0x80) i += 1;
    }
}

static B4 md_valid_entity_code(U8 c) {
    if ((c >= 0xd800 && c <= 0xdfff) || (c >= 0xfdd0 && c <= 0xfdef)) return 0;
    if ((c & 0xffff) == 0xffff || (c & 0xffff) == 0xfffe) return 0;
    if (c <= 0x08 || c == 0x0b || (c >= 0x0e && c <= 0x1f) || (c >= 0x7f && c <= 0x9f)) return 0;
    return c <= 0x10ffff;
}

static U4 md_utf8_put(U1 *o, U4 c) {
    if (c < 0x80) { o[0] = (U1)c; return 1; }
    if (c < 0x800) { o[0] = (U1)(0xc0 | (c >> 6)); o[1] = (U1)(0x80 | (c & 0x3f)); return 2; }
    if (c < 0x10000) {
        o[0] = (U1)(0xe0 | (c >> 12)); o[1] = (U1)(0x80 | ((c >> 6) & 0x3f)); o[2] = (U1)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (U1)(0xf0 | (c >> 18)); o[1] = (U1)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (U1)(0x80 | ((c >> 6) & 0x3f)); o[3] = (U1)(0x80 | (c & 0x3f));
    return 4;
}

/* Numeric entity name "#123" / "#x1F": its code point, or -1. */
static S8 md_numeric_entity(U1 const *p, S8 n) {
    B4 hex = n >= 2 && (p[1] | 0x20) == 'x';
    S8 i = hex ? 2 : 1, digits = n - i;
    if (p[0] != '#' || digits < 1 || digits > 8) return -1;
    U8 v = 0;
    for (; i < n; i += 1) {
        U1 c = md_lower(p[i]);
        if (md_digit(c)) v = v * (hex ? 16 : 10) + (U8)(c - '0');
        else if (hex && c >= 'a' && c <= 'f') v = v * 16 + (U8)(c - 'a' + 10);
        else return -1;
    }
    return md_valid_entity_code(v) ? (S8)v : -1;
}

/* `&name;` at s[i]: the end index of the match, 0 if none. */
static S8 md_entity_end(U1 const *s, S8 i, S8 n) {
    S8 j = i + 1;
    if (j >= n || !(md_alpha(s[j]) || s[j] == '#')) return 0;
    S8 k = j + 1;
    while (k < n && md_alnum(s[k])) k += 1;
    if (k - j - 1 < 1 || k - j - 1 > 31 || k >= n || s[k] != ';') return 0;
    return k + 1;
}

static B4 md_escapable(U1 c) {
    return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
           (c >= 0x7b && c <= 0x7e);
}

/* markdown-it's validateLink(normalizeLink(unescapeAll(raw))) is false:
 * after stripping, the URL starts with a script, file or (non-image)
 * data scheme. Percent-encoding keeps ASCII letters, ':', ';' and '/', so
 * the scheme can be read off the unescaped, stripped text. */
static B4 md_link_bad(U1 const *s, S8 n) {
    MdPrefix x = {0};
    for (S8 i = 0; i < n && x.n < 16;) {
        if (s[i] == '\\' && i + 1 < n && md_escapable(s[i + 1])) {
            md_prefix_push(&x, s + i + 1, 1);
            i += 2;
            continue;
        }
        S8 e = s[i] == '&' ? md_entity_end(s, i, n) : 0;
        if (!e) {
            S8 k = i + 1;
            while (k < n && (s[k] & 0xc0) == 0x80) k += 1;
            md_prefix_push(&x, s + i, k - i);
            i = k;
            continue;
        }
        U1 const *name = s + i + 1;
        S8 name_len = e - i - 2;
        S8 cp = md_numeric_entity(name, name_len);
        U1 tmp[4];
        B4 done = 0;
        if (cp >= 0) { md_prefix_push(&x, tmp, md_utf8_put(tmp, (U4)cp)); done = 1; }
        for (U4 k = 0; !done && k < count_of(md_entities); k += 1) {
            MdEntity const *t = &md_entities[k];
            if (t->name_len == name_len && memcmp(t->name, name, (size_t)name_len) == 0) {
                md_prefix_push(&x, (U1 const *)t->value, t->value_len);
                done = 1;
            }
        }
        if (!done) md_prefix_push(&x, (U1 const *)"\x80", 1);   /* ends any scheme */
        i = e;
    }
    Str8 p = str8(x.b, (U8)x.n);
    if (str8_eq(str8_prefix(p, 11), str8_lit("javascript:"))) return 1;
    if (str8_eq(str8_prefix(p, 9), str8_lit("vbscript:"))) return 1;
    if (str8_eq(str8_prefix(p, 5), str8_lit("file:"))) return 1;
    if (!str8_eq(str8_prefix(p, 5), str8_lit("data:"))) return 0;
    return !(str8_eq(str8_prefix(p, 15), str8_lit("data:image/gif;")) ||
             str8_eq(str8_prefix(p, 15), str8_lit("data:image/png;")) ||
             str8_eq(str8_prefix(p, 16), str8_lit("data:image/jpeg;")) ||
             str8_eq(str8_prefix(p, 16), str8_lit("data:image/webp;")));
}

/* Skip spaces and tabs in the reference text, pulling in the next line
 * at a newline (always the text's last byte). */
static S8 md_ref_skip_ws(Md *m, S8 p, S8 *max, S4 *next) {
    for (; p < *max; p += 1) {   /* a few bytes: byte by byte */
        U1 c = md_ref_at(m, p);
        if (c == '\n') {
            if (md_ref_next(m, *next)) { *max = m->ref.len; *next += 1; }
        } else if (!md_sp(c)) {
            break;
        }
    }
    return p;
}

/* md_link_dest and md_link_title over the reference text [p, max). */
static B4 md_ref_dest(Md *m, S8 p, S8 max, S8 *end, S8 *raw0, S8 *raw1) {
    Str8 w = md_ref_slice(m, p, max);
    if (!w.ptr || !md_link_dest(w.ptr, 0, (S8)w.len, end, raw0, raw1)) return 0;
    *end += p; *raw0 += p; *raw1 += p;
    return 1;
}

static void md_ref_title(Md *m, S8 p, S8 max, MdTitle *t) {
    Str8 w = md_ref_slice(m, p, max);
    if (!w.ptr) { t->ok = t->more = 0; return; }
    md_link_title(w.ptr, 0, (S8)w.len, t);
    if (t->ok) t->pos += p;
}

/* The label [1, end) is empty once markdown-it trims it. */
static B4 md_label_blank(U1 const *p, S8 n) { return md_trim(p, (U8)n).len == 0; }

static B4 md_reference(Md *m, S4 start, S4 end, B4 silent) {
    (void)end;
    S4 pos = m->bm[start] + m->ts[start], next = start + 1;
    if (md_is_code(m, start) || md_ch(m, pos) != '[') return 0;
    S4 stop = min_(m->em[start] + 1, m->len);
    md_ref_begin(m, m->src + pos, stop - pos);
    S8 max = m->ref.len, label_end = -1, p = 1;
    MdWin w = md_ref_win(m, 0);
    for (; p < max; p += 1) {
        U1 c = md_win_at(&w, p);
        if (c == '[') return 0;
        if (c == ']') { label_end = p; break; }
        if (c == '\n' || (c == '\\' && p + 1 < max && md_win_at(&w, p + 1) == '\n')) {
            if (c == '\\') p += 1;   /* now at the newline, the text's last byte */
            if (!md_ref_next(m, next)) continue;
            w = md_ref_win(m, max);
            max = m->ref.len;
            next += 1;
            if (!w.s.ptr) return 0;   /* out of memory */
        } else if (c == '\\') {
            p += 1;
        }
    }
    /* Memory running out on the way reads as "no more lines"; the arena's
     * flag then ends the tokenizer after this rule. */
    if (label_end < 0 || label_end + 1 >= max || md_ref_at(m, label_end + 1) != ':') return 0;
    p = md_ref_skip_ws(m, label_end + 2, &max, &next);
    S8 dest_end, raw0, raw1;
    if (!md_ref_dest(m, p, max, &dest_end, &raw0, &raw1)) return 0;
    Str8 raw = md_ref_slice(m, raw0, raw1);
    if (!raw.ptr || md_link_bad(raw.ptr, (S8)raw.len)) return 0;
    S4 dest_line = next;
    S8 ws_start = dest_end;
    p = md_ref_skip_ws(m, dest_end, &max, &next);
    MdTitle t = {0};
    md_ref_title(m, p, max, &t);
    while (t.more && md_ref_next(m, next)) {
        p = max;
        max = m->ref.len;
        next += 1;
        md_ref_title(m, p, max, &t);
    }
    B4 title = 0;
    if (p < max && ws_start != p && t.ok) { title = t.nonempty; p = t.pos; }
    else { p = dest_end; next = dest_line; }
    while (p < max && md_sp(md_ref_at(m, p))) p += 1;
    if (p < max && md_ref_at(m, p) != '\n' && title) {
        /* junk after the title: still a definition if the title goes */
        p = dest_end;
        next = dest_line;
        while (p < max && md_sp(md_ref_at(m, p))) p += 1;
    }
    if (p < max && md_ref_at(m, p) != '\n') return 0;
    Str8 label = md_ref_slice(m, 1, label_end);
    if (!label.ptr || md_label_blank(label.ptr, (S8)label.len)) return 0;
    if (!silent) m->line = next;
    return 1;
}

/* ---- HTML blocks ------------------------------------------------------- */

Struct_(MdName) { char const *s; U1 n; };
#define NAME_(w) { w, sizeof(w) - 1 }

static MdName const md_block_names[] = {
    NAME_("address"), NAME_("article"), NAME_("aside"), NAME_("base"), NAME_("basefont"),
    NAME_("blockquote"), NAME_("body"), NAME_("caption"), NAME_("center"), NAME_("col"),
    NAME_("colgroup"), NAME_("dd"), NAME_("details"), NAME_("dialog"), NAME_("dir"), NAME_("div"),
    NAME_("dl"), NAME_("dt"), NAME_("fieldset"), NAME_("figcaption"), NAME_("figure"),
    NAME_("footer"), NAME_("form"), NAME_("frame"), NAME_("frameset"), NAME_("h1"), NAME_("h2"),
    NAME_("h3"), NAME_("h4"), NAME_("h5"), NAME_("h6"), NAME_("head"), NAME_("header"), NAME_("hr"),
    NAME_("html"), NAME_("iframe"), NAME_("legend"), NAME_("li"), NAME_("link"), NAME_("main"),
    NAME_("menu"), NAME_("menuitem"), NAME_("nav"), NAME_("noframes"), NAME_("ol"),
    NAME_("optgroup"), NAME_("option"), NAME_("p"), NAME_("param"), NAME_("search"),
    NAME_("section"), NAME_("summary"), NAME_("table"), NAME_("tbody"), NAME_("td"),
    NAME_("tfoot"), NAME_("th"), NAME_("thead"), NAME_("title"), NAME_("tr"), NAME_("track"),
    NAME_("ul"),
};
static MdName const md_raw_names[] = { NAME_("script"), NAME_("pre"), NAME_("style"), NAME_("textarea") };

/* p[0..n) is one of names, ASCII case-insensitively. */
static B4 md_name_in(U1 const *p, S8 n, MdName const *names, U4 count) {
    U1 low[12];
    if (n < 1 || n > (S8)sizeof low) return 0;
    for (S8 i = 0; i < n; i += 1) low[i] = md_lower(p[i]);
    for (U4 i = 0; i < count; i += 1) {
        if (names[i].n == n && names[i].s[0] == (char)low[0] && memcmp(names[i].s, low, (size_t)n) == 0) return 1;
    }
    return 0;
}

/* One attribute value (unquoted or quoted) at p[i]: its end, or -1. */
static S8 md_attr_value(U1 const *p, S8 i, S8 n) {
    if (i < n && (p[i] == '"' || p[i] == '\'')) {
        U1 const *q = memchr(p + i + 1, p[i], (size_t)(n - i - 1));
        return q ? (S8)(q - p) + 1 : -1;
    }
    S8 j = i;
    while (j < n && p[j] > 0x20 && !memchr("\"'=<>`", p[j], 6)) j += 1;
    return j > i ? j : -1;
}

/* An open or closing tag, then only whitespace (HTML block kind 7). */
static B4 md_html_tag_line(U1 const *p, S8 n) {
    S8 i = 1;
    B4 closing = i < n && p[i] == '/';
    if (closing) i += 1;
    if (i >= n || !md_alpha(p[i])) return 0;
    for (i += 1; i < n && (md_alnum(p[i]) || p[i] == '-'); i += 1) {}
    if (closing) {
        i = md_skip_pyspace(p, i, n);
    } else {
        for (;;) {
            S8 j = md_skip_pyspace(p, i, n);
            if (j == i || j >= n || !(md_alpha(p[j]) || p[j] == '_' || p[j] == ':')) break;
            for (j += 1; j < n && (md_alnum(p[j]) || memchr(":._-", p[j], 4)); j += 1) {}
            i = j;
            S8 k = md_skip_pyspace(p, j, n);
            if (k < n && p[k] == '=') {
                S8 v = md_attr_value(p, md_skip_pyspace(p, k + 1, n), n);
                if (v >= 0) i = v;
            }
        }
        i = md_skip_pyspace(p, i, n);
        if (i < n && p[i] == '/') i += 1;
    }
    if (i >= n || p[i] != '>') return 0;
    return md_skip_pyspace(p, i + 1, n) == n;
}

/* Which of the seven HTML block kinds line p[0..n) (starting '<') opens. */
static S4 md_html_kind(U1 const *p, S8 n) {
    S8 i = 1, j;
    for (j = i; j < n && md_alnum(p[j]); j += 1) {}
    if (md_name_in(p + i, j - i, md_raw_names, count_of(md_raw_names)) &&
        (j == n || p[j] == '>' || md_space_len(p + j, (U8)(n - j), 1))) return 1;
    if (n >= 4 && memcmp(p, "<!--", 4) == 0) return 2;
    if (n >= 2 && p[1] == '?') return 3;
    if (n >= 3 && p[1] == '!' && md_alpha(p[2])) return 4;
    if (n >= 9 && memcmp(p, "<![CDATA[", 9) == 0) return 5;
    i = n >= 2 && p[1] == '/' ? 2 : 1;
    for (j = i; j < n && md_alnum(p[j]); j += 1) {}
    if (md_name_in(p + i, j - i, md_block_names, count_of(md_block_names)) &&
        (j == n || p[j] == '>' || (p[j] == '/' && j + 1 < n && p[j + 1] == '>') ||
         md_space_len(p + j, (U8)(n - j), 1))) return 6;
    return md_html_tag_line(p, n) ? 7 : 0;
}

static B4 md_html_closes(S4 kind, U1 const *p, S8 n) {
    switch (kind) {
    case 1:
        for (S8 i = 0; i + 2 < n; i += 1) {
            if (p[i] != '<' || p[i + 1] != '/') continue;
            S8 j = i + 2;
            while (j < n && md_alpha(p[j])) j += 1;
            if (j < n && p[j] == '>' && md_name_in(p + i + 2, j - i - 2, md_raw_names, count_of(md_raw_names))) return 1;
        }
        return 0;
    case 2: return md_find(p, n, "-->", 3);
    case 3: return md_find(p, n, "?>", 2);
    case 4: return memchr(p, '>', (size_t)n) != 0;
    case 5: return md_find(p, n, "]]>", 3);
    default: return n == 0;
    }
}

static B4 md_html_block(Md *m, S4 start, S4 end, B4 silent) {
    S4 pos = m->bm[start] + m->ts[start], max = m->em[start];
    if (md_is_code(m, start) || md_ch(m, pos) != '<') return 0;
    S4 kind = md_html_kind(m->src + pos, max > pos ? max - pos : 0);
    if (!kind) return 0;
    if (silent) return kind != 7;   /* kind 7 cannot interrupt a paragraph */
    S4 next = start + 1;
    if (!md_html_closes(kind, m->src + pos, max > pos ? max - pos : 0)) {
        for (; next < end; next += 1) {
            if (m->sc[next] < m->blk_indent && (kind >= 6 || !md_is_empty(m, next))) break;
            pos = m->bm[next] + m->ts[next];
            max = m->em[next];
            S4 n = max > pos ? max - pos : 0;
            if (md_html_closes(kind, m->src + pos, n)) {
                if (n != 0) next += 1;
                break;
            }
        }
    }
    m->line = next;
    return 1;
}

/* ---- headings and paragraphs ------------------------------------------- */

static B4 md_heading(Md *m, S4 start, S4 end, B4 silent) {
    (void)end;
    S4 pos = m->bm[start] + m->ts[start], max = m->em[start];
    if (md_is_code(m, start) || md_ch(m, pos) != '#' || pos >= max) return 0;
    S4 level = 1;
    for (pos += 1; md_ch(m, pos) == '#' && pos < max && level <= 6; pos += 1) level += 1;
    if (level > 6 || (pos < max && !md_sp(m->src[pos]))) return 0;
    if (silent) return 1;
    max = md_skip_spaces_back(m, max, pos);
    S4 tmp = md_skip_char_back(m, max, '#', pos);
    if (tmp > pos && md_sp(m->src[tmp - 1])) max = tmp;   /* closing #-sequence */
    m->line = start + 1;
    md_emit(m, level, start, m->src + pos, (U8)(max > pos ? max - pos : 0));
    return 1;
}

/* On failure *stop is the line where its scan ended, which is where the
 * paragraph rule's identical scan ends too (unless it reached `end`). */
static B4 md_lheading(Md *m, S4 start, S4 end, S4 *stop) {
    *stop = -1;
    if (md_is_code(m, start)) return 0;
    S4 level = 0, next = start + 1;
    MdParent old_parent = m->parent;
    m->parent = MdParent_Paragraph;   /* left so on failure, as markdown-it does */
    for (; next < end && !md_is_empty(m, next); next += 1) {
        if (m->sc[next] - m->blk_indent > 3) continue;
        if (m->sc[next] >= m->blk_indent) {
            S4 pos = m->bm[next] + m->ts[next], max = m->em[next];
            U1 marker = pos < max ? m->src[pos] : 0;
            if (marker == '-' || marker == '=') {
                pos = md_skip_spaces(m, md_skip_char(m, pos, marker));
                if (pos >= max) { level = marker == '=' ? 1 : 2; break; }
            }
        }
        if (m->sc[next] < 0) continue;
        if (md_terminates(m, next, end, 0)) break;
    }
    if (!level) { *stop = next; return 0; }
    if (md_get_lines(m, start, next, m->blk_indent)) {
        Str8 text = xar_contiguous(&m->text, m->ctx->arena);
        if (!md_stopped(m)) md_emit(m, level, start, text.ptr, text.len);
    }
    m->line = next + 1;
    m->parent = old_parent;
    return 1;
}

static B4 md_paragraph(Md *m, S4 start, S4 from) {
    S4 next = from > start ? from : start + 1, end = m->line_max;
    MdParent old_parent = m->parent;
    m->parent = MdParent_Paragraph;
    for (; next < end && !md_is_empty(m, next); next += 1) {
        if (m->sc[next] - m->blk_indent > 3 || m->sc[next] < 0) continue;   /* lazy lines */
        if (md_terminates(m, next, end, 0)) break;
    }
    m->line = next;
    m->parent = old_parent;
    return 1;
}

/* ParserBlock.tokenize over [start, end). */
static void md_tokenize(Md *m, S4 start, S4 end) {
    S4 line = start;
    while (line < end && !md_stopped(m)) {
        m->line = line = md_skip_empty(m, line);
        if (line >= end || m->sc[line] < m->blk_indent) break;
        if (m->level >= MD_MAX_NESTING) { m->line = end; break; }
        S4 stop = -1;
        B4 ok = md_code(m, line, end) || md_fence(m, line, end, 0) || md_blockquote(m, line, end, 0) ||
                md_hr(m, line, end, 0) || md_list(m, line, end, 0) || md_reference(m, line, end, 0) ||
                md_html_block(m, line, end, 0) || md_heading(m, line, end, 0) ||
                md_lheading(m, line, end, &stop) || md_paragraph(m, line, stop < end ? stop : end);
        if (md_stopped(m)) return;
        if (!ok || m->line <= line) {
            ctx_fail_input(m->ctx, Code_OpFailed, m->input, "internal error: no progress at line %d", (int)line);
            return;
        }
        line = m->line;
        if (line < end && md_is_empty(m, line)) m->line = line = line + 1;
    }
}

/* ---- input normalisation ----------------------------------------------- */

/* The index of the lowest byte of w whose high bit is set in `flags`. */
IA_ U8 md_low_byte(U8 flags) {
#if defined(__GNUC__) || defined(__clang__)
    return (U8)__builtin_ctzll(flags) >> 3;
#else
    U8 k = 0; while (!(flags & 0x80)) { flags >>= 8; k += 1; } return k;
#endif
}

/* Word-at-a-time test for bytes that need a look: >= 0x80, NUL or CR. */
IA_ B4 md_word_plain(U8 w) {
    U8 const ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    U8 cr = w ^ (ones * 0x0d);
    U8 special = ((w - ones) & ~w) | ((cr - ones) & ~cr);
    return ((w | special) & highs) == 0;
}

/* Normalise in into dst (when dst is not 0); returns the output length
 * and sets *changed when the output differs from the input. A run of
 * bytes >= 0x80 is checked as a whole (a valid character never spans its
 * end: an ASCII byte follows), and each invalid subpart in it becomes one
 * U+FFFD. */
static U8 md_normalise_into(Str8 in, U1 *dst, B4 *changed) {
    U1 const *s = in.ptr;
    U8 n = in.len, i = 0, o = 0;
    while (i < n) {
        if (i + 8 <= n) {
            U8 w;
            memcpy(&w, s + i, 8);
            if (md_word_plain(w)) {
                if (dst) memcpy(dst + o, s + i, 8);
                i += 8; o += 8;
                continue;
            }
        }
        U1 c = s[i];
        if (c >= 0x80) {
            U8 end = i + 1;
            for (; end + 8 <= n; end += 8) {   /* to the next ASCII byte, a word at a time */
                U8 w;
                memcpy(&w, s + end, 8);
                U8 ascii = ~w & 0x8080808080808080ull;
                if (ascii) { end += md_low_byte(ascii); break; }
            }
            while (end < n && s[end] >= 0x80) end += 1;
            while (i < end) {
                U8 k = utf8_valid_len(str8(s + i, end - i));
                if (dst) memcpy(dst + o, s + i, k);
                i += k; o += k;
                if (i == end) break;
                S4 bad = utf8_seq(s + i, n - i);   /* < 0: one U+FFFD for -bad bytes */
                if (dst) memcpy(dst + o, "\xef\xbf\xbd", 3);
                i += (U8)-bad; o += 3; *changed = 1;
            }
        } else if (c == 0) {
            if (dst) memcpy(dst + o, "\xef\xbf\xbd", 3);
            i += 1; o += 3; *changed = 1;
        } else if (c == '\r') {
            if (dst) dst[o] = '\n';
            i += (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            o += 1; *changed = 1;
        } else {
            if (dst) dst[o] = c;
            i += 1; o += 1;
        }
    }
    return o;
}

/* The text markdown-it-py parses: the input itself when it is already
 * normal (the common case: no copy), else a normalised copy. */
static B4 md_normalise(Md *m, Str8 in, Str8 *out) {
    B4 changed = 0;
    U8 n = md_normalise_into(in, 0, &changed);
    if (n > MD_MAX_TEXT)
        return ctx_fail_input(m->ctx, Code_Limit, m->input, "text of %llu bytes is over the limit", (unsigned long long)n);
    if (!changed) {
        *out = in;
        return 1;
    }
    U1 *p = farena_push(m->ctx->arena, n ? n : 1, .alignment = 1);
    if (!p) return 0;
    md_normalise_into(in, p, &changed);
    *out = str8(p, n);
    return 1;
}

/* ---- entry points ------------------------------------------------------ */

static B4 md_run(Ctx *ctx, Input const *input, Str8 text, MdOut out) {
    Md m = {0};
    m.ctx = ctx;
    m.input = input;
    m.out = out;
    m.list_indent = -1;
    m.parent = MdParent_Root;
    m.save = xar_of(ctx->arena, MdSaved);
    m.ref.lines = (Xar){ .arena = ctx->arena };
    m.text = (Xar){ .arena = ctx->arena };
    Str8 src = {0};
    if (!md_normalise(&m, text, &src)) return 0;
    m.src = src.ptr;
    m.len = (S4)src.len;
    if (m.len == 0) return 1;
    if (!md_lines(&m)) return 0;
    md_tokenize(&m, 0, m.line_max);
    return !md_stopped(&m);
}

B4 md_summary_write(Ctx *ctx, Str8 text) { return md_run(ctx, 0, text, MdOut_Summary); }

static B4 md_outline_input(Ctx *ctx, Input *input, void *state) {
    (void)state;
    return ctx_records_begin(ctx, "BIt") && md_run(ctx, input, input->data, MdOut_Records) && ctx_records_end(ctx);
}

static B4 md_summary_input(Ctx *ctx, Input *input, void *state) {
    (void)state;
    return ctx_part_begin(ctx) && md_run(ctx, input, input->data, MdOut_Summary) && ctx_part_end(ctx);
}

B4 op_md_outline(Ctx *ctx) { return ctx_each_input(ctx, md_outline_input, 0); }
B4 op_md_summary(Ctx *ctx) { return ctx_each_input(ctx, md_summary_input, 0); }
