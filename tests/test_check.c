/* test_check.c — the checking mode's parts on their own (src/check_*.c):
 * the live records against a simple model (blocks of every kind, interior
 * pointers, reuse), the quarantine's eviction order and budget, the stack
 * depot and the symboliser.  The misuse programs (tests/misuse/) test the
 * mode end to end.  Runs with or without KILN_CHECK=1 in the environment
 * (the table is set up here when the mode did not do it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "check_internal.h"
#include "kiln.h"
#include "ptr.h"

static void ensure_table(void) {
  static bool ready;
  if (ready || kiln_check_config.check) return;
  kiln_check_config.quarantine = (size_t)64 << 10;
  kiln_stack_init();
  assert_true(kiln_table_init());
  ready = true;
}

static void nothing_under_lock(const kiln_live_t *rec, kiln_freed_t *freed, void *arg) {
  (void)arg;
  *freed = (kiln_freed_t){.block = rec->block, .size = rec->size, .user_off = rec->user_off};
}

/* Fake block addresses in a range no allocator uses (never dereferenced). */
#define BASE ((uintptr_t)0x100000000000ull)

/* The page of a block of Kiln's (the table's calls take it). */
static kiln_page_t *page_of(uintptr_t block) {
  kiln_segment_t *segment = kiln_segment_of((void *)block);
  assert_non_null(segment);
  return kiln_segment_page_of(segment, (void *)block);
}

static kiln_take_t table_free(uintptr_t block, uintptr_t p, kiln_live_t *rec) {
  kiln_freed_t freed;
  kiln_evicted_t evicted[KILN_EVICT_BATCH];
  size_t n;
  return kiln_table_free(page_of(block), block, p, rec, &freed, nothing_under_lock, NULL, evicted, &n);
}

/* Real blocks of the fast mode's core: a record needs a block start of a
 * Kiln page (check_records.c finds its slot from the address).  Under
 * KILN_CHECK=1 the mode records every block itself, so the tests that
 * insert their own records skip. */
static void *core_block(size_t size) {
  void *p = kiln_malloc(size);
  assert_non_null(p);
  return p;
}

/* 100000 blocks of 48 bytes (many pages of a size class, and 24 other
 * sizes of small, medium, large and huge blocks): every record found, every
 * other one removed, the rest still found; interior pointers refused. */
static void test_table_model(void **state) {
  (void)state;
  ensure_table();
  if (kiln_check_config.check) skip();
  enum { N = 100000, SIZES = 24 };
  static uintptr_t blocks[N + SIZES];
  for (size_t i = 0; i < N; i++) blocks[i] = (uintptr_t)core_block(48);
  for (size_t i = 0; i < SIZES; i++) blocks[N + i] = (uintptr_t)core_block((size_t)1 << (i % 24));
  size_t before = kiln_table_live_count(), total = N + SIZES;
  for (size_t i = 0; i < total; i++) {
    kiln_live_t rec = {.block = blocks[i], .size = i, .user_off = 16};
    assert_true(kiln_table_insert(page_of(rec.block), &rec));
  }
  assert_int_equal(kiln_table_live_count(), before + total);
  kiln_live_t got;
  for (size_t i = 0; i < total; i++) {
    if (!kiln_table_lookup(blocks[i], &got)) fail_msg("record %zu lost", i);
    assert_int_equal(got.size, i);
    assert_int_equal(got.block, blocks[i]);
  }
  for (size_t i = 0; i < total; i += 2) assert_int_equal(table_free(blocks[i], blocks[i] + 16, &got), KILN_TAKE_OK);
  for (size_t i = 0; i < total; i++) {
    bool live = kiln_table_lookup(blocks[i], &got);
    if (live != (i % 2 == 1)) fail_msg("record %zu: live %d after removing the even ones", i, live);
    if (live) assert_int_equal(got.size, i);
  }
  assert_int_equal(kiln_table_live_count(), before + total / 2);
  /* A pointer that is not the block's: refused, the record stays. */
  assert_int_equal(table_free(blocks[1], blocks[1] + 32, &got), KILN_TAKE_INTERIOR);
  assert_true(kiln_table_lookup(blocks[1], &got));
  assert_int_equal(table_free(blocks[0], blocks[0] + 16, &got), KILN_TAKE_NOT_LIVE);
  /* Addresses that start no block have no record: inside a block, a
   * segment's header, the stack. */
  int local;
  assert_false(kiln_table_lookup(blocks[1] + 16, &got));
  assert_false(kiln_table_lookup(blocks[1] & ~(uintptr_t)KILN_SEGMENT_MASK, &got));
  assert_false(kiln_table_lookup((uintptr_t)&local, &got));
  for (size_t i = 1; i < total; i += 2) assert_int_equal(table_free(blocks[i], blocks[i] + 16, &got), KILN_TAKE_OK);
  assert_int_equal(kiln_table_live_count(), before);
  for (size_t i = 0; i < total; i++) kiln_free((void *)blocks[i]);
}

