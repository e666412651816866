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
 * copy). A slot holds the token's key
 * (tok_key: all of a token of up to 8 bytes, else its first 8), rank + 1
 * (0: empty) and its length with 24 bits of its hash, so that most lookups
 * touch one slot and nothing else; tokens over 8 bytes compare the rest with
 * the request's bytes. Pairs of bytes have their own flat table (`pair2`),
 * which stays in cache: the merges look up every pair of a piece. */
Struct_(TokSlot) { U8 key; U4 rank1; U4 len_tag; };

Struct_(TokTable) {
    U1 const *blob;
    U4 *offset;        /* rank -> offset of its bytes in blob */
    U4 count;
    TokSlot *slots;
    U8 mask;
    U4 *pair2;         /* (b0 << 8 | b1) -> the rank of that 2-byte token, or TOK_NO_RANK */
};

/* Scratch of the merge of one long piece, grown to the longest piece. */
Struct_(TokScratch) {
    U8 cap;            /* bytes of piece the arrays serve */
    U4 *next;          /* part start -> its end */
    U4 *prev;          /* part start -> the previous part's start */
    U4 *pair;          /* part start -> rank of it joined with the next part */
    U8 *heap;          /* (rank << 32) | start, a min-heap */
};

/* Counts of recent short pieces, by hash: source text repeats its words,
 * and a hit costs no lookup in the (cache-missing) vocabulary and no merge.
 * An entry is the piece's bytes (zero-padded), its length and its count. */
enum { TOK_MEMO_BYTES = 16, TOK_MEMO_SLOTS = 1 << 14 };
Struct_(TokMemo) { U8 w0, w1; U4 len; U4 count; };
/* The same for the lookups inside merges (3 to TOK_MEMO_BYTES bytes): the
 * rank of those bytes, or TOK_NO_RANK. Words share their parts ("ing"). */
Struct_(TokRankMemo) { U8 w0, w1; U4 len; U4 rank; };

Struct_(TokCounter) {
    Ctx *ctx;
    Arena *arena;      /* the memo and the merge scratch: the counter's life */
    TokMemo *memo;
    TokRankMemo *rank_memo;
    U8 memo_mask;
    TokEncoding encoding;
    TokTable table;
    B4 has_table;
    TokScratch scratch;
};

/* ---- the vocabulary ------------------------------------------------------ */

IA_ U8 tok_load8(U1 const *p) { U8 v; memcpy(&v, p, 8); return v; }
IA_ U8 tok_load4(U1 const *p) { U4 v; memcpy(&v, p, 4); return v; }

/* p[0..n), n >= 1, as one word: exactly (given n) for n <= 8, the first 8
 * bytes beyond. Loads stay inside the piece. */
IA_ U8 tok_key(U1 const *p, U8 n) {
    if (n >= 8) return tok_load8(p);
    if (n >= 4) return tok_load4(p) | (tok_load4(p + n - 4) << 32);
    return (U8)p[0] | ((U8)p[n >> 1] << 8) | ((U8)p[n - 1] << 16);
}
/* The last 8 bytes of a piece over 8 bytes (0 for shorter ones): with the
 * key, all of a piece of up to 16 bytes. */
IA_ U8 tok_tail(U1 const *p, U8 n) { return n > 8 ? tok_load8(p + n - 8) : 0; }

IA_ U8 tok_mix(U8 key, U8 tail, U8 n) {
    U8 h = (key ^ (n << 56)) * 0x9e3779b97f4a7c15ull;
    h ^= (tail + n) * 0xc2b2ae3d27d4eb4full;
    h ^= h >> 29;
    h *= 0x165667b19e3779f9ull;
    return h ^ (h >> 32);
}

/* The rank of the token p[0..n) (key, tail and hash h its tok_key, tok_tail
 * and tok_mix), or TOK_NO_RANK. Probes stop at an empty slot; the table is
 * at most half full, so there always is one. */
