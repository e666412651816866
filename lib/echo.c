/* echo.c: one part per input holding its bytes. The smallest op: it measures
 * the round trip of the wire and the transport, and tests file loading. */
#include "op.h"

B4 op_echo(Ctx *ctx) {
    for (U4 i = 0; i < ctx->req->input_count; i += 1) {
        Input *input = &ctx->req->inputs[i];
        if (!input_load(ctx, input))
            return ctx_fail(ctx, Code_InputError, "cannot read '%.*s' (errno %d)",
                            (int)min_(input->path.len, 400), (char const *)input->path.ptr, input->load_errno);
        if (!ctx_part_begin(ctx) || !ctx_str8(ctx, input->data) || !ctx_part_end(ctx)) return 0;
    }
    return 1;
}
