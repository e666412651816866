/* walk.c: the walk op, the directory walk of `slopfast aggregate` in C
 * (docs/cli.md, "What is taken"; docs/internals.md, "The native walk").
 *
 * Each input's path is a directory argument, walked as slopfast.walk's
 * Python walk walks it (that walk is the oracle: tests/test_walk_native.py
 * compares the two, and both with git): entries in the byte order of their
 * path ("name/" for a directory), hidden names and .git left out, git's
 * ignore rules (each directory's .gitignore, read here, over the layers the
 * caller sends: core.excludesFile, info/exclude, the .gitignore files above
 * the argument), a tracked file kept whatever the rules say (the index, read
 * here), the tool's own rules (.slopfastignore, the default ignores), then
 * --exclude and --include. Matching is git's wildmatch as slopfast/ignore.py
 * compiles it, here as a small NFA over tokens: '*' '?' '**' brackets with
 * the POSIX classes, a malformed pattern matching nothing.
 *
 * Directories are opened with openat relative to their parent's descriptor
 * (O_NOFOLLOW: a directory swapped for a symlink is not entered), or on
 * Windows by path, each held open so that it cannot be replaced (the
 * platform section says how). Nothing
 * is read but directories, ignore files and the index: files are reported,
 * and the aggregate op opens each once. Symlinks are reported as such: the
 * caller applies its symlink policy to them (they are rare).
 *
 * Parameters: hidden (0/1), git (0/1: git's rules in force), index (the
 * index file; absent: no repository), hash_len (20 or 32), prefix (what the
 * shown paths start with), offset (the argument's path below the top of
 * its work tree, "" or "a/b/"), layers (the rules from outside the tree:
 * repeated U1 group (0 git, 1 own, 2 exclude, 3 include), U4 length + base,
 * U4 length + source, U4 count, count times U4 length + pattern; lowest
 * priority first within a group).
 *
 * One record part "BsqIss", a row per event in walk order:
 *   0 file     path: a regular file (by its directory entry)
 *   1 symlink  path
 *   2 special  path, value st_mode
 *   3 unreadable path, value errno (a directory that could not be listed)
 *   4 left out path, value what (0 hidden, 1 git, 2 own rules, 3 exclude,
 *              4 include), index (exclude: the pattern), source and pattern
 *              of the deciding rule (git, own)
 *   5 used     value 0 (--exclude) or 1 (--include), index: the pattern
 *   6 walked   the argument was listed (after its events)
 *   7 bail     path: why the caller must walk this argument itself (a
 *              nested repository, nesting too deep; on Windows a
 *              directory reparse point other than a junction, or a name
 *              not in UTF-16): the rows before it of this input are to be
 *              dropped */
#if !defined(_WIN32)
#  if !defined(_POSIX_C_SOURCE)
#    define _POSIX_C_SOURCE 200809L   /* openat, fdopendir, fstatat */
#  endif
#  if !defined(_DEFAULT_SOURCE)
#    define _DEFAULT_SOURCE           /* d_type and DT_* (glibc) */
#  endif
#  if defined(__APPLE__)
#    define _DARWIN_C_SOURCE
#  endif
#endif
#include "op.h"

#include <errno.h>
#include <stdlib.h>

#if defined(_WIN32)
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>
#else
#  include <dirent.h>
#  include <fcntl.h>
#  include <sys/stat.h>
#  include <unistd.h>
#endif

/* ---- rules: git's wildmatch as ignore.py compiles it --------------------- */

Enum_(TokKind) {
    Tok_Lit,          /* one byte */
    Tok_Any,          /* ? : a byte but '/' */
    Tok_Set,          /* [...] : a byte of the set (never '/') */
    Tok_Fold,         /* a letter, either case (byte: its lower case; core.ignoreCase) */
    Tok_Star,         /* * : bytes but '/' */
    Tok_DStar,        /* ** at the end (or before \/): any bytes */
    Tok_DSlashOpt,    /* the entry of '**' '/': skip it, or enter its loop (the next token) */
    Tok_DSlashLoop,   /* any bytes, then the '/' that leaves */
};

Struct_(Tok) { U1 kind; U1 byte; U4 set; };


Struct_(Rule) {
    Str8 pattern;           /* as written (trimmed), '!' and a trailing '/' included */
    B4 negative, dir_only, basename, never;
    Tok *toks;
    U4 tok_count;
    U1 (*sets)[32];         /* the bracket sets, 256 bits each */
    U4 head, tail;          /* how many tokens of one byte each it starts and ends with */
};

Struct_(RuleCompiler) { Tok *toks; U4 count, cap; U1 (*sets)[32]; U4 set_count, set_cap; B4 never, fold; };

static void rc_tok(RuleCompiler *rc, U1 kind, U1 byte, U4 set) {
    if (rc->count < rc->cap) rc->toks[rc->count] = (Tok){ kind, byte, set };
    rc->count += 1;
}

static char const *const CLASS_NAMES[] = {
    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper", "xdigit",
};

