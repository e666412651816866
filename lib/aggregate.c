/* aggregate.c: the aggregate op, many files into one document (docs/build-markdown.md).
 *
 * The document is OPEN, one section per readable input joined by the
 * format's separator, then CLOSE (parameters open, close: a document made in
 * several requests writes them once). A section in markdown is
 *     "### " CODE_SPAN(SHOWN) "\n\n" FENCE LANG "\n" BODY "\n" FENCE
 * joined by "\n\n---\n\n"; xml, json and plain have their own writer (the
 * FORMATS table). SHOWN is the path with the escapes of shown_path; BODY is
 * the content as text (text_of, unless raw), or its summary, numbered with
 * line_numbers. The document is part 0, or,
 * with parameter out_fd, written to that descriptor as it is made (part 0
 * then empty): memory holds one file and about FLUSH_BYTES of document at a
 * time, whatever the total. Each file is opened once and, with the load
 * checks (parameters nofollow, sniff, max_bytes), judged on that descriptor.
 *
 * Part 1: inputs that could not be read, records "Ii" (index, errno); an
 * input past LIMIT_INPUT_BYTES (inline ones too) is one, with EFBIG.
 * Part 2: every other input, records "IBQQ" (index, Skip, value: the bytes
 * of a taken input, else its skip_value; tokens, below).
 * Part 3: one record "QiQQis": document bytes written, and the errno of a
 * failed write to out_fd (0 if none; the call stops there); then the token
 * counts below (zeros and an empty carry without `vocab`).
 *
 * Token counts (parameters vocab or ranks, encoding: as the tokens op
 * reads them; count_carry): the document is counted as it is written, in units that
 * begin where tiktoken's pre-tokenization of o200k and cl100k cannot join
 * across (unit_start; docs/tokens.md, "Counts of a document"), so that the
 * counts of the units add up to the document's. A unit's tokens go to the
 * input in whose section it begins (part 2's tokens column). The unit that
 * has not ended when the request does is the carry: part 3 holds the tokens
 * of this request, of which `carried` were of count_carry's unit (the
 * carry of the request before, which this one goes on with), the input the
 * carry began in (-1: the wrapper, -2: count_carry's) and its bytes.
 * Part 4, with count_cache only: what the count cache saw (below), and
 * with count_only what the section cache saw; part 5, with ahead, the
 * sections it found one mode down. */
#include "op.h"
#include "summary.h"

#include <errno.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

Struct_(LangMap) { Str8 *suffixes; Str8 *names; U4 count; };

Struct_(BuildOpts) {
    LangMap langs;
    U1 mode;              /* InputMode for inputs that say Default */
    LoadChecks checks;
    B4 checked;           /* any of nofollow, sniff, max_bytes given */
    S4 out_fd;            /* -1: the document is part 0 */
    B4 continues;         /* a section precedes this request's: start with a separator */
    U1 format;            /* Format */
    B4 open, close;       /* write the format's opening / closing wrapper */
    U8 first_index;       /* the index (xml) of this request's first section */
    B4 raw;               /* bytes as they are: no BOM handling, no U+FFFD */
    B4 line_numbers;      /* number the lines of full-mode bodies */
    B4 tree;              /* with close: the tree of the document's files and a summary line at its end */
    Str8 tree_files;      /* the files of earlier requests: (U4 length, path, U8 bytes) each */
    Str8 count_carry;     /* the unit the request before left open */
    B4 count_only;        /* the document is made to be counted: summaries may come from the section cache */
    U1 ahead;             /* InputMode (0: none): look each full section's summary in this mode up too */
    Str8 known;           /* with count_only: per input, U8 le, its section's entry (0: not known) */
    B4 two_threads;       /* parameter threads: a helper may read (or count) beside the writer */
};

Enum_(Format) { Format_Markdown, Format_Xml, Format_Json, Format_Plain, Format_Count_ };

/* Past this much pending document the op writes it out; a body of at least
 * DIRECT_BYTES goes to the descriptor straight from where it was read. */
enum { FLUSH_BYTES = 1 << 20, DIRECT_BYTES = 1 << 18 };

/* ---- shown path ------------------------------------------------------ */

static char const HEX_DIGITS[16] = "0123456789abcdef";

IA_ B4 is_xml_nonchar(U1 const *p, S4 k) {   /* U+FFFE, U+FFFF */
    return k == 3 && p[0] == 0xef && p[1] == 0xbf && (p[2] == 0xbe || p[2] == 0xbf);
}

/* The path as every format shows it: UTF-8 as is, except a backslash as
 * "\\" and, as "\xNN" per byte, C0 controls, DEL, U+FFFE, U+FFFF and each
 * byte that is not part of a valid UTF-8 sequence. Reversible (a reader
 * turns "\\" into a backslash and "\xNN" into byte NN), one line, valid
 * UTF-8 and valid XML. Writes to `out` when given; returns the length. */
static U8 shown_path_into(Str8 path, U1 *out) {
    U8 n = 0;
    for (U8 i = 0; i < path.len;) {
        U1 c = path.ptr[i];
        S4 k = c < 0x80 ? 1 : utf8_seq(path.ptr + i, path.len - i);
        B4 plain = k > 0 && c >= 0x20 && c != 0x7f && c != '\\' && !is_xml_nonchar(path.ptr + i, k);
        if (plain) {
            if (out) memcpy(out + n, path.ptr + i, (size_t)k);
            n += (U8)k, i += (U8)k;
            continue;
        }
        if (c == '\\') {
            if (out) out[n] = '\\', out[n + 1] = '\\';
            n += 2, i += 1;
            continue;
        }
        U8 bytes = k > 0 ? (U8)k : 1;
        for (U8 j = 0; j < bytes; j += 1) {
            U1 b = path.ptr[i + j];
            if (out) out[n] = '\\', out[n + 1] = 'x', out[n + 2] = (U1)HEX_DIGITS[b >> 4], out[n + 3] = (U1)HEX_DIGITS[b & 15];
            n += 4;
        }
        i += bytes;
    }
    return n;
}

static Str8 shown_path(Arena *arena, Str8 path) {
    U8 n = shown_path_into(path, 0);
    if (n == path.len) return path;
    U1 *buf = farena_push(arena, n);
    if (!buf) return str8(0, 0);
    shown_path_into(path, buf);
    return str8(buf, n);
}

/* ---- markdown heading -------------------------------------------------- */

static U8 longest_backtick_run(Str8 s) {
    U8 best = 0, run = 0;
    for (U8 i = 0; i < s.len; i += 1) {
        run = s.ptr[i] == '`' ? run + 1 : 0;
        best = max_(best, run);
    }
    return best;
}

/* A code span that shows the shown path verbatim: more backticks than any
 * run inside, padded with a space where CommonMark would otherwise strip
 * one. An empty path is the plain text EMPTY_PATH_HEADING: no code span, so
 * no path can look like it. */
#define EMPTY_PATH_HEADING "(empty path)"

static B4 write_path_span(Ctx *ctx, Str8 shown) {
    if (shown.len == 0) return ctx_str8(ctx, str8_lit(EMPTY_PATH_HEADING));
    U8 ticks = longest_backtick_run(shown) + 1;
    U1 first = shown.ptr[0], last = shown.ptr[shown.len - 1];
    B4 all_spaces = 1;
    for (U8 i = 0; i < shown.len; i += 1) all_spaces &= shown.ptr[i] == ' ';
    B4 pad = first == '`' || last == '`' || (first == ' ' && last == ' ' && !all_spaces);
    for (U8 i = 0; i < ticks; i += 1) ctx_write(ctx, (U1 const *)"`", 1);
    if (pad) ctx_write(ctx, (U1 const *)" ", 1);
    ctx_str8(ctx, shown);
    if (pad) ctx_write(ctx, (U1 const *)" ", 1);
    for (U8 i = 0; i < ticks; i += 1) ctx_write(ctx, (U1 const *)"`", 1);
    return 1;
}

/* ---- language tag -------------------------------------------------------- */

/* An info string of a backtick fence may not hold a backtick; we also keep
 * it to one word of valid UTF-8 so the tag cannot carry more than a
 * language name. */
static B4 safe_info_string(Str8 s) {
    for (U8 i = 0; i < s.len; i += 1) if (s.ptr[i] == '`' || s.ptr[i] <= ' ' || s.ptr[i] == 0x7f) return 0;
    return utf8_valid_len(s) == s.len;   /* and text: the document stays valid UTF-8 */
}

static Str8 language_of(BuildOpts const *opts, Str8 path) {
    Str8 suffix = path_suffix(path);
    for (U4 i = 0; i < opts->langs.count; i += 1) {
        if (str8_eq(opts->langs.suffixes[i], suffix)) { suffix = opts->langs.names[i]; break; }
    }
    return safe_info_string(suffix) ? suffix : str8(0, 0);
}

/* "lang" parameter: lines "SUFFIX<TAB>NAME". */
static B4 parse_langs(Ctx *ctx, LangMap *map) {
    Str8 v;
    if (!ctx_param(ctx, "lang", &v) || v.len == 0) return 1;
    U4 lines = 1;
    for (U8 i = 0; i < v.len; i += 1) lines += v.ptr[i] == '\n';
    map->suffixes = farena_push_array(ctx->arena, Str8, lines);
    map->names = farena_push_array(ctx->arena, Str8, lines);
    if (!map->suffixes || !map->names) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    while (v.len) {
        U1 const *nl = memchr(v.ptr, '\n', v.len);
        Str8 line = str8_prefix(v, nl ? (U8)(nl - v.ptr) : v.len);
        v = str8_skip(v, line.len + (nl ? 1 : 0));
        U1 const *tab = memchr(line.ptr, '\t', line.len);
        if (!tab) return ctx_fail(ctx, Code_BadParam, "parameter lang: expected SUFFIX<TAB>NAME lines");
        U8 k = (U8)(tab - line.ptr);
        map->suffixes[map->count] = str8_prefix(line, k);
        map->names[map->count] = str8_skip(line, k + 1);
        map->count += 1;
    }
    return 1;
}

static B4 parse_mode_param(Ctx *ctx, U1 *mode) {
    Str8 v;
    *mode = InputMode_Full;
    if (!ctx_param(ctx, "mode", &v)) return 1;
    if (!input_mode_parse(v, mode) || *mode == InputMode_Default)
        return ctx_fail(ctx, Code_BadParam, "parameter mode: expected full, summary or skeleton");
    return 1;
}

/* A flag parameter: "0" or "1"; absent leaves *out as it is. */
static B4 param_flag(Ctx *ctx, char const *key, B4 *out) {
    U8 v = *out;
    if (!ctx_param_u8(ctx, key, &v)) return 0;
    if (v > 1) return ctx_fail(ctx, Code_BadParam, "parameter %s: expected 0 or 1", key);
    *out = (B4)v;
    return 1;
}

/* format, open, close, first_index, raw, line_numbers. */
static B4 parse_format_params(Ctx *ctx, BuildOpts *opts) {
    static char const *const names[Format_Count_] = { "markdown", "xml", "json", "plain" };
    Str8 v;
    opts->format = Format_Markdown;
    if (ctx_param(ctx, "format", &v)) {
        U1 f = Format_Count_;
        for (U1 i = 0; i < Format_Count_; i += 1) {
            if (str8_eq(v, str8((U1 const *)names[i], strlen(names[i])))) f = i;
        }
        if (f == Format_Count_) return ctx_fail(ctx, Code_BadParam, "parameter format: expected markdown, xml, json or plain");
        opts->format = f;
    }
    opts->open = opts->close = 1;
    opts->first_index = 1;
    ctx_param(ctx, "tree_files", &opts->tree_files);
    return param_flag(ctx, "open", &opts->open) && param_flag(ctx, "close", &opts->close)
        && param_flag(ctx, "raw", &opts->raw) && param_flag(ctx, "line_numbers", &opts->line_numbers)
        && param_flag(ctx, "tree", &opts->tree) && ctx_param_u8(ctx, "first_index", &opts->first_index);
}

/* The output descriptor (out_fd) and the load checks. Under checks, the
 * output file itself, when it is a regular file, is never read. */
