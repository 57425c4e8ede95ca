/* spec_long — long randomized runs of the executable specification.
 *
 *   spec_long [--seed N] [--steps N] [--minutes M] [--slots N]
 *             [--no-threads] [--no-exits] [--no-failures] [--no-heaps] [--no-arenas]
 *             [--no-pools] [--shrink-runs N] [--timeout S] [--broken NAME]
 *
 * Runs sequences of --steps operations (default 20000) generated from --seed
 * (default: from the clock), each in a forked child, side by side with the
 * model of tests/spec/model.c.  With --minutes it keeps going with seed+1,
 * seed+2, ... until the time is up.  On the first failure it shrinks the
 * sequence (delta debugging, each candidate in a fresh child) and prints it
 * as a SPEC_REGRESSION(...) entry for tests/spec/regressions.h, with the
 * command that replays it; exit status 1.  --broken NAME runs against a toy
 * allocator with a planted bug (tests/spec/broken.h) to show the checks
 * fire.  Not a ctest test: CI runs tests/test_spec.c, a bounded version.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broken.h"
#include "model.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(void) {
  fprintf(stderr, "usage: spec_long [--seed N] [--steps N] [--minutes M] [--slots N] [--no-threads]\n"
                  "                 [--no-exits] [--no-failures] [--no-heaps] [--no-arenas] [--no-pools]\n"
                  "                 [--shrink-runs N] [--timeout S] [--broken NAME]\n");
  exit(2);
}

int main(int argc, char **argv) {
  uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
  size_t steps = 20000;
  double minutes = 0;
  unsigned shrink_runs = 3000, timeout_s = 60;
  const spec_api_t *api = &spec_kiln_api;
  spec_gen_config_t cfg = spec_gen_default(api);
  bool threads = true, exits = true, failures = true, off[3] = {false, false, false};
  unsigned slots = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--no-threads") == 0) {
      threads = false;
      continue;
    }
    if (strcmp(arg, "--no-exits") == 0) {
      exits = false;
      continue;
    }
    if (strcmp(arg, "--no-failures") == 0) {
      failures = false;
      continue;
    }
    if (strcmp(arg, "--no-heaps") == 0 || strcmp(arg, "--no-arenas") == 0 || strcmp(arg, "--no-pools") == 0) {
      off[arg[5] == 'h' ? 0 : arg[5] == 'a' ? 1 : 2] = true;
      continue;
    }
    if (val == NULL) usage();
    i++;
    if (strcmp(arg, "--seed") == 0)
      seed = strtoull(val, NULL, 0);
    else if (strcmp(arg, "--steps") == 0)
      steps = strtoull(val, NULL, 0);
    else if (strcmp(arg, "--minutes") == 0)
      minutes = strtod(val, NULL);
    else if (strcmp(arg, "--slots") == 0)
      slots = (unsigned)strtoul(val, NULL, 0);
    else if (strcmp(arg, "--shrink-runs") == 0)
      shrink_runs = (unsigned)strtoul(val, NULL, 0);
    else if (strcmp(arg, "--timeout") == 0)
      timeout_s = (unsigned)strtoul(val, NULL, 0);
    else if (strcmp(arg, "--broken") == 0) {
      spec_broken_t bug = spec_broken_parse(val);
      if (bug == SPEC_BROKEN_COUNT) usage();
      api = spec_broken_api(bug);
      cfg = spec_gen_default(api);
    } else
      usage();
  }
  cfg.threads = threads;
  cfg.failures = failures;
  cfg.exits = exits;
  if (off[0]) cfg.heaps = false;
  if (off[1]) cfg.arenas = false;
  if (off[2]) cfg.pools = false;
  if (slots) cfg.slots = slots;
  if (steps == 0) usage();

  spec_op_t *ops = spec_ops_alloc(steps);
  if (ops == NULL) {
    fprintf(stderr, "spec_long: cannot map %zu ops\n", steps);
    return 2;
  }
  double start = now_s(), last_report = start;
  unsigned long runs = 0;
  for (uint64_t s = seed;; s++) {
    spec_generate(s, &cfg, ops, steps);
    spec_result_t r = spec_run_forked(api, ops, steps, timeout_s);
    runs++;
    if (r.failure != SPEC_FAIL_NONE) {
      printf("spec_long: FAILED against %s with --seed %" PRIu64 " --steps %zu --slots %u%s%s%s%s%s%s\n",
             api->name, s, steps, cfg.slots, threads ? "" : " --no-threads", exits ? "" : " --no-exits",
             failures ? "" : " --no-failures", cfg.heaps ? "" : " --no-heaps", cfg.arenas ? "" : " --no-arenas",
             cfg.pools ? "" : " --no-pools");
      printf("  step %zu: %s\n  %s\n", r.step, spec_failure_name(r.failure), r.message);
      printf("shrinking (each candidate in a fresh child)...\n");
      fflush(stdout);
      size_t n = steps;
      spec_result_t shrunk = spec_shrink(api, ops, &n, r, shrink_runs, timeout_s);
      printf("shrunk to %zu operation%s; it fails at step %zu: %s\n  %s\n", n, n == 1 ? "" : "s",
             shrunk.step, spec_failure_name(shrunk.failure), shrunk.message);
      printf("/* found by: spec_long --seed %" PRIu64 " --steps %zu --slots %u (allocator %s) */\n", s, steps,
             cfg.slots, api->name);
      char name[64];
      snprintf(name, sizeof name, "seed_%" PRIu64, s);
      spec_print_ops(stdout, name, ops, n);
      return 1;
    }
    double t = now_s();
    if (minutes <= 0) break;
    if (t - last_report >= 10) {
      printf("spec_long: %lu runs of %zu steps passed (seeds %" PRIu64 "..%" PRIu64 "), %.0f s\n", runs, steps,
             seed, s, t - start);
      fflush(stdout);
      last_report = t;
    }
    if (t - start >= minutes * 60) break;
  }
  printf("spec_long: PASSED %lu run%s of %zu steps against %s (seeds %" PRIu64 "..%" PRIu64 ") in %.1f s\n",
         runs, runs == 1 ? "" : "s", steps, api->name, seed, seed + runs - 1, now_s() - start);
  spec_ops_release(ops, steps);
  return 0;
}
