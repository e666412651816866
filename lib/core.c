/* core.c: arena, Xar, and the helpers ops use (parts, params, input loading). */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#  define _POSIX_C_SOURCE 200809L   /* open, fstat, read: input_load */
#endif
#if defined(__APPLE__)
#  define _DARWIN_C_SOURCE          /* O_NOFOLLOW, which strict POSIX mode hides on macOS */
#endif
#include "op.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#if defined(_WIN32)
#  define WIN32_LEAN_AND_MEAN
#  include <windows.h>   /* MultiByteToWideChar: input_load's UTF-8 paths */
#  include <io.h>        /* _wopen, _read, _close: input_load; _write: fd_write_all */
#  include <fcntl.h>     /* _O_RDONLY, _O_BINARY, _O_NOINHERIT */
#else
#  include <fcntl.h>
#  include <pthread.h>   /* sync_*, thread_*: an op's helper thread */
#  include <unistd.h>
#endif

/* ---- arena ------------------------------------------------------------- */

/* Under AddressSanitizer a block's memory that no push has handed out, or
 * that a reset or pop took back, is poisoned: a read through a pointer
 * kept past arena_reset (another thread's arena reused too early, say) is
 * a report, not a silently stale byte. */
#if defined(__SANITIZE_ADDRESS__)
#  define SLOPFAST_ASAN 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define SLOPFAST_ASAN 1
#  endif
#endif
#ifdef SLOPFAST_ASAN
#  include <sanitizer/asan_interface.h>
#  define arena_poison(p, n)   ASAN_POISON_MEMORY_REGION((p), (size_t)(n))
#  define arena_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (size_t)(n))
#else
#  define arena_poison(p, n)   ((void)(p), (void)(n))
#  define arena_unpoison(p, n) ((void)(p), (void)(n))
#endif

/* What of a block is free (from `used` on), poisoned. */
static void block_poison_free(ArenaBlock *block) {
    arena_poison((U1 *)block + block->used, block->size - block->used);
}

#ifdef SLOPFAST_TEST_HOOKS
/* small blocks that do not grow: fail_after then reaches nearly every allocation */
enum { ARENA_BLOCK_MIN = 256, ARENA_BLOCK_DOUBLING = 0 };
#else
enum { ARENA_BLOCK_MIN = 64 * 1024, ARENA_BLOCK_DOUBLING = 1 };
#endif

static B4 arena_grow(Arena *arena, U8 need) {
    U8 size = max_(need + sizeof(ArenaBlock) + 64, (U8)ARENA_BLOCK_MIN);
    if (arena->block && ARENA_BLOCK_DOUBLING) size = max_(size, min_(arena->block->size * 2, (U8)64 << 20));
    if (arena->limit && arena->reserved + size > arena->limit) {
        if (arena->reserved + need + sizeof(ArenaBlock) + 64 > arena->limit) return 0;
        size = need + sizeof(ArenaBlock) + 64;
    }
#ifdef SLOPFAST_TEST_HOOKS
    if (arena->fail_after && --arena->fail_after == 0) return 0;
#endif
    ArenaBlock *block = malloc(size);
    if (!block) return 0;
    block->prev = arena->block;
    block->size = size;
    block->used = sizeof(ArenaBlock);
    block_poison_free(block);
    arena->block = block;
    arena->reserved += size;
    return 1;
}

IA_ U8 align_up(U8 v, U8 a) { return (v + a - 1) & ~(a - 1); }

void *arena_push_(Arena *arena, U8 count, U8 elem_size, U8 align, ArenaPushOpts opts) {
    U8 alignment = opts.alignment ? opts.alignment : align;
    /* counts come from requests: refuse a product that overflows or is absurd */
    if (arena->failed) return 0;
    if (elem_size && count > ((U8)1 << 48) / elem_size) { arena->failed = Fail_NoMemory; return 0; }
    U8 size = count * elem_size;
    ArenaBlock *block = arena->block;
    U8 at = block ? align_up((U8)(size_t)block + block->used, alignment) - (U8)(size_t)block : 0;
    if (!block || at + size > block->size) {
        if (!arena_grow(arena, size + alignment)) { arena->failed = Fail_NoMemory; return 0; }
        block = arena->block;
        at = align_up((U8)(size_t)block + block->used, alignment) - (U8)(size_t)block;
    }
    block->used = at + size;
    U1 *ptr = (U1 *)block + at;
    arena_unpoison(ptr, size);
    if (opts.zero) memset(ptr, 0, size);
    return ptr;
}

