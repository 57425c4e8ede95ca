/* test_fork.c — fork() and Kiln: from a single-threaded parent, from a
 * parent whose other threads are allocating at that moment (every Kiln lock
 * may be held then), from a thread other than the main one, and nested.
 * The child must be able to read the parent's blocks, free them, allocate
 * and free (small to huge, and in new threads), and exit 0.  A child that
 * deadlocks is killed by alarm() and counts as a failure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_support.h"

#include "kiln.h"

#define CHILD_TIMEOUT_S 20

/* Under ASan or TSan (SANITIZED, test_support.h) the children of a busy
 * parent do not start threads. */

static uint8_t byte_at(uint32_t tag, size_t i) { return (uint8_t)(tag * 131u + i * 7u + (i >> 10)); }

static void stamp(uint8_t *p, size_t size, uint32_t tag) {
  for (size_t i = 0; i < size; i += (i < 256 ? 1 : 1021)) p[i] = byte_at(tag, i);
  if (size > 0) p[size - 1] = byte_at(tag, size - 1);
}

static bool intact(const uint8_t *p, size_t size, uint32_t tag) {
  for (size_t i = 0; i < size; i += (i < 256 ? 1 : 1021))
    if (p[i] != byte_at(tag, i)) return false;
  return size == 0 || p[size - 1] == byte_at(tag, size - 1);
}

static const size_t sizes[] = {0, 1, 24, 100, 1000, 5000, 9000, 70000, 300000, MiB, 3 * MiB, 9 * MiB};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

/* Work a child does: allocate, check, free every kind (n blocks, `rounds`
 * times); then (exercise_with_thread) a thread that does the same; returns
 * 0 when all went well. */
enum { N_MAX = 400 };

static int exercise_n(uint32_t seed, int n, int rounds) {
  static uint8_t *blocks[N_MAX];
  for (int round = 0; round < rounds; round++) {
    for (int i = 0; i < n; i++) {
      size_t size = sizes[(size_t)(i + round) % N_SIZES];
      if (size > MiB && i % 16 != 0) size = 200;
      blocks[i] = kiln_malloc(size);
      if (blocks[i] == NULL) return 10;
      stamp(blocks[i], size, seed + (uint32_t)i);
    }
    for (int i = 0; i < n; i++) {
      size_t size = sizes[(size_t)(i + round) % N_SIZES];
      if (size > MiB && i % 16 != 0) size = 200;
      if (!intact(blocks[i], size, seed + (uint32_t)i)) return 11;
      if (i % 3 == 0) {
        blocks[i] = kiln_realloc(blocks[i], size + 5000);
        if (blocks[i] == NULL) return 12;
      }
      kiln_free(blocks[i]);
    }
  }
  void *z = kiln_calloc(1000, 10);
  if (z == NULL) return 13;
  for (int i = 0; i < 10000; i++)
    if (((uint8_t *)z)[i] != 0) return 14;
  kiln_free(z);
  return 0;
}

static int exercise(uint32_t seed) { return exercise_n(seed, N_MAX, 3); }

static void *exercise_thread(void *arg) {
  intptr_t rc = exercise_n((uint32_t)(uintptr_t)arg, 100, 1);
  return (void *)rc;
}

static int exercise_with_thread(uint32_t seed) {
  int rc = exercise(seed);
  if (rc != 0) return rc;
  pthread_t t;
  if (pthread_create(&t, NULL, exercise_thread, (void *)(uintptr_t)(seed + 7)) != 0) return 20;
  void *trc;
  pthread_join(t, &trc);
  return (int)(intptr_t)trc;
}

/* Fork and run `child` there (with a watchdog); returns its exit status,
 * 100 + the signal that killed it, or 200 when fork/waitpid failed.  Safe
 * to call from any thread (no cmocka calls). */
static int run_child(int (*child)(void *), void *arg) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return 200;
  if (pid == 0) {
    signal(SIGALRM, SIG_DFL);
    signal(SIGSEGV, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    alarm(CHILD_TIMEOUT_S);
    _exit(child(arg));
  }
  int status;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 200;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 100 + WTERMSIG(status);
}

