/* py_skeleton.c: Python module skeletons by lexical scanning.
 *
 * Two layers. The scanner turns the source into logical lines (brackets,
 * strings of every kind, f-string nesting, comments and backslash
 * continuations resolved) and describes each one: its first keyword, the
 * header colon of a compound statement, and the simple statements after
 * it, each classified as kept / dropped / docstring. The block machine
 * follows indentation with an explicit frame stack and emits slices of the
 * source. The rules are in docs/python-skeleton.md; fallbacks/py_skeleton.py
 * implements the same rules with `ast`.
 *
 * The source is first copied into the arena with CR LF / CR turned into LF,
 * the BOM dropped and a NUL sentinel appended. A NUL inside the source is
 * rejected, so every scanning loop stops at the sentinel: a lookahead of one
 * byte past a non-NUL byte is always in bounds. */
#include "py_skeleton.h"

#include <stdio.h>
#include <stdarg.h>

enum {
    PY_MAX_PARENS  = 200,   /* CPython's MAXLEVEL: more is its SyntaxError too */
    PY_MAX_FSTACK  = 300,   /* 150 nested f-strings (CPython's limit), each with a field */
    PY_MAX_FRAMES  = 256,   /* block frames: 2 per indentation level (CPython allows 100) */
    PY_MAX_INDENT  = 100,   /* CPython's MAXINDENT: indentation levels, col 0 included */
    PY_PAD         = 8,     /* NUL bytes after the copied source */
};

/* ---- character classes ---------------------------------------------------- */

/* Identifier bytes: ASCII letters, digits, `_`, and every byte >= 0x80 (a
 * table: the identifier loop is the scanner's hottest). */
#define ID8_(c) 1, 1, 1, 1, 1, 1, 1, 1
#define ID16_ ID8_(0), ID8_(0)
static U1 const ident_tab[256] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['_'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
    [0x80] = ID16_, ID16_, ID16_, ID16_, ID16_, ID16_, ID16_, ID16_,
};
#undef ID16_
#undef ID8_

IA_ B4 is_ident(U1 c) { return ident_tab[c]; }

/* Bytes that end a run of plain string content: quotes, backslash, LF, NUL. */
static U1 const str_stop[256] = { [0] = 1, ['\n'] = 1, ['\''] = 1, ['"'] = 1, ['\\'] = 1 };

/* Offset of the end of the comment line at i (its LF, or the end of the source:
 * the source holds no NUL, checked up front). */
IA_ U8 comment_end(U1 const *p, U8 i, U8 len) {
    U1 const *nl = i < len ? memchr(p + i, '\n', len - i) : 0;
    return nl ? (U8)(nl - p) : len;
}
IA_ B4 is_ident_start(U1 c) { return is_ident(c) && !(c >= '0' && c <= '9'); }
IA_ B4 is_digit(U1 c) { return c >= '0' && c <= '9'; }

/* ---- the scanner's description of a logical line --------------------------- */

Enum_(Kw) {
    Kw_None = 0,    /* an expression or assignment statement */
    Kw_At,          /* decorator */
    Kw_Def, Kw_Class,
    Kw_If, Kw_Elif, Kw_Else, Kw_Try, Kw_Except, Kw_Finally,
    Kw_Loop,        /* for, while, with, async for/with, match: dropped blocks */
    Kw_Async,       /* undecided until the next token */
    Kw_Match,       /* `match` soft keyword: compound only if the line ends at its colon */
    Kw_Import,      /* import, from */
    Kw_Drop,        /* del pass break continue return raise global nonlocal assert */
};

Enum_(StmtKind) { StmtKind_Drop = 0, StmtKind_Keep = 1, StmtKind_Doc = 2 };

Struct_(Stmt) { U8 start; U8 end; U1 kind; };

Enum_(Tok) {
    Tok_Name, Tok_Str, Tok_StrOther, Tok_Paren, Tok_CloseParen, Tok_Open, Tok_Close,
    Tok_Other, Tok_Eq, Tok_Aug, Tok_Colon, Tok_Semi, Tok_Lambda,
};

/* The simple statement being scanned. */
Struct_(Seg) {
    U8 start, end;
    U4 ntok;
    U1 kw;
    B4 assign;         /* `=`, augmented assignment or annotation at depth 0 */
    U4 lambdas;        /* lambdas at depth 0 whose colon is still to come */
    U1 doc;            /* docstring shape: 0 `(`*, 1 strings, 2 `)`*, 3 no */
    U4 opens, closes;
};

Struct_(Line) {
    U8 phys;           /* start of the logical line: of the physical line of the first token,
                        * or of the first of the continuation-only lines (`    \`) before it */
    U8 ins;            /* where a one-line body's 4 more spaces go: before the backslash
                        * where CPython's column count stopped, else before the first token */
    U8 first;          /* first token */
    U8 nl;             /* end of the physical line of the last token */
    U4 col;            /* indentation column (tabs to multiples of 8) */
    U1 kw;
    B4 compound;       /* a header with a colon */
    B4 want_name;
    U8 colon;
    U8 first_colon;    /* Kw_Match: first annotation-like colon */
    Str8 name;
    U4 ntok;
    XarOf *stmts;      /* Stmt: the line's simple statements (the scanner's array) */
};

Enum_(FsKind) { FsKind_Str = 0, FsKind_Expr = 1, FsKind_Spec = 2 };
Struct_(FsFrame) { U1 kind; U1 quote; U1 triple; U1 raw; U4 depth; U4 str_ix; };

Struct_(Scan) {
    U1 const *p;
    U8 len;
    U8 pos;
    Arena *arena;
    XarOf stmts;       /* Stmt: the current line's statements */
    U4 depth;
    U1 *brackets;      /* [PY_MAX_PARENS], in SkelStacks */
    U8 *bracket_at;    /* [PY_MAX_PARENS]: where each open bracket is */
    FsFrame *fs;       /* [PY_MAX_FSTACK] */
    U8 err_at;
    char const *err;
    char errbuf[96];   /* a formatted message (err points here) */
    Seg seg;
};

static B4 scan_fail(Scan *s, U8 at, char const *why) {
    if (!s->err) { s->err = why; s->err_at = at; }
    return 0;
}

