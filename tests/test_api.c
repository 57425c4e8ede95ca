/* test_api.c — the contract of the malloc family (issue 2, "Contract"), one
 * test per point, through the kiln_* entry points of include/kiln.h only:
 * this file also builds against libkiln.so (tests/programs.cmake,
 * test_api_override), where KILN_TEST_OVERRIDE adds the checks that the
 * unprefixed libc names reach Kiln.  Foreign pointers, memory return,
 * statistics and the limit are in test_api_memory.c.
 *
 *   alignment            >= 16 always; any power of two up to 64 MiB on request
 *   usable size          >= the request, every byte writable, blocks disjoint
 *   calloc               zeroed, also when reusing dirty blocks; overflow -> ENOMEM
 *   too large            SIZE_MAX, PTRDIFF_MAX + 1 -> NULL/ENOMEM everywhere
 *   realloc              keeps min(old, new) in every direction between small,
 *                        medium, large and huge; in place when it fits; on
 *                        failure NULL/ENOMEM and the block untouched;
 *                        realloc(NULL, n) == malloc(n); realloc(p, 0) frees, NULL
 *   malloc(0)            unique and freeable
 *   posix_memalign       EINVAL for bad alignments, out-pointer untouched
 *   aligned_alloc        EINVAL for a non-power of two
 *   memalign             rounds the alignment up to a power of two
 *   valloc, pvalloc      page alignment (pvalloc: page-rounded size)
 *   NULL                 free(NULL), usable_size(NULL) harmless
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_support.h"
#include "kiln.h"
#include "test_support.h"

/* --- alignment ---------------------------------------------------------------- */

/* Every entry point returns 16-byte aligned blocks, for every size up to
 * 4 KiB and then a spread up to 64 MiB. */
static void test_min_alignment(void **state) {
  (void)state;
  size_t max = light() ? 8 * MiB : 70 * MiB;
  for (size_t size = 0; size <= max; size = size < 4096 ? size + 1 : size * 5 / 4) {
    void *p[7] = {
      kiln_malloc(size), kiln_calloc(1, size), kiln_realloc(NULL, size), kiln_aligned_alloc(8, size),
      kiln_memalign(8, size), kiln_reallocarray(NULL, 1, size), NULL,
    };
    assert_int_equal(kiln_posix_memalign(&p[6], 8, size), 0);
    for (int i = 0; i < 7; i++) {
      if (p[i] == NULL) fail_msg("call %d for %zu bytes returned NULL", i, size);
      if (!aligned(p[i], 16)) fail_msg("call %d for %zu bytes: %p is not 16-aligned", i, size, p[i]);
      if (kiln_usable_size(p[i]) < size) fail_msg("call %d for %zu bytes: usable %zu", i, size, kiln_usable_size(p[i]));
    }
    for (int i = 0; i < 7; i++) kiln_free(p[i]);
  }
}

/* Requested alignments 1 .. 64 MiB through every aligned entry point (and
 * first-class heaps), with sizes around the alignment; several blocks live
 * at once, each filled over its whole usable size and checked afterwards
 * (disjoint, writable). */