static void expect_child_ok(int rc, const char *what) {
  if (rc == 0) return;
  if (rc == 200) fail_msg("%s: fork or waitpid failed", what);
  if (rc == 100 + SIGALRM) fail_msg("%s: the child hung (killed after %d s: deadlock?)", what, CHILD_TIMEOUT_S);
  if (rc > 100) fail_msg("%s: the child died of signal %d", what, rc - 100);
  fail_msg("%s: the child exited with %d", what, rc);
}

/* --- single-threaded parent ---------------------------------------------------------- */

typedef struct parent_blocks_s {
  uint8_t *p[N_SIZES];
} parent_blocks_t;

static int child_uses_parent_blocks(void *arg) {
  parent_blocks_t *b = arg;
  for (size_t i = 0; i < N_SIZES; i++) {
    if (!intact(b->p[i], sizes[i], (uint32_t)i)) return 30;
    if (kiln_usable_size(b->p[i]) < sizes[i]) return 31;
  }
  for (size_t i = 0; i < N_SIZES; i += 2) kiln_free(b->p[i]);
  for (size_t i = 1; i < N_SIZES; i += 2) {
    b->p[i] = kiln_realloc(b->p[i], sizes[i] * 2 + 10);
    if (b->p[i] == NULL || !intact(b->p[i], sizes[i], (uint32_t)i)) return 32;
    kiln_free(b->p[i]);
  }
  return exercise_with_thread(1000);
}

static void test_fork_single_threaded(void **state) {
  (void)state;
  parent_blocks_t b;
  for (size_t i = 0; i < N_SIZES; i++) {
    b.p[i] = kiln_malloc(sizes[i]);
    assert_non_null(b.p[i]);
    stamp(b.p[i], sizes[i], (uint32_t)i);
  }
  for (int round = 0; round < (light() ? 1 : 5); round++) expect_child_ok(run_child(child_uses_parent_blocks, &b), "single-threaded fork");
  /* The parent's blocks are untouched by whatever the children did. */
  for (size_t i = 0; i < N_SIZES; i++) {
    assert_true(intact(b.p[i], sizes[i], (uint32_t)i));
    kiln_free(b.p[i]);
  }
  assert_int_equal(exercise(5), 0);
}

/* --- fork while other threads allocate ------------------------------------------------- */

static _Atomic int stop;
static _Atomic size_t churn_ops;

/* Churn that takes every Kiln lock often: new segments (large blocks),
 * huge blocks (the huge cache's lock), thread records (short-lived
 * threads), statistics (the segment and thread locks), collect. */
static void *churn(void *arg) {
  uint64_t x = (uintptr_t)arg * 0x9e3779b97f4a7c15ull | 1;
  void *keep[64] = {0};
  while (!atomic_load(&stop)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t i = x % 64;
    kiln_free(keep[i]);
    size_t size;
    switch ((x >> 8) % 16) {
      case 0: size = 2 * MiB + (x >> 16) % MiB; break;
      case 1: size = 300 * KiB; break;
      case 2: size = 40 * KiB; break;
      default: size = (x >> 16) % 2000; break;
    }
    keep[i] = kiln_malloc(size);
    if (keep[i] != NULL && size > 0) ((uint8_t *)keep[i])[size - 1] = 1;
    if ((x >> 24) % 256 == 0) {
      kiln_stats_t s;
      kiln_stats_get(&s);
    }
    if ((x >> 24) % 1024 == 1) kiln_collect((x >> 40) % 2 == 0);
    atomic_fetch_add(&churn_ops, 1);
  }
  for (int i = 0; i < 64; i++) kiln_free(keep[i]);
  return NULL;
}

static void *short_thread(void *arg) {
  (void)arg;
  void *p = kiln_malloc(100);
  kiln_free(p);
  return NULL;
}

static void *thread_spawner(void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    pthread_t t;
    if (pthread_create(&t, NULL, short_thread, NULL) == 0) pthread_join(t, NULL);
  }
  return NULL;
}

