/* tokens.c: exact token counts of tiktoken's o200k_base and cl100k_base.
 *
 * What tiktoken's encode_ordinary does, counted instead of returned: split
 * the text into pieces with the encoding's regular expression, then count
 * each piece's tokens: 1 when the piece is itself a token, else the parts
 * left by byte-pair merging (repeatedly join the adjacent pair whose bytes
 * are the token of lowest rank, leftmost first, until no pair is a token).
 *
 * The two regular expressions (tiktoken_ext/openai_public.py) are hand-coded
 * scanners below (tok_o200k_next, tok_cl100k_next): each is the regex's
 * alternatives in order, with the regex engine's backtracking resolved by
 * hand. The Unicode classes they test come from lib/tokens_unicode.h,
 * generated (tools/gen_unicode_tables.py) from the Unicode version of
 * tiktoken's regex engine.
 *
 * Parameters: `encoding` (o200k_base, the default, or cl100k_base) picks
 * the pattern; `ranks` is the encoding's vocabulary, every token's bytes in
 * rank order, each as a length byte (1 to 255) then the bytes
 * (docs/tokens.md), or `vocab`, the index of a vocabulary the caller built
 * once (tokens_vocab_new) and attached to its context. With neither, the op
 * counts the pre-tokenizer's pieces. The part: one record part "Q", one row
 * per input.
 *
 * Input that is not valid UTF-8 is first read the way Python's
 * decode(errors="replace") reads it (one U+FFFD per maximal invalid
 * subpart), which is the text tiktoken sees for such bytes. */
#include "op.h"
#include "tokens_unicode.h"

Enum_(TokEncoding) { TokEncoding_O200k = 0, TokEncoding_Cl100k = 1 };

#define TOK_NO_RANK 0xffffffffu

/* The vocabulary: an open-addressing table over the tokens' bytes, which
 * stay where they are (the request's `ranks` value, or a TokVocab's own
 * copy). A slot holds the token's key (its first 8 bytes, zero-padded:
 * tok_words), rank + 1 (0: empty) and its length with 24 bits of its hash,
 * so that most lookups touch one slot and nothing else; tokens over 8 bytes
 * compare the rest with the request's bytes. Pairs of bytes have their own
 * flat table (`pair2`), which stays in cache: the merges look up every pair
 * of a piece; `pair_bit` (8 KiB) says only whether a pair is a token, which
 * is all the count of a 2-byte piece needs. */
Struct_(TokSlot) { U8 key; U4 rank1; U4 len_tag; };

Struct_(TokTable) {
    U1 const *blob;
    U4 *offset;        /* rank -> offset of its bytes in blob */
    U4 count;
    TokSlot *slots;
    U8 mask;
    U4 *pair2;         /* (b0 << 8 | b1) -> the rank of that 2-byte token, or TOK_NO_RANK */
    U1 *pair_bit;      /* bit (b0 << 8 | b1): that pair is a token */
};

/* Scratch of the merge of one long piece, grown to the longest piece. */
Struct_(TokScratch) {
    U8 cap;            /* bytes of piece the arrays serve */
    U4 *next;          /* part start -> its end */
    U4 *prev;          /* part start -> the previous part's start */
    U4 *pair;          /* part start -> rank of it joined with the next part */
    U8 *heap;          /* (rank << 32) | start, a min-heap */
};

/* Counts of short pieces (3 to TOK_MEMO_BYTES bytes), direct-mapped by
 * hash: source text repeats its words, and a hit costs no lookup in the
 * (cache-missing) vocabulary and no merge. An entry is the piece's bytes
 * (zero-padded), its length and its count. Two of them: `memo` for every
 * piece, small enough to stay in the core's cache (a probe of a bigger one
 * waits for memory more often than it saves a lookup), and `merged` for the
 * pieces that are not tokens, bigger, looked at only when the vocabulary
 * says so: a merge costs ten lookups. */
enum { TOK_MEMO_BYTES = 16, TOK_MEMO_BITS_MIN = 8, TOK_MEMO_BITS_MAX = 14, TOK_MERGED_BITS_MAX = 17, TOK_RANK_BITS = 14,
       TOK_SPACE_RUNS = 256 };
Struct_(TokMemo) { U8 w0, w1; U4 len; U4 count; };
/* The same for the lookups inside merges (3 to TOK_MEMO_BYTES bytes): the
 * rank of those bytes, or TOK_NO_RANK. Words share their parts ("ing"). */
Struct_(TokRankMemo) { U8 w0, w1; U4 len; U4 rank; };

/* Counts of pieces of TOK_MEMO_BYTES + 1 to TOK_LONG_BYTES bytes: cl100k's
 * letter runs are whole identifiers (assertRaisesRegex), and their merges
 * cost as much as all the short pieces'. An entry holds the piece's hash and
 * where its bytes are in `long_bytes`, a copy, compared on a hit; when the
 * copy is full, entries and copy start over (bounded memory). */
enum { TOK_LONG_BYTES = 64, TOK_LONG_BITS_MIN = 6, TOK_LONG_BITS_MAX = 12 };
Struct_(TokLongMemo) { U8 h; U4 len; U4 count; U8 at; };

Struct_(TokCounter) {
    Ctx *ctx;
    Arena *arena;      /* the memos and the merge scratch: the counter's life */
    TokMemo *memo;
    TokMemo *merged;
    TokRankMemo *rank_memo;
    U4 memo_shift;     /* 64 - log2 of memo's entries */
    U4 merged_shift;   /* 64 - log2 of merged's entries */
    U4 rank_shift;     /* 64 - log2 of rank_memo's entries */
    TokEncoding encoding;
    TokTable table;
    B4 has_table;
    TokScratch scratch;
    U1 space_runs[TOK_SPACE_RUNS];   /* n -> the count of n spaces (0: not known yet) */
    TokLongMemo *long_memo;
    U4 long_shift;                   /* 64 - log2 of long_memo's entries */
    U1 *long_bytes;                  /* the long memo's pieces, copied */
    U8 long_used, long_cap;
    U8 memo_for;                     /* the bytes of text the memos are sized for (tok_memos) */
    U8 counted;                      /* bytes counted so far */
};

/* ---- the vocabulary ------------------------------------------------------ */

IA_ U8 tok_load8(U1 const *p) { U8 v; memcpy(&v, p, 8); return v; }

/* The first min(n, 16) bytes of a piece, zero-padded, as two words: the key
 * of the memos, and (w0) of the vocabulary's slots. `avail` (>= n) bytes
 * from p are readable: with 16 of them (all but the last pieces of a text)
 * two loads and two masks, else a copy. A mask's bytes are 0xff for the
 * piece's bytes and 0 past them (tok_ones from 16 - n), whatever the byte
 * order. */
Struct_(TokKey) { U8 w0, w1; };
static U1 const tok_ones[32] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

IA_ TokKey tok_words(U1 const *p, U8 n, U8 avail) {
    U8 m = n < 16 ? n : 16;
    if (avail >= 16)
        return (TokKey){ tok_load8(p) & tok_load8(tok_ones + 16 - m), tok_load8(p + 8) & tok_load8(tok_ones + 24 - m) };
    U1 b[16] = { 0 };
    memcpy(b, p, (size_t)m);
    return (TokKey){ tok_load8(b), tok_load8(b + 8) };
}

/* The vocabulary's hash of a piece of n bytes with key `k`. */
IA_ U8 tok_mix(TokKey k, U8 n) {
    U8 h = (k.w0 ^ (n << 56)) * 0x9e3779b97f4a7c15ull;
    h ^= (k.w1 + n) * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 29;
    h *= 0x165667b19e3779f9ull;
    return h ^ (h >> 32);
}

/* The rank of the token p[0..n) (key w0 and hash h from tok_words and
 * tok_mix), or TOK_NO_RANK. Probes stop at an empty slot; the table is at
 * most half full, so there always is one. */
static U4 tok_rank_h(TokTable const *t, U1 const *p, U8 n, U8 w0, U8 h) {
    if (n == 0 || n > 255) return TOK_NO_RANK;
    U4 len_tag = (U4)n | ((U4)(h >> 40) << 8);
    for (U8 i = h & t->mask, probes = 0; probes <= t->mask; i = (i + 1) & t->mask, probes += 1) {
        TokSlot const *slot = &t->slots[i];
        if (slot->rank1 == 0) return TOK_NO_RANK;
        if (slot->len_tag != len_tag || slot->key != w0) continue;
        U4 rank = slot->rank1 - 1;
        if (n <= 8 || memcmp(t->blob + t->offset[rank] + 8, p + 8, (size_t)(n - 8)) == 0) return rank;
    }
    return TOK_NO_RANK;
}