static void test_requested_alignment(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  size_t max_alignment = light() ? 4 * MiB : 64 * MiB;
  for (size_t a = 1; a <= max_alignment; a <<= 1) {
    size_t sizes[] = {0, 1, a > 1 ? a - 1 : 1, a, a + 1, 3 * a + 5, 1000};
    size_t n_sizes = a > 4 * MiB ? 3 : sizeof sizes / sizeof sizes[0];
    if (a > 4 * MiB) sizes[2] = a + 1;
    enum { K = 4 };
    void *blocks[K * 16];
    size_t usable[K * 16], count = 0;
    for (size_t s = 0; s < n_sizes; s++) {
      size_t size = sizes[s];
      void *p;
      for (int f = 0; f < K; f++) {
        int rc = 0;
        switch (f) {
          case 0: p = kiln_aligned_alloc(a, size); break;
          case 1: p = NULL; rc = kiln_posix_memalign(&p, a < sizeof(void *) ? sizeof(void *) : a, size); break;
          case 2: p = kiln_memalign(a, size); break;
          default: p = kiln_heap_aligned_alloc(heap, a, size); break;
        }
        if (p == NULL || rc != 0) fail_msg("alignment %zu size %zu: call %d failed (rc %d)", a, size, f, rc);
        if (!aligned(p, a < 16 ? 16 : a)) fail_msg("alignment %zu size %zu: call %d gave %p", a, size, f, p);
        usable[count] = kiln_usable_size(p);
        if (usable[count] < size) fail_msg("alignment %zu size %zu: usable %zu", a, size, usable[count]);
        /* Fill the whole usable size (bounded for the giant ones).  A
         * zero-size request may have no usable byte (test_aligned_zero_size). */
        size_t n = usable[count] > 16 * MiB ? 16 * MiB : usable[count];
        fill(p, n, (uint32_t)count);
        if (usable[count] > 0) ((uint8_t *)p)[usable[count] - 1] = 0x5c;
        blocks[count++] = p;
      }
    }
    for (size_t i = 0; i < count; i++) {
      size_t n = usable[i] > 16 * MiB ? 16 * MiB : usable[i];
      if (n > 0 && n == usable[i]) n--;
      if (!intact(blocks[i], n, (uint32_t)i) || (usable[i] > 0 && ((uint8_t *)blocks[i])[usable[i] - 1] != 0x5c))
        fail_msg("alignment %zu: block %zu overwritten by another", a, i);
      kiln_free(blocks[i]);
    }
  }
  kiln_heap_destroy(heap);
}

/* A zero-size request with a large alignment is still a block: Kiln maps
 * memory at the returned address (so the segment map's entry for it is
 * Kiln's own) and gives it a usable size, as malloc(0) has 16 bytes. */
static void test_aligned_zero_size(void **state) {
  (void)state;
  for (size_t a = 16; a <= 64 * MiB; a <<= 1) {
    uint8_t *p = kiln_aligned_alloc(a, 0);
    assert_non_null(p);
    assert_true(aligned(p, a));
    unsigned char vec;
    bool mapped = mincore((void *)((uintptr_t)p & ~(uintptr_t)(page_size() - 1)), page_size(), &vec) == 0;
    size_t usable = kiln_usable_size(p);
    if (mapped && usable > 0) memset(p, 1, usable);
    kiln_free(p);
    if (!mapped || usable == 0)
      fail_msg("aligned_alloc(%zu, 0) = %p: usable size %zu, address %s", a, (void *)p, usable,
               mapped ? "mapped" : "NOT MAPPED (one past the end of its mapping)");
  }
}

/* --- usable size ------------------------------------------------------------- */

/* Many live blocks of mixed sizes, each filled over its whole usable size:
 * none overlaps another, and the contents survive frees and new
 * allocations around them. */
static void test_usable_writable_disjoint(void **state) {
  (void)state;
  enum { NMAX = 3000 };
  static uint8_t *blocks[NMAX];
  static size_t usable[NMAX];
  const int N = light() ? 300 : NMAX;
  rng_state = 12345;
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < N; i++) {
      if (round == 1 && i % 2 == 0) continue;
      uint64_t r = rng();
      size_t size = r % 100 == 0 ? (size_t)(r >> 8) % (2 * MiB) : r % 10 == 0 ? (size_t)(r >> 8) % 70000
                                                                                : (size_t)(r >> 8) % 2000;
      blocks[i] = kiln_malloc(size);
      assert_non_null(blocks[i]);
      usable[i] = kiln_usable_size(blocks[i]);
      assert_true(usable[i] >= size);
      fill(blocks[i], usable[i], (uint32_t)(i + round * N));
    }
    for (int i = 0; i < N; i++) {
      if (!intact(blocks[i], usable[i], (uint32_t)(i + ((round == 1 && i % 2 == 1) ? N : 0))))
        fail_msg("round %d: block %d (%zu usable bytes) overwritten", round, i, usable[i]);
    }
    for (int i = 1; i < N; i += 2) kiln_free(blocks[i]);
  }
  for (int i = 0; i < N; i += 2) kiln_free(blocks[i]);
}

/* --- calloc -------------------------------------------------------------------- */

