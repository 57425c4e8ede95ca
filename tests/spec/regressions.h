/* regressions.h — operation sequences replayed by tests/test_spec.c on every
 * run.  When spec_long or test_spec finds a failure it prints a shrunk
 * SPEC_REGRESSION(name, ops...) entry: paste it here once the bug is fixed.
 * The first entries are hand-written edge cases of the contract.
 */

/* A failed realloc keeps the block, its contents and its usable size. */
SPEC_REGRESSION(realloc_failure_keeps_block,
  {.kind = SPEC_MALLOC, .slot = 1, .a = 100},
  {.kind = SPEC_REALLOC, .slot = 1, .a = 0xffffffffffffffffull},
  {.kind = SPEC_REALLOC, .slot = 1, .a = 0x8000000000000000ull},
  {.kind = SPEC_REALLOCARRAY, .slot = 1, .a = 0x4000000000000000ull, .b = 8},
  {.kind = SPEC_USABLE_SIZE, .slot = 1},
  {.kind = SPEC_FREE, .slot = 1})

/* errno on every failure path of a fresh allocation. */
SPEC_REGRESSION(errno_paths,
  {.kind = SPEC_MALLOC, .slot = 1, .a = 0xffffffffffffffffull},
  {.kind = SPEC_MALLOC, .slot = 1, .a = 0x8000000000000000ull},
  {.kind = SPEC_CALLOC, .slot = 1, .a = 0x8000000000000000ull, .b = 2},
  {.kind = SPEC_CALLOC, .slot = 1, .a = 0x1000000, .b = 0x1000000},
  {.kind = SPEC_ALIGNED_ALLOC, .slot = 1, .a = 16, .b = 24},
  {.kind = SPEC_ALIGNED_ALLOC, .slot = 1, .a = 16, .b = 0},
  {.kind = SPEC_ALIGNED_ALLOC, .slot = 1, .a = 0xfffffffffffff000ull, .b = 4096},
  {.kind = SPEC_POSIX_MEMALIGN, .slot = 1, .a = 16, .b = 4},
  {.kind = SPEC_POSIX_MEMALIGN, .slot = 1, .a = 16, .b = 24},
  {.kind = SPEC_POSIX_MEMALIGN, .slot = 1, .a = 0xffffffffffffffffull, .b = 64},
  {.kind = SPEC_PVALLOC, .slot = 1, .a = 0xfffffffffffff001ull},
  {.kind = SPEC_MALLOC, .slot = 1, .a = 0})

/* realloc(p, 0) frees; realloc(NULL, n) allocates; zero-size blocks are unique. */
SPEC_REGRESSION(realloc_zero_and_null,
  {.kind = SPEC_REALLOC, .slot = 2, .a = 40},
  {.kind = SPEC_REALLOC, .slot = 2, .a = 0},
  {.kind = SPEC_MALLOC, .slot = 3},
  {.kind = SPEC_MALLOC, .slot = 4},
  {.kind = SPEC_CALLOC, .slot = 5},
  {.kind = SPEC_FREE_SIZED, .slot = 3},
  {.kind = SPEC_FREE, .slot = 4},
  {.kind = SPEC_FREE, .slot = 5})

/* A block crosses threads: allocated by worker 1, freed by worker 2 after
 * worker 1 exited (abandoned page), then its memory is reused. */
SPEC_REGRESSION(abandoned_block_freed_remotely,
  {.kind = SPEC_MALLOC, .thread = 1, .slot = 1, .a = 48},
  {.kind = SPEC_MALLOC, .thread = 1, .slot = 2, .a = 48},
  {.kind = SPEC_THREAD_EXIT, .thread = 1},
  {.kind = SPEC_FREE, .thread = 2, .slot = 1},
  {.kind = SPEC_MALLOC, .thread = 2, .slot = 3, .a = 48},
  {.kind = SPEC_MALLOC, .slot = 4, .a = 48},
  {.kind = SPEC_FREE, .slot = 2},
  {.kind = SPEC_CHECK_ALL})

/* Found by spec_long --seed 1 (crash, SIGSEGV in kiln_heap_page_retire): a
 * thread exit abandoned the 1024-byte page, then freed the empty 4096-byte
 * page of the same segment, which left the segment owned by the dead thread;
 * the next worker reused its thread pointer and freed "locally".  See
 * tests/model/abandon_reclaim.pml, MUTANT_NO_ABANDON_ON_FREE. */
SPEC_REGRESSION(abandon_after_empty_page_free,
  {.kind = SPEC_POSIX_MEMALIGN, .thread = 2, .slot = 53, .a = 1, .b = 4096},
  {.kind = SPEC_POSIX_MEMALIGN, .thread = 2, .slot = 195, .a = 1, .b = 1024},
  {.kind = SPEC_FREE_SIZED, .slot = 53},
  {.kind = SPEC_THREAD_EXIT, .thread = 2},
  {.kind = SPEC_FREE, .thread = 2, .slot = 195})

/* Found by spec_long --seed 1/2/3 --no-threads: huge blocks of a first-class
 * heap were not counted by kiln_heap_allocated nor held to its limit. */
SPEC_REGRESSION(heap_huge_block_counted,
  {.kind = SPEC_HEAP_NEW, .obj = 2},
  {.kind = SPEC_HEAP_MALLOC, .slot = 116, .obj = 2, .a = 0x100001ull},
  {.kind = SPEC_HEAP_ALIGNED, .slot = 117, .obj = 2, .a = 1, .b = 0x100000ull},
  {.kind = SPEC_HEAP_DESTROY, .obj = 2})

SPEC_REGRESSION(heap_limit_covers_huge_blocks,
  {.kind = SPEC_HEAP_NEW, .obj = 2},
  {.kind = SPEC_HEAP_LIMIT, .slot = 136, .obj = 2, .a = 0x100000ull})