static B4 parse_stream_params(Ctx *ctx, BuildOpts *opts) {
    U8 fd = (U8)-1, max_bytes = 0;
    if (!ctx_param_u8(ctx, "out_fd", &fd) || !ctx_param_u8(ctx, "max_bytes", &max_bytes)) return 0;
    if (!param_flag(ctx, "nofollow", &opts->checks.nofollow) || !param_flag(ctx, "sniff", &opts->checks.sniff)
        || !param_flag(ctx, "continues", &opts->continues) || !param_flag(ctx, "count_only", &opts->count_only)) return 0;
    Str8 v;
    if (ctx_param(ctx, "ahead", &v) && (!input_mode_parse(v, &opts->ahead) || opts->ahead == InputMode_Default
                                        || opts->ahead == InputMode_Full))
        return ctx_fail(ctx, Code_BadParam, "parameter ahead: expected summary or skeleton");
    if (ctx_param(ctx, "known", &opts->known) && opts->known.len != 8 * (U8)ctx->req->input_count)
        return ctx_fail(ctx, Code_BadParam, "parameter known: 8 bytes per input");
    if (fd != (U8)-1 && fd > 0x7fffffff) return ctx_fail(ctx, Code_BadParam, "parameter out_fd: not a descriptor");
    opts->out_fd = fd == (U8)-1 ? -1 : (S4)fd;
#ifdef SLOPFAST_FUZZ_OUT_FD
    /* fuzz builds: whatever descriptor a request names, the document goes to
     * the harness's /dev/null, never into the fuzzer's own files */
    if (opts->out_fd >= 0) opts->out_fd = SLOPFAST_FUZZ_OUT_FD;
#endif
    opts->two_threads = 1;
    if (ctx_param(ctx, "threads", &v)) {
        U8 n = 0;
        if (!parse_u8_decimal(v, &n) || n < 1 || n > 2) return ctx_fail(ctx, Code_BadParam, "parameter threads: 1 or 2");
        opts->two_threads = n == 2;
    }
    opts->checks.max_bytes = max_bytes;
    opts->checked = ctx_param(ctx, "nofollow", &v) || ctx_param(ctx, "sniff", &v) || ctx_param(ctx, "max_bytes", &v);
    if (opts->checked && opts->out_fd >= 0)
        opts->checks.avoid = fd_file_identity(opts->out_fd, &opts->checks.avoid_dev, &opts->checks.avoid_ino);
    /* avoid "DEV:INO": the file the document ends up in, when out_fd is not it (a temporary file) */
    if (ctx_param(ctx, "avoid", &v)) {
        U1 const *sep = v.len ? memchr(v.ptr, ':', v.len) : 0;
        U8 colon = sep ? (U8)(sep - v.ptr) : 0;
        if (!sep || !parse_u8_decimal(str8_prefix(v, colon), &opts->checks.avoid_dev)
            || !parse_u8_decimal(str8_skip(v, colon + 1), &opts->checks.avoid_ino))
            return ctx_fail(ctx, Code_BadParam, "parameter avoid: DEV:INO, two decimal numbers");
        opts->checks.avoid = 1, opts->checked = 1;
    }
    return 1;
}

/* ---- text: BOMs, UTF-16/32, invalid UTF-8 -------------------------------- */

IA_ U8 utf8_put(U1 *out, U4 cp) {   /* out: room for 4 bytes */
    if (cp < 0x80) { out[0] = (U1)cp; return 1; }
    if (cp < 0x800) { out[0] = (U1)(0xc0 | (cp >> 6)); out[1] = (U1)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        out[0] = (U1)(0xe0 | (cp >> 12)); out[1] = (U1)(0x80 | ((cp >> 6) & 63)); out[2] = (U1)(0x80 | (cp & 63));
        return 3;
    }
    out[0] = (U1)(0xf0 | (cp >> 18)); out[1] = (U1)(0x80 | ((cp >> 12) & 63));
    out[2] = (U1)(0x80 | ((cp >> 6) & 63)); out[3] = (U1)(0x80 | (cp & 63));
    return 4;
}

enum { REPLACEMENT = 0xfffd };

IA_ U4 unit16(U1 const *p, B4 be) { return be ? (U4)(p[0] << 8 | p[1]) : (U4)(p[1] << 8 | p[0]); }

/* UTF-16 to UTF-8: a surrogate pair is one character; any other surrogate,
 * and a high surrogate with fewer than 4 bytes left (with them), one
 * U+FFFD; an odd last byte one U+FFFD (what Python's codec gives). */
static Str8 utf16_to_utf8(Arena *arena, Str8 s, B4 be) {
    U1 *out = farena_push(arena, (s.len / 2) * 3 + 3);
    if (!out) return str8(0, 0);
    U8 n = 0, i = 0;
    while (i < s.len) {
        U4 cp = REPLACEMENT;
        if (s.len - i < 2) { i = s.len; n += utf8_put(out + n, cp); break; }
        U4 u = unit16(s.ptr + i, be);
        if (u < 0xd800 || u > 0xdfff) cp = u, i += 2;
        else if (u >= 0xdc00) i += 2;
        else if (s.len - i < 4) i = s.len;
        else {
            U4 v = unit16(s.ptr + i + 2, be);
            if (v >= 0xdc00 && v <= 0xdfff) cp = 0x10000 + ((u - 0xd800) << 10) + (v - 0xdc00), i += 4;
            else i += 2;
        }
        n += utf8_put(out + n, cp);
    }
    return str8(out, n);
}

/* UTF-32 to UTF-8: a unit past U+10FFFF or a surrogate is U+FFFD, and so
 * are 1 to 3 bytes left at the end. */
static Str8 utf32_to_utf8(Arena *arena, Str8 s, B4 be) {
    U1 *out = farena_push(arena, s.len + 3);
    if (!out) return str8(0, 0);
    U8 n = 0, i = 0;
    for (; i + 4 <= s.len; i += 4) {
        U1 const *p = s.ptr + i;
        U4 u = be ? (U4)p[0] << 24 | (U4)p[1] << 16 | (U4)p[2] << 8 | p[3]
                  : (U4)p[3] << 24 | (U4)p[2] << 16 | (U4)p[1] << 8 | p[0];
        n += utf8_put(out + n, u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff) ? REPLACEMENT : u);
    }
    if (i < s.len) n += utf8_put(out + n, REPLACEMENT);
    return str8(out, n);
}

/* Invalid UTF-8 as U+FFFD, one per maximal subpart (as Python's "replace"). */
static U8 utf8_replace_into(Str8 s, U1 *out) {
    U8 n = 0, i = 0;
    while (i < s.len) {
        U8 run = utf8_valid_len(str8_skip(s, i));
        if (out) memcpy(out + n, s.ptr + i, (size_t)run);
        n += run, i += run;
        if (i >= s.len) break;
        S4 k = utf8_seq(s.ptr + i, s.len - i);   /* < 0: a maximal subpart of -k bytes */
        if (out) out[n] = 0xef, out[n + 1] = 0xbf, out[n + 2] = 0xbd;
        n += 3, i += (U8)(k < 0 ? -k : 1);
    }
    return n;
}

/* The content as text: a UTF-8 BOM dropped, UTF-16 and UTF-32 with a BOM
 * decoded (the BOM dropped), invalid UTF-8 as U+FFFD. The same bytes when
 * they already are BOM-less valid UTF-8. */
static Str8 text_of(Arena *arena, Str8 data) {
    switch (bom_of(data)) {
    case Bom_Utf32Le: return utf32_to_utf8(arena, str8_skip(data, 4), 0);
    case Bom_Utf32Be: return utf32_to_utf8(arena, str8_skip(data, 4), 1);
    case Bom_Utf16Le: return utf16_to_utf8(arena, str8_skip(data, 2), 0);
    case Bom_Utf16Be: return utf16_to_utf8(arena, str8_skip(data, 2), 1);
    case Bom_Utf8: data = str8_skip(data, 3); break;
    default: break;
    }
    if (utf8_valid_len(data) == data.len) return data;
    U8 n = utf8_replace_into(data, 0);
    U1 *out = farena_push(arena, n);
    if (!out) return str8(0, 0);
    utf8_replace_into(data, out);
    return str8(out, n);
}

/* ---- line numbers ------------------------------------------------------- */

/* Length of the line at s[i..] with its line end (LF, CR LF or a lone CR);
 * `cr`: s holds a lone CR (else a line ends only at LF, found by memchr). */
IA_ U8 line_len(Str8 s, U8 i, B4 cr) {
    U8 j;
    if (!cr) {
        U1 const *nl = memchr(s.ptr + i, '\n', (size_t)(s.len - i));
        return nl ? (U8)(nl - (s.ptr + i)) + 1 : s.len - i;
    }
    for (j = i; j < s.len && s.ptr[j] != '\n' && s.ptr[j] != '\r'; j += 1) {}
    if (j < s.len) j += s.ptr[j] == '\r' && j + 1 < s.len && s.ptr[j + 1] == '\n' ? 2 : 1;
    return j - i;
}

/* Each line prefixed with its number (from 1), right-aligned to the width
 * of the last line's number, and two spaces. A final line end starts no
 * line; an empty body stays empty. */
/* How many LF bytes s holds, eight at a time (the exact zero-byte test). */
static U8 count_lf(Str8 s) {
    U8 n = 0, i = 0;
    for (; i + 8 <= s.len; i += 8) {
        U8 w;
        memcpy(&w, s.ptr + i, 8);
        w ^= 0x0a0a0a0a0a0a0a0aull;
        U8 y = ~(((w & 0x7f7f7f7f7f7f7f7full) + 0x7f7f7f7f7f7f7f7full) | w | 0x7f7f7f7f7f7f7f7full);
#if defined(__GNUC__) || defined(__clang__)
        n += (U8)__builtin_popcountll(y);
#else
        for (; y; y &= y - 1) n += 1;
#endif
    }
    for (; i < s.len; i += 1) n += s.ptr[i] == '\n';
    return n;
}

/* Does s hold a CR that is not followed by LF (a line end of its own)? */
static B4 has_lone_cr(Str8 s) {
    if (s.len == 0) return 0;   /* an empty slice may hold NULL */
    U1 const *p = s.ptr, *end = s.ptr + s.len;
    while (p < end && (p = memchr(p, '\r', (size_t)(end - p)))) {
        if (p + 1 == end || p[1] != '\n') return 1;
        p += 2;
    }
    return 0;
}

static Str8 numbered(Arena *arena, Str8 s) {
    B4 cr = s.len && has_lone_cr(s);   /* without a lone CR every line ends at LF (CR LF too) */
    U8 lines = 0;
    if (!cr) lines = count_lf(s) + (s.len && s.ptr[s.len - 1] != '\n');
    else for (U8 i = 0; i < s.len; i += line_len(s, i, cr)) lines += 1;
    U8 width = 1;
    for (U8 v = lines; v >= 10; v /= 10) width += 1;
    U1 *out = farena_push(arena, s.len + lines * (width + 2));
    if (!out && lines) return str8(0, 0);
    U1 digits[24];
    memset(digits, ' ', sizeof digits);
    U8 n = 0, low = width - 1;   /* digits[0, width): the line's number, right-aligned */
    for (U8 i = 0; i < s.len;) {
        U8 len = line_len(s, i, cr);
        U8 d = low;                  /* count up in place (lines < 10^width: d stays >= 0) */
        while (d > 0 && digits[d] == '9') digits[d] = '0', d -= 1;
        digits[d] = digits[d] == ' ' ? '1' : (U1)(digits[d] + 1);
        memcpy(out + n, digits, (size_t)width);
        out[n + width] = ' ', out[n + width + 1] = ' ';
        n += width + 2;
        memcpy(out + n, s.ptr + i, (size_t)len);
        n += len, i += len;
    }
    return str8(out ? out : s.ptr, n);
}

/* ---- token counts --------------------------------------------------------- */

enum { OWNER_WRAPPER = -1, OWNER_CARRIED = -2 };

