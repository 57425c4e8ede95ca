/* test_pool.c — the fixed-size pool (src/pool.c): every function, its errors,
 * page return, misuse reports, and 4 threads sharing one pool with frees
 * crossing threads.
 *
 * Bookkeeping uses static arrays and stack buffers only. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_support.h"

#include "kiln.h"

#define KiB ((size_t)1 << 10)
/* The pool's page for blocks up to 8 KiB (src/pool.c, POOL_PAGE_MIN). */
#define POOL_PAGE ((size_t)64 << 10)




/* --- creation ------------------------------------------------------------- */

static void test_new_errors(void **state) {
  (void)state;
  struct { size_t size, align; int err; } bad[] = {
    {0, 16, EINVAL}, {0, 0, EINVAL}, {16, 3, EINVAL}, {16, 24, EINVAL}, {16, (size_t)-1, EINVAL},
    {SIZE_MAX, 16, ENOMEM}, {(size_t)PTRDIFF_MAX, 16, ENOMEM}, {16, (size_t)1 << 63, ENOMEM},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    assert_null(kiln_pool_new(bad[i].size, bad[i].align));
    assert_int_equal(errno, bad[i].err);
  }
}

static void test_new_is_lazy(void **state) {
  (void)state;
  kiln_pool_t *pool = kiln_pool_new(24, 0); /* alignment 0 means 16 */
  assert_non_null(pool);
  assert_int_equal(kiln_pool_in_use(pool), 0);
  assert_int_equal(kiln_pool_capacity_bytes(pool), 0);
  void *p = kiln_pool_alloc(pool);
  assert_non_null(p);
  assert_true(is_aligned(p, 16));
  assert_int_equal(kiln_pool_in_use(pool), 1);
  assert_int_equal(kiln_pool_capacity_bytes(pool), POOL_PAGE);
  kiln_pool_free(pool, p);
  kiln_pool_free(pool, NULL); /* no-op */
  assert_int_equal(kiln_pool_in_use(pool), 0);
  assert_int_equal(kiln_pool_capacity_bytes(pool), POOL_PAGE); /* kept: hysteresis */
  kiln_pool_destroy(pool);
  kiln_pool_destroy(NULL); /* no-op */
}

/* Sizes and alignments up to 4096: blocks are aligned, disjoint and keep
 * their contents. */
static void test_sizes_and_alignment(void **state) {
  (void)state;
  enum { N = 64 };
  static uint8_t *blocks[N];
  size_t sizes[] = {1, 8, 16, 17, 24, 100, 1000, 4096, 5000, 100000};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
    for (size_t align = 1; align <= 4096; align <<= 1) {
      kiln_pool_t *pool = kiln_pool_new(sizes[s], align);
      assert_non_null(pool);
      size_t stride = sizes[s];
      for (int i = 0; i < N; i++) {
        blocks[i] = kiln_pool_alloc(pool);
        assert_non_null(blocks[i]);
        assert_true(is_aligned(blocks[i], align < 16 ? 16 : align));
        memset(blocks[i], i, sizes[s]);
        if (i > 0) {
          size_t d = blocks[i] > blocks[i - 1] ? (size_t)(blocks[i] - blocks[i - 1])
                                               : (size_t)(blocks[i - 1] - blocks[i]);
          if (d < stride) fail_msg("blocks %p and %p overlap", (void *)blocks[i], (void *)blocks[i - 1]);
        }
      }
      for (int i = 0; i < N; i++)
        for (size_t j = 0; j < sizes[s]; j++)
          if (blocks[i][j] != (uint8_t)i) fail_msg("block %d of size %zu changed", i, sizes[s]);
      assert_int_equal(kiln_pool_in_use(pool), N);
      for (int i = 0; i < N; i++) kiln_pool_free(pool, blocks[i]);
      assert_int_equal(kiln_pool_in_use(pool), 0);
      kiln_pool_destroy(pool);
    }
  }
}

