/* test_spec.c — the executable specification (tests/spec/model.h) run
 * against Kiln, bounded for CI, plus the proof that its checks can fail.
 *
 *   - random sequences from fixed seeds and one seed from the clock (printed;
 *     SPEC_SEED=n SPEC_STEPS=n SPEC_SLOTS=n replay one), each in a forked child;
 *   - every entry of tests/spec/regressions.h;
 *   - the toy allocators of tests/spec/broken.h: the spec must pass the
 *     correct one and catch each planted bug with the expected check, and
 *     the shrinker must cut the sequence to a few operations.
 * Longer runs: spec_long (tests/spec/spec_long.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "spec/broken.h"
#include "spec/model.h"

/* CI budget for the random sequences (the whole program stays < 60 s). */
#define RANDOM_BUDGET_S 25.0
#define STEPS 4000
#define CHILD_TIMEOUT_S 60

#define SPEC_REGRESSION(name, ...) static const spec_op_t regression_##name[] = {__VA_ARGS__};
#include "spec/regressions.h"
#undef SPEC_REGRESSION

static const struct {
  const char *name;
  const spec_op_t *ops;
  size_t n;
} regressions[] = {
#define SPEC_REGRESSION(name, ...) {#name, regression_##name, sizeof regression_##name / sizeof(spec_op_t)},
#include "spec/regressions.h"
#undef SPEC_REGRESSION
};

/* Under valgrind (scripts/test.sh's memcheck stage) everything runs ~50x
 * slower: run a token amount of the spec there; the native, ASan and TSan
 * runs do the real work.  Valgrind preloads vgpreload_*.so into the client. */
static bool under_valgrind(void) {
  const char *preload = getenv("LD_PRELOAD");
  return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run one generated sequence; on failure shrink it, print the replayable
 * case and fail the test. */
static void run_seed(const spec_api_t *api, const spec_gen_config_t *cfg, uint64_t seed, size_t steps) {
  spec_op_t *ops = spec_ops_alloc(steps);
  assert_non_null(ops);
  spec_generate(seed, cfg, ops, steps);
  spec_result_t r = spec_run_forked(api, ops, steps, CHILD_TIMEOUT_S);
  if (r.failure != SPEC_FAIL_NONE) {
    printf("spec: seed %llu (%zu steps, %u slots) FAILED at step %zu: %s\n  %s\nshrinking...\n",
           (unsigned long long)seed, steps, cfg->slots, r.step, spec_failure_name(r.failure), r.message);
    fflush(stdout);
    size_t n = steps;
    spec_result_t s = spec_shrink(api, ops, &n, r, 1500, CHILD_TIMEOUT_S);
    printf("/* shrunk: %s\n   %s\n   replay: SPEC_SEED=%llu SPEC_STEPS=%zu SPEC_SLOTS=%u ./test_spec */\n",
           spec_failure_name(s.failure), s.message, (unsigned long long)seed, steps, cfg->slots);
    char name[64];
    snprintf(name, sizeof name, "seed_%llu", (unsigned long long)seed);
    spec_print_ops(stdout, name, ops, n);
    fflush(stdout);
    spec_ops_release(ops, steps);
    fail_msg("spec failure with seed %llu: %s", (unsigned long long)seed, s.message);
  }
  spec_ops_release(ops, steps);
}

static void test_random_sequences(void **state) {
  (void)state;
  spec_gen_config_t cfg = spec_gen_default(&spec_kiln_api);
  const char *env_seed = getenv("SPEC_SEED"), *env_steps = getenv("SPEC_STEPS");
  const char *env_slots = getenv("SPEC_SLOTS");
  size_t steps = env_steps ? strtoull(env_steps, NULL, 0) : STEPS;
  if (env_seed != NULL) {
    uint64_t seed = strtoull(env_seed, NULL, 0);
    if (env_slots != NULL) cfg.slots = (unsigned)strtoul(env_slots, NULL, 0);
    printf("spec: replaying seed %llu, %zu steps, %u slots\n", (unsigned long long)seed, steps, cfg.slots);
    run_seed(&spec_kiln_api, &cfg, seed, steps);
    return;
  }
  if (under_valgrind()) {
    printf("spec: under valgrind: seeds 1..2, 300 steps\n");
    for (uint64_t seed = 1; seed <= 2; seed++) run_seed(&spec_kiln_api, &cfg, seed, 300);
    return;
  }
  uint64_t clock_seed = (uint64_t)time(NULL);
  printf("spec: seeds 1..8 and %llu (from the clock; replay: SPEC_SEED=%llu)\n",
         (unsigned long long)clock_seed, (unsigned long long)clock_seed);
  fflush(stdout);
  double start = now_s();
  unsigned runs = 0;
  /* Fixed seeds first (the same every run), then the clock's, then more
   * fixed ones with fewer slots (more reuse) while the budget lasts. */
  for (uint64_t seed = 1; seed <= 8; seed++, runs++) run_seed(&spec_kiln_api, &cfg, seed, steps);
  run_seed(&spec_kiln_api, &cfg, clock_seed, steps);
  runs++;
  cfg.slots = 32;
  for (uint64_t seed = 1000; now_s() - start < RANDOM_BUDGET_S && seed < 1100; seed++, runs++)
    run_seed(&spec_kiln_api, &cfg, seed, steps);
  printf("spec: %u sequences of %zu steps passed in %.1f s\n", runs, steps, now_s() - start);
}

static void test_regressions(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof regressions / sizeof regressions[0]; i++) {
    spec_result_t r = spec_run_forked(&spec_kiln_api, regressions[i].ops, regressions[i].n, CHILD_TIMEOUT_S);
    if (r.failure != SPEC_FAIL_NONE)
      fail_msg("regression %s fails at step %zu: %s: %s", regressions[i].name, r.step,
               spec_failure_name(r.failure), r.message);
  }
}