static int child_after_busy_fork(void *arg) {
  (void)arg;
  kiln_stats_t s;
  kiln_stats_get(&s); /* takes the segment and thread locks */
  kiln_collect(true); /* and the caches' */
  int rc = exercise_n(2000, 100, 1);
  if (rc != 0 || SANITIZED) return rc;
  pthread_t t;
  if (pthread_create(&t, NULL, exercise_thread, (void *)(uintptr_t)2100) != 0) return 20;
  void *trc;
  pthread_join(t, &trc);
  return (int)(intptr_t)trc;
}

static void run_busy_forks(int forks, void *(*fork_from)(void *)) {
  enum { CHURNERS = 2 };
  pthread_t t[CHURNERS + 1];
  atomic_store(&stop, 0);
  for (int i = 0; i < CHURNERS; i++)
    assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)), 0);
  assert_int_equal(pthread_create(&t[CHURNERS], NULL, thread_spawner, NULL), 0);
  while (atomic_load(&churn_ops) < 1000) sched_yield();
  int failures = 0, first_rc = 0;
  for (int i = 0; i < forks; i++) {
    intptr_t rc;
    if (fork_from != NULL) {
      pthread_t f;
      assert_int_equal(pthread_create(&f, NULL, fork_from, NULL), 0);
      void *r;
      pthread_join(f, &r);
      rc = (intptr_t)r;
    } else {
      rc = run_child(child_after_busy_fork, NULL);
    }
    if (rc != 0 && failures++ == 0) first_rc = (int)rc;
  }
  atomic_store(&stop, 1);
  for (int i = 0; i <= CHURNERS; i++) pthread_join(t[i], NULL);
  if (failures > 0) {
    char what[96];
    snprintf(what, sizeof what, "%d of %d forks of a busy parent failed; the first", failures, forks);
    expect_child_ok(first_rc, what);
  }
}

static void test_fork_while_allocating(void **state) {
  (void)state;
  run_busy_forks(light() ? 3 : 16, NULL);
}

/* fork() called from a thread that is not the main one: in the child that
 * thread is the only one, with its own heap. */
static void *fork_in_thread(void *arg) {
  (void)arg;
  void *mine = kiln_malloc(3000); /* this thread's heap exists before the fork */
  int rc = run_child(child_after_busy_fork, NULL);
  kiln_free(mine);
  return (void *)(intptr_t)rc;
}

static void test_fork_from_other_thread(void **state) {
  (void)state;
  run_busy_forks(light() ? 2 : 8, fork_in_thread);
}

/* The child frees blocks that other parent threads allocated (their owners
 * do not exist in the child), then forks again itself. */
typedef struct foreign_owner_s {
  uint8_t *blocks[256];
} foreign_owner_t;

static void *alloc_and_wait(void *arg) {
  foreign_owner_t *o = arg;
  for (int i = 0; i < 256; i++) {
    size_t size = (size_t)(i % 32) * 300 + 1;
    o->blocks[i] = kiln_malloc(size);
    stamp(o->blocks[i], size, (uint32_t)i);
  }
  return NULL;
}

static int grandchild(void *arg) {
  (void)arg;
  return exercise_with_thread(4000);
}

static int child_frees_other_threads_blocks(void *arg) {
  foreign_owner_t *o = arg;
  for (int i = 0; i < 256; i++) {
    size_t size = (size_t)(i % 32) * 300 + 1;
    if (!intact(o->blocks[i], size, (uint32_t)i)) return 40;
    kiln_free(o->blocks[i]);
  }
  int rc = exercise(3000);
  if (rc != 0) return rc;
  rc = run_child(grandchild, NULL);
  return rc == 0 ? 0 : 50 + (rc % 50);
}

static void test_fork_child_frees_and_forks(void **state) {
  (void)state;
  foreign_owner_t o;
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, alloc_and_wait, &o), 0);
  pthread_join(t, NULL); /* the owner exited: its pages are abandoned */
  expect_child_ok(run_child(child_frees_other_threads_blocks, &o), "child of a parent with abandoned pages");
  for (int i = 0; i < 256; i++) kiln_free(o.blocks[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fork_single_threaded),
    cmocka_unit_test(test_fork_while_allocating),
    cmocka_unit_test(test_fork_from_other_thread),
    cmocka_unit_test(test_fork_child_frees_and_forks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