void arena_release(Arena *arena) {
    ArenaBlock *block = arena->block;
    while (block) {
        ArenaBlock *prev = block->prev;
        arena_unpoison(block, block->size);   /* the allocator's again */
        free(block);
        block = prev;
    }
    arena->block = 0;
    arena->reserved = 0;
}

enum { ARENA_RETAIN_MAX = 64 << 20 };

void arena_reset(Arena *arena) {
    ArenaBlock *block = arena->block;
    U8 reserved = arena->reserved;
    arena->failed = Fail_None;
    arena->limit = 0;
    arena->fail_after = 0;
    if (block && !block->prev && block->size <= ARENA_RETAIN_MAX) {
        block->used = sizeof(ArenaBlock);
        block_poison_free(block);
        return;
    }
    arena_release(arena);
    /* one block as big as all the last call took (header included, so the
     * block is `reserved` bytes and stays under the cap), for the next call */
    U8 overhead = sizeof(ArenaBlock) + 64;
    if (reserved > overhead && reserved <= ARENA_RETAIN_MAX && !arena_grow(arena, reserved - overhead)) arena_release(arena);
}

ArenaMark arena_mark(Arena const *arena) {
    return (ArenaMark){ arena->block, arena->block ? arena->block->used : 0 };
}

void arena_pop_to(Arena *arena, ArenaMark mark) {
    while (arena->block && arena->block != mark.block) {
        ArenaBlock *prev = arena->block->prev;
        arena->reserved -= arena->block->size;
        arena_unpoison(arena->block, arena->block->size);
        free(arena->block);
        arena->block = prev;
    }
    if (arena->block) arena->block->used = mark.used, block_poison_free(arena->block);
}

B4 arena_reserve(Arena *arena, U8 bytes) {
    if (arena->block && arena->block->size - arena->block->used >= bytes) return 1;
    if (arena->failed) return 0;
    if (!arena_grow(arena, bytes)) { arena->failed = Fail_NoMemory; return 0; }
    return 1;
}

Str8 arena_copy(Arena *arena, Str8 s) {
    U1 *ptr = farena_push(arena, s.len ? s.len : 1, .alignment = 1);
    if (!ptr) return (Str8){ 0, 0 };
    if (s.len) memcpy(ptr, s.ptr, s.len);
    return (Str8){ ptr, s.len };
}

/* ---- Xar --------------------------------------------------------------- */

static U1 *xar_chunk(Xar *xar, U4 k) {
    if (k >= XAR_MAX_CHUNKS) return 0;
    if (!xar->chunks[k]) xar->chunks[k] = farena_push(xar->arena, xar_chunk_size(k), .alignment = 64);
    return xar->chunks[k];
}

B4 xar_append(Xar *xar, U1 const *ptr, U8 len) {
    if (xar->arena->failed) return 0;
    U8 limit = xar->limit ? xar->limit : LIMIT_OUTPUT_BYTES;
    if (len > limit || xar->len + len > limit) { xar->arena->failed = Fail_Limit; return 0; }
    while (len) {
        U4 k = xar_chunk_of(xar->len);
        U1 *chunk = xar_chunk(xar, k);
        if (!chunk) return 0;   /* the arena says why */
        U8 off = xar->len - xar_chunk_start(k);
        U8 n = min_(len, xar_chunk_size(k) - off);
        memcpy(chunk + off, ptr, n);
        xar->len += n;
        ptr += n;
        len -= n;
    }
    return 1;
}

static void xar_walk(Xar const *xar, U8 at, U1 *buf, U1 const *src, U8 len) {
    while (len) {
        U4 k = xar_chunk_of(at);
        U8 off = at - xar_chunk_start(k);
        U8 n = min_(len, xar_chunk_size(k) - off);
        if (buf) memcpy(buf, xar->chunks[k] + off, n), buf += n;
        else memcpy(xar->chunks[k] + off, src, n), src += n;
        at += n;
        len -= n;
    }
}

B4 xar_put_at(Xar *xar, U8 at, U1 const *ptr, U8 len) {
    if (at > xar->len || len > xar->len - at) return 0;
    xar_walk(xar, at, 0, ptr, len);
    return 1;
}

B4 xar_copy_out(Xar const *xar, U8 at, U1 *dst, U8 len) {
    if (at > xar->len || len > xar->len - at) return 0;
    xar_walk(xar, at, dst, 0, len);
    return 1;
}