static void check_zero(const uint8_t *p, size_t n, const char *what, size_t size) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) fail_msg("%s of %zu bytes: byte %zu is %#x", what, size, i, p[i]);
}

/* calloc after the same sizes were allocated, dirtied and freed (so it
 * reuses those blocks): every byte zero.  Also for blocks freed by another
 * thread's frees... (test_threads) and for cached huge mappings. */
static void test_calloc_reuses_dirty(void **state) {
  (void)state;
  enum { K = 64 };
  void *blocks[K];
  for (size_t s = 0; s < N_CLASS_SIZES; s++) {
    size_t size = class_sizes[s];
    int k = size > MiB ? 3 : K;
    for (int i = 0; i < k; i++) {
      blocks[i] = kiln_malloc(size);
      assert_non_null(blocks[i]);
      memset(blocks[i], 0xa5, kiln_usable_size(blocks[i]));
    }
    for (int i = 0; i < k; i++) kiln_free(blocks[i]);
    for (int i = 0; i < k; i++) {
      uint8_t *p = i % 2 ? kiln_calloc(1, size) : kiln_calloc(size ? size : 1, size ? 1 : 0);
      assert_non_null(p);
      check_zero(p, size, "calloc", size);
      memset(p, 0x5a, size);
      blocks[i] = p;
    }
    for (int i = 0; i < k; i++) kiln_free(blocks[i]);
  }
  /* n * size split differently, and the first-class heap's calloc. */
  kiln_heap_t *heap = kiln_heap_new();
  for (size_t n = 1; n <= 4096; n *= 4) {
    uint8_t *d = kiln_heap_malloc(heap, 3 * n + 1);
    memset(d, 0xff, 3 * n + 1);
    kiln_free(d);
    uint8_t *z = kiln_heap_calloc(heap, n, 3);
    check_zero(z, 3 * n, "kiln_heap_calloc", 3 * n);
    kiln_free(z);
  }
  kiln_heap_destroy(heap);
}

/* Huge blocks come back from the mapping cache: calloc must clear them. */
static void test_calloc_huge_cache(void **state) {
  (void)state;
  size_t sizes[] = {2 * MiB, 5 * MiB, 8 * MiB, 12 * MiB};
  for (size_t i = 0; i < 4; i++) {
    for (size_t j = 0; j < 4; j++) {
      uint8_t *dirty = kiln_malloc(sizes[i]);
      assert_non_null(dirty);
      memset(dirty, 0xc3, kiln_usable_size(dirty));
      kiln_free(dirty);
      uint8_t *z = kiln_calloc(sizes[j], 1);
      assert_non_null(z);
      check_zero(z, sizes[j], "calloc after a huge free", sizes[j]);
      kiln_free(z);
    }
  }
}

static void test_calloc_overflow(void **state) {
  (void)state;
  const size_t half = SIZE_MAX / 2 + 1;
  size_t pairs[][2] = {
    {half, 2}, {2, half}, {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, 2},
    {(size_t)PTRDIFF_MAX / 2 + 1, 2}, /* no overflow, but above PTRDIFF_MAX */
    {(size_t)PTRDIFF_MAX, 1}, {1, SIZE_MAX},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *p = kiln_calloc(pairs[i][0], pairs[i][1]);
    if (p != NULL) fail_msg("calloc(%zu, %zu) succeeded", pairs[i][0], pairs[i][1]);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(kiln_reallocarray(NULL, pairs[i][0], pairs[i][1]));
    assert_int_equal(errno, ENOMEM);
  }
}

/* --- requests that cannot be met ------------------------------------------------ */

