/* test_page.c — a page's free lists (src/page.{h,c}): lazy extension,
 * local and remote frees, collection, and the invariant of types.h
 *   used + |free| + |local_free| == capacity <= reserved,  |thread_free| <= used
 * checked after every step, together with: every listed block is the start
 * of a carved block, no block is listed twice, no list cycles.
 *
 * Pages come from first-class heaps, so the test owns them alone.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "kiln.h"
#include "page.h"
#include "segment.h"

static kiln_page_t *page_of(const void *p) {
  kiln_segment_t *segment = kiln_segment_of(p);
  assert_non_null(segment);
  return kiln_segment_page_of(segment, p);
}

static size_t extend_count(const kiln_page_t *page) {
  size_t n = KILN_PAGE_EXTEND_BYTES / page->block_size;
  return n < KILN_PAGE_EXTEND_MIN_BLOCKS ? KILN_PAGE_EXTEND_MIN_BLOCKS : n;
}

/* Walk one list, marking blocks in `seen`; fails on a foreign block, a
 * duplicate (also across lists) or a cycle. */
static size_t walk(const kiln_page_t *page, const kiln_block_t *block, uint8_t *seen, const char *name) {
  size_t n = 0;
  for (; block != NULL; block = block->next) {
    size_t index = kiln_page_block_index(page, block);
    if (index >= page->capacity) fail_msg("%s list holds %p, not a carved block", name, (void *)block);
    if (seen[index]) fail_msg("%s list: block %zu listed twice (or a cycle)", name, index);
    seen[index] = 1;
    if (++n > page->capacity) fail_msg("%s list longer than the capacity", name);
  }
  return n;
}

typedef struct counts_s {
  size_t free, local, thread;
} counts_t;

static counts_t check_page(const kiln_page_t *page) {
  static uint8_t seen[1 << 16];
  memset(seen, 0, page->capacity);
  assert_true(page->capacity <= page->reserved);
  counts_t c;
  c.free = walk(page, page->free, seen, "free");
  c.local = walk(page, page->local_free, seen, "local_free");
  uintptr_t tf = atomic_load(&page->xthread_free);
  c.thread = walk(page, kiln_thread_free_ptr(tf), seen, "thread_free");
  if (page->used + c.free + c.local != page->capacity)
    fail_msg("block size %zu: used %u + free %zu + local_free %zu != capacity %u", page->block_size, page->used,
             c.free, c.local, page->capacity);
  if (c.thread > page->used) fail_msg("thread_free %zu > used %u", c.thread, page->used);
  return c;
}

static const size_t test_sizes[] = {16, 48, 128, 1024, 4096, 8192, 9216, 65536, 81920, (size_t)1 << 20};
#define N_SIZES (sizeof test_sizes / sizeof test_sizes[0])

/* A fresh page carves one batch (max(4 KiB / size, 4) blocks); each time
 * `free` runs dry it carves the next, in address order, until `reserved`;
 * every block lies in the page's area and the invariant holds throughout. */
static void test_extend_until_full(void **state) {
  (void)state;
  for (size_t s = 0; s < N_SIZES; s++) {
    kiln_heap_t *heap = kiln_heap_new();
    assert_non_null(heap);
    size_t bs = test_sizes[s];
    uint8_t *first = kiln_heap_malloc(heap, bs);
    assert_non_null(first);
    kiln_page_t *page = page_of(first);
    assert_int_equal(page->block_size, bs);
    assert_int_equal(page->used, 1);
    assert_ptr_equal(first, page->start);
    size_t area;
    assert_ptr_equal(kiln_segment_page_area(kiln_segment_of(first), page, &area), page->start);
    assert_int_equal(page->reserved, area / bs);
    size_t batch = extend_count(page);
    assert_int_equal(page->capacity, batch < page->reserved ? batch : page->reserved);
    assert_int_equal((uintptr_t)page->start % 16, 0);
    check_page(page);
    uint8_t **blocks = kiln_malloc(page->reserved * sizeof *blocks);
    assert_non_null(blocks);
    blocks[0] = first;
    for (size_t i = 1; i < page->reserved; i++) {
      size_t capacity_before = page->capacity;
      blocks[i] = kiln_heap_malloc(heap, bs);
      assert_non_null(blocks[i]);
      if (page_of(blocks[i]) != page) fail_msg("block size %zu: block %zu from another page", bs, i);
      /* Address order within the page: block i is the i-th block. */
      if (blocks[i] != page->start + i * bs) fail_msg("block size %zu: block %zu at the wrong place", bs, i);
      if (page->capacity != capacity_before) {
        size_t left = page->reserved - capacity_before;
        assert_int_equal(page->capacity - capacity_before, batch < left ? batch : left);
        assert_int_equal(capacity_before, i); /* extended only when free was empty */
      }
      assert_int_equal(page->used, i + 1);
      if (page->reserved < 512 || i % 61 == 0 || i + 1 == page->reserved) check_page(page);
    }
    assert_int_equal(page->capacity, page->reserved);
    assert_null(page->free);
    kiln_page_extend(page); /* at reserved: nothing to carve */
    assert_int_equal(page->capacity, page->reserved);
    assert_null(page->free);
    for (size_t i = 0; i < page->reserved; i++) memset(blocks[i], (int)i, bs);
    for (size_t i = 0; i < page->reserved; i++)
      if (blocks[i][0] != (uint8_t)i || blocks[i][bs - 1] != (uint8_t)i) fail_msg("block %zu overwritten", i);
    kiln_free(blocks);
    kiln_heap_destroy(heap);
  }
}

