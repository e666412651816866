/* pipeline.c: the exported entry points. Decodes a request (wire binary
 * or v1 text, docs/wire-format.md), runs its ops in order, encodes one
 * response. Every length is checked against the bytes that remain. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>

#ifndef SLOPFAST_BUILD_ID
#define SLOPFAST_BUILD_ID "dev"
#endif
#define SLOPFAST_LIB_VERSION "0.1.0"

/* ---- binary request (SLPF, WIRE_VERSION) --------------------------------------------- */

static B4 fail_truncated(Ctx *ctx, Reader *r, char const *what) {
    return ctx_fail(ctx, Code_BadRequest, "truncated request: %s does not fit in the %llu bytes left at offset %llu",
                    what, (unsigned long long)reader_left(r), (unsigned long long)r->at);
}

static B4 decode_binary_op(Ctx *ctx, Reader *r, OpReq *op) {
    U2 name_len = read_u2(r);
    op->name = read_bytes(r, name_len);
    U2 count = read_u2(r);
    if (r->bad) return fail_truncated(ctx, r, "op name");
    if (count > LIMIT_PARAMS) return ctx_fail(ctx, Code_Limit, "op has %u parameters; the limit is %u", count, LIMIT_PARAMS);
    op->param_count = count;
    op->params = farena_push_array(ctx->arena, Param, count ? count : 1);
    if (!op->params) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    for (U4 i = 0; i < count; i += 1) {
        U2 key_len = read_u2(r);
        op->params[i].key = read_bytes(r, key_len);
        U4 value_len = read_u4(r);
        op->params[i].value = read_bytes(r, value_len);
        if (r->bad) return fail_truncated(ctx, r, "op parameter");
    }
    return 1;
}

static B4 decode_binary_input(Ctx *ctx, Reader *r, Input *input) {
    input->kind = read_u1(r);
    input->mode = read_u1(r);
    U4 path_len = read_u4(r);
    if (r->bad) return fail_truncated(ctx, r, "input header");
    if (input->kind > InputKind_File) return ctx_fail(ctx, Code_BadRequest, "unknown input kind %u", input->kind);
    if (input->mode >= InputMode_Count_) return ctx_fail(ctx, Code_BadRequest, "unknown input mode %u", input->mode);
    if (path_len > LIMIT_NAME_BYTES) return ctx_fail(ctx, Code_Limit, "input path of %u bytes; the limit is %u", path_len, LIMIT_NAME_BYTES);
    input->path = read_bytes(r, path_len);
    if (input->kind == InputKind_Inline) {
        U8 data_len = read_u8(r);
        input->data = read_bytes(r, data_len);
        input->loaded = 1;
    }
    if (r->bad) return fail_truncated(ctx, r, "input");
    return 1;
}

static B4 decode_binary(Ctx *ctx, Reader *r, Request *req) {
    req->response_format = read_u1(r);
    U2 reserved = read_u2(r);
    if (r->bad) return fail_truncated(ctx, r, "header");
    if (req->response_format > ResponseFormat_Text) return ctx_fail(ctx, Code_BadRequest, "unknown response format %u", req->response_format);
    if (reserved != 0) return ctx_fail(ctx, Code_BadRequest, "reserved header bytes are not zero");

    U4 op_count = read_u4(r);
    if (r->bad) return fail_truncated(ctx, r, "op count");
    if (op_count > LIMIT_OPS) return ctx_fail(ctx, Code_Limit, "%u ops; the limit is %u", op_count, LIMIT_OPS);
    req->ops = farena_push_array(ctx->arena, OpReq, op_count ? op_count : 1, .zero = 1);
    if (!req->ops) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    req->op_count = op_count;
    for (U4 i = 0; i < op_count; i += 1) if (!decode_binary_op(ctx, r, &req->ops[i])) return 0;

    U4 input_count = read_u4(r);
    if (r->bad) return fail_truncated(ctx, r, "input count");
    if (input_count > LIMIT_INPUTS) return ctx_fail(ctx, Code_Limit, "%u inputs; the limit is %u", input_count, LIMIT_INPUTS);
    /* each input takes at least 6 bytes: a forged count cannot make us allocate */
    if ((U8)input_count * 6 > reader_left(r)) return fail_truncated(ctx, r, "inputs");
    req->inputs = farena_push_array(ctx->arena, Input, input_count ? input_count : 1, .zero = 1);
    if (!req->inputs) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    req->input_count = input_count;
    for (U4 i = 0; i < input_count; i += 1) if (!decode_binary_input(ctx, r, &req->inputs[i])) return 0;

    if (reader_left(r)) return ctx_fail(ctx, Code_BadRequest, "%llu trailing bytes after the request", (unsigned long long)reader_left(r));
    return 1;
}

