/* test_ptr.c — the pointer helpers of src/ptr.h: the segment map
 * (kiln_segment_of), page look-up, and kiln_page_block_index, which must
 * accept exactly the starts of carved blocks (checked for every byte offset
 * of a page, for every size class), and reject interior, foreign, stack and
 * static pointers and pointers into segment headers.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "test_support.h"

#include "kiln.h"
#include "ptr.h"
#include "segment.h"

#define SEG KILN_SEGMENT_SIZE

static int static_object[16];


static kiln_page_t *page_of(const void *p) {
  kiln_segment_t *segment = kiln_segment_of(p);
  assert_non_null(segment);
  kiln_page_t *page = kiln_segment_page_of(segment, p);
  assert_non_null(page);
  return page;
}

/* Blocks of every kind: their segment is the 4 MiB-aligned address below
 * them, the page holds them, and kiln_owns says so. */
static void test_segment_of_blocks(void **state) {
  (void)state;
  size_t sizes[] = {0, 1, 16, 100, 1024, 8192, 8193, 65536, 65537, (size_t)1 << 20, ((size_t)1 << 20) + 1,
                    (size_t)3 << 20, (size_t)9 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint8_t *p = kiln_malloc(sizes[i]);
    assert_non_null(p);
    kiln_segment_t *segment = kiln_segment_of(p);
    assert_ptr_equal(segment, (void *)((uintptr_t)p & ~(uintptr_t)(SEG - 1)));
    assert_true(kiln_owns(p));
    kiln_page_t *page = kiln_segment_page_of(segment, p);
    assert_non_null(page);
    assert_true(page->segment_in_use);
    size_t area;
    uint8_t *start = kiln_segment_page_area(segment, page, &area);
    assert_true(p >= start && p < start + area);
    assert_true(kiln_page_block_index(page, p) < page->capacity);
    if (sizes[i] > KILN_LARGE_BLOCK_MAX) {
      assert_int_equal(segment->kind, KILN_SEGMENT_HUGE);
      assert_int_equal(page->bin, KILN_BIN_HUGE);
    } else {
      assert_int_equal(page->block_size, kiln_bin_size[kiln_bin_of(sizes[i] ? sizes[i] : 1)]);
    }
    kiln_free(p);
  }
}

/* A huge block aligned to more than half a segment starts one chunk after
 * its header: the map's PREV entry leads back to the header. */
static void test_segment_of_prev_chunk(void **state) {
  (void)state;
  size_t alignments[] = {SEG, 2 * SEG, 8 * SEG};
  for (size_t i = 0; i < sizeof alignments / sizeof alignments[0]; i++) {
    uint8_t *p = kiln_aligned_alloc(alignments[i], (size_t)1 << 20);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % alignments[i], 0);
    kiln_segment_t *segment = kiln_segment_of(p);
    assert_ptr_equal(segment, p - SEG);
    assert_int_equal(segment->kind, KILN_SEGMENT_HUGE);
    assert_ptr_equal(kiln_segment_page_of(segment, p)->start, p);
    assert_true(kiln_usable_size(p) >= ((size_t)1 << 20));
    assert_int_equal(kiln_usable_size(p + 16), 0);
    kiln_free(p);
  }
}

/* Pointers Kiln never mapped: NULL, low and high addresses, the stack,
 * static data, code, and a foreign 4 MiB-aligned mapping that looks like
 * a segment. */
static void test_segment_of_foreign(void **state) {
  (void)state;
  int local = 0;
  uint8_t *raw = mmap(NULL, 3 * SEG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(raw != MAP_FAILED);
  uint8_t *fake = (uint8_t *)kiln_align_up((uintptr_t)raw, SEG);
  memset(fake, 0xff, SEG);
  const void *foreign[] = {
    NULL, (void *)1, (void *)4096, (void *)(uintptr_t)SEG, &local, static_object, "literal",
    (const void *)(uintptr_t)&test_segment_of_foreign, fake, fake + 64, fake + SEG - 16, raw,
    (void *)((uintptr_t)1 << 47), (void *)(((uintptr_t)1 << 47) - 16), (void *)UINTPTR_MAX,
    (void *)(UINTPTR_MAX - SEG + 1), (void *)0xffff800000000000ull,
  };
  for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
    if (kiln_segment_of(foreign[i]) != NULL) fail_msg("kiln_segment_of(%p) claims a segment", foreign[i]);
    assert_false(kiln_owns(foreign[i]));
    assert_int_equal(kiln_usable_size(foreign[i]), 0);
  }
  munmap(raw, 3 * SEG);
}

/* The map's encoding on a chunk of our own (a foreign mapping, so no Kiln
 * code looks at it meanwhile): set, read back through kiln_segment_of,
 * neighbours untouched, cleared again. */
