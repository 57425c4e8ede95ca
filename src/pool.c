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
 *   outside the page (but for the per-thread caches below, which count as
 *   out of the page).
 *
 * Invariants (pool lock held, each page g):
 *   g->used + |g->free| == (g->bump - start(g)) / block_size  (carved blocks
 *   are out of the page, live or in a cache, or on its free list, never
 *   both); g is on pool->avail iff it has a free or uncarved block;
 *   pool->empty_pages == number of pages with used == 0, and is <= 1
 *   whenever the lock is released (one empty page kept as hysteresis, so a
 *   pool that oscillates around a page boundary does not mmap/munmap on
 *   every call); in_use == sum of g->used; capacity == page_count *
 *   page_size.
 *
 * Thread model: one mutex per pool guards all of the above.  Every operation
 * under it is O(1) (a few pointer moves), and the slow system calls happen
 * outside it: a new page is mapped before the lock is taken again, and an
 * empty page is unlinked under the lock and unmapped after it is dropped.
 * kiln_pool_new/destroy must not race with other calls on the same pool.
 *
 * Per-thread caches: a mutex per call made the pool 0.4x the speed of
 * kiln_malloc on one thread and 0.13x with 4 threads sharing it (bench's
 * toolkit table).  So each pool has POOL_CACHES caches, each on its own
 * cache line: a LIFO list of up to POOL_CACHE_MAX free blocks, owned for
 * the length of one call by whoever sets its `busy` flag.  A thread uses
 * the cache of its thread number (internal.h), so up to POOL_CACHES threads
 * never share one; a thread that finds its cache busy (another thread with
 * the same number modulo POOL_CACHES) takes the mutex path instead of
 * waiting.  kiln_pool_free pushes onto the cache; kiln_pool_alloc pops from
 * it; an empty cache takes POOL_CACHE_REFILL blocks from the pages at once,
 * a full one gives half back, each under the mutex.  (The idea of
 * tcmalloc's and jemalloc's thread caches, and of Bonwick's magazines;
 * here the caches belong to the pool, so destroy and kiln_pool_trim reach
 * them all without any thread's help.)
 *
 * A cached block is free for the program but still counted as used by its
 * page, so at most POOL_CACHES * POOL_CACHE_MAX blocks keep their pages from
 * going back to the OS; kiln_pool_trim hands every idle cache back to the
 * pages (and empty pages to the OS) at once.  kiln_pool_in_use subtracts
 * the cached blocks.
 *
 * Misuse: kiln_pool_free checks that p lies in the pool's address range,
 * that the header at page_of(p) carries this pool's cookie (page address
 * xor a per-pool random secret), and that p is a carved block boundary;
 * otherwise it aborts naming the bug.  A pointer into a page the pool already
 * gave back to the OS (within its address range) may fault on the header read
 * instead.  Double free: a freed block's second word holds a mark (its
 * address xor the pool's secret), cleared when the block is handed out
 * again, so a block freed twice is reported at its second free, in O(1),
 * unless the program overwrote the mark in between (a use after free).
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
/* Per-thread caches (see the top): how many per pool, the most blocks one
 * holds (a full one gives half back), and how many an empty one takes. */
#define POOL_CACHES 16
#define POOL_CACHE_MAX 32
#define POOL_CACHE_REFILL 16

/* A free block: the link, and the double-free mark (see "Misuse"; every
 * block has 16 bytes at least). */
typedef struct pool_block_s {
  struct pool_block_s *next;
  uintptr_t mark;
} pool_block_t;

typedef struct pool_cache_s {
  _Alignas(64) atomic_flag busy;   /* held for the length of one call */
  _Atomic uint32_t count;          /* blocks on `top` (read by kiln_pool_in_use without the flag) */
  pool_block_t *top;               /* LIFO: the last block freed is the next handed out */
} pool_cache_t;

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
  pool_cache_t caches[POOL_CACHES]; /* first: the struct is allocated 64-byte aligned */
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
  _Atomic uintptr_t lo, hi; /* lowest and highest page address ever held (read without the lock) */
  _Atomic size_t in_use;    /* blocks out of their pages: allocated or cached (read without the lock) */
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

  kiln_pool_t *pool = kiln_aligned_alloc(64, sizeof *pool);
  if (pool == NULL) return NULL;
  memset(pool, 0, sizeof *pool);
  for (size_t i = 0; i < POOL_CACHES; i++) {
    atomic_flag_clear(&pool->caches[i].busy);
    atomic_init(&pool->caches[i].count, 0);
  }
  pthread_mutex_init(&pool->lock, NULL); /* default attributes: cannot fail */
  pool->block_size = size;
  pool->page_size = page_size;
  pool->first_offset = first;
  pool->page_blocks = (page_size - first) / size;
  kiln_os_random(&pool->secret, sizeof pool->secret);
  pool->secret |= 1;
  atomic_init(&pool->lo, UINTPTR_MAX);
  atomic_init(&pool->hi, 0);
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