/* Can a unit begin at a byte c that follows `before`? After a LF, at an
 * ASCII character that is not a space, a control or '/': no alternative of
 * either pattern goes on past a LF into such a character (letters and
 * punctuation runs stop at a LF, a run of whitespace at a non-space, and
 * the only thing a punctuation run takes after its LFs is more CR, LF and
 * '/'), and none looks past it. */
IA_ B4 unit_start(U1 before, U1 c) { return before == '\n' && c > 0x20 && c < 0x7f && c != '/'; }

/* What one thread counted: the request's tokens, of those count_carry's
 * unit's, and per input. */
Struct_(Tally) { U8 tokens; U8 carried; U8 *per_input; };

static B4 tally_count(TokCounter *tok, Tally *t, Str8 text, S4 owner, Arena *temp) {
    U8 n = 0;
    if (!tok_count(tok, text, temp, 0, &n)) return 0;
    t->tokens += n;
    if (owner == OWNER_CARRIED) t->carried += n;
    else if (owner >= 0) t->per_input[owner] += n;
    return 1;
}

/* Counting on two threads. Whole units are copied into blocks, which a
 * helper thread counts while this one writes. A sum does not depend on the
 * order of its terms, so either thread may count a block, in any order:
 * when no block is spare this thread counts the oldest full one, and at the
 * end both empty the queue. So the work is shared and memory stays at
 * COUNT_BLOCKS blocks. A unit as large as a block is counted where it lies.
 * The helper's counter shares the vocabulary, not the memos, and allocates
 * only from its own arenas; its text is under 4 GiB, so its one failure is
 * memory. The thread starts with the first full block: a small request never
 * pays for one. */
enum { COUNT_BLOCK_BYTES = 256 << 10, COUNT_BLOCK_SEGS = 4096, COUNT_BLOCKS = 6 };
Struct_(CountSeg) { S4 owner; U4 len; };
Struct_(CountBlock) { U1 *data; U8 len; CountSeg *segs; U4 seg_count; };

Struct_(CountPool) {
    Arena arena;               /* the pool and its blocks: this thread's */
    Arena helper_arena;        /* the helper's counter and tally */
    Arena helper_temp;         /* the helper's U+FFFD copies */
    Sync *sync;                /* these two are 0 until the first block is full */
    Thread *thread;
    TokCounter *helper_tok;
    Tally helper;
    B4 helper_ok;
    CountBlock blocks[COUNT_BLOCKS];
    U4 queue[COUNT_BLOCKS];    /* full blocks, oldest first from queue_at */
    U4 queue_at, queued;
    U4 spare[COUNT_BLOCKS];    /* empty blocks */
    U4 spares;
    B4 closing;
};

/* The count cache (parameter count_cache; docs/tokens.md, "The count
 * cache"). A body's rest, from its first unit start on, and the suffix its
 * format writes after it are whole units, so their count depends on those
 * bytes alone: for a body of at least CACHE_MIN_BYTES the op takes it from
 * the cache when the body's hash is there. The value is a 16-byte SipHash
 * key, then entries (hash word 0, word 1, tokens: U8 each, little endian)
 * sorted by hash. Part 4 (only with the parameter): records "IQQQB" for
 * each such body: input index, its hash, the rest's tokens, and whether
 * they came from the cache. Only the formats that write bodies as they are
 * (markdown, plain) use it. */
enum { CACHE_MIN_BYTES = 1024, CACHE_KEY_BYTES = 16, CACHE_ENTRY_BYTES = 24 };
/* Ahead: a section found one mode down (part 5); Given: an entry the request
 * gave (known), used as a hit and not reported. */
Enum_(CacheState) { Cache_None, Cache_Counted, Cache_Hit, Cache_Ahead, Cache_Given };
Struct_(CountCache) {
    U8 key[2];
    U1 const *entries;
    U8 entry_count;
    U8 *hash;             /* per input: the body's hash, 2 words */
    U1 *state;            /* per input: CacheState (the rest's tokens: the tally's per_input[inputs + i]) */
    U8 *sec_hash;         /* per input: its summary's hash in the section cache (section_hash), 2 words */
    U1 *sec_state;        /* per input: CacheState (the units counted: the tally's per_input[2 * inputs + i]) */
    U8 *sec_value;        /* per input: the entry, SECTION_FENCE_SHIFT */
};

/* The section cache, in the count cache's entries (parameter count_only):
 * a summary's section from its fence line (markdown; plain: its "---"
 * line) through the suffix after its body is whole units, whose count
 * depends on the summary and the language alone, and so on the source
 * text, the path (which summary, which language), the mode and the format.
 * The entry keeps that count with the fence's length above it, under the
 * hash of the source text: a document made to be counted then needs no
 * summary of a file the cache knows, and writes neither its fence line nor
 * its body. */
enum { SECTION_FENCE_SHIFT = 48 };
#define SECTION_TAG 0x73656374696f6e00ull   /* "section": these keys are not the bodies' */

Struct_(Counting) {
    TokCounter *tok;
    Arena carry_arena;    /* the carry's bytes, emptied with it */
    Xar carry;            /* the unit not ended yet */
    S4 owner;             /* the input it began in, or OWNER_* */
    U1 last;              /* the byte before the next one fed */
    Tally tally;          /* this thread's counts (the helper's join them at the end) */
    U8 bytes;             /* the request's estimated text: the memos' size */
    B4 two_threads;       /* a helper may count (parameter threads) */
    CountPool *pool;
    CountBlock *fill;     /* the pool's block being filled */
    CountCache cache;     /* parameter count_cache (empty: none) */
};

static B4 block_count(TokCounter *tok, Tally *t, CountBlock *b, Arena *temp) {
    B4 ok = 1;
    for (U4 i = 0, at = 0; i < b->seg_count && ok; at += b->segs[i].len, i += 1)
        ok = tally_count(tok, t, str8(b->data + at, b->segs[i].len), b->segs[i].owner, temp);
    b->len = 0, b->seg_count = 0;
    return ok;
}

/* Held: the oldest full block, taken off the queue. */
static U4 pool_pop(CountPool *pool) {
    U4 k = pool->queue[pool->queue_at];
    pool->queue_at = (pool->queue_at + 1) % COUNT_BLOCKS, pool->queued -= 1;
    return k;
}

static void pool_push(CountPool *pool, U4 k) {
    pool->queue[(pool->queue_at + pool->queued) % COUNT_BLOCKS] = k, pool->queued += 1;
}

static void pool_helper(void *arg) {
    CountPool *pool = arg;
    sync_lock(pool->sync);
    for (;;) {
        while (!pool->queued && !pool->closing) sync_wait(pool->sync);
        if (!pool->queued) break;
        U4 k = pool_pop(pool);
        sync_unlock(pool->sync);
        B4 ok = block_count(pool->helper_tok, &pool->helper, &pool->blocks[k], &pool->helper_temp);
        arena_reset(&pool->helper_temp);
        sync_lock(pool->sync);
        pool->helper_ok = pool->helper_ok && ok;
        pool->spare[pool->spares++] = k;
    }
    sync_unlock(pool->sync);
}

/* A spare block to fill (its memory on first use); 0 when memory runs out. */
static CountBlock *pool_take(CountPool *pool) {
    CountBlock *b = &pool->blocks[pool->spare[--pool->spares]];
    if (!b->data) {
        b->data = farena_push(&pool->arena, COUNT_BLOCK_BYTES);
        b->segs = farena_push_array(&pool->arena, CountSeg, COUNT_BLOCK_SEGS);
    }
    return b->data && b->segs ? b : 0;
}

static B4 pool_new(Counting *c) {
    Arena arena = { 0 };
    CountPool *pool = farena_push_type(&arena, CountPool);
    if (!pool) { arena_release(&arena); return 0; }
    pool->arena = arena;
    for (U4 k = 0; k < COUNT_BLOCKS; k += 1) pool->spare[pool->spares++] = COUNT_BLOCKS - 1 - k;
    c->pool = pool;
    c->fill = pool_take(pool);
    return c->fill != 0;
}

/* The helper's counter, tally and thread; 0 if any cannot be made. */
static B4 pool_start(CountPool *pool, Counting const *c, U4 inputs) {
    pool->helper.per_input = farena_push_array(&pool->helper_arena, U8, 3 * (U8)inputs + 1, .zero = 1);
    pool->helper_tok = pool->helper.per_input ? tok_counter_twin(c->tok, &pool->helper_arena, c->bytes) : 0;
    pool->helper_ok = 1;
    pool->sync = pool->helper_tok ? sync_new() : 0;
    pool->thread = pool->sync ? thread_start(pool_helper, pool) : 0;
    return pool->thread != 0;
}

/* The filled block to the queue (the helper started with the first), and
 * an empty one to fill: when none is spare, this thread counts the oldest
 * full one. Without a helper, this thread counts the block and goes on alone. */
static B4 pool_submit(Counting *c, U4 inputs, Arena *temp) {
    CountPool *pool = c->pool;
    if (!pool->thread && !pool_start(pool, c, inputs)) {
        c->two_threads = 0;
        return block_count(c->tok, &c->tally, c->fill, temp);
    }
    sync_lock(pool->sync);
    pool_push(pool, (U4)(c->fill - pool->blocks));
    sync_wake(pool->sync);
    B4 ok = 1;
    if (!pool->spares) {
        U4 k = pool_pop(pool);
        sync_unlock(pool->sync);
        ok = block_count(c->tok, &c->tally, &pool->blocks[k], temp);
        sync_lock(pool->sync);
        pool->spare[pool->spares++] = k;
    }
    c->fill = pool_take(pool);
    sync_unlock(pool->sync);
    return ok && c->fill;
}

/* Stop the helper and free the pool. With `finish`, what is queued or
 * being filled is counted first, on both threads, and the helper's counts
 * join this thread's; without, it is dropped (the op failed). */
static B4 pool_end(Ctx *ctx, Counting *c, B4 finish, Arena *temp) {
    CountPool *pool = c->pool;
    if (!pool) return 1;
    B4 ok = 1;
    if (pool->thread) {
        sync_lock(pool->sync);
        if (!finish) pool->queued = 0;
        else if (c->fill && c->fill->seg_count) pool_push(pool, (U4)(c->fill - pool->blocks));
        pool->closing = 1;
        sync_wake(pool->sync);
        while (pool->queued) {
            U4 k = pool_pop(pool);
            sync_unlock(pool->sync);
            ok = block_count(c->tok, &c->tally, &pool->blocks[k], temp) && ok;
            sync_lock(pool->sync);
        }
        sync_unlock(pool->sync);
        thread_join(pool->thread);
        ok = ok && pool->helper_ok && !pool->helper_arena.failed && !pool->helper_temp.failed;
        c->tally.tokens += pool->helper.tokens, c->tally.carried += pool->helper.carried;
        for (U8 i = 0; i < 3 * (U8)ctx->req->input_count; i += 1) c->tally.per_input[i] += pool->helper.per_input[i];
    } else if (finish && c->fill) {
        ok = block_count(c->tok, &c->tally, c->fill, temp);
    }
    sync_free(pool->sync);
    arena_release(&pool->helper_arena);
    arena_release(&pool->helper_temp);
    Arena arena = pool->arena;   /* the pool lives in it */
    arena_release(&arena);
    c->pool = 0, c->fill = 0;
    if (!finish) return 1;
    if (!ok && ctx->code == Code_Ok && !ctx->arena->failed) ctx->arena->failed = Fail_NoMemory;
    return ok;
}

/* The end of the longest run of whole units in text[0, room], text being
 * whole units: all of it, or the last unit start in (0, room]; 0 if none. */
static U8 units_within(Str8 text, U8 room) {
    if (text.len <= room) return text.len;
    for (U8 i = room; i > 0; i -= 1)
        if (unit_start(text.ptr[i - 1], text.ptr[i])) return i;
    return 0;
}

static U8 first_unit(Str8 text) {
    for (U8 i = 1; i < text.len; i += 1)
        if (unit_start(text.ptr[i - 1], text.ptr[i])) return i;
    return text.len;
}

/* Whole units of the document, written for owner's section: into blocks
 * for either thread, or counted now (alone, or a unit as large as a block). */
