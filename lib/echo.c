/* echo.c: one part per input holding its bytes. The smallest op: it measures
 * the round trip of the wire and the transport, and tests file loading. */
#include "op.h"

static B4 echo_input(Ctx *ctx, Input *input, void *state) {
    (void)state;
    return ctx_part_begin(ctx) && ctx_str8(ctx, input->data) && ctx_part_end(ctx);
}

B4 op_echo(Ctx *ctx) { return ctx_each_input(ctx, echo_input, 0); }
