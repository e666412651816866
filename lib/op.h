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
    LIMIT_NAME_BYTES   = (1u << 16) - 1, /* op names, param keys, paths: a U2 length */
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

/* Per-input mode; 0 means "use the op's mode parameter". The names are
 * INPUT_MODE_NAMES, in order (slopfast.wire.MODE_NAMES is checked against
 * them by tests/test_ops.py). */
Enum_(InputMode) {
    InputMode_Default = 0,
    InputMode_Full = 1,
    InputMode_Summary = 2,
    InputMode_Skeleton = 3,
    InputMode_Count_,
};
#define INPUT_MODE_NAMES { "default", "full", "summary", "skeleton" }
/* The mode named `name`; 0 when no mode has that name. */
B4 input_mode_parse(Str8 name, U1 *mode);

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
    U1 skip;        /* Skip: why the load checks left the file out (0: they did not) */
    U8 skip_value;  /* Skip_TooLarge: the size seen; Skip_Special: st_mode's file type bits;
                       an input aggregate took: its bytes (its records report this value) */
};

/* Why the load checks (LoadChecks) left a readable file out; the names
 * are SKIP_NAMES, in order (slopfast.wire.SKIP_NAMES is checked against
 * them by tests/test_ops.py). */
Enum_(Skip) {
    Skip_None = 0,
    Skip_Binary = 1,     /* a NUL byte in the first SNIFF_BYTES */
    Skip_TooLarge = 2,   /* past max_bytes, by fstat or by what was read */
    Skip_Special = 3,    /* not a regular file (FIFO, socket, device): never read */
    Skip_Output = 4,     /* the file the document is written to */
    Skip_Symlink = 5,    /* a symlink, refused by O_NOFOLLOW */
    Skip_Count_,
};
#define SKIP_NAMES { "", "binary", "too-large", "special", "output", "symlink" }
enum { SNIFF_BYTES = 8192 };

/* What a checked load refuses, decided on the open descriptor and on the
 * bytes read from it, never on an earlier stat: a file swapped between a
 * walk and its read is judged as what is read. */
Struct_(LoadChecks) {
    B4 nofollow;         /* open with O_NOFOLLOW (POSIX) */
    B4 sniff;            /* Skip_Binary */
    U8 max_bytes;        /* Skip_TooLarge past it; 0: only LIMIT_INPUT_BYTES (EFBIG) */
    B4 avoid;            /* Skip_Output for the file (avoid_dev, avoid_ino) */
    U8 avoid_dev, avoid_ino;
    B4 bom_text;         /* a UTF-16 or UTF-32 BOM makes the file text: not sniffed */
};

/* The byte order mark a content starts with (UTF-32 before UTF-16: FF FE 00 00 is UTF-32LE). */
Enum_(Bom) { Bom_None, Bom_Utf8, Bom_Utf16Le, Bom_Utf16Be, Bom_Utf32Le, Bom_Utf32Be };
Bom bom_of(Str8 data);

Enum_(ResponseFormat) { ResponseFormat_Binary = 0, ResponseFormat_Text = 1 };

Struct_(Request) {
    U1 version;
    U1 response_format;
    OpReq *ops;
    U4 op_count;
    Input *inputs;
    U4 input_count;
};

/* A record part being written (docs/wire-format.md, "Record parts"). */
Struct_(Records) {
    Str8 schema;         /* one type letter per column: B I i Q q s t */
    U4 column;           /* the next column to write */
    U4 rows;
    U8 rows_at;          /* offset of the row count in ctx->out */
};

/* A vocabulary of the tokens op built once by the caller (lib/tokens.c,
 * tokens_vocab_new in lib/pipeline.h), read-only once built. */
typedef struct TokVocab TokVocab;
enum { LIMIT_VOCABS = 8 };   /* vocabularies attached to one PipelineContext */

Struct_(Ctx) {
    Arena *arena;        /* everything of this call; freed with the response */
    Request *req;
    OpReq *op;           /* the op being run */
    Xar *out;            /* response parts */
    U4 part_count;
    U8 part_start;       /* offset of the open part's length field */
    S4 code;
    Str8 message;        /* "OP: PATH: DETAIL", or DETAIL alone for errors of no op or input */
    Str8 detail;         /* what went wrong, without the op and path */
    S4 fail_input;       /* the input the error is about, or -1 */
    Records records;     /* the open record part, if any */
    TokVocab const *const *vocabs;   /* the caller's context's attached vocabularies (tokens' `vocab`) */
    U4 vocab_count;
};

typedef B4 OpFn(Ctx *ctx);

Struct_(OpEntry) { char const *name; U4 id; OpFn *fn; };

/* ---- helpers for ops (core.c) ------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
#  define PRINTF_(f, a) __attribute__((format(printf, f, a)))
#else
#  define PRINTF_(f, a)
#endif

/* Set an error (detail formatted printf-style) and return 0, so an op can
 * `return ctx_fail(ctx, Code_BadParam, "...")`. The message is
 * "OP: DETAIL" while an op runs, DETAIL alone before. */
B4 ctx_fail(Ctx *ctx, Code code, char const *fmt, ...) PRINTF_(3, 4);
/* The same, about one input: the message is "OP: PATH: DETAIL" and the
 * error record names the input (Python raises with the detail alone). */
B4 ctx_fail_input(Ctx *ctx, Code code, Input const *input, char const *fmt, ...) PRINTF_(4, 5);

