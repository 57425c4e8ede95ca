/* test_api.c — the contract of the malloc family (issue 2, "Contract"), one
 * test per point, through the kiln_* entry points of include/kiln.h only:
 * this file also builds against libkiln.so (tests/programs.cmake,
 * test_api_override), where KILN_TEST_OVERRIDE adds the checks that the
 * unprefixed libc names reach Kiln.
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
 *   foreign pointers     freeing them changes nothing (counted as invalid frees)
 *   memory return        1 GiB of 256 KiB blocks freed: RSS back within 64 MiB in 1 s
 *   statistics, limit    kiln_stats_get counts; kiln_set_limit refuses and recovers
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

#include "test_support.h"

#include "kiln.h"

#define SEG (4 * MiB)



static int static_object[64];

/* --- helpers --------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Block contents: a word per 8 bytes that depends on the block's seed and
 * the position, so a block written with another seed, shifted, or partly
 * zeroed does not pass. */
static uint64_t pattern_word(uint32_t seed, size_t i) {
  return ((uint64_t)seed * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i * 0xff51afd7ed558ccdull) ^ (uint64_t)i;
}

static void fill(void *p, size_t n, uint32_t seed) {
  uint8_t *b = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(seed, i);
    memcpy(b + 8 * i, &w, 8);
  }
  uint64_t w = pattern_word(seed, words);
  memcpy(b + 8 * words, &w, n % 8);
}

static size_t first_difference(const void *p, size_t n, uint32_t seed) {
  const uint8_t *b = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(seed, i);
    if (memcmp(b + 8 * i, &w, 8) != 0) return 8 * i;
  }
  uint64_t w = pattern_word(seed, words);
  return memcmp(b + 8 * words, &w, n % 8) != 0 ? 8 * words : n;
}

static bool intact(const void *p, size_t n, uint32_t seed) { return first_difference(p, n, seed) == n; }

static void verify(const void *p, size_t n, uint32_t seed) {
  size_t at = first_difference(p, n, seed);
  if (at != n) fail_msg("block %p (%zu bytes): changed near byte %zu", p, n, at);
}

