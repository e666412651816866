/* snapshot.c: op snapshot_encode, a MessagePack writer driven by a tape.
 *
 * Through ctypes C cannot walk Python objects, so Python flattens a snapshot
 * with a cached per-type plan (slopfast/snapshot.py) into a compact tape and
 * C turns the tape into MessagePack, byte for byte what msgspec.msgpack.encode
 * writes for the same object (docs/snapshot.md). One part per input.
 *
 * Tape (one inline input), all little-endian:
 *   "SFT1"  u4 code_count  u4 float_count  u8 text_len
 *   code_count  x S8 codes     code = operand * 16 + kind
 *   float_count x f64 floats   consumed by TapeKind_Float in order
 *   text_len bytes of UTF-8    consumed by TapeKind_Str in order (Python joins
 *                              all strings and encodes them once)
 *   bin: the rest              consumed by TapeKind_Bin and TapeKind_Raw
 * Every count and length is checked against what remains before use, and
 * everything must be consumed exactly. Each code writes at most 9 header bytes
 * plus bytes it takes from the blob, so the output is bounded by the input:
 * a forged length can fail the op, never make it allocate much. */
#include "op.h"

Enum_(TapeKind) {
    TapeKind_Nil   = 0,
    TapeKind_True  = 1,
    TapeKind_False = 2,
    TapeKind_Int   = 3,   /* operand is the value (|v| < 2^59) */
    TapeKind_Int64 = 4,   /* value in the next code slot, signed */
    TapeKind_Uint64 = 5,  /* value in the next code slot, as unsigned bits */
    TapeKind_Float = 6,   /* next float */
    TapeKind_Str   = 7,   /* operand bytes of UTF-8 from the text */
    TapeKind_Bin   = 8,   /* operand bytes from bin */
    TapeKind_Array = 9,   /* operand = element count */
    TapeKind_Map   = 10,  /* operand = pair count */
    TapeKind_Raw   = 11,  /* operand bytes from bin copied verbatim (pre-encoded keys) */
    TapeKind_Count_,
};

#define TAPE_MAGIC "SFT1"
enum { TAPE_HEADER = 20, OUT_STAGE = 4096 };

/* Headers are staged in a small buffer so the Xar sees few, larger appends. */
Struct_(MpOut) {
    Ctx *ctx;
    U4 n;
    B4 failed;
    U1 stage[OUT_STAGE];
};

Struct_(Tape) {
    U1 const *codes;
    U8 code_count, code_at;
    U1 const *floats;
    U8 float_count, float_at;
    Str8 text, bin;
    U8 text_at, bin_at;
};

static B4 mp_flush(MpOut *out) {
    if (out->n && !ctx_write(out->ctx, out->stage, out->n)) out->failed = 1;
    out->n = 0;
    return !out->failed;
}

/* Reserve `n` (<= 16) staged bytes. */
IA_ U1 *mp_room(MpOut *out, U4 n) {
    if (out->n + n > OUT_STAGE && !mp_flush(out)) return 0;
    U1 *p = out->stage + out->n;
    out->n += n;
    return p;
}

IA_ void put_be2(U1 *p, U8 v) { p[0] = (U1)(v >> 8); p[1] = (U1)v; }
IA_ void put_be4(U1 *p, U8 v) { put_be2(p, v >> 16); put_be2(p + 2, v); }
IA_ void put_be8(U1 *p, U8 v) { put_be4(p, v >> 32); put_be4(p + 4, v); }

/* A tag byte followed by a big-endian value of `width` bytes (0, 1, 2, 4, 8). */
static B4 mp_tagged(MpOut *out, U1 tag, U4 width, U8 v) {
    U1 *p = mp_room(out, 1 + width);
    if (!p) return 0;
    p[0] = tag;
    if (width == 1) p[1] = (U1)v;
    else if (width == 2) put_be2(p + 1, v);
    else if (width == 4) put_be4(p + 1, v);
    else if (width == 8) put_be8(p + 1, v);
    return 1;
}

/* Smallest form, as msgspec chooses it. */
static B4 mp_uint(MpOut *out, U8 v) {
    if (v < 128) return mp_tagged(out, (U1)v, 0, 0);
    if (v <= 0xff) return mp_tagged(out, 0xcc, 1, v);
    if (v <= 0xffff) return mp_tagged(out, 0xcd, 2, v);
    if (v <= 0xffffffffu) return mp_tagged(out, 0xce, 4, v);
    return mp_tagged(out, 0xcf, 8, v);
}