static void test_segment_map_encoding(void **state) {
  (void)state;
  uint8_t *raw = mmap(NULL, 5 * SEG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  assert_true(raw != MAP_FAILED);
  uint8_t *c = (uint8_t *)kiln_align_up((uintptr_t)raw, SEG);
  kiln_segment_map_set((uintptr_t)c, KILN_CHUNK_START);
  kiln_segment_map_set((uintptr_t)(c + SEG), KILN_CHUNK_PREV);
  assert_ptr_equal(kiln_segment_of(c), c);
  assert_ptr_equal(kiln_segment_of(c + SEG - 1), c);
  assert_ptr_equal(kiln_segment_of(c + SEG), c);          /* PREV: header one chunk before */
  assert_ptr_equal(kiln_segment_of(c + 2 * SEG - 1), c);
  assert_null(kiln_segment_of(c + 2 * SEG));
  assert_null(kiln_segment_of(c + 3 * SEG));
  assert_null(kiln_segment_of(c - 1));
  kiln_segment_map_set((uintptr_t)c, KILN_CHUNK_PREV);    /* overwrite, not OR */
  assert_ptr_equal(kiln_segment_of(c), c - SEG);
  kiln_segment_map_set((uintptr_t)c, KILN_CHUNK_NONE);
  kiln_segment_map_set((uintptr_t)(c + SEG), KILN_CHUNK_NONE);
  for (int i = -1; i < 4; i++) assert_null(kiln_segment_of(c + i * (ptrdiff_t)SEG));
  munmap(raw, 5 * SEG);
}

/* For every bin: for every byte offset from 4 KiB before a page's first
 * block to past its end, kiln_page_block_index accepts exactly the starts of
 * carved blocks (both for the page as it is, partly carved, and as if fully
 * carved) and returns their index. */
static void check_block_index(const kiln_page_t *page, size_t area) {
  size_t bs = page->block_size, capacity = page->capacity;
  const uint8_t *start = page->start;
  size_t next_block = 0, index = 0;
  for (size_t off = 0; off < area + 2 * bs; off++) {
    size_t got = kiln_page_block_index(page, start + off);
    if (off == next_block) {
      if (index < capacity) {
        if (got != index)
          fail_msg("block size %zu, capacity %zu: offset %zu gives %zu, want %zu", bs, capacity, off, got, index);
      } else if (got < capacity) {
        fail_msg("block size %zu: uncarved block %zu (offset %zu) accepted", bs, index, off);
      }
      next_block += bs;
      index++;
    } else if (got < capacity) {
      fail_msg("block size %zu, capacity %zu: interior offset %zu accepted as %zu", bs, capacity, off, got);
    }
  }
  for (size_t back = 1; back <= 4096; back++)
    if (kiln_page_block_index(page, start - back) < capacity)
      fail_msg("block size %zu: %zu bytes before the page accepted", bs, back);
}

static void test_block_index_exhaustive(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  assert_non_null(heap);
  int local;
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin++) {
    size_t bs = kiln_bin_size[bin];
    if (light() && bin % 8 != 0) continue;
    uint8_t *p = kiln_heap_malloc(heap, bs);
    assert_non_null(p);
    kiln_segment_t *segment = kiln_segment_of(p);
    kiln_page_t *page = page_of(p);
    assert_int_equal(page->block_size, bs);
    size_t area;
    kiln_segment_page_area(segment, page, &area);
    assert_int_equal(page->reserved, area / bs > UINT16_MAX ? UINT16_MAX : area / bs);
    assert_true(page->capacity >= 1 && page->capacity <= page->reserved);
    check_block_index(page, area); /* as carved */
    kiln_page_t full = *page;
    full.capacity = full.reserved;
    check_block_index(&full, area); /* every block carved */
    /* Foreign pointers against this page. */
    const void *foreign[] = {&local, static_object, (void *)(uintptr_t)&test_block_index_exhaustive, NULL,
                             (void *)segment, (uint8_t *)segment + 64, &segment->pages[0], (void *)UINTPTR_MAX};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
      if (kiln_page_block_index(&full, foreign[i]) < full.capacity)
        fail_msg("block size %zu: foreign pointer %p accepted", bs, foreign[i]);
    kiln_free(p);
  }
  kiln_heap_destroy(heap);
}

/* The public look-ups built on it: interior pointers and pointers into a
 * segment header have no usable size; block starts do. */
static void test_usable_size_rejects(void **state) {
  (void)state;
  size_t sizes[] = {16, 48, 1000, 8192, 20000, 65536, 300000, (size_t)1 << 20, (size_t)2 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    uint8_t *p = kiln_malloc(sizes[i]);
    assert_non_null(p);
    size_t usable = kiln_usable_size(p);
    assert_true(usable >= sizes[i]);
    size_t offsets[] = {1, 8, 15, 16, 32, sizes[i] / 2, sizes[i] - 1};
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
      if (offsets[o] == 0 || offsets[o] >= usable) continue;
      if (kiln_usable_size(p + offsets[o]) != 0)
        fail_msg("size %zu: interior pointer +%zu has usable size %zu", sizes[i], offsets[o],
                 kiln_usable_size(p + offsets[o]));
    }
    uint8_t *segment = (uint8_t *)kiln_segment_of(p);
    const uint8_t *header[] = {segment, segment + 8, segment + 16, segment + 4096 - 16};
    for (size_t h = 0; h < sizeof header / sizeof header[0]; h++) {
      if (header[h] >= p) continue;
      if (kiln_usable_size(header[h]) != 0)
        fail_msg("size %zu: segment header byte %p has a usable size", sizes[i], (void *)header[h]);
    }
    kiln_free(p);
  }
}

