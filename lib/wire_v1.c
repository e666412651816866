/* wire_v1.c: the v1 text envelope, a request a person can write and cat.
 *
 *   slopfast-request 1
 *   op build_markdown lang=py%09python
 *   input file src/main.py
 *   input inline notes.md 5 mode=summary
 *   hello
 *   format text
 *   end
 *
 * Tokens are separated by spaces; %XX escapes any byte in a token. The
 * grammar is in docs/wire-format.md. */
#include "pipeline.h"

Struct_(Line) { Str8 rest; U4 number; };

Struct_(InputNode) { InputNode *next; Input input; };

Struct_(V1State) {
    Str8 text;
    U8 at;
    U4 line_number;
    InputNode *first, *last;
    U4 input_count;
};

static B4 next_line(V1State *s, Str8 *line) {
    if (s->at >= s->text.len) return 0;
    U1 const *start = s->text.ptr + s->at;
    U1 const *nl = memchr(start, '\n', s->text.len - s->at);
    U8 len = nl ? (U8)(nl - start) : s->text.len - s->at;
    s->at += len + (nl ? 1 : 0);
    if (len && start[len - 1] == '\r') len -= 1;
    s->line_number += 1;
    *line = str8(start, len);
    return 1;
}

static B4 next_token(Str8 *line, Str8 *tok) {
    U8 i = 0;
    while (i < line->len && line->ptr[i] == ' ') i += 1;
    U8 j = i;
    while (j < line->len && line->ptr[j] != ' ') j += 1;
    *tok = str8(line->ptr + i, j - i);
    *line = str8_skip(*line, j);
    return tok->len != 0;
}