/* The most recently freed block is the next one handed out (LIFO: cache-hot). */
static void test_reuse(void **state) {
  (void)state;
  kiln_pool_t *pool = kiln_pool_new(48, 16);
  void *a = kiln_pool_alloc(pool), *b = kiln_pool_alloc(pool);
  kiln_pool_free(pool, a);
  assert_ptr_equal(kiln_pool_alloc(pool), a);
  kiln_pool_free(pool, b);
  kiln_pool_free(pool, a);
  assert_ptr_equal(kiln_pool_alloc(pool), a);
  assert_ptr_equal(kiln_pool_alloc(pool), b);
  kiln_pool_destroy(pool);
}

/* Fill several pages, free in a scrambled order checking the survivors:
 * empty pages go back to the OS, one is kept. */
static void test_pages_return(void **state) {
  (void)state;
  enum { N = 20000 }; /* 64-byte blocks: ~1000 a page, so ~20 pages */
  static uint64_t *blocks[N];
  kiln_pool_t *pool = kiln_pool_new(64, 0);
  for (int i = 0; i < N; i++) {
    blocks[i] = kiln_pool_alloc(pool);
    assert_non_null(blocks[i]);
    for (int j = 0; j < 8; j++) blocks[i][j] = (uint64_t)i * 8 + (uint64_t)j;
  }
  size_t pages = kiln_pool_capacity_bytes(pool) / POOL_PAGE;
  assert_true(pages >= N / (POOL_PAGE / 64) && pages <= N / (POOL_PAGE / 64) + 1);
  /* Free every other block: no page becomes empty, nothing is returned. */
  for (int i = 0; i < N; i += 2) kiln_pool_free(pool, blocks[i]);
  assert_int_equal(kiln_pool_capacity_bytes(pool) / POOL_PAGE, pages);
  assert_int_equal(kiln_pool_in_use(pool), N / 2);
  for (int i = 1; i < N; i += 2)
    for (int j = 0; j < 8; j++) assert_int_equal(blocks[i][j], (uint64_t)i * 8 + (uint64_t)j);
  /* Refill the holes: no new page is needed. */
  for (int i = 0; i < N; i += 2) {
    blocks[i] = kiln_pool_alloc(pool);
    for (int j = 0; j < 8; j++) blocks[i][j] = (uint64_t)i * 8 + (uint64_t)j;
  }
  assert_int_equal(kiln_pool_capacity_bytes(pool) / POOL_PAGE, pages);
  /* Free all, from a scrambled order (a stride coprime with N). */
  for (int k = 0; k < N; k++) {
    int i = (int)(((long)k * 7919) % N);
    for (int j = 0; j < 8; j++) assert_int_equal(blocks[i][j], (uint64_t)i * 8 + (uint64_t)j);
    kiln_pool_free(pool, blocks[i]);
  }
  assert_int_equal(kiln_pool_in_use(pool), 0);
  /* The thread's cache (at most 32 blocks, scattered here) still holds
   * their pages; trim gives them back. */
  assert_true(kiln_pool_capacity_bytes(pool) <= (1 + 32) * POOL_PAGE);
  kiln_pool_trim(pool);
  assert_int_equal(kiln_pool_in_use(pool), 0);
  assert_int_equal(kiln_pool_capacity_bytes(pool), POOL_PAGE); /* one empty page kept */
  /* The kept page serves the next round; new pages come as needed. */
  for (int i = 0; i < N; i++) assert_non_null(blocks[i] = kiln_pool_alloc(pool));
  assert_int_equal(kiln_pool_capacity_bytes(pool) / POOL_PAGE, pages);
  kiln_pool_destroy(pool); /* with every block live: all pages go at once */
}

/* Big blocks get bigger pages (at least 8 blocks each). */
static void test_big_blocks(void **state) {
  (void)state;
  kiln_pool_t *pool = kiln_pool_new(100 * KiB, 4096);
  uint8_t *p[20];
  for (int i = 0; i < 20; i++) {
    p[i] = kiln_pool_alloc(pool);
    assert_non_null(p[i]);
    assert_true(is_aligned(p[i], 4096));
    memset(p[i], i, 100 * KiB);
  }
  size_t cap = kiln_pool_capacity_bytes(pool);
  assert_true(cap >= 20 * 100 * KiB);
  assert_int_equal(cap, 2 * 1024 * KiB); /* 1 MiB pages of 10 blocks (>= 8, see pool.c) */
  for (int i = 0; i < 20; i++) {
    assert_int_equal(p[i][0], i);
    assert_int_equal(p[i][100 * KiB - 1], i);
    kiln_pool_free(pool, p[i]);
  }
  kiln_pool_destroy(pool);
}