/* A block freed and handed out again gets a fresh record in the same slot;
 * the leak scan's visit sees exactly the live records. */
static void visit_count(kiln_live_t *rec, void *arg) {
  uintptr_t *want = arg;
  if (rec->block == want[0]) want[1]++;
}

/* How many times the leak scan's visit sees block's record. */
static uintptr_t visits_of(uintptr_t block) {
  uintptr_t want[2] = {block, 0};
  kiln_table_lock_all();
  kiln_table_visit_locked(visit_count, want);
  kiln_table_unlock_all();
  return want[1];
}

static void test_table_reuse(void **state) {
  (void)state;
  ensure_table();
  if (kiln_check_config.check) skip();
  uintptr_t block = (uintptr_t)core_block(200);
  kiln_live_t rec = {.block = block, .size = 1, .user_off = 16}, got;
  assert_true(kiln_table_insert(page_of(rec.block), &rec));
  assert_int_equal(table_free(block, block + 16, &got), KILN_TAKE_OK);
  kiln_free((void *)block);
  /* Allocate until the core hands the block out again (the page's other
   * free blocks go first). */
  enum { TRIES = 1024 };
  static void *others[TRIES];
  size_t n = 0;
  for (void *q; n < TRIES && (uintptr_t)(q = core_block(200)) != block;) others[n++] = q;
  assert_true(n < TRIES);
  assert_false(kiln_table_lookup(block, &got));
  rec.size = 2;
  assert_true(kiln_table_insert(page_of(rec.block), &rec));
  assert_true(kiln_table_lookup(block, &got));
  assert_int_equal(got.size, 2);
  assert_int_equal(visits_of(block), 1);
  assert_int_equal(table_free(block, block + 16, &got), KILN_TAKE_OK);
  assert_int_equal(visits_of(block), 0);
  kiln_free((void *)block);
  for (size_t i = 0; i < n; i++) kiln_free(others[i]);
}

/* The history names the last free of a block, by block or by pointer. */
static void test_history(void **state) {
  (void)state;
  ensure_table();
  if (kiln_check_config.check) skip();
  uintptr_t block = (uintptr_t)core_block(64);
  kiln_live_t rec = {.block = block, .size = 40, .user_off = 16, .stack = 7};
  assert_true(kiln_table_insert(page_of(rec.block), &rec));
  kiln_live_t got;
  assert_int_equal(table_free(block, block + 16, &got), KILN_TAKE_OK);
  kiln_freed_t freed;
  assert_true(kiln_table_find_freed(block, 0, &freed));
  assert_int_equal(freed.size, 40);
  assert_true(kiln_table_find_freed(0, block + 16, &freed));
  assert_int_equal(freed.block, block);
  assert_false(kiln_table_find_freed(0, block + 32, &freed));
  kiln_free((void *)block);
}