/* 1-based line of offset `at`. */
static U8 line_at(Scan const *s, U8 at) {
    U8 line = 1;
    for (U8 i = 0; i < at && i < s->len; i += 1) line += s->p[i] == '\n';
    return line;
}

/* CPython's message for an unterminated string that starts at `open` and is
 * found unterminated at `at`. */
static B4 fail_unterminated(Scan *s, U8 open, U8 at, B4 triple) {
    if (s->err) return 0;
    snprintf(s->errbuf, sizeof s->errbuf, "unterminated %sstring literal (detected at line %llu)",
             triple ? "triple-quoted " : "", (unsigned long long)line_at(s, at));
    return scan_fail(s, open, s->errbuf);
}

/* Keyword of a name that starts a statement. */
static U1 kw_of(U1 const *p, U8 n) {
    switch (n) {
    case 2:
        if (!memcmp(p, "if", 2)) return Kw_If;
        break;
    case 3:
        if (!memcmp(p, "def", 3)) return Kw_Def;
        if (!memcmp(p, "try", 3)) return Kw_Try;
        if (!memcmp(p, "for", 3)) return Kw_Loop;
        if (!memcmp(p, "del", 3)) return Kw_Drop;
        break;
    case 4:
        if (!memcmp(p, "elif", 4)) return Kw_Elif;
        if (!memcmp(p, "else", 4)) return Kw_Else;
        if (!memcmp(p, "with", 4)) return Kw_Loop;
        if (!memcmp(p, "from", 4)) return Kw_Import;
        if (!memcmp(p, "pass", 4)) return Kw_Drop;
        break;
    case 5:
        if (!memcmp(p, "class", 5)) return Kw_Class;
        if (!memcmp(p, "while", 5)) return Kw_Loop;
        if (!memcmp(p, "async", 5)) return Kw_Async;
        if (!memcmp(p, "match", 5)) return Kw_Match;
        if (!memcmp(p, "break", 5)) return Kw_Drop;
        if (!memcmp(p, "raise", 5)) return Kw_Drop;
        break;
    case 6:
        if (!memcmp(p, "except", 6)) return Kw_Except;
        if (!memcmp(p, "import", 6)) return Kw_Import;
        if (!memcmp(p, "return", 6)) return Kw_Drop;
        if (!memcmp(p, "global", 6)) return Kw_Drop;
        if (!memcmp(p, "assert", 6)) return Kw_Drop;
        break;
    case 7:
        if (!memcmp(p, "finally", 7)) return Kw_Finally;
        break;
    case 8:
        if (!memcmp(p, "continue", 8)) return Kw_Drop;
        if (!memcmp(p, "nonlocal", 8)) return Kw_Drop;
        break;
    }
    return Kw_None;
}

IA_ B4 kw_is_compound(U1 kw) { return kw >= Kw_Def && kw <= Kw_Loop; }
IA_ B4 kw_is_clause(U1 kw) { return kw == Kw_Elif || kw == Kw_Else || kw == Kw_Except || kw == Kw_Finally; }

/* ---- statements within a logical line ------------------------------------------ */

IA_ Stmt const *line_stmt(Line const *L, U8 i) { return xar_at(L->stmts, i); }
IA_ U8 line_nstmts(Line const *L) { return L->stmts->len; }

static B4 stmt_push(Line *L, Stmt st) {
    Stmt *p = xar_of_push(L->stmts);
    if (!p) return 0;
    *p = st;
    return 1;
}

static B4 seg_end(Scan *s, Line *L) {
    Seg *g = &s->seg;
    B4 ok = 1;
    if (g->ntok) {
        U1 kind = StmtKind_Drop;
        if (g->kw == Kw_Import || (g->kw != Kw_Drop && g->assign)) kind = StmtKind_Keep;
        else if ((g->doc == 1 || g->doc == 2) && g->opens == g->closes) kind = StmtKind_Doc;
        ok = stmt_push(L, (Stmt){ g->start, g->end, kind });
    }
    memset(g, 0, sizeof *g);
    return ok;
}

IA_ void seg_doc(Seg *g, U1 kind) {
    switch (kind) {
    case Tok_Paren: if (g->doc == 0) g->opens += 1; else g->doc = 3; break;
    case Tok_Str: if (g->doc <= 1) g->doc = 1; else g->doc = 3; break;
    case Tok_CloseParen: if (g->doc == 1 || g->doc == 2) { g->doc = 2; g->closes += 1; } else g->doc = 3; break;
    default: g->doc = 3; break;
    }
}

/* The line's first token decides its keyword; `async` waits for the second. */
static void line_kw(Line *L, Scan *s, U1 kind, U8 a, U8 b) {
    U1 kw = kind == Tok_Name ? kw_of(s->p + a, b - a) : Kw_None;
    if (L->ntok == 0) {
        if (kind == Tok_Other && s->p[a] == '@') kw = Kw_At;
        L->kw = kw;
        L->want_name = kw == Kw_Def || kw == Kw_Class;
    } else if (L->kw == Kw_Async && L->ntok == 1) {
        L->kw = kw == Kw_Def ? Kw_Def : (kw == Kw_Loop ? Kw_Loop : Kw_None);
        L->want_name = L->kw == Kw_Def;
    } else if (L->want_name && kind == Tok_Name) {
        L->name = str8(s->p + a, b - a);
        L->want_name = 0;
    }
}

/* Every token of a logical line passes here. Eq/Aug/Colon/Semi/Lambda are
 * only reported at bracket depth 0. */
static B4 on_tok(Scan *s, Line *L, U1 kind, U8 a, U8 b) {
    Seg *g = &s->seg;
    if (L->ntok < 2 || L->want_name) line_kw(L, s, kind, a, b);
    L->ntok += 1;
    if (kind == Tok_Semi) return seg_end(s, L);
    if (g->ntok == 0) {
        g->start = a;
        g->kw = kind == Tok_Name ? kw_of(s->p + a, b - a) : Kw_None;
    }
    g->ntok += 1;
    g->end = b;
    seg_doc(g, kind);
    switch (kind) {
    case Tok_Lambda: g->lambdas += 1; break;
    case Tok_Eq: case Tok_Aug: if (!g->lambdas) g->assign = 1; break;
    case Tok_Colon:
        if (g->lambdas) { g->lambdas -= 1; break; }
        if (kw_is_compound(L->kw) && !L->compound) {
            L->compound = 1;
            L->colon = a;
            memset(g, 0, sizeof *g);      /* the header is not a statement */
            break;
        }
        if (L->kw == Kw_Match && !L->first_colon) L->first_colon = a + 1;
        g->assign = 1;
        break;
    default: break;
    }
    return 1;
}

