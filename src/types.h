/* types.h — every core structure of Kiln, and the invariants that tie them.
 *
 * Glossary
 *   block    what malloc hands out; on a free list its first word is `next`.
 *   page     a run of memory holding blocks of ONE size class (not an OS
 *            page: small pages are 64 KiB, medium 512 KiB, large 4 MiB).
 *   segment  a 4 MiB region aligned to 4 MiB, carved into pages of one kind;
 *            its first bytes are the segment header with the metadata of all
 *            its pages (so metadata never lives between user blocks).  A huge
 *            block gets a segment of its own, as large as it needs.
 *   bin      a size class: bin -> block size from the table in size_class.c.
 *   heap     where a thread allocates from: per bin, a queue of pages.  Every
 *            thread has a default heap; first-class heaps are more of them.
 *   tld      thread-local data: the segments a thread owns and its statistics;
 *            shared by all heaps of the thread.
 *   owner    the thread whose tld owns the page's segment.  Only the owner
 *            touches `free` and `local_free`; every other thread only pushes
 *            onto `thread_free` with atomic operations.
 *
 * The design follows mimalloc's free-list sharding (Leijen, Zorn, de Moura:
 * "Mimalloc: Free List Sharding in Action", 2019): three free lists per page,
 * a delayed-free protocol for full pages, segments aligned to their size.
 */
#ifndef KILN_TYPES_H
#define KILN_TYPES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "size_class.h"

/* --- geometry -------------------------------------------------------------
 * Why these values: a 4 MiB segment amortises one mmap over 64 small pages and
 * its 4 MiB alignment makes the segment of any interior pointer one mask away.
 * 64 KiB small pages hold >= 8 blocks of the largest small size (8 KiB), so a
 * page's bookkeeping is <= 1/8 of its memory; medium pages likewise hold >= 8
 * medium blocks (64 KiB), and a large page (the whole segment) >= 3 blocks of
 * the largest large size (256 KiB; 15 of them).  Larger requests are huge:
 * a mapping each. */
#define KILN_SEGMENT_SHIFT 22
#define KILN_SEGMENT_SIZE ((size_t)1 << KILN_SEGMENT_SHIFT)
#define KILN_SEGMENT_MASK (KILN_SEGMENT_SIZE - 1)
#define KILN_SMALL_PAGE_SHIFT 16
#define KILN_MEDIUM_PAGE_SHIFT 19
#define KILN_LARGE_PAGE_SHIFT KILN_SEGMENT_SHIFT
#define KILN_SMALL_PAGES_PER_SEGMENT (KILN_SEGMENT_SIZE >> KILN_SMALL_PAGE_SHIFT)
_Static_assert(KILN_SMALL_BLOCK_MAX * 8 <= ((size_t)1 << KILN_SMALL_PAGE_SHIFT), "small page too small");
_Static_assert(KILN_MEDIUM_BLOCK_MAX * 8 <= ((size_t)1 << KILN_MEDIUM_PAGE_SHIFT), "medium page too small");
_Static_assert(KILN_LARGE_BLOCK_MAX * 3 <= KILN_SEGMENT_SIZE - 65536, "large page too small");

/* A page carves its free list lazily, this many bytes at a time, so a fresh
 * page touches (commits) only the memory it hands out (idea: mimalloc's
 * page extension). */
#define KILN_PAGE_EXTEND_BYTES ((size_t)4096)
#define KILN_PAGE_EXTEND_MIN_BLOCKS 4

typedef struct kiln_block_s {
  struct kiln_block_s *next;
} kiln_block_t;

typedef struct kiln_heap_s kiln_heap_t;
typedef struct kiln_tld_s kiln_tld_t;
typedef struct kiln_segment_s kiln_segment_t;

/* The delayed-free state, kept in the two low bits of page->xthread_free
 * (blocks are 16-byte aligned, so those bits are free).
 *   USE_DELAYED    the page is in its heap's full queue: a remote free must
 *                  tell the heap (push the block on heap->thread_delayed_free)
 *                  so the owner moves the page back to its bin queue.
 *   DELAYED_FREEING a remote thread is doing just that; the owner must not
 *                  drop the heap until it is done.
 *   NO_DELAYED     plain remote frees onto the thread_free list.
 *   NEVER_DELAYED  the page is abandoned (or huge): plain remote frees only,
 *                  and the state never goes back to USE_DELAYED by itself. */
typedef enum kiln_delayed_e {
  KILN_USE_DELAYED_FREE = 0,
  KILN_DELAYED_FREEING = 1,
  KILN_NO_DELAYED_FREE = 2,
  KILN_NEVER_DELAYED_FREE = 3,
} kiln_delayed_t;

/* Flags the free fast path tests with one compare: anything set sends free
 * to the generic path. */