/* Parts: begin, append bytes with ctx_write*, end. */
B4 ctx_part_begin(Ctx *ctx);
B4 ctx_part_end(Ctx *ctx);
B4 ctx_write(Ctx *ctx, U1 const *ptr, U8 len);
IA_ B4 ctx_str8(Ctx *ctx, Str8 s) { return ctx_write(ctx, s.ptr, s.len); }

/* Record parts: ctx_records_begin(ctx, "BIt") opens a part with that schema;
 * each row is its columns in order through ctx_rec_*, each checked against
 * the schema (a mismatch fails the call: an op bug, never bad output);
 * ctx_records_end writes the row count and closes the part. */
B4 ctx_records_begin(Ctx *ctx, char const *schema);
B4 ctx_records_end(Ctx *ctx);
B4 ctx_rec_u1(Ctx *ctx, U1 v);    /* B */
B4 ctx_rec_u4(Ctx *ctx, U4 v);    /* I */
B4 ctx_rec_s4(Ctx *ctx, S4 v);    /* i */
B4 ctx_rec_u8(Ctx *ctx, U8 v);    /* Q */
B4 ctx_rec_s8(Ctx *ctx, S8 v);    /* q */
B4 ctx_rec_bytes(Ctx *ctx, Str8 s);   /* s: U4 length + bytes */
B4 ctx_rec_text(Ctx *ctx, Str8 s);    /* t: the same, valid UTF-8 */

/* The usual op body: for each input in order, load it (an unreadable file
 * fails the call with code 4, "OP: PATH: cannot read (errno E)"), then
 * run `fn`, which writes that input's part(s). */
typedef B4 InputFn(Ctx *ctx, Input *input, void *state);
B4 ctx_each_input(Ctx *ctx, InputFn *fn, void *state);

/* Look up a parameter of the current op; returns 1 and sets *out if present. */
B4 ctx_param(Ctx *ctx, char const *key, Str8 *out);
/* Parse an unsigned decimal parameter; missing leaves *out unchanged. */
B4 ctx_param_u8(Ctx *ctx, char const *key, U8 *out);
/* 1 to 19 ASCII digits: the one decimal parser (parameters, v1 lengths). */
B4 parse_u8_decimal(Str8 s, U8 *out);

/* Load an input's bytes (reads the file for file inputs). Returns 1 on
 * success; on failure returns 0 with input->load_errno set and no error in
 * ctx (the op decides whether a missing file is fatal). */
B4 input_load(Ctx *ctx, Input *input);
/* The same with checks (NULL: none): 0 also when a check leaves the file
 * out (input->skip set, load_errno 0). Inline inputs are not checked. */
B4 input_load_checked(Ctx *ctx, Input *input, LoadChecks const *checks);
/* The same, the bytes (and the path's copy) in `arena`: touches no Ctx, so
 * another thread may load an input the op does not touch meanwhile. */
B4 input_load_in(Arena *arena, Input *input, LoadChecks const *checks);

/* Write all of [ptr, ptr + len) to a descriptor (EINTR and short writes
 * retried); 0 with *err set on failure. */
B4 fd_write_all(S4 fd, U1 const *ptr, U8 len, S4 *err);
/* The same for bytes [at, len) of a Xar. */
B4 xar_write_fd(Xar const *xar, U8 at, S4 fd, S4 *err);
/* (st_dev, st_ino) of the regular file open as fd: 0 when it is not one,
 * or on Windows (no inode numbers to compare). */
B4 fd_file_identity(S4 fd, U8 *dev, U8 *ino);

/* A lock with one condition, and a thread: for an op's helper thread,
 * joined before the op returns. NULL when one cannot be made: the op then
 * does the work itself. */
typedef struct Sync Sync;
typedef struct Thread Thread;
Sync *sync_new(void);
void sync_free(Sync *sync);
void sync_lock(Sync *sync);
void sync_unlock(Sync *sync);
void sync_wait(Sync *sync);   /* held: unlocks, sleeps until a sync_wake, locks again */
void sync_wake(Sync *sync);   /* wakes every waiter */
Thread *thread_start(void (*fn)(void *arg), void *arg);
void thread_join(Thread *thread);   /* and frees it */

OpEntry const *op_lookup(Str8 name);

/* lib/tokens.c: a vocabulary from a `ranks` value (copied); 0 when the
 * value is malformed or memory runs out. */
TokVocab *tok_vocab_new(U1 const *ranks, U8 len);
U8 tok_vocab_image(TokVocab const *vocab, U1 *out, U8 cap);
TokVocab *tok_vocab_adopt(U1 const *image, U8 len);
void tok_vocab_free(TokVocab *vocab);
/* A token counter for another op, from its `encoding` and `vocab`
 * parameters (as the tokens op reads them; vocab required), its memory in
 * `arena`, its memo sized for about `bytes` of text; 0 on failure (set in
 * ctx). tok_count adds the tokens of `data` (read as Python's
 * decode("utf-8", "replace") reads it; a U+FFFD copy goes in `temp`) to
 * *total; `about`, if not 0, is the input an error names. */
typedef struct TokCounter TokCounter;
TokCounter *tok_counter(Ctx *ctx, Arena *arena, U8 bytes);
B4 tok_count(TokCounter *k, Str8 data, Arena *temp, Input const *about, U8 *total);
/* A counter for another thread: `of`'s vocabulary (read-only, shared), memos
 * of its own in `arena`; 0 when memory runs out. */
TokCounter *tok_counter_twin(TokCounter const *of, Arena *arena, U8 bytes);

#define OP_(name, id) B4 op_##name(Ctx *ctx);
#include "op_table.h"
#undef OP_

#endif