/* ---- request → response ------------------------------------------------ */

static B4 decode_request(Ctx *ctx, Str8 blob, Request *req) {
    if (blob.len >= 4 && memcmp(blob.ptr, WIRE_MAGIC_V2, 4) == 0) {
        if (blob.len < 5) return ctx_fail(ctx, Code_BadRequest, "truncated request: no version byte after the magic");
        req->version = blob.ptr[4];
        if (req->version != WIRE_VERSION) return ctx_fail(ctx, Code_BadRequest, "unsupported binary wire version %u (this library speaks %u)", req->version, WIRE_VERSION);
        Reader r = { blob.ptr, blob.len, 5, 0 };
        return decode_binary(ctx, &r, req);
    }
    Str8 text_magic = str8_lit(WIRE_MAGIC_V1);
    if (blob.len >= text_magic.len && memcmp(blob.ptr, text_magic.ptr, text_magic.len) == 0) {
        req->version = 1;
        req->response_format = ResponseFormat_Text;
        return wire_decode_v1(ctx, str8_skip(blob, text_magic.len), req);
    }
    return ctx_fail(ctx, Code_BadRequest, "bad magic: not a slopfast request");
}

/* The call's failure flag, when set, says why the op stopped, whatever the
 * op said: the output limit or out of memory. Otherwise the op failed
 * without saying why. */
static B4 fail_output(Ctx *ctx) {
    Fail why = ctx->arena->failed;
    ctx->arena->failed = Fail_None;   /* ctx_fail needs memory for the message */
    if (why == Fail_Limit)
        return ctx_fail(ctx, Code_Limit, "output larger than the limit of %llu bytes", (unsigned long long)LIMIT_OUTPUT_BYTES);
    if (why == Fail_NoMemory) { ctx->code = Code_NoMemory; ctx->message = str8_lit("out of memory"); return 0; }
    return ctx_fail(ctx, Code_OpFailed, "failed");
}

/* How much of a request's name a message shows: at most `max` bytes, not
 * cutting a UTF-8 character (ctx_fail escapes bytes that are not UTF-8). */
static int shown_len(Str8 name, U8 max) {
    if (name.len <= max) return (int)name.len;
    U8 at = max;
    while (at > 0 && max - at < 3 && (name.ptr[at] & 0xC0) == 0x80) at -= 1;
    S4 k = utf8_seq(name.ptr + at, name.len - at);
    return (int)(k > 0 && at + (U8)k > max ? at : max);
}

static B4 run_ops(Ctx *ctx, Request *req) {
    /* every op name is checked before the first op runs */
    for (U4 i = 0; i < req->op_count; i += 1) {
        Str8 name = req->ops[i].name;
        if (!op_lookup(name)) return ctx_fail(ctx, Code_UnknownOp, "unknown op '%.*s'", shown_len(name, 200), (char const *)name.ptr);
    }
    for (U4 i = 0; i < req->op_count; i += 1) {
        OpReq *op = &req->ops[i];
        OpEntry const *entry = op_lookup(op->name);
        ctx->op = op;
        B4 ok = entry->fn(ctx);
        if (ctx->arena->failed || (!ok && !ctx->code)) return fail_output(ctx);
        if (!ok) return 0;
    }
    return 1;
}

/* An error answers one part: the error record "sis" (the op's name, empty
 * before any op ran; the input's index, or -1; the detail). What earlier
 * ops wrote is dropped. */
