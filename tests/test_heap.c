/* test_heap.c — heaps (src/heap.c, src/heap_api.c, the heap parts of
 * src/thread.c): finding a page, the full queue and the delayed-free
 * protocol, retiring empty pages, and first-class heaps through their public
 * API (new, malloc, calloc, realloc, aligned, allocated, limit, reset,
 * destroy, frees from other threads, heaps outliving their thread).
 */
#define _GNU_SOURCE
#include <errno.h>
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

static bool queue_contains(const kiln_page_queue_t *q, const kiln_page_t *page) {
  for (const kiln_page_t *p = q->first; p != NULL; p = p->next)
    if (p == page) return true;
  return false;
}

static void fill(uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(seed * 2654435761u + i * 31u);
}

static void verify(const uint8_t *p, size_t n, uint32_t seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (uint8_t)(seed * 2654435761u + i * 31u)) fail_msg("block %p byte %zu changed", (void *)p, i);
}

static size_t mapped_now(void) {
  kiln_stats_t s;
  kiln_stats_get(&s);
  return s.mapped;
}

typedef struct free_job_s {
  void **blocks;
  size_t count;
} free_job_t;

static void *free_worker(void *arg) {
  free_job_t *job = arg;
  for (size_t i = 0; i < job->count; i++) kiln_free(job->blocks[i]);
  return NULL;
}

static void free_from_thread(void **blocks, size_t count) {
  free_job_t job = {blocks, count};
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, free_worker, &job), 0);
  pthread_join(t, NULL);
}

/* Allocate blocks of `bs` from `heap` until the page of the first one is
 * full: returns them (kiln_malloc'ed array of *count), the page in *page. */
static void **fill_first_page(kiln_heap_t *heap, size_t bs, kiln_page_t **page, size_t *count) {
  void *first = kiln_heap_malloc(heap, bs);
  *page = page_of(first);
  *count = (*page)->reserved;
  void **blocks = kiln_malloc(*count * sizeof *blocks);
  blocks[0] = first;
  for (size_t i = 1; i < *count; i++) blocks[i] = kiln_heap_malloc(heap, bs);
  return blocks;
}

/* --- the slow path's mechanics ------------------------------------------- */

/* A new heap points every direct slot at the empty page; find_page sets a
 * page up, puts it first in its bin and points the bin's slots at it. */
static void test_find_page(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  assert_non_null(heap);
  for (size_t i = 0; i < KILN_DIRECT_SLOTS; i++) assert_ptr_equal(heap->pages_direct[i], &kiln_page_empty);
  assert_null(kiln_page_empty.free);
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin += 3) {
    kiln_page_t *page = kiln_heap_find_page(heap, bin);
    assert_non_null(page);
    assert_non_null(page->free);
    assert_int_equal(page->bin, bin);
    assert_int_equal(page->block_size, kiln_bin_size[bin]);
    assert_ptr_equal(heap->pages[bin].first, page);
    assert_ptr_equal(atomic_load(&page->xheap), heap);
    assert_true(page->segment_in_use);
    assert_int_equal(page->used, 0);
    /* Same page again while it has free blocks. */
    assert_ptr_equal(kiln_heap_find_page(heap, bin), page);
    size_t bs = kiln_bin_size[bin];
    if (bs <= KILN_DIRECT_MAX) {
      for (size_t size = kiln_bin_size[bin - 1] + 1; size <= bs; size++)
        assert_ptr_equal(heap->pages_direct[(size + 15) >> 4], page);
    }
  }
  /* Direct slots map each request size to the page of its bin. */
  for (size_t size = 0; size <= KILN_DIRECT_MAX; size++) {
    unsigned bin = kiln_bin_of(size ? size : 1);
    kiln_page_t *slot = heap->pages_direct[(size + 15) >> 4];
    if (slot != &kiln_page_empty && slot != heap->pages[bin].first)
      fail_msg("size %zu: direct slot is not bin %u's page", size, bin);
  }
  kiln_heap_destroy(heap);
}

/* Fill two pages of one bin: the first moves to the full queue (state
 * USE_DELAYED) when the slow path finds it exhausted; an owner free moves it
 * back to the bin queue (NO_DELAYED). */