/* git's sane_ctype classes, ASCII only (ignore.py's _CLASSES) */
static B4 class_has(U4 which, U4 c) {
    B4 digit = c >= '0' && c <= '9', lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
    switch (which) {
    case 0: return digit || lower || upper;
    case 1: return lower || upper;
    case 2: return c == ' ' || c == '\t';
    case 3: return c < 32 || c == 127;
    case 4: return digit;
    case 5: return c >= 0x21 && c < 0x7f;
    case 6: return lower;
    case 7: return c >= 0x20 && c < 0x7f;
    case 8: return c >= 0x21 && c < 0x7f && !digit && !lower && !upper;
    case 9: return c == '\t' || c == '\n' || c == '\r' || c == ' ';
    case 10: return upper;
    default: return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
}

IA_ void set_add(U1 *set, U4 c) { set[c >> 3] |= (U1)(1u << (c & 7)); }
IA_ B4 set_has(U1 const *set, U4 c) { return (set[c >> 3] >> (c & 7)) & 1; }
IA_ B4 is_upper(U4 c) { return c >= 'A' && c <= 'Z'; }
IA_ B4 is_lower(U4 c) { return c >= 'a' && c <= 'z'; }
IA_ U1 fold_byte(U4 c) { return (U1)(is_upper(c) ? c | 0x20 : c); }   /* core.ignoreCase: ASCII only */

/* A literal pattern byte (ignore.py's _lit): with fold, a letter matches either case. */
static void rc_lit(RuleCompiler *rc, U1 c) {
    if (rc->fold && (is_upper(c) || is_lower(c))) rc_tok(rc, Tok_Fold, (U1)(c | 0x20), 0);
    else rc_tok(rc, Tok_Lit, c, 0);
}

/* The bracket at p[*at] == '[' (ignore.py's _bracket, git's rules). */
static void rc_bracket(RuleCompiler *rc, Str8 p, U8 *at) {
    U8 n = p.len, i = *at + 1;
    if (i >= n) { rc->never = 1; return; }
    U1 set[32] = { 0 }, ranges[32] = { 0 }, classes[32] = { 0 };   /* listed bytes, ranges, classes */
    B4 upper_class = 0;
    B4 negated = p.ptr[i] == '!' || p.ptr[i] == '^';
    if (negated) i += 1;
    U4 prev = 0;
    for (;;) {
        if (i >= n) { rc->never = 1; return; }
        U4 c = p.ptr[i];
        if (c == '\\') {
            i += 1;
            if (i >= n) { rc->never = 1; return; }
            c = p.ptr[i];
            set_add(set, c);
        } else if (c == '-' && prev && i + 1 < n && p.ptr[i + 1] != ']') {
            i += 1;
            U4 hi = p.ptr[i];
            if (hi == '\\') {
                i += 1;
                if (i >= n) { rc->never = 1; return; }
                hi = p.ptr[i];
            }
            for (U4 b = prev; b <= hi; b += 1) set_add(ranges, b);
            c = 0;
        } else if (c == '[' && i + 1 < n && p.ptr[i + 1] == ':') {
            U8 s = i + 2, j = s;
            while (j < n && p.ptr[j] != ']') j += 1;
            if (j >= n) { rc->never = 1; return; }
            if (j == s || p.ptr[j - 1] != ':') {
                set_add(set, '[');
                c = '[';
            } else {
                Str8 name = str8(p.ptr + s, j - 1 - s);
                U4 which = count_of(CLASS_NAMES);
                for (U4 k = 0; k < count_of(CLASS_NAMES); k += 1)
                    if (str8_eq(name, str8((U1 const *)CLASS_NAMES[k], strlen(CLASS_NAMES[k])))) which = k;
                if (which == count_of(CLASS_NAMES)) { rc->never = 1; return; }
                for (U4 b = 0; b < 128; b += 1) if (class_has(which, b)) set_add(classes, b);
                upper_class = upper_class || which == 10;
                i = j;
                c = 0;
            }
        } else {
            set_add(set, c);
        }
        prev = c;
        i += 1;
        if (i < n && p.ptr[i] == ']') break;
    }
    if (rc->fold) {
        /* ignore.py's _bracket with fold: git decides on the byte folded to lower case */
        U1 folded[32] = { 0 };
        for (U4 b = 0; b < 256; b += 1) {
            U4 t = fold_byte(b);
            if (set_has(set, t) || set_has(ranges, t) || set_has(classes, t)
                || (is_lower(t) && (set_has(ranges, t - 0x20) || upper_class)))
                set_add(folded, b);
        }
        memcpy(set, folded, sizeof set);
    } else {
        for (U4 k = 0; k < 32; k += 1) set[k] |= ranges[k] | classes[k];
    }
    if (negated) for (U4 k = 0; k < 32; k += 1) set[k] = (U1)~set[k];
    set[0] &= (U1)~1u;                 /* never NUL (no name holds one) */
    set['/' >> 3] &= (U1)~(1u << ('/' & 7));
    if (rc->set_count < rc->set_cap) memcpy(rc->sets[rc->set_count], set, 32);
    rc_tok(rc, Tok_Set, 0, rc->set_count);
    rc->set_count += 1;
    *at = i + 1;
}

/* ignore.py's _wild: git's dowild with WM_PATHNAME, p's start counting as after a '/'. */
static void rc_wild(RuleCompiler *rc, Str8 p) {
    U8 n = p.len, i = 0;
    while (i < n && !rc->never) {
        U1 c = p.ptr[i];
        if (c == '\\') {
            i += 1;
            if (i >= n) { rc->never = 1; return; }
            /* git compares an escaped byte unfolded with the folded text */
            if (rc->fold && is_upper(p.ptr[i])) { rc->never = 1; return; }
            rc_lit(rc, p.ptr[i]);
            i += 1;
        } else if (c == '?') {
            rc_tok(rc, Tok_Any, 0, 0);
            i += 1;
        } else if (c == '*') {
            U8 j = i;
            while (j < n && p.ptr[j] == '*') j += 1;
            if (j - i >= 2 && (i == 0 || p.ptr[i - 1] == '/')
                && (j == n || p.ptr[j] == '/' || (p.ptr[j] == '\\' && j + 1 < n && p.ptr[j + 1] == '/'))) {
                if (j < n && p.ptr[j] == '/') {
                    rc_tok(rc, Tok_DSlashOpt, 0, 0);
                    rc_tok(rc, Tok_DSlashLoop, 0, 0);
                    j += 1;
                } else {
                    rc_tok(rc, Tok_DStar, 0, 0);
                }
            } else {
                rc_tok(rc, Tok_Star, 0, 0);
            }
            i = j;
        } else if (c == '[') {
            rc_bracket(rc, p, &i);
        } else {
            rc_lit(rc, c);
            i += 1;
        }
    }
}

static U8 simple_length(Str8 p) {
    for (U8 i = 0; i < p.len; i += 1) {
        U1 c = p.ptr[i];
        if (c == '*' || c == '?' || c == '[' || c == '\\') return i;
    }
    return p.len;
}

/* One pattern as ignore.py's parse_rule reads it (fold: core.ignoreCase). 0
 * when memory runs out. */
static B4 rule_parse(Arena *arena, Str8 pattern, Rule *r, B4 fold) {
    memset(r, 0, sizeof *r);
    r->pattern = pattern;
    Str8 p = pattern;
    r->negative = p.len && p.ptr[0] == '!';
    if (r->negative) p = str8_skip(p, 1);
    r->dir_only = p.len && p.ptr[p.len - 1] == '/';
    if (r->dir_only) p = str8_prefix(p, p.len - 1);
    r->basename = !p.len || !memchr(p.ptr, '/', p.len);
    if (!p.len) { r->never = 1; return 1; }
    U4 brackets = 0;
    for (U8 i = 0; i < p.len; i += 1) brackets += p.ptr[i] == '[';
    RuleCompiler rc = { .fold = fold };
    rc.cap = (U4)p.len * 2 + 2;        /* a byte gives at most two tokens */
    rc.set_cap = brackets;
    rc.toks = farena_push_array(arena, Tok, rc.cap);
    rc.sets = brackets ? (U1 (*)[32])farena_push(arena, (U8)brackets * 32, .alignment = 1) : 0;
    if (!rc.toks || (brackets && !rc.sets)) return 0;
    if (r->basename) {
        rc_wild(&rc, p);
    } else {
        if (p.ptr[0] == '/') p = str8_skip(p, 1);
        U8 k = simple_length(p);
        for (U8 i = 0; i < k; i += 1) rc_lit(&rc, p.ptr[i]);
        rc_wild(&rc, str8_skip(p, k));
    }
    r->never = rc.never;
    r->toks = rc.toks, r->tok_count = rc.count, r->sets = rc.sets;
    if (r->never) return 1;
    /* the tokens of one byte each (literal, '?', a bracket) at either end: a
     * match's first and last bytes are theirs, and only the middle needs the NFA */
    U4 h = 0, t = 0;
    while (h < rc.count && rc.toks[h].kind <= Tok_Fold) h += 1;
    while (t < rc.count - h && rc.toks[rc.count - 1 - t].kind <= Tok_Fold) t += 1;
    r->head = h, r->tail = t;
    return 1;
}

/* Does r match all of t? `cur` and `nxt` have room for tok_count + 1 states. */
IA_ B4 tok_byte(Rule const *r, Tok const *x, U1 c) {
    switch (x->kind) {
    case Tok_Lit: return c == x->byte;
    case Tok_Any: return c != '/';
    case Tok_Fold: return (c | 0x20) == x->byte;   /* x->byte is a lower-case letter */
    default: return set_has(r->sets[x->set], c);
    }
}

static B4 rule_match(Rule const *r, Str8 t, U1 *cur, U1 *nxt) {
    if (r->never) return 0;
    U4 h = r->head, tl = r->tail;
    if (t.len < (U8)h + tl) return 0;
    for (U4 i = 0; i < h; i += 1) if (!tok_byte(r, &r->toks[i], t.ptr[i])) return 0;
    U8 end = t.len - tl;
    for (U4 i = 0; i < tl; i += 1) if (!tok_byte(r, &r->toks[r->tok_count - tl + i], t.ptr[end + i])) return 0;
    /* the middle: tokens [h, tok_count - tl) over bytes [h, end) */
    U4 m = r->tok_count - h - tl;
    Tok const *tk = r->toks + h;
    t = str8(t.ptr + h, end - h);
    if (m == 0) return t.len == 0;
    if (m == 1 && tk[0].kind == Tok_Star) return !t.len || !memchr(t.ptr, '/', t.len);
    if (m == 1 && tk[0].kind == Tok_DStar) return 1;
    memset(cur, 0, m + 1);
    cur[0] = 1;
    for (U4 s = 0; s < m; s += 1) {   /* epsilon moves only go forward: one sweep closes */
        if (!cur[s]) continue;
        U1 k = tk[s].kind;
        if (k == Tok_Star || k == Tok_DStar) cur[s + 1] = 1;
        else if (k == Tok_DSlashOpt) cur[s + 1] = 1, cur[min_(s + 2, m)] = 1;
    }
    for (U8 i = 0; i < t.len; i += 1) {
        U1 c = t.ptr[i];
        memset(nxt, 0, m + 1);
        B4 any = 0;
        for (U4 s = 0; s < m; s += 1) {
            if (!cur[s]) continue;
            Tok const *x = &tk[s];
            switch (x->kind) {
            case Tok_Lit: case Tok_Any: case Tok_Set: case Tok_Fold:
                if (tok_byte(r, x, c)) nxt[s + 1] = 1, any = 1;
                break;
            case Tok_Star: if (c != '/') nxt[s] = 1, any = 1; break;
            case Tok_DStar: nxt[s] = 1, any = 1; break;
            case Tok_DSlashLoop: nxt[s] = 1, any = 1; if (c == '/') nxt[s + 1] = 1; break;
            default: break;
            }
        }
        if (!any) return 0;
        for (U4 s = 0; s < m; s += 1) {
            if (!nxt[s]) continue;
            U1 k = tk[s].kind;
            if (k == Tok_Star || k == Tok_DStar) nxt[s + 1] = 1;
            else if (k == Tok_DSlashOpt) nxt[s + 1] = 1, nxt[min_(s + 2, m)] = 1;
        }
        U1 *swap = cur; cur = nxt; nxt = swap;
    }
    return cur[m];
}

/* ---- rule lists ------------------------------------------------------------ */

/* A source of rules (an ignore file, or the command's patterns), relative to
 * `base`; `parent` is the next lower-priority layer of its chain. */
Struct_(Layer) { Layer *parent; Str8 base; Str8 source; Rule *rules; U4 count; };

Struct_(Walker) {
    Ctx *ctx;
    Arena *arena;           /* what lasts the call: the rules of the request, the index, the answer */
    Arena scratch;          /* what lasts a directory: its listing and ignore files, popped with it */
    U1 *nfa_a, *nfa_b;      /* NFA states, room for max_toks + 1 */
    U4 nfa_cap;
    B4 hidden, git;
    B4 fold;                /* core.ignoreCase: the ignore files' patterns fold case */
    Str8 index_path;        /* empty: no repository */
    U8 hash_len;
    B4 index_loaded;
    Str8 *tracked;          /* sorted (folded with fold) */
    U1 *fold_buf;           /* a path folded for a lookup */
    U8 fold_cap;
    U8 tracked_count;
    Str8 prefix, offset;
    Layer *git_base, *own_base;    /* the chains from outside the tree */
    Layer exclude, include;        /* count 0: none */
    B4 has_exclude, has_include;
    U1 *exclude_used, *include_used;
    Str8 bail;
    Xar files;              /* the regular files' paths, each NUL-terminated (in files_arena) */
    Arena files_arena;      /* freed once the list is in the answer, before the answer is encoded */
    U4 file_count;
};

/* Did memory run out, in any of the walk's arenas? (op_walk reports it as the call's) */
static B4 walk_failed(Walker const *w) { return w->ctx->arena->failed || w->scratch.failed || w->files_arena.failed; }

/* Room in the NFA buffers for a rule. */
static B4 nfa_room(Walker *w, U4 toks) {
    if (toks + 1 <= w->nfa_cap) return 1;
    U4 cap = max_(toks + 1, w->nfa_cap * 2);
    w->nfa_a = farena_push(w->arena, cap, .alignment = 1);
    w->nfa_b = farena_push(w->arena, cap, .alignment = 1);
    if (!w->nfa_a || !w->nfa_b) return 0;
    w->nfa_cap = cap;
    return 1;
}

static B4 layer_rules(Walker *w, Arena *arena, Layer *layer, Str8 const *patterns, U4 count, B4 fold) {
    layer->rules = farena_push_array(arena, Rule, count ? count : 1);
    if (!layer->rules) return 0;
    layer->count = count;
    for (U4 i = 0; i < count; i += 1) {
        if (!rule_parse(arena, patterns[i], &layer->rules[i], fold)) return 0;
        if (!nfa_room(w, layer->rules[i].tok_count)) return 0;
    }
    return 1;
}

/* ignore.py's _trim_trailing_spaces */
static Str8 trim_trailing_spaces(Str8 line) {
    if (!line.len || line.ptr[line.len - 1] != ' ') return line;
    S8 last_space = -1;
    for (U8 i = 0; i < line.len; i += 1) {
        U1 c = line.ptr[i];
        if (c == ' ') {
            if (last_space < 0) last_space = (S8)i;
        } else if (c == '\\') {
            i += 1;
            if (i >= line.len) return line;
            last_space = -1;
        } else {
            last_space = -1;
        }
    }
    return last_space < 0 ? line : str8_prefix(line, (U8)last_space);
}

/* The patterns of an ignore file's bytes (ignore.py's parse_lines); 0 when memory runs out. */
static B4 parse_lines(Arena *arena, Str8 data, Str8 **out, U4 *count) {
    if (data.len >= 3 && data.ptr[0] == 0xef && data.ptr[1] == 0xbb && data.ptr[2] == 0xbf) data = str8_skip(data, 3);
    U8 lines = 1;
    for (U8 i = 0; i < data.len; i += 1) lines += data.ptr[i] == '\n';
    if (lines > 0xffffffffu) lines = 0xffffffffu;
    Str8 *pats = farena_push_array(arena, Str8, lines);
    if (!pats) return 0;
    U4 n = 0;
    U8 at = 0;
    while (at <= data.len && n < lines) {
        U1 const *nl = at < data.len ? memchr(data.ptr + at, '\n', data.len - at) : 0;
        U8 end = nl ? (U8)(nl - data.ptr) : data.len;
        Str8 raw = str8(data.ptr + at, end - at);
        at = end + 1;
        if (!raw.len || raw.ptr[0] == '#') { if (!nl) break; continue; }
        Str8 line = raw.ptr[raw.len - 1] == '\r' ? str8_prefix(raw, raw.len - 1) : raw;
        U1 const *nul = line.len ? memchr(line.ptr, 0, line.len) : 0;
        if (nul) line = str8_prefix(line, (U8)(nul - line.ptr));
        pats[n++] = trim_trailing_spaces(line);
        if (!nl) break;
    }
    *out = pats, *count = n;
    return 1;
}

/* The index of the last rule of `layer` matching (path, name), or -1. */
static S8 layer_last(Walker *w, Layer const *layer, Str8 path, Str8 name, B4 is_dir) {
    Str8 below = str8_skip(path, layer->base.len);
    for (U4 k = layer->count; k-- > 0;) {
        Rule const *r = &layer->rules[k];
        if (r->never || (r->dir_only && !is_dir)) continue;
        if (rule_match(r, r->basename ? name : below, w->nfa_a, w->nfa_b)) return (S8)k;
    }
    return -1;
}

/* ignore.py's deciding_rule over a chain (deepest first): the layer and rule
 * that ignore the path, or 0 when nothing does. */
static Layer const *chain_decide(Walker *w, Layer const *top, Str8 path, Str8 name, B4 is_dir, U4 *rule) {
    for (Layer const *l = top; l; l = l->parent) {
        S8 k = layer_last(w, l, path, name, is_dir);
        if (k >= 0) {
            if (l->rules[k].negative) return 0;
            *rule = (U4)k;
            return l;
        }
    }
    return 0;
}

/* ---- the platform: files and directories ------------------------------------ */

/* POSIX opens a directory's entries relative to its descriptor (openat,
 * O_NOFOLLOW). Windows opens them by path, each directory of the path held
 * open without FILE_SHARE_DELETE, so that it cannot be renamed or replaced
 * while the walk is below it; paths are UTF-8, made UTF-16 for the calls,
 * and joined as os.path.join joins them there. */
#if defined(_WIN32)
typedef HANDLE OsHandle;
#  define OS_NONE INVALID_HANDLE_VALUE
#  define OS_CWD INVALID_HANDLE_VALUE      /* read_whole: the path alone names the file */
#  define PATH_SEP '\\'
IA_ B4 needs_sep(U1 const *p, U8 n) { return !(n && (p[n - 1] == '/' || p[n - 1] == '\\' || p[n - 1] == ':')); }
#else
typedef S4 OsHandle;
#  define OS_NONE (-1)
#  define OS_CWD AT_FDCWD
#  define PATH_SEP '/'
IA_ B4 needs_sep(U1 const *p, U8 n) { return !(n && p[n - 1] == '/'); }
#endif

#if defined(_WIN32)
/* The errno CPython gives for the codes a walk meets (winerror_to_errno). */
static S4 errno_of(DWORD e) {
    switch (e) {
    case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: case ERROR_INVALID_NAME: case ERROR_BAD_NETPATH: return ENOENT;
    case ERROR_ACCESS_DENIED: case ERROR_SHARING_VIOLATION: case ERROR_LOCK_VIOLATION: return EACCES;
    case ERROR_TOO_MANY_OPEN_FILES: return EMFILE;
    case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: return ENOMEM;
    case ERROR_DIRECTORY: return ENOTDIR;
    case ERROR_FILENAME_EXCED_RANGE: return ENAMETOOLONG;
    default: return EIO;
    }
}

/* path[0, n) as a NUL-terminated UTF-16 path in out (room for n + 1); 0 when it is not UTF-8 or holds a NUL. */
static B4 wide_path(U1 const *path, U8 n, wchar_t *out) {
    if (n > 0x7fffffff || (n && memchr(path, 0, n))) return 0;
    int got = n ? MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, (char const *)path, (int)n, out, (int)n) : 0;
    if (n && got <= 0) return 0;
    out[got] = 0;
    return 1;
}