/* ---- strings ------------------------------------------------------------- */

/* Flags of a string prefix (r, u, b, f, t and the two-letter mixes), or -1. */
Enum_(StrFlag) { StrFlag_Raw = 1, StrFlag_Fmt = 2, StrFlag_Bytes = 4 };

static S4 prefix_flags(U1 const *p, U8 n) {
    if (n == 0) return 0;
    if (n > 2) return -1;
    S4 flags = 0;
    U4 u = 0;
    for (U8 i = 0; i < n; i += 1) {
        switch (p[i] | 0x20) {
        case 'r': if (flags & StrFlag_Raw) return -1; flags |= StrFlag_Raw; break;
        case 'b': if (flags & (StrFlag_Bytes | StrFlag_Fmt)) return -1; flags |= StrFlag_Bytes; break;
        case 'f': case 't': if (flags & (StrFlag_Bytes | StrFlag_Fmt)) return -1; flags |= StrFlag_Fmt; break;
        case 'u': u += 1; break;
        default: return -1;
        }
    }
    if (u && n != 1) return -1;
    return flags;
}

/* A non-f string whose opening quote is at s->pos; leaves s->pos after it. */
static B4 lex_plain(Scan *s) {
    U1 const *p = s->p;
    U8 i = s->pos;
    U1 q = p[i];
    B4 triple = p[i + 1] == q && p[i + 2] == q;
    U8 open = i;
    i += triple ? 3 : 1;
    for (;;) {
        while (!str_stop[p[i]]) i += 1;
        U1 c = p[i];
        if (c == q) {
            if (!triple) { s->pos = i + 1; return 1; }
            if (p[i + 1] == q && p[i + 2] == q) { s->pos = i + 3; return 1; }
            i += 1;
        } else if (c == '\\') {
            if (p[i + 1] == 0) break;
            i += 2;
        } else if (c == '\n') {
            if (!triple) return fail_unterminated(s, open, i, 0);
            i += 1;
        } else if (c == 0) {
            break;
        } else {
            i += 1;    /* the other quote */
        }
    }
    return fail_unterminated(s, open, triple ? (s->len ? s->len - 1 : 0) : i, triple);
}

static B4 fs_push(Scan *s, U4 *n, FsFrame f, U8 at) {
    if (*n == PY_MAX_FSTACK) return scan_fail(s, at, "too many nested f-strings");
    s->fs[(*n)++] = f;
    return 1;
}

/* One step in the literal text of an f-string (or a field's format spec). */
static B4 fs_literal(Scan *s, U4 *n, U8 *pi, U8 open) {
    U1 const *p = s->p;
    U8 i = *pi;
    FsFrame *top = &s->fs[*n - 1];
    FsFrame const *str = top->kind == FsKind_Str ? top : &s->fs[top->str_ix];
    U1 c = p[i];
    if (c == 0) return scan_fail(s, open, "unterminated f-string");
    if (c == '\\') {
        U1 d = p[i + 1];
        if (d == 0) return scan_fail(s, open, "unterminated f-string");
        if (d == '{' || d == '}') i += 1;                   /* the brace still counts */
        else if (!str->raw && d == 'N' && p[i + 2] == '{') { /* \N{NAME} is no field */
            i += 3;
            while (p[i] && p[i] != '}' && p[i] != str->quote && p[i] != '\n') i += 1;
            if (p[i] != '}') return scan_fail(s, open, "malformed \\N escape in f-string");
            i += 1;
        } else i += 2;
    } else if (c == str->quote && (!str->triple || (p[i + 1] == c && p[i + 2] == c))) {
        if (top->kind != FsKind_Str) return scan_fail(s, i, "f-string: expecting '}'");
        i += str->triple ? 3 : 1;
        *n -= 1;
    } else if (c == '\n' && !str->triple) {
        return scan_fail(s, open, "unterminated f-string");
    } else if (c == '{') {
        if (top->kind == FsKind_Str && p[i + 1] == '{') i += 2;
        else {
            U4 six = top->kind == FsKind_Str ? *n - 1 : top->str_ix;
            if (!fs_push(s, n, (FsFrame){ .kind = FsKind_Expr, .str_ix = six }, i)) return 0;
            i += 1;
        }
    } else if (c == '}') {
        if (top->kind == FsKind_Str) {
            if (p[i + 1] != '}') return scan_fail(s, i, "f-string: single '}' is not allowed");
            i += 2;
        } else { *n -= 1; i += 1; }
    } else {
        i += 1;
    }
    *pi = i;
    return 1;
}

/* A string token inside a replacement field, or a name that is not one. */
static B4 fs_expr_word(Scan *s, U4 *n, U8 *pi) {
    U1 const *p = s->p;
    U8 i = *pi, a = i;
    while (is_ident(p[i])) i += 1;
    if (p[i] == '\'' || p[i] == '"') {
        S4 fl = prefix_flags(p + a, i - a);
        if (fl >= 0) {
            if (fl & StrFlag_Fmt) {
                U1 q = p[i];
                B4 triple = p[i + 1] == q && p[i + 2] == q;
                if (!fs_push(s, n, (FsFrame){ .kind = FsKind_Str, .quote = q, .triple = (U1)triple,
                                              .raw = (U1)((fl & StrFlag_Raw) != 0) }, a)) return 0;
                i += triple ? 3 : 1;
            } else {
                s->pos = i;
                if (!lex_plain(s)) return 0;
                i = s->pos;
            }
        }
    }
    *pi = i;
    return 1;
}