static U4 tok_rank_h(TokTable const *t, U1 const *p, U8 n, U8 key, U8 h) {
    if (n == 0 || n > 255) return TOK_NO_RANK;
    U4 len_tag = (U4)n | ((U4)(h >> 40) << 8);
    for (U8 i = h & t->mask, probes = 0; probes <= t->mask; i = (i + 1) & t->mask, probes += 1) {
        TokSlot const *slot = &t->slots[i];
        if (slot->rank1 == 0) return TOK_NO_RANK;
        if (slot->len_tag != len_tag || slot->key != key) continue;
        U4 rank = slot->rank1 - 1;
        if (n <= 8 || memcmp(t->blob + t->offset[rank] + 8, p + 8, (size_t)(n - 8)) == 0) return rank;
    }
    return TOK_NO_RANK;
}

IA_ U4 tok_rank(TokTable const *t, U1 const *p, U8 n) {
    if (n == 2) return t->pair2[(U4)p[0] << 8 | p[1]];
    if (n == 0 || n > 255) return TOK_NO_RANK;
    U8 key = tok_key(p, n);
    return tok_rank_h(t, p, n, key, tok_mix(key, tok_tail(p, n), n));
}

/* Why a ranks value was refused (TokBad_None: built). */
Enum_(TokBad) { TokBad_None, TokBad_Length, TokBad_Empty, TokBad_Count, TokBad_Memory };
Struct_(TokBadAt) { TokBad why; U8 token; U8 at; U1 len; };

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
    /* hashes first, then the inserts with the slot of a later token
     * prefetched: the slots are a few MiB, nearly every insert misses the cache */
    U8 *hashes = farena_push_array(arena, U8, count);
    if (!t->offset || !t->slots || !t->pair2 || !hashes) return (TokBadAt){ TokBad_Memory, 0, 0, 0 };
    t->mask = cap - 1;
    memset(t->pair2, 0xff, sizeof(U4) << 16);
    U8 at = 0;
    for (U4 rank = 0; rank < t->count; rank += 1) {
        U1 n = blob.ptr[at];
        U1 const *p = blob.ptr + at + 1;
        t->offset[rank] = (U4)(at + 1);
        hashes[rank] = tok_mix(tok_key(p, n), tok_tail(p, n), n);
        if (n == 2 && t->pair2[(U4)p[0] << 8 | p[1]] == TOK_NO_RANK) t->pair2[(U4)p[0] << 8 | p[1]] = rank;
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
        t->slots[i] = (TokSlot){ tok_key(p, n), rank + 1, (U4)n | ((U4)(h >> 40) << 8) };
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

/* tok_rank through the call's rank memo. */
static U4 tok_rank_m(TokCounter *k, U1 const *p, U8 n) {
    if (n == 2) return k->table.pair2[(U4)p[0] << 8 | p[1]];
    if (n > TOK_MEMO_BYTES || n == 0) return tok_rank(&k->table, p, n);
    U8 key = tok_key(p, n), tail = tok_tail(p, n);
    U8 h = tok_mix(key, tail, n);
    TokRankMemo *m = &k->rank_memo[(h >> 24) & k->memo_mask];
    if (m->len == n && m->w0 == key && m->w1 == tail) return m->rank;
    U4 rank = tok_rank_h(&k->table, p, n, key, h);
    *m = (TokRankMemo){ key, tail, (U4)n, rank };
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

/* The rank of the parts starting at `start` and at next[start] joined, or
 * TOK_NO_RANK (also when `start` is the last part). */
IA_ U4 tok_pair_rank(TokCounter *k, U4 const *next, U1 const *p, U4 n, U4 start) {
    U4 mid = next[start];
    if (mid >= n) return TOK_NO_RANK;
    return tok_rank_m(k, p + start, (U8)next[mid] - start);
}

/* The tokens of a piece of n >= 2 bytes that is not itself a token: the
 * merge with a heap of pairs by (rank, start), as tiktoken's
 * _byte_pair_merge_large (its short-piece loop merges in the same order).
 * Returns 0 when the scratch does not fit in memory. */
static B4 tok_merge_count(TokCounter *k, U1 const *p, U4 n, U8 *count) {
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
        pair[left] = tok_pair_rank(k, next, p, n, left);
        if (pair[left] != TOK_NO_RANK) tok_heap_push(heap, &heap_len, ((U8)pair[left] << 32) | left);
        if (left > 0) {
            U4 before = prev[left];
            pair[before] = tok_pair_rank(k, next, p, n, before);
            if (pair[before] != TOK_NO_RANK) tok_heap_push(heap, &heap_len, ((U8)pair[before] << 32) | before);
        }
    }
    *count += parts;
    return 1;
}

/* Short pieces: tiktoken's own loop (find the lowest pair, join, rescan),
 * on arrays on the stack. */
enum { TOK_SHORT = 48 };

static void tok_merge_short(TokCounter *k, U1 const *p, U4 n, U8 *count) {
    U4 const *pair2 = k->table.pair2;
    U4 start[TOK_SHORT + 1];
    U4 rank[TOK_SHORT + 1];
    U4 parts = n;
    for (U4 i = 0; i <= n; i += 1) start[i] = i;
    for (U4 i = 0; i + 1 < n; i += 1) rank[i] = pair2[(U4)p[i] << 8 | p[i + 1]];
    rank[n - 1] = TOK_NO_RANK;
    rank[n] = TOK_NO_RANK;
    for (;;) {
        U4 best = TOK_NO_RANK, at = 0;
        for (U4 i = 0; i + 1 < parts; i += 1) if (rank[i] < best) { best = rank[i]; at = i; }
        if (best == TOK_NO_RANK) break;
        /* join parts at and at+1 */
        for (U4 i = at + 1; i < parts; i += 1) { start[i] = start[i + 1]; rank[i] = rank[i + 1]; }
        parts -= 1;
        rank[at] = at + 1 < parts ? tok_rank_m(k, p + start[at], start[at + 2] - start[at]) : TOK_NO_RANK;
        if (at > 0) rank[at - 1] = tok_rank_m(k, p + start[at - 1], start[at + 1] - start[at - 1]);
    }
    *count += parts;
}

/* The count of a piece that is not a token; n >= 2. */
static B4 tok_count_merged(TokCounter *k, U1 const *p, U8 n, U8 *count) {
    if (n <= TOK_SHORT) { tok_merge_short(k, p, (U4)n, count); return 1; }
    return tok_merge_count(k, p, (U4)n, count);
}

/* The count of a piece of 2 to TOK_MEMO_BYTES bytes that missed the memo
 * (key, tail, h: its tok_key, tok_tail, tok_mix); the memo learns it. */
static B4 tok_count_short(TokCounter *k, U1 const *p, U8 n, U8 key, U8 tail, U8 h, U8 *count) {
    U8 c = 0;
    if (n == 2 ? tok_rank(&k->table, p, n) != TOK_NO_RANK : tok_rank_h(&k->table, p, n, key, h) != TOK_NO_RANK) c = 1;
    else if (!tok_count_merged(k, p, n, &c)) return 0;
    k->memo[(h >> 20) & k->memo_mask] = (TokMemo){ key, tail, (U4)n, (U4)c };
    *count += c;
    return 1;
}

/* Any piece, without the memo's batching (pieces over TOK_MEMO_BYTES). */
static B4 tok_count_piece(TokCounter *k, U1 const *p, U8 n, U8 *count) {
    if (!k->has_table || n == 1) { *count += 1; return 1; }   /* a byte not in the vocabulary: tiktoken fails; one part here */
    if (n <= 255 && tok_rank(&k->table, p, n) != TOK_NO_RANK) { *count += 1; return 1; }
    return tok_count_merged(k, p, n, count);
}

/* Pieces are counted in batches, so that the memory each needs (its memo
 * entry, then on a miss its vocabulary slot) is prefetched while the others
 * are scanned or counted: nearly all the time of a lookup is a cache miss. */
enum { TOK_BATCH = 32 };
Struct_(TokPiece) { U8 start, len, key, tail, h; };

IA_ void tok_prefetch(void const *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
}

/* Count a batch of short pieces (2 to TOK_MEMO_BYTES bytes each) of t. */
static B4 tok_count_batch(TokCounter *k, U1 const *t, TokPiece *b, U4 count_in, U8 *count) {
    U4 miss[TOK_BATCH], misses = 0;
    for (U4 j = 0; j < count_in; j += 1) {
        TokMemo const *m = &k->memo[(b[j].h >> 20) & k->memo_mask];
        if (m->len == b[j].len && m->w0 == b[j].key && m->w1 == b[j].tail) { *count += m->count; continue; }
        if (b[j].len > 2) tok_prefetch(&k->table.slots[b[j].h & k->table.mask]);
        miss[misses++] = j;
    }
    for (U4 j = 0; j < misses; j += 1) {
        TokPiece const *q = &b[miss[j]];
        if (!tok_count_short(k, t + q->start, q->len, q->key, q->tail, q->h, count)) return 0;
    }
    return 1;
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
IA_ B4 tok_az(U1 c) { return (U1)(c - 'a') < 26; }
IA_ B4 tok_AZ(U1 c) { return (U1)(c - 'A') < 26; }
IA_ B4 tok_AZaz(U1 c) { return (U1)((c | 0x20) - 'a') < 26; }
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
 * \s*[\r\n]+ | \s+(?!\S) | \s+, and cl100k's \s++$ | \s*[\r\n] | \s+(?!\S) | \s. */
static S8 tok_space(U1 const *t, S8 n, S8 i, TokEncoding enc) {
    S8 j = i, last = i, after_nl = -1, chars = 0;
    while (j < n) {
        S8 len;
        if (!(tok_class(t, n, j, &len) & TC_S)) break;
        if (t[j] == '\r' || t[j] == '\n') after_nl = j + 1;
        last = j;
        j += len;
        chars += 1;
    }
    if (enc == TokEncoding_Cl100k && j == n) return n;        /* \s++$ */
    if (after_nl >= 0) return after_nl;                       /* \s*[\r\n]+ ; \s*[\r\n] */
    if (j == n) return n;                                     /* \s+(?!\S) at the end */
    if (chars >= 2) return last;                              /* \s+(?!\S), one character given back */
    return j;                                                 /* \s+ ; \s */
}

/* ' ?[^\s\p{L}\p{N}]+' then o200k's [\r\n/]* or cl100k's [\r\n]*: the end, or i. */
static S8 tok_punct(U1 const *t, S8 n, S8 i, TokEncoding enc) {
    S8 s = i, len;
    if (t[i] == ' ' && i + 1 < n && tok_other(tok_class(t, n, i + 1, &len))) s = i + 1;
    if (!tok_other(tok_class(t, n, s, &len))) return i;
    S8 e = s + len;
    while (e < n) {
        if (!tok_other(tok_class(t, n, e, &len))) break;
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
static S8 tok_o200k_next(U1 const *t, S8 n, S8 i) {
    /* the common case, all ASCII: an optional prefix character, lower-case
     * letters, then an ASCII byte that is neither one nor an apostrophe
     * (what the first alternative matches there); anything else below */
    if (t[i] < 0x80) {
        U1 c = t[i];
        S8 s = i;
        if (!tok_az(c) && tok_prefix_ok(tok_uc_stage2[c], c) && i + 1 < n) s = i + 1;
        if (tok_az(t[s]) && (s == i || !tok_AZ(c))) {
            S8 e = s + 1;
            while (e < n && tok_az(t[e])) e += 1;
            if (e == n || (t[e] < 0x80 && t[e] != '\'')) return e;
        }
    }
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

/* cl100k_base's pattern at i:
 *   '(?i:[sdmt]|ll|ve|re) | [^\r\n\p{L}\p{N}]?+\p{L}++ | \p{N}{1,3}+
 *   |  ?[^\s\p{L}\p{N}]++[\r\n]*+ | \s++$ | \s*[\r\n] | \s+(?!\S) | \s */
static S8 tok_cl100k_next(U1 const *t, S8 n, S8 i) {
    /* the common case, all ASCII: an optional prefix character, letters,
     * then an ASCII byte that is not one (the second alternative's match) */
    if (t[i] < 0x80 && t[i] != '\'') {
        U1 c = t[i];
        S8 s = i;
        if (!tok_AZaz(c) && tok_prefix_ok(tok_uc_stage2[c], c) && i + 1 < n) s = i + 1;
        if (tok_AZaz(t[s])) {
            S8 e = s + 1;
            while (e < n && tok_AZaz(t[e])) e += 1;
            if (e == n || t[e] < 0x80) return e;
        }
    }
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

B4 tok_count(TokCounter *k, Str8 data, Arena *temp, Input const *about, U8 *total) {
    Str8 text;
    if (!tok_text(k->ctx, temp, data, &text)) return 0;
    /* positions are S8; pieces index U4 arrays: text under 4 GiB (inputs are capped at 2 GiB) */
    if (text.len >= ((U8)1 << 32)) {
        if (about) return ctx_fail_input(k->ctx, Code_Limit, about, "text of %llu bytes", (unsigned long long)text.len);
        return ctx_fail(k->ctx, Code_Limit, "text of %llu bytes", (unsigned long long)text.len);
    }
    U1 const *t = text.ptr;
    S8 n = (S8)text.len, i = 0;
    U8 count = 0;
    TokPiece batch[TOK_BATCH];
    U4 batched = 0;
    while (i < n) {
        S8 e = k->encoding == TokEncoding_O200k ? tok_o200k_next(t, n, i) : tok_cl100k_next(t, n, i);
        if (e <= i || e > n) e = n;   /* cannot happen: every branch advances within the text */
        U8 len = (U8)(e - i);
        if (!k->has_table || len == 1) count += 1;
        else if (len > TOK_MEMO_BYTES) { if (!tok_count_piece(k, t + i, len, &count)) return 0; }
        else {
            U8 key = tok_key(t + i, len), tail = tok_tail(t + i, len);
            U8 h = tok_mix(key, tail, len);
            tok_prefetch(&k->memo[(h >> 20) & k->memo_mask]);
            batch[batched++] = (TokPiece){ (U8)i, len, key, tail, h };
            if (batched == TOK_BATCH) {
                if (!tok_count_batch(k, t, batch, batched, &count)) return 0;
                batched = 0;
            }
        }
        i = e;
    }
    if (batched && !tok_count_batch(k, t, batch, batched, &count)) return 0;
    *total += count;
    return 1;
}

static B4 tok_input(Ctx *ctx, Input *input, void *state) {
    TokCounter *k = state;
    U8 count = 0;
    return tok_count(k, input->data, ctx->arena, input, &count) && ctx_rec_u8(ctx, count);
}

/* encoding, vocab / ranks (when allowed) of the current op, and the memo:
 * about one entry per 8 bytes of text, 256 to TOK_MEMO_SLOTS. */
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
    if (!k->has_table) return 1;
    k->memo_mask = 255;
    while (k->memo_mask + 1 < TOK_MEMO_SLOTS && (k->memo_mask + 1) * 8 < bytes) k->memo_mask = k->memo_mask * 2 + 1;
    k->memo = farena_push_array(k->arena, TokMemo, k->memo_mask + 1, .zero = 1);
    k->rank_memo = farena_push_array(k->arena, TokRankMemo, k->memo_mask + 1, .zero = 1);
    return k->memo && k->rank_memo;
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
