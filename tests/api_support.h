/* api_support.h — what tests/test_api.c and tests/test_api_memory.c share:
 * block patterns, statistics, RSS, and the random run.  Header-only (static
 * inline), like test_support.h: each test is one program, and both build
 * twice, against kiln_static and against libkiln.so (tests/programs.cmake). */
#ifndef KILN_API_SUPPORT_H
#define KILN_API_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kiln.h"
#include "test_support.h"

#define SEG (4 * MiB)

/* Static data: a pointer Kiln never handed out. */
static int static_object[64] __attribute__((unused));


static uint64_t rng_state __attribute__((unused)) = 0x9e3779b97f4a7c15ull;
static inline uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Block contents: a word per 8 bytes that depends on the block's seed and
 * the position, so a block written with another seed, shifted, or partly
 * zeroed does not pass. */
static inline uint64_t pattern_word(uint32_t seed, size_t i) {
  return ((uint64_t)seed * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i * 0xff51afd7ed558ccdull) ^ (uint64_t)i;
}

static inline void fill(void *p, size_t n, uint32_t seed) {
  uint8_t *b = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(seed, i);
    memcpy(b + 8 * i, &w, 8);
  }
  uint64_t w = pattern_word(seed, words);
  memcpy(b + 8 * words, &w, n % 8);
}

static inline size_t first_difference(const void *p, size_t n, uint32_t seed) {
  const uint8_t *b = p;
  size_t words = n / 8;
  for (size_t i = 0; i < words; i++) {
    uint64_t w = pattern_word(seed, i);
    if (memcmp(b + 8 * i, &w, 8) != 0) return 8 * i;
  }
  uint64_t w = pattern_word(seed, words);
  return memcmp(b + 8 * words, &w, n % 8) != 0 ? 8 * words : n;
}

static inline bool intact(const void *p, size_t n, uint32_t seed) { return first_difference(p, n, seed) == n; }

static inline void verify(const void *p, size_t n, uint32_t seed) {
  size_t at = first_difference(p, n, seed);
  if (at != n) fail_msg("block %p (%zu bytes): changed near byte %zu", p, n, at);
}

static inline bool aligned(const void *p, size_t a) { return (uintptr_t)p % a == 0; }

static inline size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static inline kiln_stats_t stats(void) {
  kiln_stats_t s;
  kiln_stats_get(&s);
  return s;
}

static inline size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  assert_non_null(f);
  unsigned long size = 0, resident = 0;
  assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
  fclose(f);
  return resident * page_size();
}

static inline void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The bin index of a block size in the statistics (exact class sizes). */
static inline size_t stats_bin(size_t block_size) {
  kiln_stats_t s = stats();
  for (size_t i = 1; i < s.bin_count; i++)
    if (s.bin_block_size[i] == block_size) return i;
  fail_msg("no bin of %zu bytes", block_size);
  return 0;
}

/* A long random run of every allocation call, each live block filled with
 * its own pattern and checked before it is freed or resized and at the end:
 * the heap still works and no block is handed out twice. */
static inline void random_run(size_t steps, uint64_t seed) {
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
static const size_t class_sizes[] __attribute__((unused)) = {
  0, 1, 8, 15, 16, 17, 100, 128, 129, 1000, 1024, 4095, 4096, 8192, 8193, 20000, 65536, 65537,
  200000, MiB - 1, MiB, MiB + 1, 3 * MiB, 9 * MiB,
};
#define N_CLASS_SIZES (sizeof class_sizes / sizeof class_sizes[0])

#endif /* KILN_API_SUPPORT_H */