/* The rank of p[0..n), `avail` >= n bytes readable from p. */
IA_ U4 tok_rank(TokTable const *t, U1 const *p, U8 n, U8 avail) {
    if (n == 2) return t->pair2[(U4)p[0] << 8 | p[1]];
    if (n == 0 || n > 255) return TOK_NO_RANK;
    TokKey key = tok_words(p, n, avail);
    return tok_rank_h(t, p, n, key.w0, tok_mix(key, n));
}

IA_ U4 tok_pair_is_token(TokTable const *t, U1 const *p) {
    U4 pair = (U4)p[0] << 8 | p[1];
    return (t->pair_bit[pair >> 3] >> (pair & 7)) & 1;
}

/* Why a ranks value was refused (TokBad_None: built). */
Enum_(TokBad) { TokBad_None, TokBad_Length, TokBad_Empty, TokBad_Count, TokBad_Memory };
Struct_(TokBadAt) { TokBad why; U8 token; U8 at; U1 len; };

/* A 2-byte token: the first of its rank in pair2 and pair_bit (memset to
 * TOK_NO_RANK and zeroed first). */
IA_ void tok_pair_add(TokTable *t, U1 const *p, U4 rank) {
    U4 pair = (U4)p[0] << 8 | p[1];
    if (t->pair2[pair] != TOK_NO_RANK) return;
    t->pair2[pair] = rank;
    t->pair_bit[pair >> 3] |= (U1)(1u << (pair & 7));
}

/* The table over the tokens of `blob` (which must outlive it), in `arena`. */
static TokBadAt tok_table_build(Arena *arena, Str8 blob, TokTable *t) {
    U8 count = 0;
    for (U8 at = 0; at < blob.len; count += 1) {
        U1 n = blob.ptr[at];
        if (n == 0 || n > blob.len - at - 1) return (TokBadAt){ TokBad_Length, count, at, n };
        at += 1 + (U8)n;
    }
    if (count == 0) return (TokBadAt){ TokBad_Empty, 0, 0, 0 };
    if (count >= (1u << 30)) return (TokBadAt){ TokBad_Count, count, 0, 0 };
    U8 cap = 16;
    while (cap < count * 2) cap <<= 1;
    t->blob = blob.ptr;
    t->count = (U4)count;
    t->offset = farena_push_array(arena, U4, count);
    t->slots = farena_push_array(arena, TokSlot, cap, .zero = 1);
    t->pair2 = farena_push_array(arena, U4, 1u << 16);
    t->pair_bit = farena_push_array(arena, U1, 1u << 13, .zero = 1);
    /* hashes first, then the inserts with the slot of a later token
     * prefetched: the slots are a few MiB, nearly every insert misses the cache */
    U8 *hashes = farena_push_array(arena, U8, count);
    if (!t->offset || !t->slots || !t->pair2 || !t->pair_bit || !hashes) return (TokBadAt){ TokBad_Memory, 0, 0, 0 };
    t->mask = cap - 1;
    memset(t->pair2, 0xff, sizeof(U4) << 16);
    U8 at = 0;
    for (U4 rank = 0; rank < t->count; rank += 1) {
        U1 n = blob.ptr[at];
        U1 const *p = blob.ptr + at + 1;
        t->offset[rank] = (U4)(at + 1);
        TokKey key = tok_words(p, n, blob.len - at - 1);
        hashes[rank] = tok_mix(key, n);
        if (n == 2) tok_pair_add(t, p, rank);
        at += 1 + (U8)n;
    }
    /* linear probing finds the first of a repeated token first: it keeps its first rank */
    for (U4 rank = 0; rank < t->count; rank += 1) {
#if defined(__GNUC__) || defined(__clang__)
        if (rank + 16 < t->count) __builtin_prefetch(&t->slots[hashes[rank + 16] & t->mask], 1);
#endif
        U8 h = hashes[rank];
        U1 const *p = blob.ptr + t->offset[rank];
        U1 n = p[-1];
        U8 i = h & t->mask;
        while (t->slots[i].rank1 != 0) i = (i + 1) & t->mask;
        t->slots[i] = (TokSlot){ tok_words(p, n, blob.len - t->offset[rank]).w0, rank + 1, (U4)n | ((U4)(h >> 40) << 8) };
    }
    return (TokBadAt){ TokBad_None, 0, 0, 0 };
}

/* A vocabulary built once by the caller: its own arena holds the copy of
 * the ranks, the table and itself. */
struct TokVocab { Arena arena; TokTable table; };

TokVocab *tok_vocab_new(U1 const *ranks, U8 len) {
    if (!ranks || !len) return 0;
    Arena arena = { 0 };
    U1 *copy = farena_push(&arena, len, .alignment = 8);
    TokTable table = { 0 };
    TokVocab *vocab = 0;
    if (copy) {
        memcpy(copy, ranks, (size_t)len);
        if (tok_table_build(&arena, str8(copy, len), &table).why == TokBad_None)
            vocab = farena_push_type(&arena, TokVocab);
    }
    if (!vocab) { arena_release(&arena); return 0; }
    vocab->table = table;
    vocab->arena = arena;   /* after its last allocation: the copy owns the blocks */
    return vocab;
}

void tok_vocab_free(TokVocab *vocab) {
    if (!vocab) return;
    Arena arena = vocab->arena;   /* the vocabulary lives inside its own arena */
    arena_release(&arena);
}

/* ---- images of a vocabulary ---------------------------------------------
 * Building the table takes about 15 ms, most of it page faults of 10 MiB of
 * fresh memory; the pages of a mapped file come from the page cache, about
 * 1 ms for the lot. So the caller can keep a vocabulary as an image (a file
 * in its cache directory) and map it back in. An image: TokImageHead, the
 * blob, TOK_IMAGE_PAD bytes (a lookup compares up to 255 bytes from a
 * token's start: they stay inside the image whatever the slots say), the
 * offsets, the slots, each part at a multiple of 16 bytes; pair2 and
 * pair_bit (264 KiB) are rebuilt. Native byte order and layout: the caller
 * names the file by the library's build. tok_vocab_adopt checks the sum of
 * all the words after the head (an image damaged by accident is refused)
 * and whatever a lookup reads by (every token's length and offset, every
 * slot's rank): a forged image can change counts, never make a read leave
 * the image. */
enum { TOK_IMAGE_PAD = 256 };
#define TOK_IMAGE_MAGIC 0x3167616d69746673ull   /* "sftimag1" */
Struct_(TokImageHead) { U8 magic; U8 slot_bytes; U8 count; U8 cap; U8 blob_len; U8 sum; };
Struct_(TokImageLayout) { U8 blob, offset, slots, end; };

IA_ U8 tok_align16(U8 n) { return (n + 15) & ~(U8)15; }

_Static_assert(sizeof(TokImageHead) % 16 == 0 && sizeof(TokSlot) % 16 == 0, "an image's sum reads 16 bytes a step");

/* Where the parts of an image of `count` tokens, `cap` slots, a blob of
 * blob_len bytes start (each < 2^40: no sum overflows). */
static TokImageLayout tok_image_layout(U8 count, U8 cap, U8 blob_len) {
    TokImageLayout l;
    l.blob = sizeof(TokImageHead);
    l.offset = tok_align16(l.blob + blob_len + TOK_IMAGE_PAD);
    l.slots = tok_align16(l.offset + count * sizeof(U4));
    l.end = l.slots + cap * sizeof(TokSlot);
    return l;
}