static B4 mp_int(MpOut *out, S8 v) {
    if (v >= 0) return mp_uint(out, (U8)v);
    if (v >= -32) return mp_tagged(out, (U1)(S4)v, 0, 0);
    if (v >= -128) return mp_tagged(out, 0xd0, 1, (U8)v);
    if (v >= -32768) return mp_tagged(out, 0xd1, 2, (U8)v);
    if (v >= -2147483647 - 1) return mp_tagged(out, 0xd2, 4, (U8)v);
    return mp_tagged(out, 0xd3, 8, (U8)v);
}

/* Length headers of str / bin / array / map: fix form (when the family has
 * one and n fits), then 8-, 16- and 32-bit forms. */
Struct_(LenTags) { U1 fix; U8 fix_max; U1 t8, t16, t32; };

static LenTags const len_tags_str = { 0xa0, 31, 0xd9, 0xda, 0xdb };
static LenTags const len_tags_bin = { 0, 0, 0xc4, 0xc5, 0xc6 };
static LenTags const len_tags_arr = { 0x90, 15, 0, 0xdc, 0xdd };
static LenTags const len_tags_map = { 0x80, 15, 0, 0xde, 0xdf };

static B4 mp_len(MpOut *out, LenTags const *t, U8 n) {
    if (t->fix && n <= t->fix_max) return mp_tagged(out, (U1)(t->fix | n), 0, 0);
    if (t->t8 && n <= 0xff) return mp_tagged(out, t->t8, 1, n);
    if (n <= 0xffff) return mp_tagged(out, t->t16, 2, n);
    return mp_tagged(out, t->t32, 4, n);
}

/* Bytes from the blob: small ones staged, large ones written through. */
static B4 mp_bytes(MpOut *out, U1 const *p, U8 n) {
    if (n <= 256) {
        if (out->n + n > OUT_STAGE && !mp_flush(out)) return 0;
        memcpy(out->stage + out->n, p, n);
        out->n += (U4)n;
        return 1;
    }
    if (!mp_flush(out)) return 0;
    if (!ctx_write(out->ctx, p, n)) out->failed = 1;
    return !out->failed;
}

IA_ B4 tape_next(Tape *tape, S8 *code) {
    if (tape->code_at >= tape->code_count) return 0;
    *code = (S8)get_u8le(tape->codes + 8 * tape->code_at);
    tape->code_at += 1;
    return 1;
}

/* n bytes from a region (text or bin) at *at, bounds-checked. */
static B4 tape_take(Str8 region, U8 *at, U8 n, U1 const **p) {
    if (n > region.len - *at) return 0;
    *p = region.ptr + *at;
    *at += n;
    return 1;
}

/* One code. Returns 0 with a message on a malformed tape or failed write. */
static B4 tape_step(Ctx *ctx, Tape *tape, MpOut *out, S8 code) {
    U4 kind = (U4)((U8)code & 15);
    S8 operand = (S8)((U8)code & ~(U8)15) / 16;  /* exact: no signed shift */
    U8 n = (U8)operand;
    U1 const *p = 0;
    S8 wide = 0;
    if (kind >= TapeKind_Str && kind <= TapeKind_Raw && operand < 0)
        return ctx_fail(ctx, Code_BadParam, "snapshot tape: negative length at code %llu",
                        (unsigned long long)(tape->code_at - 1));
    switch (kind) {
    case TapeKind_Nil:   return mp_tagged(out, 0xc0, 0, 0);
    case TapeKind_True:  return mp_tagged(out, 0xc3, 0, 0);
    case TapeKind_False: return mp_tagged(out, 0xc2, 0, 0);
    case TapeKind_Int:   return mp_int(out, operand);
    case TapeKind_Int64:
    case TapeKind_Uint64:
        if (!tape_next(tape, &wide)) return ctx_fail(ctx, Code_BadParam, "snapshot tape: integer cut short");
        return kind == TapeKind_Int64 ? mp_int(out, wide) : mp_uint(out, (U8)wide);
    case TapeKind_Float:
        if (tape->float_at >= tape->float_count) return ctx_fail(ctx, Code_BadParam, "snapshot tape: float stream cut short");
        tape->float_at += 1;
        return mp_tagged(out, 0xcb, 8, get_u8le(tape->floats + 8 * (tape->float_at - 1)));
    case TapeKind_Str:
    case TapeKind_Bin:
    case TapeKind_Raw:
        if (n > 0xffffffffu) return ctx_fail(ctx, Code_Limit, "snapshot: string or bytes longer than 4 GiB - 1");
        if (kind == TapeKind_Str ? !tape_take(tape->text, &tape->text_at, n, &p) : !tape_take(tape->bin, &tape->bin_at, n, &p))
            return ctx_fail(ctx, Code_BadParam, "snapshot tape: length %llu at code %llu exceeds the bytes left",
                            (unsigned long long)n, (unsigned long long)(tape->code_at - 1));
        if (kind != TapeKind_Raw && !mp_len(out, kind == TapeKind_Str ? &len_tags_str : &len_tags_bin, n)) return 0;
        return mp_bytes(out, p, n);
    case TapeKind_Array:
    case TapeKind_Map:
        if (n > 0xffffffffu) return ctx_fail(ctx, Code_Limit, "snapshot: container of more than 2^32 - 1 items");
        return mp_len(out, kind == TapeKind_Array ? &len_tags_arr : &len_tags_map, n);
    default:
        return ctx_fail(ctx, Code_BadParam, "snapshot tape: unknown kind %u", kind);
    }
}