/* One step in a replacement field's expression. */
static B4 fs_expr(Scan *s, U4 *n, U8 *pi, U8 open) {
    U1 const *p = s->p;
    U8 i = *pi;
    FsFrame *top = &s->fs[*n - 1];
    U1 c = p[i];
    switch (c) {
    case 0: return scan_fail(s, open, "unterminated f-string");
    case '#':
        while (p[i] && p[i] != '\n') i += 1;
        break;
    case '\'': case '"':
        *pi = i;
        return fs_expr_word(s, n, pi);
    case '(': case '[': case '{':
        if (top->depth >= PY_MAX_PARENS) return scan_fail(s, i, "too many nested parentheses");
        top->depth += 1; i += 1;
        break;
    case ')': case ']':
        if (top->depth) top->depth -= 1;
        i += 1;
        break;
    case '}':
        if (top->depth) top->depth -= 1; else *n -= 1;
        i += 1;
        break;
    case ':':
        if (top->depth == 0) top->kind = FsKind_Spec;
        i += 1;
        break;
    case '!':
        i += p[i + 1] == '=' ? 2 : 1;
        break;
    default:
        if (is_ident_start(c)) { *pi = i; return fs_expr_word(s, n, pi); }
        i += 1;
        break;
    }
    *pi = i;
    return 1;
}

/* An f-string (or t-string) whose opening quote is at s->pos. Nesting is
 * followed with the explicit stack s->fs, never by recursion. */
static B4 lex_fstring(Scan *s, B4 raw) {
    U1 const *p = s->p;
    U8 i = s->pos, open = i;
    U1 q = p[i];
    B4 triple = p[i + 1] == q && p[i + 2] == q;
    U4 n = 0;
    if (!fs_push(s, &n, (FsFrame){ .kind = FsKind_Str, .quote = q, .triple = (U1)triple, .raw = (U1)raw }, i)) return 0;
    i += triple ? 3 : 1;
    while (n) {
        B4 ok = s->fs[n - 1].kind == FsKind_Expr ? fs_expr(s, &n, &i, open) : fs_literal(s, &n, &i, open);
        if (!ok) return 0;
    }
    s->pos = i;
    return 1;
}

/* ---- tokens ---------------------------------------------------------------- */

/* A name, or a string with a prefix. */
static B4 lex_word(Scan *s, Line *L) {
    U1 const *p = s->p;
    U8 a = s->pos, i = a;
    while (is_ident(p[i])) i += 1;
    if (p[i] == '\'' || p[i] == '"') {
        S4 fl = prefix_flags(p + a, i - a);
        if (fl >= 0) {
            s->pos = i;
            B4 ok = (fl & StrFlag_Fmt) ? lex_fstring(s, (fl & StrFlag_Raw) != 0) : lex_plain(s);
            return ok && on_tok(s, L, (fl & (StrFlag_Fmt | StrFlag_Bytes)) ? Tok_StrOther : Tok_Str, a, s->pos);
        }
    }
    s->pos = i;
    U1 kind = Tok_Name;
    if (s->depth == 0 && i - a == 6 && !memcmp(p + a, "lambda", 6)) kind = Tok_Lambda;
    return on_tok(s, L, kind, a, i);
}

static B4 lex_number(Scan *s, Line *L) {
    U1 const *p = s->p;
    U8 a = s->pos, i = a;
    while (is_ident(p[i]) || p[i] == '.') i += 1;
    s->pos = i;
    return on_tok(s, L, Tok_Other, a, i);
}

static B4 lex_open(Scan *s, Line *L, U1 c) {
    if (s->depth >= PY_MAX_PARENS) return scan_fail(s, s->pos, "too many nested parentheses");
    s->bracket_at[s->depth] = s->pos;
    s->brackets[s->depth++] = c;
    U8 a = s->pos++;
    return on_tok(s, L, c == '(' ? Tok_Paren : Tok_Open, a, a + 1);
}

static B4 lex_close(Scan *s, Line *L, U1 c) {
    U1 want = c == ')' ? '(' : (c == ']' ? '[' : '{');
    if (s->err) return 0;
    if (s->depth == 0) {   /* CPython's wording, here and below */
        snprintf(s->errbuf, sizeof s->errbuf, "unmatched '%c'", c);
        return scan_fail(s, s->pos, s->errbuf);
    }
    U1 open = s->brackets[s->depth - 1];
    if (open != want) {
        U8 at = s->bracket_at[s->depth - 1], line = 1;
        for (U8 i = at; i < s->pos; i += 1) line += s->p[i] == '\n';
        if (line == 1) snprintf(s->errbuf, sizeof s->errbuf, "closing parenthesis '%c' does not match opening parenthesis '%c'", c, open);
        else {
            line = 1;
            for (U8 i = 0; i < at; i += 1) line += s->p[i] == '\n';
            snprintf(s->errbuf, sizeof s->errbuf, "closing parenthesis '%c' does not match opening parenthesis '%c' on line %llu",
                     c, open, (unsigned long long)line);
        }
        return scan_fail(s, s->pos, s->errbuf);
    }
    s->depth -= 1;
    U8 a = s->pos++;
    return on_tok(s, L, c == ')' ? Tok_CloseParen : Tok_Close, a, a + 1);
}

/* Operators: only `=`, augmented assignments, `:` and `;` matter, at depth 0. */
static B4 lex_op(Scan *s, Line *L, U1 c) {
    U1 const *p = s->p;
    U8 a = s->pos, n = 1;
    U1 kind = Tok_Other;
    switch (c) {
    case '=': if (p[a + 1] == '=') n = 2; else kind = Tok_Eq; break;
    case ':': if (p[a + 1] == '=') n = 2; else kind = Tok_Colon; break;
    case ';': kind = Tok_Semi; break;
    case '<': case '>': case '*': case '/':
        if (p[a + 1] == c) n = 2;
        if (p[a + n] == '=') { kind = (n == 2 || c == '*' || c == '/') ? Tok_Aug : Tok_Other; n += 1; }
        break;
    case '+': case '-': case '%': case '@': case '&': case '|': case '^':
        if (p[a + 1] == '=') { kind = Tok_Aug; n = 2; }
        else if (c == '-' && p[a + 1] == '>') n = 2;
        break;
    case '!':
        if (p[a + 1] == '=') n = 2;
        else return scan_fail(s, a, "invalid syntax");
        break;
    default: break;
    }
    if (s->depth) kind = Tok_Other;
    s->pos = a + n;
    return on_tok(s, L, kind, a, a + n);
}

