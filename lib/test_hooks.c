/* test_hooks.c: ops that exist only in builds with SLOPFAST_TEST_HOOKS
 * (lib/op_table.h registers them under the same #ifdef); the shipped
 * library has none of this.
 *
 * crash: raises a signal in the calling process, so tests can check that a
 * dying pipeline process becomes a clear PipelineError on the subprocess
 * transport. Parameter signal=N (default 11, SIGSEGV). */
#include "op.h"

#ifdef SLOPFAST_TEST_HOOKS
#include <signal.h>
#include <stdlib.h>

B4 op_crash(Ctx *ctx) {
    U8 sig = SIGSEGV;
    if (!ctx_param_u8(ctx, "signal", &sig)) return 0;
    if (sig == 0 || sig > 64) return ctx_fail(ctx, Code_BadParam, "parameter signal: expected 1..64");
    signal((int)sig, SIG_DFL);
    raise((int)sig);
    abort();   /* a signal that does not kill: die anyway */
}
#else
typedef int test_hooks_empty_;   /* ISO C wants a declaration in every translation unit */
#endif
