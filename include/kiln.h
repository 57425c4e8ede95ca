/* kiln.h — the public interface of the Kiln memory allocator.
 *
 * Terms used throughout (defined once, referred to everywhere):
 *   - A block is *currently allocated* from the moment an allocation function
 *     returns it until it is passed to a free function (or to realloc, which
 *     may move it), or until the heap, arena or pool it came from is destroyed
 *     or reset.
 *   - A block *fits* a request when it is at least the requested size and its
 *     address is a multiple of the requested alignment (and always of 16).
 *   - The *usable size* of a block is kiln_usable_size(p) >= the size asked
 *     for; every byte of it may be read and written.
 *
 * Errors: a function that returns a pointer returns NULL on failure and sets
 * errno to ENOMEM (size too large, memory limit reached, OS out of memory) or
 * EINVAL (bad alignment).  A failure never changes a block that is currently
 * allocated.  Sizes above PTRDIFF_MAX always fail with ENOMEM.
 *
 * Thread safety: everything here may be called from any thread, except where
 * a function says it belongs to one thread (first-class heaps, the
 * single-threaded arena).
 */
#ifndef KILN_H
#define KILN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

#if defined(__GNUC__)
#define KILN_EXPORT __attribute__((visibility("default")))
#define KILN_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#define KILN_ALLOC_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#else
#define KILN_EXPORT
#define KILN_MALLOC_ATTR
#define KILN_ALLOC_SIZE(...)
#endif

/* "0.1.0": the version of the library actually loaded. */
KILN_EXPORT const char *kiln_version(void);

/* ---------------------------------------------------------------------------
 * The malloc family under the kiln_ prefix.  Same contracts as the C/POSIX
 * functions; libkiln also exports the unprefixed names (malloc, free, ...), so
 * linking or LD_PRELOADing it replaces the C library's allocator.
 *
 * Choices where the standards leave room (the same as glibc's):
 *   - malloc(0) returns a unique, freeable block (usable size 16).
 *   - realloc(p, 0) with p != NULL frees p and returns NULL.
 *   - memalign/aligned_alloc accept any power-of-two alignment; aligned_alloc
 *     does not require size to be a multiple of the alignment.
 *   - valloc aligns to the page size; pvalloc also rounds the size up to it.
 *   - free_sized/free_aligned_sized with a wrong size are undefined behaviour
 *     per C23; Kiln ignores the size unless the checking mode is on, which
 *     reports the mismatch.
 *   - Freeing a pointer that does not start a block Kiln carved (another
 *     allocator's, the stack's, a static, an interior pointer, a page or
 *     segment header) does not touch Kiln's heap: it is ignored (counted in
 *     statistics, logged with KILN_VERBOSE=1, reported and aborted on in the
 *     checking mode, KILN_CHECK=1).  Freeing a block start that is already
 *     free is a double free: undefined here as in every allocator, caught by
 *     the checking mode and, in O(1), by the hardened mode (KILN_SECURE=1).
 * ------------------------------------------------------------------------- */
KILN_EXPORT KILN_MALLOC_ATTR KILN_ALLOC_SIZE(1) void *kiln_malloc(size_t size);
KILN_EXPORT KILN_MALLOC_ATTR KILN_ALLOC_SIZE(1, 2) void *kiln_calloc(size_t count, size_t size);
KILN_EXPORT KILN_ALLOC_SIZE(2) void *kiln_realloc(void *p, size_t size);
KILN_EXPORT KILN_ALLOC_SIZE(2, 3) void *kiln_reallocarray(void *p, size_t count, size_t size);
KILN_EXPORT void kiln_free(void *p);
KILN_EXPORT void kiln_free_sized(void *p, size_t size);
KILN_EXPORT void kiln_free_aligned_sized(void *p, size_t alignment, size_t size);
KILN_EXPORT KILN_MALLOC_ATTR KILN_ALLOC_SIZE(2) void *kiln_aligned_alloc(size_t alignment, size_t size);
KILN_EXPORT int kiln_posix_memalign(void **out, size_t alignment, size_t size);
KILN_EXPORT KILN_MALLOC_ATTR KILN_ALLOC_SIZE(2) void *kiln_memalign(size_t alignment, size_t size);
KILN_EXPORT KILN_MALLOC_ATTR KILN_ALLOC_SIZE(1) void *kiln_valloc(size_t size);
KILN_EXPORT KILN_MALLOC_ATTR void *kiln_pvalloc(size_t size);
/* 0 for NULL and for pointers Kiln did not hand out. */
KILN_EXPORT size_t kiln_usable_size(const void *p);
/* Whether p points into memory Kiln manages (a segment or a huge block),
 * without dereferencing p: a table look-up, plus a walk of the huge blocks
 * for addresses past the first 4 MiB of one.  True for freed blocks too. */
