/* os.c — every system call Kiln makes (see os.h for the contracts).
 *
 * Idea from hardened_malloc's memory.c: one small file owns mmap/munmap/
 * madvise/mprotect, each wrapped so that a failure other than ENOMEM is a
 * fatal, named error instead of a silently ignored return value.
 */
#define _GNU_SOURCE
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

/* RUNNING_ON_VALGRIND is a no-op sequence of a few instructions natively. */
static bool kiln_running_on_valgrind(void) {
#ifdef RUNNING_ON_VALGRIND
  return RUNNING_ON_VALGRIND != 0;
#else
  return false;
#endif
}

static size_t os_page_size_cached;

size_t kiln_os_page_size(void) {
  size_t size = __atomic_load_n(&os_page_size_cached, __ATOMIC_RELAXED);
  if (size == 0) {
    long ps = sysconf(_SC_PAGESIZE);
    size = ps > 0 ? (size_t)ps : 4096;
    __atomic_store_n(&os_page_size_cached, size, __ATOMIC_RELAXED);
  }
  return size;
}

void kiln_os_yield(void) { sched_yield(); }

static _Atomic int heavy_fence_state; /* 0: not asked yet, 1: ready, -1: unavailable */

bool kiln_os_heavy_fence_ready(void) {
  int state = atomic_load_explicit(&heavy_fence_state, memory_order_acquire);
  if (state == 0) {
    long supported = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    bool ok = supported > 0 && (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
              syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    state = ok ? 1 : -1;
    atomic_store_explicit(&heavy_fence_state, state, memory_order_release);
  }
  return state == 1;
}

void kiln_os_heavy_fence(void) {
  /* Registered (kiln_os_heavy_fence_ready), so it does not fail; should a
   * kernel not carry the registration into a forked child, register again. */
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0) return;
  if (errno == EPERM && syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
      syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
    return;
  kiln_fatal("kiln: membarrier failed (errno %d)", errno);
}

size_t kiln_os_cpu_count(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (size_t)n : 1;
}

static void *os_mmap(void *hint, size_t size) {
  void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    /* EINVAL for an absurd length (valgrind answers so) is out of memory
     * too; for a sane one it would be a bug of Kiln's. */
    if (err == EINVAL && size >= ((size_t)1 << 40)) err = ENOMEM;
    if (err != ENOMEM && err != EAGAIN)
      kiln_fatal("kiln: mmap of %zu bytes failed with errno %d", size, err);
    kiln_verbose("kiln: mmap of %zu bytes failed: out of memory", size);
    errno = ENOMEM;
    return NULL;
  }
  return p;
}

static void os_munmap(void *p, size_t size) {
  if (size == 0) return;
  if (munmap(p, size) != 0)
    kiln_fatal("kiln: munmap(%p, %zu) failed with errno %d", p, size, errno);
}

void *kiln_os_alloc_aligned(size_t size, size_t alignment) {
  size_t page = kiln_os_page_size();
  if (size == 0 || size > KILN_MAX_ALLOC_SIZE) { errno = ENOMEM; return NULL; }
  size = kiln_align_up(size, page);
  if (!kiln_limit_reserve(size)) return NULL;
  if (alignment <= page) {
    void *p = os_mmap(NULL, size);
    if (p == NULL) { kiln_limit_release(size); return NULL; }
    kiln_stats_mapped(size);
    return p;
  }
  /* Over-map by `alignment` and trim both ends: the result is aligned and
   * nothing but `size` bytes stays mapped.  A hint of the next aligned address
   * usually makes the first try aligned already (saves two munmaps). */
  if (size + alignment < size) { kiln_limit_release(size); errno = ENOMEM; return NULL; }
  uint8_t *raw = os_mmap(NULL, size + alignment);
  if (raw == NULL) { kiln_limit_release(size); return NULL; }
  uint8_t *aligned = (uint8_t *)kiln_align_up((uintptr_t)raw, alignment);
  os_munmap(raw, (size_t)(aligned - raw));
  os_munmap(aligned + size, (size_t)(raw + size + alignment - (aligned + size)));
  kiln_stats_mapped(size);
  return aligned;
}

void *kiln_os_reserve(size_t size) {
  if (size == 0 || size > KILN_MAX_ALLOC_SIZE) { errno = ENOMEM; return NULL; }
  size = kiln_align_up(size, kiln_os_page_size());
  void *p = os_mmap(NULL, size);
  if (p != NULL) kiln_stats_mapped(size);
  return p;
}

void kiln_os_release(void *p, size_t size) {
  if (p == NULL || size == 0) return;
  size = kiln_align_up(size, kiln_os_page_size());
  os_munmap(p, size);
  kiln_stats_unmapped(size);
}

void kiln_os_free(void *p, size_t size, size_t committed) {
  if (p == NULL || size == 0) return;
  os_munmap(p, size);
  kiln_stats_unmapped(size);
  kiln_limit_release(committed);
}