static void write_error_part(Ctx *ctx) {
    *ctx->out = (Xar){ .arena = ctx->arena };
    ctx->part_count = 0;
    S4 code = ctx->code;
    Str8 message = ctx->message;
    ctx_records_begin(ctx, "sis");
    ctx_rec_bytes(ctx, ctx->op ? ctx->op->name : str8(0, 0));
    ctx_rec_s4(ctx, ctx->fail_input);
    ctx_rec_bytes(ctx, ctx->detail.ptr ? ctx->detail : message);
    ctx_records_end(ctx);
    ctx->code = code;
    ctx->message = message;
}

/* Binary: "SLPR" WIRE_VERSION 0 0 0, S4 code, U4 message length, message,
 * U4 part count, parts (U8 length + bytes, already in ctx->out). */
static Str8 encode_binary(Ctx *ctx, Arena *arena) {
    U8 head = 8 + 4 + 4 + ctx->message.len + 4;
    U8 body = ctx->out->len;
    U1 *p = farena_push(arena, head + body, .alignment = 16);
    if (!p) return str8(0, 0);
    memcpy(p, WIRE_MAGIC_RESPONSE, 4);
    p[4] = WIRE_VERSION; p[5] = 0; p[6] = 0; p[7] = 0;
    put_u4le(p + 8, (U4)ctx->code);
    put_u4le(p + 12, (U4)ctx->message.len);
    if (ctx->message.len) memcpy(p + 16, ctx->message.ptr, ctx->message.len);
    put_u4le(p + 16 + ctx->message.len, ctx->part_count);
    if (body) xar_copy_out(ctx->out, 0, p + head, body);
    return str8(p, head + body);
}

/* Text: "slopfast-response 2\ncode N\nmessage LEN\n<msg>\n" then
 * "part LEN\n<bytes>\n" per part, then "end\n". */
static Str8 encode_text(Ctx *ctx, Arena *arena) {
    Xar x = { .arena = arena };
    char line[96];
    int n = snprintf(line, sizeof line, "slopfast-response 2\ncode %d\nmessage %llu\n", ctx->code, (unsigned long long)ctx->message.len);
    xar_append(&x, (U1 const *)line, (U8)n);
    xar_str8(&x, ctx->message);
    xar_byte(&x, '\n');
    for (U8 at = 0; at + 8 <= ctx->out->len;) {
        U1 len_bytes[8];
        xar_copy_out(ctx->out, at, len_bytes, 8);
        U8 len = get_u8le(len_bytes);
        n = snprintf(line, sizeof line, "part %llu\n", (unsigned long long)len);
        xar_append(&x, (U1 const *)line, (U8)n);
        U1 *tmp = farena_push(arena, len ? len : 1, .alignment = 1);
        if (!tmp) return str8(0, 0);
        xar_copy_out(ctx->out, at + 8, tmp, len);
        xar_append(&x, tmp, len);
        xar_byte(&x, '\n');
        at += 8 + len;
    }
    xar_str8(&x, str8_lit("end\n"));
    if (arena->failed) return str8(0, 0);
    return xar_flatten(&x, arena);
}

static Response const out_of_memory_response = {
    0, 0, Code_NoMemory, (U1 const *)"out of memory", 13, { 0, 0, 0, 0, 0 },
};

/* One call in `arena` (empty on entry): the response and everything it
 * points to live in the arena. */