static B4 count_units(Counting *c, Str8 text, S4 owner, U4 inputs, Arena *temp) {
    while (text.len) {
        if (!c->two_threads) return tally_count(c->tok, &c->tally, text, owner, temp);
        if (!c->pool && !pool_new(c)) return 0;
        CountBlock *b = c->fill;
        B4 segs_full = b->seg_count == COUNT_BLOCK_SEGS && b->segs[b->seg_count - 1].owner != owner;
        U8 n = segs_full ? 0 : units_within(text, COUNT_BLOCK_BYTES - b->len);
        if (n) {
            memcpy(b->data + b->len, text.ptr, (size_t)n);
            if (b->seg_count && b->segs[b->seg_count - 1].owner == owner) b->segs[b->seg_count - 1].len += (U4)n;
            else b->segs[b->seg_count++] = (CountSeg){ owner, (U4)n };
            b->len += n;
        } else if (b->len == 0) {
            n = first_unit(text);
            if (!tally_count(c->tok, &c->tally, str8_prefix(text, n), owner, temp)) return 0;
        } else if (!pool_submit(c, inputs, temp)) {
            return 0;
        }
        text = str8_skip(text, n);
    }
    return 1;
}

/* A failed count fails the op (its memory may have been a temporary arena's). */
static B4 count_add(Ctx *ctx, Counting *c, Str8 text, S4 owner, Arena *temp) {
    if (count_units(c, text, owner, ctx->req->input_count, temp) && !ctx->arena->failed) return 1;
    if (ctx->code == Code_Ok && !ctx->arena->failed) ctx->arena->failed = Fail_NoMemory;
    return 0;
}

static B4 carry_append(Ctx *ctx, Counting *c, U1 const *p, U8 n) {
    if (n == 0 || xar_append(&c->carry, p, n)) return 1;
    ctx->arena->failed = c->carry_arena.failed;
    return 0;
}

/* The carry and text[0, end) are one unit: count it, for the carry's owner. */
static B4 count_close_carry(Ctx *ctx, Counting *c, Str8 text, U8 end, Arena *temp) {
    if (!c->carry.len) return end == 0 || count_add(ctx, c, str8_prefix(text, end), c->owner, temp);
    if (!carry_append(ctx, c, text.ptr, end)) return 0;
    Str8 unit = xar_contiguous(&c->carry, &c->carry_arena);
    if (c->carry_arena.failed) ctx->arena->failed = c->carry_arena.failed;
    B4 ok = !ctx->arena->failed && count_add(ctx, c, unit, c->owner, temp);
    arena_reset(&c->carry_arena);
    c->carry = (Xar){ .arena = &c->carry_arena };
    return ok;
}

/* Count the next bytes of the document, written for `owner`'s section. */
static B4 count_feed(Ctx *ctx, Counting *c, Str8 text, S4 owner, Arena *temp) {
    if (!c || text.len == 0) return 1;
    U8 first = text.len, last = text.len;
    U1 before = c->last;
    for (U8 i = 0; i < text.len; i += 1) {
        if (unit_start(before, text.ptr[i])) { first = i; break; }
        before = text.ptr[i];
    }
    for (U8 i = text.len; i-- > first + 1;) {
        if (unit_start(text.ptr[i - 1], text.ptr[i])) { last = i; break; }
    }
    if (last == text.len) last = first;
    c->last = text.ptr[text.len - 1];
    /* with no carry, the unit text begins with is owner's */
    if (!c->carry.len) c->owner = owner;
    if (first == text.len) return carry_append(ctx, c, text.ptr, text.len);   /* no unit begins here */
    if (!count_close_carry(ctx, c, text, first, temp)) return 0;
    if (last > first && !count_add(ctx, c, str8(text.ptr + first, last - first), owner, temp)) return 0;
    c->owner = owner;
    return carry_append(ctx, c, text.ptr + last, text.len - last);
}

/* Feed bytes [at, len) of a Xar, chunk by chunk. */
static B4 count_feed_xar(Ctx *ctx, Counting *c, Xar const *xar, U8 at, S4 owner, Arena *temp) {
    while (c && at < xar->len) {
        U4 k = xar_chunk_of(at);
        U8 off = at - xar_chunk_start(k);
        U8 n = min_(xar->len - at, xar_chunk_size(k) - off);
        if (!count_feed(ctx, c, str8(xar->chunks[k] + off, n), owner, temp)) return 0;
        at += n;
    }
    return 1;
}

/* ---- the count cache ------------------------------------------------------ */

IA_ U8 rotl64(U8 x, U4 b) { return (x << b) | (x >> (64 - b)); }

#define SIP_ROUND(v) do { \
    v[0] += v[1]; v[1] = rotl64(v[1], 13); v[1] ^= v[0]; v[0] = rotl64(v[0], 32); \
    v[2] += v[3]; v[3] = rotl64(v[3], 16); v[3] ^= v[2]; \
    v[0] += v[3]; v[3] = rotl64(v[3], 21); v[3] ^= v[0]; \
    v[2] += v[1]; v[1] = rotl64(v[1], 17); v[1] ^= v[2]; v[2] = rotl64(v[2], 32); \
} while (0)

/* SipHash-1-3 (the rounds of Python's str hash): the state of one, keyed
 * (k0, k1), the 128-bit variant's when `wide`. */
Struct_(Sip) { U8 v[4]; };

IA_ Sip sip_init(U8 k0, U8 k1, B4 wide) {
    return (Sip){ { k0 ^ 0x736f6d6570736575ull, k1 ^ 0x646f72616e646f6dull ^ (wide ? 0xee : 0),
                    k0 ^ 0x6c7967656e657261ull, k1 ^ 0x7465646279746573ull } };
}

IA_ void sip_word(Sip *s, U8 m) { s->v[3] ^= m; SIP_ROUND(s->v); s->v[0] ^= m; }

/* The last word: the bytes after the whole words, and the length's low byte. */
IA_ U8 sip_last_word(U1 const *tail, U8 n, U8 len) {
    U8 b = (len & 0xff) << 56;
    for (U8 i = 0; i < n; i += 1) b |= (U8)tail[i] << (8 * i);
    return b;
}

IA_ U8 sip_out(Sip *s, U8 tweak) {
    s->v[2] ^= tweak;
    for (U4 r = 0; r < 3; r += 1) SIP_ROUND(s->v);
    return s->v[0] ^ s->v[1] ^ s->v[2] ^ s->v[3];
}

/* The count cache's hash of a body, 128 bits (out[0], out[1]), keyed by the
 * cache's key: a repository cannot choose bodies whose hashes collide
 * without it. Two SipHash-1-3 lanes (keys key[1] ^ 1 and ^ 2) take the
 * words in turn, so that their rounds overlap (SipHash-2-4 over the whole
 * body took a tenth of a warm --stats run; 31 MiB here: 2-4 12-15 ms, 1-3
 * 7-8, two lanes 5-7, four no faster: too few registers); lane a takes the
 * odd last whole word and the last word too; then the 128-bit SipHash-1-3
 * under the key of the two lanes' outputs and the length.
 * tests/test_count_cache.py has it in Python, the oracle. */
static void body_hash(U8 const key[2], Str8 s, U8 out[2]) {
    Sip a = sip_init(key[0], key[1] ^ 1, 0), b = sip_init(key[0], key[1] ^ 2, 0);
    U8 words = s.len / 8, i = 0;
    for (; i + 2 <= words; i += 2) {
        sip_word(&a, get_u8le(s.ptr + 8 * i));
        sip_word(&b, get_u8le(s.ptr + 8 * i + 8));
    }
    if (i < words) sip_word(&a, get_u8le(s.ptr + 8 * i));
    /* an empty body may have no pointer: no offset from it */
    sip_word(&a, sip_last_word(s.len ? s.ptr + 8 * words : s.ptr, s.len - 8 * words, s.len));
    Sip all = sip_init(key[0], key[1], 1);
    sip_word(&all, sip_out(&a, 0xff));
    sip_word(&all, sip_out(&b, 0xff));
    sip_word(&all, s.len);
    sip_word(&all, sip_last_word(0, 0, 24));
    out[0] = sip_out(&all, 0xee);
    all.v[1] ^= 0xdd;
    out[1] = sip_out(&all, 0);
}

/* The section cache's hash of a summary: of its source text, under a key
 * made from the path and the language its fence line names, the format and
 * the mode. */
static void section_hash(U8 const key[2], BuildOpts const *opts, Str8 path, Str8 lang, U1 mode, Str8 text, U8 out[2]) {
    U8 k[2] = { key[0] ^ SECTION_TAG, key[1] ^ ((U8)opts->format << 8 | mode) }, k2[2];
    body_hash(k, path, k2);
    body_hash(k2, lang, k);
    body_hash(k, text, out);
}

/* The tokens cached for hash h, or 0 with *found 0 (binary search: the
 * entries are sorted; entries that are not only make lookups miss). */
static U8 cache_find(CountCache const *cache, U8 const h[2], B4 *found) {
    U8 lo = 0, hi = cache->entry_count;
    while (lo < hi) {
        U8 mid = lo + (hi - lo) / 2;
        U1 const *e = cache->entries + mid * CACHE_ENTRY_BYTES;
        U8 e0 = get_u8le(e), e1 = get_u8le(e + 8);
        if (e0 == h[0] && e1 == h[1]) { *found = 1; return get_u8le(e + 16); }
        if (e0 < h[0] || (e0 == h[0] && e1 < h[1])) lo = mid + 1;
        else hi = mid;
    }
    *found = 0;
    return 0;
}

/* ---- output ------------------------------------------------------------ */

/* Pending document (part 0 after its length field) out to the descriptor;
 * with counting, each byte is fed to the count before it is written:
 * ctx->out up to fed_to has been, for `owner`'s section. */
Struct_(Sink) { S4 fd; U8 body_at; U8 written; S4 err; Counting *count; U8 fed_to; S4 owner; Arena *temp; };

static B4 sink_count(Ctx *ctx, Sink *sink) {
    B4 ok = count_feed_xar(ctx, sink->count, ctx->out, sink->fed_to, sink->owner, sink->temp);
    sink->fed_to = ctx->out->len;
    return ok;
}

/* What follows is written for `owner`'s section: count what precedes first. */
static B4 sink_owner(Ctx *ctx, Sink *sink, S4 owner) {
    B4 ok = sink_count(ctx, sink);
    sink->owner = owner;
    return ok;
}

static B4 sink_flush(Ctx *ctx, Sink *sink) {
    if (!sink_count(ctx, sink)) return 0;
    if (sink->fd < 0 || sink->err) return !sink->err;
    sink->fed_to = sink->body_at;
    U8 pending = ctx->out->len - sink->body_at;
    if (!xar_write_fd(ctx->out, sink->body_at, sink->fd, &sink->err)) return 0;
    sink->written += pending;
    ctx->out->len = sink->body_at;   /* the chunks stay for the next section */
    return 1;
}

/* A large body goes to the descriptor from where it lies, uncopied. */
static B4 sink_body(Ctx *ctx, Sink *sink, Str8 body) {
    if (sink->fd < 0 || body.len < DIRECT_BYTES) return ctx_str8(ctx, body);
    if (!sink_flush(ctx, sink) || !count_feed(ctx, sink->count, body, sink->owner, sink->temp)) return 0;
    if (!fd_write_all(sink->fd, body.ptr, body.len, &sink->err)) return 0;
    sink->written += body.len;
    return 1;
}

/* Count rest + suffix (whole units: rest begins one, a unit start follows
 * suffix) for `owner`: rest's last unit and the suffix are one, copied together. */
static B4 count_rest(Ctx *ctx, Counting *c, Str8 rest, Str8 suffix, S4 owner, Arena *temp) {
    U8 last = rest.len - 1;
    while (last > 0 && !unit_start(rest.ptr[last - 1], rest.ptr[last])) last -= 1;
    if (last && !count_add(ctx, c, str8_prefix(rest, last), owner, temp)) return 0;
    U8 n = rest.len - last;
    U1 *unit = farena_push(temp, n + suffix.len);
    if (!unit) { ctx->arena->failed = temp->failed; return 0; }
    memcpy(unit, rest.ptr + last, (size_t)n);
    memcpy(unit + n, suffix.ptr, (size_t)suffix.len);
    return count_add(ctx, c, str8(unit, n + suffix.len), owner, temp);
}

