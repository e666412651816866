/* pipeline.h: libchunks' exported interface and the wire constants. */
#ifndef SLOPFAST_PIPELINE_H
#define SLOPFAST_PIPELINE_H

#include "op.h"

#if defined(_WIN32)
#  define EXPORT_ __declspec(dllexport)
#else
#  define EXPORT_ __attribute__((visibility("default")))
#endif

#define WIRE_MAGIC_V2 "SLPF"              /* then the version byte, WIRE_VERSION */
#define WIRE_VERSION 3                    /* of the binary request and response */
#define WIRE_MAGIC_V1 "slopfast-request " /* then the version, "1\n" */
#define WIRE_MAGIC_RESPONSE "SLPR"

/* What pipeline_run returns: the encoded response (data, len) plus its code
 * and message for quick access. The first five fields are the ABI; the
 * arena that owns everything is private. */
Struct_(Response) {
    U1 const *data;
    U8 len;
    S4 code;
    U1 const *message;
    U8 message_len;
    Arena arena_;
};
#define RESPONSE_ABI_BYTES offsetof(Response, arena_)   /* 40 on 64-bit targets */

/* memory_limit: cap on the bytes one call may take (0: none).
 * fail_after: fail the n-th arena block allocation (test builds only). */
Struct_(PipelineOpts) { U8 memory_limit; U8 fail_after; };

EXPORT_ Response *pipeline_run(U1 const *ptr, U8 len);
EXPORT_ Response *pipeline_run_opts(U1 const *ptr, U8 len, PipelineOpts opts);
EXPORT_ void pipeline_free(Response *resp);

/* A caller-owned workspace that keeps its memory from one call to the next
 * (up to 64 MiB), for callers that make many calls: one per thread, never
 * shared by two threads at once. pipeline_run_in's response lives in the
 * context until its next call or pipeline_context_free; it is not passed to
 * pipeline_free. NULL from pipeline_context_new: out of memory. */
Struct_(PipelineContext) {
    Arena arena; U1 *copy; U8 copy_cap;
    TokVocab const *vocabs[LIMIT_VOCABS]; U4 vocab_count;   /* pipeline_context_attach */
};

EXPORT_ PipelineContext *pipeline_context_new(void);
EXPORT_ Response *pipeline_run_in(PipelineContext *context, U1 const *ptr, U8 len);
/* A caller buffer the context answers into: after each pipeline_run_in the
 * first RESPONSE_ABI_BYTES of `buf` hold the Response's ABI fields and, when
 * the encoded response fits in the rest, `data` points into `buf` (the
 * binding then reads the answer without a call per field). NULL: none. */
EXPORT_ void pipeline_context_buffer(PipelineContext *context, U1 *buf, U8 cap);
/* Let the context's memory go down to what it keeps between calls (the
 * last response is then invalid): for a caller done with a large answer. */
EXPORT_ void pipeline_context_trim(PipelineContext *context);
EXPORT_ void pipeline_context_free(PipelineContext *context);

/* The tokens op's vocabulary, built once (docs/tokens.md): from a `ranks`
 * value (one length byte and the bytes per token, in rank order; copied),
 * NULL when it is malformed or memory runs out. Read-only once built: one
 * vocabulary may serve any number of contexts and threads at once. Freed by
 * tokens_vocab_free, after the last call of every context it is attached to. */
EXPORT_ TokVocab *tokens_vocab_new(U1 const *ranks, U8 len);
EXPORT_ void tokens_vocab_free(TokVocab *vocab);
/* A vocabulary as an image, to keep (a file) and map back in: building one
 * takes about 15 ms, adopting its image about 1 ms (lib/tokens.c). _image
 * writes it to out when cap is enough and returns its size either way (0:
 * no vocabulary). _adopt checks an image (8-byte aligned) and returns a
 * vocabulary that reads it in place, NULL when it is not an image of this
 * build or memory runs out; the image must stay, unchanged, until
 * tokens_vocab_free. */
EXPORT_ U8 tokens_vocab_image(TokVocab const *vocab, U1 *out, U8 cap);
EXPORT_ TokVocab *tokens_vocab_adopt(U1 const *image, U8 len);
/* Attach a vocabulary to a context: the index its requests name it by (the
 * tokens op's `vocab` parameter), or -1 (no context or vocabulary, or
 * LIMIT_VOCABS already attached). The context does not own it. */
EXPORT_ S4 pipeline_context_attach(PipelineContext *context, TokVocab const *vocab);
EXPORT_ char const *pipeline_version(void);

B4 wire_decode_v1(Ctx *ctx, Str8 text, Request *req);

#endif
