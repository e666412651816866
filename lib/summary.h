/* summary.h: the body build_markdown writes for an input in summary or
 * skeleton mode (docs/build-markdown.md). */
#ifndef SLOPFAST_SUMMARY_H
#define SLOPFAST_SUMMARY_H

#include "op.h"

/* Writes the summary of `data` (named `path`) into arena memory at *body. */
B4 summary_body(Ctx *ctx, Str8 path, Str8 data, B4 skeleton, Str8 *body);

#endif