KILN_EXPORT bool kiln_owns(const void *p);

/* ---------------------------------------------------------------------------
 * First-class heaps.
 *
 * A heap belongs to the thread that created it: only that thread may allocate
 * from it, reset it or destroy it (doing so from another thread is undefined
 * behaviour; the checking mode reports it).  realloc/kiln_realloc of a heap's
 * block by the heap's thread keeps it in the heap when it moves; by another
 * thread, the moved block comes from that thread's default heap.  Blocks from a heap may be freed
 * with kiln_free/free from any thread, at any time before the heap is
 * destroyed or reset.  kiln_heap_destroy and kiln_heap_reset release every
 * block of the heap at once: blocks still allocated become invalid.  A heap
 * left alive when its thread exits is destroyed with the thread's other state
 * only if it was empty; otherwise its blocks stay valid and its memory is
 * handed to other threads like the thread's default heap.
 * ------------------------------------------------------------------------- */
typedef struct kiln_heap_s kiln_heap_t;

KILN_EXPORT kiln_heap_t *kiln_heap_new(void);
KILN_EXPORT void kiln_heap_destroy(kiln_heap_t *heap);
KILN_EXPORT void kiln_heap_reset(kiln_heap_t *heap);
KILN_EXPORT KILN_MALLOC_ATTR void *kiln_heap_malloc(kiln_heap_t *heap, size_t size);
KILN_EXPORT KILN_MALLOC_ATTR void *kiln_heap_calloc(kiln_heap_t *heap, size_t count, size_t size);
KILN_EXPORT void *kiln_heap_realloc(kiln_heap_t *heap, void *p, size_t size);
KILN_EXPORT KILN_MALLOC_ATTR void *kiln_heap_aligned_alloc(kiln_heap_t *heap, size_t alignment, size_t size);
/* Per-heap budget (0 = none): bytes of blocks (their usable sizes) the heap
 * may have allocated at once.  An allocation that would exceed it fails with
 * ENOMEM; freeing blocks makes room again.  A limited heap's allocations
 * take Kiln's slow path (a few nanoseconds more each). */
KILN_EXPORT void kiln_heap_set_limit(kiln_heap_t *heap, size_t bytes);
/* Bytes of blocks currently allocated from the heap (blocks freed by other
 * threads count until the owner next collects their page). */
KILN_EXPORT size_t kiln_heap_allocated(const kiln_heap_t *heap);

/* ---------------------------------------------------------------------------
 * Linear (bump) arena.
 *
 * kiln_arena_new_fixed works in a caller-supplied buffer and never asks the
 * OS for memory; kiln_arena_new grows in chunks from the OS (chunk_size 0
 * picks a default of 64 KiB; chunks grow to fit large requests) up to `limit`
 * bytes of chunks (0 = no limit).  Allocation returns NULL with ENOMEM when the
 * buffer is exhausted or the limit reached, EINVAL for an alignment that is not
 * a power of two; it never aborts.  Blocks are never freed one by one: mark and
 * rewind, reset or destroy release them.
 *
 * An arena made with KILN_ARENA_THREAD_SAFE may be used by several threads at
 * once for kiln_arena_alloc (the bump is a compare-and-swap); mark, rewind,
 * reset and destroy must not race with other calls on the same arena.  Any
 * other arena belongs to one thread at a time.
 * ------------------------------------------------------------------------- */
typedef struct kiln_arena_s kiln_arena_t;

enum kiln_arena_flags {
  KILN_ARENA_DEFAULT = 0,
  KILN_ARENA_THREAD_SAFE = 1u << 0,
};

typedef struct kiln_arena_mark_s {
  void *chunk;     /* the chunk that was current; opaque */
  size_t offset;   /* the bump offset in that chunk; opaque */
} kiln_arena_mark_t;

typedef struct kiln_arena_info_s {
  size_t used;       /* bytes handed out since creation/reset/rewind (incl. alignment padding) */
  size_t capacity;   /* bytes of buffer or chunks currently held */
  size_t high_water; /* largest `used` ever seen */
  size_t chunks;     /* chunks currently held (1 for a fixed arena) */
} kiln_arena_info_t;

KILN_EXPORT kiln_arena_t *kiln_arena_new(size_t chunk_size, size_t limit, unsigned flags);
KILN_EXPORT kiln_arena_t *kiln_arena_new_fixed(void *buffer, size_t size, unsigned flags);
KILN_EXPORT void *kiln_arena_alloc(kiln_arena_t *arena, size_t size, size_t alignment);
KILN_EXPORT kiln_arena_mark_t kiln_arena_mark(kiln_arena_t *arena);
KILN_EXPORT void kiln_arena_rewind(kiln_arena_t *arena, kiln_arena_mark_t mark);
KILN_EXPORT void kiln_arena_reset(kiln_arena_t *arena);
KILN_EXPORT void kiln_arena_destroy(kiln_arena_t *arena);
KILN_EXPORT kiln_arena_info_t kiln_arena_info(const kiln_arena_t *arena);

