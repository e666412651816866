/* aggregate.c: the aggregate op, many files into one markdown document (docs/build-markdown.md).
 *
 * Each input becomes
 *     "### " CODE_SPAN(PATH) "\n\n" FENCE LANG "\n" BODY "\n" FENCE
 * and sections are joined by "\n\n---\n\n". The document is part 0, or,
 * with parameter out_fd, written to that descriptor as it is made (part 0
 * then empty): memory holds one file and about FLUSH_BYTES of document at a
 * time, whatever the total. Each file is opened once and, with the load
 * checks (parameters nofollow, sniff, max_bytes), judged on that descriptor.
 *
 * Part 1: inputs that could not be read, records "Ii" (index, errno); an
 * input past LIMIT_INPUT_BYTES (inline ones too) is one, with EFBIG.
 * Part 2: every other input, records "IBQ" (index, Skip, value: the bytes
 * of a taken input, else its skip_value).
 * Part 3: one record "Qi": document bytes written, and the errno of a
 * failed write to out_fd (0 if none; the call stops there). */
#include "op.h"
#include "summary.h"

#include <errno.h>

Struct_(LangMap) { Str8 *suffixes; Str8 *names; U4 count; };

Struct_(BuildOpts) {
    LangMap langs;
    U1 mode;              /* InputMode for inputs that say Default */
    LoadChecks checks;
    B4 checked;           /* any of nofollow, sniff, max_bytes given */
    S4 out_fd;            /* -1: the document is part 0 */
    B4 continues;         /* a section precedes this request's: start with a separator */
};

/* Past this much pending document the op writes it out; a body of at least
 * DIRECT_BYTES goes to the descriptor straight from where it was read. */
enum { FLUSH_BYTES = 1 << 20, DIRECT_BYTES = 1 << 18 };

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

/* A flag parameter: "0" or "1", absent is 0. */
static B4 param_flag(Ctx *ctx, char const *key, B4 *out) {
    U8 v = 0;
    if (!ctx_param_u8(ctx, key, &v)) return 0;
    if (v > 1) return ctx_fail(ctx, Code_BadParam, "parameter %s: expected 0 or 1", key);
    *out = (B4)v;
    return 1;
}

/* The output descriptor (out_fd) and the load checks. Under checks, the
 * output file itself, when it is a regular file, is never read. */
