/* test_arena.c — the linear arena (src/arena.c): every function, its errors,
 * its figures, misuse reports, and the thread-safe bump under 4 threads.
 *
 * Bookkeeping uses static arrays and stack buffers only, so the tests do not
 * depend on (or disturb) the allocator under test beyond the calls checked. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
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





/* --- creation and arguments ---------------------------------------------- */

static void test_new_is_lazy(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(0, 0, KILN_ARENA_DEFAULT);
  assert_non_null(a);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_int_equal(info.used, 0);
  assert_int_equal(info.capacity, 0);
  assert_int_equal(info.chunks, 0);
  assert_int_equal(info.high_water, 0);
  void *p = kiln_arena_alloc(a, 100, 0);
  assert_non_null(p);
  info = kiln_arena_info(a);
  assert_int_equal(info.chunks, 1);
  assert_int_equal(info.capacity, 64 * KiB); /* the documented default */
  assert_true(info.used >= 100 && info.used < 100 + 32);
  kiln_arena_destroy(a);
  kiln_arena_destroy(NULL); /* no-op */
}

static void test_bad_flags(void **state) {
  (void)state;
  errno = 0;
  assert_null(kiln_arena_new(0, 0, 0x80));
  assert_int_equal(errno, EINVAL);
  static char buf[1024];
  errno = 0;
  assert_null(kiln_arena_new_fixed(buf, sizeof buf, 0x80));
  assert_int_equal(errno, EINVAL);
}

static void test_alignment(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(16 * KiB, 0, KILN_ARENA_DEFAULT);
  for (int round = 0; round < 20; round++) {
    for (size_t align = 1; align <= 4096; align <<= 1) {
      size_t size = (size_t)round * 7 + 1;
      uint8_t *p = kiln_arena_alloc(a, size, align);
      assert_non_null(p);
      assert_true(is_aligned(p, align < 16 ? 16 : align));
      memset(p, (int)(align & 0xff) ^ round, size);
    }
  }
  assert_true(is_aligned(kiln_arena_alloc(a, 1, 0), 16)); /* 0 means 16 */
  kiln_arena_destroy(a);
}

static void test_bad_alignment(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(0, 0, KILN_ARENA_DEFAULT);
  assert_non_null(kiln_arena_alloc(a, 8, 16));
  kiln_arena_info_t before = kiln_arena_info(a);
  size_t bad[] = {3, 24, 48, 100, 4095, (size_t)-1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    assert_null(kiln_arena_alloc(a, 8, bad[i]));
    assert_int_equal(errno, EINVAL);
  }
  kiln_arena_info_t after = kiln_arena_info(a);
  assert_memory_equal(&before, &after, sizeof before);
  kiln_arena_destroy(a);
}

static void test_too_large(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(0, 0, KILN_ARENA_DEFAULT);
  size_t sizes[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, (size_t)PTRDIFF_MAX};
  for (size_t i = 0; i < 3; i++) {
    errno = 0;
    assert_null(kiln_arena_alloc(a, sizes[i], 16));
    assert_int_equal(errno, ENOMEM);
  }
  errno = 0;
  assert_null(kiln_arena_alloc(a, 16, (size_t)1 << 63));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(kiln_arena_info(a).chunks, 0);
  assert_non_null(kiln_arena_alloc(a, 16, 16)); /* still usable */
  kiln_arena_destroy(a);
}

static void test_zero_size(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(0, 0, KILN_ARENA_DEFAULT);
  void *prev = NULL;
  for (int i = 0; i < 100; i++) {
    void *p = kiln_arena_alloc(a, 0, 0);
    assert_non_null(p);
    assert_ptr_not_equal(p, prev);
    assert_true(is_aligned(p, 16));
    prev = p;
  }
  kiln_arena_destroy(a);
}

