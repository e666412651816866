/* summary.h: the body the aggregate op writes for an input in summary or
 * skeleton mode (docs/build-markdown.md). */
#ifndef SLOPFAST_SUMMARY_H
#define SLOPFAST_SUMMARY_H

#include "op.h"

/* The suffix of the last path component: after its last '.', unless that
 * dot starts the name or ends it (".bashrc", "notes."). */
Str8 path_suffix(Str8 path);

/* Writes the summary of `data` (named `path`) into arena memory at *body.
 * Summary mode: markdown files their outline, Python files their skeleton,
 * other files the generic summary. Skeleton mode: Python files their
 * skeleton, other files their content. A Python file the scanner rejects
 * and a markdown file with no heading get the generic summary. */
B4 summary_body(Ctx *ctx, Str8 path, Str8 data, B4 skeleton, Str8 *body);

#endif
