/* pool.c — the fixed-size pool: kiln_pool_* in include/kiln.h.
 *
 * Layout
 *   A pool hands out blocks of one size from *pool pages*: runs of
 *   `page_size` bytes (64 KiB, or the next power of two that holds
 *   POOL_MIN_BLOCKS blocks) mapped with kiln_os_alloc_aligned at an address
 *   that is a multiple of page_size.  The page header (pool_page_t) sits at
 *   the page's start, so the page of a block is one mask away:
 *   page_of(p) = p & ~(page_size - 1), valid because every block lies inside
 *   [page, page + page_size) and the page is aligned to page_size.
 *   Blocks start at page + first_offset (the header rounded up to the block
 *   alignment) and are block_size apart; block_size is a multiple of the
 *   alignment (and of 16), so every block is aligned.
 *
 *   Each page keeps its own intrusive free list (a free block's first word is
 *   `next`) and a bump pointer: a fresh page is carved lazily, one block per
 *   allocation, so only the memory handed out is ever touched (committed).
 *   Per-page lists, rather than one list for the pool, are what lets an
 *   empty page go back to the OS in O(1): none of its blocks sits on a list
 *   outside the page.
 *
 * Invariants (pool lock held, each page g):
 *   g->used + |g->free| == (g->bump - start(g)) / block_size  (carved blocks
 *   are live or free, never both); g is on pool->avail iff it has a free or
 *   uncarved block; pool->empty_pages == number of pages with used == 0, and
 *   is <= 1 whenever the lock is released (one empty page kept as hysteresis,
 *   so a pool that oscillates around a page boundary does not mmap/munmap on
 *   every call); in_use == sum of g->used; capacity == page_count * page_size.
 *
 * Thread model: one mutex per pool guards all of the above.  Every operation
 * is O(1) under the lock (a few pointer moves), and the slow system calls
 * happen outside it: a new page is mapped before the lock is taken again, and
 * an empty page is unlinked under the lock and unmapped after it is dropped.
 * A block may be freed by any thread, whichever thread allocated it.  Chosen
 * for being obviously correct; tests/test_pool.c hammers it from 4 threads and
 * examples/arena_pool_bench.c measures its cost against malloc/free.
 * kiln_pool_new/destroy must not race with other calls on the same pool.
 *
 * Misuse: kiln_pool_free checks that p lies in the pool's address range,
 * that the header at page_of(p) carries this pool's cookie (page address
 * xor a per-pool random secret), and that p is a carved block boundary;
 * otherwise it aborts naming the bug.  A pointer into a page the pool already
 * gave back to the OS (within its address range) may fault on the header read
 * instead.  A double free is reported when it is cheap to see: the block is
 * its page's most recently freed one, or its page has no live block.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"
#include "os.h"

/* 64 KiB pages: one mmap per 4096 blocks of 16 bytes, and the same page size
 * as the core's small pages.  At least 8 blocks a page bounds the header and
 * alignment overhead to 1/8 of the page for large blocks. */
#define POOL_PAGE_MIN ((size_t)64 << 10)
#define POOL_MIN_BLOCKS 8
#define POOL_MIN_ALIGN ((size_t)16)
/* Larger blocks are refused (ENOMEM); the bound keeps the page-size
 * computation below from overflowing: 8 * 2^58 + header < 2^62. */
#define POOL_MAX_BLOCK ((size_t)1 << 58)

typedef struct pool_block_s {
  struct pool_block_s *next;
} pool_block_t;

typedef struct pool_page_s {
  uintptr_t cookie;                 /* page address ^ pool->secret; 0 once given back */
  pool_block_t *free;               /* free blocks of this page */
  uint8_t *bump;                    /* blocks below this have been carved */
  uint8_t *end;                     /* end of the last block that fits */
  size_t used;                      /* blocks allocated */
  struct pool_page_s *next, *prev;  /* in pool->avail iff in_avail */
  struct pool_page_s *all_next, *all_prev; /* in pool->pages: every page */
  bool in_avail;
} pool_page_t;

struct kiln_pool_s {
  pthread_mutex_t lock;     /* guards everything below but the constants */
  size_t block_size;        /* bytes per block (constant) */
  size_t page_size;         /* bytes of a page, and its alignment (constant) */
  size_t first_offset;      /* offset of a page's first block (constant) */
  size_t page_blocks;       /* blocks a page holds (constant) */
  uintptr_t secret;         /* cookie key (constant; odd, so no cookie is 0) */
  pool_page_t *avail;       /* pages with room: partially used first, the empty one last */
  pool_page_t *avail_last;  /* the last page on `avail` */
  pool_page_t *pages;       /* every page */
  size_t empty_pages;       /* pages with used == 0 */
  uintptr_t lo, hi;         /* lowest and highest page address ever held */
  _Atomic size_t in_use;    /* blocks allocated (read without the lock: relaxed) */
  _Atomic size_t capacity;  /* bytes of pages held (likewise) */
};