static void test_too_large(void **state) {
  (void)state;
  size_t bad[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 4096,
                  SIZE_MAX - 4096, SIZE_MAX - MiB};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t n = bad[i];
#define EXPECT_ENOMEM(call)                                                  \
  do {                                                                       \
    errno = 0;                                                               \
    void *r_ = (call);                                                       \
    if (r_ != NULL) fail_msg("%s with %zu succeeded", #call, n);             \
    if (errno != ENOMEM) fail_msg("%s with %zu: errno %d", #call, n, errno); \
  } while (0)
    EXPECT_ENOMEM(kiln_malloc(n));
    EXPECT_ENOMEM(kiln_calloc(1, n));
    EXPECT_ENOMEM(kiln_realloc(NULL, n));
    EXPECT_ENOMEM(kiln_reallocarray(NULL, n, 1));
    EXPECT_ENOMEM(kiln_aligned_alloc(64, n));
    EXPECT_ENOMEM(kiln_aligned_alloc(8 * MiB, n));
    EXPECT_ENOMEM(kiln_memalign(4096, n));
    EXPECT_ENOMEM(kiln_valloc(n));
    EXPECT_ENOMEM(kiln_pvalloc(n));
    void *out = (void *)static_object;
    errno = 0;
    assert_int_equal(kiln_posix_memalign(&out, 64, n), ENOMEM);
    assert_ptr_equal(out, static_object);
    kiln_heap_t *heap = kiln_heap_new();
    EXPECT_ENOMEM(kiln_heap_malloc(heap, n));
    EXPECT_ENOMEM(kiln_heap_calloc(heap, n, 1));
    EXPECT_ENOMEM(kiln_heap_aligned_alloc(heap, 256, n));
    kiln_heap_destroy(heap);
  }
  /* Alignments no mapping can meet. */
  size_t n = 1;
  EXPECT_ENOMEM(kiln_aligned_alloc((size_t)1 << 62, n));
  EXPECT_ENOMEM(kiln_aligned_alloc((size_t)1 << 63, n));
#undef EXPECT_ENOMEM
}

/* --- realloc ------------------------------------------------------------------- */

/* Every pair of sizes across the kinds, both directions: the first
 * min(old, new) bytes survive, the result is aligned and usable. */
static void test_realloc_preserves(void **state) {
  (void)state;
  for (size_t a = 0; a < N_CLASS_SIZES; a++) {
    for (size_t b = 0; b < N_CLASS_SIZES; b++) {
      size_t from = class_sizes[a], to = class_sizes[b];
      uint8_t *p = kiln_malloc(from);
      assert_non_null(p);
      uint32_t seed = (uint32_t)(a * 100 + b);
      fill(p, from, seed);
      uint8_t *q = kiln_realloc(p, to);
      if (to == 0) {
        assert_null(q); /* realloc(p, 0) frees */
        continue;
      }
      if (q == NULL) fail_msg("realloc %zu -> %zu failed", from, to);
      assert_true(aligned(q, 16));
      assert_true(kiln_usable_size(q) >= to);
      size_t keep = from < to ? from : to;
      if (!intact(q, keep, seed)) fail_msg("realloc %zu -> %zu lost the contents", from, to);
      memset(q, 0x77, to);
      kiln_free(q);
    }
  }
}

/* One block grown step by step from 1 byte to 96 MiB and shrunk back
 * (through every kind, in-place and moving, the huge growth path), its
 * contents checked at every step. */
static void test_realloc_chain(void **state) {
  (void)state;
  size_t max = light() ? 8 * MiB : 96 * MiB;
  uint8_t *p = kiln_malloc(1);
  size_t size = 1;
  fill(p, 1, 1);
  uint32_t seed = 1;
  while (size < max) {
    size_t to = size * 3 / 2 + 1;
    uint8_t *q = kiln_realloc(p, to);
    if (q == NULL) fail_msg("realloc %zu -> %zu failed", size, to);
    if (!intact(q, size, seed)) fail_msg("realloc %zu -> %zu lost the contents", size, to);
    assert_true(kiln_usable_size(q) >= to);
    p = q;
    size = to;
    fill(p, size, ++seed);
  }
  while (size > 1) {
    size_t to = size / 3;
    if (to == 0) to = 1;
    uint8_t *q = kiln_realloc(p, to);
    if (q == NULL) fail_msg("realloc %zu -> %zu failed", size, to);
    if (!intact(q, to, seed)) fail_msg("realloc %zu -> %zu lost the contents", size, to);
    assert_true(kiln_usable_size(q) >= to);
    p = q;
    size = to;
    fill(p, size, ++seed);
  }
  kiln_free(p);
}

/* Blocks from the aligned entry points resize too (their start is not the
 * block start inside Kiln, or they live one chunk after their header). */
static void test_realloc_aligned_blocks(void **state) {
  (void)state;
  size_t alignments[] = {64, 4096, 8192, 64 * KiB, MiB, SEG, 2 * SEG};
  size_t targets[] = {1, 100, 5000, 70000, 2 * MiB, 10 * MiB};
  for (size_t i = 0; i < sizeof alignments / sizeof alignments[0]; i++) {
    for (size_t j = 0; j < sizeof targets / sizeof targets[0]; j++) {
      size_t size = 3000;
      uint8_t *p = kiln_aligned_alloc(alignments[i], size);
      assert_non_null(p);
      fill(p, size, (uint32_t)(i * 10 + j));
      uint8_t *q = kiln_realloc(p, targets[j]);
      assert_non_null(q);
      verify(q, size < targets[j] ? size : targets[j], (uint32_t)(i * 10 + j));
      assert_true(kiln_usable_size(q) >= targets[j]);
      kiln_free(q);
    }
  }
}

/* In place when the block already fits: growing within the usable size
 * returns the same pointer for every kind, and so does shrinking to 3/4 of
 * it (small to large; a huge block shrinks in place while it stays huge,
 * giving its tail back). */
static void test_realloc_in_place(void **state) {
  (void)state;
  for (size_t s = 1; s < N_CLASS_SIZES; s++) {
    size_t size = class_sizes[s];
    uint8_t *p = kiln_malloc(size);
    size_t usable = kiln_usable_size(p);
    fill(p, size, 3);
    if (kiln_realloc(p, usable) != p) fail_msg("realloc(%zu-byte block, its usable size %zu) moved it", size, usable);
    size_t keep = size;
    if (size >= 64 && size <= MiB) {
      keep = usable * 3 / 4 < size ? usable * 3 / 4 : size;
      if (kiln_realloc(p, usable * 3 / 4) != p) fail_msg("realloc shrinking %zu to %zu moved it", usable, usable * 3 / 4);
    }
    verify(p, keep, 3);
    kiln_free(p);
  }
  uint8_t *big = kiln_malloc(32 * MiB);
  fill(big, 32 * MiB, 5);
  size_t mapped0 = stats().mapped;
  uint8_t *smaller = kiln_realloc(big, 20 * MiB);
  assert_ptr_equal(smaller, big);
  assert_true(kiln_usable_size(smaller) >= 20 * MiB && kiln_usable_size(smaller) < 21 * MiB);
  assert_true(stats().mapped <= mapped0 - 11 * MiB);
  verify(smaller, 20 * MiB, 5);
  kiln_free(smaller);
}

/* A failed realloc returns NULL with ENOMEM and leaves the block as it was
 * (contents, usable size, still freeable): sizes that can never be met,
 * overflowing reallocarray, and the memory limit. */
static void test_realloc_failure_keeps_block(void **state) {
  (void)state;
  for (size_t s = 1; s < N_CLASS_SIZES; s++) {
    size_t size = class_sizes[s];
    uint8_t *p = kiln_malloc(size);
    size_t usable = kiln_usable_size(p);
    fill(p, size, 11);
    size_t bad[] = {SIZE_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX};
    for (size_t i = 0; i < 3; i++) {
      errno = 0;
      assert_null(kiln_realloc(p, bad[i]));
      assert_int_equal(errno, ENOMEM);
    }
    errno = 0;
    volatile size_t third = SIZE_MAX / 3 + 1; /* volatile: gcc would warn about the constant product */
    assert_null(kiln_reallocarray(p, third, 3));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(kiln_usable_size(p), usable);
    verify(p, size, 11);
    /* Past the process limit. */
    size_t old_limit = kiln_get_limit();
    kiln_set_limit(stats().committed + MiB);
    errno = 0;
    void *r = kiln_realloc(p, size + 64 * MiB);
    int err = errno;
    kiln_set_limit(old_limit);
    if (r != NULL) {
      kiln_free(r);
      fail_msg("realloc(%zu -> +64 MiB) succeeded past the limit", size);
    }
    assert_int_equal(err, ENOMEM);
    assert_int_equal(kiln_usable_size(p), usable);
    verify(p, size, 11);
    kiln_free(p);
  }
}

static void test_realloc_null_and_zero(void **state) {
  (void)state;
  uint8_t *p = kiln_realloc(NULL, 100);
  assert_non_null(p);
  assert_true(kiln_usable_size(p) >= 100);
  void *z = kiln_realloc(NULL, 0);
  assert_non_null(z); /* realloc(NULL, 0) is malloc(0) */
  kiln_free(z);
  /* realloc(p, 0) frees p and returns NULL (glibc): the block is gone. */
  size_t bin = stats_bin(5120);
  uint8_t *q = kiln_malloc(5000);
  kiln_stats_t before = stats();
  errno = 0;
  assert_null(kiln_realloc(q, 0));
  kiln_stats_t after = stats();
  assert_int_equal(before.bin_current[bin] - after.bin_current[bin], 1);
  assert_null(kiln_reallocarray(p, 0, 10));
  void *h = kiln_malloc(5 * MiB);
  assert_null(kiln_realloc(h, 0));
}

/* --- malloc(0), posix_memalign, aligned_alloc, memalign, valloc, pvalloc ---------- */

static void test_malloc_zero(void **state) {
  (void)state;
  enum { N = 1000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) {
    switch (i % 6) {
      case 0: blocks[i] = kiln_malloc(0); break;
      case 1: blocks[i] = kiln_calloc(0, 0); break;
      case 2: blocks[i] = kiln_calloc(0, 7); break;
      case 3: blocks[i] = kiln_aligned_alloc(64, 0); break;
      case 4: blocks[i] = kiln_memalign(256, 0); break;
      default: assert_int_equal(kiln_posix_memalign(&blocks[i], 4096, 0), 0); break;
    }
    assert_non_null(blocks[i]);
    assert_true(aligned(blocks[i], 16));
  }
  assert_int_equal(kiln_usable_size(blocks[0]), 16); /* kiln.h: usable size 16 */
  /* Unique: sort the addresses and look for neighbours. */
  for (int i = 1; i < N; i++) {
    void *key = blocks[i];
    int j = i - 1;
    while (j >= 0 && (uintptr_t)blocks[j] > (uintptr_t)key) {
      blocks[j + 1] = blocks[j];
      j--;
    }
    blocks[j + 1] = key;
  }
  for (int i = 1; i < N; i++) assert_ptr_not_equal(blocks[i], blocks[i - 1]);
  for (int i = 0; i < N; i++) kiln_free(blocks[i]);
}

static void test_posix_memalign(void **state) {
  (void)state;
  size_t bad[] = {0, 1, 2, 4, 3, 12, 24, 40, 48, 100, 4097, sizeof(void *) * 3, SIZE_MAX,
                  ((size_t)1 << 63) + 8, ((size_t)1 << 20) + 8};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *out = (void *)static_object;
    errno = 1234;
    int rc = kiln_posix_memalign(&out, bad[i], 100);
    if (rc != EINVAL) fail_msg("posix_memalign alignment %zu: %d, want EINVAL", bad[i], rc);
    assert_ptr_equal(out, static_object); /* untouched */
    assert_int_equal(errno, 1234);        /* the result is returned, not put in errno */
  }
  for (size_t a = sizeof(void *); a <= 64 * MiB; a <<= 1) {
    void *out = NULL;
    assert_int_equal(kiln_posix_memalign(&out, a, 200), 0);
    assert_non_null(out);
    assert_true(aligned(out, a));
    kiln_free(out);
  }
}