void *kiln_os_remap(void *p, size_t old_size, size_t new_size, size_t alignment) {
  if (new_size <= old_size) return p;
  /* Under valgrind, memcheck reported writes into pages moved this way as
   * invalid (a multi-threaded test, test_fork's churn; a single-threaded
   * reproduction ran clean), so there the callers' fallbacks (copy, or a
   * fresh mapping) serve instead.  Natively, no test or sanitizer run has
   * shown a fault. */
  if (kiln_running_on_valgrind()) return NULL;
  size_t grow = new_size - old_size;
  if (!kiln_limit_reserve(grow)) return NULL;
  void *q = mremap(p, old_size, new_size, 0);
  if (q == MAP_FAILED) {
    /* Reserve an aligned destination, then move the pages onto it. */
    void *dest = os_mmap(NULL, new_size + alignment);
    if (dest == NULL) { kiln_limit_release(grow); return NULL; }
    uint8_t *aligned = (uint8_t *)kiln_align_up((uintptr_t)dest, alignment);
    os_munmap(dest, (size_t)(aligned - (uint8_t *)dest));
    os_munmap(aligned + new_size, (size_t)((uint8_t *)dest + new_size + alignment - (aligned + new_size)));
    q = mremap(p, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, aligned);
    if (q == MAP_FAILED) {
      int err = errno;
      os_munmap(aligned, new_size);
      kiln_limit_release(grow);
      /* EFAULT: the range is no longer one mapping (VMA) -- part of it was
       * mprotect'ed (a hardened-mode guard page, or the program's own), and
       * after fork the pieces may not merge back.  Recoverable: the caller
       * maps afresh (issue 5). */
      if (err != ENOMEM && err != EFAULT) kiln_fatal("kiln: mremap of %zu bytes failed with errno %d", new_size, err);
      errno = ENOMEM;
      return NULL;
    }
  }
  kiln_stats_mapped(grow);
  return q;
}

void kiln_os_discard(void *p, size_t size) {
  if (size == 0) return;
  /* MADV_DONTNEED rather than MADV_FREE: RSS must fall now, not under memory
   * pressure, or programs (and the memory-return benchmark) never see it. */
  if (madvise(p, size, MADV_DONTNEED) != 0)
    kiln_fatal("kiln: madvise(%p, %zu, DONTNEED) failed with errno %d", p, size, errno);
}

void kiln_os_decommit(void *p, size_t size) {
  kiln_os_discard(p, size);
  kiln_limit_release(size);
}

bool kiln_os_recommit(size_t size) {
  if (!kiln_limit_reserve(size)) return false;
  return true;
}

void kiln_os_protect(void *p, size_t size) {
  if (size == 0) return;
  if (mprotect(p, size, PROT_NONE) != 0) {
    /* ENOMEM here means the kernel's map count is exhausted: the guard is a
     * defence, not a requirement, so go on without it. */
    if (errno != ENOMEM)
      kiln_fatal("kiln: mprotect(%p, %zu, NONE) failed with errno %d", p, size, errno);
    kiln_verbose("kiln: guard page at %p not installed (out of map entries)", p);
  }
}

void kiln_os_unprotect(void *p, size_t size) {
  if (size == 0) return;
  if (mprotect(p, size, PROT_READ | PROT_WRITE) != 0)
    kiln_fatal("kiln: mprotect(%p, %zu, RW) failed with errno %d", p, size, errno);
}

void kiln_os_random(void *buf, size_t size) {
  uint8_t *out = buf;
  while (size > 0) {
    ssize_t n = getrandom(out, size, GRND_NONBLOCK);
    if (n <= 0) break;
    out += n;
    size -= (size_t)n;
  }
  if (size == 0) return;
  /* No entropy yet (early boot) or no getrandom: a weak but non-constant mix. */
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)buf ^
               (uint64_t)(uintptr_t)&ts;
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    out[i] = (uint8_t)x;
  }
}

static uint64_t clock_ms(clockid_t clock) {
  struct timespec ts;
  if (clock_gettime(clock, &ts) != 0) clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t kiln_os_clock_ms(void) { return clock_ms(CLOCK_MONOTONIC); }

uint64_t kiln_os_clock_coarse_ms(void) { return clock_ms(CLOCK_MONOTONIC_COARSE); }

/* Messages go to this descriptor: 2, or a duplicate of it taken at start-up
 * when an exit-time report is due (programs such as coreutils close fd 2 in
 * an atexit handler, before Kiln's destructor prints). */
static int stderr_fd = 2;

void kiln_os_keep_stderr(void) {
  int fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (fd >= 0) __atomic_store_n(&stderr_fd, fd, __ATOMIC_RELAXED);
}

void kiln_os_write_stderr(const char *msg, size_t len) {
  /* fd 2 first, so that a program's own redirection of it (dup2) is obeyed;
   * the duplicate only once fd 2 is closed (issue 5: the misuse tests
   * capture reports through a pipe dup2'ed onto fd 2). */
  int fd = 2;
  while (len > 0) {
    ssize_t n = write(fd, msg, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EBADF && fd == 2) {
      fd = __atomic_load_n(&stderr_fd, __ATOMIC_RELAXED);
      if (fd != 2) continue;
    }
    if (n <= 0) return;
    msg += n;
    len -= (size_t)n;
  }
}

const void *kiln_os_map_file(const char *path, size_t *size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  void *p = MAP_FAILED;
  if (fstat(fd, &st) == 0 && st.st_size > 0) p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return NULL;
  *size = (size_t)st.st_size;
  return p;
}