/* ---------------------------------------------------------------------------
 * Fixed-size pool: O(1) alloc and free of blocks of one size, grown a page at
 * a time; empty pages go back to the OS.  Safe to use from several threads
 * (see docs in src/pool.c for the model).  kiln_pool_new returns NULL with
 * EINVAL for block_size 0 or a bad alignment.  Blocks of a destroyed pool are
 * invalid at once.  kiln_pool_free aborts with a message on a pointer that is
 * no live block of the pool (double free included).
 *
 * Each thread frees into, and allocates from, a small cache of the pool
 * first (at most 32 blocks; 16 caches per pool): a cached block still holds
 * its page, so up to 16 x 32 blocks may keep pages from going back to the
 * OS.  kiln_pool_trim gives every cache back to the pages, and empty pages
 * (but one) to the OS, now.
 *
 * fork: the child can use, trim and destroy its copy of every pool, even if
 * other threads were in pool calls at that moment; a block that such a
 * thread was moving through its cache is lost to the child (still counted
 * by kiln_pool_in_use there).
 * ------------------------------------------------------------------------- */
typedef struct kiln_pool_s kiln_pool_t;

KILN_EXPORT kiln_pool_t *kiln_pool_new(size_t block_size, size_t alignment);
KILN_EXPORT void *kiln_pool_alloc(kiln_pool_t *pool);
KILN_EXPORT void kiln_pool_free(kiln_pool_t *pool, void *p);
KILN_EXPORT void kiln_pool_destroy(kiln_pool_t *pool);
KILN_EXPORT void kiln_pool_trim(kiln_pool_t *pool);
/* Blocks currently allocated (cached ones are not), and bytes of pages held. */
KILN_EXPORT size_t kiln_pool_in_use(const kiln_pool_t *pool);
KILN_EXPORT size_t kiln_pool_capacity_bytes(const kiln_pool_t *pool);

/* ---------------------------------------------------------------------------
 * Memory limit, statistics and control.
 * ------------------------------------------------------------------------- */

/* Process-wide budget in bytes of memory Kiln has committed from the OS
 * (0 = none; also set by KILN_LIMIT=512M).  Past it, allocations fail with
 * ENOMEM; the heap stays consistent and freeing memory makes room again. */
KILN_EXPORT void kiln_set_limit(size_t bytes);
KILN_EXPORT size_t kiln_get_limit(void);

#define KILN_STATS_BINS 128

typedef struct kiln_stats_s {
  size_t allocated;        /* bytes in blocks currently allocated (usable sizes) */
  size_t allocated_peak;   /* highest `allocated` seen (blocks of up to 256 KiB are counted when
                              their pages are visited, in steps of 1 MiB per thread: a peak that
                              lasted between two visits can be missed by that much) */
  size_t committed;        /* bytes of OS memory Kiln holds committed (readable/writable) */
  size_t committed_peak;
  size_t mapped;           /* bytes of address space Kiln has mapped */
  size_t mapped_peak;
  uint64_t malloc_count;   /* allocations served (all entry points); counted per page
                              when blocks are recycled, so blocks freed by their
                              owner but not yet reused may be missing */
  uint64_t free_count;     /* blocks freed (malloc_count minus live blocks) */
  uint64_t huge_count;     /* allocations served by a dedicated mapping */
  uint64_t remote_free_count; /* frees by a thread other than the owner */
  uint64_t invalid_free_count; /* frees of pointers Kiln did not hand out */
  uint64_t segments_abandoned; /* segments given up by exiting threads */
  uint64_t segments_reclaimed; /* abandoned segments taken over by another thread */
  uint64_t purges;         /* runs of memory handed back to the OS */
  size_t bin_count;        /* number of valid entries in the arrays below */
  size_t bin_block_size[KILN_STATS_BINS];
  uint64_t bin_malloc_count[KILN_STATS_BINS];
  uint64_t bin_current[KILN_STATS_BINS]; /* blocks of this size currently allocated */
} kiln_stats_t;

/* Merged over all threads, live and exited.  Counters of running threads are
 * read without stopping them: the result is a consistent-enough snapshot. */
KILN_EXPORT void kiln_stats_get(kiln_stats_t *stats);
KILN_EXPORT void kiln_stats_print(FILE *out);
/* Hand free memory back to the OS now.  force=true also reclaims memory
 * abandoned by exited threads and empties the segment caches. */
KILN_EXPORT void kiln_collect(bool force);

#ifdef __cplusplus
}
#endif

#endif /* KILN_H */