/* Many blocks over several chunks keep their contents. */
static void test_contents(void **state) {
  (void)state;
  enum { N = 2000 };
  static uint8_t *blocks[N];
  static size_t sizes[N];
  kiln_arena_t *a = kiln_arena_new(8 * KiB, 0, KILN_ARENA_DEFAULT);
  uint32_t x = 12345;
  for (int i = 0; i < N; i++) {
    x = x * 1103515245u + 12345u;
    sizes[i] = (x >> 16) % 700 + 1;
    blocks[i] = kiln_arena_alloc(a, sizes[i], 0);
    assert_non_null(blocks[i]);
    memset(blocks[i], i & 0xff, sizes[i]);
  }
  for (int i = 0; i < N; i++)
    for (size_t j = 0; j < sizes[i]; j++) assert_int_equal(blocks[i][j], i & 0xff);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_true(info.chunks > 1);
  assert_true(info.used <= info.capacity);
  kiln_arena_destroy(a);
}

static void test_large_request_gets_own_chunk(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(16 * KiB, 0, KILN_ARENA_DEFAULT);
  assert_non_null(kiln_arena_alloc(a, 100, 0));
  uint8_t *big = kiln_arena_alloc(a, 1 * MiB, 4096);
  assert_non_null(big);
  assert_true(is_aligned(big, 4096));
  memset(big, 0xab, 1 * MiB);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_int_equal(info.chunks, 2);
  assert_true(info.capacity >= 16 * KiB + 1 * MiB);
  assert_true(info.capacity <= 16 * KiB + 1 * MiB + 2 * 4096 + 4096);
  kiln_arena_destroy(a);
}

/* --- limits --------------------------------------------------------------- */

static void test_limit(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(64 * KiB, 160 * KiB, KILN_ARENA_DEFAULT);
  size_t got = 0;
  void *p;
  while ((p = kiln_arena_alloc(a, 1000, 0)) != NULL) {
    memset(p, 1, 1000);
    got += 1000;
  }
  assert_int_equal(errno, ENOMEM);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_true(info.capacity <= 160 * KiB);
  /* The limit is used up to the page: chunks of 64 KiB and then (instead of
   * 128 KiB, the doubling) the 96 KiB left. */
  assert_int_equal(info.capacity, 160 * KiB);
  assert_int_equal(info.chunks, 2);
  assert_true(got > 150 * KiB);
  /* A failed call changes nothing; small requests still fit the leftovers. */
  errno = 0;
  assert_null(kiln_arena_alloc(a, 200 * KiB, 0));
  assert_int_equal(errno, ENOMEM);
  kiln_arena_info_t again = kiln_arena_info(a);
  assert_memory_equal(&info, &again, sizeof info);
  /* Rewinding makes room under the limit again. */
  kiln_arena_reset(a);
  assert_non_null(kiln_arena_alloc(a, 32 * KiB, 0));
  kiln_arena_destroy(a);
}

static void test_limit_below_chunk(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(64 * KiB, 16 * KiB, KILN_ARENA_DEFAULT);
  assert_non_null(kiln_arena_alloc(a, 8 * KiB, 0));
  assert_int_equal(kiln_arena_info(a).capacity, 16 * KiB);
  errno = 0;
  assert_null(kiln_arena_alloc(a, 16 * KiB, 0));
  assert_int_equal(errno, ENOMEM);
  kiln_arena_destroy(a);
}

/* The process-wide limit: kiln_os_alloc refuses, the arena reports ENOMEM
 * and is unchanged.  Nothing else allocates while the limit is tiny. */
static void test_process_limit(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(64 * KiB, 0, KILN_ARENA_THREAD_SAFE);
  void *p = kiln_arena_alloc(a, 100, 0);
  assert_non_null(p);
  kiln_arena_info_t before = kiln_arena_info(a);
  size_t old = kiln_get_limit();
  kiln_set_limit(1);
  errno = 0;
  void *q = kiln_arena_alloc(a, 128 * KiB, 0);
  int err = errno;
  void *r = kiln_arena_alloc(a, 100, 0); /* fits the current chunk: no OS call */
  kiln_set_limit(old);
  assert_null(q);
  assert_int_equal(err, ENOMEM);
  assert_non_null(r);
  kiln_arena_info_t after = kiln_arena_info(a);
  assert_int_equal(after.chunks, before.chunks);
  assert_int_equal(after.capacity, before.capacity);
  assert_non_null(kiln_arena_alloc(a, 128 * KiB, 0));
  kiln_arena_destroy(a);
}