/* Held blocks leave the quarantine oldest first (within their shard), once
 * all shards together hold more than the budget; what stays is about the
 * budget (at most half of it unpublished, check_table.c). */
static void test_quarantine_order(void **state) {
  (void)state;
  ensure_table();
  if (kiln_check_config.check) skip(); /* the mode's own budget and traffic */
  kiln_evicted_t evicted[KILN_EVICT_BATCH];
  uintptr_t first = BASE + ((uintptr_t)2 << 30);
  enum { BLOCKS = 200, BYTES = 1000 };
  size_t evicted_total = 0;
  uintptr_t newest_evicted[64] = {0}; /* per shard: addresses only grow */
  for (uintptr_t i = 0; i < BLOCKS; i++) {
    uintptr_t a = first + i * 4096;
    kiln_freed_t rec = {.block = a, .size = BYTES - 8 - 16, .user_off = 16, .held = 1};
    size_t n = kiln_table_push_freed(&rec, evicted);
    for (size_t j = 0; j < n; j++) {
      /* Older than this one (the newest always stays held), and oldest
       * first within a shard. */
      uintptr_t b = evicted[j].rec.block;
      assert_true(b >= first && b < a);
      size_t shard = kiln_table_shard_index(b);
      assert_true(shard < 64);
      assert_true(b > newest_evicted[shard]);
      newest_evicted[shard] = b;
      evicted_total++;
    }
    kiln_table_release_done(evicted, n);
  }
  kiln_evicted_t drained[256];
  size_t n = kiln_table_drain(drained, 256);
  kiln_table_release_done(drained, n);
  assert_int_equal(evicted_total + n, BLOCKS);
  /* 200 KB freed against a 64 KiB budget: most went, about the budget stayed. */
  size_t budget = kiln_check_config.quarantine;
  if (n * BYTES > budget + budget / 2 + 8 * BYTES) fail_msg("%zu bytes still held, budget %zu", n * BYTES, budget);
  assert_true(n * BYTES >= budget / 2);
}

/* Push a held record and release what leaves the quarantine, as check.c
 * does (asking again while the table returns a full batch); returns the
 * bytes released. */
static size_t push_held(uintptr_t block, size_t bytes) {
  kiln_evicted_t evicted[KILN_EVICT_BATCH];
  kiln_freed_t rec = {.block = block, .size = bytes - 8 - 16, .user_off = 16, .held = 1};
  size_t n = kiln_table_push_freed(&rec, evicted), released = 0;
  for (;;) {
    for (size_t j = 0; j < n; j++) released += evicted[j].rec.user_off + evicted[j].rec.size + 8;
    kiln_table_release_done(evicted, n);
    if (n < KILN_EVICT_BATCH) return released;
    n = kiln_table_evict(block, evicted);
  }
}

/* The budget is in bytes: a shard whose oldest held blocks are small must
 * still get under it when large blocks follow.  (Eviction was bounded by a
 * batch per free: 8 blocks of 32 bytes went for each one of 4 KiB that
 * came, and a test of the regular suite under KILN_CHECK=1 found 75 MiB
 * held against a 4 MiB budget: large blocks freed after many small ones.) */
static void test_quarantine_bytes_bound(void **state) {
  (void)state;
  ensure_table();
  if (kiln_check_config.check) skip(); /* the mode's own budget and traffic */
  size_t budget = kiln_check_config.quarantine;
  uintptr_t segment = BASE + ((uintptr_t)3 << 30); /* one segment: one group of shards */
  enum { SMALL = 32, LARGE = 4096 };
  size_t held = 0, most = 0;
  for (uintptr_t i = 0; i < 2 * budget / SMALL; i++) {
    held += SMALL;
    held -= push_held(segment + i * SMALL, SMALL);
  }
  for (uintptr_t i = 0; i < 100; i++) {
    held += LARGE;
    held -= push_held(segment + ((uintptr_t)1 << 20) + i * LARGE, LARGE);
    if (held > most) most = held;
  }
  kiln_evicted_t drained[256];
  size_t n;
  while ((n = kiln_table_drain(drained, 256)) > 0) kiln_table_release_done(drained, n);
  /* The budget, at most half of it unpublished, and each of the group's 8
   * shards keeping its newest block. */
  if (most > budget + budget / 2 + 8 * LARGE)
    fail_msg("the quarantine held %zu bytes against a budget of %zu", most, budget);
}