static Response *run_in_arena(Arena *arena, U1 const *ptr, U8 len, PipelineContext const *context) {
    Response *resp = farena_push_type(arena, Response);
    Xar *out = farena_push_type(arena, Xar);
    Request *req = farena_push_type(arena, Request);
    if (!resp || !out || !req) return (Response *)&out_of_memory_response;
    out->arena = arena;
    Ctx ctx = { .arena = arena, .req = req, .out = out, .fail_input = -1 };
    if (context) { ctx.vocabs = context->vocabs; ctx.vocab_count = context->vocab_count; }

    if (!ptr && len) ctx_fail(&ctx, Code_BadRequest, "null request pointer");
    else if (len > LIMIT_REQUEST_BYTES) ctx_fail(&ctx, Code_Limit, "request of %llu bytes; the limit is %llu", (unsigned long long)len, (unsigned long long)LIMIT_REQUEST_BYTES);
    else if (decode_request(&ctx, str8(ptr, len), req)) run_ops(&ctx, req);
    if (arena->failed && !ctx.code) { ctx.code = Code_NoMemory; ctx.message = str8_lit("out of memory"); }

    /* the encoders may need memory even after a failure: lift the fault hook */
    arena->failed = Fail_None;
    arena->fail_after = 0;
    arena->limit = 0;
    if (ctx.code) write_error_part(&ctx);
    Str8 data = req->response_format == ResponseFormat_Text ? encode_text(&ctx, arena) : encode_binary(&ctx, arena);
    if (!data.ptr) return (Response *)&out_of_memory_response;
    resp->data = data.ptr;
    resp->len = data.len;
    resp->code = ctx.code;
    resp->message = ctx.message.ptr;
    resp->message_len = ctx.message.len;
    return resp;
}

Response *pipeline_run_opts(U1 const *ptr, U8 len, PipelineOpts opts) {
    Arena arena = { .limit = opts.memory_limit, .fail_after = opts.fail_after };
    Response *resp = run_in_arena(&arena, ptr, len, 0);
    if (resp == &out_of_memory_response) { arena_release(&arena); return resp; }
    resp->arena_ = arena;   /* the response owns its arena: pipeline_free releases it */
    return resp;
}

Response *pipeline_run(U1 const *ptr, U8 len) {
    return pipeline_run_opts(ptr, len, (PipelineOpts){ 0 });
}

void pipeline_free(Response *resp) {
    if (!resp || resp == &out_of_memory_response) return;
    Arena arena = resp->arena_;   /* the response lives inside its own arena */
    arena_release(&arena);
}

PipelineContext *pipeline_context_new(void) {
    PipelineContext *context = malloc(sizeof *context);
    if (context) *context = (PipelineContext){ 0 };
    return context;
}

Response *pipeline_run_in(PipelineContext *context, U1 const *ptr, U8 len) {
    if (!context) return (Response *)&out_of_memory_response;
    arena_reset(&context->arena);
    /* the context owns the memory: a stray pipeline_free of this response
     * finds an empty arena and releases nothing */
    Response *resp = run_in_arena(&context->arena, ptr, len, context);
    if (context->copy && resp != &out_of_memory_response && resp->len <= context->copy_cap - RESPONSE_ABI_BYTES) {
        memcpy(context->copy + RESPONSE_ABI_BYTES, resp->data, resp->len);
        resp->data = context->copy + RESPONSE_ABI_BYTES;
    }
    if (context->copy) memcpy(context->copy, resp, RESPONSE_ABI_BYTES);
    return resp;
}

void pipeline_context_buffer(PipelineContext *context, U1 *buf, U8 cap) {
    if (!context) return;
    B4 usable = buf && cap >= RESPONSE_ABI_BYTES;
    context->copy = usable ? buf : 0;
    context->copy_cap = usable ? cap : 0;
}

void pipeline_context_trim(PipelineContext *context) {
    if (context) arena_reset(&context->arena);
}

void pipeline_context_free(PipelineContext *context) {
    if (!context) return;
    arena_release(&context->arena);
    free(context);
}

TokVocab *tokens_vocab_new(U1 const *ranks, U8 len) { return tok_vocab_new(ranks, len); }
void tokens_vocab_free(TokVocab *vocab) { tok_vocab_free(vocab); }
U8 tokens_vocab_image(TokVocab const *vocab, U1 *out, U8 cap) { return tok_vocab_image(vocab, out, cap); }
TokVocab *tokens_vocab_adopt(U1 const *image, U8 len) { return tok_vocab_adopt(image, len); }

S4 pipeline_context_attach(PipelineContext *context, TokVocab const *vocab) {
    if (!context || !vocab || context->vocab_count >= LIMIT_VOCABS) return -1;
    context->vocabs[context->vocab_count] = vocab;
    return (S4)context->vocab_count++;
}

char const *pipeline_version(void) {
    return "slopfast-libchunks " SLOPFAST_LIB_VERSION " build " SLOPFAST_BUILD_ID;
}