/* Skips blank and comment-only lines; 0 at the end of the source. */
static B4 line_start(Scan *s, Line *L) {
    U1 const *p = s->p;
    U8 i = s->pos;
    U4 col = 0, cont_col = 0;
    U8 ls = i, cont_at = 0;
    for (;;) {
        for (;; i += 1) {
            if (p[i] == ' ') col += 1;
            else if (p[i] == '\t') col = (col / 8 + 1) * 8;
            else if (p[i] == '\f') col = 0;
            else break;
        }
        U1 c = p[i];
        if (c == '#') { i = comment_end(p, i, s->len); c = p[i]; }
        if (c == '\n') { i += 1; col = cont_col = 0; ls = i; continue; }
        if (c == '\\' && (p[i + 1] == 0 || (p[i + 1] == '\n' && i + 2 >= s->len)))
            return scan_fail(s, i, "unexpected EOF while parsing");
        if (c == '\\' && p[i + 1] == '\n') {
            /* As CPython's tokenizer: the column before the first backslash
             * is the line's indentation, unless it is 0; then counting goes
             * on over the next physical line. */
            if (!cont_col) { cont_col = col; cont_at = i; }
            i += 2;
            continue;   /* the line goes on: its start stays where it was */
        }
        s->pos = i;
        if (c == 0) return i < s->len ? scan_fail(s, i, "source code cannot contain null bytes") : 0;
        L->phys = ls;
        L->first = i;
        L->col = cont_col ? cont_col : col;
        L->ins = cont_col ? cont_at : i;
        return 1;
    }
}

/* One logical line; returns 1 with *L filled, 0 at the end or on error. */
static B4 scan_line(Scan *s, Line *L) {
    memset(L, 0, sizeof *L);
    memset(&s->seg, 0, sizeof s->seg);
    xar_of_truncate(&s->stmts, 0);
    L->stmts = &s->stmts;
    if (!line_start(s, L)) return 0;
    U1 const *p = s->p;
    for (;;) {
        U1 c = p[s->pos];
        B4 ok = 1;
        switch (c) {
        case ' ': case '\t': case '\f': s->pos += 1; break;
        case '\n':
            if (s->depth == 0) { L->nl = s->pos; s->pos += 1; goto done; }
            s->pos += 1;
            break;
        case 0:
            if (s->pos < s->len) return scan_fail(s, s->pos, "source code cannot contain null bytes");
            if (s->depth) {
                if (s->err) return 0;
                snprintf(s->errbuf, sizeof s->errbuf, "'%c' was never closed", s->brackets[s->depth - 1]);
                return scan_fail(s, s->bracket_at[s->depth - 1], s->errbuf);
            }
            L->nl = s->pos;
            goto done;
        case '#': s->pos = comment_end(p, s->pos, s->len); break;
        case '\\': {
            U8 at = s->pos;
            U1 d = p[at + 1];   /* 0: the end of the source (it holds no NUL) */
            if (d != '\n' && d != 0) return scan_fail(s, at, "unexpected character after line continuation character");
            s->pos += d ? 2 : 1;
            /* a continuation into the end of the source (an open bracket says so first) */
            if (s->pos >= s->len && !s->depth) return scan_fail(s, at, "unexpected EOF while parsing");
            break;
        }
        case '\'': case '"': { U8 a = s->pos; ok = lex_plain(s) && on_tok(s, L, Tok_Str, a, s->pos); break; }
        case '(': case '[': case '{': ok = lex_open(s, L, c); break;
        case ')': case ']': case '}': ok = lex_close(s, L, c); break;
        case '.':
            if (is_digit(p[s->pos + 1])) ok = lex_number(s, L);
            else { ok = on_tok(s, L, Tok_Other, s->pos, s->pos + 1); s->pos += 1; }
            break;
        case ',': case '~': ok = on_tok(s, L, Tok_Other, s->pos, s->pos + 1); s->pos += 1; break;
        case '=': case ':': case ';': case '<': case '>': case '*': case '/': case '+': case '-':
        case '%': case '@': case '&': case '|': case '^': case '!':
            ok = lex_op(s, L, c);
            break;
        default:
            if (is_ident_start(c)) ok = lex_word(s, L);
            else if (is_digit(c)) ok = lex_number(s, L);
            else return scan_fail(s, s->pos, "invalid character");
            break;
        }
        if (!ok) return 0;
    }
done:
    if (!seg_end(s, L)) return 0;
    if (L->kw == Kw_Match && line_nstmts(L) == 1 && L->first_colon && L->first_colon == line_stmt(L, 0)->end) {
        L->kw = Kw_Loop;          /* `match subject:` opens a dropped block */
        L->compound = 1;
        L->colon = L->first_colon - 1;
        xar_of_truncate(L->stmts, 0);
    } else if (L->kw == Kw_Match || L->kw == Kw_Async) {
        L->kw = Kw_None;
    }
    if (kw_is_compound(L->kw) && !L->compound) return scan_fail(s, L->first, "expected ':'");
    if (L->kw == Kw_At && line_nstmts(L) != 1) return scan_fail(s, L->first, "invalid decorator");
    return 1;
}

/* ---- the block machine ------------------------------------------------------ */

Enum_(FrameKind) {
    FrameKind_Module, FrameKind_Class, FrameKind_Clause,   /* summarised bodies */
    FrameKind_Func,                                        /* waits for its first body line */
    FrameKind_Skip, FrameKind_Full,                        /* bodies passed over / kept whole */
    FrameKind_Cont,                                        /* an if/try (or dropped) block between clauses */
};

Struct_(Frame) {
    U1 kind;
    B4 doc_ok;         /* the next statement may be a kept docstring */
    B4 no_doc;         /* Func: signatures mode drops the docstring */
    B4 started;        /* a body line was seen */
    B4 content;        /* something other than `...` was emitted */
    B4 dropped;        /* Cont: a dropped compound (for/while/with/match) */
    S8 head_col;
    S8 body_col;
    Str8 body_ind;
    U8 deco;           /* start of the pending decorators' first line, or ~0 */
    U8 out_mark;       /* Cont: output length before its first header */
    U8 full_start, full_end;
    U4 qual_depth;     /* k->qual's depth to go back to when the frame closes */
};

/* One name of the qualified name of the enclosing classes, "A.B": the
 * dot is there when the name before it is not empty, as a joined string
 * would have it. */
Struct_(QualPart) { Str8 name; B4 dot; };

