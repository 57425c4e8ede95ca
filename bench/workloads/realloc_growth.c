/* realloc-growth — buffers that grow by realloc, as string builders,
 * vectors and read buffers do.
 *
 * Each of THREADS threads keeps BUFFERS buffers and makes OPS appends: pick a
 * buffer, grow it with realloc by 1..64 bytes (63 times in 64) or by half its
 * length (1 in 64, like a vector's doubling), and write the new bytes.  Each
 * buffer's life ends at a limit drawn log-uniformly from 256 B..MAXSIZE (most
 * strings stay small, a few grow large): then it is checked in full, freed,
 * and starts again empty.  An allocator that grows blocks in place, or moves them with
 * few copies (size classes that leave room, mremap for large blocks), wins.
 *
 * Content check: byte i of buffer b is pattern(b, i); after every realloc
 * the last old byte is checked, at the end of a buffer's life a sample.
 */
#include "common.h"

typedef struct {
  size_t ops, buffers, maxsize;
  uint64_t seed;
} job_t;

typedef struct { unsigned char *p; size_t len, limit, id; } buffer_t;

/* Period 256 so that the write and check loops vectorise: the pattern work
 * should not hide the allocator's. */
static inline unsigned char pattern(size_t id, size_t i) { return (unsigned char)(i * 131 + id * 7); }

static size_t random_limit(bench_rng *r, size_t maxsize) {
  size_t top = 8;
  while (((size_t)2 << top) <= maxsize) top++;  /* 2^top <= maxsize < 2^(top+1) */
  if (top == 8 && maxsize < 256) return maxsize;
  size_t lo = (size_t)1 << bench_range(r, 8, top);
  size_t hi = 2 * lo - 1 < maxsize ? 2 * lo - 1 : maxsize;
  return bench_range(r, lo, hi);
}

/* Every 61st byte (a prime stride, so every offset within a cache line and
 * a page is sampled over time) and the last: a cheap but thorough check. */
static void check_all(const buffer_t *b) {
  unsigned char diff = 0;
  for (size_t i = 0; i < b->len; i += 61) diff |= (unsigned char)(b->p[i] ^ pattern(b->id, i));
  if (b->len) diff |= (unsigned char)(b->p[b->len - 1] ^ pattern(b->id, b->len - 1));
  if (diff) bench_die("buffer of %zu bytes lost content", b->len);
}

static void *thread_main(void *arg) {
  job_t *j = arg;
  bench_rng r = bench_rng_seed(j->seed);
  buffer_t *buf = calloc(j->buffers, sizeof *buf);
  if (!buf) bench_die("out of memory");
  size_t next_id = 0;
  for (size_t k = 0; k < j->buffers; k++) buf[k] = (buffer_t){NULL, 0, random_limit(&r, j->maxsize), next_id++};
  for (size_t op = 0; op < j->ops; op++) {
    buffer_t *b = &buf[bench_range(&r, 0, j->buffers - 1)];
    size_t grow = (bench_rand(&r) & 63) ? bench_range(&r, 1, 64) : b->len / 2 + 1;
    if (b->len + grow > b->limit) {
      check_all(b);
      free(b->p);
      *b = (buffer_t){NULL, 0, random_limit(&r, j->maxsize), next_id++};
      continue;
    }
    unsigned char *p = realloc(b->p, b->len + grow);
    if (!p) bench_die("realloc(%zu) failed", b->len + grow);
    if (b->len && p[b->len - 1] != pattern(b->id, b->len - 1)) bench_die("realloc lost content");
    for (size_t i = b->len; i < b->len + grow; i++) p[i] = pattern(b->id, i);
    b->p = p;
    b->len += grow;
  }
  for (size_t k = 0; k < j->buffers; k++) {
    check_all(&buf[k]);
    free(buf[k].p);
  }
  free(buf);
  return NULL;
}

int main(int argc, char **argv) {
  size_t a[4] = {1, 1000000, 256, 1 << 20};
  bench_args(argc, argv, "realloc-growth", "[THREADS OPS BUFFERS MAXSIZE]", 4, a);
  size_t threads = a[0];
  if (!threads || !a[2] || a[3] < 2) bench_die("need THREADS>0, BUFFERS>0, MAXSIZE>1");
  job_t *jobs = bench_malloc(threads * sizeof *jobs);
  for (size_t t = 0; t < threads; t++) jobs[t] = (job_t){a[1], a[2], a[3], t + 1};
  double t0 = bench_now();
  bench_threads(threads, thread_main, jobs, sizeof *jobs);
  double secs = bench_now() - t0;
  free(jobs);
  size_t total = threads * a[1];
  printf("realloc-growth: threads=%zu ops=%zu secs=%.4f mops_per_sec=%.3f check=ok\n", threads, total, secs,
         (double)total / secs / 1e6);
  return 0;
}
