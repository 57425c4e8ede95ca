/* fuzz_api.c — libFuzzer target: the input, decoded into a sequence of API
 * operations (spec_decode in tests/spec/model_gen.c), runs against Kiln's kiln_*
 * functions with every check of the executable specification after every
 * step.  A failed check prints the decoded sequence (replayable as a
 * SPEC_REGRESSION) and aborts, which libFuzzer reports as a crash; ASan and
 * UBSan catch the rest.
 *
 * Build and run: scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined,
 * Kiln built with KILN_SANITIZE=address,undefined so it does not override
 * malloc).  Replay: tests/spec.cmake's spec_fuzz_replay runs fuzz/corpus and
 * fuzz/regressions through this target (libFuzzer -runs=0 with clang, the
 * plain main() of replay_main.c otherwise).
 */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#define MAX_OPS 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static spec_op_t ops[MAX_OPS]; /* static: the model never uses the allocator under test */
  size_t n = spec_decode(data, size, ops, MAX_OPS);
  spec_result_t r = {.failure = SPEC_FAIL_NONE};
  spec_model_begin(&spec_kiln_api);
  bool ok = true;
  for (size_t i = 0; i < n && ok; i++) ok = spec_model_step(&ops[i], i, &r);
  /* Workers stay up between inputs (starting threads per input is slow). */
  if (ok) ok = spec_model_end(false, &r);
  if (!ok) {
    fprintf(stderr, "fuzz_api: spec check failed at step %zu: %s\n  %s\n", r.step, spec_failure_name(r.failure),
            r.message);
    spec_print_ops(stderr, "fuzz_case", ops, r.step < n ? r.step + 1 : n);
    abort();
  }
  return 0;
}