/* kiln_page_extend called directly on a page whose `free` ran dry. */
static void test_extend_direct(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  assert_non_null(heap);
  uint8_t *p = kiln_heap_malloc(heap, 64);
  kiln_page_t *page = page_of(p);
  size_t batch = page->capacity;
  for (size_t i = 1; i < batch; i++) assert_non_null(kiln_heap_malloc(heap, 64));
  assert_null(page->free);
  assert_int_equal(page->capacity, batch);
  kiln_page_extend(page);
  assert_int_equal(page->capacity, 2 * batch);
  size_t i = 0;
  for (kiln_block_t *b = page->free; b != NULL; b = b->next, i++)
    assert_ptr_equal(b, page->start + (batch + i) * 64);
  assert_int_equal(i, batch);
  check_page(page);
  kiln_heap_destroy(heap);
}

/* The owner's frees go to local_free (used drops at once); collect moves
 * them to free and reports no remote frees; they are handed out again. */
static void test_local_free_collect(void **state) {
  (void)state;
  for (size_t s = 0; s < N_SIZES; s++) {
    size_t bs = test_sizes[s];
    kiln_heap_t *heap = kiln_heap_new();
    assert_non_null(heap);
    uint8_t *keep = kiln_heap_malloc(heap, bs);
    kiln_page_t *page = page_of(keep);
    size_t n = page->capacity - 1;
    uint8_t **blocks = kiln_malloc((n + 1) * sizeof *blocks);
    for (size_t i = 0; i < n; i++) blocks[i] = kiln_heap_malloc(heap, bs);
    assert_null(page->free);
    size_t freed = 0;
    for (size_t i = 0; i < n; i += 2, freed++) {
      kiln_free(blocks[i]);
      counts_t c = check_page(page);
      assert_int_equal(c.local, freed + 1);
      assert_int_equal(c.free, 0);
    }
    assert_int_equal(page->used, 1 + n - freed);
    assert_int_equal(kiln_page_collect(page), 0);
    assert_null(page->local_free);
    counts_t c = check_page(page);
    assert_int_equal(c.free, freed);
    /* The freed blocks come back, and only they. */
    for (size_t i = 0; i < freed; i++) {
      uint8_t *q = kiln_heap_malloc(heap, bs);
      size_t index = kiln_page_block_index(page, q);
      assert_true(index < page->capacity);
      assert_int_equal((index - 1) % 2, 0); /* blocks[i] is block i + 1 */
    }
    assert_null(page->free);
    check_page(page);
    kiln_free(blocks);
    kiln_heap_destroy(heap);
  }
}

typedef struct remote_job_s {
  uint8_t **blocks;
  size_t count;
} remote_job_t;

static void *remote_free_worker(void *arg) {
  remote_job_t *job = arg;
  for (size_t i = 0; i < job->count; i++) kiln_free(job->blocks[i]);
  return NULL;
}

static void free_from_thread(uint8_t **blocks, size_t count) {
  remote_job_t job = {blocks, count};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, remote_free_worker, &job), 0);
  pthread_join(t, NULL);
}

/* Another thread's frees go onto thread_free and stay counted in `used`
 * until the owner collects them; collect returns their number and merges
 * all three lists without losing or duplicating a block. */
