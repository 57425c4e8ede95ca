/* model.h — the executable specification of Kiln's allocation contract.
 *
 * A reference model of what a correct allocator must do, run side by side
 * with Kiln (or any allocator behind a spec_api_t) one operation at a time.
 * The model holds every *currently allocated* block (include/kiln.h) as an
 * address range with its requested size, alignment, usable size and a content
 * seed, and after EVERY operation checks:
 *   - valid:     a successful allocation returns non-NULL, usable >= requested;
 *   - aligned:   to 16 and to the requested alignment;
 *   - disjoint:  no two live blocks overlap (a treap keyed by address: the
 *                new block is compared with its neighbours, O(log n));
 *   - preserved: each block holds the pattern of its seed, verified before
 *                it is freed and, up to min(old, new), across realloc;
 *   - zeroed:    calloc'd bytes read as zero;
 *   - errno:     every failure returns NULL (or the error code) with the
 *                errno the contract names, and leaves live blocks intact
 *                (a failed realloc keeps the old block, a failed
 *                posix_memalign leaves *out untouched).
 * Operations name *slots*, not pointers, so a sequence of operations is a
 * plain value: it can be generated from a seed, replayed, shrunk and printed
 * as C.  An operation on an empty slot, a missing heap/arena/pool or a block
 * of the wrong kind is a no-op; that keeps every sub-sequence meaningful.
 *
 * Threads: an operation carries the thread that runs it (0 = the caller,
 * 1..SPEC_WORKERS = worker threads that execute operations on request, one
 * at a time), so a block allocated by one thread is freed by another, and
 * SPEC_THREAD_EXIT ends a worker so its pages are abandoned and reclaimed.
 * Operations run one after another: the spec checks cross-thread hand-offs,
 * not races (those are in the Promela models of tests/model/ and the stress tests).
 *
 * The model's own storage never comes from the allocator under test: static
 * arrays and mmap only.
 */
#ifndef KILN_SPEC_MODEL_H
#define KILN_SPEC_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln.h"

#define SPEC_SLOTS 1024  /* live-block handles an operation can name */
#define SPEC_HEAPS 4     /* first-class heaps alive at once */
#define SPEC_ARENAS 4
#define SPEC_POOLS 4
#define SPEC_MARKS 2     /* arena marks kept per arena */
#define SPEC_WORKERS 2   /* worker threads besides the caller */

/* X-macro: one line per operation kind, name and what a, b mean.  The
 * kinds of each family (HEAP_*, ARENA_*, POOL_*) stay together, from its
 * _NEW to its last: model_op_family (model_internal.h) relies on it. */
#define SPEC_OPS(X)                                                              \
  X(MALLOC)             /* slot = malloc(a) */                                   \
  X(CALLOC)             /* slot = calloc(a, b) */                                \
  X(REALLOC)            /* slot = realloc(slot, a) (heap blocks: heap_realloc) */ \
  X(REALLOCARRAY)       /* slot = reallocarray(slot, a, b) */                    \
  X(ALIGNED_ALLOC)      /* slot = aligned_alloc(b, a) */                         \
  X(POSIX_MEMALIGN)     /* posix_memalign(&slot, b, a) */                        \
  X(MEMALIGN)           /* slot = memalign(b, a) */                              \
  X(VALLOC)             /* slot = valloc(a) */                                   \
  X(PVALLOC)            /* slot = pvalloc(a) */                                  \
  X(FREE)               /* free(slot) (arena/pool blocks: no-op) */              \
  X(FREE_SIZED)         /* free_sized(slot, requested size) */                   \
  X(FREE_ALIGNED_SIZED) /* free_aligned_sized(slot, alignment, size) */          \
  X(USABLE_SIZE)        /* usable_size(slot) unchanged; owns(slot) */            \
  X(CHECK_ALL)          /* verify the contents of every live block */            \
  X(HEAP_NEW)           /* heap[obj] = heap_new() */                             \
  X(HEAP_DESTROY)       /* heap_destroy(heap[obj]): its blocks die */            \
  X(HEAP_RESET)         /* heap_reset(heap[obj]): its blocks die */              \
  X(HEAP_MALLOC)        /* slot = heap_malloc(heap[obj], a) */                   \
  X(HEAP_CALLOC)        /* slot = heap_calloc(heap[obj], a, b) */                \
  X(HEAP_ALIGNED)       /* slot = heap_aligned_alloc(heap[obj], b, a) */         \
  X(HEAP_LIMIT)         /* heap_set_limit(heap[obj], a); over-limit request fails */ \
  X(ARENA_NEW)          /* arena[obj] = arena_new(a, b, flags) or new_fixed */   \
  X(ARENA_ALLOC)        /* slot = arena_alloc(arena[obj], a, b) */               \
  X(ARENA_MARK)         /* mark[obj][flags & 1] = arena_mark(arena[obj]) */      \
  X(ARENA_REWIND)       /* arena_rewind(arena[obj], mark[obj][flags & 1]) */     \
  X(ARENA_RESET)        /* arena_reset(arena[obj]) */                            \
  X(ARENA_DESTROY)      /* arena_destroy(arena[obj]) */                          \
  X(POOL_NEW)           /* pool[obj] = pool_new(a, b) */                         \
  X(POOL_ALLOC)         /* slot = pool_alloc(pool[obj]) */                       \
  X(POOL_FREE)          /* pool_free(pool of slot, slot) */                      \
  X(POOL_DESTROY)       /* pool_destroy(pool[obj]) */                            \
  X(THREAD_EXIT)        /* worker `thread` exits (its pages are abandoned) */