/* --- blocks out of and back into their pages (lock held) ----------------- */

kiln_inline pool_page_t *pool_page_of(const kiln_pool_t *pool, const void *p) {
  /* See the layout comment for why the mask is valid. */
  return (pool_page_t *)kiln_align_down((uintptr_t)p, pool->page_size);
}

/* The double-free mark of a free block (see "Misuse"). */
kiln_inline uintptr_t pool_mark(const kiln_pool_t *pool, const pool_block_t *block) {
  return (uintptr_t)block ^ pool->secret;
}

/* Relaxed: the counters publish nothing; readers want a recent figure. */
static void in_use_add(kiln_pool_t *pool, long delta) {
  atomic_store_explicit(&pool->in_use, atomic_load_explicit(&pool->in_use, memory_order_relaxed) + (size_t)delta,
                        memory_order_relaxed);
}

/* Take one block from `page` (which has room). */
static pool_block_t *pool_take(kiln_pool_t *pool, pool_page_t *page) {
  pool_block_t *block = page->free;
  if (block != NULL) {
    page->free = block->next;
  } else {
    block = (pool_block_t *)page->bump;
    /* Atomic: kiln_pool_free reads bump without the lock. */
    __atomic_store_n(&page->bump, page->bump + pool->block_size, __ATOMIC_RELAXED);
  }
  if (page->used++ == 0) pool->empty_pages--;
  if (page->free == NULL && page->bump == page->end) avail_remove(pool, page);
  in_use_add(pool, 1);
  return block;
}

/* No page has room: map one (without the lock: mmap is slow and may block),
 * then link it and take its first block.  NULL with ENOMEM if the OS or the
 * process limit refuses; the pool is unchanged then. */
static kiln_cold pool_block_t *pool_alloc_page(kiln_pool_t *pool) {
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
  __atomic_store_n(&page->cookie, (uintptr_t)page ^ pool->secret, __ATOMIC_RELAXED);
  __atomic_store_n(&page->bump, (uint8_t *)page + pool->first_offset, __ATOMIC_RELAXED);
  page->end = page->bump + pool->page_blocks * pool->block_size;
  page->all_next = pool->pages;
  if (pool->pages != NULL) pool->pages->all_prev = page;
  pool->pages = page;
  if ((uintptr_t)page < atomic_load_explicit(&pool->lo, memory_order_relaxed))
    atomic_store_explicit(&pool->lo, (uintptr_t)page, memory_order_relaxed);
  if ((uintptr_t)page > atomic_load_explicit(&pool->hi, memory_order_relaxed))
    atomic_store_explicit(&pool->hi, (uintptr_t)page, memory_order_relaxed);
  pool->empty_pages++;
  avail_push_front(pool, page);
  atomic_store_explicit(&pool->capacity,
                        atomic_load_explicit(&pool->capacity, memory_order_relaxed) + pool->page_size,
                        memory_order_relaxed);
  return pool_take(pool, page);
}

/* A block from any page with room, or from a new page. */
static pool_block_t *pool_take_any(kiln_pool_t *pool) {
  return kiln_likely(pool->avail != NULL) ? pool_take(pool, pool->avail) : pool_alloc_page(pool);
}

/* Put a free block back on its page.  A page left empty goes on *release
 * (the caller unmaps it once the lock is dropped), unless it is the one
 * empty page kept. */
