/* base.h: width-named types, slices, arenas and the Xar chunked array.
 *
 * Everything a call allocates comes from one Arena (a chain of malloc'd
 * blocks that never move) and is released in one go with arena_release.
 * Growing byte output goes into a Xar: power-of-two chunks addressed by
 * shift and mask, so appending never moves what was written. */
#ifndef SLOPFAST_BASE_H
#define SLOPFAST_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint8_t  U1;
typedef uint16_t U2;
typedef uint32_t U4;
typedef uint64_t U8;
typedef int32_t  S4;
typedef int64_t  S8;
typedef int32_t  B4;

#define Struct_(Name) typedef struct Name Name; struct Name
#define Enum_(Name)   typedef enum Name Name; enum Name

#if defined(__GNUC__) || defined(__clang__)
#  define IA_ static inline __attribute__((always_inline))
#  define EXPECT_(cond, v) __builtin_expect(!!(cond), (v))
#else
#  define IA_ static inline
#  define EXPECT_(cond, v) (cond)
#endif

#define min_(a, b) ((a) < (b) ? (a) : (b))
#define max_(a, b) ((a) > (b) ? (a) : (b))
#define count_of(a) (sizeof(a) / sizeof((a)[0]))

/* ---- slices ------------------------------------------------------------ */

Struct_(Str8) { U1 const *ptr; U8 len; };

#define str8_lit(s) ((Str8){ (U1 const *)(s), sizeof(s) - 1 })
#define str8_fmt(s) (int)(s).len, (char const *)(s).ptr

IA_ Str8 str8(U1 const *ptr, U8 len) { return (Str8){ ptr, len }; }

