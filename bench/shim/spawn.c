/* spawn.c — kiln-bench-spawn: run one command, report its resource usage.
 *
 *   kiln-bench-spawn RESULT_FILE PRELOAD -- COMMAND [ARG...]
 *
 * Runs COMMAND with LD_PRELOAD=PRELOAD (PRELOAD "" leaves LD_PRELOAD unset),
 * waits for it with wait4(2) and writes one line to RESULT_FILE:
 *     status=N utime=S stime=S maxrss_kib=K wall=S
 * status is the exit status (127: COMMAND could not be started), or minus
 * the signal that killed it.  Exits 0 once the line is written, 126 when it
 * cannot be.
 *
 * Why bench/run does not simply wait4 its children itself: Linux carries the
 * high-water RSS of the process image that exec replaces into the new
 * program's ru_maxrss (fs/exec.c: exec_mmap -> setmax_mm_hiwater_rss), so
 * every child of a 50 MiB Python process would report a peak of at least
 * 50 MiB.  This launcher is a few hundred KiB, so what it passes on is
 * noise, as with /usr/bin/time.  The preload is set in the child after
 * fork, so the launcher itself never runs under the allocator being measured.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  if (argc < 5 || strcmp(argv[3], "--") != 0) {
    fprintf(stderr, "usage: kiln-bench-spawn RESULT_FILE PRELOAD -- COMMAND [ARG...]\n");
    return 126;
  }
  const char *result = argv[1], *preload = argv[2];
  double t0 = now();
  pid_t pid = fork();
  if (pid < 0) {
    perror("kiln-bench-spawn: fork");
    return 126;
  }
  if (pid == 0) {
    if (*preload) setenv("LD_PRELOAD", preload, 1);
    else unsetenv("LD_PRELOAD");
    execvp(argv[4], argv + 4);
    fprintf(stderr, "kiln-bench-spawn: cannot run %s: %s\n", argv[4], strerror(errno));
    _exit(127);
  }
  int status;
  struct rusage ru;
  while (wait4(pid, &status, 0, &ru) < 0)
    if (errno != EINTR) {
      perror("kiln-bench-spawn: wait4");
      return 126;
    }
  double wall = now() - t0;
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? -WTERMSIG(status) : -1;
  FILE *f = fopen(result, "w");
  if (!f) {
    perror("kiln-bench-spawn: result file");
    return 126;
  }
  fprintf(f, "status=%d utime=%.6f stime=%.6f maxrss_kib=%ld wall=%.6f\n", code,
          (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6,
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6, ru.ru_maxrss, wall);
  return fclose(f) == 0 ? 0 : 126;
}
