/* test_os.c — the OS layer (src/os.{h,c}): aligned mappings, decommit,
 * accounting against the memory limit, protection, and the small helpers.
 *
 * Memory counters are process-wide and the test binary itself allocates
 * (cmocka; with the override, through Kiln), so counters are compared around
 * calls that allocate nothing in between.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "kiln.h"
#include "os.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
static bool under_valgrind(void) {
#ifdef RUNNING_ON_VALGRIND
  return RUNNING_ON_VALGRIND;
#else
  return false;
#endif
}

static size_t committed_now(void) {
  kiln_stats_t s;
  kiln_stats_get(&s);
  return s.committed;
}

static size_t mapped_now(void) {
  kiln_stats_t s;
  kiln_stats_get(&s);
  return s.mapped;
}

/* Resident pages of [p, p + size) by mincore. */
static size_t resident_pages(void *p, size_t size) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  size_t n = size / page;
  unsigned char vec[4096];
  assert_true(n <= sizeof vec);
  assert_int_equal(mincore(p, size, vec), 0);
  size_t count = 0;
  for (size_t i = 0; i < n; i++) count += vec[i] & 1;
  return count;
}

static void test_page_size(void **state) {
  (void)state;
  assert_int_equal(kiln_os_page_size(), (size_t)sysconf(_SC_PAGESIZE));
  assert_true(kiln_is_power_of_two(kiln_os_page_size()));
  assert_true(kiln_os_cpu_count() >= 1);
}

/* kiln_align_up/down and kiln_is_power_of_two (internal.h), used by all. */
static void test_align_helpers(void **state) {
  (void)state;
  for (uintptr_t a = 1; a <= ((uintptr_t)1 << 40); a <<= 1) {
    assert_true(kiln_is_power_of_two(a));
    assert_int_equal(kiln_align_up(0, a), 0);
    assert_int_equal(kiln_align_up(1, a), a);
    assert_int_equal(kiln_align_up(a, a), a);
    assert_int_equal(kiln_align_up(a + 1, a), a == 1 ? a + 1 : 2 * a);
    assert_int_equal(kiln_align_down(a + a - 1, a), a);
    assert_int_equal(kiln_align_up((uintptr_t)PTRDIFF_MAX - a + 1, a), (uintptr_t)PTRDIFF_MAX - a + 1);
  }
  assert_int_equal(kiln_align_up((uintptr_t)PTRDIFF_MAX, (uintptr_t)1 << 62), (uintptr_t)1 << 63);
  size_t not_pow2[] = {0, 3, 6, 24, 100, SIZE_MAX, ((size_t)1 << 63) + 1};
  for (size_t i = 0; i < sizeof not_pow2 / sizeof not_pow2[0]; i++) assert_false(kiln_is_power_of_two(not_pow2[i]));
}

/* Every alignment from none to 64 MiB: the mapping is aligned, zeroed,
 * writable, and counted as mapped and committed exactly (the over-mapping is
 * trimmed); freeing uncounts it. */
static void test_alloc_aligned(void **state) {
  (void)state;
  size_t page = kiln_os_page_size();
  size_t alignments[] = {0, 1, page, 2 * page, (size_t)64 << 10, (size_t)2 << 20, (size_t)4 << 20, (size_t)64 << 20};
  size_t sizes[] = {1, page, 3 * page + 1, (size_t)1 << 20, (size_t)4 << 20};
  for (size_t a = 0; a < sizeof alignments / sizeof alignments[0]; a++) {
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      size_t rounded = kiln_align_up(sizes[s], page);
      size_t mapped0 = mapped_now(), committed0 = committed_now();
      uint8_t *p = kiln_os_alloc_aligned(sizes[s], alignments[a]);
      assert_non_null(p);
      size_t want = alignments[a] > page ? alignments[a] : page;
      if ((uintptr_t)p % want != 0) fail_msg("alloc(%zu, %zu) = %p", sizes[s], alignments[a], (void *)p);
      assert_int_equal(mapped_now() - mapped0, rounded);
      assert_int_equal(committed_now() - committed0, rounded);
      for (size_t off = 0; off < rounded; off += page) {
        if (p[off] != 0 || p[off + page - 1] != 0) fail_msg("fresh mapping not zero at %zu", off);
        p[off] = 0x5a;
        p[off + page - 1] = 0xa5;
      }
      kiln_os_free(p, rounded, rounded);
      assert_int_equal(mapped_now(), mapped0);
      assert_int_equal(committed_now(), committed0);
    }
  }
}

