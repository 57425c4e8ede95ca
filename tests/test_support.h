/* test_support.h — what several test programs share: sizes, the light mode,
 * sanitizer detection, and running a function that must abort with a
 * message.  Header-only (static inline): each test is one program. */
#ifndef KILN_TEST_SUPPORT_H
#define KILN_TEST_SUPPORT_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1 << 10)
#define MiB ((size_t)1 << 20)

/* Light mode (under valgrind, or KILN_TEST_LIGHT=1): the same checks on
 * smaller inputs, so the memcheck stage stays within its time budget. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
static inline bool light(void) {
#ifdef RUNNING_ON_VALGRIND
  if (RUNNING_ON_VALGRIND) return true;
#endif
  const char *env = getenv("KILN_TEST_LIGHT");
  return env != NULL && env[0] == '1';
}

/* RSS is the allocator's only under a plain build: ThreadSanitizer's shadow
 * memory grows with every byte the test touches. */
#if defined(__SANITIZE_THREAD__)
#define TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN 1
#endif
#endif
#ifndef TSAN
#define TSAN 0
#endif

/* Sanitizer runtimes are not fork-safe in a multi-threaded parent: ASan's
 * allocator lock may be held at fork (the child hangs in pthread_create),
 * and TSan refuses new threads after such a fork (die_after_fork).  Tests
 * whose children fork from a busy parent start no threads there under
 * either; Kiln's own calls are the same. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static inline bool is_aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

/* cmocka's fail_msg longjmps to the main thread: from a worker, print and
 * abort instead (ctest reports the crash with this message). */
#define thread_fail(...) (fprintf(stderr, __VA_ARGS__), fputc('\n', stderr), abort())

/* Run fn in a child with stderr captured; assert it aborted and said `want`
 * (cmocka.h must be included before this header). */
static inline void expect_abort(void (*fn)(void), const char *want) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  static char msg[4096];
  size_t len = 0;
  ssize_t n;
  while (len < sizeof msg - 1 && (n = read(fds[0], msg + len, sizeof msg - 1 - len)) > 0) len += (size_t)n;
  msg[len] = '\0';
  close(fds[0]);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFSIGNALED(status));
  assert_int_equal(WTERMSIG(status), SIGABRT);
  if (strstr(msg, want) == NULL) fail_msg("expected \"%s\" in \"%s\"", want, msg);
}

#endif /* KILN_TEST_SUPPORT_H */