/* --- stacks and symbols --- */
/* Not inlined, not folded into one (noipa: identical bodies), and no tail
 * call (the empty asm after the call): each keeps a frame of its own in the
 * captured stack. */
__attribute__((noinline, noipa)) static kiln_stack_id_t capture_here(void) {
  kiln_stack_id_t id = kiln_stack_capture();
  __asm__ volatile("" ::: "memory");
  return id;
}

__attribute__((noinline, noipa)) static kiln_stack_id_t capture_there(void) {
  kiln_stack_id_t id = kiln_stack_capture();
  __asm__ volatile("" ::: "memory");
  return id;
}

static void test_stack_depot(void **state) {
  (void)state;
  ensure_table();
  kiln_stack_id_t ids[2];
  for (volatile int k = 0; k < 2; k++) ids[k] = capture_here(); /* one call site (not unrolled): the same stack */
  kiln_stack_id_t a = ids[0], c = capture_there();
  if (a == 0) skip(); /* no stack bounds for this thread */
  assert_int_equal(a, ids[1]); /* the same stack is stored once */
  assert_int_not_equal(a, c);
  const uintptr_t *frames;
  size_t depth = kiln_stack_frames(a, &frames);
  /* Kiln's own frames first (the capture), then capture_here, then us. */
  kiln_symbol_t sym;
  size_t i = 0;
  while (i < depth && (kiln_symbolize(frames[i], &sym), sym.is_kiln)) i++;
  assert_true(i + 1 < depth);
  assert_non_null(sym.function);
  assert_string_equal(sym.function, "capture_here");
  kiln_symbolize(frames[i + 1], &sym);
  assert_non_null(sym.function);
  assert_string_equal(sym.function, "test_stack_depot");
  if (sym.file != NULL) assert_string_equal(sym.file, "test_check.c"); /* with -g */
}

/* The site names the first frame that is not Kiln's. */
static void test_format_site(void **state) {
  (void)state;
  ensure_table();
  kiln_stack_id_t id = capture_there();
  if (id == 0) skip();
  char site[256];
  kiln_format_site(site, sizeof site, id);
  if (strstr(site, "(capture_there)") == NULL && strstr(site, "capture_there+0x") == NULL)
    fail_msg("site \"%s\" does not name capture_there", site);
  if (strstr(site, "test_check.c:") == site) {
    /* file:line: the line of the call in capture_there */
    unsigned line = 0;
    assert_int_equal(sscanf(site, "test_check.c:%u", &line), 1);
    assert_true(line > 100);
  }
  kiln_format_site(site, sizeof site, 0);
  assert_string_equal(site, "an unknown place");
}

static int data_object = 42;

static void test_symbolize_data(void **state) {
  (void)state;
  const char *module, *symbol;
  assert_true(kiln_symbolize_data((uintptr_t)&data_object, &module, &symbol));
  assert_non_null(symbol);
  assert_string_equal(symbol, "data_object");
  int local = 0;
  assert_false(kiln_symbolize_data((uintptr_t)&local, &module, &symbol)); /* the stack is no module */
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_model),
    cmocka_unit_test(test_table_reuse),
    cmocka_unit_test(test_history),
    cmocka_unit_test(test_quarantine_order),
    cmocka_unit_test(test_quarantine_bytes_bound),
    cmocka_unit_test(test_stack_depot),
    cmocka_unit_test(test_format_site),
    cmocka_unit_test(test_symbolize_data),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