/* Bytes written but not fed to the count (counted apart, or known). */
static B4 sink_uncounted(Ctx *ctx, Sink *sink, Str8 s) {
    if (!sink_count(ctx, sink)) return 0;
    if (sink->fd < 0 || s.len < DIRECT_BYTES) {
        if (!ctx_str8(ctx, s)) return 0;
        sink->fed_to = ctx->out->len;
        return 1;
    }
    if (!sink_flush(ctx, sink) || !fd_write_all(sink->fd, s.ptr, s.len, &sink->err)) return 0;
    sink->written += s.len;
    return 1;
}

/* A body and the `suffix` its format writes after it, which a unit start
 * follows (markdown's "\n" before the closing fence, plain's "\n\n" before
 * "---"). With the count cache, the body's head (to its first unit start)
 * is counted with what precedes it; the rest and the suffix are whole units
 * whose tokens come from the cache, or are counted for input `index`'s
 * record. A body too short or without a unit start is written as is. */
static B4 sink_cached_body(Ctx *ctx, Sink *sink, Str8 body, U4 index, Str8 suffix) {
    Counting *c = sink->count;
    U8 first = body.len >= CACHE_MIN_BYTES ? first_unit(body) : body.len;
    if (!c || !c->cache.hash || first >= body.len) return sink_body(ctx, sink, body) && ctx_str8(ctx, suffix);
    CountCache *cache = &c->cache;
    U8 *h = cache->hash + 2 * (U8)index;
    U8 key[2] = { cache->key[0], cache->key[1] ^ suffix.len };   /* a key per suffix: the counts differ */
    body_hash(key, body, h);
    B4 found = 0;
    U8 known = cache_find(cache, h, &found);
    Str8 rest = str8_skip(body, first);
    /* the head, then its last unit closed: the rest begins a unit */
    if (!sink_body(ctx, sink, str8_prefix(body, first)) || !sink_count(ctx, sink)
        || !count_close_carry(ctx, c, str8(0, 0), 0, sink->temp)) return 0;
    S4 apart = (S4)(ctx->req->input_count + index);    /* the rest's own tally, joined by cache_settle */
    if (found) c->tally.tokens += known, c->tally.per_input[apart] += known;
    else if (!count_rest(ctx, c, rest, suffix, apart, sink->temp)) return 0;
    cache->state[index] = found ? Cache_Hit : Cache_Counted;
    if (!sink_uncounted(ctx, sink, rest) || !sink_uncounted(ctx, sink, suffix)) return 0;
    c->last = suffix.ptr[suffix.len - 1];
    return 1;
}

/* The section cache around a summary's fence line and body (the state
 * section_known set): on a hit the entry's count stands for the units from
 * the fence line through the suffix, which are not written (*write 0);
 * otherwise those units are counted apart for the entry (cache_settle).
 * `fence`: its length (plain: 0); one too long for an entry is not kept. */
static B4 section_begin(Ctx *ctx, Sink *sink, U4 index, U8 fence, B4 *write) {
    Counting *c = sink->count;
    *write = 1;
    U1 state = c && c->cache.hash ? c->cache.sec_state[index] : Cache_None;
    if (state == Cache_None || state == Cache_Ahead) return 1;
    CountCache *cache = &c->cache;
    if (state == Cache_Counted) {
        if (fence >> (64 - SECTION_FENCE_SHIFT)) { cache->sec_state[index] = Cache_None; return 1; }
        cache->sec_value[index] = fence << SECTION_FENCE_SHIFT;
        return sink_owner(ctx, sink, (S4)(2 * ctx->req->input_count + index));
    }
    *write = 0;
    if (!sink_count(ctx, sink)) return 0;
    U8 known = cache->sec_value[index] & (((U8)1 << SECTION_FENCE_SHIFT) - 1);
    c->tally.tokens += known, c->tally.per_input[index] += known;
    c->last = '\n';   /* the suffix's last byte (both formats): the closing fence or line begins a unit */
    return 1;
}

/* What follows the body (the closing fence or line) is the input's again. */
static B4 section_end(Ctx *ctx, Sink *sink, U4 index) {
    Counting *c = sink->count;
    if (!c || !c->cache.hash || c->cache.sec_state[index] != Cache_Counted) return 1;
    return sink_owner(ctx, sink, (S4)index);
}

static B4 write_u8_decimal(Ctx *ctx, U8 v) {
    U1 buf[20];
    U8 n = sizeof buf;
    do { buf[--n] = (U1)('0' + v % 10); v /= 10; } while (v);
    return ctx_write(ctx, buf + n, sizeof buf - n);
}

/* Small pieces (escapes, the runs between them) gathered on the stack and
 * appended to the part in large writes; a long run goes straight through. */
Struct_(OutBuf) { Ctx *ctx; U8 len; U1 data[1 << 13]; };

static void ob_flush(OutBuf *b) {
    if (b->len) ctx_write(b->ctx, b->data, b->len);
    b->len = 0;
}

IA_ void ob_put(OutBuf *b, U1 const *p, U8 n) {
    if (n > sizeof b->data - b->len) {
        ob_flush(b);
        if (n >= sizeof b->data / 2) { ctx_write(b->ctx, p, n); return; }
    }
    memcpy(b->data + b->len, p, (size_t)n);
    b->len += n;
}

#define ob_lit(b, s) ob_put((b), (U1 const *)(s), sizeof(s) - 1)

/* One input's section, as the writers see it. */
/* index: the section's number; input: the request's; known: found in the
 * section cache (no body), with its fence's length */
Struct_(Section) { Str8 path; Str8 shown; Str8 body; U8 index; U4 input; B4 known; U8 fence; };

typedef B4 SectionFn(Ctx *ctx, Sink *sink, BuildOpts const *opts, Section const *sec);

/* ---- markdown ----------------------------------------------------------- */

IA_ B4 is_line_end(U1 c) { return c == '\n' || c == '\r'; }

/* Could the backtick run at [start, end) close a fence? Only if it stands on
 * its own line behind at most three spaces, followed by spaces or tabs. */
static B4 run_could_close(Str8 s, U8 start, U8 end) {
    U8 i = start, spaces = 0;
    while (i > 0 && s.ptr[i - 1] == ' ' && spaces < 4) i -= 1, spaces += 1;
    if (spaces > 3 || (i > 0 && !is_line_end(s.ptr[i - 1]))) return 0;
    for (U8 j = end; j < s.len && !is_line_end(s.ptr[j]); j += 1) {
        if (s.ptr[j] != ' ' && s.ptr[j] != '\t') return 0;
    }
    return 1;
}

/* The shortest backtick fence (at least 3) that no line of the body can close. */
static U8 fence_length_for(Str8 s) {
    if (s.len == 0) return 3;   /* an empty slice may hold NULL: no pointer arithmetic on it */
    U8 longest = 0;
    U1 const *p = s.ptr, *end = s.ptr + s.len;
    while (p < end && (p = memchr(p, '`', (size_t)(end - p)))) {
        U1 const *q = p;
        while (q < end && *q == '`') q += 1;
        U8 run = (U8)(q - p);
        if (run >= 3 && run > longest && run_could_close(s, (U8)(p - s.ptr), (U8)(q - s.ptr))) longest = run;
        p = q;
    }
    return longest >= 3 ? longest + 1 : 3;
}

static B4 write_fence(Ctx *ctx, U8 len) {
    U1 ticks[64];
    memset(ticks, '`', sizeof ticks);
    while (len) {
        U8 n = min_(len, (U8)sizeof ticks);
        if (!ctx_write(ctx, ticks, n)) return 0;
        len -= n;
    }
    return 1;
}

static B4 markdown_section(Ctx *ctx, Sink *sink, BuildOpts const *opts, Section const *sec) {
    U8 fence = sec->known ? sec->fence : fence_length_for(sec->body);
    B4 write = 1;
    ctx_str8(ctx, str8_lit("### "));
    write_path_span(ctx, sec->shown);
    ctx_str8(ctx, str8_lit("\n\n"));
    if (!section_begin(ctx, sink, sec->input, fence, &write)) return 0;
    if (write) {
        write_fence(ctx, fence);
        ctx_str8(ctx, language_of(opts, sec->path));
        ctx_str8(ctx, str8_lit("\n"));
        if (!sink_cached_body(ctx, sink, sec->body, sec->input, str8_lit("\n"))) return 0;
    }
    return section_end(ctx, sink, sec->input) && write_fence(ctx, fence);
}

/* ---- plain (files-to-prompt's default) ----------------------------------- */

static B4 plain_section(Ctx *ctx, Sink *sink, BuildOpts const *opts, Section const *sec) {
    (void)opts;
    B4 write = 1;
    ctx_str8(ctx, sec->shown);
    ctx_str8(ctx, str8_lit("\n"));
    if (!section_begin(ctx, sink, sec->input, 0, &write)) return 0;
    if (write) {
        ctx_str8(ctx, str8_lit("---\n"));
        if (!sink_cached_body(ctx, sink, sec->body, sec->input, str8_lit("\n\n"))) return 0;
    }
    return section_end(ctx, sink, sec->input) && ctx_str8(ctx, str8_lit("---"));
}

/* ---- xml ---------------------------------------------------------------- */

/* Text with & < > as entities (a shown path: no control characters). */
static B4 xml_escaped(Ctx *ctx, Str8 s) {
    if (s.len == 0) return 1;   /* an empty slice may hold NULL */
    U8 start = 0;
    for (U8 i = 0; i < s.len; i += 1) {
        U1 c = s.ptr[i];
        if (c != '&' && c != '<' && c != '>') continue;
        ctx_write(ctx, s.ptr + start, i - start);
        ctx_str8(ctx, c == '&' ? str8_lit("&amp;") : c == '<' ? str8_lit("&lt;") : str8_lit("&gt;"));
        start = i + 1;
    }
    return ctx_write(ctx, s.ptr + start, s.len - start);
}

static void xml_byte(OutBuf *out, U1 b) {
    U1 e[] = "<byte hex=\"00\"/>";
    e[11] = (U1)HEX_DIGITS[b >> 4], e[12] = (U1)HEX_DIGITS[b & 15];
    ob_put(out, e, sizeof e - 1);
}

/* Bytes the xml and json writers stop at: 1 for ASCII they may escape
 * (xml: C0 controls but TAB and LF, '>'; json: C0 controls, '"', '\\'),
 * 2 for a byte >= 0x80 (a UTF-8 sequence to check). */
