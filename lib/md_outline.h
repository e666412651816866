/* md_outline.h: CommonMark heading outlines (the md_outline and md_summary
 * ops), shared with the aggregate op's summary mode (summary.c).
 *
 * The block structure follows markdown-it-py's "commonmark" preset exactly
 * (docs/markdown-outline.md): the same headings, the same text, the same
 * 0-based start lines. */
#ifndef SLOPFAST_MD_OUTLINE_H
#define SLOPFAST_MD_OUTLINE_H

#include "op.h"

/* Writes the summary rendering of the markdown `text` (one line per heading:
 * two spaces per level below 1, "- ", the heading text with newlines made
 * spaces, "\n") into the part that is open in ctx. Returns 0 on failure:
 * the arena's flag (memory, the output limit) or an error in ctx. */
B4 md_summary_write(Ctx *ctx, Str8 text);

#endif
