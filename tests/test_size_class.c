/* test_size_class.c — the size-class table (src/size_class.{h,c}) against
 * its formula, exhaustively for every request size 1 .. 1 MiB, and against
 * what the allocator actually hands out.
 *
 * The formula, restated independently of size_class.h:
 *   bins 1..8:   16 * bin
 *   bins 9..112: 2^k + j * 2^(k-3) with k = 7 + (bin-9)/8, j = (bin-9)%8 + 1
 * and a request of n bytes is served by the smallest class >= n.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "test_support.h"

#include "kiln.h"
#include "segment.h"
#include "size_class.h"


static size_t formula_size(unsigned bin) {
  if (bin == 0) return 0;
  if (bin <= 8) return 16u * bin;
  unsigned k = 7 + (bin - 9) / 8, j = (bin - 9) % 8 + 1;
  return ((size_t)1 << k) + (size_t)j * ((size_t)1 << (k - 3));
}

/* The table is the formula, strictly increasing, multiples of 16, and its
 * boundaries are the constants the rest of Kiln uses. */
static void test_table_matches_formula(void **state) {
  (void)state;
  assert_int_equal(kiln_bin_size[0], 0);
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin++) {
    if (kiln_bin_size[bin] != formula_size(bin))
      fail_msg("bin %u: table %u, formula %zu", bin, kiln_bin_size[bin], formula_size(bin));
    assert_int_equal(kiln_bin_size[bin] % 16, 0);
    assert_true(kiln_bin_size[bin] > kiln_bin_size[bin - 1]);
  }
  assert_int_equal(kiln_bin_size[KILN_BIN_MAX], KILN_LARGE_BLOCK_MAX);
  assert_int_equal(KILN_BIN_HUGE, KILN_BIN_COUNT);
  assert_true(KILN_BIN_COUNT <= KILN_STATS_BINS);
  /* The page-kind boundaries are class sizes, so no class straddles them. */
  bool small_found = false, medium_found = false;
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin++) {
    if (kiln_bin_size[bin] == KILN_SMALL_BLOCK_MAX) small_found = true;
    if (kiln_bin_size[bin] == KILN_MEDIUM_BLOCK_MAX) medium_found = true;
  }
  assert_true(small_found && medium_found);
}

/* Every size 1 .. 1 MiB: the bin is the smallest class that fits, bin_of is
 * monotonic and reaches every bin, waste <= 12.5 % above 128 bytes (< 16
 * bytes below), and the page kind holds at least 8 (large: 3) blocks. */
static void test_every_size(void **state) {
  (void)state;
  unsigned previous = 1;
  static bool reached[KILN_BIN_COUNT];
  memset(reached, 0, sizeof reached);
  for (size_t size = 1; size <= KILN_LARGE_BLOCK_MAX; size++) {
    unsigned bin = kiln_bin_of(size);
    if (bin < 1 || bin > KILN_BIN_MAX) fail_msg("size %zu: bin %u out of range", size, bin);
    if (bin < previous) fail_msg("size %zu: bin %u < bin %u of size %zu", size, bin, previous, size - 1);
    if (bin > previous + 1) fail_msg("size %zu: bin %u skips bins after %u", size, bin, previous);
    previous = bin;
    reached[bin] = true;
    size_t block = kiln_bin_size[bin];
    if (block < size) fail_msg("size %zu: block %zu too small", size, block);
    if (kiln_bin_size[bin - 1] >= size) fail_msg("size %zu: bin %u is not the smallest fitting", size, bin);
    if (block % 16 != 0) fail_msg("size %zu: block %zu not a multiple of 16", size, block);
    if (size > 128 ? (block - size) * 8 > size : block - size >= 16)
      fail_msg("size %zu: block %zu wastes more than allowed", size, block);
  }
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin++)
    if (!reached[bin]) fail_msg("bin %u is never used", bin);
  /* Page kinds: each bin's blocks fit its page kind often enough. */
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin++) {
    kiln_segment_kind_t kind = kiln_bin_segment_kind(bin);
    size_t block = kiln_bin_size[bin];
    switch (kind) {
      case KILN_SEGMENT_SMALL: assert_true(block <= KILN_SMALL_BLOCK_MAX); break;
      case KILN_SEGMENT_MEDIUM: assert_true(block > KILN_SMALL_BLOCK_MAX && block <= KILN_MEDIUM_BLOCK_MAX); break;
      case KILN_SEGMENT_LARGE: assert_true(block > KILN_MEDIUM_BLOCK_MAX); break;
      default: fail_msg("bin %u: kind %d", bin, (int)kind);
    }
  }
}

/* What the allocator really hands out: the usable size of malloc(n) is the
 * class size of n, for every n up to 1 MiB (0 is served like 1); above it
 * the block is huge and at least n. */
static void test_usable_size_is_class_size(void **state) {
  (void)state;
  size_t stride = light() ? 61 : 1;
  for (size_t size = 0; size <= KILN_LARGE_BLOCK_MAX; size += stride) {
    void *p = kiln_malloc(size);
    if (p == NULL) fail_msg("malloc(%zu) failed", size);
    size_t want = kiln_bin_size[kiln_bin_of(size == 0 ? 1 : size)];
    size_t got = kiln_usable_size(p);
    if (got != want) fail_msg("malloc(%zu): usable %zu, class %zu", size, got, want);
    kiln_free(p);
  }
  size_t huge[] = {KILN_LARGE_BLOCK_MAX + 1, KILN_LARGE_BLOCK_MAX + 4096, (size_t)5 << 20};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    void *p = kiln_malloc(huge[i]);
    assert_non_null(p);
    assert_true(kiln_usable_size(p) >= huge[i]);
    kiln_free(p);
  }
}

/* The statistics report the same table. */
static void test_stats_table(void **state) {
  (void)state;
  static kiln_stats_t stats;
  kiln_stats_get(&stats);
  assert_int_equal(stats.bin_count, KILN_BIN_COUNT);
  for (unsigned bin = 0; bin < KILN_BIN_COUNT; bin++) assert_int_equal(stats.bin_block_size[bin], kiln_bin_size[bin]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_matches_formula),
    cmocka_unit_test(test_every_size),
    cmocka_unit_test(test_usable_size_is_class_size),
    cmocka_unit_test(test_stats_table),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