static U1 const XML_STOP[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};
static U1 const JSON_STOP[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* The same for valid UTF-8 (a text body: text_of made it so): only an
 * EF lead byte may start what xml escapes (U+FFFE, U+FFFF), and json
 * escapes nothing past ASCII. */
static U1 const XML_STOP_TEXT[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
static U1 const JSON_STOP_TEXT[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* The first byte at or after i that `stop` marks (s.len if none). */
IA_ U8 scan_to(U1 const stop[256], Str8 s, U8 i) {
    while (i + 4 <= s.len && !(stop[s.ptr[i]] | stop[s.ptr[i + 1]] | stop[s.ptr[i + 2]] | stop[s.ptr[i + 3]])) i += 4;
    while (i < s.len && !stop[s.ptr[i]]) i += 1;
    return i;
}

/* Content as XML text that parses back to exactly its characters: runs of
 * ordinary characters in CDATA sections; between them a CR as "&#13;"
 * (a parser would read it as LF), a ">" after "]]" as "&gt;" (it would
 * end the section), and each byte that XML 1.0 cannot hold (C0 controls
 * but TAB and LF, U+FFFE, U+FFFF, bytes outside valid UTF-8) as an element
 * <byte hex="NN"/>. */
static B4 xml_content(Ctx *ctx, Str8 s, B4 text) {
    U1 const *stop = text ? XML_STOP_TEXT : XML_STOP;
    OutBuf out;
    out.ctx = ctx, out.len = 0;
    U8 start = 0, i = 0;
    for (;;) {
        i = scan_to(stop, s, i);
        if (i >= s.len) break;
        U1 c = s.ptr[i];
        S4 k = 1;
        B4 special;
        if (c >= 0x80) {
            k = utf8_seq(s.ptr + i, s.len - i);
            special = k < 0 || is_xml_nonchar(s.ptr + i, k);
        } else {
            special = c != '>' || (i >= 2 && s.ptr[i - 1] == ']' && s.ptr[i - 2] == ']');
        }
        if (!special) { i += (U8)k; continue; }
        if (i > start) ob_lit(&out, "<![CDATA["), ob_put(&out, s.ptr + start, i - start), ob_lit(&out, "]]>");
        U8 bytes = k > 0 ? (U8)k : 1;
        if (c == '\r') ob_lit(&out, "&#13;");
        else if (c == '>') ob_lit(&out, "&gt;");
        else for (U8 j = 0; j < bytes; j += 1) xml_byte(&out, s.ptr[i + j]);
        i += bytes;
        start = i;
    }
    if (s.len > start) ob_lit(&out, "<![CDATA["), ob_put(&out, s.ptr + start, s.len - start), ob_lit(&out, "]]>");
    ob_flush(&out);
    return !ctx->arena->failed;
}

static B4 xml_section(Ctx *ctx, Sink *sink, BuildOpts const *opts, Section const *sec) {
    (void)sink;
    ctx_str8(ctx, str8_lit("\n<document index=\""));
    write_u8_decimal(ctx, sec->index);
    ctx_str8(ctx, str8_lit("\">\n<source>"));
    xml_escaped(ctx, sec->shown);
    ctx_str8(ctx, str8_lit("</source>\n<document_content>\n"));
    xml_content(ctx, sec->body, !opts->raw);
    return ctx_str8(ctx, str8_lit("\n</document_content>\n</document>"));
}

/* ---- json --------------------------------------------------------------- */

/* A JSON string: '"' and '\' escaped, C0 controls as \n \r \t \b \f or
 * \u00NN, other valid UTF-8 as it is, each byte NN outside valid UTF-8 as
 * \udcNN (a lone surrogate: Python's surrogateescape reads it back). */
/* SWAR: the high bit of each byte of w that is below n (n <= 0x80), exact
 * for the lowest such byte (borrows only run upwards). */
#define ONES_ 0x0101010101010101ull
#define HIGHS_ 0x8080808080808080ull
IA_ U8 bytes_below(U8 w, U8 n) { return (w - ONES_ * n) & ~w & HIGHS_; }

/* Index of the lowest byte whose high bit is set in mask (mask != 0). */
IA_ U8 lowest_byte(U8 mask) {
#if defined(__GNUC__) || defined(__clang__)
    return (U8)__builtin_ctzll(mask) >> 3;
#else
    U8 k = 0;
    while (!(mask & 0x80)) mask >>= 8, k += 1;
    return k;
#endif
}

/* Bytes of w json stops at: C0 controls, '"', '\\', and (raw) any byte >= 0x80. */
IA_ U8 json_stops(U8 w, B4 text) {
    return bytes_below(w, 0x20) | bytes_below(w ^ (ONES_ * '"'), 1) | bytes_below(w ^ (ONES_ * '\\'), 1)
         | (text ? 0 : w & HIGHS_);
}

/* A JSON string: '"' and '\' escaped, C0 controls as \n \r \t \b \f or
 * \u00NN, other valid UTF-8 as it is, each byte NN outside valid UTF-8 as
 * \udcNN (a lone surrogate: Python's surrogateescape reads it back). Eight
 * bytes at a time: each word is stored, then kept up to its first stop. */
static B4 json_string(Ctx *ctx, Str8 s, B4 text) {
    U1 const *stop = text ? JSON_STOP_TEXT : JSON_STOP;
    OutBuf out;
    out.ctx = ctx, out.len = 0;
    ob_lit(&out, "\"");
    U8 i = 0;
    while (i < s.len) {
        /* room for one step: a block (16) and, after up to 15 of its bytes, an escape (6) */
        if (out.len + 16 + 6 > sizeof out.data) ob_flush(&out);
#if defined(__SSE2__)
        if (i + 16 <= s.len) {   /* sixteen at a time: C0 controls (v <= 0x1f), '"', '\\', raw: >= 0x80 */
            __m128i v = _mm_loadu_si128((__m128i const *)(void const *)(s.ptr + i));
            _mm_storeu_si128((__m128i *)(void *)(out.data + out.len), v);
            __m128i m = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f)),
                                     _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
            U4 bits = (U4)_mm_movemask_epi8(m) | (text ? 0 : (U4)_mm_movemask_epi8(v));
            if (!bits) { out.len += 16, i += 16; continue; }
            U8 k = (U8)__builtin_ctz(bits);
            out.len += k, i += k;
        } else
#endif
        if (i + 8 <= s.len) {
            U8 w;
            memcpy(&w, s.ptr + i, 8);
            memcpy(out.data + out.len, &w, 8);
            U8 mask = json_stops(w, text);
            if (!mask) { out.len += 8, i += 8; continue; }
            U8 k = lowest_byte(mask);
            out.len += k, i += k;
        } else if (!stop[s.ptr[i]]) {
            out.data[out.len++] = s.ptr[i++];
            continue;
        }
        U1 c = s.ptr[i];
        if (c >= 0x80) {
            S4 k = utf8_seq(s.ptr + i, s.len - i);
            if (k > 0) { memcpy(out.data + out.len, s.ptr + i, (size_t)k), out.len += (U8)k, i += (U8)k; continue; }
        }
        U1 e[6] = { '\\', 0, 0, 0, 0, 0 };
        U8 n = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u', e[2] = c >= 0x80 ? 'd' : '0', e[3] = c >= 0x80 ? 'c' : '0';
            e[4] = (U1)HEX_DIGITS[c >> 4], e[5] = (U1)HEX_DIGITS[c & 15], n = 6;
        }
        memcpy(out.data + out.len, e, (size_t)n), out.len += n;
        i += 1;
    }
    ob_lit(&out, "\"");
    ob_flush(&out);
    return !ctx->arena->failed;
}

static B4 json_section(Ctx *ctx, Sink *sink, BuildOpts const *opts, Section const *sec) {
    (void)sink;
    ctx_str8(ctx, str8_lit("\n{\"path\": "));
    json_string(ctx, sec->shown, 1);
    ctx_str8(ctx, str8_lit(", \"content\": "));
    json_string(ctx, sec->body, !opts->raw);
    return ctx_write(ctx, (U1 const *)"}", 1);
}

/* ---- the tree and summary line at the end --------------------------------- */

Struct_(TreeFile) { Str8 shown; U8 bytes; };

/* The next '/'-separated component of s at *at (the rest when none follows). */
static Str8 component(Str8 s, U8 *at) {
    Str8 rest = str8_skip(s, *at);
    U1 const *slash = rest.len ? memchr(rest.ptr, '/', rest.len) : 0;
    U8 n = slash ? (U8)(slash - rest.ptr) : rest.len;
    *at += n + 1;
    return str8_prefix(rest, n);
}

/* Directory components of a path: all but the last. */
static U8 dir_count(Str8 s) {
    U8 n = 0;
    for (U8 i = 0; i < s.len; i += 1) n += s.ptr[i] == '/';
    return n;
}

/* How many leading directory components a and b share. */
static U8 common_dirs(Str8 a, U8 a_dirs, Str8 b, U8 b_dirs) {
    U8 n = 0, ia = 0, ib = 0, most = min_(a_dirs, b_dirs);
    while (n < most && str8_eq(component(a, &ia), component(b, &ib))) n += 1;
    return n;
}

static void write_indent(Ctx *ctx, U8 level) {
    for (U8 i = 0; i < level; i += 1) ctx_write(ctx, (U1 const *)"  ", 2);
}

/* The tree, a line per directory and file, each ending in LF: the
 * directories all files share on the first line ("a/b/"), then each file
 * under the directories that differ from the previous file's, two spaces
 * a level, in document order. */
static void write_tree(Ctx *ctx, TreeFile const *files, U8 count) {
    if (count == 0) return;
    U8 shared = dir_count(files[0].shown);
    for (U8 i = 1; i < count; i += 1)
        shared = common_dirs(files[0].shown, shared, files[i].shown, dir_count(files[i].shown));
    U8 at = 0, base = shared ? 1 : 0;
    for (U8 j = 0; j < shared; j += 1) ctx_str8(ctx, component(files[0].shown, &at)), ctx_write(ctx, (U1 const *)"/", 1);
    if (shared) ctx_write(ctx, (U1 const *)"\n", 1);
    for (U8 i = 0; i < count; i += 1) {
        Str8 p = files[i].shown;
        U8 dirs = dir_count(p), same = shared;
        if (i > 0) same = common_dirs(files[i - 1].shown, dir_count(files[i - 1].shown), p, dirs);
        U8 pos = 0;
        for (U8 j = 0; j < dirs; j += 1) {
            Str8 c = component(p, &pos);
            if (j < same) continue;
            write_indent(ctx, base + j - shared);
            ctx_str8(ctx, c), ctx_write(ctx, (U1 const *)"/\n", 2);
        }
        write_indent(ctx, base + dirs - shared);
        ctx_str8(ctx, str8_skip(p, pos)), ctx_write(ctx, (U1 const *)"\n", 1);
    }
}

/* "N files, B bytes": the files in the document and the bytes read for them. */
static void write_summary_line(Ctx *ctx, TreeFile const *files, U8 count) {
    U8 bytes = 0;
    for (U8 i = 0; i < count; i += 1) bytes += files[i].bytes;
    write_u8_decimal(ctx, count);
    ctx_str8(ctx, count == 1 ? str8_lit(" file, ") : str8_lit(" files, "));
    write_u8_decimal(ctx, bytes);
    ctx_str8(ctx, bytes == 1 ? str8_lit(" byte") : str8_lit(" bytes"));
}

/* tree_files, then this request's sections: 0 (code 3) for a malformed parameter. */
static B4 tree_files_of(Ctx *ctx, BuildOpts const *opts, TreeFile **out, U8 *count) {
    Reader r = { .ptr = opts->tree_files.ptr, .len = opts->tree_files.len };
    U8 n = 0;
    while (reader_left(&r) && !r.bad) { U4 len = read_u4(&r); read_bytes(&r, len); read_u8(&r); n += 1; }
    if (r.bad) return ctx_fail(ctx, Code_BadParam, "parameter tree_files: expected (U4 length, path, U8 bytes) records");
    Request *req = ctx->req;
    for (U4 i = 0; i < req->input_count; i += 1) n += req->inputs[i].loaded && !req->inputs[i].load_errno && !req->inputs[i].skip;
    TreeFile *files = farena_push_array(ctx->arena, TreeFile, n ? n : 1);
    if (!files) return 0;
    r = (Reader){ .ptr = opts->tree_files.ptr, .len = opts->tree_files.len };
    U8 k = 0;
    while (reader_left(&r)) {
        Str8 path = read_bytes(&r, read_u4(&r));
        files[k].shown = shown_path(ctx->arena, path), files[k].bytes = read_u8(&r), k += 1;
    }
    for (U4 i = 0; i < req->input_count; i += 1) {
        Input const *in = &req->inputs[i];
        if (in->loaded && !in->load_errno && !in->skip) files[k].shown = shown_path(ctx->arena, in->path), files[k].bytes = in->skip_value, k += 1;
    }
    *out = files, *count = n;
    return !ctx->arena->failed;
}

/* The tree as text (in the arena): the markdown fence depends on all of it. */
static Str8 tree_text(Ctx *ctx, TreeFile const *files, U8 count) {
    Xar tree = { .arena = ctx->arena };
    Xar *out = ctx->out;
    ctx->out = &tree;
    write_tree(ctx, files, count);
    ctx->out = out;
    return xar_contiguous(&tree, ctx->arena);
}