/* The process-wide limit: a pool that needs a page gets NULL + ENOMEM and is
 * unchanged; blocks of pages it holds are still served. */
static void test_process_limit(void **state) {
  (void)state;
  kiln_pool_t *pool = kiln_pool_new(4096, 4096); /* 15 blocks a 64 KiB page */
  enum { N = 15 };
  void *blocks[N];
  for (int i = 0; i < N; i++) blocks[i] = kiln_pool_alloc(pool);
  size_t cap = kiln_pool_capacity_bytes(pool);
  assert_int_equal(cap, POOL_PAGE);
  size_t old = kiln_get_limit();
  kiln_set_limit(1);
  errno = 0;
  void *q = kiln_pool_alloc(pool); /* needs a new page */
  int err = errno;
  kiln_pool_free(pool, blocks[0]);
  void *r = kiln_pool_alloc(pool); /* fits the page it has */
  kiln_set_limit(old);
  assert_null(q);
  assert_int_equal(err, ENOMEM);
  assert_ptr_equal(r, blocks[0]);
  assert_int_equal(kiln_pool_in_use(pool), N);
  assert_int_equal(kiln_pool_capacity_bytes(pool), cap);
  assert_non_null(kiln_pool_alloc(pool)); /* recovers once the limit allows */
  kiln_pool_destroy(pool);
}

/* --- misuse ------------------------------------------------------------------ */

static void free_foreign_heap_block(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  (void)kiln_pool_alloc(pool);
  kiln_pool_free(pool, kiln_malloc(32));
}

static void free_stack_pointer(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  (void)kiln_pool_alloc(pool);
  char local[32];
  kiln_pool_free(pool, local);
}

static void free_other_pools_block(void) {
  kiln_pool_t *a = kiln_pool_new(32, 0), *b = kiln_pool_new(32, 0);
  (void)kiln_pool_alloc(a);
  kiln_pool_free(a, kiln_pool_alloc(b));
}

static void free_interior_pointer(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  char *p = kiln_pool_alloc(pool);
  kiln_pool_free(pool, p + 16);
}

static void free_uncarved_block(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  char *p = kiln_pool_alloc(pool);
  kiln_pool_free(pool, p + 32 * 200); /* in the page, never carved (a cache takes 16 at a time) */
}

static void free_cached_block(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  char *p = kiln_pool_alloc(pool);
  kiln_pool_free(pool, p + 32 * 2); /* carved into the thread's cache, never handed out */
}

static void double_free(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  void *p = kiln_pool_alloc(pool);
  (void)kiln_pool_alloc(pool);
  kiln_pool_free(pool, p);
  kiln_pool_free(pool, p);
}

static void double_free_after_flush(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  void *p = kiln_pool_alloc(pool), *q[100];
  for (int i = 0; i < 100; i++) q[i] = kiln_pool_alloc(pool);
  kiln_pool_free(pool, p);
  for (int i = 0; i < 100; i++) kiln_pool_free(pool, q[i]); /* p goes back to its page */
  kiln_pool_free(pool, p);
}

static void double_free_last(void) {
  kiln_pool_t *pool = kiln_pool_new(32, 0);
  void *p = kiln_pool_alloc(pool), *q = kiln_pool_alloc(pool);
  kiln_pool_free(pool, p);
  kiln_pool_free(pool, q);
  kiln_pool_free(pool, p); /* the page has no live block left */
}