static void test_aligned_alloc(void **state) {
  (void)state;
  size_t bad[] = {0, 3, 5, 12, 24, 48, 100, 4097, SIZE_MAX, ((size_t)1 << 63) + 1};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    assert_null(kiln_aligned_alloc(bad[i], 64));
    if (errno != EINVAL) fail_msg("aligned_alloc(%zu, 64): errno %d, want EINVAL", bad[i], errno);
  }
  /* Size need not be a multiple of the alignment (glibc). */
  void *p = kiln_aligned_alloc(256, 1000);
  assert_non_null(p);
  assert_true(aligned(p, 256));
  kiln_free(p);
  for (size_t a = 1; a < 16; a <<= 1) {
    p = kiln_aligned_alloc(a, 10);
    assert_non_null(p);
    assert_true(aligned(p, 16));
    kiln_free(p);
  }
}

static void test_memalign_rounding(void **state) {
  (void)state;
  struct { size_t asked, want; } cases[] = {
    {0, 16}, {1, 16}, {3, 16}, {24, 32}, {33, 64}, {100, 128}, {3000, 4096}, {5000, 8192},
    {(1u << 20) + 1, 2u << 20}, {(3u << 20), 4u << 20},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    for (size_t size = 1; size <= 100000; size *= 10) {
      uint8_t *p = kiln_memalign(cases[i].asked, size);
      if (p == NULL) fail_msg("memalign(%zu, %zu) failed", cases[i].asked, size);
      if (!aligned(p, cases[i].want))
        fail_msg("memalign(%zu, %zu) = %p, not %zu-aligned", cases[i].asked, size, (void *)p, cases[i].want);
      memset(p, 1, size);
      kiln_free(p);
    }
  }
  size_t bad[] = {SIZE_MAX, ((size_t)1 << 63) + 1};
  for (size_t i = 0; i < 2; i++) {
    errno = 0;
    assert_null(kiln_memalign(bad[i], 1));
    assert_true(errno == EINVAL || errno == ENOMEM);
  }
}