Struct_(Skel) {
    Scan s;
    Xar *out;          /* the caller's: the skeleton is appended */
    QualPart *qual;    /* [PY_MAX_FRAMES + 1]: one per open class frame, and the def being named */
    U4 qual_depth;
    U8 qual_len;       /* bytes of the joined name */
    Str8 *full; U4 nfull;
    Str8 *sigs; U4 nsigs;
    Frame *frames;     /* [PY_MAX_FRAMES] */
    U4 nframes;
    U8 at;             /* the line that closes frames (or the end): where their errors are */
    U4 *indents;       /* [PY_MAX_INDENT]: columns of the open indentation levels, as CPython's tokenizer */
    U4 nindents;
};

/* The stacks, apart from Skel and not zeroed (some 40 KiB: clearing them
 * was a fifth of the time on small files): every entry is written when
 * pushed, before it is read. */
Struct_(SkelStacks) {
    U1 brackets[PY_MAX_PARENS];
    U8 bracket_at[PY_MAX_PARENS];
    FsFrame fs[PY_MAX_FSTACK];
    QualPart qual[PY_MAX_FRAMES + 1];
    Frame frames[PY_MAX_FRAMES];
    U4 indents[PY_MAX_INDENT];
};

/* An output line's indentation: base as written, and for a one-line body 4
 * more spaces after its first `ins` bytes (so that CPython counts them). */
Struct_(Ind) { Str8 base; B4 plus4; U8 ins; };

/* One output line; a short one is put together here first: one append. */
static B4 emit_line(Skel *k, Ind ind, Str8 body) {
    enum { SHORT_LINE = 256 };
    Xar *o = k->out;
    U8 n = ind.base.len + (ind.plus4 ? 4 : 0) + body.len + 1;
    U8 ins = ind.plus4 ? ind.ins : ind.base.len;
    if (n > SHORT_LINE) {
        return xar_str8(o, str8_prefix(ind.base, ins)) && (!ind.plus4 || xar_str8(o, str8_lit("    ")))
            && xar_str8(o, str8_skip(ind.base, ins)) && xar_str8(o, body) && xar_byte(o, '\n');
    }
    U1 line[SHORT_LINE], *p = line;
    if (ins) memcpy(p, ind.base.ptr, ins), p += ins;
    if (ind.plus4) memcpy(p, "    ", 4), p += 4;
    if (ind.base.len > ins) memcpy(p, ind.base.ptr + ins, ind.base.len - ins), p += ind.base.len - ins;
    if (body.len) memcpy(p, body.ptr, body.len), p += body.len;
    *p = '\n';
    return xar_append(o, line, n);
}

IA_ Str8 src(Skel *k, U8 a, U8 b) { return str8(k->s.p + a, b - a); }
IA_ Ind ind_of(Skel *k, Line const *L) { return (Ind){ src(k, L->phys, L->first), 0, 0 }; }
IA_ Ind ind_inline(Skel *k, Line const *L) { return (Ind){ src(k, L->phys, L->first), 1, L->ins - L->phys }; }
IA_ B4 has_inline(Line const *L) { return line_nstmts(L) > 0; }

static B4 emit_dots(Skel *k, Ind ind) { return emit_line(k, ind, str8_lit("...")); }

static Frame *push_frame(Skel *k, U1 kind, S8 head_col) {
    if (k->nframes == PY_MAX_FRAMES) { scan_fail(&k->s, k->s.pos, "too many levels of indentation"); return 0; }
    Frame *f = &k->frames[k->nframes++];
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->head_col = head_col;
    f->body_col = -1;
    f->deco = ~(U8)0;
    f->qual_depth = k->qual_depth;
    return f;
}

IA_ void qual_pop_to(Skel *k, U4 depth) {
    while (k->qual_depth > depth) {
        QualPart const *q = &k->qual[--k->qual_depth];
        k->qual_len -= q->name.len + (q->dot ? 1 : 0);
    }
}

/* Is `name` the joined qualified name k->qual? */
static B4 qual_is(Skel const *k, Str8 name) {
    if (name.len != k->qual_len) return 0;
    U8 at = 0;
    for (U4 i = 0; i < k->qual_depth; i += 1) {
        QualPart const *q = &k->qual[i];
        if (q->dot && name.ptr[at++] != '.') return 0;
        if (q->name.len && memcmp(name.ptr + at, q->name.ptr, q->name.len) != 0) return 0;
        at += q->name.len;
    }
    return 1;
}

static B4 qual_in(Skel const *k, Str8 const *names, U4 n) {
    for (U4 i = 0; i < n; i += 1) if (qual_is(k, names[i])) return 1;
    return 0;
}

/* Simple statements of L into frame F: kept ones and a leading docstring. */
static B4 emit_stmts(Skel *k, Frame *F, Line const *L, Ind ind) {
    for (U8 i = 0; i < line_nstmts(L); i += 1) {
        Stmt st = *line_stmt(L, i);
        B4 keep = st.kind == StmtKind_Keep || (st.kind == StmtKind_Doc && i == 0 && F->doc_ok);
        if (keep) {
            if (!emit_line(k, ind, src(k, st.start, st.end))) return 0;
            F->content = 1;
        }
    }
    F->doc_ok = 0;
    return 1;
}

static void close_frame(Skel *k, Frame *F) {
    Frame *parent = k->nframes >= 2 ? &k->frames[k->nframes - 2] : 0;
    switch (F->kind) {
    case FrameKind_Class: case FrameKind_Clause:
        if (!F->started) { scan_fail(&k->s, k->at, "expected an indented block"); break; }
        if (F->deco != ~(U8)0) { scan_fail(&k->s, k->at, "a decorator must precede def or class"); break; }
        if (!F->content) emit_dots(k, (Ind){ F->body_ind, 0, 0 });
        if (F->kind == FrameKind_Clause && F->content && parent) parent->content = 1;
        break;
    case FrameKind_Func: scan_fail(&k->s, k->at, "expected an indented block"); break;
    case FrameKind_Skip:
        if (!F->started) scan_fail(&k->s, k->at, "expected an indented block");
        break;
    case FrameKind_Full:
        if (!F->started) { scan_fail(&k->s, k->at, "expected an indented block"); break; }
        emit_line(k, (Ind){ 0 }, src(k, F->full_start, F->full_end));
        break;
    case FrameKind_Cont:
        if (F->dropped) break;
        if (F->content) { if (parent) parent->content = 1; }
        else xar_truncate(k->out, F->out_mark);   /* no clause kept anything: drop the block */
        break;
    default: break;
    }
    qual_pop_to(k, F->qual_depth);
    k->nframes -= 1;
}

