/* op.h: the request model every op sees, and the op table.
 *
 * A request is a list of ops and a list of inputs (docs/wire-format.md).
 * Each op runs over all inputs in order and appends "parts" to the
 * response: length-prefixed byte strings whose layout the op defines. */
#ifndef SLOPFAST_OP_H
#define SLOPFAST_OP_H

#include "base.h"

/* Explicit limits: every count and size read from a request is checked
 * against these before use. */
enum {
    LIMIT_OPS          = 64,
    LIMIT_PARAMS       = 64,
    LIMIT_INPUTS       = 1u << 20,
    LIMIT_NAME_BYTES   = (1u << 16) - 1, /* op names, param keys, paths: a v2 U2 length */
    LIMIT_DEPTH        = 10000,          /* nesting depth any op will follow */
};
/* The byte limits can be lowered at build time (-DSLOPFAST_LIMIT_..._BYTES=N),
 * so tests reach them with small inputs; shipped builds keep the defaults. */
#ifndef SLOPFAST_LIMIT_REQUEST_BYTES
#define SLOPFAST_LIMIT_REQUEST_BYTES ((U8)1 << 32)
#endif
#ifndef SLOPFAST_LIMIT_INPUT_BYTES
#define SLOPFAST_LIMIT_INPUT_BYTES ((U8)1 << 31)
#endif
#ifndef SLOPFAST_LIMIT_OUTPUT_BYTES
#define SLOPFAST_LIMIT_OUTPUT_BYTES ((U8)1 << 33)
#endif
#define LIMIT_REQUEST_BYTES ((U8)(SLOPFAST_LIMIT_REQUEST_BYTES))  /* 4 GiB: the request blob */
#define LIMIT_INPUT_BYTES   ((U8)(SLOPFAST_LIMIT_INPUT_BYTES))    /* 2 GiB: one file read by the C side */
#define LIMIT_OUTPUT_BYTES  ((U8)(SLOPFAST_LIMIT_OUTPUT_BYTES))   /* 8 GiB: the response parts, with their length fields */

/* Xar.failed is 1 when memory ran out, XAR_FAILED_LIMIT when an append
 * would have taken the Xar past LIMIT_OUTPUT_BYTES. */
enum { XAR_FAILED_LIMIT = 2 };

Enum_(Code) {
    Code_Ok = 0,
    Code_BadRequest = 1,     /* malformed envelope, bad magic/version, forged length */
    Code_UnknownOp = 2,
    Code_BadParam = 3,
    Code_InputError = 4,     /* a file input is missing or unreadable */
    Code_Limit = 5,          /* a named limit was exceeded */
    Code_NoMemory = 6,
    Code_OpFailed = 7,       /* an op's own error */
};

Enum_(InputKind) { InputKind_Inline = 0, InputKind_File = 1 };

/* Per-input mode; 0 means "use the op's mode parameter". */
Enum_(InputMode) {
    InputMode_Default = 0,
    InputMode_Full = 1,
    InputMode_Summary = 2,
    InputMode_Skeleton = 3,
    InputMode_Count_,
};

Struct_(Param) { Str8 key; Str8 value; };

Struct_(OpReq) {
    Str8 name;
    Param *params;
    U4 param_count;
};

Struct_(Input) {
    U1 kind;        /* InputKind */
    U1 mode;        /* InputMode */
    Str8 path;      /* display path; for file inputs also the path read */
    Str8 data;      /* inline bytes, or the file's bytes once loaded */
    B4 loaded;
    S4 load_errno;  /* 0, or the errno of a failed read */
};

Enum_(ResponseFormat) { ResponseFormat_Binary = 0, ResponseFormat_Text = 1 };

Struct_(Request) {
    U1 version;
    U1 response_format;
    OpReq *ops;
    U4 op_count;
    Input *inputs;
    U4 input_count;
};

Struct_(Ctx) {
    Arena *arena;        /* everything of this call; freed with the response */
    Request *req;
    OpReq *op;           /* the op being run */
    Xar *out;            /* response parts */
    U4 part_count;
    U8 part_start;       /* offset of the open part's length field */
    S4 code;
    Str8 message;
};

typedef B4 OpFn(Ctx *ctx);

Struct_(OpEntry) { char const *name; U4 id; OpFn *fn; };

/* ---- helpers for ops (ops.c) ------------------------------------------- */

/* Set an error (message formatted printf-style) and return 0, so an op can
 * `return ctx_fail(ctx, Code_BadParam, "...")`. */
B4 ctx_fail(Ctx *ctx, Code code, char const *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Parts: begin, append bytes with ctx_write*, end. */
B4 ctx_part_begin(Ctx *ctx);
B4 ctx_part_end(Ctx *ctx);
B4 ctx_write(Ctx *ctx, U1 const *ptr, U8 len);
IA_ B4 ctx_str8(Ctx *ctx, Str8 s) { return ctx_write(ctx, s.ptr, s.len); }

/* Look up a parameter of the current op; returns 1 and sets *out if present. */
B4 ctx_param(Ctx *ctx, char const *key, Str8 *out);
/* Parse an unsigned decimal parameter; missing leaves *out unchanged. */
B4 ctx_param_u8(Ctx *ctx, char const *key, U8 *out);

/* Load an input's bytes (reads the file for file inputs). Returns 1 on
 * success; on failure returns 0 with input->load_errno set and no error in
 * ctx (the op decides whether a missing file is fatal). */
B4 input_load(Ctx *ctx, Input *input);

OpEntry const *op_lookup(Str8 name);

#define OP_(name, id) B4 op_##name(Ctx *ctx);
#include "op_table.h"
#undef OP_

#endif