/* The over-mapping is trimmed: kiln_os_alloc_aligned maps size + align and
 * unmaps both ends; the tail end is never empty (align - lead > 0), so the
 * page just past the result is unmapped. */
static void test_alloc_aligned_trims(void **state) {
  (void)state;
  size_t align = (size_t)16 << 20, size = (size_t)1 << 20;
  uint8_t *p = kiln_os_alloc_aligned(size, align);
  assert_non_null(p);
  unsigned char vec[1];
  errno = 0;
  assert_int_equal(mincore(p + size, kiln_os_page_size(), vec), -1);
  assert_int_equal(errno, ENOMEM);
  kiln_os_free(p, size, size);
}

static void test_alloc_errors(void **state) {
  (void)state;
  size_t mapped0 = mapped_now(), committed0 = committed_now();
  size_t bad[] = {0, (size_t)PTRDIFF_MAX + 1, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    assert_null(kiln_os_alloc(bad[i]));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(kiln_os_alloc_aligned(bad[i], (size_t)4 << 20));
    assert_int_equal(errno, ENOMEM);
  }
  /* Address space the kernel refuses (128 TiB, 8 EiB): ENOMEM, nothing
   * counted.  (Not under valgrind: its mmap answers EINVAL there, which
   * Kiln treats as its own bug and aborts on.) */
  if (!under_valgrind()) {
    errno = 0;
    assert_null(kiln_os_alloc((size_t)1 << 47));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(kiln_os_alloc_aligned((size_t)PTRDIFF_MAX - ((size_t)1 << 20), (size_t)1 << 30));
    assert_int_equal(errno, ENOMEM);
  }
  assert_int_equal(mapped_now(), mapped0);
  assert_int_equal(committed_now(), committed0);
}

/* Decommit hands the pages back (not resident any more, reads as zeros) and
 * uncounts them; recommit counts them again; the range stays usable. */
static void test_decommit(void **state) {
  (void)state;
  size_t page = kiln_os_page_size(), size = 64 * page;
  uint8_t *p = kiln_os_alloc(size);
  assert_non_null(p);
  memset(p, 0xcc, size);
  assert_int_equal(resident_pages(p, size), 64);
  size_t committed0 = committed_now();
  kiln_os_decommit(p + 8 * page, 32 * page);
  assert_int_equal(committed0 - committed_now(), 32 * page);
  assert_int_equal(resident_pages(p + 8 * page, 32 * page), 0);
  for (size_t i = 0; i < size; i++) {
    uint8_t want = (i >= 8 * page && i < 40 * page) ? 0 : 0xcc;
    if (p[i] != want) fail_msg("byte %zu is %#x after decommit, want %#x", i, p[i], want);
  }
  assert_true(kiln_os_recommit(32 * page));
  assert_int_equal(committed_now(), committed0);
  memset(p + 8 * page, 0x11, 32 * page);
  kiln_os_decommit(p, 0); /* no-op */
  assert_int_equal(committed_now(), committed0);
  kiln_os_free(p, size, size);
}

/* The process-wide limit: kiln_os_alloc and kiln_os_recommit refuse with
 * ENOMEM what would exceed it, count nothing then, and succeed once there
 * is room again. */
static void test_limit(void **state) {
  (void)state;
  size_t page = kiln_os_page_size();
  size_t old_limit = kiln_get_limit();
  size_t base = committed_now();
  kiln_set_limit(base + ((size_t)1 << 20));
  assert_int_equal(kiln_get_limit(), base + ((size_t)1 << 20));
  size_t mapped0 = mapped_now();
  errno = 0;
  void *too_big = kiln_os_alloc((size_t)2 << 20);
  int err = errno;
  void *too_big_aligned = kiln_os_alloc_aligned((size_t)2 << 20, (size_t)4 << 20);
  void *fits = kiln_os_alloc((size_t)512 << 10);
  void *second = kiln_os_alloc((size_t)768 << 10); /* 512 + 768 KiB > 1 MiB */
  errno = 0;
  bool recommit = kiln_os_recommit((size_t)768 << 10);
  int recommit_err = errno;
  bool recommit_small = kiln_os_recommit(page);
  size_t committed_mid = committed_now();
  kiln_set_limit(old_limit);
  assert_null(too_big);
  assert_int_equal(err, ENOMEM);
  assert_null(too_big_aligned);
  assert_non_null(fits);
  assert_null(second);
  assert_false(recommit);
  assert_int_equal(recommit_err, ENOMEM);
  assert_true(recommit_small);
  assert_int_equal(committed_mid, base + ((size_t)512 << 10) + page);
  assert_int_equal(mapped_now(), mapped0 + ((size_t)512 << 10));
  kiln_limit_release(page); /* undo the recommit */
  kiln_os_free(fits, (size_t)512 << 10, (size_t)512 << 10);
  assert_int_equal(committed_now(), base);
  /* Room again after the limit is lifted. */
  void *again = kiln_os_alloc((size_t)2 << 20);
  assert_non_null(again);
  kiln_os_free(again, (size_t)2 << 20, (size_t)2 << 20);
}