Str8 xar_flatten(Xar *xar, Arena *arena) {
    U1 *ptr = farena_push(arena, xar->len ? xar->len : 1, .alignment = 16);
    if (!ptr) return (Str8){ 0, 0 };
    xar_copy_out(xar, 0, ptr, xar->len);
    return (Str8){ ptr, xar->len };
}

/* ---- ctx helpers ------------------------------------------------------- */

/* At most `max` bytes of s, not cutting a UTF-8 character: when the byte at
 * `max` continues a character that starts at most 3 bytes before, the cut is
 * before that character. */
static Str8 utf8_cut(Str8 s, U8 max) {
    if (s.len <= max) return s;
    U8 at = max;
    while (at > 0 && max - at < 3 && (s.ptr[at] & 0xC0) == 0x80) at -= 1;
    S4 k = utf8_seq(s.ptr + at, s.len - at);
    return str8_prefix(s, k > 0 && at + (U8)k > max ? at : max);
}

/* Append s to buf (at most cap bytes in all) as valid UTF-8: UTF-8
 * characters as they are, every byte that is not part of one as \xNN (what
 * Python's decode(errors="backslashreplace") gives). Stops before the first
 * character or escape that does not fit whole. */
static void message_add(U1 *buf, U8 *len, U8 cap, Str8 s) {
    static char const hex[] = "0123456789abcdef";
    for (U8 i = 0; i < s.len;) {
        S4 k = utf8_seq(s.ptr + i, s.len - i);
        if (k > 0) {
            if (*len + (U8)k > cap) return;
            memcpy(buf + *len, s.ptr + i, (size_t)k);
            *len += (U8)k;
            i += (U8)k;
        } else {
            if (*len + 4 > cap) return;
            U1 c = s.ptr[i];
            buf[*len] = '\\', buf[*len + 1] = 'x', buf[*len + 2] = (U1)hex[c >> 4], buf[*len + 3] = (U1)hex[c & 15];
            *len += 4;
            i += 1;
        }
    }
}

/* The detail (printf-formatted; arguments may hold request bytes: an op name,
 * a path) and the message "OP: PATH: DETAIL" are valid UTF-8 whatever the
 * request held: message_add escapes the rest. */
static B4 fail_v(Ctx *ctx, Code code, Input const *input, char const *fmt, va_list args) {
    enum { MESSAGE_MAX = 1023, RAW_MAX = 2047 };
    /* the message is written even after memory failed (that is often why) */
    Fail failed = ctx->arena->failed;
    ctx->arena->failed = Fail_None;
    U1 *buf = farena_push(ctx->arena, (RAW_MAX + 1) + 2 * (MESSAGE_MAX + 1), .alignment = 1);
    ctx->arena->failed = failed;
    ctx->code = code ? (S4)code : (S4)Code_OpFailed;
    ctx->fail_input = input ? (S4)(input - ctx->req->inputs) : -1;
    if (!buf) {
        ctx->code = Code_NoMemory;
        ctx->message = ctx->detail = str8_lit("out of memory");
        return 0;
    }
    int n = vsnprintf((char *)buf, RAW_MAX + 1, fmt, args);
    Str8 raw = utf8_cut(str8(buf, n < 0 ? 0 : min_((U8)n, (U8)RAW_MAX + 1)), RAW_MAX);
    U1 *detail = buf + RAW_MAX + 1, *msg = detail + MESSAGE_MAX + 1;
    U8 dlen = 0, len = 0;
    message_add(detail, &dlen, MESSAGE_MAX, raw);
    ctx->detail = str8(detail, dlen);
    if (ctx->op) message_add(msg, &len, MESSAGE_MAX, utf8_cut(ctx->op->name, 200)), message_add(msg, &len, MESSAGE_MAX, str8_lit(": "));
    if (input) message_add(msg, &len, MESSAGE_MAX, utf8_cut(input->path, 400)), message_add(msg, &len, MESSAGE_MAX, str8_lit(": "));
    message_add(msg, &len, MESSAGE_MAX, ctx->detail);
    ctx->message = str8(msg, len);
    return 0;
}

B4 ctx_fail(Ctx *ctx, Code code, char const *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fail_v(ctx, code, 0, fmt, args);
    va_end(args);
    return 0;
}

B4 ctx_fail_input(Ctx *ctx, Code code, Input const *input, char const *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    fail_v(ctx, code, input, fmt, args);
    va_end(args);
    return 0;
}

B4 ctx_part_begin(Ctx *ctx) {
    ctx->part_start = ctx->out->len;
    return xar_u8(ctx->out, 0);
}

