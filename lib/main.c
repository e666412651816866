/* main.c: the standalone pipeline binary. A request on stdin (wire v3 or a
 * v1 text envelope), the response on stdout; exit status 0 when the
 * response code is 0, else 1. Used for debugging, fuzzing and the
 * subprocess transport. */
#include "pipeline.h"

#include <stdio.h>
#include <stdlib.h>

#if defined(_WIN32)
#  include <fcntl.h>
#  include <io.h>
#endif

int main(void) {
#if defined(_WIN32)
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    Arena arena = { 0 };
    Xar in = { .arena = &arena };
    U1 chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        if (!xar_append(&in, chunk, n)) { fputs("slopfast-pipeline: request too large\n", stderr); return 2; }
    }
    if (ferror(stdin)) { fputs("slopfast-pipeline: cannot read stdin\n", stderr); return 2; }
    Str8 request = xar_flatten(&in, &arena);
    Response *resp = pipeline_run(request.ptr, request.len);
    /* a response without bytes (out of memory): its message goes to stderr */
    if (!resp->len) fprintf(stderr, "slopfast-pipeline: %.*s\n", (int)resp->message_len, (char const *)resp->message);
    size_t written = resp->len ? fwrite(resp->data, 1, resp->len, stdout) : 0;
    int status = resp->code == 0 ? 0 : 1;
    if (written != resp->len || fflush(stdout) != 0) status = 2;
    pipeline_free(resp);
    arena_release(&arena);
    return status;
}