/* --- fixed buffers ---------------------------------------------------------- */

static void test_fixed(void **state) {
  (void)state;
  static _Alignas(4096) uint8_t buf[8192]; /* so a 4096-aligned 4 KiB block fits after the header */
  /* The arena must not ask the OS for anything: with a process limit of one
   * byte, any OS allocation would fail. */
  size_t old = kiln_get_limit();
  kiln_set_limit(1);
  kiln_arena_t *a = kiln_arena_new_fixed(buf, sizeof buf, KILN_ARENA_DEFAULT);
  bool ok = a != NULL && (uint8_t *)a >= buf && (uint8_t *)a < buf + 64;
  size_t count = 0, bad = 0;
  uint8_t *p;
  while ((p = kiln_arena_alloc(a, 100, 0)) != NULL) {
    if (p < buf || p + 100 > buf + sizeof buf || !is_aligned(p, 16)) bad++;
    memset(p, 7, 100);
    count++;
  }
  int err = errno;
  kiln_arena_info_t info = kiln_arena_info(a);
  kiln_set_limit(old);
  assert_true(ok);
  assert_int_equal(bad, 0);
  assert_int_equal(err, ENOMEM);
  assert_true(count >= (sizeof buf - 256) / 112);
  assert_int_equal(info.capacity, sizeof buf);
  assert_int_equal(info.chunks, 1);
  assert_true(info.used >= count * 100 && info.used <= sizeof buf);
  /* A fixed arena never grows, whatever the request. */
  errno = 0;
  assert_null(kiln_arena_alloc(a, 1 * MiB, 0));
  assert_int_equal(errno, ENOMEM);
  /* Reset makes all of it available again. */
  kiln_arena_reset(a);
  info = kiln_arena_info(a);
  assert_int_equal(info.used, 0);
  assert_int_equal(info.chunks, 1);
  assert_true(info.high_water >= count * 100);
  assert_non_null(kiln_arena_alloc(a, 4096, 4096));
  kiln_arena_destroy(a);
}

static void test_fixed_bad_buffers(void **state) {
  (void)state;
  static uint8_t buf[512];
  errno = 0;
  assert_null(kiln_arena_new_fixed(NULL, 4096, 0));
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_null(kiln_arena_new_fixed(buf, 16, 0));
  assert_int_equal(errno, EINVAL);
  errno = 0;
  assert_null(kiln_arena_new_fixed(buf, 0, 0));
  assert_int_equal(errno, EINVAL);
  /* A misaligned buffer works: the arena aligns itself and its blocks. */
  kiln_arena_t *a = kiln_arena_new_fixed(buf + 3, sizeof buf - 3, 0);
  assert_non_null(a);
  void *p = kiln_arena_alloc(a, 10, 64);
  assert_non_null(p);
  assert_true(is_aligned(p, 64));
  assert_true((uint8_t *)p + 10 <= buf + sizeof buf);
  kiln_arena_destroy(a);
}

/* --- mark / rewind / reset / high water ------------------------------------- */

