/* cache_false_sharing.h — the loop shared by cache-scratch and cache-thrash
 * (after the Hoard benchmarks of Berger et al., 2000).
 *
 * Each thread, ITERATIONS times: allocate an OBJSIZE-byte object, write every
 * byte of it REPETITIONS times, read it back, free it.  The writes dominate;
 * they are fast only if no other thread's object shares the cache line.  An
 * allocator that gives threads objects from the same line (actively, by
 * carving one line for several threads, or passively, by reusing a block
 * that another thread freed into its local cache) makes every write a
 * cache-line transfer between cores.
 */
#ifndef KILN_BENCH_CACHE_FALSE_SHARING_H
#define KILN_BENCH_CACHE_FALSE_SHARING_H

#include "common.h"

typedef struct {
  size_t iterations, objsize, repetitions;
  void *inherited;  /* cache-scratch: a block allocated by the main thread, freed first */
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  free(w->inherited);
  for (size_t i = 0; i < w->iterations; i++) {
    volatile unsigned char *obj = bench_malloc(w->objsize);
    for (size_t r = 0; r < w->repetitions; r++)
      for (size_t k = 0; k < w->objsize; k++) obj[k] = (unsigned char)(k + r);
    for (size_t k = 0; k < w->objsize; k++)
      if (obj[k] != (unsigned char)(k + w->repetitions - 1)) bench_die("object content lost");
    free((void *)obj);
  }
  return NULL;
}

/* scratch: hand each thread a block the main thread allocated (adjacent
 * blocks, so on one cache line), which the thread frees before its loop. */
static int cache_false_sharing_main(int argc, char **argv, const char *name, int scratch) {
  size_t a[4] = {2, 1000, 8, 20000};
  bench_args(argc, argv, name, "[THREADS ITERATIONS OBJSIZE REPETITIONS]", 4, a);
  size_t threads = a[0];
  if (!threads || !a[2]) bench_die("need THREADS>0, OBJSIZE>0");
  worker_t *w = bench_malloc(threads * sizeof *w);
  for (size_t t = 0; t < threads; t++)
    w[t] = (worker_t){a[1], a[2], a[3], scratch ? bench_malloc(a[2]) : NULL};
  double t0 = bench_now();
  bench_threads(threads, worker_main, w, sizeof *w);
  double secs = bench_now() - t0;
  free(w);
  size_t total = threads * a[1];
  printf("%s: threads=%zu ops=%zu secs=%.4f writes_per_ns=%.3f check=ok\n", name, threads, total, secs,
         (double)(total * a[2] * a[3]) / secs / 1e9);
  return 0;
}

#endif
