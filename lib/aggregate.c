/* aggregate.c: the aggregate op, many files into one markdown document (docs/build-markdown.md).
 *
 * Each input becomes
 *     "### " CODE_SPAN(PATH) "\n\n" FENCE LANG "\n" BODY "\n" FENCE
 * and sections are joined by "\n\n---\n\n". Part 0 is the document; part 1
 * lists the inputs that could not be read: records "Ii" (index, errno); an
 * input past LIMIT_INPUT_BYTES (inline ones too) is one, with EFBIG. */
#include "op.h"
#include "summary.h"

#include <errno.h>

Struct_(LangMap) { Str8 *suffixes; Str8 *names; U4 count; };

Struct_(BuildOpts) {
    LangMap langs;
    U1 mode;          /* InputMode for inputs that say Default */
};

/* ---- path heading ------------------------------------------------------ */

static U8 longest_backtick_run(Str8 s) {
    U8 best = 0, run = 0;
    for (U8 i = 0; i < s.len; i += 1) {
        run = s.ptr[i] == '`' ? run + 1 : 0;
        best = max_(best, run);
    }
    return best;
}

IA_ U1 shown_byte(U1 c) { return c == '\n' || c == '\r' ? ' ' : c; }

/* A code span that shows the path verbatim: more backticks than any run
 * inside, padded with a space where CommonMark would otherwise strip or
 * merge one. CR and LF in a path are each shown as a space (a heading is one
 * line); the padding looks at the path as shown. An empty path is the plain
 * text EMPTY_PATH_HEADING: no code span, so no path can look like it. */
#define EMPTY_PATH_HEADING "(empty path)"

static B4 write_path_span(Ctx *ctx, Str8 path) {
    if (path.len == 0) return ctx_str8(ctx, str8_lit(EMPTY_PATH_HEADING));
    U8 ticks = longest_backtick_run(path) + 1;
    U1 first = shown_byte(path.ptr[0]), last = shown_byte(path.ptr[path.len - 1]);
    B4 all_spaces = 1;
    for (U8 i = 0; i < path.len; i += 1) all_spaces &= shown_byte(path.ptr[i]) == ' ';
    B4 pad = first == '`' || last == '`' || (first == ' ' && last == ' ' && !all_spaces);
    for (U8 i = 0; i < ticks; i += 1) ctx_write(ctx, (U1 const *)"`", 1);
    if (pad) ctx_write(ctx, (U1 const *)" ", 1);
    U8 start = 0;
    for (U8 i = 0; i < path.len; i += 1) {
        if (path.ptr[i] != '\n' && path.ptr[i] != '\r') continue;
        ctx_write(ctx, path.ptr + start, i - start);
        ctx_write(ctx, (U1 const *)" ", 1);
        start = i + 1;
    }
    ctx_write(ctx, path.ptr + start, path.len - start);
    if (pad) ctx_write(ctx, (U1 const *)" ", 1);
    for (U8 i = 0; i < ticks; i += 1) ctx_write(ctx, (U1 const *)"`", 1);
    return 1;
}

/* ---- language tag -------------------------------------------------------- */

/* An info string of a backtick fence may not hold a backtick; we also keep
 * it to one word so the tag cannot carry more than a language name. */
static B4 safe_info_string(Str8 s) {
    for (U8 i = 0; i < s.len; i += 1) if (s.ptr[i] == '`' || s.ptr[i] <= ' ' || s.ptr[i] == 0x7f) return 0;
    return 1;
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

/* ---- fence ------------------------------------------------------------- */

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

/* ---- sections ---------------------------------------------------------- */

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

static B4 write_section(Ctx *ctx, BuildOpts const *opts, Input *input, Str8 body) {
    U8 fence = fence_length_for(body);
    ctx_str8(ctx, str8_lit("### "));
    write_path_span(ctx, input->path);
    ctx_str8(ctx, str8_lit("\n\n"));
    write_fence(ctx, fence);
    ctx_str8(ctx, language_of(opts, input->path));
    ctx_str8(ctx, str8_lit("\n"));
    ctx_str8(ctx, body);
    ctx_str8(ctx, str8_lit("\n"));
    return write_fence(ctx, fence);
}

/* The body of a section: the content, or a summary written into scratch
 * output first (the fence depends on the whole body). */
static B4 section_body(Ctx *ctx, BuildOpts const *opts, Input *input, Str8 *body) {
    U1 mode = input->mode ? input->mode : opts->mode;
    if (mode == InputMode_Full) { *body = input->data; return 1; }
    return summary_body(ctx, input->path, input->data, mode == InputMode_Skeleton, body);
}

B4 op_aggregate(Ctx *ctx) {
    BuildOpts opts = { 0 };
    if (!parse_langs(ctx, &opts.langs) || !parse_mode_param(ctx, &opts.mode)) return 0;
    Request *req = ctx->req;
    S4 *errnos = farena_push_array(ctx->arena, S4, req->input_count ? req->input_count : 1, .zero = 1);
    if (!errnos) return ctx_fail(ctx, Code_NoMemory, "out of memory");

    ctx_part_begin(ctx);
    B4 first = 1;
    for (U4 i = 0; i < req->input_count; i += 1) {
        Input *input = &req->inputs[i];
        Str8 body;
        if (!input_load(ctx, input)) { errnos[i] = input->load_errno; continue; }
        /* content past LIMIT_INPUT_BYTES, inline too: unreadable, as a file would be */
        if (input->data.len > LIMIT_INPUT_BYTES) { errnos[i] = EFBIG; continue; }
        if (!section_body(ctx, &opts, input, &body)) return 0;
        if (!first) ctx_str8(ctx, str8_lit("\n\n---\n\n"));
        first = 0;
        if (!write_section(ctx, &opts, input, body)) return 0;
    }
    ctx_part_end(ctx);

    ctx_records_begin(ctx, "Ii");
    for (U4 i = 0; i < req->input_count; i += 1) {
        if (errnos[i]) ctx_rec_u4(ctx, i), ctx_rec_s4(ctx, errnos[i]);
    }
    return ctx_records_end(ctx);
}