static void test_full_queue(void **state) {
  (void)state;
  const size_t bs = 1024;
  unsigned bin = kiln_bin_of(bs);
  kiln_heap_t *heap = kiln_heap_new();
  void *first = kiln_heap_malloc(heap, bs);
  kiln_page_t *page1 = page_of(first);
  size_t n1 = page1->reserved;
  void **blocks = kiln_malloc(2 * n1 * sizeof *blocks);
  blocks[0] = first;
  for (size_t i = 1; i < n1; i++) blocks[i] = kiln_heap_malloc(heap, bs);
  assert_int_equal(page1->used, n1);
  assert_false(page1->flags.x.in_full); /* not yet: nothing looked */
  blocks[n1] = kiln_heap_malloc(heap, bs);
  kiln_page_t *page2 = page_of(blocks[n1]);
  assert_ptr_not_equal(page2, page1);
  assert_true(page1->flags.x.in_full);
  assert_true(queue_contains(&heap->pages[KILN_BIN_FULL], page1));
  assert_false(queue_contains(&heap->pages[bin], page1));
  assert_ptr_equal(heap->pages[bin].first, page2);
  assert_ptr_equal(heap->pages_direct[bs >> 4], page2);
  assert_int_equal(kiln_thread_free_state(atomic_load(&page1->xthread_free)), KILN_USE_DELAYED_FREE);
  /* The owner frees one block of the full page: it is usable again. */
  kiln_free(blocks[3]);
  assert_false(page1->flags.x.in_full);
  assert_false(queue_contains(&heap->pages[KILN_BIN_FULL], page1));
  assert_true(queue_contains(&heap->pages[bin], page1));
  assert_int_equal(kiln_thread_free_state(atomic_load(&page1->xthread_free)), KILN_NO_DELAYED_FREE);
  assert_int_equal(page1->used, n1 - 1);
  /* Allocation goes on from page2 (first) until it is full, then finds the
   * block in page1. */
  size_t n2 = page2->reserved;
  for (size_t i = 1; i < n2; i++) assert_ptr_equal(page_of(kiln_heap_malloc(heap, bs)), page2);
  void *again = kiln_heap_malloc(heap, bs);
  assert_ptr_equal(again, blocks[3]);
  assert_true(page2->flags.x.in_full);
  kiln_free(blocks);
  kiln_heap_destroy(heap);
}

/* A remote free into a full page goes to the heap's delayed list (so the
 * owner learns the page has room) and switches the page to plain remote
 * frees (NO_DELAYED): later remote frees go onto its thread_free.  Draining
 * the delayed list moves the page back to its bin queue. */
static void test_delayed_free(void **state) {
  (void)state;
  const size_t bs = 2048;
  unsigned bin = kiln_bin_of(bs);
  kiln_heap_t *heap = kiln_heap_new();
  kiln_page_t *page1;
  size_t n1;
  void **blocks = fill_first_page(heap, bs, &page1, &n1);
  void *other = kiln_heap_malloc(heap, bs); /* moves page1 to full */
  assert_true(page1->flags.x.in_full);
  kiln_stats_t before, after;
  kiln_stats_get(&before);
  free_from_thread(&blocks[5], 1);
  assert_ptr_equal(atomic_load(&heap->thread_delayed_free), blocks[5]);
  assert_null(kiln_thread_free_ptr(atomic_load(&page1->xthread_free)));
  assert_int_equal(kiln_thread_free_state(atomic_load(&page1->xthread_free)), KILN_NO_DELAYED_FREE);
  free_from_thread(&blocks[6], 1);
  assert_ptr_equal(atomic_load(&heap->thread_delayed_free), blocks[5]);
  assert_ptr_equal(kiln_thread_free_ptr(atomic_load(&page1->xthread_free)), blocks[6]);
  assert_int_equal(page1->used, n1);
  kiln_heap_delayed_free_all(heap);
  assert_null(atomic_load(&heap->thread_delayed_free));
  assert_false(page1->flags.x.in_full);
  assert_true(queue_contains(&heap->pages[bin], page1));
  assert_int_equal(page1->used, n1 - 1); /* blocks[6] counts until collected */
  assert_int_equal(kiln_page_collect(page1), 1);
  assert_int_equal(page1->used, n1 - 2);
  /* (kiln_stats_get collects the caller's pages, so it comes last) */
  kiln_stats_get(&after);
  assert_int_equal(after.remote_free_count - before.remote_free_count, 2);
  kiln_free(other);
  kiln_free(blocks);
  kiln_heap_destroy(heap);
}