/* A block of a page that was given back no longer counts. */
static void test_freed_page_rejects(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  assert_non_null(heap);
  uint8_t *small = kiln_heap_malloc(heap, 100);
  uint8_t *large = kiln_heap_malloc(heap, 500000);
  assert_non_null(small);
  assert_non_null(large);
  assert_true(kiln_usable_size(small) >= 100);
  kiln_page_t *small_page = page_of(small);
  kiln_heap_destroy(heap);
  /* The small page's segment may live on (other pages, cache), but the page
   * itself is free; the large segment is gone from the map or free. */
  kiln_segment_t *s = kiln_segment_of(small);
  if (s != NULL) {
    assert_false(small_page->segment_in_use);
    assert_true(kiln_page_block_index(small_page, small) >= small_page->capacity);
  }
  assert_int_equal(kiln_usable_size(small), 0);
  assert_int_equal(kiln_usable_size(large), 0);
}

/* kiln.h: kiln_owns(p) is true for "a pointer into Kiln-managed memory";
 * a huge block spans several 4 MiB chunks, and every byte of it is Kiln's. */
static void test_owns_huge_interior(void **state) {
  (void)state;
  size_t size = (size_t)12 << 20;
  uint8_t *p = kiln_malloc(size);
  assert_non_null(p);
  size_t offsets[] = {0, 16, SEG - 16, SEG, SEG + 16, 2 * SEG + 100, size - 1};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
    if (!kiln_owns(p + offsets[i])) {
      kiln_free(p);
      fail_msg("kiln_owns(block + %zu) is false for a live %zu-byte block", offsets[i], size);
    }
  kiln_free(p);
}

static void *thread_id_worker(void *arg) {
  uintptr_t *out = arg;
  out[0] = kiln_thread_id();
  out[1] = kiln_thread_id();
  return NULL;
}

/* kiln_thread_id: non-zero, stable within a thread, not the main thread's. */
static void test_thread_id(void **state) {
  (void)state;
  enum { N = 8 };
  uintptr_t ids[N][2];
  pthread_t threads[N];
  for (int i = 0; i < N; i++) assert_int_equal(pthread_create(&threads[i], NULL, thread_id_worker, ids[i]), 0);
  for (int i = 0; i < N; i++) pthread_join(threads[i], NULL);
  uintptr_t me = kiln_thread_id();
  assert_int_not_equal(me, 0);
  assert_int_equal(me, kiln_thread_id());
  for (int i = 0; i < N; i++) {
    assert_int_equal(ids[i][0], ids[i][1]);
    assert_int_not_equal(ids[i][0], 0);
    assert_int_not_equal(ids[i][0], me);
  }
}

static pthread_barrier_t id_barrier;

static void *thread_id_barrier_worker(void *arg) {
  *(uintptr_t *)arg = kiln_thread_id();
  pthread_barrier_wait(&id_barrier);
  return NULL;
}

/* Distinct between threads alive at the same time (a barrier keeps them). */
/* kiln_word_high_half reads bits 32-63 of a word, whatever the byte order,
 * and only those: the other half may hold anything. */
static void test_word_high_half(void **state) {
  (void)state;
  static const uint64_t words[] = {0, 1, UINT32_MAX, (uint64_t)UINT32_MAX + 1, 0x0123456789abcdefull,
                                   0xfedcba9876543210ull, UINT64_MAX};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    uint64_t word = words[i];
    assert_int_equal(kiln_word_high_half(&word), (uint32_t)(words[i] >> 32));
    uintptr_t pointer = (uintptr_t)words[i];
    assert_int_equal(kiln_word_high_half(&pointer), (uint32_t)(words[i] >> 32));
  }
}

static void test_thread_id_distinct(void **state) {
  (void)state;
  enum { N = 8 };
  uintptr_t ids[N];
  pthread_t threads[N];
  pthread_barrier_init(&id_barrier, NULL, N);
  for (int i = 0; i < N; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, thread_id_barrier_worker, &ids[i]), 0);
  for (int i = 0; i < N; i++) pthread_join(threads[i], NULL);
  pthread_barrier_destroy(&id_barrier);
  for (int i = 0; i < N; i++)
    for (int j = i + 1; j < N; j++)
      if (ids[i] == ids[j]) fail_msg("threads %d and %d (alive together) share id %#lx", i, j, (unsigned long)ids[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_segment_of_blocks),
    cmocka_unit_test(test_segment_of_prev_chunk),
    cmocka_unit_test(test_segment_of_foreign),
    cmocka_unit_test(test_segment_map_encoding),
    cmocka_unit_test(test_block_index_exhaustive),
    cmocka_unit_test(test_usable_size_rejects),
    cmocka_unit_test(test_freed_page_rejects),
    cmocka_unit_test(test_owns_huge_interior),
    cmocka_unit_test(test_thread_id),
    cmocka_unit_test(test_thread_id_distinct),
    cmocka_unit_test(test_word_high_half),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