static void test_bad_free(void **state) {
  (void)state;
  expect_abort(free_foreign_heap_block, "which is not a block of this pool");
  expect_abort(free_foreign_heap_block, "kiln: kiln_pool_free of 0x");
  expect_abort(free_stack_pointer, "which is not a block of this pool");
  expect_abort(free_other_pools_block, "which is not a block of this pool");
  expect_abort(free_interior_pointer, "which is not a block of this pool");
  expect_abort(free_uncarved_block, "which is not a block of this pool");
  expect_abort(free_cached_block, "which is already free (double free)");
  expect_abort(double_free, "double free");
  expect_abort(double_free_last, "double free");
  expect_abort(double_free_after_flush, "double free");
}

/* --- threads ------------------------------------------------------------------ */

/* Each of 4 threads allocates blocks, stamps them (owner, sequence, and a
 * filler), passes them to the next thread through a mailbox, and frees the
 * blocks it receives after checking the stamp: every block is allocated on
 * one thread and freed on another, while all four allocate and free at once. */
enum { THREADS = 4, ROUNDS = 50000, BOX = 256, BLOCK = 40 };
/* Under valgrind (light mode) a thread whose mailbox is full spins, and
 * valgrind's one-thread-at-a-time scheduling then moved about one mailbox
 * of blocks a minute: there, fewer rounds than a mailbox holds. */
static uint32_t rounds;

typedef struct stamp_s {
  uint32_t owner, seq;
  uint8_t fill[BLOCK - 8];
} stamp_t;

typedef struct mailbox_s {
  pthread_mutex_t lock;
  stamp_t *slots[BOX];
  size_t head, tail; /* tail - head blocks waiting */
} mailbox_t;

static mailbox_t boxes[THREADS];
static kiln_pool_t *shared_pool;
static size_t received[THREADS];
static size_t expected_seq[THREADS];

static bool box_put(mailbox_t *box, stamp_t *s) {
  pthread_mutex_lock(&box->lock);
  bool ok = box->tail - box->head < BOX;
  if (ok) box->slots[box->tail++ % BOX] = s;
  pthread_mutex_unlock(&box->lock);
  return ok;
}

static stamp_t *box_take(mailbox_t *box) {
  pthread_mutex_lock(&box->lock);
  stamp_t *s = box->head < box->tail ? box->slots[box->head++ % BOX] : NULL;
  pthread_mutex_unlock(&box->lock);
  return s;
}

static void check_and_free(int me, stamp_t *s) {
  uint32_t from = (uint32_t)((me + THREADS - 1) % THREADS);
  if (s->owner != from || s->seq != expected_seq[me])
    thread_fail("thread %d got block %p stamped %u/%u, expected %u/%zu", me, (void *)s, s->owner, s->seq, from,
             expected_seq[me]);
  for (size_t i = 0; i < sizeof s->fill; i++)
    if (s->fill[i] != (uint8_t)(s->seq + i)) thread_fail("block %p corrupted", (void *)s);
  expected_seq[me]++;
  received[me]++;
  kiln_pool_free(shared_pool, s);
}

static void *pool_worker(void *arg) {
  int me = (int)(intptr_t)arg;
  mailbox_t *out = &boxes[(me + 1) % THREADS], *in = &boxes[me];
  for (uint32_t seq = 0; seq < rounds; seq++) {
    stamp_t *s = kiln_pool_alloc(shared_pool);
    if (s == NULL) thread_fail("pool_alloc failed");
    s->owner = (uint32_t)me;
    s->seq = seq;
    for (size_t i = 0; i < sizeof s->fill; i++) s->fill[i] = (uint8_t)(seq + i);
    while (!box_put(out, s)) { /* the neighbour is behind: do its work for it */
      stamp_t *r = box_take(in);
      if (r != NULL) check_and_free(me, r);
    }
    stamp_t *r = box_take(in);
    if (r != NULL) check_and_free(me, r);
  }
  while (received[me] < rounds) {
    stamp_t *r = box_take(in);
    if (r != NULL) check_and_free(me, r);
  }
  return NULL;
}