typedef enum spec_kind_e {
#define SPEC_ENUM(name) SPEC_##name,
  SPEC_OPS(SPEC_ENUM)
#undef SPEC_ENUM
  SPEC_KIND_COUNT
} spec_kind_t;

/* spec_op_t.flags for ARENA_NEW */
#define SPEC_ARENA_FLAG_THREAD_SAFE 1u /* KILN_ARENA_THREAD_SAFE */
#define SPEC_ARENA_FLAG_FIXED 2u       /* kiln_arena_new_fixed on an mmap'd buffer of a bytes */

/* One operation.  Printed by spec_print_ops as a C initializer. */
typedef struct spec_op_s {
  uint8_t kind;   /* spec_kind_t */
  uint8_t thread; /* 0 = caller, 1..SPEC_WORKERS = worker (ignored where the API needs the owner) */
  uint8_t flags;
  uint16_t slot;  /* block handle, < SPEC_SLOTS */
  uint16_t obj;   /* heap / arena / pool index */
  uint64_t a, b;
} spec_op_t;

/* Which check failed: a shrunk sequence must fail the same way. */
#define SPEC_FAILURES(X)                                                    \
  X(NONE, "none")                                                           \
  X(NULL_RESULT, "allocation failed where it must succeed")                 \
  X(NOT_NULL, "allocation succeeded where it must fail")                    \
  X(ERRNO, "wrong errno / error code on failure")                           \
  X(ALIGN, "block not aligned")                                             \
  X(USABLE, "usable size smaller than requested or changed")                \
  X(OVERLAP, "two live blocks overlap")                                     \
  X(CONTENT, "block contents not preserved")                                \
  X(ZERO, "calloc block not zeroed")                                        \
  X(OUT_TOUCHED, "failed posix_memalign changed *out")                      \
  X(BOUNDS, "arena/pool block outside its memory")                          \
  X(ACCOUNTING, "heap/arena/pool counters disagree with the model")         \
  X(OWNS, "kiln_owns() false for a live block")                             \
  X(CRASH, "the process died (signal)")                                     \
  X(TIMEOUT, "the run took too long (hang)")

typedef enum spec_failure_e {
#define SPEC_FENUM(name, text) SPEC_FAIL_##name,
  SPEC_FAILURES(SPEC_FENUM)
#undef SPEC_FENUM
  SPEC_FAIL_COUNT
} spec_failure_t;

/* The allocator under test.  spec_kiln_api calls the kiln_* functions; a
 * test swaps in a deliberately broken one to prove the checks can fail.  A
 * NULL family pointer (heap_new, arena_new, pool_new) disables that family. */
