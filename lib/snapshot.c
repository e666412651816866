/* snapshot.c: op snapshot_encode, a MessagePack writer driven by a tape.
 *
 * Through ctypes C cannot walk Python objects, so Python flattens a snapshot
 * with a cached per-type plan (slopfast/snapshot.py): dataclasses become
 * dicts of their present fields in field order, enums their values. The
 * result is serialized by CPython's own `marshal` (format version 2, which
 * has no back-references), a compact tape written at C speed. This file
 * turns that tape into MessagePack, byte for byte what msgspec.msgpack.encode
 * writes for the original object (docs/snapshot.md). One part per input.
 *
 * Input: "SFM2" then one marshal v2 value built only from
 *   N T F           None True False
 *   i  S4           int in 32 bits
 *   l  S4 n, |n| U2 digits of 15 bits, least significant first; sign of n
 *   g  f64          float
 *   u  S4 len UTF-8 (t: interned str, same layout)   s  S4 len bytes
 *   (  [  S4 n, n values                             tuple, list -> array
 *   {  key value ... 0                               dict (str keys) -> map
 * all little-endian. Anything else (sets, refs, code...) is an error, as are
 * ints outside -2^63 .. 2^64-1 and strings that are not strict UTF-8
 * (marshal passes lone surrogates through; msgspec refuses them).
 *
 * MessagePack needs a map's count before its entries and marshal ends a dict
 * with a terminator, so the tape is walked twice: a scan that validates
 * everything and records each dict's count, then the emitting walk. Both use
 * an explicit stack (no C recursion), every length is checked against the
 * bytes left, and the output is bounded by a small multiple of the input. */
#include "op.h"

/* ---- the MessagePack writer ---------------------------------------------- */

enum { OUT_STAGE = 4096 };

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

/* ---- the marshal walker ------------------------------------------------ */

#define TAPE_MAGIC "SFM2"
enum { TAPE_HEADER = 4 };

Enum_(FrameKind) { FrameKind_Array = 0, FrameKind_Map = 1 };

Struct_(Frame) {
    U1 kind;          /* FrameKind */
    B4 want_key;      /* maps: the next item is a key (or the terminator) */
    U4 left;          /* arrays: items still to come */
    U4 count;         /* maps: pairs seen so far (scan) */
    U8 ordinal;       /* maps: index of this map's slot in counts */
};

Struct_(Walk) {
    Ctx *ctx;
    U1 const *ptr;
    U8 len, at;
    B4 emit;          /* 0: scan and record map counts; 1: write MessagePack */
    MpOut *out;
    Xar *counts;      /* U4 per map, in order of opening */
    U8 maps;          /* maps opened so far */
    Frame *stack;
    U4 depth, cap;
};

static B4 walk_fail(Walk *w, char const *what) {
    return ctx_fail(w->ctx, Code_BadParam, "snapshot tape: %s at byte %llu", what, (unsigned long long)w->at);
}

IA_ B4 walk_take(Walk *w, U8 n, U1 const **p) {
    if (n > w->len - w->at) return 0;
    *p = w->ptr + w->at;
    w->at += n;
    return 1;
}

static B4 walk_s4(Walk *w, S4 *v) {
    U1 const *p;
    if (!walk_take(w, 4, &p)) return walk_fail(w, "truncated length");
    *v = (S4)get_u4le(p);
    return 1;
}

/* Strict UTF-8: no overlongs, no surrogates, nothing above U+10FFFF. */
static B4 utf8_valid(U1 const *s, U8 n) {
    U8 i = 0;
    while (i < n) {
        while (i + 8 <= n && (get_u8le(s + i) & 0x8080808080808080ull) == 0) i += 8;
        if (i >= n) break;
        U1 c = s[i];
        if (c < 0x80) { i += 1; continue; }
        U4 need = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
        if (c < 0xc2 || c > 0xf4 || need > n - i - 1) return 0;
        U1 c1 = s[i + 1];
        if ((c1 & 0xc0) != 0x80) return 0;
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f)) return 0;   /* overlong, surrogate */
        if ((c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 > 0x8f)) return 0;   /* overlong, > U+10FFFF */
        for (U4 k = 2; k <= need; k += 1) if ((s[i + k] & 0xc0) != 0x80) return 0;
        i += need + 1;
    }
    return 1;
}