static void test_mark_rewind(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(4 * KiB, 0, KILN_ARENA_DEFAULT);
  kiln_arena_mark_t empty = kiln_arena_mark(a);
  uint8_t *first = kiln_arena_alloc(a, 64, 0);
  memset(first, 0x5a, 64);
  kiln_arena_mark_t m = kiln_arena_mark(a);
  kiln_arena_info_t at_mark = kiln_arena_info(a);
  void *next = kiln_arena_alloc(a, 64, 0);
  for (int i = 0; i < 200; i++) assert_non_null(kiln_arena_alloc(a, 100, 0)); /* several chunks */
  kiln_arena_info_t grown = kiln_arena_info(a);
  assert_true(grown.chunks > at_mark.chunks);
  kiln_arena_rewind(a, m);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_int_equal(info.used, at_mark.used);
  assert_int_equal(info.chunks, at_mark.chunks); /* later chunks went back */
  assert_int_equal(info.capacity, at_mark.capacity);
  assert_int_equal(info.high_water, grown.used);
  for (int i = 0; i < 64; i++) assert_int_equal(first[i], 0x5a); /* before the mark: intact */
  assert_ptr_equal(kiln_arena_alloc(a, 64, 0), next);             /* same place again */
  /* Rewinding to the same mark twice is fine; so is a mark on an empty arena. */
  kiln_arena_rewind(a, m);
  kiln_arena_rewind(a, m);
  kiln_arena_rewind(a, empty);
  info = kiln_arena_info(a);
  assert_int_equal(info.chunks, 0);
  assert_int_equal(info.used, 0);
  assert_int_equal(info.capacity, 0);
  assert_non_null(kiln_arena_alloc(a, 10, 0));
  kiln_arena_destroy(a);
}

static void test_nested_marks(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(4 * KiB, 0, KILN_ARENA_DEFAULT);
  kiln_arena_mark_t marks[10];
  size_t used[10];
  for (int i = 0; i < 10; i++) {
    marks[i] = kiln_arena_mark(a);
    used[i] = kiln_arena_info(a).used;
    for (int j = 0; j < 30; j++) assert_non_null(kiln_arena_alloc(a, 50 + (size_t)i * 10, 0));
  }
  for (int i = 9; i >= 0; i--) {
    kiln_arena_rewind(a, marks[i]);
    assert_int_equal(kiln_arena_info(a).used, used[i]);
  }
  kiln_arena_destroy(a);
}

static void test_reset_keeps_largest(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(16 * KiB, 0, KILN_ARENA_DEFAULT);
  for (int i = 0; i < 80; i++) assert_non_null(kiln_arena_alloc(a, 1000, 0)); /* 16 + 32 + 64 KiB */
  void *big = kiln_arena_alloc(a, 300 * KiB, 0); /* a chunk of its own, the largest */
  assert_non_null(big);
  kiln_arena_info_t before = kiln_arena_info(a);
  assert_int_equal(before.chunks, 4);
  kiln_arena_reset(a);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_int_equal(info.chunks, 1);
  assert_int_equal(info.used, 0);
  assert_true(info.capacity >= 300 * KiB && info.capacity < 300 * KiB + 8 * KiB);
  assert_int_equal(info.high_water, before.used);
  /* The kept chunk serves the same big request again without growing. */
  assert_ptr_equal(kiln_arena_alloc(a, 300 * KiB, 0), big);
  assert_int_equal(kiln_arena_info(a).chunks, 1);
  /* Reset of an arena without chunks is a no-op. */
  kiln_arena_t *b = kiln_arena_new(0, 0, 0);
  kiln_arena_reset(b);
  assert_int_equal(kiln_arena_info(b).chunks, 0);
  kiln_arena_destroy(b);
  kiln_arena_destroy(a);
}

static void test_high_water(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(0, 0, KILN_ARENA_DEFAULT);
  kiln_arena_mark_t m = kiln_arena_mark(a);
  size_t peak = 0;
  for (int round = 1; round <= 5; round++) {
    for (int i = 0; i < round * 10; i++) assert_non_null(kiln_arena_alloc(a, 160, 0));
    size_t used = kiln_arena_info(a).used;
    if (used > peak) peak = used;
    assert_int_equal(kiln_arena_info(a).high_water, peak);
    kiln_arena_rewind(a, m);
    assert_int_equal(kiln_arena_info(a).high_water, peak);
  }
  assert_int_equal(peak, 50 * 160); /* 160 is a multiple of 16: no padding */
  kiln_arena_destroy(a);
}