static bool aligned(const void *p, size_t a) { return (uintptr_t)p % a == 0; }

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static kiln_stats_t stats(void) {
  kiln_stats_t s;
  kiln_stats_get(&s);
  return s;
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  assert_non_null(f);
  unsigned long size = 0, resident = 0;
  assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
  fclose(f);
  return resident * page_size();
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The bin index of a block size in the statistics (exact class sizes). */
static size_t stats_bin(size_t block_size) {
  kiln_stats_t s = stats();
  for (size_t i = 1; i < s.bin_count; i++)
    if (s.bin_block_size[i] == block_size) return i;
  fail_msg("no bin of %zu bytes", block_size);
  return 0;
}

/* A long random run of every allocation call, each live block filled with
 * its own pattern and checked before it is freed or resized and at the end:
 * the heap still works and no block is handed out twice. */
static void random_run(size_t steps, uint64_t seed) {
  enum { SLOTS = 1024 };
  static struct { uint8_t *p; size_t n; uint32_t seed; } slot[SLOTS];
  memset(slot, 0, sizeof slot);
  rng_state = seed | 1;
  uint32_t next_seed = 1;
  for (size_t step = 0; step < steps; step++) {
    size_t i = rng() % SLOTS;
    uint64_t r = rng();
    size_t n;
    switch (r % 16) {
      case 0: n = (r >> 8) % 16 == 0 ? (size_t)(r >> 16) % (300 * KiB) : (size_t)(r >> 16) % 70000; break;
      case 1: n = (r >> 8) % 128 == 0 ? (size_t)(r >> 16) % (3 * MiB) : (size_t)(r >> 16) % 9000; break;
      default: n = (size_t)(r >> 8) % 600; break;
    }
    if (slot[i].p != NULL) {
      verify(slot[i].p, slot[i].n, slot[i].seed);
      if ((r >> 4) % 4 == 0) {
        uint8_t *q = kiln_realloc(slot[i].p, n + 1);
        assert_non_null(q);
        verify(q, slot[i].n < n + 1 ? slot[i].n : n + 1, slot[i].seed);
        slot[i].p = q;
        slot[i].n = n + 1;
        slot[i].seed = next_seed++;
        fill(q, n + 1, slot[i].seed);
        continue;
      }
      kiln_free(slot[i].p);
      slot[i].p = NULL;
      continue;
    }
    uint8_t *p;
    switch ((r >> 4) % 8) {
      case 0:
        p = kiln_calloc(1, n);
        assert_non_null(p);
        for (size_t k = 0; k < n; k++)
          if (p[k] != 0) fail_msg("calloc(1, %zu): byte %zu is %#x", n, k, p[k]);
        break;
      case 1: {
        size_t a = (size_t)1 << ((r >> 12) % 14);
        p = kiln_aligned_alloc(a, n);
        assert_non_null(p);
        if (!aligned(p, a)) fail_msg("aligned_alloc(%zu, %zu) = %p", a, n, (void *)p);
        break;
      }
      default: p = kiln_malloc(n); break;
    }
    assert_non_null(p);
    assert_true(aligned(p, 16));
    assert_true(kiln_usable_size(p) >= n);
    slot[i].p = p;
    slot[i].n = n;
    slot[i].seed = next_seed++;
    fill(p, n, slot[i].seed);
  }
  for (size_t i = 0; i < SLOTS; i++) {
    if (slot[i].p == NULL) continue;
    verify(slot[i].p, slot[i].n, slot[i].seed);
    kiln_free(slot[i].p);
    slot[i].p = NULL;
  }
}

/* Sizes that cross every kind: small, medium, large, huge, and the edges. */
static const size_t class_sizes[] = {
  0, 1, 8, 15, 16, 17, 100, 128, 129, 1000, 1024, 4095, 4096, 8192, 8193, 20000, 65536, 65537,
  200000, MiB - 1, MiB, MiB + 1, 3 * MiB, 9 * MiB,
};
#define N_CLASS_SIZES (sizeof class_sizes / sizeof class_sizes[0])

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

/* --- foreign pointers ----------------------------------------------------------------- */

/* Pointers Kiln did not hand out: the stack, static data, code, string
 * literals, another mapping (one aligned like a segment and filled with
 * garbage), the C library's heap when Kiln does not own malloc, interior
 * pointers of Kiln blocks of every kind, and pointers into segment headers.
 * Freeing each is counted and ignored: the blocks stay intact and are not
 * handed out again, and a long random run afterwards passes. */
static void test_foreign_frees(void **state) {
  (void)state;
  enum { MAXF = 400 };
  void *foreign[MAXF];
  size_t nf = 0;
  int local[4] = {1, 2, 3, 4};
  foreign[nf++] = local;
  foreign[nf++] = &local[1];
  foreign[nf++] = static_object;
  foreign[nf++] = &static_object[5];
  foreign[nf++] = (void *)"a string literal";
  foreign[nf++] = (void *)(uintptr_t)&test_foreign_frees;
  foreign[nf++] = (void *)(uintptr_t)16;
  foreign[nf++] = (void *)UINTPTR_MAX;
  uint8_t *raw = mmap(NULL, 3 * SEG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(raw != MAP_FAILED);
  uint8_t *fake = (uint8_t *)(((uintptr_t)raw + SEG - 1) & ~(uintptr_t)(SEG - 1));
  memset(fake, 0xff, 2 * page_size());
  foreign[nf++] = raw;
  foreign[nf++] = fake;
  foreign[nf++] = fake + 64;
  foreign[nf++] = fake + 65536;
  void *libc_block = malloc(64); /* with the override this is Kiln's: then skipped */
  bool libc_foreign = !kiln_owns(libc_block);
  if (libc_foreign) foreign[nf++] = libc_block;
  /* glibc's own malloc, looked up in libc.so.6 itself (what the override
   * hides): a block of the C library's heap, whatever the build. */
  void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  void *(*glibc_malloc)(size_t) = NULL;
  void (*glibc_free)(void *) = NULL;
  if (libc != NULL) {
    *(void **)&glibc_malloc = dlsym(libc, "malloc");
    *(void **)&glibc_free = dlsym(libc, "free");
  }
  void *glibc_block = glibc_malloc != NULL && glibc_free != NULL ? glibc_malloc(100) : NULL;
  if (glibc_block != NULL && kiln_owns(glibc_block)) glibc_block = NULL; /* resolved to Kiln: not foreign */
  if (glibc_block != NULL) {
    memset(glibc_block, 0x3c, 100);
    foreign[nf++] = glibc_block;
  }
  /* Kiln blocks: interior pointers and header pointers. */
  enum { NB = N_CLASS_SIZES };
  uint8_t *blocks[NB];
  size_t usable[NB];
  /* From a fresh heap: none of its pages holds over-aligned blocks (their
   * interior pointers are tested on their own below). */
  kiln_heap_t *heap = kiln_heap_new();
  for (size_t i = 0; i < NB; i++) {
    size_t size = class_sizes[i] < 64 ? 64 : class_sizes[i];
    blocks[i] = kiln_heap_malloc(heap, size);
    usable[i] = kiln_usable_size(blocks[i]);
    fill(blocks[i], usable[i], (uint32_t)i + 500);
    size_t offsets[] = {1, 8, 16, 32, 48, usable[i] / 2, usable[i] - 16};
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
      size_t off = offsets[o] & ~(size_t)15; /* 16-aligned interiors are the dangerous ones */
      if (off == 0) off = offsets[o];
      if (off == 0 || off >= usable[i]) continue;
      foreign[nf++] = blocks[i] + off;
    }
    uint8_t *segment = (uint8_t *)((uintptr_t)blocks[i] & ~(uintptr_t)(SEG - 1));
    if (segment < blocks[i]) foreign[nf++] = segment;
    if (segment + 256 < blocks[i]) foreign[nf++] = segment + 256;
    assert_true(nf < MAXF - 10);
  }
  kiln_stats_t before = stats();
  for (size_t i = 0; i < nf; i++) kiln_free(foreign[i]);
  for (size_t i = 0; i < nf; i++) {
    if (kiln_usable_size(foreign[i]) != 0) fail_msg("foreign pointer %p has a usable size", foreign[i]);
  }
  kiln_stats_t after = stats();
  if (after.invalid_free_count - before.invalid_free_count != nf)
    fail_msg("%zu invalid frees counted, %zu made", (size_t)(after.invalid_free_count - before.invalid_free_count), nf);
  /* realloc of a foreign pointer: NULL, and nothing freed. */
  errno = 0;
  assert_null(kiln_realloc(local, 100));
  assert_int_equal(local[0], 1);
  assert_null(kiln_realloc(blocks[5] + 16, 100));
  for (size_t i = 0; i < NB; i++) {
    assert_int_equal(kiln_usable_size(blocks[i]), usable[i]);
    if (!intact(blocks[i], usable[i], (uint32_t)i + 500)) fail_msg("block %zu changed by foreign frees", i);
  }
  /* None of the live blocks is handed out again. */
  for (size_t i = 0; i < NB; i++) {
    void *again[64];
    int k = class_sizes[i] > MiB ? 2 : 64;
    for (int j = 0; j < k; j++) {
      again[j] = kiln_heap_malloc(heap, class_sizes[i] < 64 ? 64 : class_sizes[i]);
      for (size_t b = 0; b < NB; b++)
        if (again[j] == blocks[b]) fail_msg("live block %zu handed out again", b);
    }
    for (int j = 0; j < k; j++) kiln_free(again[j]);
  }
  random_run(light() ? 5000 : 100000, 77);
  for (size_t i = 0; i < NB; i++) {
    verify(blocks[i], usable[i], (uint32_t)i + 500);
    kiln_free(blocks[i]);
  }
  kiln_heap_destroy(heap);
  assert_int_equal(fake[0], 0xff);
  munmap(raw, 3 * SEG);
  if (libc_foreign) free(libc_block);
  if (glibc_block != NULL) {
    assert_int_equal(((uint8_t *)glibc_block)[99], 0x3c);
    glibc_free(glibc_block);
  }
  if (libc != NULL) dlclose(libc);
}

/* An interior pointer of an ordinary block in a page that also holds an
 * over-aligned block (aligned_alloc with alignment > 4 KiB marks its page):
 * free must ignore it like any other interior pointer, not free the block. */
static void test_foreign_free_interior_in_aligned_page(void **state) {
  (void)state;
  kiln_heap_t *heap = kiln_heap_new();
  void *over = kiln_heap_aligned_alloc(heap, 8192, 100); /* a 9216-byte block, pointer inside it */
  uint8_t *p = kiln_heap_malloc(heap, 9000);             /* same bin, same page */
  assert_non_null(over);
  assert_non_null(p);
  fill(p, 9000, 42);
  kiln_stats_t before = stats();
  size_t usable_interior = kiln_usable_size(p + 16);
  kiln_free(p + 16);
  kiln_stats_t after = stats();
  uint8_t *again = kiln_heap_malloc(heap, 9000);
  bool handed_out_twice = again == p;
  kiln_heap_destroy(heap);
  if (usable_interior != 0) fail_msg("kiln_usable_size(block + 16) = %zu, want 0", usable_interior);
  if (handed_out_twice) fail_msg("free(block + 16) freed the live block: malloc returned it again");
  assert_int_equal(after.invalid_free_count - before.invalid_free_count, 1);
}

/* kiln.h: "Freeing a pointer that Kiln never handed out does not touch
 * Kiln's heap".  The start of a block that was carved but never handed out
 * (the neighbour of the first block of a fresh page) is such a pointer: it
 * must not become a second copy of a free block, nor make the page look
 * empty while its one real block is live. */

/* --- memory return --------------------------------------------------------------------- */

/* 1 GiB in 256 KiB blocks, every page touched, all freed: RSS must fall back
 * to within 64 MiB of where it started within 1 s.  The first half second
 * waits without calling Kiln; after that each poll calls kiln_malloc/free
 * once (a delayed purge may need a call to run).  Which one did it is
 * printed. */
static void test_memory_return(void **state) {
  (void)state;
  if (light() || TSAN) skip(); /* RSS under valgrind or TSan is theirs */
  enum { N = 4096 };
  static void *blocks[N];
  kiln_collect(true);
  size_t rss0 = rss_bytes(), committed0 = stats().committed;
  for (int i = 0; i < N; i++) {
    blocks[i] = kiln_malloc(256 * KiB);
    assert_non_null(blocks[i]);
    memset(blocks[i], i, 256 * KiB);
  }
  size_t rss_full = rss_bytes();
  assert_true(rss_full >= rss0 + 900 * MiB);
  for (int i = 0; i < N; i++) kiln_free(blocks[i]);
  const char *how = NULL;
  size_t rss = rss_bytes();
  int waited = 0;
  if (rss <= rss0 + 64 * MiB) how = "at once";
  while (how == NULL && waited < 1000) {
    sleep_ms(20);
    waited += 20;
    if (waited > 500) {
      void *p = kiln_malloc(256 * KiB);
      kiln_free(p);
    }
    rss = rss_bytes();
    if (rss <= rss0 + 64 * MiB) how = waited > 500 ? "after kiln_malloc/free calls" : "after waiting";
  }
  print_message("memory return: RSS %zu MiB -> %zu MiB full -> %zu MiB freed (%s, %d ms)\n", rss0 >> 20,
                rss_full >> 20, rss >> 20, how ? how : "NOT RETURNED", waited);
  if (how == NULL) fail_msg("RSS stayed %zu MiB above the start after 1 s", (rss - rss0) >> 20);
  size_t committed = stats().committed;
  if (committed > committed0 + 64 * MiB)
    fail_msg("committed %zu MiB, %zu MiB at the start", committed >> 20, committed0 >> 20);
}

/* --- statistics ------------------------------------------------------------------------ */

static void test_stats_counts(void **state) {
  (void)state;
  enum { N = 100 };
  void *blocks[N];
  size_t bin = stats_bin(5120);
  kiln_stats_t s0 = stats();
  for (int i = 0; i < N; i++) blocks[i] = kiln_malloc(5000);
  void *huge = kiln_malloc(6 * MiB);
  kiln_stats_t s1 = stats();
  assert_int_equal(s1.bin_malloc_count[bin] - s0.bin_malloc_count[bin], N);
  assert_int_equal(s1.bin_current[bin] - s0.bin_current[bin], N);
  assert_true(s1.malloc_count >= s0.malloc_count + N + 1);
  assert_int_equal(s1.huge_count - s0.huge_count, 1);
  assert_true(s1.allocated >= s0.allocated + N * 5120 + 6 * MiB);
  assert_true(s1.allocated_peak >= s1.allocated);
  assert_true(s1.committed_peak >= s1.committed);
  assert_true(s1.mapped_peak >= s1.mapped);
  assert_true(s1.mapped >= 6 * MiB);
  assert_true(s1.committed >= N * 5120 + 6 * MiB);
  for (int i = 0; i < N; i++) kiln_free(blocks[i]);
  kiln_free(huge);
  kiln_stats_t s2 = stats();
  assert_int_equal(s2.bin_current[bin], s0.bin_current[bin]);
  /* The peak outlives the frees (within the per-thread flush step). */
  assert_true(s2.allocated_peak + (1u << 20) >= s1.allocated);
  /* Counters of events never go backwards, and count every free. */
  if (s2.bin_malloc_count[bin] < s1.bin_malloc_count[bin] || s2.malloc_count < s1.malloc_count)
    fail_msg("allocation counters went backwards after frees: bin %llu -> %llu, total %llu -> %llu",
             (unsigned long long)s1.bin_malloc_count[bin], (unsigned long long)s2.bin_malloc_count[bin],
             (unsigned long long)s1.malloc_count, (unsigned long long)s2.malloc_count);
  if (s2.free_count < s1.free_count + N + 1)
    fail_msg("%d frees made, free_count %llu -> %llu", N + 1, (unsigned long long)s1.free_count,
             (unsigned long long)s2.free_count);
  assert_true(s2.allocated <= s1.allocated - N * 5120 - 6 * MiB);
  /* Printing works and names the counts. */
  FILE *f = tmpfile();
  assert_non_null(f);
  kiln_stats_print(f);
  fflush(f);
  rewind(f);
  char line[512];
  bool found = false;
  while (fgets(line, sizeof line, f) != NULL)
    if (strstr(line, "allocations") != NULL) found = true;
  fclose(f);
  assert_true(found);
}

/* --- the memory limit ------------------------------------------------------------------ */

static void test_limit(void **state) {
  (void)state;
  enum { MAX = 4096 };
  static void *blocks[MAX];
  size_t old_limit = kiln_get_limit();
  kiln_collect(true);
  size_t limit = stats().committed + 16 * MiB;
  kiln_set_limit(limit);
  assert_int_equal(kiln_get_limit(), limit);
  size_t n = 0;
  errno = 0;
  while (n < MAX && (blocks[n] = kiln_malloc(64 * KiB)) != NULL) {
    memset(blocks[n], 1, 64 * KiB);
    n++;
  }
  int err = errno;
  size_t committed = stats().committed;
  errno = 0;
  void *huge = kiln_malloc(32 * MiB);
  int huge_err = errno;
  /* Free half: the same size fits again. */
  for (size_t i = 0; i < n; i += 2) kiln_free(blocks[i]);
  size_t refilled = 0;
  for (size_t i = 0; i < n; i += 2) {
    blocks[i] = kiln_malloc(64 * KiB);
    if (blocks[i] != NULL) refilled++;
  }
  kiln_set_limit(old_limit);
  void *after = kiln_malloc(32 * MiB);
  assert_true(n < MAX);
  assert_int_equal(err, ENOMEM);
  if (n * 64 * KiB < 8 * MiB) /* most of the budget must be usable */
    fail_msg("only %zu blocks of 64 KiB fit a budget of committed + 16 MiB (committed %lld at the end)", n,
             (long long)committed);
  assert_true(committed <= limit);
  assert_null(huge);
  assert_int_equal(huge_err, ENOMEM);
  assert_int_equal(refilled, (n + 1) / 2);
  assert_non_null(after);
  kiln_free(after);
  for (size_t i = 0; i < n; i++) kiln_free(blocks[i]);
}

/* The committed count (what the limit measures) stays exact through a
 * page's whole life: freed, purged after the delay, its segment emptied into
 * the segment cache, reused, and released.  Each round runs in a new thread
 * (a thread without segments of its own takes the cached one) and must end
 * where it started: a count that drifts down wraps below zero, and with a
 * limit set every allocation that needs memory is then refused. */
static void *accounting_round(void *arg) {
  (void)arg;
  void *a[64], *b[64];
  for (int i = 0; i < 64; i++) a[i] = kiln_malloc(1000); /* pages of the 1024 bin */
  for (int i = 0; i < 64; i++) b[i] = kiln_malloc(2000); /* pages of the 2048 bin, same segment */
  for (int i = 0; i < 64; i++) kiln_free(a[i]);
  kiln_collect(false); /* a's pages go back to their segment; purge pending */
  sleep_ms(30);
  kiln_collect(false); /* the purge delay has passed: a's pages decommitted */
  for (int i = 0; i < 64; i++) kiln_free(b[i]);
  kiln_collect(false); /* the segment is empty: into the segment cache */
  void *c = kiln_malloc(100); /* reuses the cached segment */
  kiln_free(c);
  kiln_collect(true); /* everything back */
  return NULL;
}

static void test_committed_accounting(void **state) {
  (void)state;
  /* A warm-up round: the first new thread may map a chunk of thread
   * records, which stay (type-stable) and count as committed. */
  pthread_t warm;
  assert_int_equal(pthread_create(&warm, NULL, accounting_round, NULL), 0);
  pthread_join(warm, NULL);
  kiln_collect(true);
  long long start = (long long)stats().committed;
  for (int round = 0; round < 4; round++) {
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, accounting_round, NULL), 0);
    pthread_join(t, NULL);
    kiln_collect(true);
    long long now = (long long)stats().committed;
    if (now != start) fail_msg("round %d: committed %lld bytes, %lld at the start", round, now, start);
  }
}

static void test_version(void **state) {
  (void)state;
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", KILN_VERSION_MAJOR, KILN_VERSION_MINOR, KILN_VERSION_PATCH);
  assert_string_equal(kiln_version(), want);
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
    cmocka_unit_test(test_foreign_frees),
    cmocka_unit_test(test_foreign_free_interior_in_aligned_page),
    cmocka_unit_test(test_memory_return),
    cmocka_unit_test(test_stats_counts),
    cmocka_unit_test(test_committed_accounting),
    cmocka_unit_test(test_limit),
    cmocka_unit_test(test_version),
#ifdef KILN_TEST_OVERRIDE
    cmocka_unit_test(test_override_family),
    cmocka_unit_test(test_override_errno),
    cmocka_unit_test(test_override_libc_internal),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