/* The generic allocation path drains the delayed list by itself. */
static void test_delayed_free_drained_by_malloc(void **state) {
  (void)state;
  const size_t bs = 4096;
  kiln_heap_t *heap = kiln_heap_new();
  kiln_page_t *page1;
  size_t n1;
  void **blocks = fill_first_page(heap, bs, &page1, &n1);
  void *other = kiln_heap_malloc(heap, bs);
  assert_true(page1->flags.x.in_full);
  free_from_thread(&blocks[1], 1);
  assert_non_null(atomic_load(&heap->thread_delayed_free));
  void *big = kiln_heap_malloc(heap, 3000000); /* the slow path */
  assert_null(atomic_load(&heap->thread_delayed_free));
  assert_false(page1->flags.x.in_full);
  kiln_free(big);
  kiln_free(other);
  kiln_free(blocks);
  kiln_heap_destroy(heap);
}

/* An empty page is given back to its segment, unless it is the only page of
 * its bin (kept, so alloc/free of one block does not map and unmap);
 * collect gives that one back too. */
static void test_retire(void **state) {
  (void)state;
  const size_t bs = 512;
  unsigned bin = kiln_bin_of(bs);
  kiln_heap_t *heap = kiln_heap_new();
  kiln_page_t *page1;
  size_t n1;
  void **blocks = fill_first_page(heap, bs, &page1, &n1);
  void *in2 = kiln_heap_malloc(heap, bs);
  kiln_page_t *page2 = page_of(in2);
  assert_int_equal(heap->page_count, 2);
  for (size_t i = 0; i < n1; i++) kiln_free(blocks[i]);
  assert_false(page1->segment_in_use); /* retired */
  assert_int_equal(heap->page_count, 1);
  assert_false(queue_contains(&heap->pages[bin], page1));
  assert_false(queue_contains(&heap->pages[KILN_BIN_FULL], page1));
  assert_int_equal(kiln_usable_size(blocks[0]), 0);
  kiln_free(in2);
  assert_true(page2->segment_in_use); /* the only page: kept */
  assert_int_equal(page2->used, 0);
  assert_ptr_equal(heap->pages[bin].first, page2);
  void *again = kiln_heap_malloc(heap, bs);
  assert_ptr_equal(page_of(again), page2);
  kiln_free(again);
  kiln_heap_collect(heap, false);
  assert_false(page2->segment_in_use);
  assert_int_equal(heap->page_count, 0);
  assert_null(heap->pages[bin].first);
  assert_ptr_equal(heap->pages_direct[bs >> 4], &kiln_page_empty);
  assert_int_equal(kiln_heap_allocated(heap), 0);
  kiln_free(blocks);
  kiln_heap_destroy(heap);
}

/* --- first-class heaps: the public API --------------------------------------- */