B4 ctx_part_end(Ctx *ctx) {
    if (ctx->arena->failed) return 0;
    U1 len[8];
    put_u8le(len, ctx->out->len - ctx->part_start - 8);
    xar_put_at(ctx->out, ctx->part_start, len, 8);
    ctx->part_count += 1;
    return 1;
}

B4 ctx_write(Ctx *ctx, U1 const *ptr, U8 len) { return xar_append(ctx->out, ptr, len); }

/* ---- record parts ------------------------------------------------------ */

B4 ctx_records_begin(Ctx *ctx, char const *schema) {
    Str8 s = { (U1 const *)schema, strlen(schema) };
    ctx->records = (Records){ .schema = s };
    if (!ctx_part_begin(ctx) || !xar_byte(ctx->out, (U1)s.len) || !xar_str8(ctx->out, s)) return 0;
    ctx->records.rows_at = ctx->out->len;
    return xar_u4(ctx->out, 0);
}

/* Check that the next column has this type, and step past it. */
static B4 rec_column(Ctx *ctx, char type) {
    Records *r = &ctx->records;
    if (r->column >= r->schema.len || r->schema.ptr[r->column] != (U1)type)
        return ctx_fail(ctx, Code_OpFailed, "internal error: record column %u is not '%c'", r->column, type);
    r->column += 1;
    if (r->column == r->schema.len) r->column = 0, r->rows += 1;
    return 1;
}

B4 ctx_rec_u1(Ctx *ctx, U1 v) { return rec_column(ctx, 'B') && xar_byte(ctx->out, v); }
B4 ctx_rec_u4(Ctx *ctx, U4 v) { return rec_column(ctx, 'I') && xar_u4(ctx->out, v); }
B4 ctx_rec_s4(Ctx *ctx, S4 v) { return rec_column(ctx, 'i') && xar_u4(ctx->out, (U4)v); }
B4 ctx_rec_u8(Ctx *ctx, U8 v) { return rec_column(ctx, 'Q') && xar_u8(ctx->out, v); }
B4 ctx_rec_s8(Ctx *ctx, S8 v) { return rec_column(ctx, 'q') && xar_u8(ctx->out, (U8)v); }

static B4 rec_string(Ctx *ctx, char type, Str8 s) {
    if (s.len > 0xFFFFFFFFu) return ctx_fail(ctx, Code_Limit, "a record string of %llu bytes", (unsigned long long)s.len);
    return rec_column(ctx, type) && xar_u4(ctx->out, (U4)s.len) && xar_str8(ctx->out, s);
}
B4 ctx_rec_bytes(Ctx *ctx, Str8 s) { return rec_string(ctx, 's', s); }
B4 ctx_rec_text(Ctx *ctx, Str8 s) { return rec_string(ctx, 't', s); }

B4 ctx_records_end(Ctx *ctx) {
    Records *r = &ctx->records;
    if (r->column) return ctx_fail(ctx, Code_OpFailed, "internal error: a record row left open");
    U1 count[4];
    put_u4le(count, r->rows);
    return xar_put_at(ctx->out, r->rows_at, count, 4) && ctx_part_end(ctx);
}

B4 ctx_each_input(Ctx *ctx, InputFn *fn, void *state) {
    for (U4 i = 0; i < ctx->req->input_count; i += 1) {
        Input *input = &ctx->req->inputs[i];
        if (!input_load(ctx, input))
            return ctx_fail_input(ctx, Code_InputError, input, "cannot read (errno %d)", input->load_errno);
        if (!fn(ctx, input, state)) return 0;
    }
    return 1;
}

B4 ctx_param(Ctx *ctx, char const *key, Str8 *out) {
    Str8 k = { (U1 const *)key, strlen(key) };
    OpReq *op = ctx->op;
    for (U4 i = 0; i < op->param_count; i += 1) {
        if (str8_eq(op->params[i].key, k)) { *out = op->params[i].value; return 1; }
    }
    return 0;
}

B4 parse_u8_decimal(Str8 s, U8 *out) {
    if (s.len == 0 || s.len > 19) return 0;
    U8 n = 0;
    for (U8 i = 0; i < s.len; i += 1) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9') return 0;
        n = n * 10 + (U8)(s.ptr[i] - '0');
    }
    *out = n;
    return 1;
}

