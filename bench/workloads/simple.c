/* simple — tight malloc/free loops (after glibc's bench-malloc-simple and
 * bench-malloc-thread): the fast path and nothing else.
 *
 * Each of THREADS threads, ITERATIONS times, for each size in SIZES:
 *   - pairs: BATCH times malloc one block, write it, free it (the block
 *     comes straight back: the best case of any thread cache);
 *   - batch: malloc BATCH blocks, write each, then free them in the order
 *     they were allocated (FIFO, so the free list is walked and refilled).
 * Every thread does the same work, so with a perfect allocator the wall time
 * does not depend on THREADS up to the number of cores: bench/run compares
 * the 1-thread and the N-thread runs to measure scaling.
 */
#include "common.h"

static const size_t SIZES[] = {16, 32, 48, 64, 96, 128, 256, 512, 1024};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])

typedef struct { size_t iterations, batch; } job_t;

static void *thread_main(void *arg) {
  job_t *j = arg;
  void **v = bench_malloc(j->batch * sizeof(void *));
  for (size_t it = 0; it < j->iterations; it++)
    for (size_t s = 0; s < NSIZES; s++) {
      size_t n = SIZES[s];
      for (size_t i = 0; i < j->batch; i++) {
        unsigned char *p = bench_malloc(n);
        p[0] = (unsigned char)i;
        bench_escape(p);
        if (p[0] != (unsigned char)i) bench_die("lost a byte");
        free(p);
      }
      for (size_t i = 0; i < j->batch; i++) {
        v[i] = bench_malloc(n);
        *(size_t *)v[i] = i;
      }
      for (size_t i = 0; i < j->batch; i++) {
        if (*(size_t *)v[i] != i) bench_die("block %zu of %zu bytes was corrupted", i, n);
        free(v[i]);
      }
    }
  free(v);
  return NULL;
}

int main(int argc, char **argv) {
  size_t a[3] = {1, 200, 1000};
  bench_args(argc, argv, "simple", "[THREADS ITERATIONS BATCH]", 3, a);
  size_t threads = a[0];
  if (!threads || !a[2]) bench_die("need THREADS>0, BATCH>0");
  job_t *jobs = bench_malloc(threads * sizeof *jobs);
  for (size_t t = 0; t < threads; t++) jobs[t] = (job_t){a[1], a[2]};
  double t0 = bench_now();
  bench_threads(threads, thread_main, jobs, sizeof *jobs);
  double secs = bench_now() - t0;
  free(jobs);
  size_t total = threads * a[1] * NSIZES * a[2] * 2;
  printf("simple: threads=%zu ops=%zu secs=%.4f mops_per_sec=%.3f malloc_from=%s check=ok\n", threads, total,
         secs, (double)total / secs / 1e6, bench_malloc_origin());
  return 0;
}