static void test_valloc_pvalloc(void **state) {
  (void)state;
  size_t page = page_size();
  size_t sizes[] = {0, 1, 100, page - 1, page, page + 1, 5 * page + 3, MiB, 3 * MiB + 1};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t size = sizes[i];
    uint8_t *v = kiln_valloc(size);
    assert_non_null(v);
    assert_true(aligned(v, page));
    assert_true(kiln_usable_size(v) >= size);
    memset(v, 2, size);
    uint8_t *pv = kiln_pvalloc(size);
    assert_non_null(pv);
    assert_true(aligned(pv, page));
    size_t rounded = size == 0 ? page : (size + page - 1) / page * page;
    if (kiln_usable_size(pv) < rounded) fail_msg("pvalloc(%zu): usable %zu < %zu", size, kiln_usable_size(pv), rounded);
    memset(pv, 3, rounded); /* the whole rounded size is the program's */
    kiln_free(v);
    kiln_free(pv);
  }
}

/* --- NULL and sized frees ---------------------------------------------------------- */

static void test_null_and_sized_free(void **state) {
  (void)state;
  kiln_stats_t before = stats();
  kiln_free(NULL);
  kiln_free_sized(NULL, 0);
  kiln_free_sized(NULL, 100);
  kiln_free_aligned_sized(NULL, 64, 100);
  assert_int_equal(kiln_usable_size(NULL), 0);
  assert_false(kiln_owns(NULL));
  kiln_stats_t after = stats();
  assert_int_equal(after.invalid_free_count, before.invalid_free_count);
  size_t bin = stats_bin(5120);
  void *p = kiln_malloc(5000);
  void *q = kiln_aligned_alloc(1024, 5000);
  void *h = kiln_aligned_alloc(64, 7 * MiB);
  before = stats();
  kiln_free_sized(p, 5000);
  kiln_free_aligned_sized(q, 1024, 5000);
  kiln_free_aligned_sized(h, 64, 7 * MiB);
  after = stats();
  assert_int_equal(before.bin_current[bin] - after.bin_current[bin], 2);
  assert_int_equal(after.invalid_free_count, before.invalid_free_count);
}

