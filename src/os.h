/* os.h — the only door to the operating system.
 *
 * Every mmap, munmap, madvise, mprotect, getrandom and clock call of Kiln is
 * behind these functions (src/os.c).  Contracts:
 *   - Sizes and addresses are multiples of kiln_os_page_size() unless a
 *     function says otherwise.
 *   - A function returning bool returns false only for a recoverable failure
 *     (ENOMEM, or EAGAIN for locked memory); any other failure is a bug in
 *     Kiln and aborts with a message.  With KILN_VERBOSE=1 failures are logged.
 *   - Nothing here calls malloc.
 *   - Memory accounting: kiln_os_* updates the process-wide "mapped" and
 *     "committed" counters (src/stats.c), and kiln_os_alloc/commit refuse with
 *     ENOMEM when the process-wide limit (kiln_set_limit) would be exceeded.
 */
#ifndef KILN_OS_H
#define KILN_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The OS page size (4096 on x86-64 Linux), read once. */
size_t kiln_os_page_size(void);

/* Map `size` bytes of fresh zeroed read/write memory whose address is a
 * multiple of `alignment` (a power of two >= the page size).  NULL on ENOMEM
 * or when the memory limit refuses it. */
void *kiln_os_alloc_aligned(size_t size, size_t alignment);
static inline void *kiln_os_alloc(size_t size) { return kiln_os_alloc_aligned(size, 0); }

/* Unmap memory obtained from kiln_os_alloc*; `size` as it was mapped
 * (a part of a mapping may be freed too). `committed` says how many of those
 * bytes were counted as committed (normally `size`). */
void kiln_os_free(void *p, size_t size, size_t committed);

/* Resize a mapping from kiln_os_alloc*: first in place, else by moving its
 * pages (no copy) to a fresh range aligned to `alignment`.  Returns the new
 * address, or NULL (errno ENOMEM) with the old mapping untouched. */
void *kiln_os_remap(void *p, size_t old_size, size_t new_size, size_t alignment);

/* Address space for the checking mode's own metadata, which the memory
 * limit does not count (it budgets the program's memory): zeroed, read/
 * write, committed page by page as it is touched.  kiln_os_release unmaps
 * it; kiln_os_discard gives its touched pages back. */
void *kiln_os_reserve(size_t size);
void kiln_os_release(void *p, size_t size);
void kiln_os_discard(void *p, size_t size);

/* Give the physical pages back (MADV_DONTNEED: RSS drops now; the range reads
 * as zeros afterwards).  The address range stays mapped and usable. */
void kiln_os_decommit(void *p, size_t size);
/* Account for memory about to be used again after kiln_os_decommit; false
 * (errno ENOMEM) when the memory limit refuses it.  Never needs a syscall on
 * Linux: touching the pages commits them. */
bool kiln_os_recommit(size_t size);

/* Make a range inaccessible (guard pages) or accessible again. */
void kiln_os_protect(void *p, size_t size);
void kiln_os_unprotect(void *p, size_t size);

/* Fill `buf` with random bytes from the kernel; falls back to a mix of time
 * and addresses when getrandom is unavailable (never fails). */
void kiln_os_random(void *buf, size_t size);

/* Monotonic clock in milliseconds (vDSO; no syscall on x86-64 Linux). */
uint64_t kiln_os_clock_ms(void);
/* The same clock as of the last timer tick (1-4 ms old): a quarter of the
 * cost (9 ns against 41 ns in the VM of bench/RESULTS.md), for checks
 * that only ask whether an interval of many ticks has passed. */
uint64_t kiln_os_clock_coarse_ms(void);

/* Write `len` bytes to stderr with write(2): no stdio, no allocation. */
/* Keep a private duplicate of fd 2 for reports printed at exit. */
void kiln_os_keep_stderr(void);
void kiln_os_write_stderr(const char *msg, size_t len);

/* Let another thread run (a short wait in a lock-free protocol). */
void kiln_os_yield(void);

/* Asymmetric fences (membarrier(2), Linux 4.14): a thread on the fast side
 * of a protocol orders a store before a later load with a compiler fence
 * only, and the rare side calls kiln_os_heavy_fence, which makes every
 * running thread of the process execute a full memory barrier before it
 * returns.  So if the fast side's store was not yet visible to the rare
 * side's load after the heavy fence, the fast side's load sees the rare
 * side's store (Dekker's pattern with the cost moved to one side).
 * kiln_os_heavy_fence_ready registers the process once and says whether the
 * kernel offers it (not under valgrind, or when seccomp forbids it); without
 * it both sides must use full fences. */
bool kiln_os_heavy_fence_ready(void);
void kiln_os_heavy_fence(void);

/* Number of CPUs online (for sizing), at least 1. */
size_t kiln_os_cpu_count(void);

/* Map a whole file read-only (the checking mode's symboliser reads ELF and
 * DWARF from it at report time); NULL if it cannot be opened or mapped.  Not
 * counted as Kiln's memory: no statistics, no limit. */
const void *kiln_os_map_file(const char *path, size_t *size);

#endif /* KILN_OS_H */