IA_ B4 str8_eq(Str8 a, Str8 b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* n == 0 returns s itself: an empty slice may hold a NULL pointer, and NULL + 0 is UB */
IA_ Str8 str8_skip(Str8 s, U8 n) { n = min_(n, s.len); return n ? (Str8){ s.ptr + n, s.len - n } : s; }
IA_ Str8 str8_prefix(Str8 s, U8 n) { return (Str8){ s.ptr, min_(n, s.len) }; }

/* ---- arena ------------------------------------------------------------- */

Struct_(ArenaBlock) { ArenaBlock *prev; U8 size; U8 used; };

/* Why a call's memory gave out: the one failure flag of a call. Every
 * allocation and every Xar append of the call checks it, so after the first
 * failure the rest of the work stops at its next write. */
Enum_(Fail) {
    Fail_None = 0,
    Fail_NoMemory = 1,   /* malloc, or the arena's `limit`, said no */
    Fail_Limit = 2,      /* a Xar would have grown past LIMIT_OUTPUT_BYTES */
};

/* `limit` caps the bytes one call may take (0: no cap). `fail_after`, when
 * non-zero, makes the n-th block allocation fail: the test hook for
 * allocation failures (only honoured in builds with SLOPFAST_TEST_HOOKS). */
Struct_(Arena) {
    ArenaBlock *block;
    U8 reserved;
    U8 limit;
    U8 fail_after;
    Fail failed;
};

Struct_(ArenaPushOpts) { U1 defaults_; U8 alignment; B4 zero; };  /* defaults_: lets the macros below take no options */

void *arena_push_(Arena *arena, U8 count, U8 elem_size, U8 align, ArenaPushOpts opts);
void  arena_release(Arena *arena);
/* Empties the arena but keeps its memory (as one block, up to
 * ARENA_RETAIN_MAX bytes) for the next use: no fresh pages from the kernel
 * for a call the size of the last one. */
void  arena_reset(Arena *arena);

/* farena_push(&arena, size, .alignment = 16); NULL (and arena->failed) when
 * memory or the arena's limit runs out. Options left out keep their
 * defaults: alignment 8 (or the type's), no zeroing. */
#define farena_push(arena, size, ...) \
    arena_push_((arena), (size), 1, 8, (ArenaPushOpts){ .defaults_ = 0, __VA_ARGS__ })
#define farena_push_type(arena, T, ...) \
    ((T *)arena_push_((arena), 1, sizeof(T), _Alignof(T), (ArenaPushOpts){ .defaults_ = 0, .zero = 1, __VA_ARGS__ }))
#define farena_push_array(arena, T, n, ...) \
    ((T *)arena_push_((arena), (n), sizeof(T), _Alignof(T), (ArenaPushOpts){ .defaults_ = 0, __VA_ARGS__ }))

Str8 arena_copy(Arena *arena, Str8 s);

/* Where an arena is up to, for arena_pop_to: memory pushed after the mark
 * is given back (the blocks made since freed), for work done in nested
 * scopes (the walk: a directory's listing, popped with the directory). */
Struct_(ArenaMark) { ArenaBlock *block; U8 used; };
ArenaMark arena_mark(Arena const *arena);
void arena_pop_to(Arena *arena, ArenaMark mark);
/* Room for `bytes` in the current block (0 when memory runs out): a first
 * block as big as a scope usually needs, so that pops rarely free blocks
 * that the next scope makes again. */
B4 arena_reserve(Arena *arena, U8 bytes);

/* ---- Xar: chunked byte array -------------------------------------------- */

/* Chunk k holds bytes [B<<(k-1), B<<k) for k >= 1 and [0, B) for k = 0, with
 * B = 1 << XAR_SHIFT0. The chunk of byte i is found from the bit length of
 * i >> XAR_SHIFT0, the offset by masking: no search, no moving realloc. */
enum { XAR_SHIFT0 = 12, XAR_MAX_CHUNKS = 40 };

/* A failed append sets the arena's flag (Fail_NoMemory, or Fail_Limit past
 * `limit`: LIMIT_OUTPUT_BYTES when left 0) and returns 0. */
Struct_(Xar) {
    Arena *arena;
    U1 *chunks[XAR_MAX_CHUNKS];
    U8 len;
    U8 limit;
};

/* Power-of-two chunks whose first holds 1 << shift0 items (both Xars). */
IA_ U4 chunk_index(U8 i, U4 shift0) {
    U8 hi = i >> shift0;
    if (hi == 0) return 0;
#if defined(__GNUC__) || defined(__clang__)
    return (U4)(64 - __builtin_clzll(hi));
#else
    U4 k = 0; while (hi) { k += 1; hi >>= 1; } return k;
#endif
}
IA_ U8 chunk_start(U4 k, U4 shift0) { return k == 0 ? 0 : ((U8)1 << (shift0 + k - 1)); }
IA_ U8 chunk_size(U4 k, U4 shift0)  { return k == 0 ? ((U8)1 << shift0) : ((U8)1 << (shift0 + k - 1)); }

IA_ U4 xar_chunk_of(U8 i)    { return chunk_index(i, XAR_SHIFT0); }
IA_ U8 xar_chunk_start(U4 k) { return chunk_start(k, XAR_SHIFT0); }
IA_ U8 xar_chunk_size(U4 k)  { return chunk_size(k, XAR_SHIFT0); }

B4   xar_append(Xar *xar, U1 const *ptr, U8 len);
B4   xar_put_at(Xar *xar, U8 at, U1 const *ptr, U8 len);  /* overwrite bytes already appended */
Str8 xar_flatten(Xar *xar, Arena *arena);                 /* one contiguous copy */
B4   xar_copy_out(Xar const *xar, U8 at, U1 *dst, U8 len);

IA_ B4 xar_str8(Xar *xar, Str8 s) { return xar_append(xar, s.ptr, s.len); }
IA_ B4 xar_byte(Xar *xar, U1 b) { return xar_append(xar, &b, 1); }

IA_ void put_u4le(U1 *p, U4 v) { p[0] = (U1)v; p[1] = (U1)(v >> 8); p[2] = (U1)(v >> 16); p[3] = (U1)(v >> 24); }
IA_ void put_u8le(U1 *p, U8 v) { put_u4le(p, (U4)v); put_u4le(p + 4, (U4)(v >> 32)); }
IA_ U2 get_u2le(U1 const *p) { return (U2)(p[0] | (p[1] << 8)); }
IA_ U4 get_u4le(U1 const *p) { return (U4)p[0] | ((U4)p[1] << 8) | ((U4)p[2] << 16) | ((U4)p[3] << 24); }
IA_ U8 get_u8le(U1 const *p) { return (U8)get_u4le(p) | ((U8)get_u4le(p + 4) << 32); }

/* ---- Reader: the one bounds-checked reader ------------------------------ */

/* Reads little-endian fields front to back. A read past the end reads
 * nothing, returns 0 and sets `bad`, which stays set: check it once after a
 * group of reads, before using what they returned. */

Struct_(Reader) { U1 const *ptr; U8 len; U8 at; B4 bad; };

IA_ U8 reader_left(Reader *r) { return r->len - r->at; }

IA_ B4 reader_take(Reader *r, U8 n, U1 const **out) {
    if (r->bad || n > reader_left(r)) { r->bad = 1; return 0; }
    *out = r->ptr + r->at;
    r->at += n;
    return 1;
}
IA_ U1 read_u1(Reader *r) { U1 const *p; return reader_take(r, 1, &p) ? p[0] : 0; }
IA_ U2 read_u2(Reader *r) { U1 const *p; return reader_take(r, 2, &p) ? get_u2le(p) : 0; }
IA_ U4 read_u4(Reader *r) { U1 const *p; return reader_take(r, 4, &p) ? get_u4le(p) : 0; }
IA_ U8 read_u8(Reader *r) { U1 const *p; return reader_take(r, 8, &p) ? get_u8le(p) : 0; }
IA_ Str8 read_bytes(Reader *r, U8 n) { U1 const *p = 0; return reader_take(r, n, &p) ? str8(p, n) : str8(0, 0); }

IA_ B4 xar_u4(Xar *xar, U4 v) { U1 b[4]; put_u4le(b, v); return xar_append(xar, b, 4); }
IA_ B4 xar_u8(Xar *xar, U8 v) { U1 b[8]; put_u8le(b, v); return xar_append(xar, b, 8); }

/* ---- XarOf: chunked array of fixed-size elements ------------------------ */

/* The byte Xar's layout for elements, for arrays that grow while pointers
 * into them are live (a scanner's saved states, a line's statements):
 * chunk k holds elements [E<<(k-1), E<<k) for k >= 1 and [0, E) for k = 0,
 * with E = 1 << XAR_OF_SHIFT0, so a push never moves an element and
 * xar_at is a shift, a mask and a multiply. Set it up with xar_of(arena, T). */
enum { XAR_OF_SHIFT0 = 6 };

Struct_(XarOf) {
    Arena *arena;
    U1 *chunks[XAR_MAX_CHUNKS];
    U8 len;            /* elements */
    U8 size;           /* bytes per element */
};

#define xar_of(arena_, T) ((XarOf){ .arena = (arena_), .size = sizeof(T) })

IA_ U4 xar_of_chunk_of(U8 i)    { return chunk_index(i, XAR_OF_SHIFT0); }
IA_ U8 xar_of_chunk_start(U4 k) { return chunk_start(k, XAR_OF_SHIFT0); }
IA_ U8 xar_of_chunk_size(U4 k)  { return chunk_size(k, XAR_OF_SHIFT0); }

/* Element i, for i < len (unchecked, like an array index). */
IA_ void *xar_at(XarOf const *x, U8 i) {
    U4 k = xar_of_chunk_of(i);
    return x->chunks[k] + (i - xar_of_chunk_start(k)) * x->size;
}
/* A new zeroed element at the end; 0, with the arena's flag set, when
 * memory runs out. Inline while the element's chunk is there. */
void *xar_of_push_new_chunk_(XarOf *x);
IA_ void *xar_of_push(XarOf *x) {
    U4 k = xar_of_chunk_of(x->len);
    if (EXPECT_(k >= XAR_MAX_CHUNKS || !x->chunks[k] || x->arena->failed, 0)) return xar_of_push_new_chunk_(x);
    U1 *p = x->chunks[k] + (x->len - xar_of_chunk_start(k)) * x->size;
    x->len += 1;
    return memset(p, 0, x->size);
}

/* Dropping the last elements (or bytes) keeps their chunks for reuse. */
IA_ void xar_of_truncate(XarOf *x, U8 len) { if (len < x->len) x->len = len; }
IA_ void xar_truncate(Xar *x, U8 len) { if (len < x->len) x->len = len; }

/* The bytes of a byte Xar as one slice: its first chunk itself when they
 * fit there (no copy), else one flat copy in `arena`. */
Str8 xar_contiguous(Xar *xar, Arena *arena);

/* ---- UTF-8 -------------------------------------------------------------- */

/* The one UTF-8 validator, strict as Python's decoder (no overlongs,
 * surrogates or code points past U+10FFFF). For p[0..n), n >= 1: the
 * length (1 to 4) of the valid character at p, or minus the length (1 to
 * 3) of the maximal invalid subpart there: the bytes Python's
 * decode(errors="replace") turns into one U+FFFD. */
S4 utf8_seq(U1 const *p, U8 n);
/* The length of the longest valid UTF-8 prefix of s (s.len: all valid). */
U8 utf8_valid_len(Str8 s);

#endif