/* --- the libc names (KILN_TEST_OVERRIDE: linked against libkiln.so) ----------------------- */
#ifdef KILN_TEST_OVERRIDE
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
void free_sized(void *, size_t);
void free_aligned_sized(void *, size_t, size_t);

static void test_override_family(void **state) {
  (void)state;
  void *p[12];
  p[0] = malloc(100);
  p[1] = calloc(10, 10);
  p[2] = realloc(NULL, 100);
  p[3] = reallocarray(NULL, 10, 10);
  p[4] = aligned_alloc(64, 100);
  p[5] = NULL;
  assert_int_equal(posix_memalign(&p[5], 128, 100), 0);
  p[6] = memalign(256, 100);
  p[7] = valloc(100);
  p[8] = pvalloc(100);
  p[9] = __libc_malloc(100);
  p[10] = __libc_calloc(1, 100);
  p[11] = __libc_memalign(512, 100);
  for (int i = 0; i < 12; i++) {
    if (p[i] == NULL || !kiln_owns(p[i])) fail_msg("allocation %d did not come from Kiln", i);
    assert_int_equal(malloc_usable_size(p[i]), kiln_usable_size(p[i]));
  }
  p[9] = __libc_realloc(p[9], 5000);
  assert_true(kiln_owns(p[9]));
  __libc_free(p[9]);
  free_sized(p[0], 100);
  free_aligned_sized(p[4], 64, 100);
  for (int i = 1; i < 12; i++)
    if (i != 4 && i != 9) free(p[i]);
  assert_int_equal(malloc_usable_size(NULL), 0);
  free(NULL);
}

