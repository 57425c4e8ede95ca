/* common.h — what every workload shares: arguments, a fast RNG, block tags,
 * threads, clocks, RSS and the one result line.
 *
 * Workloads call plain malloc/free/realloc so that LD_PRELOAD decides which
 * allocator runs; nothing here allocates except where a workload asks it to.
 *
 * The result line (stdout, last line) is what bench/run parses:
 *     <name>: key=value key=value ...
 * Keys every workload prints: threads, ops (allocations made), secs (wall
 * time of the measured part), check=ok.  Any failure prints one line on
 * stderr and exits with status 2, so a broken allocator is never "fast".
 */
#ifndef KILN_BENCH_COMMON_H
#define KILN_BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* dladdr */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *bench_name = "workload";

__attribute__((noreturn, format(printf, 1, 2)))
static inline void bench_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", bench_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

/* Positional arguments, all unsigned integers, each with a default; the
 * usage line names them.  "-h" prints it. */
static inline void bench_args(int argc, char **argv, const char *name, const char *usage,
                       size_t n, size_t *out) {
  bench_name = name;
  if ((size_t)argc - 1 > n || (argc > 1 && argv[1][0] == '-')) {
    fprintf(stderr, "usage: %s %s\n", name, usage);
    exit(argc > 1 && strcmp(argv[1], "-h") == 0 ? 0 : 2);
  }
  for (int i = 1; i < argc; i++) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(argv[i], &end, 10);
    if (errno || *end || end == argv[i]) bench_die("argument %d is not a number: %s", i, argv[i]);
    out[i - 1] = (size_t)v;
  }
}

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: a few cycles per number, so the RNG does not hide the
 * allocator's cost.  Seeds go through splitmix64 so nearby seeds diverge. */
typedef struct { uint64_t s; } bench_rng;

static inline bench_rng bench_rng_seed(uint64_t seed) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (bench_rng){z ? z : 1};
}

static inline uint64_t bench_rand(bench_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [lo, hi] (hi - lo < 2^32; the bias of the multiply-shift is
 * below 2^-32, invisible here). */
static inline size_t bench_range(bench_rng *r, size_t lo, size_t hi) {
  uint64_t span = (uint64_t)(hi - lo) + 1;
  return lo + (size_t)(((bench_rand(r) >> 32) * span) >> 32);
}

/* A tag derived from the block's address and size, written into its first
 * and last 8 bytes by bench_mark and checked by bench_verify before free: an
 * allocator that hands out overlapping blocks, or loses content across
 * realloc or threads, is caught, and the compiler cannot drop the pairs. */
static inline uint64_t bench_tag(const void *p, size_t size) {
  return ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) ^ size;
}

static inline void bench_mark(void *p, size_t size) {
  uint64_t t = bench_tag(p, size);
  if (size >= 8) memcpy(p, &t, 8);
  else if (size) memset(p, (int)(t & 0xff), size);
  if (size >= 16) {
    t = ~t;
    memcpy((char *)p + size - 8, &t, 8);
  }
}

static inline void bench_verify(const void *p, size_t size) {
  uint64_t t = bench_tag(p, size), a, b = ~t;
  if (size >= 8) memcpy(&a, p, 8);
  else a = t, b = ~t;  /* too small to tag both ends; check one byte */
  if (size >= 16) memcpy(&b, (const char *)p + size - 8, 8);
  if (a != t || b != ~t || (size && size < 8 && *(const unsigned char *)p != (t & 0xff)))
    bench_die("block %p of %zu bytes was corrupted", p, size);
}

static inline void *bench_malloc(size_t size) {
  void *p = malloc(size);
  if (!p) bench_die("malloc(%zu) failed", size);
  return p;
}

/* Per-thread state that its thread writes on every operation (a random
 * generator, counters) must not share a cache line with another thread's:
 * such an array's element type starts with BENCH_OWN_LINE, and the array
 * comes from bench_lines.  Otherwise the threads bounce the line between
 * their cores on every operation, which costs more than the allocator's
 * work and varies with where the allocator placed the array (larson with 2
 * threads ran 2.5x the CPU time per operation of 1 thread, for every
 * allocator; Kiln's hardened mode, which places blocks at random, ran 0.5x
 * to 1.7x its fast mode from run to run). */
#define BENCH_LINE 64
#define BENCH_OWN_LINE _Alignas(BENCH_LINE)
static inline void *bench_lines(size_t count, size_t size) {
  size_t bytes = (count * size + BENCH_LINE - 1) / BENCH_LINE * BENCH_LINE;
  void *p = aligned_alloc(BENCH_LINE, bytes);
  if (!p) bench_die("aligned_alloc(%d, %zu) failed", BENCH_LINE, bytes);
  return p;
}

/* Start n threads running fn(&args[i * stride]) and join them all. */
static inline void bench_threads(size_t n, void *(*fn)(void *), void *args, size_t stride) {
  pthread_t *t = calloc(n, sizeof *t);
  if (!t) bench_die("out of memory for %zu threads", n);
  for (size_t i = 0; i < n; i++) {
    int e = pthread_create(&t[i], NULL, fn, (char *)args + i * stride);
    if (e) bench_die("pthread_create: %s", strerror(e));
  }
  for (size_t i = 0; i < n; i++) pthread_join(t[i], NULL);
  free(t);
}

/* Resident set size in bytes, from /proc/self/statm (second field, pages).
 * read(2) on a stack buffer: no stdio, so no allocation. */
static inline size_t bench_rss(void) {
  char buf[128];
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) bench_die("cannot open /proc/self/statm: %s", strerror(errno));
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) bench_die("cannot read /proc/self/statm");
  buf[n] = 0;
  unsigned long size = 0, resident = 0;
  if (sscanf(buf, "%lu %lu", &size, &resident) != 2) bench_die("bad /proc/self/statm: %s", buf);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* The file of the shared object that supplies this process's malloc: lets
 * bench/run check that LD_PRELOAD really put the allocator under test in
 * place (a library that does not export malloc would silently measure glibc). */
static inline const char *bench_malloc_origin(void) {
  Dl_info info;
  void *(*volatile fn)(size_t) = malloc;  /* the address the dynamic linker bound */
  return dladdr((void *)fn, &info) && info.dli_fname ? info.dli_fname : "unknown";
}

/* Keep a value alive without a volatile store in the hot loop. */
static inline void bench_escape(void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

#endif