/* Freeing part of a mapping (huge blocks shrink this way). */
static void test_partial_free(void **state) {
  (void)state;
  size_t page = kiln_os_page_size();
  uint8_t *p = kiln_os_alloc(16 * page);
  assert_non_null(p);
  size_t mapped0 = mapped_now();
  kiln_os_free(p + 8 * page, 8 * page, 8 * page);
  assert_int_equal(mapped0 - mapped_now(), 8 * page);
  unsigned char vec[1];
  assert_int_equal(mincore(p + 8 * page, page, vec), -1);
  assert_int_equal(errno, ENOMEM);
  memset(p, 1, 8 * page);
  kiln_os_free(p, 8 * page, 8 * page);
  kiln_os_free(NULL, page, page); /* no-op */
}

/* protect makes a range fault (checked in a child), unprotect restores it
 * with its contents. */
static void test_protect(void **state) {
  (void)state;
  size_t page = kiln_os_page_size();
  volatile uint8_t *p = kiln_os_alloc(2 * page);
  assert_non_null((void *)p);
  p[page] = 42;
  kiln_os_protect((void *)(p + page), page);
  fflush(NULL);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    signal(SIGSEGV, SIG_DFL); /* cmocka's handler would catch it */
    p[0] = 1;             /* still accessible */
    (void)p[page];        /* faults */
    _exit(0);
  }
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGSEGV);
  kiln_os_unprotect((void *)(p + page), page);
  assert_int_equal(p[page], 42);
  p[page] = 43;
  kiln_os_free((void *)p, 2 * page, 2 * page);
}

static void test_random_and_clock(void **state) {
  (void)state;
  uint8_t a[64], b[64], zero[64] = {0};
  kiln_os_random(a, sizeof a);
  kiln_os_random(b, sizeof b);
  assert_memory_not_equal(a, b, sizeof a);
  assert_memory_not_equal(a, zero, sizeof a);
  kiln_os_random(a, 0);
  uint64_t t0 = kiln_os_clock_ms();
  struct timespec ts = {0, 30 * 1000 * 1000};
  nanosleep(&ts, NULL);
  uint64_t t1 = kiln_os_clock_ms();
  assert_true(t1 >= t0 + 29);
  assert_true(t1 < t0 + 5000);
  /* The coarse clock is the same clock a tick (at most 10 ms at HZ=100)
   * behind, and it moves. */
  uint64_t c0 = kiln_os_clock_coarse_ms(), p0 = kiln_os_clock_ms();
  assert_true(c0 <= p0 && c0 + 20 >= p0);
  nanosleep(&ts, NULL);
  uint64_t c1 = kiln_os_clock_coarse_ms();
  assert_true(c1 >= c0 + 10);
  assert_true(c1 <= kiln_os_clock_ms());
}

/* kiln_os_write_stderr writes exactly the bytes to file descriptor 2. */
static void test_write_stderr(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  int saved = dup(2);
  assert_true(saved >= 0);
  assert_int_equal(dup2(fds[1], 2), 2);
  kiln_os_write_stderr("kiln-os-test\n", 13);
  kiln_os_write_stderr("x", 0);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  char buf[64];
  ssize_t n = read(fds[0], buf, sizeof buf);
  close(fds[0]);
  assert_int_equal(n, 13);
  assert_memory_equal(buf, "kiln-os-test\n", 13);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_page_size),
    cmocka_unit_test(test_align_helpers),
    cmocka_unit_test(test_alloc_aligned),
    cmocka_unit_test(test_alloc_aligned_trims),
    cmocka_unit_test(test_alloc_errors),
    cmocka_unit_test(test_decommit),
    cmocka_unit_test(test_limit),
    cmocka_unit_test(test_partial_free),
    cmocka_unit_test(test_protect),
    cmocka_unit_test(test_random_and_clock),
    cmocka_unit_test(test_write_stderr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