typedef union kiln_page_flags_u {
  uint32_t all;
  struct {
    uint8_t in_full;     /* in the heap's full queue */
    uint8_t has_aligned; /* holds over-aligned blocks: free must find the block start */
    uint8_t checked;     /* KILN_PAGE_CHECKED or _KEYED: frees go to the modes' hooks (check.h) */
    uint8_t accounted;   /* the heap has a limit: frees must update heap->allocated */
  } x;
} kiln_page_flags_t;
/* Values of flags.x.checked:
 *   CHECKED  every free takes the generic path to the modes' hooks (pages
 *            of the checking mode; the hardened mode's huge blocks);
 *   KEYED    a keyed page of the hardened mode (without the checking mode):
 *            the inline free sends block starts straight to secure.c. */
#define KILN_PAGE_CHECKED 1
#define KILN_PAGE_CHECKED_KEYED 2
/* flags.all of a hardened page with nothing else to note (secure.c). */
#define KILN_PAGE_FLAGS_KEYED (((kiln_page_flags_t){.x = {.checked = KILN_PAGE_CHECKED_KEYED}}).all)

/* One page.  Invariants (counted in blocks):
 *   used + |free| + |local_free| == capacity <= reserved
 *   |thread_free| <= used   (remote frees stay counted in `used` until the
 *                            owner collects them)
 *   a page is in use (segment_in_use) iff it is in exactly one queue of the
 *   heap `xheap`, or abandoned (xheap == NULL, delayed state NEVER). */
typedef struct __attribute__((aligned(64))) kiln_page_s {
  /* hot: the fast paths touch only this first cache line */
  kiln_block_t *free;             /* blocks to allocate from (owner only) */
  kiln_block_t *local_free;       /* blocks freed by the owner, waiting for collect */
  uint32_t used;                  /* blocks allocated, incl. those on thread_free */
  kiln_page_flags_t flags;        /* see above (owner only) */
  uint8_t *start;                 /* first block */
  uint64_t div_inverse;           /* block_size = 2^div_shift * m: inverse of m mod 2^64 (ptr.h) */
  size_t block_size;              /* bytes per block; == bin's size (huge: the block's size) */
  uintptr_t key;                  /* hardened mode: free-list links are stored xor this (0 = plain; page.h) */
  uint16_t capacity;              /* blocks carved so far */
  uint8_t zero_offset;            /* hardened mode: where free's second zeroing store goes (secure.h) */
  uint8_t div_shift;
  uint32_t screen_hi;             /* hardened mode: high half of key ^ a link into this segment (secure.h) */
  /* cold */
  uint8_t segment_in_use;         /* the page belongs to a heap; else free in its segment */
  uint8_t is_committed;           /* memory not handed back to the OS since last use */
  uint8_t in_purge_queue;         /* free page on the tld's purge queue */
  uint16_t page_index;            /* index in the segment */
  uint16_t reserved;              /* blocks the page can hold */
  uint16_t bin;                   /* size class (KILN_BIN_HUGE for huge pages) */
  uint32_t used_accounted;        /* `used` as last added to the process allocation estimate */
  uint64_t alloc_count;           /* blocks put on `free` since set-up: allocations, ahead by |free| */
  _Atomic uintptr_t xthread_free; /* remote frees: block list | kiln_delayed_t (2 low bits) */
  _Atomic(kiln_heap_t *) xheap;   /* owning heap; NULL while abandoned or free */
  struct kiln_page_s *next;       /* in a heap's page queue, or the tld's purge queue */
  struct kiln_page_s *prev;
  uint64_t purge_at;              /* free page: when (ms) its memory goes back to the OS */
} kiln_page_t;
_Static_assert(sizeof(kiln_page_t) == 128, "page metadata: two cache lines, hot fields in the first");
_Static_assert(offsetof(kiln_page_t, screen_hi) + sizeof(uint32_t) <= 64, "the fast paths' fields fit the first cache line");

typedef enum kiln_segment_kind_e {
  KILN_SEGMENT_SMALL,  /* 64 KiB pages */
  KILN_SEGMENT_MEDIUM, /* 512 KiB pages */
  KILN_SEGMENT_LARGE,  /* one page: the whole segment */
  KILN_SEGMENT_HUGE,   /* one page with one block, segment sized to fit */
  KILN_SEGMENT_KINDS
} kiln_segment_kind_t;

/* A segment: the header at its start.  Invariants:
 *   used_pages == number of pages with segment_in_use;
 *   abandoned_pages <= used_pages; the segment is on the abandoned list iff
 *   thread_id == 0 and used_pages > 0 (then abandoned_pages == used_pages).
 *   A segment's address is a multiple of KILN_SEGMENT_SIZE. */
