/* memory-return — does freed memory go back to the OS, and how soon?
 *
 * Allocate TOTAL_MIB in blocks of BLOCK_KIB and touch every page, free them
 * all, then wait WAIT_MS doing nothing, sampling the resident set size
 * (/proc/self/statm) every 10 ms.  malloc_trim is deliberately NOT called:
 * this measures the allocator as a program gets it.  Reports RSS at the
 * start, at the peak, right after the frees and at the end of the wait, and
 * return_ms: the first sample within THRESHOLD_MIB of the start (-1: never).
 */
#include "common.h"

#define MIB ((size_t)1 << 20)
#define PAGE 4096

int main(int argc, char **argv) {
  size_t a[4] = {1024, 256, 1000, 64};
  bench_args(argc, argv, "memory-return", "[TOTAL_MIB BLOCK_KIB WAIT_MS THRESHOLD_MIB]", 4, a);
  size_t total = a[0] * MIB, block = a[1] * 1024, wait_ms = a[2], threshold = a[3] * MIB;
  if (!block || block > total) bench_die("need 0 < BLOCK_KIB*1024 <= TOTAL_MIB*1MiB");
  size_t count = total / block;
  void **v = bench_malloc(count * sizeof *v);
  size_t start = bench_rss();

  double t0 = bench_now();
  for (size_t i = 0; i < count; i++) {
    unsigned char *p = bench_malloc(block);
    for (size_t off = 0; off < block; off += PAGE) p[off] = (unsigned char)(i + off / PAGE);
    bench_mark(p, block);
    v[i] = p;
  }
  size_t peak = bench_rss();
  for (size_t i = 0; i < count; i++) {
    bench_verify(v[i], block);
    if (block > PAGE && ((unsigned char *)v[i])[PAGE] != (unsigned char)(i + 1)) bench_die("page content lost");
    free(v[i]);
  }
  double secs = bench_now() - t0;
  size_t freed = bench_rss();

  long return_ms = freed <= start + threshold ? 0 : -1;
  size_t now = freed;
  double w0 = bench_now();
  for (size_t ms = 10; ms <= wait_ms; ms += 10) {
    double until = w0 + (double)ms / 1000;
    for (double d; (d = until - bench_now()) > 0;) {
      struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
      nanosleep(&ts, NULL);
    }
    now = bench_rss();
    if (return_ms < 0 && now <= start + threshold) return_ms = (long)ms;
  }
  free(v);
  printf("memory-return: threads=1 ops=%zu secs=%.4f rss_start_mib=%.1f rss_peak_mib=%.1f "
         "rss_freed_mib=%.1f rss_wait_mib=%.1f wait_ms=%zu return_ms=%ld check=ok\n",
         count, secs, (double)start / MIB, (double)peak / MIB, (double)freed / MIB, (double)now / MIB, wait_ms,
         return_ms);
  return 0;
}