B4 input_mode_parse(Str8 name, U1 *mode) {
    static char const *const names[] = INPUT_MODE_NAMES;
    for (U1 i = 0; i < count_of(names); i += 1) {
        if (str8_eq(name, str8((U1 const *)names[i], strlen(names[i])))) { *mode = i; return 1; }
    }
    return 0;
}

B4 ctx_param_u8(Ctx *ctx, char const *key, U8 *out) {
    Str8 v;
    if (!ctx_param(ctx, key, &v)) return 1;
    if (!parse_u8_decimal(v, out)) return ctx_fail(ctx, Code_BadParam, "parameter %s: not a number", key);
    return 1;
}

/* ---- input loading ----------------------------------------------------- */

/* Read into ptr up to `want` bytes, until end of file (a short read may be
 * a signal's: read on until 0). 0 with *err on a read error. */
static B4 fd_read_full(int fd, U1 *ptr, U8 want, U8 *got, int *err) {
    *got = 0;
    while (*got < want) {
        /* at most 1 GiB a call: what every platform's read takes in one go */
        U8 ask = min_(want - *got, (U8)1 << 30);
#if defined(_WIN32)
        int n = _read(fd, ptr + *got, (unsigned)ask);
#else
        ssize_t n = read(fd, ptr + *got, (size_t)ask);
#endif
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) { *err = errno ? errno : EIO; return 0; }
        if (n == 0) break;
        *got += (U8)n;
    }
    return 1;
}

/* Read on past what fstat said (a file that grew, or /proc's size 0), never
 * past `cap` bytes in all: EFBIG there. */
static B4 read_rest(int fd, Xar *buf, U8 cap, Input *input) {
    U1 chunk[1 << 14];
    for (;;) {
        U8 n = 0;
        int err = 0;
        if (!fd_read_full(fd, chunk, sizeof chunk, &n, &err)) { input->load_errno = err; return 0; }
        if (n && (buf->len + n > cap || !xar_append(buf, chunk, n))) {
            input->load_errno = buf->len + n > cap ? EFBIG : ENOMEM;
            input->skip_value = buf->len + n;
            return 0;
        }
        if (n < sizeof chunk) return 1;
    }
}

/* Read a regular file of `size` bytes (its fstat size, at most `cap`): a
 * read of size + 1 bytes into an exact buffer, and one that finds the end
 * (the common case); a file that grew (or says 0, as /proc files do) is
 * read on chunk by chunk. Plain descriptor reads: stdio's buffer, its
 * fstat and its fcntl cost a third of the system calls a file took. */
static B4 read_file(Arena *arena, int fd, U8 size, U8 cap, Input *input) {
    U1 *ptr = farena_push(arena, size + 1, .alignment = 16);
    if (!ptr) { input->load_errno = ENOMEM; return 0; }
    U8 n = 0;
    int err = 0;
    if (!fd_read_full(fd, ptr, size + 1, &n, &err)) { input->load_errno = err; return 0; }
    if (n <= size) { input->data = (Str8){ ptr, n }; return 1; }
    if (n > cap) { input->load_errno = EFBIG; input->skip_value = n; return 0; }
    Xar buf = { .arena = arena };
    if (!xar_append(&buf, ptr, n) || !read_rest(fd, &buf, cap, input)) {
        if (!input->load_errno) input->load_errno = ENOMEM;
        return 0;
    }
    input->data = xar_flatten(&buf, arena);
    return input->data.ptr != 0 || (input->load_errno = ENOMEM, 0);
}

IA_ B4 skip_(Input *input, Skip why, U8 value) { input->skip = why; input->skip_value = value; return 0; }

/* Before any byte is read, on the descriptor: only a regular file is read.
 * A directory is EISDIR; anything else (FIFO, device, socket) is EINVAL, or
 * Skip_Special under checks: /dev/zero would read forever, a FIFO without a
 * writer would block. Then the checks that fstat answers, and EFBIG past
 * LIMIT_INPUT_BYTES. 0 with input->load_errno or input->skip set, or 1
 * with *size. */