/* --- misuse ------------------------------------------------------------------ */

static void rewind_foreign_mark(void) {
  kiln_arena_t *a = kiln_arena_new(0, 0, 0), *b = kiln_arena_new(0, 0, 0);
  (void)kiln_arena_alloc(a, 10, 0);
  (void)kiln_arena_alloc(b, 10, 0);
  kiln_arena_rewind(a, kiln_arena_mark(b));
}

static void rewind_later_mark(void) {
  kiln_arena_t *a = kiln_arena_new(0, 0, 0);
  (void)kiln_arena_alloc(a, 10, 0);
  kiln_arena_mark_t early = kiln_arena_mark(a);
  (void)kiln_arena_alloc(a, 10, 0);
  kiln_arena_mark_t late = kiln_arena_mark(a);
  kiln_arena_rewind(a, early);
  kiln_arena_rewind(a, late);
}

static void rewind_fixed_to_foreign_empty_mark(void) {
  static uint8_t buf[1024];
  kiln_arena_t *a = kiln_arena_new_fixed(buf, sizeof buf, 0), *b = kiln_arena_new(0, 0, 0);
  kiln_arena_rewind(a, kiln_arena_mark(b));
}

static void test_rewind_misuse(void **state) {
  (void)state;
  expect_abort(rewind_foreign_mark, "kiln_arena_rewind");
  expect_abort(rewind_foreign_mark, "not from this arena");
  expect_abort(rewind_later_mark, "from a later state");
  expect_abort(rewind_fixed_to_foreign_empty_mark, "not from this arena");
}

/* --- threads ------------------------------------------------------------------ */

enum { THREADS = 4, PER_THREAD = 20000 };

typedef struct range_s {
  uintptr_t start, end; /* end - start = max(len, 1): a 0-byte block still owns its byte */
  size_t len;           /* bytes written */
} range_t;

static range_t ranges[THREADS * PER_THREAD];
static size_t range_count[THREADS];

typedef struct worker_s {
  kiln_arena_t *arena;
  int id;
  pthread_barrier_t *barrier;
} worker_t;

static void *arena_worker(void *arg) {
  worker_t *w = arg;
  range_t *mine = ranges + (size_t)w->id * PER_THREAD;
  uint32_t x = 0x9e3779b9u * (uint32_t)(w->id + 1);
  size_t n = 0;
  pthread_barrier_wait(w->barrier);
  for (int i = 0; i < PER_THREAD; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    size_t size = x % 300;
    size_t align = (size_t)16 << (x >> 28) % 5; /* 16 .. 256 */
    uint8_t *p = kiln_arena_alloc(w->arena, size, align);
    if (p == NULL) break; /* a fixed arena fills up */
    if (!is_aligned(p, align)) thread_fail("misaligned %p for %zu", (void *)p, align);
    memset(p, w->id + 1, size);
    mine[n].start = (uintptr_t)p;
    mine[n].end = (uintptr_t)p + (size ? size : 1);
    mine[n].len = size;
    n++;
  }
  range_count[w->id] = n;
  return NULL;
}

static int range_cmp(const void *a, const void *b) {
  const range_t *x = a, *y = b;
  return x->start < y->start ? -1 : x->start > y->start;
}

/* 4 threads bump one arena at once; then: every block still holds its
 * thread's bytes, and no two blocks overlap (sort by start and compare
 * neighbours). */
