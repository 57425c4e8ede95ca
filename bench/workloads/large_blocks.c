/* large-blocks — blocks of 1..32 MiB, as image, column and I/O buffers are.
 *
 * Each of THREADS threads keeps LIVE blocks and makes OPS replacements: free
 * a random block (after checking its tags), allocate MIN..MAX MiB (any byte
 * count in the range), and write one byte in every page of it, as a program
 * filling the buffer would touch it.  The cost is mostly in the kernel: an
 * allocator that maps and unmaps every block pays page faults and zeroing
 * each time; one that keeps some address space committed for reuse pays
 * less time and more RSS.  Both columns of the table matter here.
 */
#include "common.h"

#define MIB ((size_t)1 << 20)
#define PAGE 4096

typedef struct { size_t ops, live, min, max; uint64_t seed; } job_t;

static void *fill(bench_rng *r, const job_t *j, size_t *size) {
  size_t n = bench_range(r, j->min * MIB, j->max * MIB);
  unsigned char *p = bench_malloc(n);
  for (size_t i = PAGE; i + 8 < n; i += PAGE) p[i] = (unsigned char)i;
  bench_mark(p, n);
  *size = n;
  return p;
}

static void *thread_main(void *arg) {
  job_t *j = arg;
  bench_rng r = bench_rng_seed(j->seed);
  void **p = bench_malloc(j->live * sizeof *p);
  size_t *n = bench_malloc(j->live * sizeof *n);
  for (size_t k = 0; k < j->live; k++) p[k] = fill(&r, j, &n[k]);
  for (size_t op = 0; op < j->ops; op++) {
    size_t k = bench_range(&r, 0, j->live - 1);
    bench_verify(p[k], n[k]);
    if (n[k] > 2 * PAGE && ((unsigned char *)p[k])[PAGE] != (unsigned char)PAGE) bench_die("page content lost");
    free(p[k]);
    p[k] = fill(&r, j, &n[k]);
  }
  for (size_t k = 0; k < j->live; k++) {
    bench_verify(p[k], n[k]);
    free(p[k]);
  }
  free(p);
  free(n);
  return NULL;
}

int main(int argc, char **argv) {
  size_t a[5] = {1, 200, 4, 1, 32};
  bench_args(argc, argv, "large-blocks", "[THREADS OPS LIVE MIN_MIB MAX_MIB]", 5, a);
  size_t threads = a[0];
  if (!threads || !a[2] || !a[3] || a[3] > a[4]) bench_die("need THREADS>0, LIVE>0, 0<MIN_MIB<=MAX_MIB");
  job_t *jobs = bench_malloc(threads * sizeof *jobs);
  for (size_t t = 0; t < threads; t++) jobs[t] = (job_t){a[1], a[2], a[3], a[4], t + 1};
  double t0 = bench_now();
  bench_threads(threads, thread_main, jobs, sizeof *jobs);
  double secs = bench_now() - t0;
  free(jobs);
  size_t total = threads * (a[1] + a[2]);
  printf("large-blocks: threads=%zu ops=%zu secs=%.4f ops_per_sec=%.1f check=ok\n", threads, total, secs,
         (double)total / secs);
  return 0;
}
