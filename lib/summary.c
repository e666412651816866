/* summary.c: summaries for the aggregate op's summary and skeleton modes
 * (summary.h has the rules). */
#include "summary.h"
#include "md_outline.h"
#include "py_skeleton.h"

#include <stdio.h>

enum { GENERIC_SUMMARY_LINES = 20 };

Enum_(FileKind) { FileKind_Other, FileKind_Markdown, FileKind_Python };

Str8 path_suffix(Str8 path) {
    U8 name_start = 0;
    for (U8 i = 0; i < path.len; i += 1) if (path.ptr[i] == '/') name_start = i + 1;
    Str8 name = str8_skip(path, name_start);
    for (U8 i = name.len; i > 0; i -= 1) {
        if (name.ptr[i - 1] != '.') continue;
        if (i - 1 == 0 || i == name.len) return str8(0, 0);
        return str8_skip(name, i);
    }
    return str8(0, 0);
}

static B4 ascii_ieq(Str8 s, char const *lower) {
    U8 n = strlen(lower);
    if (s.len != n) return 0;
    for (U8 i = 0; i < n; i += 1) {
        U1 c = s.ptr[i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != (U1)lower[i]) return 0;
    }
    return 1;
}

/* By suffix, ignoring ASCII case: .md/.markdown, .py/.pyi. */
static FileKind file_kind(Str8 path) {
    Str8 suffix = path_suffix(path);
    if (ascii_ieq(suffix, "md") || ascii_ieq(suffix, "markdown")) return FileKind_Markdown;
    if (ascii_ieq(suffix, "py") || ascii_ieq(suffix, "pyi")) return FileKind_Python;
    return FileKind_Other;
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

/* The markdown outline, or the generic summary when there is no heading. */
static B4 markdown_summary(Ctx *ctx, Xar *scratch, Str8 data) {
    if (!md_summary_write(ctx, data)) return 0;
    return scratch->len ? 1 : generic_summary(ctx, data);
}

/* The default skeleton; 0 when the scanner rejects the source (or memory
 * gave out: the arena's flag). */
static B4 python_skeleton(Ctx *ctx, Str8 data, Str8 *body) {
    Xar out = { .arena = ctx->arena };
    PySkelError error;
    if (py_skeleton_make(ctx->arena, data, (PySkelOpts){ 0 }, &out, &error) != PySkelStatus_Ok) return 0;
    *body = xar_contiguous(&out, ctx->arena);
    return ctx->arena->failed == Fail_None;
}

B4 summary_body(Ctx *ctx, Str8 path, Str8 data, B4 skeleton, Str8 *body) {
    FileKind kind = file_kind(path);
    if (kind == FileKind_Python && python_skeleton(ctx, data, body)) return 1;
    if (ctx->arena->failed || ctx->code != Code_Ok) return 0;
    if (skeleton && kind != FileKind_Python) { *body = data; return 1; }

    /* write into scratch output, then hand back one flat copy */
    Xar scratch = { .arena = ctx->arena };
    Xar *saved = ctx->out;
    ctx->out = &scratch;
    B4 ok = kind == FileKind_Markdown && !skeleton ? markdown_summary(ctx, &scratch, data) : generic_summary(ctx, data);
    ctx->out = saved;
    if (!ok || ctx->arena->failed) return 0;   /* the arena's flag or ctx says why */
    *body = xar_contiguous(&scratch, ctx->arena);
    return ctx->arena->failed == Fail_None;
}
