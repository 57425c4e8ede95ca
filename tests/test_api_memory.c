/* test_api_memory.c — the rest of the contract of issue 2 (test_api.c has
 * the calls themselves): what Kiln does with pointers it never handed out,
 * memory given back, statistics and the limit.  Through the kiln_* entry
 * points only; also built against libkiln.so (tests/programs.cmake,
 * test_api_memory_override).
 *
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

#include "api_support.h"
#include "kiln.h"
#include "test_support.h"


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

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_foreign_frees),
    cmocka_unit_test(test_foreign_free_interior_in_aligned_page),
    cmocka_unit_test(test_memory_return),
    cmocka_unit_test(test_stats_counts),
    cmocka_unit_test(test_committed_accounting),
    cmocka_unit_test(test_limit),
    cmocka_unit_test(test_version),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