/* MurmurHash3's 64-bit finalizer: a bijection that spreads every bit. */
IA_ U8 tok_fmix(U8 h) {
    h ^= h >> 33; h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

/* Fletcher's two running sums of the words (a word changed changes both,
 * two swapped the second), in two lanes so that the additions do not wait
 * for each other (memory speed), each sum mixed before they are added.
 * n % 16 == 0. */
static U8 tok_image_sum(U1 const *p, U8 n) {
    U8 a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    for (U8 i = 0; i < n; i += 16) {
        a0 += tok_load8(p + i); b0 += a0;
        a1 += tok_load8(p + i + 8); b1 += a1;
    }
    return tok_fmix(a0) + tok_fmix(b0 ^ 1) + tok_fmix(a1 ^ 2) + tok_fmix(b1 ^ 3);
}

U8 tok_vocab_image(TokVocab const *vocab, U1 *out, U8 cap) {
    if (!vocab) return 0;
    TokTable const *t = &vocab->table;
    U8 blob_len = t->offset[t->count - 1] + t->blob[t->offset[t->count - 1] - 1];
    TokImageLayout l = tok_image_layout(t->count, t->mask + 1, blob_len);
    if (!out || cap < l.end) return l.end;
    memset(out, 0, (size_t)l.end);
    memcpy(out + l.blob, t->blob, (size_t)blob_len);
    memcpy(out + l.offset, t->offset, (size_t)t->count * sizeof(U4));
    memcpy(out + l.slots, t->slots, (size_t)(t->mask + 1) * sizeof(TokSlot));
    TokImageHead head = { TOK_IMAGE_MAGIC, sizeof(TokSlot), t->count, t->mask + 1, blob_len,
                          tok_image_sum(out + sizeof head, l.end - sizeof head) };
    memcpy(out, &head, sizeof head);
    return l.end;
}

/* The blob's tokens must be where the offsets say, end to end, `count` of
 * them; their pairs go to pair2 and pair_bit. */
static B4 tok_image_tokens(TokTable *t, U8 blob_len) {
    U8 at = 0;
    U4 rank = 0;
    for (; at < blob_len && rank < t->count; rank += 1) {
        U1 n = t->blob[at];
        if (n == 0 || n > blob_len - at - 1 || t->offset[rank] != at + 1) return 0;
        if (n == 2) tok_pair_add(t, t->blob + at + 1, rank);
        at += 1 + (U8)n;
    }
    return at == blob_len && rank == t->count;
}

/* Every slot's rank is a token's (or 0, empty), and `count` are taken:
 * there is an empty slot to stop each probe. */
static B4 tok_image_slots(TokTable const *t) {
    U8 taken = 0;
    for (U8 i = 0; i <= t->mask; i += 1) {
        U4 rank1 = t->slots[i].rank1;
        if (rank1 > t->count) return 0;
        taken += rank1 != 0;
    }
    return taken == t->count;
}

TokVocab *tok_vocab_adopt(U1 const *image, U8 len) {
    TokImageHead head;
    if (!image || ((uintptr_t)image & 7) || len < sizeof head) return 0;
    memcpy(&head, image, sizeof head);
    if (head.magic != TOK_IMAGE_MAGIC || head.slot_bytes != sizeof(TokSlot) || head.count == 0 || head.count >= (1u << 30) || head.cap < 2 * head.count
        || (head.cap & (head.cap - 1)) || head.blob_len > len)
        return 0;
    TokImageLayout l = tok_image_layout(head.count, head.cap, head.blob_len);
    if (l.end != len || tok_image_sum(image + sizeof head, len - sizeof head) != head.sum) return 0;
    Arena arena = { 0 };
    TokVocab *vocab = farena_push_type(&arena, TokVocab);
    U4 *pair2 = farena_push_array(&arena, U4, 1u << 16);
    U1 *pair_bit = farena_push_array(&arena, U1, 1u << 13, .zero = 1);
    if (!vocab || !pair2 || !pair_bit) { arena_release(&arena); return 0; }
    memset(pair2, 0xff, sizeof(U4) << 16);
    /* read-only from here on: the casts only fit TokTable's fields, which the builder writes */
    vocab->table = (TokTable){ image + l.blob, (U4 *)(uintptr_t)(image + l.offset), (U4)head.count,
                               (TokSlot *)(uintptr_t)(image + l.slots), head.cap - 1, pair2, pair_bit };
    if (!tok_image_tokens(&vocab->table, head.blob_len) || !tok_image_slots(&vocab->table)) {
        arena_release(&arena);
        return 0;
    }
    vocab->arena = arena;   /* after its last allocation */
    return vocab;
}

static B4 tok_use_ranks(TokCounter *k, Str8 blob) {
    Ctx *ctx = k->ctx;
    TokBadAt bad = tok_table_build(k->arena, blob, &k->table);
    switch (bad.why) {
    case TokBad_None: break;
    case TokBad_Length:
        return ctx_fail(ctx, Code_BadParam, "ranks: token %llu at byte %llu: length %u does not fit",
                        (unsigned long long)bad.token, (unsigned long long)bad.at, bad.len);
    case TokBad_Empty: return ctx_fail(ctx, Code_BadParam, "ranks: no tokens");
    case TokBad_Count: return ctx_fail(ctx, Code_Limit, "ranks: more than 2^30 tokens");
    case TokBad_Memory: return 0;
    }
    k->has_table = 1;
    return 1;
}

/* ---- byte-pair merging ---------------------------------------------------- */

/* The hash of a piece (3 to TOK_MEMO_BYTES bytes, key `key`) in the memos,
 * multiplicative: a memo of 2^b entries takes its top b bits, which depend
 * on every byte. */
IA_ U8 tok_memo_hash(TokKey key) { return key.w0 * 0x9e3779b97f4a7c15ull + key.w1 * 0xc2b2ae3d27d4eb4full; }

IA_ void tok_prefetch(void const *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

/* A lookup inside a merge, in two steps: tok_look_start computes the keys
 * and prefetches the rank memo's entry and the vocabulary's slot, so that
 * the two lookups after a join wait for memory once, not four times. */
Struct_(TokLook) { U1 const *p; U8 n; TokKey key; U8 mh; U8 h; };

IA_ TokLook tok_look_start(TokCounter const *k, U1 const *p, U8 n, U8 avail) {
    TokLook l = { p, n, { 0, 0 }, 0, 0 };
    if (n <= 2 || n > 255) return l;
    l.key = tok_words(p, n, avail);
    l.h = tok_mix(l.key, n);
    tok_prefetch(&k->table.slots[l.h & k->table.mask]);
    if (n <= TOK_MEMO_BYTES) {
        l.mh = tok_memo_hash(l.key);
        tok_prefetch(&k->rank_memo[l.mh >> k->rank_shift]);
    }
    return l;
}

/* The rank of l's bytes, through the rank memo. */
static U4 tok_look_end(TokCounter *k, TokLook const *l) {
    if (l->n == 2) return k->table.pair2[(U4)l->p[0] << 8 | l->p[1]];
    if (l->n > TOK_MEMO_BYTES) return tok_rank_h(&k->table, l->p, l->n, l->key.w0, l->h);
    TokRankMemo *m = &k->rank_memo[l->mh >> k->rank_shift];
    if (m->len == l->n && m->w0 == l->key.w0 && m->w1 == l->key.w1) return m->rank;
    U4 rank = tok_rank_h(&k->table, l->p, l->n, l->key.w0, l->h);
    *m = (TokRankMemo){ l->key.w0, l->key.w1, (U4)l->n, rank };
    return rank;
}

static B4 tok_scratch_fit(TokCounter *k, U8 n) {
    TokScratch *s = &k->scratch;
    if (n <= s->cap) return 1;
    U8 cap = max_(n, s->cap * 2);
    Arena *arena = k->arena;
    s->next = farena_push_array(arena, U4, cap + 1);
    s->prev = farena_push_array(arena, U4, cap + 1);
    s->pair = farena_push_array(arena, U4, cap + 1);
    s->heap = farena_push_array(arena, U8, cap * 3 + 1);
    if (!s->next || !s->prev || !s->pair || !s->heap) { s->cap = 0; return 0; }
    s->cap = cap;
    return 1;
}

IA_ void tok_heap_push(U8 *heap, U8 *len, U8 v) {
    U8 i = (*len)++;
    while (i > 0) {
        U8 up = (i - 1) / 2;
        if (heap[up] <= v) break;
        heap[i] = heap[up];
        i = up;
    }
    heap[i] = v;
}

static U8 tok_heap_pop(U8 *heap, U8 *len) {
    U8 top = heap[0];
    U8 v = heap[--(*len)];
    U8 n = *len, i = 0;
    for (;;) {
        U8 c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap[c + 1] < heap[c]) c += 1;
        if (heap[c] >= v) break;
        heap[i] = heap[c];
        i = c;
    }
    if (n) heap[i] = v;
    return top;
}

/* The lookup of the parts starting at `start` and at next[start] joined
 * (n = 0 when `start` is the last part: no rank). */
IA_ TokLook tok_pair_look(TokCounter const *k, U4 const *next, U1 const *p, U4 n, U8 avail, U4 start) {
    U4 mid = next[start];
    if (mid >= n) return (TokLook){ p, 0, { 0, 0 }, 0, 0 };
    return tok_look_start(k, p + start, (U8)next[mid] - start, avail - start);
}

/* The tokens of a piece of n >= 2 bytes that is not itself a token: the
 * merge with a heap of pairs by (rank, start), as tiktoken's
 * _byte_pair_merge_large (its short-piece loop merges in the same order).
 * Returns 0 when the scratch does not fit in memory. */
static B4 tok_merge_count(TokCounter *k, U1 const *p, U4 n, U8 avail, U8 *count) {
    if (!tok_scratch_fit(k, n)) return 0;
    TokTable const *t = &k->table;
    U4 *next = k->scratch.next, *prev = k->scratch.prev, *pair = k->scratch.pair;
    U8 *heap = k->scratch.heap, heap_len = 0;
    for (U4 i = 0; i < n; i += 1) { next[i] = i + 1; prev[i] = i ? i - 1 : 0; }
    for (U4 i = 0; i + 1 < n; i += 1) {
        pair[i] = t->pair2[(U4)p[i] << 8 | p[i + 1]];
        if (pair[i] != TOK_NO_RANK) tok_heap_push(heap, &heap_len, ((U8)pair[i] << 32) | i);
    }
    pair[n - 1] = TOK_NO_RANK;
    U8 parts = n;
    while (heap_len) {
        U8 top = tok_heap_pop(heap, &heap_len);
        U4 left = (U4)top, rank = (U4)(top >> 32);
        if (pair[left] != rank) continue;   /* a pair changed or gone since */
        U4 right = next[left];
        next[left] = next[right];
        pair[right] = TOK_NO_RANK;
        parts -= 1;
        if (next[left] < n) prev[next[left]] = left;
        U4 before = left > 0 ? prev[left] : 0;
        TokLook after_look = tok_pair_look(k, next, p, n, avail, left);
        TokLook before_look = left > 0 ? tok_pair_look(k, next, p, n, avail, before) : after_look;
        pair[left] = after_look.n ? tok_look_end(k, &after_look) : TOK_NO_RANK;
        if (pair[left] != TOK_NO_RANK) tok_heap_push(heap, &heap_len, ((U8)pair[left] << 32) | left);
        if (left > 0) {
            pair[before] = tok_look_end(k, &before_look);
            if (pair[before] != TOK_NO_RANK) tok_heap_push(heap, &heap_len, ((U8)pair[before] << 32) | before);
        }
    }
    *count += parts;
    return 1;
}

/* Short pieces: tiktoken's own loop (find the lowest pair, join, rescan),
 * on arrays on the stack. */
enum { TOK_SHORT = 48 };

/* The part (of the first parts - 1) whose join with the next has the
 * lowest rank, leftmost first, as (rank << 8) | part: a minimum without a
 * branch (which pair wins is data: a branch on it mispredicts). Its rank is
 * TOK_NO_RANK when no pair joins. */
IA_ U8 tok_lowest_pair(U4 const *rank, U4 parts) {
    U8 best = (U8)TOK_NO_RANK << 8;
    for (U4 i = 0; i + 1 < parts; i += 1) {
        U8 v = ((U8)rank[i] << 8) | i;
        best = v < best ? v : best;
    }
    return best;
}

static void tok_merge_short(TokCounter *k, U1 const *p, U4 n, U8 avail, U8 *count) {
    U4 const *pair2 = k->table.pair2;
    U4 start[TOK_SHORT + 1];
    U4 rank[TOK_SHORT + 1];
    U4 parts = n;
    for (U4 i = 0; i <= n; i += 1) start[i] = i;
    for (U4 i = 0; i + 1 < n; i += 1) rank[i] = pair2[(U4)p[i] << 8 | p[i + 1]];
    rank[n - 1] = TOK_NO_RANK;
    rank[n] = TOK_NO_RANK;
    for (;;) {
        U8 best = tok_lowest_pair(rank, parts);
        if ((best >> 8) == TOK_NO_RANK) break;
        U4 at = (U4)(best & 255);
        /* join parts at and at+1 */
        for (U4 i = at + 1; i < parts; i += 1) { start[i] = start[i + 1]; rank[i] = rank[i + 1]; }
        parts -= 1;
        TokLook after = { p, 0, { 0, 0 }, 0, 0 }, before = after;
        if (at + 1 < parts) after = tok_look_start(k, p + start[at], start[at + 2] - start[at], avail - start[at]);
        if (at > 0) before = tok_look_start(k, p + start[at - 1], start[at + 1] - start[at - 1], avail - start[at - 1]);
        rank[at] = after.n ? tok_look_end(k, &after) : TOK_NO_RANK;
        if (at > 0) rank[at - 1] = tok_look_end(k, &before);
    }
    *count += parts;
}

/* The count of a piece that is not a token; n >= 2. */
static B4 tok_count_merged(TokCounter *k, U1 const *p, U8 n, U8 avail, U8 *count) {
    if (n <= TOK_SHORT) { tok_merge_short(k, p, (U4)n, avail, count); return 1; }
    return tok_merge_count(k, p, (U4)n, avail, count);
}

/* Does p[0, n) hold only spaces? */
static B4 tok_all_spaces(U1 const *p, U8 n) {
    U8 i = 0;
    for (; i + 8 <= n; i += 8) if (tok_load8(p + i) != 0x2020202020202020ull) return 0;
    for (; i < n; i += 1) if (p[i] != ' ') return 0;
    return 1;
}

/* The long memo's entry for p[0, n) (TOK_MEMO_BYTES < n <= TOK_LONG_BYTES),
 * hash *h: its first 16 bytes, its last 8 and its length. */
IA_ TokLongMemo *tok_long_slot(TokCounter *k, U1 const *p, U8 n, U8 avail, U8 *h) {
    *h = tok_mix(tok_words(p, n, avail), n) ^ (tok_load8(p + n - 8) * 0x9e3779b97f4a7c15ull);
    return &k->long_memo[*h >> k->long_shift];
}

static void tok_long_learn(TokCounter *k, TokLongMemo *m, U8 h, U1 const *p, U8 n, U8 count) {
    if (k->long_used + n > k->long_cap) {
        memset(k->long_memo, 0, sizeof(TokLongMemo) << (64 - k->long_shift));
        k->long_used = 0;
    }
    memcpy(k->long_bytes + k->long_used, p, (size_t)n);
    *m = (TokLongMemo){ h, (U4)n, (U4)count, k->long_used };
    k->long_used += n;
}

/* A piece over TOK_MEMO_BYTES: runs of spaces (indentation: 48,000 of the
 * standard library's 52,000 long pieces in o200k_base, of 1,300 distinct)
 * have their counts kept by length, pieces up to TOK_LONG_BYTES in the long
 * memo. */
static B4 tok_count_long(TokCounter *k, U1 const *p, U8 n, U8 avail, U8 *count) {
    B4 spaces = n < TOK_SPACE_RUNS && p[0] == ' ' && tok_all_spaces(p, n);
    if (spaces && k->space_runs[n]) { *count += k->space_runs[n]; return 1; }
    TokLongMemo *m = 0;
    U8 h = 0;
    if (!spaces && n <= TOK_LONG_BYTES) {
        m = tok_long_slot(k, p, n, avail, &h);
        if (m->len == n && m->h == h && memcmp(k->long_bytes + m->at, p, (size_t)n) == 0) { *count += m->count; return 1; }
    }
    U8 c = 0;
    if (n <= 255 && tok_rank(&k->table, p, n, avail) != TOK_NO_RANK) c = 1;
    else if (!tok_count_merged(k, p, n, avail, &c)) return 0;
    if (spaces) k->space_runs[n] = (U1)c;   /* c <= n < 256 */
    if (m) tok_long_learn(k, m, h, p, n, c);
    *count += c;
    return 1;
}

/* Short pieces go through a pipeline, so that the memory each needs is
 * prefetched while later pieces are scanned: its memo entry TOK_AHEAD
 * pieces before it is probed; on a miss, its vocabulary slot and its
 * `merged` entry TOK_MISS_AHEAD misses before they are read; and a piece
 * that must be merged waits for TOK_MERGES of them, merged in step (one
 * join of each, then all their lookups), so that their lookups wait for
 * memory together. Nearly all the time of a lookup is a cache miss (the
 * vocabulary's slots are 8 MiB for o200k_base, the memos' entries hundreds
 * of KiB). Pieces are counted out of order; only the memos' contents
 * depend on it. */
enum { TOK_AHEAD = 16, TOK_MISS_AHEAD = 8, TOK_MERGES = 8 };
Struct_(TokPiece) { U1 const *p; U8 len; TokKey key; U8 mh; U8 h; };

/* The merge of a short piece that is not a token, as tok_merge_short. */
Struct_(TokMerge) {
    TokPiece q;
    U8 avail;                           /* bytes readable from q.p */
    U4 copies;                          /* of the piece waiting (repeats share the merge) */
    U4 parts;
    U4 at;                              /* the last join */
    B4 done;
    U1 start[TOK_MEMO_BYTES + 1];       /* part -> its first byte */
    U4 rank[TOK_MEMO_BYTES + 1];        /* part -> rank of it joined with the next */
    TokLook after, before;              /* the lookups of the last join */
};

Struct_(TokPending) {
    TokPiece miss[TOK_MISS_AHEAD];      /* ring: the last `misses` pieces that missed the memo */
    U8 misses;
    TokMerge merge[TOK_MERGES];
    U4 merges;
    U1 const *end;                      /* of the text */
    U8 count;                           /* of the pieces counted here */
};

IA_ B4 tok_memo_has(TokMemo const *m, TokPiece const *q) {
    return m->len == q->len && m->w0 == q->key.w0 && m->w1 == q->key.w1;
}

IA_ void tok_memo_put(TokMemo *m, TokPiece const *q, U8 count) {
    *m = (TokMemo){ q->key.w0, q->key.w1, (U4)q->len, (U4)count };
}

/* One step of merge m: join its lowest-ranked pair and start the lookups
 * of the joined part with its neighbours; 0 when no pair joins (done). */
static B4 tok_merge_step(TokCounter const *k, TokMerge *m) {
    U8 best = tok_lowest_pair(m->rank, m->parts);
    if ((best >> 8) == TOK_NO_RANK) return 0;
    U4 at = (U4)(best & 255);
    for (U4 i = at + 1; i < m->parts; i += 1) { m->start[i] = m->start[i + 1]; m->rank[i] = m->rank[i + 1]; }
    m->parts -= 1;
    m->at = at;
    U1 const *p = m->q.p;
    U1 const *start = m->start;
    m->after.n = m->before.n = 0;
    if (at + 1 < m->parts) m->after = tok_look_start(k, p + start[at], (U8)(start[at + 2] - start[at]), m->avail - start[at]);
    if (at > 0) m->before = tok_look_start(k, p + start[at - 1], (U8)(start[at + 1] - start[at - 1]), m->avail - start[at - 1]);
    return 1;
}

/* Run the waiting merges in step; count them and let the memos learn them.
 * A piece merged before (its `merged` entry prefetched when it began to
 * wait) is only counted. */
static void tok_merge_all(TokCounter *k, TokPending *pend) {
    for (U4 j = 0; j < pend->merges; j += 1) {
        TokMerge *m = &pend->merge[j];
        TokMemo const *merged = &k->merged[m->q.mh >> k->merged_shift];
        if (!tok_memo_has(merged, &m->q)) continue;
        m->done = 1;
        pend->count += (U8)merged->count * m->copies;
        tok_memo_put(&k->memo[m->q.mh >> k->memo_shift], &m->q, merged->count);
    }
    for (U4 live = pend->merges; live;) {
        live = 0;
        for (U4 j = 0; j < pend->merges; j += 1) {
            TokMerge *m = &pend->merge[j];
            if (m->done) continue;
            if (tok_merge_step(k, m)) { live += 1; continue; }
            m->done = 1;
            pend->count += (U8)m->parts * m->copies;
            tok_memo_put(&k->merged[m->q.mh >> k->merged_shift], &m->q, m->parts);
            tok_memo_put(&k->memo[m->q.mh >> k->memo_shift], &m->q, m->parts);
        }
        for (U4 j = 0; j < pend->merges; j += 1) {
            TokMerge *m = &pend->merge[j];
            if (m->done) continue;
            m->rank[m->at] = m->after.n ? tok_look_end(k, &m->after) : TOK_NO_RANK;
            if (m->at > 0) m->rank[m->at - 1] = tok_look_end(k, &m->before);
        }
    }
    pend->merges = 0;
}

/* A piece that is not a token: wait with the others (a repeat of one
 * waiting joins it), its `merged` entry prefetched. */
static void tok_merge_push(TokCounter *k, TokPending *pend, TokPiece const *q) {
    for (U4 j = 0; j < pend->merges; j += 1) {
        TokMerge *m = &pend->merge[j];
        if (m->q.len == q->len && m->q.key.w0 == q->key.w0 && m->q.key.w1 == q->key.w1) { m->copies += 1; return; }
    }
    tok_prefetch(&k->merged[q->mh >> k->merged_shift]);
    TokMerge *m = &pend->merge[pend->merges++];
    U4 n = (U4)q->len;
    U4 const *pair2 = k->table.pair2;
    m->q = *q;
    m->avail = (U8)(pend->end - q->p);
    m->copies = 1;
    m->parts = n;
    m->done = 0;
    for (U4 i = 0; i <= n; i += 1) m->start[i] = (U1)i;
    for (U4 i = 0; i + 1 < n; i += 1) m->rank[i] = pair2[(U4)q->p[i] << 8 | q->p[i + 1]];
    m->rank[n - 1] = m->rank[n] = TOK_NO_RANK;
    if (pend->merges == TOK_MERGES) tok_merge_all(k, pend);
}

/* A piece that missed the memo, its vocabulary slot prefetched: a token
 * (the memo learns it), or a piece to merge. */
static void tok_count_miss(TokCounter *k, TokPending *pend, TokPiece const *q) {
    if (tok_rank_h(&k->table, q->p, q->len, q->key.w0, q->h) == TOK_NO_RANK) { tok_merge_push(k, pend, q); return; }
    tok_memo_put(&k->memo[q->mh >> k->memo_shift], q, 1);
    pend->count += 1;
}

/* A piece missed the memo: prefetch its vocabulary slot, and count the
 * miss of TOK_MISS_AHEAD misses ago. */
static void tok_miss_push(TokCounter *k, TokPending *pend, TokPiece q) {
    q.h = tok_mix(q.key, q.len);
    tok_prefetch(&k->table.slots[q.h & k->table.mask]);
    TokPiece *slot = &pend->miss[pend->misses % TOK_MISS_AHEAD];
    if (pend->misses >= TOK_MISS_AHEAD) tok_count_miss(k, pend, slot);
    *slot = q;
    pend->misses += 1;
}

/* A piece whose memo entry was prefetched: its count from the memo, or 0
 * (it is counted later, in pend->count). */
IA_ U8 tok_probe(TokCounter *k, TokPending *pend, TokPiece const *q) {
    TokMemo const *m = &k->memo[q->mh >> k->memo_shift];
    if (tok_memo_has(m, q)) return m->count;
    tok_miss_push(k, pend, *q);
    return 0;
}

/* Everything still in the pipeline: the pieces ring[first, last) (mod
 * TOK_AHEAD) to probe, the misses, the merges. Their count. */
static U8 tok_pipe_drain(TokCounter *k, TokPiece const *ring, U8 first, U8 last, TokPending *pend) {
    U8 count = 0;
    for (U8 j = first; j < last; j += 1) count += tok_probe(k, pend, &ring[j % TOK_AHEAD]);
    for (U8 j = pend->misses > TOK_MISS_AHEAD ? pend->misses - TOK_MISS_AHEAD : 0; j < pend->misses; j += 1)
        tok_count_miss(k, pend, &pend->miss[j % TOK_MISS_AHEAD]);
    tok_merge_all(k, pend);
    return count + pend->count;
}

/* ---- the pre-tokenizers -------------------------------------------------- */

/* The class bits of the character at t[i] (valid UTF-8, i < n) and its
 * length. ASCII from a small table, the rest through the two-stage table. */
IA_ U4 tok_class(U1 const *t, S8 n, S8 i, S8 *len) {
    U1 c = t[i];
    U4 cp;
    if (c < 0x80) { *len = 1; return tok_uc_stage2[c]; }
    if (c < 0xe0 && i + 1 < n) { *len = 2; cp = ((U4)(c & 0x1f) << 6) | (t[i + 1] & 0x3f); }
    else if (c < 0xf0 && i + 2 < n) { *len = 3; cp = ((U4)(c & 0x0f) << 12) | ((U4)(t[i + 1] & 0x3f) << 6) | (t[i + 2] & 0x3f); }
    else if (i + 3 < n) { *len = 4; cp = ((U4)(c & 0x07) << 18) | ((U4)(t[i + 1] & 0x3f) << 12) | ((U4)(t[i + 2] & 0x3f) << 6) | (t[i + 3] & 0x3f); }
    else { *len = 1; return 0; }    /* cannot happen on valid UTF-8 */
    if (cp >= 0x110000) return 0;
    return tok_uc_stage2[(U4)tok_uc_stage1[cp >> 8] * 256 + (cp & 255)];
}


/* [^\r\n\p{L}\p{N}]: the optional first character of a word */
IA_ B4 tok_prefix_ok(U4 cls, U1 c) { return !(cls & (TC_L | TC_N)) && c != '\r' && c != '\n'; }
/* [^\s\p{L}\p{N}] */
IA_ B4 tok_other(U4 cls) { return !(cls & (TC_S | TC_L | TC_N)); }

/* The end of the run of characters with any of `mask` from i. */
static S8 tok_run(U1 const *t, S8 n, S8 i, U4 mask) {
    while (i < n) {
        if (t[i] < 0x80) { if (!(tok_uc_stage2[t[i]] & mask)) break; i += 1; continue; }
        S8 len;
        if (!(tok_class(t, n, i, &len) & mask)) break;
        i += len;
    }
    return i;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at i (the same set as cl100k's
 * '(?i:[sdmt]|ll|ve|re)): its end, or i. Case folding, as the regex
 * engine's: s also matches U+017F LATIN SMALL LETTER LONG S. */
static S8 tok_contraction(U1 const *t, S8 n, S8 i) {
    if (i + 1 >= n || t[i] != '\'') return i;
    U1 c = (U1)(t[i + 1] | 0x20);
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
    if (t[i + 1] == 0xc5 && i + 2 < n && t[i + 2] == 0xbf) return i + 3;   /* 'ſ */
    if (i + 2 >= n) return i;
    U1 d = (U1)(t[i + 2] | 0x20);
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return i + 3;
    return i;
}

/* White space from i (class TC_S at i): the end of o200k's
 * \s*[\r\n]+ | \s+(?!\S) | \s+, and cl100k's \s++$ | \s*[\r\n] | \s+(?!\S) | \s.
 * Both need the run's end, the end of its last CR or LF and the start of
 * its last character. Runs of spaces (indentation) go 8 bytes at a time. */
static S8 tok_space(U1 const *t, S8 n, S8 i, TokEncoding enc) {
    S8 j = i, last = i, after_nl = -1;
    for (;;) {
        S8 spaces = j;
        while (j + 8 <= n && tok_load8(t + j) == 0x2020202020202020ull) j += 8;
        while (j < n && t[j] == ' ') j += 1;
        if (j > spaces) last = j - 1;
        if (j >= n) break;
        U1 c = t[j];
        S8 len = 1;
        if (c == '\n' || c == '\r') after_nl = j + 1;
        else if (c < 0x80) { if (!(tok_uc_stage2[c] & TC_S)) break; }
        else if (!(tok_class(t, n, j, &len) & TC_S)) break;
        last = j;
        j += len;
    }
    if (enc == TokEncoding_Cl100k && j == n) return n;        /* \s++$ */
    if (after_nl >= 0) return after_nl;                       /* \s*[\r\n]+ ; \s*[\r\n] */
    if (j == n) return n;                                     /* \s+(?!\S) at the end */
    if (last > i) return last;                                /* \s+(?!\S), one character given back */
    return j;                                                 /* \s+ ; \s */
}

/* ASCII punctuation: [^\s\p{L}\p{N}] */
IA_ B4 tok_ascii_other(U1 c) { return c < 0x80 && !(tok_uc_stage2[c] & (TC_S | TC_L | TC_N)); }

/* ' ?[^\s\p{L}\p{N}]+' then o200k's [\r\n/]* or cl100k's [\r\n]*: the end, or i. */
static S8 tok_punct(U1 const *t, S8 n, S8 i, TokEncoding enc) {
    S8 s = i, len;
    if (t[i] == ' ' && i + 1 < n && tok_other(tok_class(t, n, i + 1, &len))) s = i + 1;
    if (!tok_other(tok_class(t, n, s, &len))) return i;
    S8 e = s + len;
    while (e < n) {
        if (tok_ascii_other(t[e])) { e += 1; continue; }
        if (t[e] < 0x80 || !tok_other(tok_class(t, n, e, &len))) break;
        e += len;
    }
    while (e < n && (t[e] == '\r' || t[e] == '\n' || (enc == TokEncoding_O200k && t[e] == '/'))) e += 1;
    return e;
}

/* \p{N}{1,3} */
static S8 tok_digits(U1 const *t, S8 n, S8 i) {
    S8 e = i;
    for (int k = 0; k < 3 && e < n; k += 1) {
        S8 len;
        if (!(tok_class(t, n, e, &len) & TC_N)) break;
        e += len;
    }
    return e;
}

/* o200k_base's pattern at i: the end of the match (> i).
 *   [^\r\n\p{L}\p{N}]?[UP]*[LO]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   [^\r\n\p{L}\p{N}]?[UP]+[LO]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
 *   \p{N}{1,3}
 *    ?[^\s\p{L}\p{N}]+[\r\n/]*
 *   \s*[\r\n]+  |  \s+(?!\S)  |  \s+
 * with UP = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], LO = [\p{Ll}\p{Lm}\p{Lo}\p{M}]. */
static S8 tok_o200k_slow(U1 const *t, S8 n, S8 i) {
    S8 l0;
    U4 c0 = tok_class(t, n, i, &l0);
    B4 pre = tok_prefix_ok(c0, t[i]);
    /* first alternative: with the prefix character, then without */
    for (int with = pre ? 1 : 0; with >= 0; with -= 1) {
        S8 s = with ? i + l0 : i;
        /* [UP]* greedily, remembering the end of the last LO character in it */
        S8 j = s, last_lo_end = -1, len;
        U4 c = 0;
        while (j < n) {
            c = tok_class(t, n, j, &len);
            if (!(c & TC_UP)) break;
            if (c & TC_LO) last_lo_end = j + len;
            j += len;
        }
        if (j < n && (c & TC_LO)) return tok_contraction(t, n, tok_run(t, n, j, TC_LO));
        if (last_lo_end >= 0) return tok_contraction(t, n, last_lo_end);   /* [UP]* gave back to its last LO */
    }
    /* second alternative */
    for (int with = pre ? 1 : 0; with >= 0; with -= 1) {
        S8 s = with ? i + l0 : i;
        S8 j = tok_run(t, n, s, TC_UP);
        if (j > s) return tok_contraction(t, n, tok_run(t, n, j, TC_LO));
    }
    if (c0 & TC_N) return tok_digits(t, n, i);
    S8 e = tok_punct(t, n, i, TokEncoding_O200k);
    if (e > i) return e;
    if (c0 & TC_S) return tok_space(t, n, i, TokEncoding_O200k);
    return i + l0;   /* no alternative matches (none of these patterns leaves a gap): skipped */
}

/* The index, in memory order, of the first byte of m with its top bit set
 * (m: only top bits, not 0). */
IA_ U4 tok_first_byte(U8 m) {
#if (defined(__GNUC__) || defined(__clang__)) && defined(__BYTE_ORDER__)
#  if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (U4)__builtin_clzll(m) >> 3;
#  else
    return (U4)__builtin_ctzll(m) >> 3;
#  endif
#else
    U1 b[8];
    memcpy(b, &m, 8);
    U4 i = 0;
    while (!(b[i] & 0x80)) i += 1;
    return i;
#endif
}

/* The end of the run from j of ASCII bytes c with lo <= (c | fold) <= hi
 * (a letter range; fold 0x20 takes both cases), 8 bytes at a time while 8
 * remain: a word ends without a loop branch that mispredicts per byte.
 * Per byte of the word, with its top bit clear: + (0x80 - lo) sets it when
 * c >= lo, + (0x7f - hi) when c > hi, and no sum carries into the next. */
IA_ S8 tok_ascii_run(U1 const *t, S8 n, S8 j, U1 lo, U1 hi, U1 fold) {
    U8 const ones = 0x0101010101010101ull, top = ones * 0x80;
    while (j + 8 <= n) {
        U8 x = tok_load8(t + j), x7 = (x & ~top) | (ones * fold);
        U8 in = (x7 + ones * (U1)(0x80 - lo)) & ~(x7 + ones * (U1)(0x7f - hi)) & ~x & top;
        if (in != top) return j + tok_first_byte(~in & top);
        j += 8;
    }
    while (j < n && (U1)((t[j] | fold) - lo) <= (U1)(hi - lo)) j += 1;
    return j;
}

/* An ASCII word from s (an ASCII letter; i: the match's start, s - 1 when
 * it has a prefix character): o200k's [UP]*[LO]+ | [UP]+[LO]* is
 * [A-Z]*[a-z]* there, since no ASCII letter is in both classes; then the
 * contraction. i (undecided) when a non-ASCII character follows, which
 * could go on with the word. */
IA_ S8 tok_o200k_word(U1 const *t, S8 n, S8 i, S8 s) {
    S8 j = s;
    while (j < n && (U1)(t[j] - 'A') < 26) j += 1;   /* mostly none or one */
    j = tok_ascii_run(t, n, j, 'a', 'z', 0);
    if (j < n && t[j] >= 0x80) return i;
    return j < n && t[j] == '\'' ? tok_contraction(t, n, j) : j;
}

/* An ASCII word from s for cl100k (\p{L}++ is [A-Za-z]+ there), or i
 * (undecided) when a non-ASCII character follows. */
IA_ S8 tok_cl100k_word(U1 const *t, S8 n, S8 i, S8 s) {
    S8 j = tok_ascii_run(t, n, s, 'a', 'z', 0x20);
    return j < n && t[j] >= 0x80 ? i : j;
}

/* [\r\n/]* after o200k's punctuation, [\r\n]* after cl100k's: c < 64 and
 * its bit in a mask. */
IA_ B4 tok_punct_tail(U1 c, TokEncoding enc) {
    U8 mask = (1ull << '\r') | (1ull << '\n') | (enc == TokEncoding_O200k ? 1ull << '/' : 0);
    return c < 64 && ((mask >> c) & 1);
}

/* The rest of a run of ASCII punctuation from e (i: the match's start),
 * then its tail; i (undecided) when a non-ASCII character follows the run,
 * which could go on with it. */
IA_ S8 tok_ascii_punct(U1 const *t, S8 n, S8 i, S8 e, TokEncoding enc) {
    while (e < n && tok_ascii_other(t[e])) e += 1;
    if (e < n && t[e] >= 0x80) return i;
    while (e < n && tok_punct_tail(t[e], enc)) e += 1;
    return e;
}

/* \p{N}{1,3} from an ASCII digit at i, or i (undecided) when a non-ASCII
 * character could be one of the three. */
IA_ S8 tok_ascii_digits(U1 const *t, S8 n, S8 i) {
    S8 e = i + 1;
    while (e < n && e < i + 3 && (U1)(t[e] - '0') < 10) e += 1;
    return e < n && e < i + 3 && t[e] >= 0x80 ? i : e;
}

/* The match at i, an ASCII character, of encoding enc's pattern when ASCII
 * decides it; else i (the general scanner decides). cl100k's contraction
 * comes first (an apostrophe that begins none is an ordinary character);
 * then a word, its optional first character tried first as the regex
 * does (a digit, punctuation and white space cannot begin a word without
 * one), digits, punctuation (with the optional space before it), and
 * white space. */
IA_ S8 tok_ascii_next(U1 const *t, S8 n, S8 i, TokEncoding enc) {
    U1 c = t[i];
    U4 cls = tok_uc_stage2[c];
    if (enc == TokEncoding_Cl100k && c == '\'') {
        S8 e = tok_contraction(t, n, i);
        if (e > i) return e;
    }
    if (cls & TC_L) return enc == TokEncoding_O200k ? tok_o200k_word(t, n, i, i) : tok_cl100k_word(t, n, i, i);
    if (cls & TC_N) return tok_ascii_digits(t, n, i);
    if (i + 1 >= n) return n;
    U1 d = t[i + 1];
    if (d >= 0x80) return i;
    U4 dcls = tok_uc_stage2[d];
    if ((dcls & TC_L) && c != '\r' && c != '\n')
        return enc == TokEncoding_O200k ? tok_o200k_word(t, n, i, i + 1) : tok_cl100k_word(t, n, i, i + 1);
    if (!(cls & TC_S)) return tok_ascii_punct(t, n, i, i + 1, enc);
    if (c == ' ' && !(dcls & (TC_S | TC_L | TC_N))) return tok_ascii_punct(t, n, i, i + 2, enc);
    return tok_space(t, n, i, enc);
}

IA_ S8 tok_o200k_next(U1 const *t, S8 n, S8 i) {
    if (t[i] < 0x80) {
        S8 e = tok_ascii_next(t, n, i, TokEncoding_O200k);
        if (e > i) return e;
    }
    return tok_o200k_slow(t, n, i);
}

/* cl100k_base's pattern at i:
 *   '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+
 *   |  ?[^\s\p{L}\p{N}]++[\r\n]*+ | \s++$ | \s*[\r\n] | \s+(?!\S) | \s */
static S8 tok_cl100k_slow(U1 const *t, S8 n, S8 i) {
    S8 e = tok_contraction(t, n, i);
    if (e > i) return e;
    S8 l0, len;
    U4 c0 = tok_class(t, n, i, &l0);
    S8 s = tok_prefix_ok(c0, t[i]) ? i + l0 : i;   /* possessive: never given back */
    if (s < n && (tok_class(t, n, s, &len) & TC_L)) return tok_run(t, n, s, TC_L);
    if (c0 & TC_N) return tok_digits(t, n, i);
    e = tok_punct(t, n, i, TokEncoding_Cl100k);
    if (e > i) return e;
    if (c0 & TC_S) return tok_space(t, n, i, TokEncoding_Cl100k);
    return i + l0;
}

IA_ S8 tok_cl100k_next(U1 const *t, S8 n, S8 i) {
    if (t[i] < 0x80) {
        S8 e = tok_ascii_next(t, n, i, TokEncoding_Cl100k);
        if (e > i) return e;
    }
    return tok_cl100k_slow(t, n, i);
}

/* ---- the op -------------------------------------------------------------- */

/* Valid UTF-8 of the text: itself, or a copy in `temp` with each maximal
 * invalid subpart replaced by U+FFFD. */
static B4 tok_text(Ctx *ctx, Arena *temp, Str8 data, Str8 *out) {
    U8 valid = utf8_valid_len(data);
    if (valid == data.len) { *out = data; return 1; }
    /* at most 3 bytes out per byte in */
    if (data.len > ((U8)1 << 62) / 3) return ctx_fail(ctx, Code_Limit, "input too large");
    U1 *dst = farena_push(temp, data.len * 3);
    if (!dst) return 0;
    memcpy(dst, data.ptr, (size_t)valid);
    U8 o = valid;
    for (U8 i = valid; i < data.len;) {
        S4 k = utf8_seq(data.ptr + i, data.len - i);
        if (k > 0) { memcpy(dst + o, data.ptr + i, (size_t)k); o += (U8)k; i += (U8)k; }
        else { dst[o] = 0xef; dst[o + 1] = 0xbf; dst[o + 2] = 0xbd; o += 3; i += (U8)(-k); }
    }
    *out = str8(dst, o);
    return 1;
}

/* The pieces of valid UTF-8 t[0, n) without a vocabulary. */
static U8 tok_count_pieces(TokEncoding enc, U1 const *t, S8 n) {
    U8 count = 0;
    for (S8 i = 0, e; i < n; i = e, count += 1) {
        e = enc == TokEncoding_O200k ? tok_o200k_next(t, n, i) : tok_cl100k_next(t, n, i);
        if (e <= i || e > n) e = n;   /* cannot happen: every branch advances within the text */
    }
    return count;
}

/* The tokens of valid UTF-8 t[0, n) (under 4 GiB) in encoding `enc` (a
 * constant: each encoding gets its own copy of the loop, its scanner
 * inlined). A piece of one byte is one token, one of two bytes one or two
 * (pair_bit); longer ones up to TOK_MEMO_BYTES go through the memo, and its
 * misses through a batch. */
IA_ B4 tok_count_text(TokCounter *k, TokEncoding enc, U1 const *t, S8 n, U8 *total) {
    U8 count = 0, pieces = 0;
    TokPiece ring[TOK_AHEAD];     /* the last `pieces` short pieces, memo entries prefetched */
    TokPending pend;
    pend.misses = 0;
    pend.merges = 0;
    pend.end = t + n;
    pend.count = 0;
    for (S8 i = 0, e; i < n; i = e) {
        e = enc == TokEncoding_O200k ? tok_o200k_next(t, n, i) : tok_cl100k_next(t, n, i);
        if (e <= i || e > n) e = n;   /* cannot happen: every branch advances within the text */
        U1 const *p = t + i;
        U8 len = (U8)(e - i), avail = (U8)(n - i);
        if (len <= 2) { count += len == 1 ? 1 : 2 - tok_pair_is_token(&k->table, p); continue; }
        if (len > TOK_MEMO_BYTES) { if (!tok_count_long(k, p, len, avail, &count)) return 0; continue; }
        TokKey key = tok_words(p, len, avail);
        U8 mh = tok_memo_hash(key);
        tok_prefetch(&k->memo[mh >> k->memo_shift]);
        TokPiece *slot = &ring[pieces % TOK_AHEAD];
        if (pieces >= TOK_AHEAD) count += tok_probe(k, &pend, slot);
        *slot = (TokPiece){ p, len, key, mh, 0 };
        pieces += 1;
    }
    *total += count + tok_pipe_drain(k, ring, pieces > TOK_AHEAD ? pieces - TOK_AHEAD : 0, pieces, &pend);
    return 1;
}

static B4 tok_memos(TokCounter *k, U8 bytes);

/* Memos start sized for the caller's estimate, up to TOK_MEMO_START bytes,
 * and grow with the bytes counted (to 4x, until TOK_MEMO_FULL, the size of
 * the largest memo, 2^TOK_MERGED_BITS_MAX x 64 bytes), rather than being
 * sized for the estimate at once: an aggregate expects 1 MiB a file, a warm
 * count cache leaves it a few KiB of each, and zeroing memos for the
 * estimate (8 MiB a request on two threads) cost more than the counting. A
 * memo made anew starts empty: memos only save work. */
enum { TOK_MEMO_START = 1 << 16 };
#define TOK_MEMO_FULL ((U8)1 << (TOK_MERGED_BITS_MAX + 6))

static B4 tok_memos_fit(TokCounter *k, U8 more) {
    k->counted += more;
    if (k->counted <= k->memo_for || k->memo_for >= TOK_MEMO_FULL) return 1;
    return tok_memos(k, min_(TOK_MEMO_FULL, 4 * k->counted));
}

B4 tok_count(TokCounter *k, Str8 data, Arena *temp, Input const *about, U8 *total) {
    Str8 text = { 0 };   /* set by tok_text; gcc -O2 cannot see it */
    if (!tok_text(k->ctx, temp, data, &text)) return 0;
    if (k->has_table && !tok_memos_fit(k, text.len)) return 0;
    /* positions are S8; pieces index U4 arrays: text under 4 GiB (inputs are capped at 2 GiB) */
    if (text.len >= ((U8)1 << 32)) {
        if (about) return ctx_fail_input(k->ctx, Code_Limit, about, "text of %llu bytes", (unsigned long long)text.len);
        return ctx_fail(k->ctx, Code_Limit, "text of %llu bytes", (unsigned long long)text.len);
    }
    S8 n = (S8)text.len;
    if (!k->has_table) { *total += tok_count_pieces(k->encoding, text.ptr, n); return 1; }
    if (k->encoding == TokEncoding_O200k) return tok_count_text(k, TokEncoding_O200k, text.ptr, n, total);
    return tok_count_text(k, TokEncoding_Cl100k, text.ptr, n, total);
}

static B4 tok_input(Ctx *ctx, Input *input, void *state) {
    TokCounter *k = state;
    U8 count = 0;
    return tok_count(k, input->data, ctx->arena, input, &count) && ctx_rec_u8(ctx, count);
}

/* encoding, vocab / ranks (when allowed) of the current op, and the memo:
 * about one entry per 8 bytes of text, 2^TOK_MEMO_BITS_MIN to 2^TOK_MEMO_BITS_MAX. */
static B4 tok_setup(Ctx *ctx, TokCounter *k, U8 bytes, B4 ranks_allowed) {
    Str8 value;
    U8 index;
    if (ctx_param(ctx, "encoding", &value)) {
        if (str8_eq(value, str8_lit("o200k_base"))) k->encoding = TokEncoding_O200k;
        else if (str8_eq(value, str8_lit("cl100k_base"))) k->encoding = TokEncoding_Cl100k;
        else return ctx_fail(ctx, Code_BadParam, "unknown encoding (known: o200k_base, cl100k_base)");
    }
    if (ctx_param(ctx, "vocab", &value)) {
        if (ctx_param(ctx, "ranks", &value)) return ctx_fail(ctx, Code_BadParam, "both ranks and vocab");
        if (!parse_u8_decimal(value, &index) || index >= ctx->vocab_count)
            return ctx_fail(ctx, Code_BadParam, "vocab: no vocabulary %.*s attached to this context (%u are)",
                            (int)min_(value.len, 20), (char const *)value.ptr, ctx->vocab_count);
        k->table = ctx->vocabs[index]->table;
        k->has_table = 1;
    } else if (ranks_allowed && ctx_param(ctx, "ranks", &value)) {
        if (!tok_use_ranks(k, value)) return 0;
    }
    return !k->has_table || tok_memos(k, min_(bytes, TOK_MEMO_START));
}

/* The memos, sized for `bytes` of text. */
static B4 tok_memos(TokCounter *k, U8 bytes) {
    U4 bits = TOK_MEMO_BITS_MIN, merged_bits = TOK_MEMO_BITS_MIN, long_bits = TOK_LONG_BITS_MIN;
    while (bits < TOK_MEMO_BITS_MAX && ((U8)1 << bits) * 8 < bytes) bits += 1;
    while (merged_bits < TOK_MERGED_BITS_MAX && ((U8)1 << merged_bits) * 64 < bytes) merged_bits += 1;
    while (long_bits < TOK_LONG_BITS_MAX && ((U8)1 << long_bits) * 256 < bytes) long_bits += 1;
    k->memo_for = bytes;
    k->long_used = 0;
    k->long_shift = 64 - long_bits;
    k->long_cap = ((U8)TOK_LONG_BYTES / 2) << long_bits;   /* about half the entries' worth of pieces */
    k->long_memo = farena_push_array(k->arena, TokLongMemo, (U8)1 << long_bits, .zero = 1);
    k->long_bytes = farena_push_array(k->arena, U1, k->long_cap);
    k->memo_shift = 64 - bits;
    k->merged_shift = 64 - merged_bits;
    k->memo = farena_push_array(k->arena, TokMemo, (U8)1 << bits, .zero = 1);
    k->merged = farena_push_array(k->arena, TokMemo, (U8)1 << merged_bits, .zero = 1);
    k->rank_shift = 64 - TOK_RANK_BITS;
    k->rank_memo = farena_push_array(k->arena, TokRankMemo, (U8)1 << TOK_RANK_BITS, .zero = 1);
    return k->memo && k->merged && k->rank_memo && k->long_memo && k->long_bytes;
}

TokCounter *tok_counter_twin(TokCounter const *of, Arena *arena, U8 bytes) {
    TokCounter *k = farena_push_array(arena, TokCounter, 1, .zero = 1);
    if (!k) return 0;
    k->ctx = of->ctx, k->arena = arena;
    k->encoding = of->encoding, k->table = of->table, k->has_table = of->has_table;
    return tok_memos(k, min_(bytes, TOK_MEMO_START)) ? k : 0;
}

TokCounter *tok_counter(Ctx *ctx, Arena *arena, U8 bytes) {
    TokCounter *k = farena_push_array(arena, TokCounter, 1, .zero = 1);
    if (!k) return 0;
    k->ctx = ctx, k->arena = arena;
    if (!tok_setup(ctx, k, bytes, 1)) return 0;
    if (!k->has_table) { ctx_fail(ctx, Code_BadParam, "counting tokens needs a vocab or ranks parameter"); return 0; }
    return k;
}

B4 op_tokens(Ctx *ctx) {
    TokCounter k = { .ctx = ctx, .arena = ctx->arena };
    U8 bytes = 0;
    for (U4 i = 0; i < ctx->req->input_count; i += 1)
        bytes += ctx->req->inputs[i].kind == InputKind_Inline ? ctx->req->inputs[i].data.len : (U8)1 << 20;
    if (!tok_setup(ctx, &k, bytes, 1)) return 0;
    return ctx_records_begin(ctx, "Q") && ctx_each_input(ctx, tok_input, &k) && ctx_records_end(ctx);
}