static void test_heap_api(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  assert_non_null(heap);
  assert_int_equal(kiln_heap_allocated(heap), 0);
  size_t sizes[] = {0, 1, 17, 100, 1000, 5000, 20000, 100000, KILN_LARGE_BLOCK_MAX}; /* not huge */
  void *blocks[9];
  size_t total = 0;
  for (size_t i = 0; i < 9; i++) {
    blocks[i] = kiln_heap_malloc(heap, sizes[i]);
    assert_non_null(blocks[i]);
    assert_int_equal((uintptr_t)blocks[i] % 16, 0);
    assert_true(kiln_usable_size(blocks[i]) >= sizes[i]);
    assert_ptr_equal(atomic_load(&page_of(blocks[i])->xheap), heap);
    fill(blocks[i], kiln_usable_size(blocks[i]), (uint32_t)i);
    total += kiln_usable_size(blocks[i]);
  }
  assert_int_equal(kiln_heap_allocated(heap), total);
  for (size_t i = 0; i < 9; i++) verify(blocks[i], kiln_usable_size(blocks[i]), (uint32_t)i);
  /* calloc: zeroed, also when reusing a dirty block; overflow -> ENOMEM. */
  void *dirty = kiln_heap_malloc(heap, 300);
  memset(dirty, 0xee, 300);
  kiln_free(dirty);
  uint8_t *zero = kiln_heap_calloc(heap, 3, 100);
  assert_non_null(zero);
  for (size_t i = 0; i < 300; i++) assert_int_equal(zero[i], 0);
  errno = 0;
  assert_null(kiln_heap_calloc(heap, SIZE_MAX / 2, 3));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(kiln_heap_malloc(heap, SIZE_MAX));
  assert_int_equal(errno, ENOMEM);
  /* aligned */
  for (size_t a = 1; a <= ((size_t)1 << 22); a <<= 1) {
    void *p = kiln_heap_aligned_alloc(heap, a, 100);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % (a < 16 ? 16 : a), 0);
    assert_true(kiln_usable_size(p) >= 100);
    kiln_free(p);
  }
  errno = 0;
  assert_null(kiln_heap_aligned_alloc(heap, 24, 100));
  assert_int_equal(errno, EINVAL);
  /* realloc: content kept; a moved block comes from the heap. */
  uint8_t *r = kiln_heap_realloc(heap, NULL, 50);
  assert_non_null(r);
  fill(r, 50, 7);
  r = kiln_heap_realloc(heap, r, 50000);
  assert_non_null(r);
  verify(r, 50, 7);
  assert_ptr_equal(atomic_load(&page_of(r)->xheap), heap);
  void *from_default = kiln_malloc(64);
  fill(from_default, 64, 9);
  uint8_t *moved = kiln_heap_realloc(heap, from_default, 4000);
  verify(moved, 64, 9);
  assert_ptr_equal(atomic_load(&page_of(moved)->xheap), heap);
  assert_null(kiln_heap_realloc(heap, r, 0)); /* frees, like realloc(p, 0) */
  kiln_free(moved);
  kiln_free(zero);
  for (size_t i = 0; i < 9; i++) kiln_free(blocks[i]);
  kiln_heap_collect(heap, false);
  assert_int_equal(kiln_heap_allocated(heap), 0);
  kiln_heap_destroy(heap);
  kiln_heap_destroy(NULL);
  kiln_heap_reset(NULL);
}

/* reset drops every block at once and leaves a usable heap; destroy gives
 * all its memory back. */
static void test_heap_reset_destroy(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  void *blocks[3000];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 3000; i++) {
      blocks[i] = kiln_heap_malloc(heap, (size_t)(i % 97) * 40 + 1);
      assert_non_null(blocks[i]);
    }
    assert_true(kiln_heap_allocated(heap) > 0);
    kiln_heap_reset(heap);
    assert_int_equal(kiln_heap_allocated(heap), 0);
    assert_int_equal(heap->page_count, 0);
    for (int i = 0; i < 3000; i += 100)
      if (kiln_usable_size(blocks[i]) != 0) fail_msg("block %d still valid after reset", i);
  }
  void *p = kiln_heap_malloc(heap, 100);
  assert_non_null(p);
  kiln_heap_destroy(heap);
  assert_int_equal(kiln_usable_size(p), 0);
}

/* kiln.h: destroy/reset "release every block of the heap at once" -- huge
 * blocks included (they are above KILN_LARGE_BLOCK_MAX and were allocated from the heap). */
static void test_heap_destroy_releases_huge(void **state) {
  (void)state;
  kiln_collect(true);
  size_t mapped0 = mapped_now();
  kiln_heap_t *heap = kiln_heap_new();
  void *huge = kiln_heap_malloc(heap, (size_t)32 << 20);
  assert_non_null(huge);
  void *aligned = kiln_heap_aligned_alloc(heap, (size_t)1 << 20, (size_t)1 << 20); /* huge too */
  assert_non_null(aligned);
  kiln_heap_destroy(heap);
  kiln_collect(true);
  size_t mapped1 = mapped_now();
  bool still_valid = kiln_usable_size(huge) != 0 || kiln_usable_size(aligned) != 0;
  if (still_valid) { /* clean up, then report */
    if (kiln_usable_size(huge) != 0) kiln_free(huge);
    if (kiln_usable_size(aligned) != 0) kiln_free(aligned);
  }
  if (still_valid || mapped1 > mapped0 + ((size_t)8 << 20))
    fail_msg("kiln_heap_destroy left the heap's huge blocks allocated (mapped +%zu bytes)", mapped1 - mapped0);
}