static B4 parse_stream_params(Ctx *ctx, BuildOpts *opts) {
    U8 fd = (U8)-1, max_bytes = 0;
    if (!ctx_param_u8(ctx, "out_fd", &fd) || !ctx_param_u8(ctx, "max_bytes", &max_bytes)) return 0;
    if (!param_flag(ctx, "nofollow", &opts->checks.nofollow) || !param_flag(ctx, "sniff", &opts->checks.sniff)
        || !param_flag(ctx, "continues", &opts->continues)) return 0;
    Str8 v;
    if (fd != (U8)-1 && fd > 0x7fffffff) return ctx_fail(ctx, Code_BadParam, "parameter out_fd: not a descriptor");
    opts->out_fd = fd == (U8)-1 ? -1 : (S4)fd;
#ifdef SLOPFAST_FUZZ_OUT_FD
    /* fuzz builds: whatever descriptor a request names, the document goes to
     * the harness's /dev/null, never into the fuzzer's own files */
    if (opts->out_fd >= 0) opts->out_fd = SLOPFAST_FUZZ_OUT_FD;
#endif
    opts->checks.max_bytes = max_bytes;
    opts->checked = ctx_param(ctx, "nofollow", &v) || ctx_param(ctx, "sniff", &v) || ctx_param(ctx, "max_bytes", &v);
    if (opts->checked && opts->out_fd >= 0)
        opts->checks.avoid = fd_file_identity(opts->out_fd, &opts->checks.avoid_dev, &opts->checks.avoid_ino);
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

/* Pending document (part 0 after its length field) out to the descriptor. */
Struct_(Sink) { S4 fd; U8 body_at; U8 written; S4 err; };

static B4 sink_flush(Ctx *ctx, Sink *sink) {
    if (sink->fd < 0 || sink->err) return !sink->err;
    U8 pending = ctx->out->len - sink->body_at;
    if (!xar_write_fd(ctx->out, sink->body_at, sink->fd, &sink->err)) return 0;
    sink->written += pending;
    ctx->out->len = sink->body_at;   /* the chunks stay for the next section */
    return 1;
}

/* A large body goes to the descriptor from where it lies, uncopied. */
static B4 sink_body(Ctx *ctx, Sink *sink, Str8 body) {
    if (sink->fd < 0 || body.len < DIRECT_BYTES) return ctx_str8(ctx, body);
    if (!sink_flush(ctx, sink) || !fd_write_all(sink->fd, body.ptr, body.len, &sink->err)) return 0;
    sink->written += body.len;
    return 1;
}

static B4 write_section(Ctx *ctx, Sink *sink, BuildOpts const *opts, Input *input, Str8 body) {
    U8 fence = fence_length_for(body);
    ctx_str8(ctx, str8_lit("### "));
    write_path_span(ctx, input->path);
    ctx_str8(ctx, str8_lit("\n\n"));
    write_fence(ctx, fence);
    ctx_str8(ctx, language_of(opts, input->path));
    ctx_str8(ctx, str8_lit("\n"));
    if (!sink_body(ctx, sink, body)) return 0;
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

/* Load one input and make its body in `scratch` (emptied per input, so a
 * call holds one file at a time). 0 when the input is left out (load_errno
 * or skip says why), or on a failure (ctx->code, or the arena's flag). */
static B4 load_body(Ctx *ctx, Arena *scratch, BuildOpts const *opts, Input *input, Str8 *body) {
    Arena *arena = ctx->arena;
    ctx->arena = scratch;
    B4 ok = input_load_checked(ctx, input, opts->checked ? &opts->checks : 0);
    /* content past LIMIT_INPUT_BYTES, inline too: unreadable, as a file would be */
    if (ok && input->data.len > LIMIT_INPUT_BYTES) input->load_errno = EFBIG, ok = 0;
    if (ok) ok = section_body(ctx, opts, input, body);
    ctx->arena = arena;
    if (scratch->failed) arena->failed = scratch->failed;
    /* an error's message was made in scratch: keep a copy */
    if (ctx->code != Code_Ok) ctx->message = arena_copy(arena, ctx->message), ctx->detail = arena_copy(arena, ctx->detail);
    return ok;
}

B4 op_aggregate(Ctx *ctx) {
    BuildOpts opts = { 0 };
    if (!parse_langs(ctx, &opts.langs) || !parse_mode_param(ctx, &opts.mode) || !parse_stream_params(ctx, &opts)) return 0;
    Request *req = ctx->req;
    Arena scratch = { 0 };

    ctx_part_begin(ctx);
    Sink sink = { .fd = opts.out_fd, .body_at = ctx->out->len };
    B4 first = !opts.continues;
    for (U4 i = 0; i < req->input_count && !sink.err; i += 1) {
        Input *input = &req->inputs[i];
        Str8 body;
        B4 ok = load_body(ctx, &scratch, &opts, input, &body);
        if (ok) {
            if (!first) ctx_str8(ctx, str8_lit("\n\n---\n\n"));
            first = 0;
            write_section(ctx, &sink, &opts, input, body);
            if (ctx->out->len - sink.body_at >= FLUSH_BYTES) sink_flush(ctx, &sink);
            input->skip_value = input->data.len;
        }
        input->data = str8(0, 0);
        arena_reset(&scratch);
        if (ctx->code != Code_Ok || ctx->arena->failed) { arena_release(&scratch); return 0; }
    }
    arena_release(&scratch);
    sink_flush(ctx, &sink);
    if (sink.fd < 0) sink.written = ctx->out->len - sink.body_at;
    ctx_part_end(ctx);

    ctx_records_begin(ctx, "Ii");
    for (U4 i = 0; i < req->input_count; i += 1) {
        Input const *in = &req->inputs[i];
        if (in->loaded && in->load_errno) ctx_rec_u4(ctx, i), ctx_rec_s4(ctx, in->load_errno);
    }
    ctx_records_end(ctx);
    ctx_records_begin(ctx, "IBQ");
    for (U4 i = 0; i < req->input_count; i += 1) {
        Input const *in = &req->inputs[i];
        if (in->loaded && !in->load_errno) ctx_rec_u4(ctx, i), ctx_rec_u1(ctx, in->skip), ctx_rec_u8(ctx, in->skip_value);
    }
    ctx_records_end(ctx);
    ctx_records_begin(ctx, "Qi");
    ctx_rec_u8(ctx, sink.written), ctx_rec_s4(ctx, sink.err);
    return ctx_records_end(ctx);
}