static B4 check_file(int fd, Input *input, LoadChecks const *checks, U8 *size) {
#if defined(_WIN32)
    struct _stat64 st;
    if (_fstat64(fd, &st) != 0) { input->load_errno = errno ? errno : EIO; return 0; }
    int type = st.st_mode & _S_IFMT;
    B4 dir = type == _S_IFDIR, reg = type == _S_IFREG;
    U8 type_bits = (U8)type;
    B4 is_avoided = 0;   /* st_ino is 0 on Windows: no identity to compare */
#else
    struct stat st;
    if (fstat(fd, &st) != 0) { input->load_errno = errno ? errno : EIO; return 0; }
    B4 dir = S_ISDIR(st.st_mode), reg = S_ISREG(st.st_mode);
    U8 type_bits = (U8)(st.st_mode & S_IFMT);
    B4 is_avoided = checks && checks->avoid && (U8)st.st_dev == checks->avoid_dev && (U8)st.st_ino == checks->avoid_ino;
#endif
    if (dir) { input->load_errno = EISDIR; return 0; }
    if (!reg) {
        if (checks) return skip_(input, Skip_Special, type_bits);
        input->load_errno = EINVAL;
        return 0;
    }
    if (is_avoided) return skip_(input, Skip_Output, 0);
    U8 bytes = st.st_size < 0 ? 0 : (U8)st.st_size;
    if (checks && checks->max_bytes && bytes > checks->max_bytes) return skip_(input, Skip_TooLarge, bytes);
    if (st.st_size < 0 || bytes > LIMIT_INPUT_BYTES) { input->load_errno = EFBIG; return 0; }
    *size = bytes;
    return 1;
}

/* Open for reading, without ever waiting: O_NONBLOCK, so opening a FIFO
 * does not wait for a writer (check_file refuses it, unread); O_NOCTTY, so
 * a terminal never becomes ours. Paths are UTF-8 on Windows, where _open
 * would read them in the ANSI code page. -1 with load_errno or skip set. */
static int open_input(Arena *arena, char const *cpath, Input *input, LoadChecks const *checks, U8 *size) {
    errno = 0;
#if defined(_WIN32)
    int wlen = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, cpath, -1, 0, 0);
    if (wlen <= 0) { input->load_errno = ENOENT; return -1; }
    wchar_t *wpath = farena_push(arena, (U8)wlen * sizeof(wchar_t), .alignment = sizeof(wchar_t));
    if (!wpath) { input->load_errno = ENOMEM; return -1; }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, cpath, -1, wpath, wlen);
    int fd = _wopen(wpath, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
    if (fd < 0) { input->load_errno = errno ? errno : EIO; return -1; }
    if (!check_file(fd, input, checks, size)) { _close(fd); return -1; }
#else
    (void)arena;
    int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (checks && checks->nofollow ? O_NOFOLLOW : 0);
    int fd = open(cpath, flags);
    if (fd < 0) {
        int e = errno ? errno : EIO;
        /* O_NOFOLLOW met a symlink: ELOOP on Linux, EMLINK on FreeBSD */
        if (checks && checks->nofollow && (e == ELOOP || e == EMLINK)) { skip_(input, Skip_Symlink, 0); return -1; }
        input->load_errno = e;
        return -1;
    }
    if (!check_file(fd, input, checks, size)) { close(fd); return -1; }
#endif
    return fd;
}

B4 input_load(Ctx *ctx, Input *input) { return input_load_checked(ctx, input, 0); }

/* The path is copied into a NUL-terminated buffer only here, at the libc
 * boundary; a path with an embedded NUL cannot name a file. */
B4 input_load_checked(Ctx *ctx, Input *input, LoadChecks const *checks) { return input_load_in(ctx->arena, input, checks); }

B4 input_load_in(Arena *arena, Input *input, LoadChecks const *checks) {
    if (input->loaded) return input->load_errno == 0 && input->skip == Skip_None;
    input->loaded = 1;
    if (input->kind == InputKind_Inline) return 1;
    if (memchr(input->path.ptr, 0, input->path.len)) { input->load_errno = ENOENT; return 0; }
    char *cpath = farena_push(arena, input->path.len + 1, .alignment = 1);
    if (!cpath) { input->load_errno = ENOMEM; return 0; }
    memcpy(cpath, input->path.ptr, input->path.len);
    cpath[input->path.len] = 0;

    U8 size = 0;
    int fd = open_input(arena, cpath, input, checks, &size);
    if (fd < 0) return 0;
    /* under max_bytes, a file that grows past it is too large, not EFBIG */
    B4 capped = checks && checks->max_bytes && checks->max_bytes < LIMIT_INPUT_BYTES;
    B4 ok = read_file(arena, fd, size, capped ? checks->max_bytes : LIMIT_INPUT_BYTES, input);
#if defined(_WIN32)
    _close(fd);
#else
    close(fd);
#endif
    if (!ok && capped && input->load_errno == EFBIG) { input->load_errno = 0; return skip_(input, Skip_TooLarge, input->skip_value); }
    if (!ok) { input->skip_value = 0; return 0; }
    Bom bom = checks && checks->bom_text ? bom_of(input->data) : Bom_None;
    B4 wide = bom != Bom_None && bom != Bom_Utf8;
    if (checks && checks->sniff && !wide && memchr(input->data.ptr, 0, min_(input->data.len, (U8)SNIFF_BYTES))) {
        input->data = str8(0, 0);
        return skip_(input, Skip_Binary, 0);
    }
    return 1;
}