/* The per-heap budget (kiln.h): bytes of blocks (usable sizes) the heap may
 * have allocated at once.  Past it, allocations fail with ENOMEM; freeing
 * blocks, also from another thread, makes room again; other heaps are not
 * affected; 0 lifts it. */
static void test_heap_limit(void **state) {
  (void)state;
  const size_t limit = (size_t)256 << 10;
  kiln_heap_t *heap = kiln_heap_new();
  kiln_heap_set_limit(heap, limit);
  enum { MAX = 4096 };
  static void *blocks[MAX];
  size_t n = 0;
  errno = 0;
  while (n < MAX && (blocks[n] = kiln_heap_malloc(heap, 1000)) != NULL) n++;
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(n, limit / 1024); /* 1000 bytes: 1024-byte blocks, exactly */
  assert_int_equal(kiln_heap_allocated(heap), limit);
  size_t sizes[] = {1, 16, 30000, (size_t)2 << 20};
  for (size_t i = 0; i < 4; i++) {
    errno = 0;
    void *p = kiln_heap_malloc(heap, sizes[i]);
    if (p != NULL) fail_msg("a full heap allocated %zu bytes", sizes[i]);
    assert_int_equal(errno, ENOMEM);
  }
  errno = 0;
  assert_null(kiln_heap_calloc(heap, 1, 10));
  assert_null(kiln_heap_aligned_alloc(heap, 64, 10));
  assert_null(kiln_heap_realloc(heap, blocks[0], 5000)); /* would move: the old block stays */
  assert_int_equal(errno, ENOMEM);
  assert_true(kiln_usable_size(blocks[0]) >= 1000);
  void *other = kiln_malloc(30000); /* the default heap is unaffected */
  assert_non_null(other);
  kiln_free(other);
  /* A local free makes room for one block. */
  kiln_free(blocks[--n]);
  assert_int_equal(kiln_heap_allocated(heap), limit - 1024);
  blocks[n] = kiln_heap_malloc(heap, 1000);
  assert_non_null(blocks[n]);
  n++;
  assert_null(kiln_heap_malloc(heap, 1000));
  /* Frees from another thread make room too. */
  free_from_thread(&blocks[n - 10], 10);
  n -= 10;
  for (int i = 0; i < 10; i++) {
    blocks[n] = kiln_heap_malloc(heap, 1000);
    if (blocks[n] == NULL) fail_msg("after 10 remote frees, allocation %d failed", i);
    n++;
  }
  assert_null(kiln_heap_malloc(heap, 1000));
  /* A larger budget admits a huge block, counted by its usable size. */
  kiln_heap_set_limit(heap, limit + ((size_t)3 << 20));
  void *huge = kiln_heap_malloc(heap, (size_t)2 << 20);
  assert_non_null(huge);
  assert_int_equal(kiln_heap_allocated(heap), limit + kiln_usable_size(huge));
  /* Plain realloc cannot grow it past the limit either (in place, into a
   * reused mapping's slack or by mremap, it once did): it fails and leaves
   * the block as it was. */
  errno = 0;
  assert_null(kiln_realloc(huge, (size_t)20 << 20));
  assert_int_equal(errno, ENOMEM);
  assert_int_equal(kiln_heap_allocated(heap), limit + kiln_usable_size(huge));
  kiln_free(huge);
  assert_int_equal(kiln_heap_allocated(heap), limit);
  kiln_heap_set_limit(heap, 0);
  void *more = kiln_heap_malloc(heap, 30000);
  assert_non_null(more);
  kiln_free(more);
  for (size_t i = 0; i < n; i++) kiln_free(blocks[i]);
  kiln_heap_destroy(heap);
}

/* Blocks of a heap freed by another thread: counted until the owner
 * allocates from their pages again, then reused (no new pages). */
