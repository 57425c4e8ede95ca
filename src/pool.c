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
 * cache line: a LIFO list of up to POOL_CACHE_MAX free blocks.
 * kiln_pool_free pushes onto the cache; kiln_pool_alloc pops from it; an
 * empty cache takes POOL_CACHE_REFILL blocks from the pages at once, a full
 * one gives half back, each under the mutex.  (The idea of tcmalloc's and
 * jemalloc's thread caches, and of Bonwick's magazines; here the caches
 * belong to the pool, so destroy and kiln_pool_trim reach them all without
 * any thread's help.)
 *
 * Each thread that uses a pool holds a *slot* (one of POOL_SLOTS, for all
 * pools; given back when the thread exits) and uses the cache of its slot
 * modulo POOL_CACHES, if it *owns* it: a cache is biased to one slot,
 * whose thread enters it with plain stores and loads, no atomic
 * read-modify-write (a test-and-set flag per call, as before, made the
 * pool slower than kiln_malloc on one thread: 0.8x; without it, 1.3-2.4x).
 * The owner enters by writing the cache's address into its slot's `inside`
 * word, then checks that nobody is `revoke`-ing the cache and that it still
 * owns it; it leaves by clearing `inside`.  Another thread takes a cache
 * over (it was never owned, or POOL_STEAL_AFTER calls of threads of other
 * slots went to the mutex since the cache last changed hands) under
 * cache_lock: it sets `revoke`, makes every thread pass a full barrier
 * (kiln_os_heavy_fence: membarrier), then waits until the owner's `inside`
 * no longer names the cache; from then on the owner's next entry sees
 * `revoke` or the new owner and goes to the mutex path.  That is Dekker's
 * store-then-load on both sides, with the owner's fence moved to the rare
 * side (asymmetric fences, as in folly's and liburcu's membarrier-based
 * schemes); where the kernel has no membarrier, both sides use full fences
 * (pool_fence_light is then a real fence).  The `inside` word is the
 * thread's own, not the cache's: a thread that has just lost the cache may
 * still be writing its word as it bails out, and a word in the cache would
 * then be cleared under the new owner (tests/model/pool_cache.pml found
 * that).  kiln_pool_trim takes every owned cache the same way, flushes it,
 * and leaves it unowned.  A slot given back keeps its caches: the next
 * thread to hold the slot finds them its own.  The protocol is modelled in
 * tests/model/pool_cache.pml (with x86-TSO store buffers; keep the two in
 * step).
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
 *
 * Fork: see "fork" below.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"
#include "os.h"
#include "pool.h"

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
/* Calls by threads of other slots (sent to the mutex) after which one of
 * them takes the cache over: two threads sharing a cache (slots equal
 * modulo POOL_CACHES) pay one heavy fence per this many calls, not one per
 * call. */
#define POOL_STEAL_AFTER 256
/* Threads using pools at once with a cache each; any more use the mutex. */
#define POOL_SLOTS 512

/* A free block: the link, and the double-free mark (see "Misuse"; every
 * block has 16 bytes at least). */
typedef struct pool_block_s {
  struct pool_block_s *next;
  uintptr_t mark;
} pool_block_t;

typedef struct pool_cache_s {
  _Alignas(64) _Atomic uint32_t owner; /* the owner's slot + 1; 0: none (see the top) */
  _Atomic uint32_t revoke;         /* a thread holding cache_lock is taking the cache */
  _Atomic uint32_t count;          /* blocks on `top` (read by kiln_pool_in_use without entering) */
  _Atomic uint32_t misses;         /* other threads' calls sent to the mutex since it changed hands */
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
  pthread_mutex_t cache_lock; /* serialises taking caches over (and trim); taken before `lock` */
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
  struct kiln_pool_s *all_next, *all_prev; /* in pools_all (under pools_mutex) */
};

/* --- the caches' fences (see the top; tests/model/pool_cache.pml) -------- */

/* Set once, by the first kiln_pool_new, before any cache has an owner. */
static _Atomic bool pool_light_fences;

static void pool_light_fences_init(void) {
  if (!atomic_load_explicit(&pool_light_fences, memory_order_relaxed) && kiln_os_heavy_fence_ready())
    atomic_store_explicit(&pool_light_fences, true, memory_order_relaxed);
}

/* The owner, between its store to `inside` and its load of `revoke`: a
 * compiler fence when the other side calls membarrier, else a full one.
 * (The flag never changes while a cache is owned: it goes from false to
 * true only in the first kiln_pool_new, before any pool exists.) */
kiln_inline void pool_fence_light(void) {
  if (kiln_likely(atomic_load_explicit(&pool_light_fences, memory_order_relaxed)))
    atomic_signal_fence(memory_order_seq_cst);
  else
    atomic_thread_fence(memory_order_seq_cst);
}

/* A thread taking caches over, between its stores to `revoke` and its
 * loads of the owners' `inside`. */
static void pool_fence_heavy(void) {
  if (atomic_load_explicit(&pool_light_fences, memory_order_relaxed)) kiln_os_heavy_fence();
  else atomic_thread_fence(memory_order_seq_cst);
}

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

/* --- every live pool, for fork -------------------------------------------- */
static pthread_mutex_t pools_mutex = PTHREAD_MUTEX_INITIALIZER;
static kiln_pool_t *pools_all;

static void pools_add(kiln_pool_t *pool) {
  pthread_mutex_lock(&pools_mutex);
  pool->all_prev = NULL;
  pool->all_next = pools_all;
  if (pools_all != NULL) pools_all->all_prev = pool;
  pools_all = pool;
  pthread_mutex_unlock(&pools_mutex);
}

static void pools_remove(kiln_pool_t *pool) {
  pthread_mutex_lock(&pools_mutex);
  if (pool->all_prev != NULL) pool->all_prev->all_next = pool->all_next;
  else pools_all = pool->all_next;
  if (pool->all_next != NULL) pool->all_next->all_prev = pool->all_prev;
  pthread_mutex_unlock(&pools_mutex);
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
  /* (memset: every cache unowned and empty.)  Whether the owners'
   * fences may be compiler fences, for every pool: asked once, before any
   * cache can be owned. */
  pool_light_fences_init();
  pthread_mutex_init(&pool->cache_lock, NULL); /* default attributes: cannot fail */
  pthread_mutex_init(&pool->lock, NULL);
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
  pools_add(pool);
  return pool;
}

void kiln_pool_destroy(kiln_pool_t *pool) {
  if (pool == NULL) return;
  pools_remove(pool);
  pool_page_t *page = pool->pages;
  while (page != NULL) {
    pool_page_t *next = page->all_next;
    kiln_os_free(page, pool->page_size, pool->page_size);
    page = next;
  }
  pthread_mutex_destroy(&pool->lock);
  pthread_mutex_destroy(&pool->cache_lock);
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

/* A slot's `inside` word: the cache its thread is in, or 0.  Written by the
 * slot's thread only; one cache line each, as it is written on every call. */
typedef struct pool_slot_s {
  _Alignas(64) _Atomic uintptr_t inside;
} pool_slot_t;

static pool_slot_t pool_slots[POOL_SLOTS];
static _Atomic uint64_t pool_slots_taken[POOL_SLOTS / 64];
static __thread uint32_t pool_slot_own __attribute__((tls_model("initial-exec"))); /* slot + 1; 0: none yet */
static pthread_key_t pool_slot_key;
static pthread_once_t pool_slot_key_once = PTHREAD_ONCE_INIT;
#define POOL_NO_SLOT UINT32_MAX

/* Thread exit (the key's destructor, on the exiting thread): the slot goes
 * back (its caches stay with it), and a pool call from a later destructor
 * of this thread takes a slot anew instead of sharing this one with the
 * thread that gets it next. */
static void pool_slot_release(void *value) {
  uint32_t slot = (uint32_t)(uintptr_t)value - 1;
  pool_slot_own = 0;
  atomic_fetch_and_explicit(&pool_slots_taken[slot / 64], ~((uint64_t)1 << (slot % 64)), memory_order_release);
}

static void pool_slot_key_create(void) {
  if (pthread_key_create(&pool_slot_key, pool_slot_release) != 0) pool_slot_key = (pthread_key_t)-1;
}

static kiln_noinline uint32_t pool_slot_take(void) {
  pthread_once(&pool_slot_key_once, pool_slot_key_create);
  if (pool_slot_key == (pthread_key_t)-1) return POOL_NO_SLOT;
  for (uint32_t w = 0; w < POOL_SLOTS / 64; w++) {
    uint64_t taken = atomic_load_explicit(&pool_slots_taken[w], memory_order_relaxed);
    while (~taken != 0) {
      uint32_t bit = (uint32_t)__builtin_ctzll(~taken);
      if (atomic_compare_exchange_weak_explicit(&pool_slots_taken[w], &taken, taken | ((uint64_t)1 << bit),
                                                memory_order_acquire, memory_order_relaxed)) {
        uint32_t slot = w * 64 + bit;
        if (pthread_setspecific(pool_slot_key, (void *)(uintptr_t)(slot + 1)) != 0) {
          pool_slot_release((void *)(uintptr_t)(slot + 1));
          return POOL_NO_SLOT;
        }
        pool_slot_own = slot + 1;
        return slot;
      }
    }
  }
  return POOL_NO_SLOT; /* POOL_SLOTS threads hold one: the mutex path */
}

kiln_inline uint32_t pool_slot(void) {
  uint32_t own = pool_slot_own;
  return kiln_likely(own != 0) ? own - 1 : pool_slot_take();
}

kiln_inline pool_cache_t *pool_cache_of(kiln_pool_t *pool, uint32_t slot) {
  return &pool->caches[slot % POOL_CACHES];
}

/* Enter the cache as the owner `slot`, or say no (not the owner, or a
 * taking over is under way: the mutex path then).  Acquire on `revoke`:
 * the cache as whoever last took it left it, and the owner as it set it. */
kiln_inline bool pool_cache_enter(pool_cache_t *cache, uint32_t slot) {
  if (atomic_load_explicit(&cache->owner, memory_order_relaxed) != slot + 1) return false;
  atomic_store_explicit(&pool_slots[slot].inside, (uintptr_t)cache, memory_order_relaxed);
  pool_fence_light();
  if (kiln_likely(atomic_load_explicit(&cache->revoke, memory_order_acquire) == 0 &&
                  atomic_load_explicit(&cache->owner, memory_order_relaxed) == slot + 1))
    return true;
  atomic_store_explicit(&pool_slots[slot].inside, 0, memory_order_release);
  return false;
}

/* Release: the cache as the owner leaves it, for whoever takes it next. */
kiln_inline void pool_cache_leave(uint32_t slot) {
  atomic_store_explicit(&pool_slots[slot].inside, 0, memory_order_release);
}

kiln_inline uint32_t pool_cache_count(pool_cache_t *cache) {
  return atomic_load_explicit(&cache->count, memory_order_relaxed);
}
kiln_inline void pool_cache_set_count(pool_cache_t *cache, uint32_t count) {
  atomic_store_explicit(&cache->count, count, memory_order_relaxed);
}

/* cache_lock held: keep the owners of `n` owned caches out (their `revoke`
 * set, one heavy fence for all), then wait until no owner is inside.  The
 * caller clears `revoke` (release) when done with them. */
static void pool_caches_revoke(pool_cache_t **caches, size_t n) {
  if (n == 0) return;
  for (size_t i = 0; i < n; i++) atomic_store_explicit(&caches[i]->revoke, 1, memory_order_relaxed);
  pool_fence_heavy();
  for (size_t i = 0; i < n; i++) {
    /* (The owner changes only under cache_lock, which the caller holds.) */
    uint32_t owner = atomic_load_explicit(&caches[i]->owner, memory_order_relaxed);
    while (atomic_load_explicit(&pool_slots[owner - 1].inside, memory_order_acquire) == (uintptr_t)caches[i])
      kiln_os_yield();
  }
}

/* The thread of `slot` was kept out of the cache of its slot: make the
 * slot the owner if the cache has none, or if POOL_STEAL_AFTER calls of
 * other slots came by since it last changed hands (slots equal modulo
 * POOL_CACHES).  The blocks in it stay: they are free blocks of the pool
 * either way.  True if it made `slot` the owner. */
static bool pool_cache_claim(kiln_pool_t *pool, pool_cache_t *cache, uint32_t slot) {
  uint32_t me = slot + 1;
  uint32_t owner = atomic_load_explicit(&cache->owner, memory_order_relaxed);
  if (owner == me) return false; /* a trim is taking it right now */
  if (owner != 0 && atomic_fetch_add_explicit(&cache->misses, 1, memory_order_relaxed) + 1 < POOL_STEAL_AFTER)
    return false;
  pthread_mutex_lock(&pool->cache_lock);
  owner = atomic_load_explicit(&cache->owner, memory_order_relaxed);
  bool claimed = owner != me;
  if (claimed) {
    if (owner != 0) pool_caches_revoke(&cache, 1);
    atomic_store_explicit(&cache->misses, 0, memory_order_relaxed);
    atomic_store_explicit(&cache->owner, me, memory_order_relaxed);
    atomic_store_explicit(&cache->revoke, 0, memory_order_release);
  }
  pthread_mutex_unlock(&pool->cache_lock);
  return claimed;
}

/* The cache (entered) is empty: take up to POOL_CACHE_REFILL blocks from
 * the pages at once, one for the caller. */
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

/* Give the top `n` blocks of the cache (entered, or taken over) back to
 * their pages. */
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

/* Pop from the cache (entered), or refill it; then leave it. */
kiln_inline void *pool_alloc_entered(kiln_pool_t *pool, pool_cache_t *cache, uint32_t slot) {
  pool_block_t *block = cache->top;
  if (kiln_likely(block != NULL)) {
    cache->top = block->next;
    pool_cache_set_count(cache, pool_cache_count(cache) - 1);
  } else {
    block = pool_refill(pool, cache);
  }
  pool_cache_leave(slot);
  if (block != NULL) block->mark = 0; /* live: no double-free mark */
  return block;
}

/* Kept out of the cache of our slot: claim it and use it if we may, else
 * straight from the pages (also without a slot). */
static kiln_noinline void *pool_alloc_locked(kiln_pool_t *pool, uint32_t slot) {
  if (slot != POOL_NO_SLOT) {
    pool_cache_t *cache = pool_cache_of(pool, slot);
    if (pool_cache_claim(pool, cache, slot) && pool_cache_enter(cache, slot))
      return pool_alloc_entered(pool, cache, slot);
  }
  pthread_mutex_lock(&pool->lock);
  pool_block_t *block = pool_take_any(pool);
  pthread_mutex_unlock(&pool->lock);
  if (block != NULL) block->mark = 0;
  return block;
}

void *kiln_pool_alloc(kiln_pool_t *pool) {
  uint32_t slot = pool_slot();
  pool_cache_t *cache = pool_cache_of(pool, slot); /* (a wild index if POOL_NO_SLOT: not used then) */
  if (kiln_unlikely(slot == POOL_NO_SLOT || !pool_cache_enter(cache, slot))) return pool_alloc_locked(pool, slot);
  return pool_alloc_entered(pool, cache, slot);
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

/* Push onto the cache (entered), giving half back when it is full; then
 * leave it. */
kiln_inline void pool_free_entered(kiln_pool_t *pool, pool_cache_t *cache, uint32_t slot, pool_block_t *block) {
  if (kiln_unlikely(pool_cache_count(cache) == POOL_CACHE_MAX)) pool_flush(pool, cache, POOL_CACHE_MAX / 2);
  block->next = cache->top;
  cache->top = block;
  pool_cache_set_count(cache, pool_cache_count(cache) + 1);
  pool_cache_leave(slot);
}

/* Kept out of the cache of our slot: claim it and use it if we may, else
 * straight to the page (also without a slot). */
static kiln_noinline void pool_free_locked(kiln_pool_t *pool, uint32_t slot, pool_block_t *block) {
  if (slot != POOL_NO_SLOT) {
    pool_cache_t *cache = pool_cache_of(pool, slot);
    if (pool_cache_claim(pool, cache, slot) && pool_cache_enter(cache, slot)) {
      pool_free_entered(pool, cache, slot, block);
      return;
    }
  }
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
  uint32_t slot = pool_slot();
  pool_cache_t *cache = pool_cache_of(pool, slot);
  if (kiln_unlikely(slot == POOL_NO_SLOT || !pool_cache_enter(cache, slot))) {
    pool_free_locked(pool, slot, block);
    return;
  }
  pool_free_entered(pool, cache, slot, block);
}

void kiln_pool_trim(kiln_pool_t *pool) {
  /* Take every owned cache at once (one heavy fence), flush it, and leave
   * it unowned: the next call of a thread claims its cache again. */
  pthread_mutex_lock(&pool->cache_lock);
  pool_cache_t *owned[POOL_CACHES];
  size_t n = 0;
  for (size_t i = 0; i < POOL_CACHES; i++)
    if (atomic_load_explicit(&pool->caches[i].owner, memory_order_relaxed) != 0) owned[n++] = &pool->caches[i];
  pool_caches_revoke(owned, n);
  for (size_t i = 0; i < n; i++) {
    uint32_t count = pool_cache_count(owned[i]);
    if (count != 0) pool_flush(pool, owned[i], count);
    atomic_store_explicit(&owned[i]->misses, 0, memory_order_relaxed);
    atomic_store_explicit(&owned[i]->owner, 0, memory_order_relaxed);
    atomic_store_explicit(&owned[i]->revoke, 0, memory_order_release);
  }
  pthread_mutex_unlock(&pool->cache_lock);
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

/* --- fork ------------------------------------------------------------------
 * The child of fork has one thread, the one that forked: a lock another
 * thread held would stay held there, and a cache another thread was inside
 * would stay entered.  So thread.c's fork handlers call these, before the
 * core's locks are taken and after they are released:
 *   prepare  takes pools_mutex, then every pool's cache_lock and lock (the
 *            order of every other path; no pool path takes a core lock, or
 *            another pool's, while it holds one of these), so no pool is
 *            half-changed under a lock, and no cache is being taken over;
 *   parent   releases them;
 *   child    releases them, then cleans up after the threads that are gone.
 *            A slot's `inside` word that names a cache says its thread was
 *            in that cache's owner path, between two plain stores perhaps
 *            (the list and its count): the child empties that cache (its
 *            blocks are lost to the child, at most POOL_CACHE_MAX of them,
 *            and stay counted as in use) and clears the word, which a trim
 *            or taking the cache over would otherwise wait on forever.
 *            Every slot but the child's own is given back; the caches of
 *            those slots stay theirs, for the child's threads that take
 *            them (as after a thread exits). */
void kiln_pool_fork_prepare(void) {
  pthread_mutex_lock(&pools_mutex);
  for (kiln_pool_t *pool = pools_all; pool != NULL; pool = pool->all_next) {
    pthread_mutex_lock(&pool->cache_lock);
    pthread_mutex_lock(&pool->lock);
  }
}

void kiln_pool_fork_parent(void) {
  for (kiln_pool_t *pool = pools_all; pool != NULL; pool = pool->all_next) {
    pthread_mutex_unlock(&pool->lock);
    pthread_mutex_unlock(&pool->cache_lock);
  }
  pthread_mutex_unlock(&pools_mutex);
}

void kiln_pool_fork_child(void) {
  uint32_t own = pool_slot_own; /* slot + 1, or 0 */
  for (uint32_t slot = 0; slot < POOL_SLOTS; slot++) {
    if (slot + 1 == own) continue;
    pool_cache_t *cache = (pool_cache_t *)atomic_load_explicit(&pool_slots[slot].inside, memory_order_relaxed);
    if (cache != NULL) {
      cache->top = NULL;
      pool_cache_set_count(cache, 0);
      atomic_store_explicit(&pool_slots[slot].inside, 0, memory_order_relaxed);
    }
  }
  for (uint32_t w = 0; w < POOL_SLOTS / 64; w++) {
    uint64_t keep = own != 0 && (own - 1) / 64 == w ? (uint64_t)1 << ((own - 1) % 64) : 0;
    atomic_store_explicit(&pool_slots_taken[w], keep, memory_order_relaxed);
  }
  kiln_pool_fork_parent();
}