/* The toy without a bug passes: the model has no false alarms on a
 * correct allocator (this one never reuses memory, so it is easy to trust). */
static void test_correct_toy_passes(void **state) {
  (void)state;
  if (under_valgrind()) skip(); /* tests the model, not Kiln */
  const spec_api_t *api = spec_broken_api(SPEC_BROKEN_NONE);
  spec_gen_config_t cfg = spec_gen_default(api);
  for (uint64_t seed = 1; seed <= 3; seed++) {
    spec_op_t *ops = spec_ops_alloc(STEPS);
    spec_generate(seed, &cfg, ops, STEPS);
    spec_result_t r = spec_run_forked(api, ops, STEPS, CHILD_TIMEOUT_S);
    spec_ops_release(ops, STEPS);
    if (r.failure != SPEC_FAIL_NONE)
      fail_msg("correct toy failed (seed %llu, step %zu): %s", (unsigned long long)seed, r.step, r.message);
  }
}

/* Each planted bug is caught by the check named for it, and shrunk. */
static void test_checks_can_fail(void **state) {
  (void)state;
  if (under_valgrind()) skip();
  for (unsigned b = SPEC_BROKEN_NONE + 1; b < SPEC_BROKEN_COUNT; b++) {
    const spec_api_t *api = spec_broken_api((spec_broken_t)b);
    spec_gen_config_t cfg = spec_gen_default(api);
    size_t steps = 2000;
    spec_op_t *ops = spec_ops_alloc(steps);
    spec_result_t r = {.failure = SPEC_FAIL_NONE};
    uint64_t seed;
    for (seed = 1; seed <= 20 && r.failure == SPEC_FAIL_NONE; seed++) {
      spec_generate(seed, &cfg, ops, steps);
      r = spec_run_forked(api, ops, steps, CHILD_TIMEOUT_S);
    }
    if (r.failure != spec_broken_expected((spec_broken_t)b))
      fail_msg("bug '%s': expected %s, got %s (%s)", spec_broken_name((spec_broken_t)b),
               spec_failure_name(spec_broken_expected((spec_broken_t)b)), spec_failure_name(r.failure),
               r.message);
    size_t n = steps;
    spec_result_t s = spec_shrink(api, ops, &n, r, 1500, CHILD_TIMEOUT_S);
    printf("bug '%s' (seed %llu): caught at step %zu, shrunk to %zu ops: %s\n",
           spec_broken_name((spec_broken_t)b), (unsigned long long)(seed - 1), r.step, n, s.message);
    char name[64];
    snprintf(name, sizeof name, "broken_%s", spec_broken_name((spec_broken_t)b));
    spec_print_ops(stdout, name, ops, n);
    assert_int_equal(s.failure, spec_broken_expected((spec_broken_t)b));
    assert_true(n <= 4);
    /* The printed case replays to the same failure. */
    spec_result_t again = spec_run_forked(api, ops, n, CHILD_TIMEOUT_S);
    assert_int_equal(again.failure, s.failure);
    spec_ops_release(ops, steps);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_correct_toy_passes),
      cmocka_unit_test(test_checks_can_fail),
      cmocka_unit_test(test_regressions),
      cmocka_unit_test(test_random_sequences),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