typedef struct spec_api_s {
  const char *name;
  void *(*malloc)(size_t);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*reallocarray)(void *, size_t, size_t);
  void *(*aligned_alloc)(size_t, size_t);
  int (*posix_memalign)(void **, size_t, size_t);
  void *(*memalign)(size_t, size_t);
  void *(*valloc)(size_t);
  void *(*pvalloc)(size_t);
  void (*free)(void *);
  void (*free_sized)(void *, size_t);
  void (*free_aligned_sized)(void *, size_t, size_t);
  size_t (*usable_size)(const void *);
  bool (*owns)(const void *);
  kiln_heap_t *(*heap_new)(void);
  void (*heap_destroy)(kiln_heap_t *);
  void (*heap_reset)(kiln_heap_t *);
  void *(*heap_malloc)(kiln_heap_t *, size_t);
  void *(*heap_calloc)(kiln_heap_t *, size_t, size_t);
  void *(*heap_realloc)(kiln_heap_t *, void *, size_t);
  void *(*heap_aligned_alloc)(kiln_heap_t *, size_t, size_t);
  void (*heap_set_limit)(kiln_heap_t *, size_t);
  size_t (*heap_allocated)(const kiln_heap_t *);
  kiln_arena_t *(*arena_new)(size_t, size_t, unsigned);
  kiln_arena_t *(*arena_new_fixed)(void *, size_t, unsigned);
  void *(*arena_alloc)(kiln_arena_t *, size_t, size_t);
  kiln_arena_mark_t (*arena_mark)(kiln_arena_t *);
  void (*arena_rewind)(kiln_arena_t *, kiln_arena_mark_t);
  void (*arena_reset)(kiln_arena_t *);
  void (*arena_destroy)(kiln_arena_t *);
  kiln_arena_info_t (*arena_info)(const kiln_arena_t *);
  kiln_pool_t *(*pool_new)(size_t, size_t);
  void *(*pool_alloc)(kiln_pool_t *);
  void (*pool_free)(kiln_pool_t *, void *);
  void (*pool_destroy)(kiln_pool_t *);
  size_t (*pool_in_use)(const kiln_pool_t *);
} spec_api_t;

extern const spec_api_t spec_kiln_api;

/* The outcome of running operations. */
typedef struct spec_result_s {
  spec_failure_t failure; /* SPEC_FAIL_NONE when every check passed */
  size_t step;            /* index of the failing operation */
  char message[256];
} spec_result_t;

/* --- running ------------------------------------------------------------- */

/* Start the model against `api` (empty: no blocks, heaps, arenas, pools). */
void spec_model_begin(const spec_api_t *api);
/* Run one operation and check everything; false (and *result filled) on the
 * first failed check.  After a failure the model must be ended. */
bool spec_model_step(const spec_op_t *op, size_t index, spec_result_t *result);
/* Verify and release every live block, heap, arena and pool; stop workers
 * when `stop_workers`.  Returns false (and fills *result) if a last check
 * fails. */
bool spec_model_end(bool stop_workers, spec_result_t *result);
/* Run a whole sequence in this process: begin, steps, end. */
spec_result_t spec_run(const spec_api_t *api, const spec_op_t *ops, size_t n);
/* Run it in a forked child so a crash or hang is survivable and reported as
 * SPEC_FAIL_CRASH / SPEC_FAIL_TIMEOUT (the step is the last one started). */
spec_result_t spec_run_forked(const spec_api_t *api, const spec_op_t *ops, size_t n,
                              unsigned timeout_s);

/* --- generating, shrinking, printing ------------------------------------- */

/* What the generator may produce. */
typedef struct spec_gen_config_s {
  unsigned slots;        /* slots used, 1..SPEC_SLOTS */
  bool heaps, arenas, pools, threads, exits, failures, big; /* families enabled; exits: THREAD_EXIT;
                                                             big: blocks > 1 MiB */
} spec_gen_config_t;

/* The families a given api supports, all on. */
spec_gen_config_t spec_gen_default(const spec_api_t *api);
/* Fill ops[0..n) from `seed` (splitmix64/xorshift: the same seed gives the
 * same sequence on every machine). */
void spec_generate(uint64_t seed, const spec_gen_config_t *config, spec_op_t *ops, size_t n);
/* Decode fuzzer bytes into at most `max` operations; returns how many. */
size_t spec_decode(const uint8_t *data, size_t size, spec_op_t *ops, size_t max);

/* Delta debugging: shrink ops[0..*n) (which fails with `failure`) to a
 * sequence that still fails the same way, replaying each candidate with
 * spec_run_forked.  Stops after `max_runs` candidates.  Returns the final
 * failure (with its step) and updates *n. */
spec_result_t spec_shrink(const spec_api_t *api, spec_op_t *ops, size_t *n, spec_result_t failure,
                          unsigned max_runs, unsigned timeout_s);

/* Print ops as a C array initializer that tests/spec/regressions.h accepts. */
void spec_print_ops(FILE *out, const char *name, const spec_op_t *ops, size_t n);
const char *spec_kind_name(unsigned kind);
const char *spec_failure_name(spec_failure_t failure);

/* Memory for op sequences that does not come from the allocator under test. */
spec_op_t *spec_ops_alloc(size_t n);
void spec_ops_release(spec_op_t *ops, size_t n);

#endif /* KILN_SPEC_MODEL_H */