static void test_override_errno(void **state) {
  (void)state;
  volatile size_t max = SIZE_MAX; /* volatile: gcc would warn about the constants */
  errno = 0;
  assert_null(malloc(max));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(calloc(max / 2, 3));
  assert_int_equal(errno, ENOMEM);
  errno = 0;
  assert_null(aligned_alloc(24, 100));
  assert_int_equal(errno, EINVAL);
  void *out = static_object;
  assert_int_equal(posix_memalign(&out, 24, 100), EINVAL);
  assert_ptr_equal(out, static_object);
  void *p = malloc(10);
  errno = 0;
  assert_null(realloc(p, max));
  assert_int_equal(errno, ENOMEM);
  assert_null(realloc(p, 0)); /* frees, like glibc */
  void *z = malloc(0);
  assert_non_null(z);
  free(z);
}

/* The C library's own allocations (strdup, asprintf, stdio buffers, getline)
 * reach Kiln, and the glibc extras are answered. */
static void test_override_libc_internal(void **state) {
  (void)state;
  char *s = strdup("kiln");
  assert_true(kiln_owns(s));
  free(s);
  char *a = NULL;
  assert_true(asprintf(&a, "%d-%s", 42, "x") > 0);
  assert_true(kiln_owns(a));
  free(a);
  FILE *f = tmpfile();
  assert_non_null(f);
  fputs("line one\nline two\n", f);
  rewind(f);
  char *line = NULL;
  size_t cap = 0;
  assert_true(getline(&line, &cap, f) > 0);
  assert_true(kiln_owns(line));
  free(line);
  fclose(f);
  assert_int_equal(mallopt(M_ARENA_MAX, 1), 1);
  (void)malloc_trim(0);
  struct mallinfo2 mi = mallinfo2();
  assert_true(mi.arena > 0);
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_min_alignment),
    cmocka_unit_test(test_requested_alignment),
    cmocka_unit_test(test_aligned_zero_size),
    cmocka_unit_test(test_usable_writable_disjoint),
    cmocka_unit_test(test_calloc_reuses_dirty),
    cmocka_unit_test(test_calloc_huge_cache),
    cmocka_unit_test(test_calloc_overflow),
    cmocka_unit_test(test_too_large),
    cmocka_unit_test(test_realloc_preserves),
    cmocka_unit_test(test_realloc_chain),
    cmocka_unit_test(test_realloc_aligned_blocks),
    cmocka_unit_test(test_realloc_in_place),
    cmocka_unit_test(test_realloc_failure_keeps_block),
    cmocka_unit_test(test_realloc_null_and_zero),
    cmocka_unit_test(test_malloc_zero),
    cmocka_unit_test(test_posix_memalign),
    cmocka_unit_test(test_aligned_alloc),
    cmocka_unit_test(test_memalign_rounding),
    cmocka_unit_test(test_valloc_pvalloc),
    cmocka_unit_test(test_null_and_sized_free),
#ifdef KILN_TEST_OVERRIDE
    cmocka_unit_test(test_override_family),
    cmocka_unit_test(test_override_errno),
    cmocka_unit_test(test_override_libc_internal),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