static S8 read_some(OsHandle h, U1 *buf, U8 n) {
    DWORD got = 0;
    return ReadFile(h, buf, (DWORD)min_(n, (U8)1 << 30), &got, 0) ? (S8)got : -1;
}

static HANDLE open_for_reading(wchar_t const *path, DWORD flags) {
    return CreateFileW(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, 0, OPEN_EXISTING,
                       FILE_ATTRIBUTE_NORMAL | flags, 0);
}

/* `path`, opened for reading, its size when it is a regular file, else
 * OS_NONE. With nofollow a symlink is refused, as git's open_nofollow
 * refuses it where there is no O_NOFOLLOW; any other reparse point (a
 * deduplicated or cloud file) is read through. `dir` and `name` are POSIX's. */
static OsHandle open_regular(Arena *arena, OsHandle dir, char const *name, Str8 path, B4 nofollow, U8 *size) {
    (void)dir, (void)name;
    wchar_t *wide = farena_push(arena, (path.len + 1) * sizeof(wchar_t), .alignment = sizeof(wchar_t));
    if (!wide || !wide_path(path.ptr, path.len, wide)) return OS_NONE;
    HANDLE h = open_for_reading(wide, nofollow ? FILE_FLAG_OPEN_REPARSE_POINT : 0);
    if (h != INVALID_HANDLE_VALUE && nofollow) {
        FILE_ATTRIBUTE_TAG_INFO tag;
        B4 known = GetFileInformationByHandleEx(h, FileAttributeTagInfo, &tag, sizeof tag) != 0;
        if (!known || (tag.FileAttributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
            CloseHandle(h);
            h = known && tag.ReparseTag != IO_REPARSE_TAG_SYMLINK ? open_for_reading(wide, 0) : INVALID_HANDLE_VALUE;
        }
    }
    if (h == INVALID_HANDLE_VALUE) return OS_NONE;
    BY_HANDLE_FILE_INFORMATION info;
    if (GetFileType(h) != FILE_TYPE_DISK || !GetFileInformationByHandle(h, &info) || (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)) {
        CloseHandle(h);
        return OS_NONE;
    }
    *size = (U8)info.nFileSizeHigh << 32 | info.nFileSizeLow;
    return h;
}

static void os_close(OsHandle *h) { if (*h != OS_NONE) CloseHandle(*h), *h = OS_NONE; }
#else
static S8 read_some(OsHandle fd, U1 *buf, U8 n) {
    for (;;) {
        ssize_t got = read(fd, buf, (size_t)min_(n, (U8)1 << 30));
        if (got < 0 && errno == EINTR) continue;
        return got;
    }
}

static OsHandle open_regular(Arena *arena, OsHandle dir, char const *name, Str8 path, B4 nofollow, U8 *size) {
    (void)arena, (void)path;
    S4 fd = openat(dir, name, (nofollow ? O_NOFOLLOW : 0) | O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return OS_NONE;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return OS_NONE; }
    *size = (U8)st.st_size;
    return fd;
}

static void os_close(OsHandle *fd) { if (*fd >= 0) close(*fd), *fd = OS_NONE; }
#endif

/* All of a regular file (at most LIMIT_INPUT_BYTES): `name` in the directory
 * `dir` (POSIX), or `path` (Windows); 0 when it cannot be opened or read or
 * is not a regular file. */
static B4 read_whole(Arena *arena, OsHandle dir, char const *name, Str8 path, B4 nofollow, Str8 *out) {
    U8 size = 0;
    OsHandle h = open_regular(arena, dir, name, path, nofollow, &size);
    if (h == OS_NONE) return 0;
    B4 ok = size <= LIMIT_INPUT_BYTES;
    U8 cap = ok ? size + 1 : 0, len = 0;
    U1 *buf = ok ? farena_push(arena, cap, .alignment = 1) : 0;
    ok = ok && buf;
    while (ok) {
        if (len == cap) {              /* it grew: twice the room */
            if (cap > LIMIT_INPUT_BYTES) { ok = 0; break; }
            U1 *more = farena_push(arena, cap * 2, .alignment = 1);
            if (!more) { ok = 0; break; }
            memcpy(more, buf, len);
            buf = more, cap *= 2;
        }
        S8 n = read_some(h, buf + len, cap - len);
        if (n < 0) { ok = 0; break; }
        if (n == 0) break;
        len += (U8)n;
    }
    os_close(&h);
    if (ok) *out = str8(buf, len);
    return ok;
}

/* ---- the index ------------------------------------------------------------- */

IA_ U4 be32(U1 const *p) { return (U4)p[0] << 24 | (U4)p[1] << 16 | (U4)p[2] << 8 | p[3]; }
IA_ U2 be16(U1 const *p) { return (U2)(p[0] << 8 | p[1]); }

static int str8_cmp(void const *a, void const *b) {
    Str8 const *x = a, *y = b;
    U8 n = min_(x->len, y->len);
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* ignore.py's read_index: the sorted paths of the index, versions 2 to 4,
 * gitlinks left out; none when it is missing or not in a form read here. */
static void index_parse(Walker *w, Str8 data) {
    U8 hash = w->hash_len, len = data.len;
    if (len < 12 || memcmp(data.ptr, "DIRC", 4) != 0) return;
    U4 version = be32(data.ptr + 4), count = be32(data.ptr + 8);
    if (version < 2 || version > 4 || len < hash) return;
    U8 fixed = 40 + hash, end_of_entries = len - hash, pos = 12;
    if (count > end_of_entries / (fixed + 2) + 1) return;
    Str8 *names = farena_push_array(w->arena, Str8, count ? count : 1);
    if (!names) return;
    U8 n = 0;
    Str8 prev = str8(0, 0);
    for (U4 e = 0; e < count; e += 1) {
        if (pos + fixed + 2 > end_of_entries) return;
        U4 mode = be32(data.ptr + pos + 24);
        U2 flags = be16(data.ptr + pos + fixed);
        U8 p = pos + fixed + 2;
        if (flags & 0x4000) {
            if (version < 3) return;
            p += 2;
        }
        Str8 name;
        if (version == 4) {
            /* _varint: IndexError past the end */
            if (p >= len) return;
            U8 c = data.ptr[p++], strip = c & 127;
            while (c & 128) {
                strip += 1;
                if (p >= len || strip > ((U8)1 << 56)) return;
                c = data.ptr[p++];
                strip = (strip << 7) + (c & 127);
            }
            U1 const *nul = p < len ? memchr(data.ptr + p, 0, len - p) : 0;
            if (!nul) return;
            U8 end = (U8)(nul - data.ptr);
            if (strip > prev.len) return;
            U8 keep = prev.len - strip, tail = end - p;
            U1 *buf = farena_push(w->arena, keep + tail + 1, .alignment = 1);
            if (!buf) return;
            if (keep) memcpy(buf, prev.ptr, keep);
            if (tail) memcpy(buf + keep, data.ptr + p, tail);
            name = str8(buf, keep + tail);
            pos = end + 1;
        } else {
            U1 const *nul = p < len ? memchr(data.ptr + p, 0, len - p) : 0;
            if (!nul) return;
            U8 end = (U8)(nul - data.ptr);
            name = str8(data.ptr + p, end - p);
            pos += (p - pos + name.len + 8) & ~(U8)7;
        }
        prev = name;
        if ((mode & 0170000) != 0160000) names[n++] = name;
    }
    for (U8 ext = pos; ext + 8 <= end_of_entries;) {   /* a split index cannot be read here */
        if (memcmp(data.ptr + ext, "link", 4) == 0) return;
        ext += 8 + (U8)be32(data.ptr + ext + 4);
    }
    if (w->fold) {   /* looked up folded (ignore.py's Repo.tracked) */
        for (U8 i = 0; i < n; i += 1) {
            U1 *low = farena_push(w->arena, names[i].len ? names[i].len : 1, .alignment = 1);
            if (!low) return;
            for (U8 j = 0; j < names[i].len; j += 1) low[j] = fold_byte(names[i].ptr[j]);
            names[i].ptr = low;
        }
    }
    qsort(names, (size_t)n, sizeof *names, str8_cmp);
    w->tracked = names, w->tracked_count = n;
}

static void index_load(Walker *w) {
    if (w->index_loaded) return;
    w->index_loaded = 1;
    if (!w->index_path.len) return;
    char *path = farena_push(w->arena, w->index_path.len + 1, .alignment = 1);
    if (!path) return;
    memcpy(path, w->index_path.ptr, w->index_path.len);
    path[w->index_path.len] = 0;
    if (memchr(path, 0, w->index_path.len)) return;
    Str8 data;
    if (read_whole(w->arena, OS_CWD, path, w->index_path, 0, &data)) index_parse(w, data);
}

/* The first tracked path >= key. */
static U8 tracked_lower_bound(Walker *w, Str8 key) {
    U8 lo = 0, hi = w->tracked_count;
    while (lo < hi) {
        U8 mid = lo + (hi - lo) / 2;
        if (str8_cmp(&w->tracked[mid], &key) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Is `path` tracked (a file), or some tracked path below it (a directory)?
 * `path` is followed in memory by room for one more byte (the '/'). With
 * fold it is looked up folded, from a copy. */
static B4 tracked(Walker *w, U1 *path, U8 len, B4 is_dir) {
    index_load(w);
    if (walk_failed(w) || !w->tracked_count) return 0;
    if (w->fold) {
        if (len + 1 > w->fold_cap) {
            w->fold_cap = max_(len + 1, 2 * w->fold_cap);
            w->fold_buf = farena_push(w->arena, w->fold_cap, .alignment = 1);
            if (!w->fold_buf) { w->fold_cap = 0; return 0; }
        }
        for (U8 j = 0; j < len; j += 1) w->fold_buf[j] = fold_byte(path[j]);
        path = w->fold_buf;
    }
    if (!is_dir) {
        Str8 key = str8(path, len);
        U8 k = tracked_lower_bound(w, key);
        return k < w->tracked_count && str8_eq(w->tracked[k], key);
    }
    U1 saved = path[len];
    path[len] = '/';
    Str8 key = str8(path, len + 1);
    U8 k = tracked_lower_bound(w, key);
    B4 yes = k < w->tracked_count && w->tracked[k].len >= key.len && memcmp(w->tracked[k].ptr, key.ptr, key.len) == 0;
    path[len] = saved;
    return yes;
}

/* ---- the walk ---------------------------------------------------------------- */

Enum_(Event) {
    Event_File = 0, Event_Symlink = 1, Event_Special = 2, Event_Unreadable = 3, Event_LeftOut = 4,
    Event_Used = 5, Event_Walked = 6, Event_Bail = 7,
};
Enum_(Why) { Why_Hidden = 0, Why_Git = 1, Why_Own = 2, Why_Exclude = 3, Why_Include = 4 };

/* Past these the caller walks the argument itself: its walk builds paths
 * from the argument (ENAMETOOLONG past PATH_MAX), this one opens each
 * directory relative to its parent and holds a descriptor per level. */
enum { WALK_MAX_DEPTH = 128, WALK_MAX_PATH = 3072 };

/* The scratch's first block: the listings of a path of directories usually
 * fit (about 70 bytes an entry), so leaving one frees no block. (Test
 * builds keep their small blocks: fail_after then reaches the listings.) */
#ifdef SLOPFAST_TEST_HOOKS
enum { WALK_SCRATCH_BYTES = 0 };
#else
enum { WALK_SCRATCH_BYTES = 1 << 20 };
#endif

Enum_(EntType) { Ent_Unknown, Ent_Dir, Ent_File, Ent_Link, Ent_Other };

Struct_(Entry) { Str8 name; U1 type; };

Struct_(Frame) {
    OsHandle dir;              /* open from its listing until the walk leaves it */
    Entry *entries;
    U4 count, next;
    U8 rel_len;                /* the directory's path below the argument: buf[offset.len, +rel_len), "" or "a/b/" */
    U8 dir_len;                /* its path as the caller joins it: dirpath[0, dir_len) */
    Layer *git, *own;          /* the deepest layer of each chain */
    ArenaMark mark;            /* the scratch before this directory (its listing, its layers) */
    Layer const *tracked_only; /* git ignores this directory: only tracked paths below (the rule's layer) */
    U4 tracked_rule;
    B4 include_all;
};

Struct_(WalkState) {
    Walker *w;
    U1 *buf;                   /* offset + rel + name: the path below the work tree's top */
    U8 buf_cap;
    U1 *show;                  /* prefix + rel + name */
    U1 *dirpath;               /* the argument joined with rel (the sources' paths) */
    Frame *frames;
    U4 depth;
    U4 dirs;                   /* directories entered (fuzz builds cap them) */
#if defined(_WIN32)
    wchar_t *wide;             /* dirpath in UTF-16 */
    U1 *listing;               /* LISTING_BYTES of a directory's entries */
    U1 *name8;                 /* an entry's name in UTF-8 */
#endif
};

/* A row; a regular file's path goes to the file list instead (part 1). */
static B4 emit(Walker *w, U1 kind, Str8 path, S8 value, U4 index, Str8 source, Str8 pattern) {
    Ctx *ctx = w->ctx;
    if (kind == Event_File) {
        w->file_count += 1;
        return xar_str8(&w->files, path) && xar_byte(&w->files, 0);
    }
    return ctx_rec_u4(ctx, w->file_count) && ctx_rec_u1(ctx, kind) && ctx_rec_bytes(ctx, path) && ctx_rec_s8(ctx, value) && ctx_rec_u4(ctx, index)
        && ctx_rec_bytes(ctx, source) && ctx_rec_bytes(ctx, pattern);
}

/* prefix + rel + name, in s->show */
static Str8 shown(WalkState *s, Frame const *f, Str8 name) {
    Walker *w = s->w;
    U8 n = w->prefix.len;
    memcpy(s->show + n, s->buf + w->offset.len, f->rel_len);
    n += f->rel_len;
    if (name.len) memcpy(s->show + n, name.ptr, name.len);
    return str8(s->show, n + name.len);
}

static B4 left_out(WalkState *s, Frame const *f, Str8 name, U1 why, U4 index, Layer const *layer) {
    Str8 src = str8(0, 0), pat = str8(0, 0);
    if (layer) src = layer->source, pat = layer->rules[index].pattern;
    return emit(s->w, Event_LeftOut, shown(s, f, name), why, why == Why_Exclude ? index : 0, src, pat);
}

static int entry_cmp(void const *a, void const *b) {
    Entry const *x = a, *y = b;
    U8 n = min_(x->name.len, y->name.len);
    int c = memcmp(x->name.ptr, y->name.ptr, n);
    if (c) return c;
    /* one name is a prefix of the other: the next byte is '/' for a directory, none for a file */
    U8 xl = x->name.len + (x->type == Ent_Dir), yl = y->name.len + (y->type == Ent_Dir);
    U1 xc = n < x->name.len ? x->name.ptr[n] : '/', yc = n < y->name.len ? y->name.ptr[n] : '/';
    if (xl == n) return yl == n ? 0 : -1;
    if (yl == n) return 1;
    return (int)xc - (int)yc;
}

static B4 list_push(Walker *w, XarOf *list, U1 const *name, U8 len, U1 type) {
    Entry *e = xar_of_push(list);
    if (!e) return 0;
    e->name = arena_copy(&w->scratch, str8(name, len));
    e->type = type;
    return e->name.ptr != 0;
}

IA_ B4 is_dot_or_dotdot(U1 const *nm, U8 len) { return nm[0] == '.' && (len == 1 || (len == 2 && nm[1] == '.')); }

#if defined(_WIN32)
enum { LISTING_BYTES = 64 * 1024, NAME8_BYTES = 3 * 256 };

/* Open the directory of frame f (the path s->dirpath[0, f->dir_len)): the
 * argument (parent 0), or an entry of parent, which must not be a reparse
 * point. 0 or errno; EILSEQ with w->bail set for a path not in UTF-8. */
static S4 dir_open(WalkState *s, Frame const *parent, Frame *f, char const *name) {
    (void)name;
    if (!wide_path(s->dirpath, f->dir_len, s->wide)) { s->w->bail = str8_lit("a path that is not UTF-8"); return EILSEQ; }
    HANDLE h = CreateFileW(s->wide, FILE_LIST_DIRECTORY | FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE, 0,
                           OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | (parent ? FILE_FLAG_OPEN_REPARSE_POINT : 0), 0);
    if (h == INVALID_HANDLE_VALUE) return errno_of(GetLastError());
    BY_HANDLE_FILE_INFORMATION info;
    S4 err = !GetFileInformationByHandle(h, &info) ? errno_of(GetLastError())
           : !(info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) ? ENOTDIR
           : parent && (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) ? ELOOP : 0;
    if (err) { CloseHandle(h); return err; }
    f->dir = h;
    return 0;
}

/* An entry's type as the Python walk reads it: a symlink or a junction (a
 * mount point) by its reparse tag (the listing's EaSize holds it, [MS-FSCC]
 * 2.4) is a link, judged by the caller's symlink policy; any other reparse
 * point is a file or, for a directory (a cloud placeholder), left to the
 * Python walk, which enters it as os.scandir says. */
static B4 entry_of(WalkState *s, XarOf *list, FILE_FULL_DIR_INFO const *d) {
    U8 wlen = d->FileNameLength / sizeof(WCHAR);
    if (wlen == 0 || wlen > 256) { s->w->bail = str8_lit("a name Windows does not give"); return 1; }
    int n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, d->FileName, (int)wlen, (char *)s->name8, NAME8_BYTES, 0, 0);
    if (n <= 0) { s->w->bail = str8_lit("a name that is not valid UTF-16"); return 1; }
    if (is_dot_or_dotdot(s->name8, (U8)n)) return 1;
    DWORD attrs = d->FileAttributes;
    B4 dir = (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0;
    U1 type = dir ? Ent_Dir : Ent_File;
    if (attrs & FILE_ATTRIBUTE_REPARSE_POINT) {
        if (d->EaSize == IO_REPARSE_TAG_SYMLINK || d->EaSize == IO_REPARSE_TAG_MOUNT_POINT) type = Ent_Link;
        else if (dir) { s->w->bail = str8_lit("a directory reparse point other than a junction"); return 1; }
    }
    return list_push(s->w, list, s->name8, (U8)n, type);
}

/* The entries of the directory open as f->dir (but . and ..), in `list`;
 * 0 on a failure of memory, *err the errno when it cannot be listed. */
static B4 dir_list(WalkState *s, Frame *f, XarOf *list, S4 *err) {
    *err = 0;
    FILE_INFO_BY_HANDLE_CLASS cls = FileFullDirectoryRestartInfo;
    while (!s->w->bail.len) {
        if (!GetFileInformationByHandleEx(f->dir, cls, s->listing, LISTING_BYTES)) {
            DWORD e = GetLastError();
            if (e != ERROR_NO_MORE_FILES) *err = errno_of(e);
            return 1;
        }
        cls = FileFullDirectoryInfo;
        for (U8 at = 0; !s->w->bail.len;) {   /* each record inside the buffer, its name too */
            FILE_FULL_DIR_INFO const *d = (FILE_FULL_DIR_INFO const *)(s->listing + at);
            U8 name_at = at + offsetof(FILE_FULL_DIR_INFO, FileName);
            if (name_at > LISTING_BYTES || d->FileNameLength > LISTING_BYTES - name_at) { *err = EIO; return 1; }
            if (!entry_of(s, list, d)) return 0;
            if (!d->NextEntryOffset) break;
            at += d->NextEntryOffset;
        }
    }
    return 1;
}

/* (Windows' listings give every entry's type.) */
static S4 entry_type(Frame const *f, char const *name, U1 *type, S8 *mode) {
    (void)f, (void)name, *type = Ent_Unknown, *mode = 0;
    return EINVAL;
}
#else
static U1 ent_type_of_mode(mode_t m) {
    return S_ISDIR(m) ? Ent_Dir : S_ISREG(m) ? Ent_File : S_ISLNK(m) ? Ent_Link : Ent_Other;
}

/* Open the directory of frame f: the argument `name` (parent 0), which may
 * be a symlink, or the entry `name` of parent, never through a symlink. 0 or errno. */
static S4 dir_open(WalkState *s, Frame const *parent, Frame *f, char const *name) {
    (void)s;
    S4 fd = parent ? openat(parent->dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                   : open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    f->dir = fd;
    return 0;
}

/* The type (and st_mode) of the entry `name` of f, by lstat. 0 or errno. */
static S4 entry_type(Frame const *f, char const *name, U1 *type, S8 *mode) {
    struct stat st;
    if (fstatat(f->dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno;
    *type = ent_type_of_mode(st.st_mode), *mode = (S8)st.st_mode;
    return 0;
}

/* The entries of the directory open as f->dir (but . and ..), in `list`;
 * 0 on a failure of memory, *err the errno when it cannot be listed. */
static B4 dir_list(WalkState *s, Frame *f, XarOf *list, S4 *err) {
    *err = 0;
    S4 dup_fd = dup(f->dir);
    if (dup_fd < 0) { *err = errno; return 1; }
    DIR *dir = fdopendir(dup_fd);
    if (!dir) { *err = errno; close(dup_fd); return 1; }
    B4 ok = 1;
    while (ok) {
        errno = 0;
        struct dirent *d = readdir(dir);
        if (!d) { if (errno) *err = errno; break; }
        U1 const *nm = (U1 const *)d->d_name;
        U8 len = strlen(d->d_name);
        if (is_dot_or_dotdot(nm, len)) continue;
        U1 type = Ent_Other;
        S8 mode;
        switch (d->d_type) {
        case DT_DIR: type = Ent_Dir; break;
        case DT_REG: type = Ent_File; break;
        case DT_LNK: type = Ent_Link; break;
        case DT_UNKNOWN: if (entry_type(f, d->d_name, &type, &mode) != 0) type = Ent_Unknown; break;
        default: break;
        }
        ok = list_push(s->w, list, nm, len, type);
    }
    closedir(dir);
    return ok;
}
#endif

/* The ignore file `name` of the directory of f, as a layer above `parent`
 * (itself when the file is missing, unreadable or holds no pattern). */
static Layer *read_layer(WalkState *s, Frame const *f, char const *name, Layer *parent) {
    Walker *w = s->w;
    /* os.path.join(dir, name), as the caller names the file */
    U8 nlen = strlen(name), dl = f->dir_len;
    B4 sep = needs_sep(s->dirpath, dl);
    Arena *scratch = &w->scratch;
    U1 *src = farena_push(scratch, dl + sep + nlen, .alignment = 1);
    if (!src) return 0;
    memcpy(src, s->dirpath, dl);
    if (sep) src[dl] = PATH_SEP;
    memcpy(src + dl + sep, name, nlen);
    Str8 source = str8(src, dl + sep + nlen), data, *pats;
    U4 count;
    if (!read_whole(scratch, f->dir, name, source, 1, &data)) return walk_failed(w) ? 0 : parent;
    if (!parse_lines(scratch, data, &pats, &count)) return 0;
    if (!count) return parent;
    Layer *l = farena_push_type(scratch, Layer);
    if (!l) return 0;
    l->parent = parent;
    l->base = arena_copy(scratch, str8(s->buf, w->offset.len + f->rel_len));
    l->source = source;
    if (!l->base.ptr || !layer_rules(w, scratch, l, pats, count, w->fold)) return 0;
    return l;
}

/* List the directory open as f->dir (closed with the frame), sorted, and
 * read its ignore files. 0 on a failure of memory; *err the errno when it
 * cannot be listed; s->w->bail set for a nested repository (or what the
 * platform's walk leaves to the caller). */
static B4 enter(WalkState *s, Frame *f, S4 *err) {
    Walker *w = s->w;
    XarOf list = xar_of(&w->scratch, Entry);
    if (!dir_list(s, f, &list, err) || walk_failed(w)) return 0;
    if (*err || w->bail.len) return 1;
    f->count = (U4)list.len;
    f->entries = farena_push_array(&w->scratch, Entry, list.len ? list.len : 1);
    if (!f->entries) return 0;
    B4 has_gitignore = 0, has_own = 0, has_git = 0;
    for (U8 i = 0; i < list.len; i += 1) {
        Entry const *e = xar_at(&list, i);
        f->entries[i] = *e;
        Str8 nm = e->name;
        if (nm.len == 10 && memcmp(nm.ptr, ".gitignore", 10) == 0) has_gitignore = 1;
        else if (nm.len == 15 && memcmp(nm.ptr, ".slopfastignore", 15) == 0) has_own = 1;
        else if (nm.len == 4 && memcmp(nm.ptr, ".git", 4) == 0) has_git = 1;
    }
    qsort(f->entries, (size_t)f->count, sizeof(Entry), entry_cmp);
    if (w->git && s->depth > 0 && has_git) {
        w->bail = str8_lit("a nested repository");
        return 1;
    }
    if (w->git && !f->tracked_only && has_gitignore) {
        f->git = read_layer(s, f, ".gitignore", f->git);
        if (!f->git && walk_failed(w)) return 0;
    }
    if (has_own) {
        Layer *own = read_layer(s, f, ".slopfastignore", f->own);
        if (!own && walk_failed(w)) return 0;
        f->own = own;
    }
    return 1;
}

static void close_frames(WalkState *s) {
    for (U4 i = 0; i <= s->depth && s->frames; i += 1) os_close(&s->frames[i].dir);
}

/* (prefix + rel).rstrip('/') or '.': how the caller names a directory it cannot list */
static Str8 dir_shown(WalkState *s, Frame const *f) {
    Str8 p = shown(s, f, str8(0, 0));
    while (p.len && p.ptr[p.len - 1] == '/') p.len -= 1;
    return p.len ? p : str8_lit(".");
}

static B4 walk_one(Walker *w, Str8 root) {
    WalkState s = { .w = w };
    s.buf_cap = w->offset.len + WALK_MAX_PATH + 512;
    s.buf = farena_push(w->arena, s.buf_cap + 1, .alignment = 1);
    s.show = farena_push(w->arena, w->prefix.len + WALK_MAX_PATH + 512, .alignment = 1);
    s.dirpath = farena_push(w->arena, root.len + WALK_MAX_PATH + 512, .alignment = 1);
    s.frames = farena_push_array(w->arena, Frame, WALK_MAX_DEPTH + 1);
    char *croot = farena_push(w->arena, root.len + 1, .alignment = 1);
    if (!s.buf || !s.show || !s.dirpath || !s.frames || !croot) return 0;
#if defined(_WIN32)
    s.wide = farena_push(w->arena, (root.len + WALK_MAX_PATH + 512 + 1) * sizeof(wchar_t), .alignment = sizeof(wchar_t));
    s.listing = farena_push(w->arena, LISTING_BYTES, .alignment = 8);
    s.name8 = farena_push(w->arena, NAME8_BYTES, .alignment = 1);
    if (!s.wide || !s.listing || !s.name8) return 0;
#endif
    /* (an empty parameter or path may hold NULL: no memcpy from it) */
    if (w->offset.len) memcpy(s.buf, w->offset.ptr, w->offset.len);
    if (w->prefix.len) memcpy(s.show, w->prefix.ptr, w->prefix.len);
    if (root.len) memcpy(s.dirpath, root.ptr, root.len), memcpy(croot, root.ptr, root.len);
    croot[root.len] = 0;

    Frame *f = &s.frames[0];
    *f = (Frame){ .dir = OS_NONE, .dir_len = root.len, .git = w->git_base, .own = w->own_base };
    S4 err = 0;
    if (root.len == 0 || memchr(root.ptr, 0, root.len)) err = ENOENT;
    else err = dir_open(&s, 0, f, croot);
    if (!err && !enter(&s, f, &err)) { close_frames(&s); return 0; }
    if (w->bail.len) { close_frames(&s); return emit(w, Event_Bail, w->bail, 0, 0, str8(0, 0), str8(0, 0)); }
    if (err) {
        close_frames(&s);
        if (err == EMFILE || err == ENFILE || err == ENOMEM) return emit(w, Event_Bail, str8_lit("out of descriptors"), 0, 0, str8(0, 0), str8(0, 0));
        return emit(w, Event_Unreadable, dir_shown(&s, f), err, 0, str8(0, 0), str8(0, 0));
    }

    B4 ok = 1;
    while (ok) {
        f = &s.frames[s.depth];
        if (f->next == f->count) {
            os_close(&f->dir);
            if (s.depth == 0) break;
            arena_pop_to(&w->scratch, f->mark);
            s.depth -= 1;
            continue;
        }
        Entry const *e = &f->entries[f->next++];
        Str8 name = e->name;
        if (name.len == 4 && memcmp(name.ptr, ".git", 4) == 0) continue;
        if (!w->hidden && name.ptr[0] == '.') { ok = left_out(&s, f, name, Why_Hidden, 0, 0); continue; }
        B4 is_dir = e->type == Ent_Dir;
        /* buf: offset + rel + name (relb = the part after offset) */
        U8 at = w->offset.len + f->rel_len;
        memcpy(s.buf + at, name.ptr, name.len);
        Str8 grel = str8(s.buf, at + name.len);
        Str8 relb = str8(s.buf + w->offset.len, f->rel_len + name.len);
        Layer const *tracked_only = 0;
        U4 tracked_rule = 0;
        if (w->git) {
            if (f->tracked_only) {
                if (!tracked(w, s.buf, grel.len, is_dir)) {
                    ok = left_out(&s, f, name, Why_Git, f->tracked_rule, f->tracked_only);
                    continue;
                }
                if (is_dir) tracked_only = f->tracked_only, tracked_rule = f->tracked_rule;
            } else if (f->git) {
                U4 k = 0;
                Layer const *why = chain_decide(w, f->git, grel, name, is_dir, &k);
                if (why) {
                    if (!w->index_path.len || !tracked(w, s.buf, grel.len, is_dir)) {
                        ok = left_out(&s, f, name, Why_Git, k, why);
                        continue;
                    }
                    if (is_dir) tracked_only = why, tracked_rule = k;
                }
            }
            if (walk_failed(w)) { ok = 0; break; }
        }
        if (f->own) {
            U4 k = 0;
            Layer const *why = chain_decide(w, f->own, grel, name, is_dir, &k);
            if (why) { ok = left_out(&s, f, name, Why_Own, k, why); continue; }
        }
        if (w->has_exclude) {
            S8 k = layer_last(w, &w->exclude, relb, name, is_dir);
            if (k >= 0) {
                w->exclude_used[k] = 1;
                if (!w->exclude.rules[k].negative) { ok = left_out(&s, f, name, Why_Exclude, (U4)k, 0); continue; }
            }
        }
        if (is_dir) {
            B4 include_all = f->include_all;
            if (!include_all && w->has_include) {
                S8 k = layer_last(w, &w->include, relb, name, 1);
                if (k >= 0 && !w->include.rules[k].negative) include_all = 1, w->include_used[k] = 1;
            }
            U8 rel_len = f->rel_len + name.len + 1;
            U8 dl = f->dir_len;
            B4 slash = needs_sep(s.dirpath, dl);
            if (s.depth + 1 > WALK_MAX_DEPTH || rel_len > WALK_MAX_PATH || dl + slash + name.len > root.len + WALK_MAX_PATH) {
                w->bail = str8_lit("nesting too deep");
                break;
            }
#ifdef SLOPFAST_FUZZ_OUT_FD
            /* fuzz builds: a request naming "/" must not walk the machine */
            if (++s.dirs > 64) { w->bail = str8_lit("fuzz build: at most 64 directories"); break; }
#endif
            Frame *sub = &s.frames[s.depth + 1];
            *sub = (Frame){ .dir = OS_NONE, .rel_len = rel_len, .git = f->git, .own = f->own, .tracked_only = tracked_only,
                            .tracked_rule = tracked_rule, .include_all = include_all, .mark = arena_mark(&w->scratch) };
            s.buf[at + name.len] = '/';
            memcpy(s.dirpath + dl + slash, name.ptr, name.len);
            if (slash) s.dirpath[dl] = PATH_SEP;
            sub->dir_len = dl + slash + name.len;
            char *cname = farena_push(&w->scratch, name.len + 1, .alignment = 1);
            if (!cname) { ok = 0; break; }
            memcpy(cname, name.ptr, name.len);
            cname[name.len] = 0;
            S4 suberr = dir_open(&s, f, sub, cname);
            s.depth += 1;
            if (!suberr && !enter(&s, sub, &suberr)) { ok = 0; break; }
            if (w->bail.len) break;
            if (suberr) {
                if (suberr == EMFILE || suberr == ENFILE || suberr == ENOMEM) { w->bail = str8_lit("out of descriptors"); break; }
                os_close(&sub->dir);
                arena_pop_to(&w->scratch, sub->mark);
                s.depth -= 1;
                ok = emit(w, Event_Unreadable, dir_shown(&s, sub), suberr, 0, str8(0, 0), str8(0, 0));
            }
            continue;
        }
        if (w->has_include && !f->include_all) {
            S8 k = layer_last(w, &w->include, relb, name, 0);
            if (k < 0 || w->include.rules[k].negative) { ok = left_out(&s, f, name, Why_Include, 0, 0); continue; }
            w->include_used[k] = 1;
        }
        Str8 path = shown(&s, f, name);
        U1 type = e->type;
        if (type == Ent_Link) { ok = emit(w, Event_Symlink, path, 0, 0, str8(0, 0), str8(0, 0)); continue; }
        if (type == Ent_File) { ok = emit(w, Event_File, path, 0, 0, str8(0, 0), str8(0, 0)); continue; }
        /* a FIFO, socket or device (or a type the entry did not give): lstat, never opened */
        ArenaMark before = arena_mark(&w->scratch);
        char *cname = farena_push(&w->scratch, name.len + 1, .alignment = 1);
        if (!cname) { ok = 0; break; }
        memcpy(cname, name.ptr, name.len);
        cname[name.len] = 0;
        S8 mode = 0;
        S4 err_type = entry_type(f, cname, &type, &mode);
        arena_pop_to(&w->scratch, before);
        if (err_type) ok = emit(w, Event_Unreadable, path, err_type, 0, str8(0, 0), str8(0, 0));
        else if (type == Ent_File) ok = emit(w, Event_File, path, 0, 0, str8(0, 0), str8(0, 0));
        else ok = emit(w, Event_Special, path, mode, 0, str8(0, 0), str8(0, 0));
    }
    close_frames(&s);
    if (!ok || walk_failed(w)) return 0;
    if (w->bail.len) return emit(w, Event_Bail, w->bail, 0, 0, str8(0, 0), str8(0, 0));
    return emit(w, Event_Walked, str8(0, 0), 0, 0, str8(0, 0), str8(0, 0));
}

/* ---- parameters -------------------------------------------------------------- */

static B4 flag_param(Ctx *ctx, char const *key, B4 *out) {
    U8 v = 0;
    if (!ctx_param_u8(ctx, key, &v)) return 0;
    if (v > 1) return ctx_fail(ctx, Code_BadParam, "parameter %s: expected 0 or 1", key);
    *out = (B4)v;
    return 1;
}

/* The layers parameter (the file doc); 0 with the error set when malformed. */
static B4 parse_layers(Walker *w, Str8 blob) {
    Ctx *ctx = w->ctx;
    Reader r = { .ptr = blob.ptr, .len = blob.len };
    Layer *git_top = 0, *own_top = 0;
    while (reader_left(&r) && !r.bad) {
        U1 group = read_u1(&r);
        Str8 base = read_bytes(&r, read_u4(&r));
        Str8 source = read_bytes(&r, read_u4(&r));
        U4 count = read_u4(&r);
        if (r.bad || group > 3 || count > reader_left(&r) / 4) break;
        Str8 *pats = farena_push_array(w->arena, Str8, count ? count : 1);
        if (!pats) return 0;
        for (U4 i = 0; i < count && !r.bad; i += 1) pats[i] = read_bytes(&r, read_u4(&r));
        if (r.bad) break;
        Layer *l = group == 2 ? &w->exclude : group == 3 ? &w->include : farena_push_type(w->arena, Layer);
        if (!l) return 0;
        if ((group == 2 && w->has_exclude) || (group == 3 && w->has_include)) { r.bad = 1; break; }
        l->base = base, l->source = source;
        if (!layer_rules(w, w->arena, l, pats, count, w->fold && group <= 1)) return 0;   /* ignore files, not options */
        if (group == 0) l->parent = git_top, git_top = l;
        else if (group == 1) l->parent = own_top, own_top = l;
        else if (group == 2) w->has_exclude = 1;
        else w->has_include = 1;
    }
    if (r.bad || reader_left(&r))
        return ctx_fail(ctx, Code_BadParam, "parameter layers: expected (U1 group, base, source, patterns) records");
    w->git_base = git_top, w->own_base = own_top;
    w->exclude_used = farena_push(w->arena, w->exclude.count + 1, .alignment = 1, .zero = 1);
    w->include_used = farena_push(w->arena, w->include.count + 1, .alignment = 1, .zero = 1);
    return w->exclude_used && w->include_used;
}

static B4 walk_inputs(Walker *w);

B4 op_walk(Ctx *ctx) {
    Arena const own = { .limit = ctx->arena->limit, .fail_after = ctx->arena->fail_after };
    Walker w = { .ctx = ctx, .arena = ctx->arena, .hash_len = 20, .scratch = own, .files_arena = own };
    w.files = (Xar){ .arena = &w.files_arena };
    B4 ok = walk_inputs(&w);
    if (!ctx->arena->failed) ctx->arena->failed = w.scratch.failed ? w.scratch.failed : w.files_arena.failed;
    arena_release(&w.scratch);
    arena_release(&w.files_arena);
    return ok;
}

static B4 walk_inputs(Walker *w) {
    Ctx *ctx = w->ctx;
    Str8 layers = str8(0, 0);
    if (!flag_param(ctx, "hidden", &w->hidden) || !flag_param(ctx, "git", &w->git) || !flag_param(ctx, "ignore_case", &w->fold)
        || !ctx_param_u8(ctx, "hash_len", &w->hash_len))
        return 0;
    if (w->hash_len != 20 && w->hash_len != 32) return ctx_fail(ctx, Code_BadParam, "parameter hash_len: expected 20 or 32");
    ctx_param(ctx, "index", &w->index_path);
    ctx_param(ctx, "prefix", &w->prefix);
    ctx_param(ctx, "offset", &w->offset);
    ctx_param(ctx, "layers", &layers);
    if (w->prefix.len > LIMIT_NAME_BYTES || w->offset.len > LIMIT_NAME_BYTES)
        return ctx_fail(ctx, Code_BadParam, "parameters prefix and offset: at most %u bytes", (unsigned)LIMIT_NAME_BYTES);
    if (!nfa_room(w, 64) || !parse_layers(w, layers)) return 0;
    if (!ctx_records_begin(ctx, "IBsqIss")) return 0;
    Request *req = ctx->req;
    U8 scratch_first = w->scratch.limit ? min_((U8)WALK_SCRATCH_BYTES, w->scratch.limit / 4) : WALK_SCRATCH_BYTES;
    for (U4 i = 0; i < req->input_count; i += 1) {
        w->bail = str8(0, 0);
        if (!arena_reserve(&w->scratch, scratch_first) || !walk_one(w, req->inputs[i].path)) return 0;
        arena_release(&w->scratch);   /* the argument's top directory */
        for (U4 k = 0; k < w->exclude.count; k += 1)
            if (w->exclude_used[k]) { if (!emit(w, Event_Used, str8(0, 0), 0, k, str8(0, 0), str8(0, 0))) return 0; }
        for (U4 k = 0; k < w->include.count; k += 1)
            if (w->include_used[k]) { if (!emit(w, Event_Used, str8(0, 0), 1, k, str8(0, 0), str8(0, 0))) return 0; }
        memset(w->exclude_used, 0, w->exclude.count + 1);
        memset(w->include_used, 0, w->include.count + 1);
    }
    if (!ctx_records_end(ctx) || !ctx_part_begin(ctx)) return 0;
    for (U8 at = 0; at < w->files.len;) {      /* the Xar's chunks, in order */
        U4 k = xar_chunk_of(at);
        U8 n = min_(w->files.len - at, xar_chunk_start(k) + xar_chunk_size(k) - at);
        if (!ctx_write(ctx, w->files.chunks[k] + (at - xar_chunk_start(k)), n)) return 0;
        at += n;
    }
    arena_release(&w->files_arena);
    return ctx_part_end(ctx);
}