struct kiln_segment_s {
  size_t mapped_size;              /* bytes mapped (a multiple of KILN_SEGMENT_SIZE) */
  size_t header_size;              /* bytes before page 0's blocks */
  kiln_segment_kind_t kind;
  uint32_t page_shift;             /* pages are 1 << page_shift bytes (huge: the whole segment) */
  uint32_t page_count;
  uint32_t used_pages;
  uint32_t abandoned_pages;
  _Atomic uintptr_t thread_id;     /* owner thread; 0 while abandoned */
  kiln_tld_t *tld;                 /* owner's tld (valid while thread_id != 0) */
  kiln_segment_t *next, *prev;     /* in the tld's queue of segments with free pages, or the abandoned list */
  kiln_segment_t *all_next, *all_prev; /* in the process-wide list of segments (stats, collect) */
  bool in_free_queue;              /* in tld's free-page queue */
  kiln_heap_t *huge_heap;          /* huge segment of a first-class heap (linked by next/prev), else NULL */
  size_t guard_offset;             /* huge, hardened mode: a PROT_NONE page at this offset (0: none); it
                                      stays while the mapping waits in the huge cache (secure.c) */
  size_t front_guard_offset;       /* huge, hardened mode: the PROT_NONE page between the header and the
                                      block (0: none); kept in the huge cache too (huge.c) */
  kiln_page_t pages[];             /* page_count entries */
};

typedef struct kiln_page_queue_s {
  kiln_page_t *first;
  kiln_page_t *last;
  size_t block_size;
} kiln_page_queue_t;

typedef struct kiln_segment_queue_s {
  kiln_segment_t *first;
  kiln_segment_t *last;
} kiln_segment_queue_t;

/* Direct table: one slot per 16 bytes up to KILN_DIRECT_MAX, each pointing at
 * the page to allocate from (or the static empty page): the fast path is a
 * table load and a list pop, with no NULL test. */
#define KILN_DIRECT_MAX 1024
#define KILN_DIRECT_SLOTS (KILN_DIRECT_MAX / 16 + 1)
/* Queues: bins 1..KILN_BIN_MAX, then huge (unused for queues), then full. */
#define KILN_BIN_FULL (KILN_BIN_HUGE + 1)

struct kiln_heap_s {
  kiln_tld_t *tld;
  kiln_page_t *pages_direct[KILN_DIRECT_SLOTS]; /* size/16 -> page to allocate from */
  kiln_page_queue_t pages[KILN_BIN_FULL + 1];   /* per bin; [KILN_BIN_FULL] holds full pages */
  _Atomic(kiln_block_t *) thread_delayed_free;  /* blocks remote threads freed into full pages */
  uintptr_t thread_id;                          /* owner */
  size_t page_count;                            /* pages in the queues */
  size_t limit;                                 /* bytes of blocks the heap may have allocated (0 = none) */
  size_t allocated;                             /* with a limit: bytes of blocks allocated (exact, owner only) */
  uint64_t random;                              /* xorshift state (hardened mode page keys) */
  bool secure;                                  /* hardened mode: pages get a free-list key */
  kiln_heap_t *next;                            /* in the tld's list of heaps */
  bool is_first_class;                          /* made by kiln_heap_new */
  bool no_direct;                               /* checking mode or limit: keep every direct slot empty */
  /* Huge blocks of a first-class heap, so destroy and reset release them:
   * any thread may free one, so the list has a lock of its own. */
  atomic_flag huge_lock;
  kiln_segment_t *huge_first;                   /* linked through segment->next/prev */
  _Atomic size_t huge_bytes;                    /* usable bytes of those blocks */
};

/* Per-thread statistics; written by the owner only (relaxed atomic stores),
 * read by kiln_stats_get from any thread. */
typedef struct kiln_tld_stats_s {
  uint64_t bin_alloc_count[KILN_BIN_COUNT]; /* flushed from pages when they are freed */
  uint64_t remote_frees;
} kiln_tld_stats_t;

/* The process allocation estimate (statistics' peak) takes a thread's
 * changes in steps of this many bytes: one shared atomic per step, not per
 * page visit (two threads' slow paths would bounce its cache line). */
#define KILN_STATS_FLUSH_BYTES ((long long)1 << 20)

struct kiln_tld_s {
  uintptr_t thread_id;
  kiln_heap_t *heap_backing;            /* the thread's default heap */
  kiln_heap_t *heaps;                   /* all heaps of the thread */
  kiln_segment_queue_t free_pages[KILN_SEGMENT_KINDS]; /* segments with a free page, per kind */
  kiln_page_queue_t purge_queue;        /* free pages waiting to be decommitted, oldest first */
  uint64_t next_collect;                /* ms: when the heartbeat next collects every page */
  uint32_t heartbeat;                   /* slow-path events since the last clock read */
  bool in_heartbeat;                    /* guards against re-entry from the frees it runs */
  kiln_tld_stats_t stats;
  long long allocated_pending;          /* bytes not yet added to the process estimate (owner only) */
  struct kiln_thread_s *thread_next;    /* in the process-wide list of thread records */
};

#endif /* KILN_TYPES_H */