static void test_heap_remote_free(void **state) {
  (void)state;
  enum { N = 2000 };
  static void *blocks[N];
  kiln_heap_t *heap = kiln_heap_new();
  for (int i = 0; i < N; i++) {
    blocks[i] = kiln_heap_malloc(heap, 200);
    fill(blocks[i], 200, (uint32_t)i);
  }
  size_t allocated = kiln_heap_allocated(heap);
  size_t pages = heap->page_count;
  assert_int_equal(allocated, (size_t)N * 208);
  free_from_thread(blocks, N / 2);
  assert_true(kiln_heap_allocated(heap) <= allocated);
  for (int i = N / 2; i < N; i++) verify(blocks[i], 200, (uint32_t)i);
  for (int i = 0; i < N / 2; i++) {
    blocks[i] = kiln_heap_malloc(heap, 200);
    assert_non_null(blocks[i]);
  }
  assert_int_equal(heap->page_count, pages);
  assert_int_equal(kiln_heap_allocated(heap), allocated);
  free_from_thread(blocks, N);
  void *trigger = kiln_heap_malloc(heap, 200);
  kiln_free(trigger);
  kiln_heap_collect(heap, false);
  assert_int_equal(kiln_heap_allocated(heap), 0);
  kiln_heap_destroy(heap);
}

/* A heap left alive when its thread exits: its blocks stay valid and can be
 * freed by others; an empty one is simply gone. */
typedef struct orphan_s {
  void *blocks[500];
} orphan_t;

static void *orphan_worker(void *arg) {
  orphan_t *o = arg;
  kiln_heap_t *heap = kiln_heap_new();
  for (int i = 0; i < 500; i++) {
    o->blocks[i] = kiln_heap_malloc(heap, (size_t)(i % 50) * 100 + 8);
    fill(o->blocks[i], (size_t)(i % 50) * 100 + 8, (uint32_t)i);
  }
  kiln_heap_t *empty = kiln_heap_new();
  (void)empty;
  return NULL;
}

static void test_heap_outlives_thread(void **state) {
  (void)state;
  for (int round = 0; round < 4; round++) {
    orphan_t o;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, orphan_worker, &o), 0);
    pthread_join(t, NULL);
    for (int i = 0; i < 500; i++) {
      verify(o.blocks[i], (size_t)(i % 50) * 100 + 8, (uint32_t)i);
      assert_true(kiln_usable_size(o.blocks[i]) >= (size_t)(i % 50) * 100 + 8);
    }
    for (int i = 0; i < 500; i++) kiln_free(o.blocks[i]);
  }
  kiln_collect(true);
}

/* Many heaps created and destroyed: their records and pages are reused. */
static void test_heap_churn(void **state) {
  (void)state;
  for (int i = 0; i < 50; i++) kiln_heap_destroy(kiln_heap_new()); /* warm up */
  kiln_collect(true);
  size_t mapped0 = mapped_now();
  for (int i = 0; i < 2000; i++) {
    kiln_heap_t *heap = kiln_heap_new();
    assert_non_null(heap);
    for (int j = 0; j < 20; j++) assert_non_null(kiln_heap_malloc(heap, (size_t)(j * 37 + i) % 3000));
    kiln_heap_destroy(heap);
  }
  kiln_collect(true);
  size_t mapped1 = mapped_now();
  if (mapped1 > mapped0 + ((size_t)16 << 20))
    fail_msg("2000 heap lifetimes grew mapped memory from %zu to %zu", mapped0, mapped1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_find_page),
    cmocka_unit_test(test_full_queue),
    cmocka_unit_test(test_delayed_free),
    cmocka_unit_test(test_delayed_free_drained_by_malloc),
    cmocka_unit_test(test_retire),
    cmocka_unit_test(test_heap_api),
    cmocka_unit_test(test_heap_reset_destroy),
    cmocka_unit_test(test_heap_destroy_releases_huge),
    cmocka_unit_test(test_heap_limit),
    cmocka_unit_test(test_heap_remote_free),
    cmocka_unit_test(test_heap_outlives_thread),
    cmocka_unit_test(test_heap_churn),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