/* --- lists ---------------------------------------------------------------- */

static void avail_push_front(kiln_pool_t *pool, pool_page_t *page) {
  page->prev = NULL;
  page->next = pool->avail;
  if (pool->avail != NULL) pool->avail->prev = page;
  else pool->avail_last = page;
  pool->avail = page;
  page->in_avail = true;
}

/* The empty page goes last, so partially used pages fill up first and the
 * empty one stays empty (ready to be given back) as long as possible. */
static void avail_push_back(kiln_pool_t *pool, pool_page_t *page) {
  page->next = NULL;
  page->prev = pool->avail_last;
  if (pool->avail_last != NULL) pool->avail_last->next = page;
  else pool->avail = page;
  pool->avail_last = page;
  page->in_avail = true;
}

static void avail_remove(kiln_pool_t *pool, pool_page_t *page) {
  if (page->prev != NULL) page->prev->next = page->next;
  else pool->avail = page->next;
  if (page->next != NULL) page->next->prev = page->prev;
  else pool->avail_last = page->prev;
  page->next = page->prev = NULL;
  page->in_avail = false;
}

static void pages_remove(kiln_pool_t *pool, pool_page_t *page) {
  if (page->all_prev != NULL) page->all_prev->all_next = page->all_next;
  else pool->pages = page->all_next;
  if (page->all_next != NULL) page->all_next->all_prev = page->all_prev;
}

/* --- create / destroy ---------------------------------------------------- */

kiln_pool_t *kiln_pool_new(size_t block_size, size_t alignment) {
  if (alignment == 0) alignment = POOL_MIN_ALIGN;
  if (block_size == 0 || !kiln_is_power_of_two(alignment)) { errno = EINVAL; return NULL; }
  if (alignment < POOL_MIN_ALIGN) alignment = POOL_MIN_ALIGN;
  if (block_size > POOL_MAX_BLOCK || alignment > POOL_MAX_BLOCK) { errno = ENOMEM; return NULL; }
  size_t size = (size_t)kiln_align_up(block_size, alignment); /* <= 2^58 */
  size_t first = (size_t)kiln_align_up(sizeof(pool_page_t), alignment);
  size_t page_size = POOL_PAGE_MIN;
  while (page_size < first + POOL_MIN_BLOCKS * size) page_size <<= 1; /* ends by 2^62 */
  if (page_size < kiln_os_page_size()) page_size = kiln_os_page_size();

  kiln_pool_t *pool = kiln_malloc(sizeof *pool);
  if (pool == NULL) return NULL;
  memset(pool, 0, sizeof *pool);
  pthread_mutex_init(&pool->lock, NULL); /* default attributes: cannot fail */
  pool->block_size = size;
  pool->page_size = page_size;
  pool->first_offset = first;
  pool->page_blocks = (page_size - first) / size;
  kiln_os_random(&pool->secret, sizeof pool->secret);
  pool->secret |= 1;
  pool->lo = UINTPTR_MAX;
  atomic_init(&pool->in_use, 0);
  atomic_init(&pool->capacity, 0);
  return pool;
}

void kiln_pool_destroy(kiln_pool_t *pool) {
  if (pool == NULL) return;
  pool_page_t *page = pool->pages;
  while (page != NULL) {
    pool_page_t *next = page->all_next;
    kiln_os_free(page, pool->page_size, pool->page_size);
    page = next;
  }
  pthread_mutex_destroy(&pool->lock);
  kiln_free(pool);
}

/* --- alloc ----------------------------------------------------------------- */

