/* test_huge.c — huge blocks (src/huge.c): mappings reused from the cache
 * keep their slack behind the block, realloc grows into it in place, and
 * the slack of all live blocks stays bounded.  White-box: reads the
 * segment header (mapped_size), so it stays out of the checking-mode runs
 * (tests/misuse.cmake), whose quarantine holds freed mappings back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kiln.h"
#include "segment.h"
#include "test_support.h"

static void fill(uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i += 4096) p[i] = (uint8_t)(seed + i / 4096);
  p[n - 1] = seed;
}

static void verify(const uint8_t *p, size_t n, uint8_t seed) {
  for (size_t i = 0; i < n; i += 4096)
    if (p[i] != (uint8_t)(seed + i / 4096)) fail_msg("byte %zu of %zu lost", i, n);
  if (p[n - 1] != seed) fail_msg("last byte of %zu lost", n);
}

static size_t mapped_of(const void *p) { return kiln_segment_of(p)->mapped_size; }

/* Start from an empty cache, so the next huge malloc takes the mapping the
 * test just freed. */
static int empty_cache(void **state) {
  (void)state;
  kiln_collect(true);
  return 0;
}

/* A 2 MiB block takes the 16 MiB mapping a freed block left in the cache:
 * its usable size is what it asked for (to the page), the rest of the
 * mapping stays behind it, and realloc grows into that in place. */
static void test_reuse_keeps_slack_and_grows_into_it(void **state) {
  (void)state;
  uint8_t *big = kiln_malloc(16 * MiB);
  assert_non_null(big);
  fill(big, 16 * MiB, 1);
  size_t mapped = mapped_of(big);
  kiln_free(big);
  uint8_t *p = kiln_malloc(2 * MiB);
  assert_ptr_equal(p, big); /* the cached mapping, not a new one */
  assert_true(kiln_usable_size(p) >= 2 * MiB && kiln_usable_size(p) < 2 * MiB + 4096);
  assert_int_equal(mapped_of(p), mapped); /* not trimmed: slack behind the block */
  fill(p, 2 * MiB, 7);
  uint8_t *q = kiln_realloc(p, 12 * MiB);
  assert_ptr_equal(q, p); /* grown in place, into the slack */
  assert_int_equal(mapped_of(q), mapped);
  assert_true(kiln_usable_size(q) >= 12 * MiB && kiln_usable_size(q) < 12 * MiB + 4096);
  verify(q, 2 * MiB, 7);
  fill(q, 12 * MiB, 9);
  uint8_t *r = kiln_realloc(q, 24 * MiB); /* past the mapping: mremap */
  assert_non_null(r);
  assert_true(kiln_usable_size(r) >= 24 * MiB);
  verify(r, 12 * MiB, 9);
  kiln_free(r);
}

/* Shrinking within the block's last page keeps the slack (a buffer that
 * shrinks and grows by a few bytes must not give it back each time);
 * shrinking by pages gives the tail back, slack included. */
static void test_shrink(void **state) {
  (void)state;
  uint8_t *big = kiln_malloc(16 * MiB);
  assert_non_null(big);
  size_t mapped = mapped_of(big);
  kiln_free(big);
  uint8_t *p = kiln_malloc(4 * MiB);
  assert_ptr_equal(p, big);
  assert_ptr_equal(kiln_realloc(p, 4 * MiB - 10), p);
  assert_int_equal(mapped_of(p), mapped);
  assert_ptr_equal(kiln_realloc(p, 3 * MiB), p);
  assert_true(mapped_of(p) < 3 * MiB + 8192);
  kiln_free(p);
}

/* Small huge blocks that each take a big cached mapping keep its slack
 * only up to a bound (two budgets of the cache: 2 x 48 MiB while little is
 * in use); past it the mappings are trimmed to the block.  Without the
 * bound, the ten blocks below would pin 400 MiB. */
static void test_slack_bounded(void **state) {
  (void)state;
  enum { N = 10 };
  uint8_t *small[N];
  size_t slack = 0;
  for (int k = 0; k < N; k++) {
    uint8_t *big = kiln_malloc(40 * MiB);
    assert_non_null(big);
    kiln_free(big);
    small[k] = kiln_malloc(MiB);
    assert_ptr_equal(small[k], big);
    slack += mapped_of(small[k]) - (size_t)(small[k] - (uint8_t *)kiln_segment_of(small[k])) -
             kiln_usable_size(small[k]);
  }
  print_message("slack of %d 1 MiB blocks carved from 40 MiB mappings: %zu MiB\n", N, slack >> 20);
  assert_true(mapped_of(small[0]) > 30 * MiB); /* the first kept its slack */
  assert_true(slack <= 2 * 48 * MiB);
  for (int k = 0; k < N; k++) kiln_free(small[k]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup(test_reuse_keeps_slack_and_grows_into_it, empty_cache),
    cmocka_unit_test_setup(test_shrink, empty_cache),
    cmocka_unit_test_setup(test_slack_bounded, empty_cache),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