/* Header of def/class (decorators included) as written, through its colon. */
static B4 emit_header(Skel *k, Frame *T, Line const *L) {
    U8 start = T->deco != ~(U8)0 ? T->deco : L->phys;
    T->deco = ~(U8)0;
    return emit_line(k, (Ind){ 0 }, src(k, start, L->colon + 1));
}

static B4 on_def(Skel *k, Frame *T, Line const *L) {
    U8 start = T->deco != ~(U8)0 ? T->deco : L->phys;
    U4 qdepth = k->qual_depth;   /* the frames bound it: at most one part per open frame, plus this one */
    B4 dot = k->qual_len != 0;
    k->qual[k->qual_depth++] = (QualPart){ L->name, dot };
    k->qual_len += L->name.len + (dot ? 1 : 0);
    B4 full = qual_in(k, k->full, k->nfull), sig = !full && qual_in(k, k->sigs, k->nsigs);
    T->content = 1;
    if (full) {
        T->deco = ~(U8)0;
        qual_pop_to(k, qdepth);
        if (has_inline(L)) return emit_line(k, (Ind){ 0 }, src(k, start, L->nl));
        Frame *F = push_frame(k, FrameKind_Full, L->col);
        if (!F) return 0;
        F->full_start = start;
        F->full_end = L->nl;
        return 1;
    }
    if (!emit_header(k, T, L)) return 0;
    if (L->kw == Kw_Class && !sig) {
        Frame *F = push_frame(k, FrameKind_Class, L->col);
        if (!F) return 0;
        F->qual_depth = qdepth;
        F->doc_ok = 1;
        if (!has_inline(L)) return 1;
        F->started = 1;
        F->body_ind = src(k, L->phys, L->first);
        if (!emit_stmts(k, F, L, ind_inline(k, L))) return 0;
        if (!F->content) { if (!emit_dots(k, ind_inline(k, L))) return 0; F->content = 1; }
        close_frame(k, F);
        return 1;
    }
    qual_pop_to(k, qdepth);
    if (has_inline(L)) {
        Ind ind = ind_inline(k, L);
        Stmt const *doc = line_stmt(L, 0);
        if (!sig && doc->kind == StmtKind_Doc && !emit_line(k, ind, src(k, doc->start, doc->end))) return 0;
        return emit_dots(k, ind);
    }
    Frame *F = push_frame(k, FrameKind_Func, L->col);
    if (!F) return 0;
    F->no_doc = sig;
    return 1;
}

/* if/elif/else/try/except/finally: the header, then the clause's body. */
static B4 on_clause(Skel *k, Frame *cont, Line const *L) {
    if (cont->dropped) {
        if (has_inline(L)) return 1;
        Frame *F = push_frame(k, FrameKind_Skip, L->col);
        return F != 0;
    }
    if (!emit_line(k, (Ind){ 0 }, src(k, L->phys, L->colon + 1))) return 0;
    Frame *F = push_frame(k, FrameKind_Clause, L->col);
    if (!F) return 0;
    if (!has_inline(L)) return 1;
    F->started = 1;
    if (!emit_stmts(k, F, L, ind_inline(k, L))) return 0;
    if (!F->content && !emit_dots(k, ind_inline(k, L))) return 0;
    if (F->content) cont->content = 1;
    k->nframes -= 1;
    return 1;
}

static B4 on_compound(Skel *k, Frame *T, Line const *L) {
    if (L->kw == Kw_Def || L->kw == Kw_Class) return on_def(k, T, L);
    if (kw_is_clause(L->kw)) return scan_fail(&k->s, L->first, "invalid syntax: clause without its block");
    Frame *C = push_frame(k, FrameKind_Cont, L->col);
    if (!C) return 0;
    C->dropped = L->kw == Kw_Loop;
    C->out_mark = k->out->len;
    return on_clause(k, C, L);
}

/* A logical line directly in a summarised body. */
static B4 on_body_line(Skel *k, Frame *T, Line const *L) {
    if (!T->started) {
        T->started = 1;
        T->body_col = L->col;
        T->body_ind = src(k, L->phys, L->first);
    } else if ((S8)L->col != T->body_col) {
        return scan_fail(&k->s, L->first, (S8)L->col > T->body_col ? "unexpected indent"
                                                                   : "unindent does not match any outer indentation level");
    }
    if (L->kw == Kw_At) { if (T->deco == ~(U8)0) T->deco = L->phys; T->doc_ok = 0; return 1; }
    if (T->deco != ~(U8)0 && L->kw != Kw_Def && L->kw != Kw_Class)
        return scan_fail(&k->s, L->first, "a decorator must precede def or class");
    if (L->compound) { T->doc_ok = 0; return on_compound(k, T, L); }
    return emit_stmts(k, T, L, ind_of(k, L));
}

static B4 on_line(Skel *k, Line const *L) {
    k->at = L->first;
    for (;;) {
        Frame *T = &k->frames[k->nframes - 1];
        if (T->kind == FrameKind_Module) break;
        if (T->kind == FrameKind_Cont) {
            if ((S8)L->col == T->head_col && kw_is_clause(L->kw)) return on_clause(k, T, L);
            if ((S8)L->col > T->head_col) return scan_fail(&k->s, L->first, "unexpected indent");
        } else if ((S8)L->col > T->head_col) {
            break;
        }
        close_frame(k, T);
        if (k->s.err || k->s.arena->failed) return 0;
    }
    Frame *T = &k->frames[k->nframes - 1];
    switch (T->kind) {
    case FrameKind_Skip: T->started = 1; return 1;
    case FrameKind_Full: T->started = 1; T->full_end = L->nl; return 1;
    case FrameKind_Func: {
        Ind ind = ind_of(k, L);
        Stmt const *first = has_inline(L) ? line_stmt(L, 0) : 0;
        B4 doc = !T->no_doc && L->kw != Kw_At && !L->compound && first && first->kind == StmtKind_Doc;
        if (doc && !emit_line(k, ind, src(k, first->start, first->end))) return 0;
        T->kind = FrameKind_Skip;
        T->started = 1;
        return emit_dots(k, ind);
    }
    default: return on_body_line(k, T, L);
    }
}

/* ---- source preparation ---------------------------------------------------- */