static void pool_put(kiln_pool_t *pool, pool_block_t *block, pool_page_t **release) {
  pool_page_t *page = pool_page_of(pool, block);
  block->next = page->free;
  page->free = block;
  in_use_add(pool, -1);
  if (--page->used == 0) {
    if (page->in_avail) avail_remove(pool, page);
    if (pool->empty_pages >= 1) {
      /* One empty page is kept already: this one goes back to the OS. */
      pages_remove(pool, page);
      __atomic_store_n(&page->cookie, 0, __ATOMIC_RELAXED); /* a late free into it reports instead of corrupting */
      atomic_store_explicit(&pool->capacity,
                            atomic_load_explicit(&pool->capacity, memory_order_relaxed) - pool->page_size,
                            memory_order_relaxed);
      page->next = *release;
      *release = page;
    } else {
      pool->empty_pages++;
      avail_push_back(pool, page);
    }
  } else if (!page->in_avail) {
    avail_push_front(pool, page); /* was full; LIFO keeps the freed block cache-hot */
  }
}

static void pool_unmap(kiln_pool_t *pool, pool_page_t *release) {
  while (release != NULL) {
    pool_page_t *next = release->next;
    kiln_os_free(release, pool->page_size, pool->page_size);
    release = next;
  }
}

/* --- the per-thread caches ------------------------------------------------------ */

kiln_inline pool_cache_t *pool_cache_of(kiln_pool_t *pool) {
  return &pool->caches[kiln_thread_number() % POOL_CACHES];
}

/* Acquire/release: the cache's list as the last holder left it. */
kiln_inline bool pool_cache_try_lock(pool_cache_t *cache) {
  return !atomic_flag_test_and_set_explicit(&cache->busy, memory_order_acquire);
}
kiln_inline void pool_cache_unlock(pool_cache_t *cache) {
  atomic_flag_clear_explicit(&cache->busy, memory_order_release);
}
kiln_inline uint32_t pool_cache_count(pool_cache_t *cache) {
  return atomic_load_explicit(&cache->count, memory_order_relaxed);
}
kiln_inline void pool_cache_set_count(pool_cache_t *cache, uint32_t count) {
  atomic_store_explicit(&cache->count, count, memory_order_relaxed);
}

/* The cache (held) is empty: take up to POOL_CACHE_REFILL blocks from the
 * pages at once, one for the caller. */
static kiln_noinline pool_block_t *pool_refill(kiln_pool_t *pool, pool_cache_t *cache) {
  pthread_mutex_lock(&pool->lock);
  pool_block_t *block = pool_take_any(pool);
  uint32_t count = 0;
  while (block != NULL && count < POOL_CACHE_REFILL - 1 && pool->avail != NULL) {
    pool_block_t *more = pool_take(pool, pool->avail);
    more->mark = pool_mark(pool, more); /* free (a fresh one was never marked) */
    more->next = cache->top;
    cache->top = more;
    count++;
  }
  pthread_mutex_unlock(&pool->lock);
  pool_cache_set_count(cache, count);
  return block;
}

/* Give the top `n` blocks of the cache (held) back to their pages. */
static kiln_noinline void pool_flush(kiln_pool_t *pool, pool_cache_t *cache, uint32_t n) {
  pool_page_t *release = NULL;
  pthread_mutex_lock(&pool->lock);
  for (uint32_t i = 0; i < n; i++) {
    pool_block_t *block = cache->top;
    cache->top = block->next;
    pool_put(pool, block, &release);
  }
  pthread_mutex_unlock(&pool->lock);
  pool_cache_set_count(cache, pool_cache_count(cache) - n);
  pool_unmap(pool, release);
}

/* --- alloc ----------------------------------------------------------------- */

/* The caller's cache is busy (another thread with the same number modulo
 * POOL_CACHES is in a call): straight from the pages. */
static kiln_noinline void *pool_alloc_locked(kiln_pool_t *pool) {
  pthread_mutex_lock(&pool->lock);
  pool_block_t *block = pool_take_any(pool);
  pthread_mutex_unlock(&pool->lock);
  if (block != NULL) block->mark = 0;
  return block;
}

void *kiln_pool_alloc(kiln_pool_t *pool) {
  pool_cache_t *cache = pool_cache_of(pool);
  if (kiln_unlikely(!pool_cache_try_lock(cache))) return pool_alloc_locked(pool);
  pool_block_t *block = cache->top;
  if (kiln_likely(block != NULL)) {
    cache->top = block->next;
    pool_cache_set_count(cache, pool_cache_count(cache) - 1);
  } else {
    block = pool_refill(pool, cache);
  }
  pool_cache_unlock(cache);
  if (block != NULL) block->mark = 0; /* live: no double-free mark */
  return block;
}