static void test_threads_cross_free(void **state) {
  (void)state;
  rounds = light() ? BOX / 2 : ROUNDS;
  shared_pool = kiln_pool_new(BLOCK, 8);
  assert_non_null(shared_pool);
  pthread_t tid[THREADS];
  for (int i = 0; i < THREADS; i++) pthread_mutex_init(&boxes[i].lock, NULL);
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, pool_worker, (void *)(intptr_t)i), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(tid[i], NULL);
  for (int i = 0; i < THREADS; i++) assert_int_equal(received[i], rounds);
  assert_int_equal(kiln_pool_in_use(shared_pool), 0);
  kiln_pool_trim(shared_pool); /* the exited threads' caches */
  assert_int_equal(kiln_pool_capacity_bytes(shared_pool), POOL_PAGE); /* all but one page returned */
  kiln_pool_destroy(shared_pool);
}

/* 4 threads each allocate a batch, check nobody else got the same blocks
 * (each thread stamps its blocks, then re-reads them), free, repeat:
 * pages come and go under contention. */
static void *batch_worker(void *arg) {
  int me = (int)(intptr_t)arg;
  enum { BATCH = 3000 };
  static stamp_t *mine[THREADS][BATCH];
  for (int round = 0; round < 20; round++) {
    for (int i = 0; i < BATCH; i++) {
      stamp_t *s = kiln_pool_alloc(shared_pool);
      if (s == NULL) thread_fail("pool_alloc failed");
      s->owner = (uint32_t)me;
      s->seq = (uint32_t)(round * BATCH + i);
      mine[me][i] = s;
    }
    for (int i = 0; i < BATCH; i++)
      if (mine[me][i]->owner != (uint32_t)me || mine[me][i]->seq != (uint32_t)(round * BATCH + i))
        thread_fail("block %p handed out twice", (void *)mine[me][i]);
    for (int i = 0; i < BATCH; i++) kiln_pool_free(shared_pool, mine[me][i]);
  }
  return NULL;
}

static void test_threads_batches(void **state) {
  (void)state;
  shared_pool = kiln_pool_new(BLOCK, 0);
  pthread_t tid[THREADS];
  for (int i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, batch_worker, (void *)(intptr_t)i), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(tid[i], NULL);
  assert_int_equal(kiln_pool_in_use(shared_pool), 0);
  kiln_pool_trim(shared_pool); /* the exited threads' caches */
  assert_int_equal(kiln_pool_capacity_bytes(shared_pool), POOL_PAGE);
  kiln_pool_destroy(shared_pool);
}

/* More threads than the pool has caches (16), all at once, while another
 * thread trims in a loop: threads whose numbers are equal modulo 16 share
 * a cache and take it from each other (src/pool.c, POOL_STEAL_AFTER), and
 * every trim takes the caches from their owners in the middle of their
 * work.  No block may be handed to two threads, none may be lost. */
enum { SHARERS = 20, SHARE_ROUNDS = 300, SHARE_BATCH = 40 };
static _Atomic int sharers_running;

static void *share_worker(void *arg) {
  int me = (int)(intptr_t)arg;
  stamp_t *mine[SHARE_BATCH];
  int share_rounds = light() ? SHARE_ROUNDS / 10 : SHARE_ROUNDS;
  for (int round = 0; round < share_rounds; round++) {
    for (int i = 0; i < SHARE_BATCH; i++) {
      stamp_t *s = kiln_pool_alloc(shared_pool);
      if (s == NULL) thread_fail("pool_alloc failed");
      s->owner = (uint32_t)me;
      s->seq = (uint32_t)(round * SHARE_BATCH + i);
      mine[i] = s;
    }
    sched_yield(); /* let the others in between */
    for (int i = 0; i < SHARE_BATCH; i++)
      if (mine[i]->owner != (uint32_t)me || mine[i]->seq != (uint32_t)(round * SHARE_BATCH + i))
        thread_fail("block %p handed out twice", (void *)mine[i]);
    for (int i = 0; i < SHARE_BATCH; i++) kiln_pool_free(shared_pool, mine[i]);
  }
  atomic_fetch_sub(&sharers_running, 1);
  return NULL;
}

static void *trimmer(void *arg) {
  (void)arg;
  while (atomic_load(&sharers_running) > 0) {
    kiln_pool_trim(shared_pool);
    sched_yield();
  }
  return NULL;
}