/* 'l': a 64-bit value in up to five 15-bit digits. */
static B4 walk_long(Walk *w) {
    S4 n;
    U1 const *p;
    if (!walk_s4(w, &n)) return 0;
    U4 digits = n < 0 ? (U4)0 - (U4)n : (U4)n;
    if (digits > 5) return walk_fail(w, "integer out of the 64-bit range");
    if (!walk_take(w, 2 * (U8)digits, &p)) return walk_fail(w, "truncated integer");
    U8 mag = 0;
    for (U4 k = 0; k < digits; k += 1) {
        U8 d = get_u2le(p + 2 * k);
        if (d >> 15) return walk_fail(w, "corrupt integer digit");
        if (k == 4 && d >> 4) return walk_fail(w, "integer out of the 64-bit range");
        mag |= d << (15 * k);
    }
    if (n < 0 && mag > ((U8)1 << 63)) return walk_fail(w, "integer out of the 64-bit range");
    if (!w->emit) return 1;
    return n < 0 ? mp_int(w->out, (S8)(0 - mag)) : mp_uint(w->out, mag);
}

/* 'u' 't' 's': length-prefixed bytes, as str or bin. */
static B4 walk_bytes(Walk *w, B4 is_str) {
    S4 n;
    U1 const *p;
    if (!walk_s4(w, &n)) return 0;
    if (n < 0 || !walk_take(w, (U8)n, &p)) return walk_fail(w, "string length exceeds the bytes left");
    if (!w->emit) return is_str && !utf8_valid(p, (U8)n) ? walk_fail(w, "string is not valid UTF-8") : 1;
    return mp_len(w->out, is_str ? &len_tags_str : &len_tags_bin, (U8)n) && mp_bytes(w->out, p, (U8)n);
}

/* The stack starts in the caller's frame and doubles in the arena when a
 * deep value needs it, up to LIMIT_DEPTH. */
static B4 walk_push(Walk *w, Frame f) {
    if (w->depth == w->cap) {
        if (w->cap >= LIMIT_DEPTH)
            return ctx_fail(w->ctx, Code_Limit, "snapshot tape: nesting too deep (limit %u) at byte %llu",
                            (unsigned)LIMIT_DEPTH, (unsigned long long)w->at);
        U4 cap = (U4)min_(2 * (U8)w->cap, (U8)LIMIT_DEPTH);
        Frame *grown = farena_push_array(w->ctx->arena, Frame, cap);
        if (!grown) return ctx_fail(w->ctx, Code_NoMemory, "snapshot: out of memory");
        memcpy(grown, w->stack, sizeof(Frame) * w->depth);
        w->stack = grown;
        w->cap = cap;
    }
    w->stack[w->depth] = f;
    w->depth += 1;
    return 1;
}

static B4 walk_open_array(Walk *w) {
    S4 n;
    if (!walk_s4(w, &n)) return 0;
    if (n < 0 || (U8)n > w->len - w->at) return walk_fail(w, "array count exceeds the bytes left");
    if (w->emit && !mp_len(w->out, &len_tags_arr, (U8)n)) return 0;
    return n == 0 ? 1 : walk_push(w, (Frame){ .kind = FrameKind_Array, .left = (U4)n });
}

static B4 walk_open_map(Walk *w) {
    Frame f = { .kind = FrameKind_Map, .want_key = 1, .ordinal = w->maps };
    w->maps += 1;
    if (!w->emit) {
        if (!xar_u4(w->counts, 0)) return ctx_fail(w->ctx, Code_NoMemory, "snapshot: out of memory");  /* slot, filled at the close */
    } else {
        U1 b[4];
        if (!xar_copy_out(w->counts, 4 * f.ordinal, b, 4)) return walk_fail(w, "map count missing");
        if (!mp_len(w->out, &len_tags_map, get_u4le(b))) return 0;
    }
    return walk_push(w, f);
}