IA_ S4 hex_value(U1 c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Undo %XX escapes into arena memory. */
static B4 unescape(Ctx *ctx, V1State *s, Str8 tok, Str8 *out) {
    if (!memchr(tok.ptr, '%', tok.len)) { *out = tok; return 1; }
    U1 *buf = farena_push(ctx->arena, tok.len, .alignment = 1);
    if (!buf) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    U8 n = 0;
    for (U8 i = 0; i < tok.len; i += 1) {
        if (tok.ptr[i] != '%') { buf[n++] = tok.ptr[i]; continue; }
        S4 hi = i + 2 < tok.len ? hex_value(tok.ptr[i + 1]) : -1;
        S4 lo = i + 2 < tok.len ? hex_value(tok.ptr[i + 2]) : -1;
        if (hi < 0 || lo < 0) return ctx_fail(ctx, Code_BadRequest, "line %u: bad %%-escape", s->line_number);
        buf[n++] = (U1)(hi * 16 + lo);
        i += 2;
    }
    *out = str8(buf, n);
    return 1;
}


static B4 parse_op(Ctx *ctx, V1State *s, Str8 line, Request *req) {
    if (req->op_count >= LIMIT_OPS) return ctx_fail(ctx, Code_Limit, "line %u: more than %u ops", s->line_number, LIMIT_OPS);
    OpReq *op = &req->ops[req->op_count];
    Str8 tok;
    if (!next_token(&line, &tok)) return ctx_fail(ctx, Code_BadRequest, "line %u: op without a name", s->line_number);
    if (!unescape(ctx, s, tok, &op->name)) return 0;
    if (op->name.len > LIMIT_NAME_BYTES) return ctx_fail(ctx, Code_Limit, "line %u: op name longer than %u bytes", s->line_number, LIMIT_NAME_BYTES);
    op->params = farena_push_array(ctx->arena, Param, LIMIT_PARAMS);
    if (!op->params) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    while (next_token(&line, &tok)) {
        U1 const *eq = memchr(tok.ptr, '=', tok.len);
        if (!eq) return ctx_fail(ctx, Code_BadRequest, "line %u: parameter without '='", s->line_number);
        if (op->param_count >= LIMIT_PARAMS) return ctx_fail(ctx, Code_Limit, "line %u: more than %u parameters", s->line_number, LIMIT_PARAMS);
        Param *p = &op->params[op->param_count++];
        U8 key_len = (U8)(eq - tok.ptr);
        if (!unescape(ctx, s, str8_prefix(tok, key_len), &p->key)) return 0;
        if (p->key.len > LIMIT_NAME_BYTES) return ctx_fail(ctx, Code_Limit, "line %u: parameter key longer than %u bytes", s->line_number, LIMIT_NAME_BYTES);
        if (!unescape(ctx, s, str8_skip(tok, key_len + 1), &p->value)) return 0;
    }
    req->op_count += 1;
    return 1;
}

static B4 parse_input(Ctx *ctx, V1State *s, Str8 line) {
    if (s->input_count >= LIMIT_INPUTS) return ctx_fail(ctx, Code_Limit, "line %u: more than %u inputs", s->line_number, LIMIT_INPUTS);
    InputNode *node = farena_push_type(ctx->arena, InputNode);
    if (!node) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    Input *input = &node->input;
    Str8 kind, path, tok;
    if (!next_token(&line, &kind) || !next_token(&line, &path))
        return ctx_fail(ctx, Code_BadRequest, "line %u: expected 'input file PATH' or 'input inline PATH LEN'", s->line_number);
    if (!unescape(ctx, s, path, &input->path)) return 0;
    if (input->path.len > LIMIT_NAME_BYTES) return ctx_fail(ctx, Code_Limit, "line %u: path longer than %u bytes", s->line_number, LIMIT_NAME_BYTES);
    U8 data_len = 0;
    if (str8_eq(kind, str8_lit("inline"))) {
        input->kind = InputKind_Inline;
        if (!next_token(&line, &tok) || !parse_u8_decimal(tok, &data_len))
            return ctx_fail(ctx, Code_BadRequest, "line %u: inline input needs a byte length", s->line_number);
    } else if (str8_eq(kind, str8_lit("file"))) {
        input->kind = InputKind_File;
    } else {
        return ctx_fail(ctx, Code_BadRequest, "line %u: unknown input kind '%.*s'", s->line_number, (int)min_(kind.len, 100), (char const *)kind.ptr);
    }
    while (next_token(&line, &tok)) {
        if (tok.len < 5 || memcmp(tok.ptr, "mode=", 5) != 0 || !input_mode_parse(str8_skip(tok, 5), &input->mode))
            return ctx_fail(ctx, Code_BadRequest, "line %u: unknown input option '%.*s'", s->line_number, (int)min_(tok.len, 100), (char const *)tok.ptr);
    }
    if (input->kind == InputKind_Inline) {
        /* LEN raw bytes follow the line, then one line end */
        if (data_len > s->text.len - s->at)
            return ctx_fail(ctx, Code_BadRequest, "line %u: inline input of %llu bytes, only %llu left", s->line_number,
                            (unsigned long long)data_len, (unsigned long long)(s->text.len - s->at));
        input->data = str8(s->text.ptr + s->at, data_len);
        input->loaded = 1;
        s->at += data_len;
        /* count the data's lines so later messages give an editor's line numbers */
        for (U8 i = 0; i < data_len; i += 1) s->line_number += input->data.ptr[i] == '\n';
        if (s->at < s->text.len && s->text.ptr[s->at] == '\r') s->at += 1;
        if (s->at < s->text.len && s->text.ptr[s->at] == '\n') s->at += 1;
        else if (s->at < s->text.len) return ctx_fail(ctx, Code_BadRequest, "line %u: inline data not followed by a line end", s->line_number + 1);
        s->line_number += 1;
    }
    if (s->last) s->last->next = node; else s->first = node;
    s->last = node;
    s->input_count += 1;
    return 1;
}

static B4 parse_format(Ctx *ctx, V1State *s, Str8 line, Request *req) {
    Str8 tok, extra;
    next_token(&line, &tok);
    if (next_token(&line, &extra)) return ctx_fail(ctx, Code_BadRequest, "line %u: format takes one word", s->line_number);
    if (str8_eq(tok, str8_lit("text"))) req->response_format = ResponseFormat_Text;
    else if (str8_eq(tok, str8_lit("binary"))) req->response_format = ResponseFormat_Binary;
    else return ctx_fail(ctx, Code_BadRequest, "line %u: format must be 'text' or 'binary'", s->line_number);
    return 1;
}

static B4 collect_inputs(Ctx *ctx, V1State *s, Request *req) {
    req->inputs = farena_push_array(ctx->arena, Input, s->input_count ? s->input_count : 1);
    if (!req->inputs) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    U4 i = 0;
    for (InputNode *n = s->first; n; n = n->next) req->inputs[i++] = n->input;
    req->input_count = s->input_count;
    return 1;
}

static B4 parse_line(Ctx *ctx, V1State *s, Str8 line, Request *req, B4 *ended) {
    Str8 word, rest = line;
    if (!next_token(&rest, &word) || word.ptr[0] == '#') return 1;
    if (str8_eq(word, str8_lit("op"))) return parse_op(ctx, s, rest, req);
    if (str8_eq(word, str8_lit("input"))) return parse_input(ctx, s, rest);
    if (str8_eq(word, str8_lit("format"))) return parse_format(ctx, s, rest, req);
    if (str8_eq(word, str8_lit("end"))) {
        if (next_token(&rest, &word)) return ctx_fail(ctx, Code_BadRequest, "line %u: 'end' takes no words", s->line_number);
        *ended = 1;
        return 1;
    }
    return ctx_fail(ctx, Code_BadRequest, "line %u: unknown keyword '%.*s'", s->line_number, (int)min_(word.len, 100), (char const *)word.ptr);
}

B4 wire_decode_v1(Ctx *ctx, Str8 text, Request *req) {
    V1State s = { .text = text, .line_number = 0 };
    Str8 line;
    if (!next_line(&s, &line) || !str8_eq(line, str8_lit("1")))
        return ctx_fail(ctx, Code_BadRequest, "unsupported text wire version (this library speaks 1)");
    req->ops = farena_push_array(ctx->arena, OpReq, LIMIT_OPS, .zero = 1);
    if (!req->ops) return ctx_fail(ctx, Code_NoMemory, "out of memory");
    B4 ended = 0;
    while (!ended && next_line(&s, &line)) {
        if (!parse_line(ctx, &s, line, req, &ended)) return 0;
    }
    if (!ended) return ctx_fail(ctx, Code_BadRequest, "text request without 'end'");
    for (U8 i = s.at; i < text.len; i += 1) {
        U1 c = text.ptr[i];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return ctx_fail(ctx, Code_BadRequest, "bytes after 'end'");
    }
    return collect_inputs(ctx, &s, req);
}