static void test_threads_share_caches(void **state) {
  (void)state;
  shared_pool = kiln_pool_new(BLOCK, 0);
  assert_non_null(shared_pool);
  atomic_store(&sharers_running, SHARERS);
  pthread_t tid[SHARERS], trim_tid;
  for (int i = 0; i < SHARERS; i++)
    assert_int_equal(pthread_create(&tid[i], NULL, share_worker, (void *)(intptr_t)i), 0);
  assert_int_equal(pthread_create(&trim_tid, NULL, trimmer, NULL), 0);
  for (int i = 0; i < SHARERS; i++) pthread_join(tid[i], NULL);
  pthread_join(trim_tid, NULL);
  assert_int_equal(kiln_pool_in_use(shared_pool), 0);
  kiln_pool_trim(shared_pool);
  assert_int_equal(kiln_pool_capacity_bytes(shared_pool), POOL_PAGE);
  kiln_pool_destroy(shared_pool);
}

/* Threads that exit leave a block in the cache they owned; the threads
 * after them, one at a time, find their caches owned by exited threads
 * once 16 have gone, and take them over after POOL_STEAL_AFTER calls (with
 * the blocks in them).  Nothing is lost or handed out twice on the way
 * (the pool's own checks would abort), the blocks left in caches still
 * fit the one page, and trim takes them all back. */
static void *short_lived(void *arg) {
  (void)arg;
  for (int k = 0; k < 600; k++) { /* > POOL_STEAL_AFTER calls: a cache a dead thread owns is taken */
    void *p = kiln_pool_alloc(shared_pool);
    if (p == NULL) thread_fail("pool_alloc failed");
    kiln_pool_free(shared_pool, p);
  }
  void *keep = kiln_pool_alloc(shared_pool); /* and frees it: into the cache, left there */
  kiln_pool_free(shared_pool, keep);
  return NULL;
}

static void test_exited_threads_caches(void **state) {
  (void)state;
  shared_pool = kiln_pool_new(BLOCK, 0);
  assert_non_null(shared_pool);
  for (int i = 0; i < 40; i++) {
    pthread_t tid;
    assert_int_equal(pthread_create(&tid, NULL, short_lived, NULL), 0);
    pthread_join(tid, NULL);
  }
  assert_int_equal(kiln_pool_in_use(shared_pool), 0);
  /* 16 caches of at most 32 blocks each, 40-byte blocks: within one page. */
  assert_int_equal(kiln_pool_capacity_bytes(shared_pool), POOL_PAGE);
  kiln_pool_trim(shared_pool);
  assert_int_equal(kiln_pool_in_use(shared_pool), 0);
  assert_int_equal(kiln_pool_capacity_bytes(shared_pool), POOL_PAGE);
  kiln_pool_destroy(shared_pool);
}

/* A forked child takes its parent's caches (trim: a heavy fence in the
 * child) and goes on using the pool. */
static void test_fork_child_trims(void **state) {
  (void)state;
  kiln_pool_t *pool = kiln_pool_new(48, 0);
  assert_non_null(pool);
  void *p = kiln_pool_alloc(pool);
  kiln_pool_free(pool, p); /* the parent owns its cache, one block in it */
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    kiln_pool_trim(pool);
    void *q = kiln_pool_alloc(pool);
    kiln_pool_free(pool, q);
    kiln_pool_trim(pool);
    _exit(q != NULL && kiln_pool_in_use(pool) == 0 ? 0 : 1);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  kiln_pool_trim(pool);
  assert_int_equal(kiln_pool_in_use(pool), 0);
  kiln_pool_destroy(pool);
}

/* fork while other threads work on a pool, holding its locks or inside their
 * caches at that moment (bursts larger than a cache send blocks through the
 * mutex both ways; a trimmer takes every cache over): each child must be
 * able to trim, allocate, free and destroy the pool, from its own thread and
 * a new one (but under a sanitizer: SANITIZED, test_support.h), without
 * hanging (alarm) or losing a block it holds. */

typedef struct fork_busy_s {
  kiln_pool_t *pool;
  atomic_bool stop;
  bool trimmer;
} fork_busy_t;