static B4 tape_open(Ctx *ctx, Str8 data, Tape *tape) {
    if (data.len < TAPE_HEADER || memcmp(data.ptr, TAPE_MAGIC, 4) != 0)
        return ctx_fail(ctx, Code_BadParam, "snapshot tape: bad magic or short header");
    U8 code_count = get_u4le(data.ptr + 4), float_count = get_u4le(data.ptr + 8);
    U8 text_len = get_u8le(data.ptr + 12);
    U8 fixed = 8 * (code_count + float_count);   /* < 2^36: no overflow */
    if (fixed > data.len - TAPE_HEADER || text_len > data.len - TAPE_HEADER - fixed)
        return ctx_fail(ctx, Code_BadParam, "snapshot tape: %llu codes, %llu floats and %llu text bytes exceed %llu bytes",
                        (unsigned long long)code_count, (unsigned long long)float_count,
                        (unsigned long long)text_len, (unsigned long long)data.len);
    Str8 rest = str8_skip(data, TAPE_HEADER + fixed);
    *tape = (Tape){
        .codes = data.ptr + TAPE_HEADER, .code_count = code_count,
        .floats = data.ptr + TAPE_HEADER + 8 * code_count, .float_count = float_count,
        .text = str8_prefix(rest, text_len), .bin = str8_skip(rest, text_len),
    };
    return 1;
}

static B4 encode_one(Ctx *ctx, Str8 data, MpOut *out) {
    Tape tape = { 0 };
    S8 code = 0;
    if (!tape_open(ctx, data, &tape)) return 0;
    while (tape_next(&tape, &code))
        if (!tape_step(ctx, &tape, out, code)) return out->failed ? ctx_fail(ctx, Code_NoMemory, "snapshot: out of memory") : 0;
    if (tape.float_at != tape.float_count || tape.text_at != tape.text.len || tape.bin_at != tape.bin.len)
        return ctx_fail(ctx, Code_BadParam, "snapshot tape: %llu floats, %llu text and %llu bin bytes left over",
                        (unsigned long long)(tape.float_count - tape.float_at),
                        (unsigned long long)(tape.text.len - tape.text_at),
                        (unsigned long long)(tape.bin.len - tape.bin_at));
    if (!mp_flush(out)) return ctx_fail(ctx, Code_NoMemory, "snapshot: out of memory");
    return 1;
}

B4 op_snapshot_encode(Ctx *ctx) {
    MpOut stage = { .ctx = ctx }, *out = &stage;   /* 4 KiB on the stack */
    for (U4 i = 0; i < ctx->req->input_count; i += 1) {
        Input *input = &ctx->req->inputs[i];
        if (!input_load(ctx, input))
            return ctx_fail(ctx, Code_InputError, "snapshot: cannot read input %u (errno %d)", i, input->load_errno);
        if (!ctx_part_begin(ctx)) return 0;
        if (!encode_one(ctx, input->data, out)) return 0;
        if (!ctx_part_end(ctx)) return 0;
    }
    return 1;
}