/* The end of the document (before CLOSE), after a separator when a section precedes. */
static B4 write_footer(Ctx *ctx, BuildOpts const *opts, B4 after_section) {
    TreeFile *files = 0;
    U8 count = 0;
    if (!tree_files_of(ctx, opts, &files, &count)) return 0;
    Str8 tree = tree_text(ctx, files, count);
    if (ctx->arena->failed) return 0;
    switch (opts->format) {
    case Format_Markdown: {
        if (after_section) ctx_str8(ctx, str8_lit("\n\n---\n\n"));
        U8 fence = fence_length_for(tree);
        ctx_str8(ctx, str8_lit("## Files\n\n"));
        write_fence(ctx, fence), ctx_write(ctx, (U1 const *)"\n", 1);
        ctx_str8(ctx, tree);
        write_fence(ctx, fence), ctx_str8(ctx, str8_lit("\n\n"));
        write_summary_line(ctx, files, count);
        break;
    }
    case Format_Xml:
        ctx_str8(ctx, str8_lit("\n<files>\n"));
        xml_escaped(ctx, tree);
        ctx_str8(ctx, str8_lit("</files>\n<summary>"));
        write_summary_line(ctx, files, count);
        ctx_str8(ctx, str8_lit("</summary>"));
        break;
    case Format_Json:
        ctx_str8(ctx, str8_lit("\n], \"tree\": "));
        json_string(ctx, tree, 1);
        ctx_str8(ctx, str8_lit(", \"summary\": \""));
        write_summary_line(ctx, files, count);
        ctx_str8(ctx, str8_lit("\"}"));
        break;
    default:
        if (after_section) ctx_write(ctx, (U1 const *)"\n", 1);
        ctx_str8(ctx, str8_lit("Files:\n"));
        ctx_str8(ctx, tree);
        write_summary_line(ctx, files, count);
        break;
    }
    return !ctx->arena->failed;
}

/* ---- the formats ---------------------------------------------------------- */

#define STR8_INIT_(s) { (U1 const *)(s), sizeof(s) - 1 }

/* A document is OPEN, sections joined by SEPARATOR, CLOSE. */
Struct_(FormatDef) { Str8 open; Str8 separator; Str8 close; SectionFn *section; };

static FormatDef const FORMATS[Format_Count_] = {
    [Format_Markdown] = { STR8_INIT_(""), STR8_INIT_("\n\n---\n\n"), STR8_INIT_(""), markdown_section },
    [Format_Xml]      = { STR8_INIT_("<documents>"), STR8_INIT_(""), STR8_INIT_("\n</documents>"), xml_section },
    [Format_Json]     = { STR8_INIT_("["), STR8_INIT_(","), STR8_INIT_("\n]"), json_section },
    [Format_Plain]    = { STR8_INIT_(""), STR8_INIT_("\n"), STR8_INIT_(""), plain_section },
};

/* ---- inputs --------------------------------------------------------------- */

/* The body of a section: the content as text (as it is with raw), or a
 * summary of it written into scratch output first (the fence depends on the
 * whole body); a full-mode body numbered with line_numbers. */
/* The section cache is in use: a count cache, and a format that writes bodies as they are. */
static B4 section_cached(BuildOpts const *opts, Counting const *c) {
    return c && c->cache.hash && (opts->format == Format_Markdown || opts->format == Format_Plain);
}

static B4 section_lookup(BuildOpts const *opts, Counting *c, Input const *input, U4 index, U1 mode, Str8 text) {
    CountCache *cache = &c->cache;
    U8 *h = cache->sec_hash + 2 * (U8)index;
    section_hash(cache->key, opts, input->path, language_of(opts, input->path), mode, text, h);
    B4 found = 0;
    cache->sec_value[index] = cache_find(cache, h, &found);
    return found;
}

/* With count_only and the count cache, a summary is looked for in the
 * section cache before it is made: 1 when it is there (the entry is the
 * input's sec_value). */
static B4 section_known(BuildOpts const *opts, Counting *c, Input const *input, U4 index, U1 mode, Str8 text) {
    if (!opts->count_only || !section_cached(opts, c)) return 0;
    B4 found = section_lookup(opts, c, input, index, mode, text);
    c->cache.sec_state[index] = found ? Cache_Hit : Cache_Counted;
    return found;
}

/* With ahead, a full section's summary one mode down is looked up too (a
 * document counted next, with known, then needs no read of this input). */
static void section_ahead(BuildOpts const *opts, Counting *c, Input const *input, U4 index, Str8 text) {
    if (opts->ahead && section_cached(opts, c) && section_lookup(opts, c, input, index, opts->ahead, text))
        c->cache.sec_state[index] = Cache_Ahead;
}

/* With count_only and known, an input in summary or skeleton mode whose
 * entry the request gives is neither read nor summarised: its section is
 * that entry's (a wrong entry makes only the counts wrong). */
static B4 section_given(BuildOpts const *opts, Counting *c, Input *input, U4 index, Section *sec) {
    U1 mode = input->mode ? input->mode : opts->mode;
    if (!opts->count_only || !opts->known.len || mode == InputMode_Full || !section_cached(opts, c)) return 0;
    U8 value = get_u8le(opts->known.ptr + 8 * (U8)index);
    if (!value) return 0;
    c->cache.sec_state[index] = Cache_Given, c->cache.sec_value[index] = value;
    input->loaded = 1, input->load_errno = 0, input->skip = Skip_None, input->data = str8(0, 0);
    sec->known = 1, sec->fence = value >> SECTION_FENCE_SHIFT, sec->body = str8(0, 0);
    return 1;
}

static B4 section_body(Ctx *ctx, BuildOpts const *opts, Counting *c, Input *input, Section *sec) {
    U1 mode = input->mode ? input->mode : opts->mode;
    Str8 text = opts->raw ? input->data : text_of(ctx->arena, input->data);
    if (ctx->arena->failed) return 0;
    if (mode == InputMode_Full) {
        section_ahead(opts, c, input, sec->input, text);
        sec->body = opts->line_numbers ? numbered(ctx->arena, text) : text;
        return !ctx->arena->failed;
    }
    if (section_known(opts, c, input, sec->input, mode, text)) {
        sec->known = 1, sec->fence = c->cache.sec_value[sec->input] >> SECTION_FENCE_SHIFT, sec->body = str8(0, 0);
        return 1;
    }
    return summary_body(ctx, input->path, text, mode == InputMode_Skeleton, &sec->body);
}

/* ---- reading ahead --------------------------------------------------------- */

/* Reading on two threads. Most of a plain aggregate's time is the system
 * calls that open, check, read and close each file (docs/benchmarks-cli.md),
 * so the inputs go in runs of PREFETCH_RUN: a helper thread loads every
 * other run (the odd ones) into an arena of its own, while this thread loads
 * the even runs and writes every section in order. A run is handed over
 * whole, so the threads meet once a run, not once a file. The helper keeps
 * at most PREFETCH_SLOTS runs loaded and not yet written, and ends a run
 * early once it holds PREFETCH_BYTES (this thread loads the rest): memory
 * holds about PREFETCH_SLOTS * PREFETCH_BYTES more than on one thread.
 * Every check is still made on the descriptor that is read; only the order
 * of the opens changes. Not when counting (its own helper counts), not for
 * a request of at most one run's files, not with parameter threads=1. */
enum { PREFETCH_RUN = 32, PREFETCH_SLOTS = 2, PREFETCH_BYTES = 512 << 10, PREFETCH_RETAIN = 16 << 20 };

Struct_(Prefetch) {
    Sync *sync;
    Thread *thread;
    Input *inputs;
    U4 input_count;
    LoadChecks const *checks;
    Arena slots[PREFETCH_SLOTS];  /* the helper's k-th run is loaded into slots[k % PREFETCH_SLOTS] */
    U4 ends[PREFETCH_SLOTS];      /* held: where the helper stopped loading that run */
    U4 loaded;                    /* held: the helper's runs below this are loaded */
    U4 written;                   /* held: and below this, written (their slots free again) */
    B4 stop;                      /* held: load no more */
    U4 reached;                   /* this thread's: the inputs below this are written or left out */
};

IA_ U8 prefetch_first(U4 k) { return (2 * (U8)k + 1) * PREFETCH_RUN; }   /* the helper's k-th run */

static void prefetch_helper(void *arg) {
    Prefetch *p = arg;
    sync_lock(p->sync);
    for (U4 k = 0; prefetch_first(k) < p->input_count; k += 1) {
        while (!p->stop && k - p->written >= PREFETCH_SLOTS) sync_wait(p->sync);
        if (p->stop) break;
        sync_unlock(p->sync);
        Arena *slot = &p->slots[k % PREFETCH_SLOTS];
        U4 i = (U4)prefetch_first(k), last = min_(i + PREFETCH_RUN, p->input_count);
        for (U8 bytes = 0; i < last && bytes < PREFETCH_BYTES; i += 1) {
            Input *input = &p->inputs[i];
            if (input->kind == InputKind_File) input_load_in(slot, input, p->checks);
            bytes += input->data.len;
        }
        sync_lock(p->sync);
        p->ends[k % PREFETCH_SLOTS] = i, p->loaded = k + 1;
        sync_wake(p->sync);
    }
    sync_unlock(p->sync);
}

/* The request's prefetch, started in `own`; 0 (this thread reads every
 * input) when it would not pay or cannot start. */
static Prefetch *prefetch_start(BuildOpts const *opts, Request *req, Counting const *count, Arena *own) {
    U4 files = 0;
    for (U4 i = 0; i < req->input_count; i += 1) files += req->inputs[i].kind == InputKind_File;
    if (!opts->two_threads || count || files <= PREFETCH_RUN) return 0;
    Prefetch *p = farena_push_type(own, Prefetch);
    if (!p) return 0;
    p->inputs = req->inputs, p->input_count = req->input_count;
    p->checks = opts->checked ? &opts->checks : 0;
    p->sync = sync_new();
    p->thread = p->sync ? thread_start(prefetch_helper, p) : 0;
    if (!p->thread) { sync_free(p->sync); return 0; }
    return p;
}

IA_ B4 prefetch_owns(U4 i) { return (i / PREFETCH_RUN) & 1; }   /* a helper's run */

/* Before input i is used: at the start of a helper's run, wait until the
 * helper is done with it. What it did not load (past PREFETCH_BYTES), this
 * thread then loads as its own. */
static void prefetch_wait(Prefetch *p, U4 i) {
    if (!p || !prefetch_owns(i) || i % PREFETCH_RUN) return;
    U4 k = i / PREFETCH_RUN / 2;
    sync_lock(p->sync);
    while (p->loaded <= k) sync_wait(p->sync);
    sync_unlock(p->sync);
}

/* After input i is written or left out; at the end of a helper's run, its
 * slot is the helper's again. Memory that ran out in a slot fails the op,
 * as this thread's would. */
static void prefetch_done(Ctx *ctx, Prefetch *p, U4 i) {
    if (!p) return;
    p->reached = i + 1;
    if (!prefetch_owns(i) || ((i + 1) % PREFETCH_RUN && i + 1 < p->input_count)) return;
    U4 k = i / PREFETCH_RUN / 2;
    Arena *slot = &p->slots[k % PREFETCH_SLOTS];
    if (slot->failed && !ctx->arena->failed) ctx->arena->failed = slot->failed;
    if (slot->reserved > PREFETCH_RETAIN) arena_release(slot);
    else arena_reset(slot);
    sync_lock(p->sync);
    p->written = k + 1;
    sync_wake(p->sync);
    sync_unlock(p->sync);
}

/* Stop and join the helper. What it loaded past the inputs written is
 * unloaded: a stream stopped by a write error reports nothing of them. */
static void prefetch_end(Prefetch *p) {
    if (!p) return;
    sync_lock(p->sync);
    p->stop = 1;
    sync_wake(p->sync);
    sync_unlock(p->sync);
    thread_join(p->thread);
    for (U4 k = p->written; k < p->loaded; k += 1) {
        for (U4 i = max_((U4)prefetch_first(k), p->reached); i < p->ends[k % PREFETCH_SLOTS]; i += 1) {
            Input *in = &p->inputs[i];
            if (in->kind == InputKind_File)
                in->loaded = 0, in->load_errno = 0, in->skip = Skip_None, in->skip_value = 0, in->data = str8(0, 0);
        }
    }
    for (U4 k = 0; k < PREFETCH_SLOTS; k += 1) arena_release(&p->slots[k]);
    sync_free(p->sync);
}