static void *fork_busy_worker(void *arg) {
  fork_busy_t *b = arg;
  void *held[80];
  for (unsigned round = 0; !atomic_load(&b->stop); round++) {
    if (b->trimmer) {
      kiln_pool_trim(b->pool);
      continue;
    }
    size_t n = 1 + round % 80;
    for (size_t i = 0; i < n; i++) {
      held[i] = kiln_pool_alloc(b->pool);
      if (held[i] != NULL) memset(held[i], (int)i, 64);
    }
    for (size_t i = 0; i < n; i++) kiln_pool_free(b->pool, held[i]);
  }
  return NULL;
}

static void *fork_child_thread(void *arg) {
  kiln_pool_t *pool = arg;
  void *p[100];
  for (int i = 0; i < 100; i++) p[i] = kiln_pool_alloc(pool);
  for (int i = 0; i < 100; i++) kiln_pool_free(pool, p[i]);
  return p[0];
}

static int fork_child_uses_pool(kiln_pool_t *pool, uint8_t *mine) {
  for (int i = 0; i < 64; i++)
    if (mine[i] != 0xa5) return 2;
  kiln_pool_trim(pool);
  void *p[300];
  for (int i = 0; i < 300; i++) {
    p[i] = kiln_pool_alloc(pool);
    if (p[i] == NULL || p[i] == mine) return 3;
    memset(p[i], 0x3c, 64);
  }
  for (int i = 0; i < 64; i++)
    if (mine[i] != 0xa5) return 4;
  for (int i = 0; i < 300; i++) kiln_pool_free(pool, p[i]);
  if (!SANITIZED) {
    pthread_t t;
    void *got = NULL;
    if (pthread_create(&t, NULL, fork_child_thread, pool) != 0) return 5;
    pthread_join(t, &got);
    if (got == NULL) return 6;
  }
  kiln_pool_free(pool, mine);
  kiln_pool_trim(pool);
  kiln_pool_destroy(pool);
  return 0;
}

static void test_fork_busy_pool(void **state) {
  (void)state;
  kiln_pool_t *pool = kiln_pool_new(64, 0);
  assert_non_null(pool);
  enum { WORKERS = 4 };
  fork_busy_t busy[WORKERS];
  pthread_t threads[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    busy[i].pool = pool;
    atomic_init(&busy[i].stop, false);
    busy[i].trimmer = i == WORKERS - 1;
    assert_int_equal(pthread_create(&threads[i], NULL, fork_busy_worker, &busy[i]), 0);
  }
  uint8_t *mine = kiln_pool_alloc(pool);
  assert_non_null(mine);
  memset(mine, 0xa5, 64);
  int forks = light() ? 10 : 60;
  for (int f = 0; f < forks; f++) {
    usleep(500 + (useconds_t)(f % 7) * 300);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      alarm(20);
      _exit(fork_child_uses_pool(pool, mine));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
      fail_msg("fork %d: the child died of signal %d%s", f, WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (it hung: a lock or cache left held?)" : "");
    assert_int_equal(WEXITSTATUS(status), 0);
  }
  for (int i = 0; i < WORKERS; i++) atomic_store(&busy[i].stop, true);
  for (int i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
  kiln_pool_free(pool, mine);
  kiln_pool_trim(pool);
  assert_int_equal(kiln_pool_in_use(pool), 0);
  kiln_pool_destroy(pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_new_errors),
    cmocka_unit_test(test_new_is_lazy),
    cmocka_unit_test(test_sizes_and_alignment),
    cmocka_unit_test(test_reuse),
    cmocka_unit_test(test_pages_return),
    cmocka_unit_test(test_big_blocks),
    cmocka_unit_test(test_process_limit),
    cmocka_unit_test(test_bad_free),
    cmocka_unit_test(test_threads_cross_free),
    cmocka_unit_test(test_threads_batches),
    cmocka_unit_test(test_threads_share_caches),
    cmocka_unit_test(test_exited_threads_caches),
    cmocka_unit_test(test_fork_child_trims),
    cmocka_unit_test(test_fork_busy_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
