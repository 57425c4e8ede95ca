/* mstress — mixed sizes, mixed lifetimes, cross-thread frees (in the spirit
 * of mimalloc's stress test and rpmalloc's rptest).
 *
 * THREADS lanes, each with SLOTS blocks, live through ROUNDS rounds; each
 * round is a fresh thread per lane (the one before has exited, so its memory
 * must be reclaimed) that makes OPS operations:
 *   - 15/16: replace a slot's block with a new one of a random size;
 *   - 1/16:  swap a slot's block with one in a shared exchange array, so the
 *            block is later freed by whatever thread picks it up.
 * Sizes run from 16 B to 64 KiB, skewed to small as in real programs: 90 %
 * log-uniform in 16 B..1 KiB, 9 % in 1..16 KiB, 1 % in 16..64 KiB.
 * Lifetimes are mixed: 3/4 of the operations hit the first eighth of the
 * slots (short-lived blocks), the rest any slot (long-lived ones).  At the
 * end of a round the thread frees a random half of its blocks, so the heap
 * shrinks and grows again.
 *
 * Blocks carry their size in their first word and a tag in their last, so a
 * block met in the exchange array can be checked without knowing its origin.
 */
#include "common.h"  /* first: it defines _GNU_SOURCE */

#include <stdatomic.h>

#define EXCHANGE 1024  /* shared slots: enough that threads rarely collide */

static _Atomic(void *) exchange[EXCHANGE];

typedef struct {
  BENCH_OWN_LINE size_t rounds;
  size_t ops, slots;
  void **block;
  size_t allocs;
  bench_rng rng;
} lane_t;

static size_t random_size(bench_rng *r) {
  size_t p = bench_range(r, 0, 99), lo, hi;
  if (p < 90) {
    size_t e = bench_range(r, 4, 9);  /* 16 B .. 1 KiB, log-uniform */
    lo = (size_t)1 << e, hi = ((size_t)2 << e) - 1;
  } else if (p < 99) {
    lo = 1024, hi = 16 * 1024;
  } else {
    lo = 16 * 1024, hi = 64 * 1024;
  }
  return bench_range(r, lo, hi);
}

static void *new_block(bench_rng *r) {
  size_t n = random_size(r);
  uint64_t *p = bench_malloc(n);
  p[0] = n;
  uint64_t t = bench_tag(p, n);
  memcpy((char *)p + n - 8, &t, 8);
  return p;
}

static void free_block(void *p) {
  if (!p) return;
  size_t n = *(uint64_t *)p;
  uint64_t t;
  if (n < 16 || n > 64 * 1024) bench_die("block %p has a corrupted size word", p);
  memcpy(&t, (char *)p + n - 8, 8);
  if (t != bench_tag(p, n)) bench_die("block %p of %zu bytes was corrupted", p, n);
  free(p);
}

static void *round_main(void *arg) {
  lane_t *l = arg;
  bench_rng *r = &l->rng;
  size_t hot = l->slots / 8 ? l->slots / 8 : 1;
  for (size_t i = 0; i < l->ops; i++) {
    uint64_t x = bench_rand(r);
    size_t k = (x & 3) ? bench_range(r, 0, hot - 1) : bench_range(r, 0, l->slots - 1);
    if (((x >> 2) & 15) == 0) {
      /* acq_rel: we publish our block's contents and take ownership of the
       * block we receive, whose contents its last writer published. */
      size_t j = bench_range(r, 0, EXCHANGE - 1);
      l->block[k] = atomic_exchange_explicit(&exchange[j], l->block[k], memory_order_acq_rel);
    } else {
      free_block(l->block[k]);
      l->block[k] = new_block(r);
      l->allocs++;
    }
  }
  for (size_t k = 0; k < l->slots; k++)
    if (bench_rand(r) & 1) {
      free_block(l->block[k]);
      l->block[k] = NULL;
    }
  return NULL;
}

static void *lane_main(void *arg) {
  lane_t *l = arg;
  for (size_t i = 0; i < l->rounds; i++) bench_threads(1, round_main, l, 0);
  return NULL;
}

int main(int argc, char **argv) {
  size_t a[4] = {2, 10, 100000, 4000};
  bench_args(argc, argv, "mstress", "[THREADS ROUNDS OPS SLOTS]", 4, a);
  size_t threads = a[0];
  if (!threads || !a[3]) bench_die("need THREADS>0, SLOTS>0");
  lane_t *lanes = bench_lines(threads, sizeof *lanes);
  for (size_t t = 0; t < threads; t++) {
    lanes[t] = (lane_t){a[1], a[2], a[3], calloc(a[3], sizeof(void *)), 0, bench_rng_seed(t + 1)};
    if (!lanes[t].block) bench_die("out of memory");
  }
  double t0 = bench_now();
  bench_threads(threads, lane_main, lanes, sizeof *lanes);
  double secs = bench_now() - t0;
  size_t total = 0;
  for (size_t t = 0; t < threads; t++) {
    for (size_t k = 0; k < a[3]; k++) free_block(lanes[t].block[k]);
    free(lanes[t].block);
    total += lanes[t].allocs;
  }
  for (size_t j = 0; j < EXCHANGE; j++) free_block(atomic_load(&exchange[j]));
  free(lanes);
  printf("mstress: threads=%zu ops=%zu secs=%.4f mops_per_sec=%.3f check=ok\n", threads, total, secs,
         (double)total / secs / 1e6);
  return 0;
}