static size_t hammer(kiln_arena_t *arena) {
  pthread_t tid[THREADS];
  worker_t w[THREADS];
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, THREADS);
  for (int i = 0; i < THREADS; i++) {
    w[i] = (worker_t){arena, i, &barrier};
    assert_int_equal(pthread_create(&tid[i], NULL, arena_worker, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++) pthread_join(tid[i], NULL);
  pthread_barrier_destroy(&barrier);
  size_t total = 0;
  for (int t = 0; t < THREADS; t++) {
    range_t *mine = ranges + (size_t)t * PER_THREAD;
    for (size_t i = 0; i < range_count[t]; i++) {
      const uint8_t *b = (const uint8_t *)mine[i].start;
      for (size_t j = 0; j < mine[i].len; j++)
        if (b[j] != t + 1) fail_msg("block %p of thread %d overwritten", (void *)b, t);
    }
    memmove(ranges + total, mine, range_count[t] * sizeof(range_t));
    total += range_count[t];
  }
  qsort(ranges, total, sizeof(range_t), range_cmp);
  for (size_t i = 1; i < total; i++)
    if (ranges[i].start < ranges[i - 1].end)
      fail_msg("overlap: [%#lx,%#lx) and [%#lx,%#lx)", (unsigned long)ranges[i - 1].start,
               (unsigned long)ranges[i - 1].end, (unsigned long)ranges[i].start, (unsigned long)ranges[i].end);
  return total;
}

static void test_threads_growing(void **state) {
  (void)state;
  /* Small first chunk, and a rewind to empty between rounds so that growth
   * starts over: the threads race to grow the arena ~13 times a round. */
  kiln_arena_t *a = kiln_arena_new(4 * KiB, 0, KILN_ARENA_THREAD_SAFE);
  kiln_arena_mark_t empty = kiln_arena_mark(a);
  size_t chunks = 0;
  for (int round = 0; round < 10; round++) {
    size_t total = hammer(a);
    assert_int_equal(total, (size_t)THREADS * PER_THREAD);
    kiln_arena_info_t info = kiln_arena_info(a);
    assert_true(info.used <= info.capacity);
    chunks += info.chunks;
    kiln_arena_rewind(a, empty);
    assert_int_equal(kiln_arena_info(a).chunks, 0);
  }
  assert_true(chunks > 100);
  kiln_arena_destroy(a);
}

static void test_threads_fixed(void **state) {
  (void)state;
  static _Alignas(16) uint8_t buf[1 << 20];
  kiln_arena_t *a = kiln_arena_new_fixed(buf, sizeof buf, KILN_ARENA_THREAD_SAFE);
  size_t total = hammer(a); /* runs out part-way: 80000 blocks need ~12 MiB */
  assert_true(total > 1000);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_true(info.used <= info.capacity);
  for (size_t i = 0; i < total; i++)
    assert_true(ranges[i].start >= (uintptr_t)buf && ranges[i].end <= (uintptr_t)(buf + sizeof buf));
  kiln_arena_destroy(a);
}

static void test_threads_limited(void **state) {
  (void)state;
  kiln_arena_t *a = kiln_arena_new(16 * KiB, 1 * MiB, KILN_ARENA_THREAD_SAFE);
  size_t total = hammer(a);
  assert_true(total > 1000 && total < (size_t)THREADS * PER_THREAD);
  kiln_arena_info_t info = kiln_arena_info(a);
  assert_true(info.capacity <= 1 * MiB);
  kiln_arena_destroy(a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_new_is_lazy),
    cmocka_unit_test(test_bad_flags),
    cmocka_unit_test(test_alignment),
    cmocka_unit_test(test_bad_alignment),
    cmocka_unit_test(test_too_large),
    cmocka_unit_test(test_zero_size),
    cmocka_unit_test(test_contents),
    cmocka_unit_test(test_large_request_gets_own_chunk),
    cmocka_unit_test(test_limit),
    cmocka_unit_test(test_limit_below_chunk),
    cmocka_unit_test(test_process_limit),
    cmocka_unit_test(test_fixed),
    cmocka_unit_test(test_fixed_bad_buffers),
    cmocka_unit_test(test_mark_rewind),
    cmocka_unit_test(test_nested_marks),
    cmocka_unit_test(test_reset_keeps_largest),
    cmocka_unit_test(test_high_water),
    cmocka_unit_test(test_rewind_misuse),
    cmocka_unit_test(test_threads_growing),
    cmocka_unit_test(test_threads_fixed),
    cmocka_unit_test(test_threads_limited),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
