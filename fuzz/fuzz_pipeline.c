/* fuzz_pipeline.c: libFuzzer entry for libchunks (fuzz/run.sh builds it).
 *
 * Every input is one request blob handed to pipeline_run_opts, the entry
 * pipeline_run calls, and its response is freed with pipeline_free. The
 * response must be well formed: a code in 0..7, a message exactly when the
 * code is non-zero, and bytes that start with a response magic. Anything
 * else aborts, so libFuzzer keeps the input.
 *
 * File inputs resolve from the directory in SLOPFAST_FUZZ_CWD (the wire
 * vectors' directory, so "files/hello.txt" exists). A memory cap of
 * FUZZ_MEMORY_LIMIT bytes per call turns a request that names /dev/zero
 * into an error response instead of a 2 GiB read that would trip
 * libFuzzer's RSS limit; every other byte takes the path pipeline_run
 * takes (pipeline_run is pipeline_run_opts with no options).
 *
 * The aggregate op's out_fd is descriptor 100 in fuzz builds
 * (SLOPFAST_FUZZ_OUT_FD, set by fuzz/run.sh), which the harness opens on
 * /dev/null: streamed documents are written, and go nowhere.
 *
 * Each request that did not run out of memory is sent again through one
 * PipelineContext kept across all inputs (as the Python binding keeps one
 * per thread): its answer must be the same bytes, whatever the context held
 * before. */
#include "../lib/pipeline.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FUZZ_MEMORY_LIMIT ((U8)256 << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(U1 const *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char const *dir = getenv("SLOPFAST_FUZZ_CWD");
    if (dir && chdir(dir) != 0) { perror("fuzz_pipeline: chdir SLOPFAST_FUZZ_CWD"); abort(); }
#ifdef SLOPFAST_FUZZ_OUT_FD
    int sink = open("/dev/null", O_WRONLY);
    if (sink < 0 || dup2(sink, SLOPFAST_FUZZ_OUT_FD) < 0) { perror("fuzz_pipeline: /dev/null"); abort(); }
    if (sink != SLOPFAST_FUZZ_OUT_FD) close(sink);
#endif
    return 0;
}

static void check_response(Response const *resp) {
    if (resp->code < 0 || resp->code > Code_OpFailed) abort();
    if ((resp->code != 0) != (resp->message_len != 0)) abort();
    if (resp->len == 0) {
        if (resp->code != Code_NoMemory) abort();   /* only the static out-of-memory answer has no bytes */
        return;
    }
    if (!resp->data) abort();
    B4 binary = resp->len >= 4 && memcmp(resp->data, WIRE_MAGIC_RESPONSE, 4) == 0;
    B4 text = resp->len >= 18 && memcmp(resp->data, "slopfast-response ", 18) == 0;
    if (!binary && !text) abort();
}

static B4 same_response(Response const *a, Response const *b) {
    return a->code == b->code && a->len == b->len && (!a->len || memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(U1 const *data, size_t size) {
    static PipelineContext *context;   /* test harness only: reused across inputs */
    if (!context && !(context = pipeline_context_new())) abort();
    Response *resp = pipeline_run_opts(data, size, (PipelineOpts){ .memory_limit = FUZZ_MEMORY_LIMIT });
    check_response(resp);
    if (resp->code != Code_NoMemory) {
        Response const *again = pipeline_run_in(context, data, size);
        check_response(again);
        if (!same_response(resp, again)) abort();
    }
    pipeline_free(resp);
    return 0;
}
