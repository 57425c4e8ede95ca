/* toolkit/arena_pool.c — the arena and the pool against malloc/free for the
 * same work (bench/run runs it as kiln-toolkit after the micro-benchmarks).
 *
 *   arena   rounds of N allocations of 16..256 bytes (a parse tree, a frame's
 *           scratch), each touched once, then all released: malloc frees
 *           them one by one, the arena resets once.
 *   pool    a working set of W 64-byte objects; each op frees a random one
 *           and allocates its replacement (an object pool's life).
 *   pool/4T the same with 4 threads sharing one pool, each with its own
 *           working set (the pool's lock under contention) against malloc
 *           from 4 threads.
 *
 * Columns: operations per second (an operation = one allocation and its
 * share of the release), and the ratio to kiln_malloc/kiln_free.  glibc's
 * malloc is timed too when it can be found (dlsym RTLD_NEXT).  Each figure is
 * the best of 3 runs.  Usage: kiln-toolkit [scale], scale 1 by default
 * (about a second in all on a 2-core machine); output is one line per case,
 * "name ops/s ratio", easy to parse.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kiln.h"

typedef struct mallocator_s {
  const char *name;
  void *(*alloc)(size_t);
  void (*free)(void *);
} mallocator_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint32_t xorshift(uint32_t *s) {
  *s ^= *s << 13; *s ^= *s >> 17; *s ^= *s << 5;
  return *s;
}

static volatile uintptr_t sink; /* keeps the work from being optimised away */

enum { N = 10000, W = 10000, THREADS = 4 };
static void *ptrs[N];
static unsigned scale = 1;

/* --- arena vs malloc ----------------------------------------------------- */

static double arena_case_malloc(const mallocator_t *m) {
  uint32_t s = 1;
  unsigned rounds = 200 * scale;
  double t = now_s();
  for (unsigned r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++) {
      size_t size = 16 + (xorshift(&s) & 0xf0);
      char *p = m->alloc(size);
      p[0] = (char)i;
      ptrs[i] = p;
    }
    for (int i = 0; i < N; i++) m->free(ptrs[i]);
  }
  return (double)rounds * N / (now_s() - t);
}

static double arena_case_arena(unsigned flags) {
  uint32_t s = 1;
  unsigned rounds = 200 * scale;
  kiln_arena_t *arena = kiln_arena_new(0, 0, flags);
  double t = now_s();
  for (unsigned r = 0; r < rounds; r++) {
    for (int i = 0; i < N; i++) {
      size_t size = 16 + (xorshift(&s) & 0xf0);
      char *p = kiln_arena_alloc(arena, size, 0);
      p[0] = (char)i;
      ptrs[i] = p;
    }
    sink = (uintptr_t)ptrs[N - 1];
    kiln_arena_reset(arena);
  }
  double rate = (double)rounds * N / (now_s() - t);
  kiln_arena_destroy(arena);
  return rate;
}

/* --- pool vs malloc -------------------------------------------------------- */

typedef struct churn_s {
  const mallocator_t *m; /* NULL: use the pool */
  kiln_pool_t *pool;
  unsigned ops;
  uint32_t seed;
  double seconds;
} churn_t;

static void *churn(void *arg) {
  churn_t *c = arg;
  void **set = kiln_malloc(W * sizeof *set);
  uint32_t s = c->seed;
  for (int i = 0; i < W; i++) set[i] = c->m ? c->m->alloc(64) : kiln_pool_alloc(c->pool);
  double t = now_s();
  for (unsigned k = 0; k < c->ops; k++) {
    uint32_t i = xorshift(&s) % W;
    if (c->m) {
      c->m->free(set[i]);
      set[i] = c->m->alloc(64);
    } else {
      kiln_pool_free(c->pool, set[i]);
      set[i] = kiln_pool_alloc(c->pool);
    }
    ((char *)set[i])[0] = (char)k;
  }
  c->seconds = now_s() - t;
  for (int i = 0; i < W; i++) {
    if (c->m) c->m->free(set[i]);
    else kiln_pool_free(c->pool, set[i]);
  }
  kiln_free(set);
  return NULL;
}

static double pool_case(const mallocator_t *m, int threads) {
  kiln_pool_t *pool = m ? NULL : kiln_pool_new(64, 0);
  churn_t c[THREADS];
  pthread_t tid[THREADS];
  for (int i = 0; i < threads; i++) {
    c[i] = (churn_t){m, pool, 2000000u * scale / (unsigned)threads, (uint32_t)(i + 1) * 2654435761u, 0};
    pthread_create(&tid[i], NULL, churn, &c[i]);
  }
  double ops = 0, slowest = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(tid[i], NULL);
    ops += c[i].ops;
    if (c[i].seconds > slowest) slowest = c[i].seconds;
  }
  if (pool) kiln_pool_destroy(pool);
  return ops / slowest;
}

/* --- driver ----------------------------------------------------------------- */

static double best3_arena_m(const mallocator_t *m) {
  double b = 0;
  for (int i = 0; i < 3; i++) { double r = arena_case_malloc(m); if (r > b) b = r; }
  return b;
}
static double best3_arena(unsigned flags) {
  double b = 0;
  for (int i = 0; i < 3; i++) { double r = arena_case_arena(flags); if (r > b) b = r; }
  return b;
}
static double best3_pool(const mallocator_t *m, int threads) {
  double b = 0;
  for (int i = 0; i < 3; i++) { double r = pool_case(m, threads); if (r > b) b = r; }
  return b;
}

static void row(const char *name, double rate, double base) {
  printf("%-34s %12.0f ops/s  %6.2fx\n", name, rate, rate / base);
}

int main(int argc, char **argv) {
  if (argc > 1) scale = (unsigned)atoi(argv[1]) > 0 ? (unsigned)atoi(argv[1]) : 1;
  mallocator_t kiln = {"kiln_malloc", kiln_malloc, kiln_free};
  mallocator_t libc = {"glibc malloc", NULL, NULL};
  *(void **)&libc.alloc = dlsym(RTLD_NEXT, "malloc");
  *(void **)&libc.free = dlsym(RTLD_NEXT, "free");
  bool have_libc = libc.alloc != NULL && libc.free != NULL && (void *)libc.alloc != (void *)kiln_malloc;

  printf("# kiln-toolkit (scale %u): ops/s and ratio to kiln_malloc/kiln_free, best of 3\n", scale);
  double base = best3_arena_m(&kiln);
  row("arena-work  kiln_malloc/free", base, base);
  if (have_libc) row("arena-work  glibc malloc/free", best3_arena_m(&libc), base);
  row("arena-work  kiln_arena (reset)", best3_arena(KILN_ARENA_DEFAULT), base);
  row("arena-work  kiln_arena THREAD_SAFE", best3_arena(KILN_ARENA_THREAD_SAFE), base);

  base = best3_pool(&kiln, 1);
  row("pool-work   kiln_malloc/free", base, base);
  if (have_libc) row("pool-work   glibc malloc/free", best3_pool(&libc, 1), base);
  row("pool-work   kiln_pool", best3_pool(NULL, 1), base);

  base = best3_pool(&kiln, THREADS);
  row("pool-work/4T kiln_malloc/free", base, base);
  if (have_libc) row("pool-work/4T glibc malloc/free", best3_pool(&libc, THREADS), base);
  row("pool-work/4T kiln_pool (shared)", best3_pool(NULL, THREADS), base);
  return 0;
}
