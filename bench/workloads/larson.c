/* larson — a server simulation after Larson and Krishnan's benchmark (1998).
 *
 * A server keeps many objects of random sizes per connection and replaces
 * them at random; connections move between worker threads.  Here each of
 * THREADS lanes owns SLOTS blocks of MIN..MAX bytes.  A lane lives through
 * ROUNDS rounds; each round is a new thread that inherits the lane's blocks
 * from the thread before it (which has exited) and makes OPS replacements:
 * free the block in a random slot, allocate one of a random size.  So most
 * frees are of blocks allocated by another thread, often an exited one: the
 * allocator's cross-thread free and its reuse of dead threads' memory are
 * what this measures, alongside plain small-object speed.
 */
#include "common.h"

typedef struct {
  BENCH_OWN_LINE size_t lane;
  size_t rounds, ops, slots, min, max;
  void **block;
  size_t *size;
  bench_rng rng;
} lane_t;

static void *round_main(void *arg) {
  lane_t *l = arg;
  for (size_t i = 0; i < l->ops; i++) {
    size_t k = bench_range(&l->rng, 0, l->slots - 1);
    bench_verify(l->block[k], l->size[k]);
    free(l->block[k]);
    size_t n = bench_range(&l->rng, l->min, l->max);
    l->block[k] = bench_malloc(n);
    l->size[k] = n;
    bench_mark(l->block[k], n);
  }
  return NULL;
}

/* Runs the lane's rounds one after the other, each on a fresh thread. */
static void *lane_main(void *arg) {
  lane_t *l = arg;
  for (size_t r = 0; r < l->rounds; r++) bench_threads(1, round_main, l, 0);
  return NULL;
}

int main(int argc, char **argv) {
  size_t a[6] = {2, 10, 50000, 2000, 8, 1000};
  bench_args(argc, argv, "larson", "[THREADS ROUNDS OPS SLOTS MIN MAX]", 6, a);
  size_t threads = a[0], rounds = a[1], ops = a[2], slots = a[3], min = a[4], max = a[5];
  if (!threads || !slots || min > max) bench_die("need THREADS>0, SLOTS>0, MIN<=MAX");

  lane_t *lanes = bench_lines(threads, sizeof *lanes);
  for (size_t t = 0; t < threads; t++) {
    lane_t *l = &lanes[t];
    *l = (lane_t){t, rounds, ops, slots, min, max, bench_malloc(slots * sizeof(void *)),
                  bench_malloc(slots * sizeof(size_t)), bench_rng_seed(t + 1)};
    /* The main thread fills every lane: the first round frees foreign blocks. */
    for (size_t k = 0; k < slots; k++) {
      l->size[k] = bench_range(&l->rng, min, max);
      l->block[k] = bench_malloc(l->size[k]);
      bench_mark(l->block[k], l->size[k]);
    }
  }

  double t0 = bench_now();
  bench_threads(threads, lane_main, lanes, sizeof *lanes);
  double secs = bench_now() - t0;

  for (size_t t = 0; t < threads; t++) {
    for (size_t k = 0; k < slots; k++) {
      bench_verify(lanes[t].block[k], lanes[t].size[k]);
      free(lanes[t].block[k]);
    }
    free(lanes[t].block);
    free(lanes[t].size);
  }
  free(lanes);
  size_t total = threads * rounds * ops;
  printf("larson: threads=%zu ops=%zu secs=%.4f mops_per_sec=%.3f check=ok\n", threads, total, secs,
         (double)total / secs / 1e6);
  return 0;
}