/* ---- output descriptors -------------------------------------------------- */

B4 fd_write_all(S4 fd, U1 const *ptr, U8 len, S4 *err) {
    while (len) {
        /* at most 1 GiB a call: what every platform's write takes in one go */
        U8 want = min_(len, (U8)1 << 30);
#if defined(_WIN32)
        int n = _write(fd, ptr, (unsigned)want);
#else
        ssize_t n = write(fd, ptr, (size_t)want);
#endif
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) { *err = n < 0 && errno ? errno : EIO; return 0; }
        ptr += n;
        len -= (U8)n;
    }
    return 1;
}

B4 fd_file_identity(S4 fd, U8 *dev, U8 *ino) {
#if defined(_WIN32)
    (void)fd, (void)dev, (void)ino;
    return 0;
#else
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    *dev = (U8)st.st_dev;
    *ino = (U8)st.st_ino;
    return 1;
#endif
}

B4 xar_write_fd(Xar const *xar, U8 at, S4 fd, S4 *err) {
    while (at < xar->len) {
        U4 k = xar_chunk_of(at);
        U8 off = at - xar_chunk_start(k);
        U8 n = min_(xar->len - at, xar_chunk_size(k) - off);
        if (!fd_write_all(fd, xar->chunks[k] + off, n, err)) return 0;
        at += n;
    }
    return 1;
}

/* ---- threads ------------------------------------------------------------ */

struct Thread {
    void (*fn)(void *arg);
    void *arg;
#if defined(_WIN32)
    HANDLE handle;
#else
    pthread_t id;
#endif
};

#if defined(_WIN32)
struct Sync { SRWLOCK lock; CONDITION_VARIABLE cond; };

Sync *sync_new(void) {
    Sync *sync = calloc(1, sizeof *sync);
    if (sync) InitializeSRWLock(&sync->lock), InitializeConditionVariable(&sync->cond);
    return sync;
}
void sync_free(Sync *sync) { free(sync); }
void sync_lock(Sync *sync) { AcquireSRWLockExclusive(&sync->lock); }
void sync_unlock(Sync *sync) { ReleaseSRWLockExclusive(&sync->lock); }
void sync_wait(Sync *sync) { SleepConditionVariableSRW(&sync->cond, &sync->lock, INFINITE, 0); }
void sync_wake(Sync *sync) { WakeAllConditionVariable(&sync->cond); }

static DWORD WINAPI thread_main(LPVOID arg) {
    Thread *thread = arg;
    thread->fn(thread->arg);
    return 0;
}
static B4 thread_launch(Thread *thread) { return (thread->handle = CreateThread(0, 0, thread_main, thread, 0, 0)) != 0; }
static void thread_wait(Thread *thread) { WaitForSingleObject(thread->handle, INFINITE), CloseHandle(thread->handle); }
#else
struct Sync { pthread_mutex_t lock; pthread_cond_t cond; };

Sync *sync_new(void) {
    Sync *sync = calloc(1, sizeof *sync);
    if (!sync) return 0;
    if (pthread_mutex_init(&sync->lock, 0) != 0) { free(sync); return 0; }
    if (pthread_cond_init(&sync->cond, 0) != 0) { pthread_mutex_destroy(&sync->lock); free(sync); return 0; }
    return sync;
}

void sync_free(Sync *sync) {
    if (!sync) return;
    pthread_cond_destroy(&sync->cond);
    pthread_mutex_destroy(&sync->lock);
    free(sync);
}

void sync_lock(Sync *sync) { pthread_mutex_lock(&sync->lock); }
void sync_unlock(Sync *sync) { pthread_mutex_unlock(&sync->lock); }
void sync_wait(Sync *sync) { pthread_cond_wait(&sync->cond, &sync->lock); }
void sync_wake(Sync *sync) { pthread_cond_broadcast(&sync->cond); }

static void *thread_main(void *arg) {
    Thread *thread = arg;
    thread->fn(thread->arg);
    return 0;
}
static B4 thread_launch(Thread *thread) { return pthread_create(&thread->id, 0, thread_main, thread) == 0; }
static void thread_wait(Thread *thread) { pthread_join(thread->id, 0); }
#endif

