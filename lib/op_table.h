/* op_table.h: the op table, one row per op: OP_(name, id).
 * The row declares `B4 op_<name>(Ctx *)` (defined in lib/<name>.c) and
 * registers it under its name; ids are stable and never reused. */
OP_(echo,           1)
OP_(aggregate,      2)
OP_(md_outline,     3)
OP_(md_summary,     4)
/* id 6 was snapshot_encode, retired (msgspec is faster; docs/snapshot.md): never reuse it */
OP_(py_skeleton,    5)
OP_(tokens,         7)
OP_(walk,           8)
#ifdef SLOPFAST_TEST_HOOKS
/* test builds only (lib/test_hooks.c): kills the process, for the crash-survival tests */
OP_(crash,          99)
#endif