/* Load one input and make its section in `scratch` (emptied per input, so
 * a call holds one file at a time). 0 when the input is left out
 * (load_errno or skip says why), or on a failure (ctx->code, or the
 * arena's flag). */
static B4 load_section(Ctx *ctx, Arena *scratch, BuildOpts const *opts, Counting *c, Input *input, Section *sec) {
    Arena *arena = ctx->arena;
    ctx->arena = scratch;
    B4 ok = section_given(opts, c, input, sec->input, sec);
    if (!ok) {
        ok = input_load_checked(ctx, input, opts->checked ? &opts->checks : 0);
        /* content past LIMIT_INPUT_BYTES, inline too: unreadable, as a file would be */
        if (ok && input->data.len > LIMIT_INPUT_BYTES) input->load_errno = EFBIG, ok = 0;
        if (ok) ok = section_body(ctx, opts, c, input, sec);
    }
    if (ok) sec->path = input->path, sec->shown = shown_path(scratch, input->path), ok = !scratch->failed;
    ctx->arena = arena;
    if (scratch->failed) arena->failed = scratch->failed;
    /* an error's message was made in scratch: keep a copy */
    if (ctx->code != Code_Ok) ctx->message = arena_copy(arena, ctx->message), ctx->detail = arena_copy(arena, ctx->detail);
    return ok;
}

static B4 parse_count_cache(Ctx *ctx, Str8 v, CountCache *cache) {
    if (v.len < CACHE_KEY_BYTES || (v.len - CACHE_KEY_BYTES) % CACHE_ENTRY_BYTES)
        return ctx_fail(ctx, Code_BadParam, "parameter count_cache: a %d-byte key, then entries of %d bytes",
                        CACHE_KEY_BYTES, CACHE_ENTRY_BYTES);
    U8 n = ctx->req->input_count;
    cache->key[0] = get_u8le(v.ptr), cache->key[1] = get_u8le(v.ptr + 8);
    cache->entries = v.ptr + CACHE_KEY_BYTES;
    cache->entry_count = (v.len - CACHE_KEY_BYTES) / CACHE_ENTRY_BYTES;
    cache->hash = farena_push_array(ctx->arena, U8, 2 * n + 1);
    cache->state = farena_push_array(ctx->arena, U1, n + 1, .zero = 1);
    cache->sec_hash = farena_push_array(ctx->arena, U8, 2 * n + 1);
    cache->sec_state = farena_push_array(ctx->arena, U1, n + 1, .zero = 1);
    cache->sec_value = farena_push_array(ctx->arena, U8, n + 1);
    return cache->hash && cache->state && cache->sec_hash && cache->sec_state && cache->sec_value;
}

/* The rests' tokens (known or counted apart) and the summaries' sections'
 * join their inputs' (both threads' tallies joined); a section counted
 * completes its entry, unless its count does not fit one. */
static void cache_settle(Ctx *ctx, Counting *c) {
    U4 n = ctx->req->input_count;
    CountCache *cache = &c->cache;
    U8 *per = c->tally.per_input;
    for (U4 i = 0; cache->hash && i < n; i += 1) {
        U8 section = per[n + i] + per[2 * (U8)n + i];
        if (cache->sec_state[i] == Cache_Counted) {
            if (section >> SECTION_FENCE_SHIFT) cache->sec_state[i] = Cache_None;
            else cache->sec_value[i] |= section;
        }
        per[i] += section;
    }
}

/* vocab or ranks, encoding, count_carry: the counter (0 without vocab or
 * ranks), its carry begun. */
static B4 parse_count_params(Ctx *ctx, BuildOpts *opts, Counting *c, Counting **out) {
    Str8 v;
    *out = 0;
    ctx_param(ctx, "count_carry", &opts->count_carry);
    if (!ctx_param(ctx, "vocab", &v) && !ctx_param(ctx, "ranks", &v)) {
        if (opts->count_carry.len) return ctx_fail(ctx, Code_BadParam, "parameter count_carry: no vocab or ranks to count with");
        return 1;
    }
    U8 bytes = 0;
    for (U4 i = 0; i < ctx->req->input_count; i += 1) {
        Input const *in = &ctx->req->inputs[i];
        bytes += in->kind == InputKind_Inline ? in->data.len : (U8)1 << 20;
    }
    c->tok = tok_counter(ctx, ctx->arena, bytes);
    /* per input, then per input the tokens of its body's rest, then of its summary's section (the count
     * cache: cache_settle joins them) */
    c->tally.per_input = farena_push_array(ctx->arena, U8, 3 * (U8)ctx->req->input_count + 1, .zero = 1);
    if (!c->tok || !c->tally.per_input) return 0;
    if (ctx_param(ctx, "count_cache", &v) && !parse_count_cache(ctx, v, &c->cache)) return 0;
    c->bytes = bytes;
    c->two_threads = opts->two_threads;
    c->carry = (Xar){ .arena = &c->carry_arena };
    c->owner = OWNER_WRAPPER, c->last = '\n';
    if (opts->count_carry.len) {
        c->owner = OWNER_CARRIED, c->last = opts->count_carry.ptr[opts->count_carry.len - 1];
        if (!carry_append(ctx, c, opts->count_carry.ptr, opts->count_carry.len)) return 0;
    }
    *out = c;
    return 1;
}

static B4 write_records(Ctx *ctx, BuildOpts const *opts, Sink const *sink, Counting *count) {
    Request *req = ctx->req;
    ctx_records_begin(ctx, "Ii");
    for (U4 i = 0; i < req->input_count; i += 1) {
        Input const *in = &req->inputs[i];
        if (in->loaded && in->load_errno) ctx_rec_u4(ctx, i), ctx_rec_s4(ctx, in->load_errno);
    }
    ctx_records_end(ctx);
    ctx_records_begin(ctx, "IBQQ");
    for (U4 i = 0; i < req->input_count; i += 1) {
        Input const *in = &req->inputs[i];
        if (in->loaded && !in->load_errno)
            ctx_rec_u4(ctx, i), ctx_rec_u1(ctx, in->skip), ctx_rec_u8(ctx, in->skip_value), ctx_rec_u8(ctx, count ? count->tally.per_input[i] : 0);
    }
    ctx_records_end(ctx);
    ctx_records_begin(ctx, "QiQQis");
    ctx_rec_u8(ctx, sink->written), ctx_rec_s4(ctx, sink->err);
    ctx_rec_u8(ctx, count ? count->tally.tokens : 0), ctx_rec_u8(ctx, count ? count->tally.carried : 0);
    ctx_rec_s4(ctx, count ? count->owner : OWNER_WRAPPER);
    ctx_rec_bytes(ctx, count ? xar_contiguous(&count->carry, ctx->arena) : str8(0, 0));
    if (!ctx_records_end(ctx)) return 0;
    if (!count || !count->cache.hash) return 1;
    CountCache const *cache = &count->cache;
    ctx_records_begin(ctx, "IQQQB");
    for (U4 i = 0; i < req->input_count; i += 1) {
        if (cache->state[i] == Cache_None) continue;
        ctx_rec_u4(ctx, i), ctx_rec_u8(ctx, cache->hash[2 * i]), ctx_rec_u8(ctx, cache->hash[2 * i + 1]);
        ctx_rec_u8(ctx, count->tally.per_input[req->input_count + i]), ctx_rec_u1(ctx, cache->state[i] == Cache_Hit);
    }
    for (U4 i = 0; i < req->input_count; i += 1) {
        if (cache->sec_state[i] != Cache_Counted && cache->sec_state[i] != Cache_Hit) continue;
        ctx_rec_u4(ctx, i), ctx_rec_u8(ctx, cache->sec_hash[2 * i]), ctx_rec_u8(ctx, cache->sec_hash[2 * i + 1]);
        ctx_rec_u8(ctx, cache->sec_value[i]), ctx_rec_u1(ctx, cache->sec_state[i] == Cache_Hit);
    }
    if (!ctx_records_end(ctx)) return 0;
    if (!opts->ahead) return 1;
    ctx_records_begin(ctx, "IQQQ");
    for (U4 i = 0; i < req->input_count; i += 1) {
        if (cache->sec_state[i] != Cache_Ahead) continue;
        ctx_rec_u4(ctx, i), ctx_rec_u8(ctx, cache->sec_hash[2 * i]), ctx_rec_u8(ctx, cache->sec_hash[2 * i + 1]);
        ctx_rec_u8(ctx, cache->sec_value[i]);
    }
    return ctx_records_end(ctx);
}

static B4 aggregate_sections(Ctx *ctx, BuildOpts const *opts, Sink *sink, Arena *scratch, Prefetch *prefetch) {
    FormatDef const *format = &FORMATS[opts->format];
    Request *req = ctx->req;
    if (opts->open) ctx_str8(ctx, opts->tree && opts->format == Format_Json ? str8_lit("{\"files\": [") : format->open);
    B4 first = !opts->continues;
    U8 index = opts->first_index;
    for (U4 i = 0; i < req->input_count && !sink->err; i += 1) {
        Input *input = &req->inputs[i];
        Section sec = { .index = index, .input = i };
        prefetch_wait(prefetch, i);
        if (load_section(ctx, scratch, opts, sink->count, input, &sec)) {
            sink_owner(ctx, sink, (S4)i);
            if (!first) ctx_str8(ctx, format->separator);
            first = 0;
            index += 1;
            format->section(ctx, sink, opts, &sec);
            if (ctx->out->len - sink->body_at >= FLUSH_BYTES) sink_flush(ctx, sink);
            else sink_count(ctx, sink);
            input->skip_value = input->data.len;
        }
        input->data = str8(0, 0);
        arena_reset(scratch);
        prefetch_done(ctx, prefetch, i);
        if (ctx->code != Code_Ok || ctx->arena->failed) return 0;
    }
    sink_owner(ctx, sink, OWNER_WRAPPER);
    if (opts->close && !sink->err) {
        if (opts->tree && !write_footer(ctx, opts, !first)) return 0;
        /* json with a tree: the footer closed the array and the object */
        if (!(opts->tree && opts->format == Format_Json)) ctx_str8(ctx, format->close);
    }
    sink_flush(ctx, sink);
    return ctx->code == Code_Ok && !ctx->arena->failed;
}

B4 op_aggregate(Ctx *ctx) {
    BuildOpts opts = { 0 };
    Counting counting = { 0 }, *count = 0;
    if (!parse_langs(ctx, &opts.langs) || !parse_mode_param(ctx, &opts.mode) || !parse_stream_params(ctx, &opts)
        || !parse_format_params(ctx, &opts) || !parse_count_params(ctx, &opts, &counting, &count)) {
        arena_release(&counting.carry_arena);
        return 0;
    }
    opts.checks.bom_text = !opts.raw;
    Arena scratch = { 0 }, prefetch_arena = { 0 };

    ctx_part_begin(ctx);
    Sink sink = { .fd = opts.out_fd, .body_at = ctx->out->len, .count = count, .fed_to = ctx->out->len,
                  .owner = OWNER_WRAPPER, .temp = &scratch };
    Prefetch *prefetch = prefetch_start(&opts, ctx->req, count, &prefetch_arena);
    B4 ok = aggregate_sections(ctx, &opts, &sink, &scratch, prefetch);
    prefetch_end(prefetch);
    arena_release(&prefetch_arena);
    if (count) ok = pool_end(ctx, count, ok, &scratch) && ok;
    if (count && ok) cache_settle(ctx, count);
    arena_release(&scratch);
    if (ok) {
        if (sink.fd < 0) sink.written = ctx->out->len - sink.body_at;
        ctx_part_end(ctx);
        ok = write_records(ctx, &opts, &sink, count);
    }
    arena_release(&counting.carry_arena);
    return ok;
}