/* Copy without BOM, with CR LF and lone CR as LF, NUL-padded. */
static U1 *prepare(Arena *arena, Str8 source, U8 *len) {
    Str8 in = source;
    if (in.len >= 3 && in.ptr[0] == 0xEF && in.ptr[1] == 0xBB && in.ptr[2] == 0xBF) in = str8_skip(in, 3);
    U1 *p = farena_push(arena, in.len + PY_PAD, .alignment = 1);
    if (!p) return 0;
    U8 n = 0;
    if (in.len && memchr(in.ptr, '\r', in.len)) {
        for (U8 i = 0; i < in.len; i += 1) {
            U1 c = in.ptr[i];
            if (c == '\r') { p[n++] = '\n'; if (i + 1 < in.len && in.ptr[i + 1] == '\n') i += 1; }
            else p[n++] = c;
        }
    } else if (in.len) {
        memcpy(p, in.ptr, in.len);
        n = in.len;
    }
    memset(p + n, 0, PY_PAD);
    *len = n;
    return p;
}

static Str8 *split_names(Arena *arena, Str8 list, U4 *count) {
    U4 n = 0;
    for (U8 i = 0; i < list.len; i += 1) n += list.ptr[i] == '\n';
    Str8 *names = farena_push_array(arena, Str8, (U8)n + 1);
    *count = 0;
    if (!names) return 0;
    U8 a = 0;
    for (U8 i = 0; i <= list.len; i += 1) {
        if (i < list.len && list.ptr[i] != '\n') continue;
        if (i > a) names[(*count)++] = str8(list.ptr + a, i - a);
        a = i + 1;
    }
    return names;
}

/* The tokenizer's INDENT/DEDENT rule over every logical line (skipped
 * bodies included): a dedent must land on an open level, and at most
 * PY_MAX_INDENT levels. Whether an indent is allowed is the block machine's. */
static B4 indent_check(Skel *k, Line const *L) {
    U4 top = k->indents[k->nindents - 1];
    if (L->col > top) {
        if (k->nindents >= PY_MAX_INDENT) return scan_fail(&k->s, L->first, "too many levels of indentation");
        k->indents[k->nindents++] = L->col;
        return 1;
    }
    while (L->col < k->indents[k->nindents - 1]) k->nindents -= 1;
    if (L->col != k->indents[k->nindents - 1])
        return scan_fail(&k->s, L->first, "unindent does not match any outer indentation level");
    return 1;
}

static void run_lines(Skel *k) {
    Line L;
    k->indents[0] = 0;
    k->nindents = 1;
    while (!k->s.err && !k->s.arena->failed && scan_line(&k->s, &L)) {
        if (!indent_check(k, &L) || !on_line(k, &L)) break;
    }
    k->at = k->s.len ? k->s.len - 1 : 0;
    while (!k->s.err && !k->s.arena->failed && k->nframes > 1) close_frame(k, &k->frames[k->nframes - 1]);
    if (!k->s.err && k->frames[0].deco != ~(U8)0) scan_fail(&k->s, k->s.len, "a decorator must precede def or class");
}

PySkelStatus py_skeleton_make(Arena *arena, Str8 source, PySkelOpts opts, Xar *out, PySkelError *error) {
    *error = (PySkelError){ 0 };
    Skel *k = farena_push_type(arena, Skel);
    SkelStacks *st = farena_push_array(arena, SkelStacks, 1);   /* not zeroed */
    if (!k || !st) return PySkelStatus_NoMemory;
    k->s.brackets = st->brackets;
    k->s.bracket_at = st->bracket_at;
    k->s.fs = st->fs;
    k->qual = st->qual;
    k->frames = st->frames;
    k->indents = st->indents;
    k->s.arena = arena;
    k->s.stmts = xar_of(arena, Stmt);
    k->s.p = prepare(arena, source, &k->s.len);
    if (!k->s.p) return PySkelStatus_NoMemory;
    k->out = out;
    k->full = split_names(arena, opts.full, &k->nfull);
    k->sigs = split_names(arena, opts.signatures, &k->nsigs);
    if (!k->full || !k->sigs) return PySkelStatus_NoMemory;
    U8 bad = utf8_valid_len(str8(k->s.p, k->s.len));
    if (bad < k->s.len) {
        *error = (PySkelError){ line_at(&k->s, bad), "source is not valid UTF-8" };
        return PySkelStatus_Syntax;
    }
    U1 const *nul = k->s.len ? memchr(k->s.p, 0, k->s.len) : 0;
    if (nul) {   /* first, as the fallback does: the scanning loops then stop at the sentinel only */
        *error = (PySkelError){ line_at(&k->s, (U8)(nul - k->s.p)), "source code cannot contain null bytes" };
        return PySkelStatus_Syntax;
    }
    U8 mark = out->len;
    push_frame(k, FrameKind_Module, -1);
    k->frames[0].doc_ok = 1;
    k->frames[0].started = 1;   /* the module's body is at column 0: an indented first line is */
    k->frames[0].body_col = 0;  /* CPython's "unexpected indent" (`    \` then `x = 1` too) */
    run_lines(k);
    if (arena->failed) return PySkelStatus_NoMemory;
    if (k->s.err) {
        xar_truncate(out, mark);
        *error = (PySkelError){ line_at(&k->s, k->s.err_at), k->s.err };
        return PySkelStatus_Syntax;
    }
    return PySkelStatus_Ok;
}

/* ---- the op ---------------------------------------------------------------- */

static B4 skeleton_input(Ctx *ctx, Input *input, void *state) {
    PySkelOpts const *opts = state;
    PySkelError error;
    if (!ctx_part_begin(ctx)) return 0;
    PySkelStatus st = py_skeleton_make(ctx->arena, input->data, *opts, ctx->out, &error);
    if (st == PySkelStatus_Syntax)
        return ctx_fail_input(ctx, Code_OpFailed, input, "line %llu: %s", (unsigned long long)error.line, error.why);
    return st == PySkelStatus_Ok && ctx_part_end(ctx);
}

B4 op_py_skeleton(Ctx *ctx) {
    PySkelOpts opts = { 0 };
    ctx_param(ctx, "full", &opts.full);
    ctx_param(ctx, "signatures", &opts.signatures);
    return ctx_each_input(ctx, skeleton_input, &opts);
}