static void test_remote_free_collect(void **state) {
  (void)state;
  for (size_t s = 0; s < N_SIZES; s++) {
    size_t bs = test_sizes[s];
    kiln_heap_t *heap = kiln_heap_new();
    uint8_t *keep = kiln_heap_malloc(heap, bs);
    kiln_page_t *page = page_of(keep);
    size_t n = page->capacity - 1;
    if (n < 3) { /* large pages: carve more so there is something to split */
      kiln_heap_destroy(heap);
      continue;
    }
    uint8_t **blocks = kiln_malloc(n * sizeof *blocks);
    for (size_t i = 0; i < n; i++) blocks[i] = kiln_heap_malloc(heap, bs);
    assert_int_equal(kiln_thread_free_state(atomic_load(&page->xthread_free)), KILN_NO_DELAYED_FREE);
    /* Thirds: remote, local, still allocated. */
    size_t third = n / 3;
    free_from_thread(blocks, third);
    counts_t c = check_page(page);
    assert_int_equal(c.thread, third);
    assert_int_equal(page->used, n + 1);
    for (size_t i = third; i < 2 * third; i++) kiln_free(blocks[i]);
    c = check_page(page);
    assert_int_equal(c.local, third);
    assert_int_equal(c.thread, third);
    assert_int_equal(page->used, n + 1 - third);
    assert_int_equal(kiln_page_collect(page), third);
    c = check_page(page);
    assert_int_equal(c.thread, 0);
    assert_int_equal(c.local, 0);
    assert_int_equal(c.free, 2 * third);
    assert_int_equal(page->used, n + 1 - 2 * third);
    assert_int_equal(kiln_thread_free_state(atomic_load(&page->xthread_free)), KILN_NO_DELAYED_FREE);
    /* Collect with nothing to collect changes nothing. */
    assert_int_equal(kiln_page_collect(page), 0);
    c = check_page(page);
    assert_int_equal(c.free, 2 * third);
    kiln_free(blocks);
    kiln_heap_destroy(heap);
  }
}

/* Collect appends to a non-empty free list too (the slow path may collect
 * while extending), and remote frees arriving one by one from many threads
 * are all found. */
static void test_collect_merges_nonempty_free(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  uint8_t *keep = kiln_heap_malloc(heap, 32);
  kiln_page_t *page = page_of(keep);
  size_t n = page->capacity - 1;
  uint8_t **blocks = kiln_malloc(n * sizeof *blocks);
  for (size_t i = 0; i < n; i++) blocks[i] = kiln_heap_malloc(heap, 32);
  kiln_page_extend(page); /* free now holds a new batch */
  counts_t before = check_page(page);
  assert_true(before.free > 0);
  for (size_t i = 0; i < 8; i++) free_from_thread(&blocks[i], 1);
  for (size_t i = 8; i < 16; i++) kiln_free(blocks[i]);
  assert_int_equal(kiln_page_collect(page), 8);
  counts_t after = check_page(page);
  assert_int_equal(after.free, before.free + 16);
  kiln_free(blocks);
  kiln_heap_destroy(heap);
}

/* Remote frees racing with the owner's allocations and collections: four
 * threads free a page's blocks while the owner keeps allocating from it;
 * at the end every block is accounted for exactly once. */
typedef struct race_s {
  uint8_t **blocks;
  size_t from, to;
} race_t;

static void *race_worker(void *arg) {
  race_t *r = arg;
  for (size_t i = r->from; i < r->to; i++) kiln_free(r->blocks[i]);
  return NULL;
}

static void test_remote_free_race(void **state) {
  (void)state;
  enum { THREADS = 4 };
  kiln_heap_t *heap = kiln_heap_new();
  uint8_t *keep = kiln_heap_malloc(heap, 16);
  kiln_page_t *page = page_of(keep);
  size_t n = page->reserved - 1;
  uint8_t **blocks = kiln_malloc(n * sizeof *blocks);
  for (size_t i = 0; i < n; i++) {
    blocks[i] = kiln_heap_malloc(heap, 16);
    assert_ptr_equal(page_of(blocks[i]), page);
  }
  pthread_t threads[THREADS];
  race_t jobs[THREADS];
  for (int t = 0; t < THREADS; t++) {
    jobs[t] = (race_t){blocks, n * (size_t)t / THREADS, n * (size_t)(t + 1) / THREADS};
    assert_int_equal(pthread_create(&threads[t], NULL, race_worker, &jobs[t]), 0);
  }
  size_t got = 0;
  uint8_t **again = kiln_malloc(n * sizeof *again);
  while (got < n / 2) { /* allocate from this page as remote frees come in */
    kiln_page_collect(page);
    if (page->free != NULL) again[got++] = kiln_page_pop(page);
  }
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  kiln_page_collect(page);
  counts_t c = check_page(page);
  assert_int_equal(c.thread, 0);
  assert_int_equal(page->used, 1 + got);
  assert_int_equal(c.free, n - got);
  for (size_t i = 0; i < got; i++) kiln_free(again[i]);
  kiln_free(again);
  kiln_free(blocks);
  kiln_heap_destroy(heap);
}