Thread *thread_start(void (*fn)(void *arg), void *arg) {
    Thread *thread = calloc(1, sizeof *thread);
    if (!thread) return 0;
    thread->fn = fn, thread->arg = arg;
    if (thread_launch(thread)) return thread;
    free(thread);
    return 0;
}

void thread_join(Thread *thread) {
    thread_wait(thread);
    free(thread);
}

/* ---- op table ---------------------------------------------------------- */

static OpEntry const op_entries[] = {
#define OP_(name, id) { #name, id, op_##name },
#include "op_table.h"
#undef OP_
};

OpEntry const *op_lookup(Str8 name) {
    for (U4 i = 0; i < count_of(op_entries); i += 1) {
        Str8 n = { (U1 const *)op_entries[i].name, strlen(op_entries[i].name) };
        if (str8_eq(n, name)) return &op_entries[i];
    }
    return 0;
}

/* ---- XarOf ------------------------------------------------------------- */

void *xar_of_push_new_chunk_(XarOf *x) {
    if (x->arena->failed) return 0;
    U4 k = xar_of_chunk_of(x->len);
    if (k >= XAR_MAX_CHUNKS) { x->arena->failed = Fail_Limit; return 0; }
    if (!x->chunks[k]) {
        /* 16: every element type's alignment divides it (and its size) */
        x->chunks[k] = arena_push_(x->arena, xar_of_chunk_size(k), x->size, 16, (ArenaPushOpts){ 0 });
        if (!x->chunks[k]) return 0;   /* the arena says why */
    }
    U1 *p = x->chunks[k] + (x->len - xar_of_chunk_start(k)) * x->size;
    memset(p, 0, x->size);
    x->len += 1;
    return p;
}

Str8 xar_contiguous(Xar *xar, Arena *arena) {
    if (xar->len == 0) return str8((U1 const *)"", 0);
    if (xar->len <= xar_chunk_size(0)) return str8(xar->chunks[0], xar->len);
    return xar_flatten(xar, arena);
}

/* ---- UTF-8 ------------------------------------------------------------- */

Bom bom_of(Str8 d) {
    U1 const *p = d.ptr;
    if (d.len >= 4 && p[0] == 0xff && p[1] == 0xfe && p[2] == 0 && p[3] == 0) return Bom_Utf32Le;
    if (d.len >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0xfe && p[3] == 0xff) return Bom_Utf32Be;
    if (d.len >= 2 && p[0] == 0xff && p[1] == 0xfe) return Bom_Utf16Le;
    if (d.len >= 2 && p[0] == 0xfe && p[1] == 0xff) return Bom_Utf16Be;
    if (d.len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) return Bom_Utf8;
    return Bom_None;
}

IA_ S4 utf8_seq_(U1 const *p, U8 n) {
    U1 c = p[0];
    if (c < 0x80) return 1;
    S4 need;
    U1 lo = 0x80, hi = 0xbf;   /* the second byte's range; later ones are 80..BF */
    if (c >= 0xc2 && c <= 0xdf) need = 1;
    else if (c >= 0xe0 && c <= 0xef) { need = 2; if (c == 0xe0) lo = 0xa0; if (c == 0xed) hi = 0x9f; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; if (c == 0xf0) lo = 0x90; if (c == 0xf4) hi = 0x8f; }
    else return -1;
    for (S4 i = 1; i <= need; i += 1) {
        if ((U8)i >= n || p[i] < lo || p[i] > hi) return -i;
        lo = 0x80; hi = 0xbf;
    }
    return need + 1;
}

S4 utf8_seq(U1 const *p, U8 n) { return utf8_seq_(p, n); }

U8 utf8_valid_len(Str8 s) {
    U1 const *p = s.ptr;
    U8 i = 0, len = s.len;
    while (i < len) {
        if (i + 32 <= len) {  /* 32 ASCII bytes at a time */
            U8 w[4];
            memcpy(w, p + i, 32);
            if (!((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ull)) { i += 32; continue; }
        }
        if (i + 8 <= len) {   /* eight ASCII bytes at a time */
            U8 w;
            memcpy(&w, p + i, 8);
            if (!(w & 0x8080808080808080ull)) { i += 8; continue; }
        }
        S4 k = utf8_seq_(p + i, len - i);
        if (k < 0) return i;
        i += (U8)k;
    }
    return len;
}
