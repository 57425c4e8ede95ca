/* xmalloc — producer/consumer after Lever and Boreham's xmalloc-test.
 *
 * PAIRS pairs of threads; in each, the producer allocates batches of BATCH
 * blocks of MIN..MAX bytes and hands them to its consumer, which checks and
 * frees them.  Every free is a cross-thread free of a block the freeing
 * thread never allocates: an allocator that returns such blocks only to the
 * owner's lists must move them back efficiently, and one that keeps them
 * where they were freed grows without bound (peak RSS shows it).
 *
 * The hand-over is a single-producer single-consumer ring of QDEPTH batches.
 * A side that finds the ring full (or empty) spins briefly, then sleeps on a
 * condition variable until the other side moves: sched_yield would hand the
 * core to unrelated processes on a busy machine and make the time depend on
 * them.  With QDEPTH batches of slack, waits are rare while both threads run.
 */
#include "common.h"  /* first: it defines _GNU_SOURCE */

#include <stdatomic.h>

#define QDEPTH 16    /* batches in flight per pair: bounds the live memory */
#define SPINS 2000   /* pause instructions before sleeping: ~0.1 ms */

typedef struct {
  _Alignas(64) _Atomic size_t head;  /* next slot the consumer reads */
  _Alignas(64) _Atomic size_t tail;  /* next slot the producer writes */
  _Alignas(64) void **ring[QDEPTH];
  _Atomic int sleepers;              /* threads in pthread_cond_wait below */
  pthread_mutex_t lock;              /* only for sleeping */
  pthread_cond_t wake;
  size_t batches, batch, min, max;
  uint64_t seed;
} pair_t;

typedef struct { pair_t *pair; int producer; } role_t;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  __asm__ volatile("" ::: "memory");
#endif
}

/* Memory orders: head, tail and sleepers are all seq_cst.  head/tail need
 * acquire/release at least (a batch's contents are published with tail; the
 * consumer's last read of a slot happens before head lets the producer
 * reuse it).  The sleep protocol needs the total order: a waiter increments
 * sleepers and then re-reads head/tail, an updater stores head/tail and then
 * reads sleepers; seq_cst guarantees one of them sees the other's write, so
 * either the waiter does not sleep or the updater wakes it (the waiter holds
 * the lock from the increment until pthread_cond_wait releases it). */
static int can_put(pair_t *q) { return atomic_load(&q->tail) - atomic_load(&q->head) < QDEPTH; }
static int can_take(pair_t *q) { return atomic_load(&q->tail) != atomic_load(&q->head); }

static void wait_for(pair_t *q, int (*ready)(pair_t *)) {
  for (int i = 0; i < SPINS; i++) {
    if (ready(q)) return;
    cpu_relax();
  }
  pthread_mutex_lock(&q->lock);
  atomic_fetch_add(&q->sleepers, 1);
  while (!ready(q)) pthread_cond_wait(&q->wake, &q->lock);
  atomic_fetch_sub(&q->sleepers, 1);
  pthread_mutex_unlock(&q->lock);
}

static void wake_partner(pair_t *q) {
  if (atomic_load(&q->sleepers)) {
    pthread_mutex_lock(&q->lock);
    pthread_cond_broadcast(&q->wake);
    pthread_mutex_unlock(&q->lock);
  }
}

static void produce(pair_t *q) {
  bench_rng rng = bench_rng_seed(q->seed);
  for (size_t b = 0; b < q->batches; b++) {
    void **batch = bench_malloc((q->batch + 1) * sizeof(void *));
    for (size_t i = 0; i < q->batch; i++) {
      size_t n = bench_range(&rng, q->min, q->max);
      batch[i] = bench_malloc(n);
      bench_mark(batch[i], n);
    }
    batch[q->batch] = (void *)(uintptr_t)rng.s;  /* lets the consumer replay the sizes */
    wait_for(q, can_put);
    size_t t = atomic_load(&q->tail);
    q->ring[t % QDEPTH] = batch;
    atomic_store(&q->tail, t + 1);
    wake_partner(q);
  }
}

static void consume(pair_t *q) {
  bench_rng rng = bench_rng_seed(q->seed);
  for (size_t b = 0; b < q->batches; b++) {
    wait_for(q, can_take);
    size_t h = atomic_load(&q->head);
    void **batch = q->ring[h % QDEPTH];
    atomic_store(&q->head, h + 1);
    wake_partner(q);
    for (size_t i = 0; i < q->batch; i++) {
      size_t n = bench_range(&rng, q->min, q->max);
      bench_verify(batch[i], n);
      free(batch[i]);
    }
    if ((uint64_t)(uintptr_t)batch[q->batch] != rng.s) bench_die("batch out of order");
    free(batch);
  }
}

static void *role_main(void *arg) {
  role_t *r = arg;
  if (r->producer) produce(r->pair);
  else consume(r->pair);
  return NULL;
}

int main(int argc, char **argv) {
  size_t a[5] = {1, 20000, 100, 16, 512};
  bench_args(argc, argv, "xmalloc", "[PAIRS BATCHES BATCH MIN MAX]", 5, a);
  size_t pairs = a[0];
  if (!pairs || !a[2] || a[3] > a[4]) bench_die("need PAIRS>0, BATCH>0, MIN<=MAX");

  pair_t *q = aligned_alloc(64, pairs * sizeof *q);
  role_t *roles = bench_malloc(2 * pairs * sizeof *roles);
  if (!q) bench_die("out of memory");
  for (size_t p = 0; p < pairs; p++) {
    memset(&q[p], 0, sizeof q[p]);
    pthread_mutex_init(&q[p].lock, NULL);
    pthread_cond_init(&q[p].wake, NULL);
    q[p].batches = a[1], q[p].batch = a[2], q[p].min = a[3], q[p].max = a[4], q[p].seed = p + 1;
    roles[2 * p] = (role_t){&q[p], 1};
    roles[2 * p + 1] = (role_t){&q[p], 0};
  }
  double t0 = bench_now();
  bench_threads(2 * pairs, role_main, roles, sizeof *roles);
  double secs = bench_now() - t0;
  free(roles);
  free(q);
  size_t total = pairs * a[1] * a[2];
  printf("xmalloc: threads=%zu ops=%zu secs=%.4f mops_per_sec=%.3f check=ok\n", 2 * pairs, total, secs,
         (double)total / secs / 1e6);
  return 0;
}