/* The map on top of the stack ends (its terminator was read). */
static B4 walk_close_map(Walk *w) {
    Frame *f = &w->stack[w->depth - 1];
    U1 b[4];
    put_u4le(b, f->count);
    if (!w->emit && !xar_put_at(w->counts, 4 * f->ordinal, b, 4)) return walk_fail(w, "map count slot");
    w->depth -= 1;
    return 1;
}

/* A value just completed at the current level: advance the enclosing
 * containers, closing arrays whose last item it was. */
static void walk_completed(Walk *w) {
    while (w->depth) {
        Frame *f = &w->stack[w->depth - 1];
        if (f->kind == FrameKind_Map) {
            if (!f->want_key) f->count += 1;
            f->want_key = !f->want_key;
            return;
        }
        f->left -= 1;
        if (f->left) return;
        w->depth -= 1;
    }
}

static B4 walk_scalar(Walk *w, U1 t) {
    U1 const *p;
    S4 v;
    switch (t) {
    case 'N': return !w->emit || mp_tagged(w->out, 0xc0, 0, 0);
    case 'T': return !w->emit || mp_tagged(w->out, 0xc3, 0, 0);
    case 'F': return !w->emit || mp_tagged(w->out, 0xc2, 0, 0);
    case 'i': return walk_s4(w, &v) && (!w->emit || mp_int(w->out, v));
    case 'l': return walk_long(w);
    case 'g':
        if (!walk_take(w, 8, &p)) return walk_fail(w, "truncated float");
        return !w->emit || mp_tagged(w->out, 0xcb, 8, get_u8le(p));
    case 'u': case 't': return walk_bytes(w, 1);
    case 's': return walk_bytes(w, 0);
    default: return walk_fail(w, "unsupported value type in tape");
    }
}

/* One token: a scalar, a container opening, or a map terminator. */
static B4 walk_token(Walk *w) {
    U1 const *p;
    if (!walk_take(w, 1, &p)) return walk_fail(w, "truncated tape");
    U1 t = p[0];
    Frame *top = w->depth ? &w->stack[w->depth - 1] : 0;
    if (top && top->kind == FrameKind_Map && top->want_key) {
        if (t == '0') {
            if (!walk_close_map(w)) return 0;
            walk_completed(w);
            return 1;
        }
        if (t != 'u' && t != 't') return walk_fail(w, "dict key is not a str");
    }
    if (t == '(' || t == '[') {
        U4 depth = w->depth;
        if (!walk_open_array(w)) return 0;
        if (w->depth == depth) walk_completed(w);   /* empty array */
        return 1;
    }
    if (t == '{') return walk_open_map(w);
    if (!walk_scalar(w, t)) return 0;
    walk_completed(w);
    return 1;
}

static B4 walk_run(Walk *w) {
    w->at = TAPE_HEADER;
    w->depth = 0;
    w->maps = 0;
    do {
        if (!walk_token(w)) return 0;
    } while (w->depth);
    if (w->at != w->len) return walk_fail(w, "trailing bytes after the value");
    return 1;
}

static B4 encode_one(Ctx *ctx, Str8 data, MpOut *out) {
    if (data.len < TAPE_HEADER || memcmp(data.ptr, TAPE_MAGIC, 4) != 0)
        return ctx_fail(ctx, Code_BadParam, "snapshot tape: bad magic (expected SFM2)");
    Xar counts = { .arena = ctx->arena };
    Frame first[64];
    Walk w = {
        .ctx = ctx, .ptr = data.ptr, .len = data.len, .out = out, .counts = &counts,
        .stack = first, .cap = (U4)count_of(first),
    };
    B4 ok = walk_run(&w);
    if (ok) {
        w.emit = 1;
        ok = walk_run(&w) && mp_flush(out);
    }
    if (!ok && (out->failed || counts.failed) && ctx->code == Code_Ok)
        return ctx_fail(ctx, Code_NoMemory, "snapshot: out of memory");
    return ok;
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