/* The page queue (doubly linked through next/prev). */
static void test_queue(void **state) {
  (void)state;
  kiln_page_t pages[4];
  memset(pages, 0, sizeof pages);
  kiln_page_queue_t q = {0};
  kiln_queue_push_back(&q, &pages[1]);
  kiln_queue_push_front(&q, &pages[0]);
  kiln_queue_push_back(&q, &pages[2]);
  kiln_queue_push_back(&q, &pages[3]);
  assert_ptr_equal(q.first, &pages[0]);
  assert_ptr_equal(q.last, &pages[3]);
  for (int i = 0; i < 4; i++) {
    assert_ptr_equal(pages[i].prev, i == 0 ? NULL : &pages[i - 1]);
    assert_ptr_equal(pages[i].next, i == 3 ? NULL : &pages[i + 1]);
  }
  kiln_queue_remove(&q, &pages[2]); /* middle */
  assert_ptr_equal(pages[1].next, &pages[3]);
  assert_ptr_equal(pages[3].prev, &pages[1]);
  assert_null(pages[2].next);
  assert_null(pages[2].prev);
  kiln_queue_remove(&q, &pages[0]); /* first */
  assert_ptr_equal(q.first, &pages[1]);
  assert_null(pages[1].prev);
  kiln_queue_remove(&q, &pages[3]); /* last */
  assert_ptr_equal(q.last, &pages[1]);
  assert_null(pages[1].next);
  kiln_queue_remove(&q, &pages[1]); /* only */
  assert_null(q.first);
  assert_null(q.last);
}

/* Page keys.  Plain pages have none; under KILN_SECURE=1 (this suite's
 * secure_ run) each page of every size class has a key with its low 4 bits
 * clear and bit 4 set, screen_hi is the high half of key ^ any block of the
 * page, and neither value the double-free screen compares with is a high
 * half program data often has (0, all ones). */
static void test_page_keys(void **state) {
  (void)state;
  bool secure = getenv("KILN_SECURE") != NULL && strcmp(getenv("KILN_SECURE"), "1") == 0;
  kiln_heap_t *heap = kiln_heap_new();
  assert_non_null(heap);
  size_t keyed = 0;
  for (size_t size = 16; size <= 1024 * 1024; size += size / 2 > 16 ? size / 2 / 16 * 16 : 16) {
    for (int round = 0; round < 4; round++) { /* on pages set up since the last reset */
      uint8_t *p = kiln_heap_malloc(heap, size);
      assert_non_null(p);
      kiln_page_t *page = page_of(p);
      if (!secure || page->bin == KILN_BIN_HUGE) {
        assert_true(page->key == 0);
        continue;
      }
      uint32_t key_hi = (uint32_t)(page->key >> 32);
      assert_true((page->key & 31) == 16);
      assert_int_equal(page->screen_hi, key_hi ^ (uint32_t)((uintptr_t)p >> 32));
      assert_int_equal(page->screen_hi, key_hi ^ (uint32_t)((uintptr_t)(page->start + (size_t)(page->reserved - 1) * page->block_size) >> 32));
      assert_true(key_hi != 0 && key_hi != UINT32_MAX);
      assert_true(page->screen_hi != 0 && page->screen_hi != UINT32_MAX);
      keyed++;
    }
    kiln_heap_reset(heap);
  }
  kiln_heap_destroy(heap);
  if (secure) assert_true(keyed >= 4 * 20); /* (some 25 sizes up to 1 MiB) */
}

/* `test_page CASE` runs the cases whose names match CASE (a cmocka pattern):
 * tests/CMakeLists.txt runs test_page_keys once more under KILN_SECURE=1. */
int main(int argc, char **argv) {
  if (argc > 1) cmocka_set_test_filter(argv[1]);
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_extend_until_full),
    cmocka_unit_test(test_extend_direct),
    cmocka_unit_test(test_local_free_collect),
    cmocka_unit_test(test_remote_free_collect),
    cmocka_unit_test(test_collect_merges_nonempty_free),
    cmocka_unit_test(test_remote_free_race),
    cmocka_unit_test(test_queue),
    cmocka_unit_test(test_page_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