/* Take one block from `page` (which has room).  Lock held. */
static void *pool_take(kiln_pool_t *pool, pool_page_t *page) {
  pool_block_t *block = page->free;
  if (block != NULL) {
    page->free = block->next;
  } else {
    block = (pool_block_t *)page->bump;
    page->bump += pool->block_size;
  }
  if (page->used++ == 0) pool->empty_pages--;
  if (page->free == NULL && page->bump == page->end) avail_remove(pool, page);
  /* Relaxed: the counter publishes nothing; readers want a recent figure. */
  atomic_store_explicit(&pool->in_use, atomic_load_explicit(&pool->in_use, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  return block;
}

/* No page has room: map one (without the lock: mmap is slow and may block),
 * then link it and take its first block.  NULL with ENOMEM if the OS or the
 * process limit refuses; the pool is unchanged then. */
static kiln_cold void *pool_alloc_page(kiln_pool_t *pool) {
  pthread_mutex_unlock(&pool->lock);
  pool_page_t *page = kiln_os_alloc_aligned(pool->page_size, pool->page_size);
  pthread_mutex_lock(&pool->lock);
  if (page == NULL) {
    /* Another thread may have made room meanwhile: use it rather than fail. */
    if (pool->avail != NULL) return pool_take(pool, pool->avail);
    errno = ENOMEM;
    return NULL;
  }
  /* Fresh mmap memory is zeroed: only the non-zero fields need setting. */
  page->cookie = (uintptr_t)page ^ pool->secret;
  page->bump = (uint8_t *)page + pool->first_offset;
  page->end = page->bump + pool->page_blocks * pool->block_size;
  page->all_next = pool->pages;
  if (pool->pages != NULL) pool->pages->all_prev = page;
  pool->pages = page;
  if ((uintptr_t)page < pool->lo) pool->lo = (uintptr_t)page;
  if ((uintptr_t)page > pool->hi) pool->hi = (uintptr_t)page;
  pool->empty_pages++;
  avail_push_front(pool, page);
  atomic_store_explicit(&pool->capacity,
                        atomic_load_explicit(&pool->capacity, memory_order_relaxed) + pool->page_size,
                        memory_order_relaxed);
  return pool_take(pool, page);
}

void *kiln_pool_alloc(kiln_pool_t *pool) {
  pthread_mutex_lock(&pool->lock);
  void *block = kiln_likely(pool->avail != NULL) ? pool_take(pool, pool->avail) : pool_alloc_page(pool);
  pthread_mutex_unlock(&pool->lock);
  return block;
}

/* --- free ------------------------------------------------------------------ */

static kiln_cold _Noreturn void pool_bad_free(kiln_pool_t *pool, void *p, const char *why) {
  pthread_mutex_unlock(&pool->lock);
  kiln_fatal("kiln: kiln_pool_free of %p which is %s (pool %p)", p, why, (void *)pool);
}

/* The page of a block: see the layout comment for why the mask is valid. */
kiln_inline pool_page_t *pool_page_of(const kiln_pool_t *pool, const void *p) {
  return (pool_page_t *)kiln_align_down((uintptr_t)p, pool->page_size);
}

/* Check that p is a carved block of this pool (lock held; see "Misuse"). */
static void pool_check_block(kiln_pool_t *pool, pool_page_t *page, void *p) {
  uintptr_t g = (uintptr_t)page;
  /* Range first, so that a pointer far from every page is not dereferenced. */
  if (g < pool->lo || g > pool->hi || page->cookie != (g ^ pool->secret))
    pool_bad_free(pool, p, "not a block of this pool");
  size_t offset = (size_t)((uint8_t *)p - (uint8_t *)page);
  size_t size = pool->block_size;
  size_t rem = kiln_is_power_of_two(size) ? (offset - pool->first_offset) & (size - 1)
                                          : (offset - pool->first_offset) % size;
  if (offset < pool->first_offset || (uint8_t *)p >= page->bump || rem != 0)
    pool_bad_free(pool, p, "not a block of this pool");
  if (page->used == 0 || page->free == p) pool_bad_free(pool, p, "already free (double free)");
}

void kiln_pool_free(kiln_pool_t *pool, void *p) {
  if (p == NULL) return;
  pool_page_t *page = pool_page_of(pool, p);
  pool_page_t *release = NULL;
  pthread_mutex_lock(&pool->lock);
  pool_check_block(pool, page, p);
  pool_block_t *block = p;
  block->next = page->free;
  page->free = block;
  atomic_store_explicit(&pool->in_use, atomic_load_explicit(&pool->in_use, memory_order_relaxed) - 1,
                        memory_order_relaxed);
  if (--page->used == 0) {
    if (page->in_avail) avail_remove(pool, page);
    if (pool->empty_pages >= 1) {
      /* One empty page is kept already: this one goes back to the OS. */
      pages_remove(pool, page);
      page->cookie = 0; /* a late free into it reports instead of corrupting */
      atomic_store_explicit(&pool->capacity,
                            atomic_load_explicit(&pool->capacity, memory_order_relaxed) - pool->page_size,
                            memory_order_relaxed);
      release = page;
    } else {
      pool->empty_pages++;
      avail_push_back(pool, page);
    }
  } else if (!page->in_avail) {
    avail_push_front(pool, page); /* was full; LIFO keeps the freed block cache-hot */
  }
  pthread_mutex_unlock(&pool->lock);
  if (release != NULL) kiln_os_free(release, pool->page_size, pool->page_size);
}

/* --- figures ---------------------------------------------------------------- */

size_t kiln_pool_in_use(const kiln_pool_t *pool) {
  return atomic_load_explicit(&((kiln_pool_t *)pool)->in_use, memory_order_relaxed);
}

size_t kiln_pool_capacity_bytes(const kiln_pool_t *pool) {
  return atomic_load_explicit(&((kiln_pool_t *)pool)->capacity, memory_order_relaxed);
}
