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

/* NoMemory: the arena's flag says why (memory or the output limit). */
Enum_(PySkelStatus) { PySkelStatus_Ok = 0, PySkelStatus_Syntax = 1, PySkelStatus_NoMemory = 2 };

/* Why the scanner rejected a source: the 1-based line and CPython's wording. */
Struct_(PySkelError) { U8 line; char const *why; };

/* Appends the skeleton of `source` to *out (arena memory). On
 * PySkelStatus_Syntax, *error says why and *out is as it was. */
PySkelStatus py_skeleton_make(Arena *arena, Str8 source, PySkelOpts opts, Xar *out, PySkelError *error);

#endif
