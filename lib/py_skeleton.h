/* py_skeleton.h: the skeleton of a Python module (docs/python-skeleton.md).
 *
 * A lexical scanner (no parse tree) keeps the module docstring, imports,
 * assignments, def/class headers with their docstrings, and if/try blocks
 * that hold any of these; bodies become an indented `...`. The output is
 * byte-identical to fallbacks/py_skeleton.py for every source `ast` accepts. */
#ifndef SLOPFAST_PY_SKELETON_H
#define SLOPFAST_PY_SKELETON_H

#include "op.h"

/* Qualified names ("Class.method"), newline-separated: symbols whose whole
 * source (full) or header only (signatures) the skeleton keeps. */
Struct_(PySkelOpts) { Str8 full; Str8 signatures; };

Enum_(PySkelStatus) { PySkel_Ok = 0, PySkel_Syntax = 1, PySkel_NoMemory = 2 };

/* The skeleton of `source` in arena memory at *out. PySkel_Syntax when the
 * scanner rejects the source, with a message ("line N: why") at *error. */
PySkelStatus py_skeleton_make(Arena *arena, Str8 source, PySkelOpts opts, Str8 *out, Str8 *error);

/* Writes the default skeleton of `source` into the currently open part
 * (build_markdown's skeleton mode). Rejected source: ctx_fail with
 * Code_OpFailed and the scanner's message; nothing is written. */
B4 py_skeleton_write(Ctx *ctx, Str8 source);

#endif