/* --- free ------------------------------------------------------------------ */

static kiln_cold _Noreturn void pool_bad_free(kiln_pool_t *pool, void *p, const char *why) {
  kiln_fatal("kiln: kiln_pool_free of %p which is %s (pool %p)", p, why, (void *)pool);
}

/* Check that p is a live block of this pool (see "Misuse").  No lock: lo,
 * hi, a page's cookie and bump are read atomically; a page is unmapped only
 * when none of its blocks is live or cached, so p's page stays mapped
 * unless p is no live block. */
static void pool_check_block(kiln_pool_t *pool, void *p) {
  pool_page_t *page = pool_page_of(pool, p);
  uintptr_t g = (uintptr_t)page;
  /* Range first, so that a pointer far from every page is not dereferenced. */
  if (g < atomic_load_explicit(&pool->lo, memory_order_relaxed) ||
      g > atomic_load_explicit(&pool->hi, memory_order_relaxed) ||
      __atomic_load_n(&page->cookie, __ATOMIC_RELAXED) != (g ^ pool->secret))
    pool_bad_free(pool, p, "not a block of this pool");
  size_t offset = (size_t)((uint8_t *)p - (uint8_t *)page);
  size_t size = pool->block_size;
  size_t rem = kiln_is_power_of_two(size) ? (offset - pool->first_offset) & (size - 1)
                                          : (offset - pool->first_offset) % size;
  if (offset < pool->first_offset || (uint8_t *)p >= __atomic_load_n(&page->bump, __ATOMIC_RELAXED) || rem != 0)
    pool_bad_free(pool, p, "not a block of this pool");
  if (((pool_block_t *)p)->mark == pool_mark(pool, p)) pool_bad_free(pool, p, "already free (double free)");
}

/* The caller's cache is busy: straight to the page. */
static kiln_noinline void pool_free_locked(kiln_pool_t *pool, pool_block_t *block) {
  pool_page_t *release = NULL;
  pthread_mutex_lock(&pool->lock);
  pool_put(pool, block, &release);
  pthread_mutex_unlock(&pool->lock);
  pool_unmap(pool, release);
}

void kiln_pool_free(kiln_pool_t *pool, void *p) {
  if (p == NULL) return;
  pool_check_block(pool, p);
  pool_block_t *block = p;
  block->mark = pool_mark(pool, block);
  pool_cache_t *cache = pool_cache_of(pool);
  if (kiln_unlikely(!pool_cache_try_lock(cache))) {
    pool_free_locked(pool, block);
    return;
  }
  if (kiln_unlikely(pool_cache_count(cache) == POOL_CACHE_MAX)) pool_flush(pool, cache, POOL_CACHE_MAX / 2);
  block->next = cache->top;
  cache->top = block;
  pool_cache_set_count(cache, pool_cache_count(cache) + 1);
  pool_cache_unlock(cache);
}

void kiln_pool_trim(kiln_pool_t *pool) {
  for (size_t i = 0; i < POOL_CACHES; i++) {
    pool_cache_t *cache = &pool->caches[i];
    if (!pool_cache_try_lock(cache)) continue; /* in use right now: it will be back */
    uint32_t count = pool_cache_count(cache);
    if (count != 0) pool_flush(pool, cache, count);
    pool_cache_unlock(cache);
  }
}

/* --- figures ---------------------------------------------------------------- */

size_t kiln_pool_in_use(const kiln_pool_t *pool) {
  kiln_pool_t *p = (kiln_pool_t *)pool; /* atomics are read, not written */
  size_t cached = 0;
  for (size_t i = 0; i < POOL_CACHES; i++) cached += pool_cache_count(&p->caches[i]);
  size_t out = atomic_load_explicit(&p->in_use, memory_order_relaxed);
  return out > cached ? out - cached : 0; /* (read while others move blocks: a recent figure) */
}

size_t kiln_pool_capacity_bytes(const kiln_pool_t *pool) {
  return atomic_load_explicit(&((kiln_pool_t *)pool)->capacity, memory_order_relaxed);
}
