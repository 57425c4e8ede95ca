/* heap.c — a heap's page queues: finding a page to allocate from (the slow
 * path of malloc), moving pages between the bin queues and the full queue,
 * retiring empty pages, and giving all pages up (collect, abandon, destroy).
 * Every function here runs on the heap's owner thread.
 */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "heap.h"
#include "os.h"
#include "page.h"
#include "segment.h"
#include "stats.h"

/* The empty page: `free` is always NULL, so the fast path's pop fails into
 * the slow path; nothing ever writes it. */
kiln_page_t kiln_page_empty;

kiln_heap_t kiln_heap_empty = {
  .pages_direct = {[0 ... KILN_DIRECT_SLOTS - 1] = &kiln_page_empty},
};

static kiln_page_queue_t *page_queue_of(kiln_heap_t *heap, kiln_page_t *page) {
  return &heap->pages[page->flags.x.in_full ? KILN_BIN_FULL : page->bin];
}

void kiln_heap_setup(kiln_heap_t *heap, kiln_tld_t *tld, bool first_class) {
  memset(heap, 0, sizeof *heap);
  heap->tld = tld;
  heap->thread_id = tld->thread_id;
  heap->is_first_class = first_class;
  heap->no_direct = kiln_check_tracks_blocks;
  for (size_t i = 0; i < KILN_DIRECT_SLOTS; i++) heap->pages_direct[i] = &kiln_page_empty;
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin++) heap->pages[bin].block_size = kiln_bin_size[bin];
  /* Hardened mode: the pages get keys (kiln_page_init) and the checking
   * hooks' page flag (their frees go to secure.c). */
  heap->secure = kiln_check_enabled() && kiln_option(KILN_OPTION_SECURE) != 0;
  kiln_os_random(&heap->random, sizeof heap->random);
  heap->random |= 1;
}

void kiln_heap_update_direct(kiln_heap_t *heap, unsigned bin) {
  size_t size = kiln_bin_size[bin];
  if (size > KILN_DIRECT_MAX || heap->no_direct) return;
  kiln_page_t *page = heap->pages[bin].first;
  if (page == NULL) page = &kiln_page_empty;
  /* Slots (s + 15) / 16 for the request sizes s this bin serves: from just
   * above the previous bin's size up to this one's (slot 0, malloc(0), goes
   * with bin 1). */
  size_t first_slot = bin == 1 ? 0 : (kiln_bin_size[bin - 1] >> 4) + 1;
  for (size_t slot = first_slot; slot <= (size >> 4); slot++) heap->pages_direct[slot] = page;
}

void kiln_stats_page_used(kiln_tld_t *tld, kiln_page_t *page) {
  long long delta = (long long)page->used - (long long)page->used_accounted;
  if (delta == 0) return;
  page->used_accounted = page->used;
  tld->allocated_pending += delta * (long long)page->block_size;
  if (tld->allocated_pending >= KILN_STATS_FLUSH_BYTES || tld->allocated_pending <= -KILN_STATS_FLUSH_BYTES)
    kiln_stats_flush_pending(tld);
}

void kiln_stats_flush_pending(kiln_tld_t *tld) {
  if (tld->allocated_pending != 0) kiln_stats_allocated_delta(tld->allocated_pending);
  tld->allocated_pending = 0;
}

/* --- moving pages ---------------------------------------------------------- */
void kiln_heap_page_to_full(kiln_heap_t *heap, kiln_page_t *page) {
  kiln_queue_remove(&heap->pages[page->bin], page);
  page->flags.x.in_full = 1;
  kiln_queue_push_back(&heap->pages[KILN_BIN_FULL], page);
  kiln_page_set_delayed(page, KILN_USE_DELAYED_FREE, false);
  /* A remote free may have landed between our last collect and the state
   * change (it then went onto thread_free, unseen): look once more so no
   * block is stranded in a page that nothing will revisit. */
  kiln_page_collect(page);
  if (page->free != NULL) kiln_heap_page_unfull(heap, page);
}

void kiln_heap_page_unfull(kiln_heap_t *heap, kiln_page_t *page) {
  kiln_queue_remove(&heap->pages[KILN_BIN_FULL], page);
  page->flags.x.in_full = 0;
  kiln_page_set_delayed(page, KILN_NO_DELAYED_FREE, false);
  kiln_page_queue_t *queue = &heap->pages[page->bin];
  kiln_queue_push_back(queue, page);
  if (queue->first == page) kiln_heap_update_direct(heap, page->bin);
}

void kiln_heap_page_free(kiln_heap_t *heap, kiln_page_t *page) {
  kiln_page_queue_t *queue = page_queue_of(heap, page);
  bool was_first = queue->first == page;
  kiln_queue_remove(queue, page);
  if (was_first && !page->flags.x.in_full) kiln_heap_update_direct(heap, page->bin);
  /* No remote thread may still hold the heap through this page. */
  kiln_page_set_delayed(page, KILN_NEVER_DELAYED_FREE, true);
  kiln_tld_t *tld = heap->tld;
  kiln_stats_page_used(tld, page);
  if (page->bin < KILN_BIN_COUNT) {
    /* With local_free collected, the blocks still on `free` are exactly
     * capacity - used: the rest of alloc_count were handed out. */
    kiln_page_collect(page);
    uint64_t handed_out = page->alloc_count - ((uint64_t)page->capacity - page->used);
    atomic_store_explicit((_Atomic uint64_t *)&tld->stats.bin_alloc_count[page->bin],
                          tld->stats.bin_alloc_count[page->bin] + handed_out, memory_order_relaxed);
  }
  heap->page_count--;
  kiln_check_page_freed(page);
  kiln_segment_page_free(tld, page);
}

bool kiln_heap_page_retire(kiln_heap_t *heap, kiln_page_t *page) {
  /* Keep the only page of a bin: a loop that allocates and frees one block
   * would otherwise map and release a page on every iteration. */
  if (kiln_page_alone_in_bin(page)) return false;
  kiln_heap_page_free(heap, page);
  return true;
}

bool kiln_heap_adopt_page(kiln_heap_t *heap, kiln_page_t *page) {
  /* Release: a remote thread that later sees USE_DELAYED (set by us, after
   * this) reads this heap. */
  atomic_store_explicit(&page->xheap, heap, memory_order_release);
  kiln_page_set_delayed(page, KILN_NO_DELAYED_FREE, true);
  kiln_page_collect(page);
  page->flags.x.in_full = 0;
  page->used_accounted = page->used; /* already counted by the abandoning thread */
  kiln_queue_push_back(&heap->pages[page->bin], page);
  if (heap->pages[page->bin].first == page) kiln_heap_update_direct(heap, page->bin);
  heap->page_count++;
  return page->used == 0;
}

/* --- the slow path ---------------------------------------------------------- */
static kiln_page_t *heap_fresh_page(kiln_heap_t *heap, unsigned bin) {
  kiln_segment_kind_t kind = kiln_bin_segment_kind(bin);
  kiln_page_t *page = kiln_segment_page_alloc(heap->tld, kind);
  if (page == NULL) return NULL;
  kiln_page_init(heap, page, bin, kiln_bin_size[bin]);
  if (heap->limit != 0) page->flags.x.accounted = 1;
  kiln_check_page_init(heap, page);
  kiln_page_extend(page);
  heap->page_count++;
  kiln_queue_push_front(&heap->pages[bin], page);
  return page;
}

kiln_page_t *kiln_heap_find_page(kiln_heap_t *heap, unsigned bin) {
  kiln_page_queue_t *queue = &heap->pages[bin];
  kiln_page_t *page = queue->first;
  while (page != NULL) {
    kiln_page_t *next = page->next;
    kiln_stats_page_used(heap->tld, page);
    if (page->free == NULL) kiln_page_collect(page);
    if (page->free == NULL) kiln_page_extend(page);
    if (page->free != NULL) break;
    kiln_heap_page_to_full(heap, page);
    if (!page->flags.x.in_full) break; /* a late remote free made it usable */
    page = next;
  }
  if (page == NULL) {
    kiln_segment_purge(heap->tld, false);
    page = heap_fresh_page(heap, bin);
    if (page == NULL) {
      kiln_heap_update_direct(heap, bin);
      return NULL;
    }
  } else if (queue->first != page) {
    kiln_queue_remove(queue, page);
    kiln_queue_push_front(queue, page);
  }
  kiln_heap_update_direct(heap, bin);
  return page;
}

/* The next block of the heap's delayed-free list, whose links may join
 * blocks of different pages: each is stored with the key of the page that
 * holds it (kiln_page_free_mt).  On a keyed page the link must lead to a
 * carved block of a page of this heap, as kiln_page_collect checks its
 * lists: a forged one (a use after free) aborts instead of having some
 * address freed into a page. */
static kiln_block_t *delayed_next(const kiln_heap_t *heap, const kiln_page_t *page, kiln_block_t *block) {
  kiln_block_t *next = kiln_block_delayed_next(page, block);
  if (page->key == 0) return next;
  *kiln_block_delayed_word(page, block) = 0; /* the link's second word, zeroed as at the free */
  if (next == NULL) return next;
  kiln_segment_t *segment = kiln_segment_of(next);
  const kiln_page_t *next_page = segment != NULL ? kiln_segment_page_of(segment, next) : NULL;
  if (next_page == NULL || !next_page->segment_in_use ||
      atomic_load_explicit(&next_page->xheap, memory_order_relaxed) != heap ||
      next_page->bin == KILN_BIN_HUGE || !kiln_page_carved(next_page, next))
    kiln_page_list_corrupt(page, next);
  return next;
}

void kiln_heap_delayed_free_all(kiln_heap_t *heap) {
  /* Acquire pairs with the release push in kiln_page_free_mt. */
  kiln_block_t *block = atomic_exchange_explicit(&heap->thread_delayed_free, NULL, memory_order_acquire);
  while (block != NULL) {
    kiln_segment_t *segment = kiln_segment_of(block);
    kiln_page_t *page = kiln_segment_page_of(segment, block);
    kiln_block_t *next = delayed_next(heap, page, block);
    kiln_free_local(heap, page, block);
    block = next;
  }
}

void *kiln_heap_malloc_generic(kiln_heap_t *heap, size_t size, bool zero) {
  if (kiln_unlikely(heap == &kiln_heap_empty)) heap = kiln_thread_init();
  if (kiln_unlikely(kiln_check_wants_malloc(size))) return kiln_check_malloc(heap, size, 0, zero);
  return kiln_heap_malloc_core(heap, size, zero);
}

/* --- the per-heap limit ------------------------------------------------------
 * A limited heap counts the bytes of its blocks exactly: +block size when a
 * block is handed out (limited heaps keep their direct slots empty, so every
 * allocation comes through here), -block size on a local free and on
 * collecting remote frees (its pages are flagged `accounted`, which sends
 * their frees to the generic path).  All of it on the owner thread. */
static void visit_collect(kiln_heap_t *heap, kiln_page_t *page);
static void heap_visit_pages(kiln_heap_t *heap, void (*visit)(kiln_heap_t *, kiln_page_t *));

static bool heap_limit_fits(kiln_heap_t *heap, size_t bytes) {
  size_t used = heap->allocated + atomic_load_explicit(&heap->huge_bytes, memory_order_relaxed);
  return used + bytes >= bytes && used + bytes <= heap->limit;
}

static bool heap_limit_admits(kiln_heap_t *heap, size_t bytes) {
  if (heap_limit_fits(heap, bytes)) return true;
  heap_visit_pages(heap, visit_collect); /* remote frees not yet counted */
  return heap_limit_fits(heap, bytes);
}

static void *heap_pop(kiln_heap_t *heap, kiln_page_t *page) {
  if (kiln_unlikely(page->flags.x.accounted)) heap->allocated += page->block_size;
  return kiln_page_pop(page);
}

void kiln_heap_limit_set(kiln_heap_t *heap, size_t bytes) {
  heap_visit_pages(heap, visit_collect);
  size_t allocated = 0;
  for (unsigned q = 1; q <= KILN_BIN_FULL; q++)
    for (kiln_page_t *page = heap->pages[q].first; page != NULL; page = page->next) {
      page->flags.x.accounted = bytes != 0;
      allocated += (size_t)page->used * page->block_size;
    }
  heap->limit = bytes;
  heap->allocated = allocated;
  heap->no_direct = bytes != 0 || kiln_check_tracks_blocks;
  for (size_t i = 0; i < KILN_DIRECT_SLOTS; i++) heap->pages_direct[i] = &kiln_page_empty;
  for (unsigned bin = 1; bin < KILN_BIN_COUNT; bin++) kiln_heap_update_direct(heap, bin);
}

/* A block of `bin` for a request of `size` bytes: the limit, the bin's
 * current page or the slow search, the pop. */
static void *heap_malloc_bin(kiln_heap_t *heap, unsigned bin, size_t size, bool zero) {
  if (kiln_unlikely(heap->limit != 0) && !heap_limit_admits(heap, kiln_bin_size[bin])) {
    errno = ENOMEM;
    return NULL;
  }
  kiln_page_t *page = heap->pages[bin].first;
  if (page == NULL || page->free == NULL) {
    page = kiln_heap_find_page(heap, bin);
    if (page == NULL) {
      errno = ENOMEM;
      return NULL;
    }
  }
  void *block = heap_pop(heap, page);
  if (zero) memset(block, 0, size);
  return block;
}

void *kiln_heap_malloc_core(kiln_heap_t *heap, size_t size, bool zero) {
  if (kiln_unlikely(size > KILN_MAX_ALLOC_SIZE)) {
    errno = ENOMEM;
    return NULL;
  }
  if (atomic_load_explicit(&heap->thread_delayed_free, memory_order_relaxed) != NULL)
    kiln_heap_delayed_free_all(heap);
  kiln_heap_heartbeat(heap);
  if (size > KILN_LARGE_BLOCK_MAX) {
    /* A first-class heap's huge blocks count through heap->huge_bytes. */
    if (heap->limit != 0 && !heap_limit_admits(heap, size)) {
      errno = ENOMEM;
      return NULL;
    }
    return kiln_huge_alloc(heap, size, 16, zero);
  }
  unsigned bin = kiln_bin_of(size == 0 ? 1 : size);
  return heap_malloc_bin(heap, bin, size, zero);
}

void *kiln_heap_malloc_aligned(kiln_heap_t *heap, size_t size, size_t alignment, bool zero) {
  if (kiln_unlikely(heap == &kiln_heap_empty)) heap = kiln_thread_init();
  if (kiln_unlikely(kiln_check_enabled())) return kiln_check_malloc(heap, size, alignment, zero);
  return kiln_heap_malloc_aligned_core(heap, size, alignment, zero);
}

void *kiln_heap_malloc_aligned_core(kiln_heap_t *heap, size_t size, size_t alignment, bool zero) {
  if (alignment <= 16) return kiln_heap_malloc_core(heap, size, zero);
  if (size == 0) size = 1; /* a unique block with at least one usable byte */
  if (kiln_unlikely(size > KILN_MAX_ALLOC_SIZE || alignment > KILN_MAX_ALLOC_SIZE / 2)) {
    errno = ENOMEM;
    return NULL;
  }
  size_t page_size = kiln_os_page_size();
  if (alignment <= page_size && size <= KILN_LARGE_BLOCK_MAX) {
    /* Natural alignment: pages start at multiples of the OS page, so a bin
     * whose block size is a multiple of `alignment` yields aligned blocks.
     * Such a bin exists within 8 bins up (every doubling ends in a power of
     * two), so the waste stays bounded. */
    size_t want = size < alignment ? alignment : size;
    for (unsigned bin = kiln_bin_of(want); bin < KILN_BIN_COUNT; bin++) {
      if (kiln_bin_size[bin] % alignment == 0) return heap_malloc_bin(heap, bin, size, zero);
    }
  }
  if (size + alignment > KILN_LARGE_BLOCK_MAX) {
    if (heap->limit != 0 && !heap_limit_admits(heap, size)) {
      errno = ENOMEM;
      return NULL;
    }
    return kiln_huge_alloc(heap, size, alignment, zero);
  }
  /* Over-allocate and hand out an interior, aligned pointer; the page is
   * marked so that free() finds the block start again. */
  uint8_t *block = kiln_heap_malloc_core(heap, size + alignment - 1, false);
  if (block == NULL) return NULL;
  uint8_t *aligned = (uint8_t *)kiln_align_up((uintptr_t)block, alignment);
  if (aligned != block) {
    kiln_page_t *page = kiln_segment_page_of(kiln_segment_of(block), block);
    /* (Not over the checking mode's KILN_CHECK_ALIGNED_ANY, issue 5.) */
    if (__atomic_load_n(&page->flags.x.has_aligned, __ATOMIC_RELAXED) == 0)
      __atomic_store_n(&page->flags.x.has_aligned, 1, __ATOMIC_RELAXED); /* read by other threads' frees */
  }
  if (zero) memset(aligned, 0, size);
  return aligned;
}

/* --- whole-heap operations ------------------------------------------------- */
static void heap_visit_pages(kiln_heap_t *heap, void (*visit)(kiln_heap_t *, kiln_page_t *)) {
  for (unsigned q = 1; q <= KILN_BIN_FULL; q++) {
    kiln_page_t *page = heap->pages[q].first;
    while (page != NULL) {
      kiln_page_t *next = page->next;
      visit(heap, page);
      page = next;
    }
  }
}

static void visit_collect(kiln_heap_t *heap, kiln_page_t *page) {
  kiln_page_collect(page);
  if (page->used == 0) kiln_heap_page_free(heap, page);
}

static void visit_never_delayed(kiln_heap_t *heap, kiln_page_t *page) {
  (void)heap;
  kiln_page_set_delayed(page, KILN_NEVER_DELAYED_FREE, true);
}

static void visit_abandon(kiln_heap_t *heap, kiln_page_t *page) {
  kiln_page_collect(page);
  if (page->used == 0) {
    kiln_heap_page_free(heap, page);
    return;
  }
  kiln_queue_remove(page_queue_of(heap, page), page);
  page->flags.x.in_full = 0;
  kiln_stats_page_used(heap->tld, page);
  heap->page_count--;
  /* Release: the reclaiming thread's acquire of thread_id (after taking the
   * segment lock) orders everything before this. */
  atomic_store_explicit(&page->xheap, NULL, memory_order_release);
  kiln_segment_page_abandon(heap->tld, page);
}

static void visit_drop(kiln_heap_t *heap, kiln_page_t *page) {
  kiln_heap_page_free(heap, page);
}

static void heap_reset_direct(kiln_heap_t *heap) {
  for (size_t i = 0; i < KILN_DIRECT_SLOTS; i++) heap->pages_direct[i] = &kiln_page_empty;
}

/* Every KILN_COLLECT_INTERVAL_MS (checked every 64 slow-path events, on
 * the coarse clock: a loop of small mallocs reaches the slow path every few
 * calls, and the precise clock's reads were 2 % of simple's time), collect
 * every page of the thread's heaps: blocks that other threads freed onto
 * pages the owner is not allocating from are counted, and pages left empty
 * go back to their segments, then to the OS after the purge delay.  Without
 * it, memory freed by other threads would only come back when the owner
 * allocated that size again. */
#define KILN_COLLECT_INTERVAL_MS 100

void kiln_heap_heartbeat(kiln_heap_t *heap) {
  kiln_tld_t *tld = heap->tld;
  if ((++tld->heartbeat & 63) != 0 || tld->in_heartbeat) return;
  uint64_t now = kiln_os_clock_coarse_ms();
  if (now < tld->next_collect) return;
  tld->next_collect = now + KILN_COLLECT_INTERVAL_MS;
  tld->in_heartbeat = true;
  for (kiln_heap_t *h = tld->heaps; h != NULL; h = h->next) {
    kiln_heap_delayed_free_all(h);
    heap_visit_pages(h, visit_collect);
  }
  kiln_segment_purge(tld, false);
  tld->in_heartbeat = false;
}

static void visit_collect_lists(kiln_heap_t *heap, kiln_page_t *page) {
  (void)heap;
  kiln_page_collect(page);
}

void kiln_heap_collect_lists(kiln_heap_t *heap) {
  kiln_heap_delayed_free_all(heap);
  heap_visit_pages(heap, visit_collect_lists);
}

void kiln_heap_collect(kiln_heap_t *heap, bool force) {
  kiln_heap_delayed_free_all(heap);
  heap_visit_pages(heap, visit_collect);
  kiln_segment_purge(heap->tld, force);
}

void kiln_heap_abandon(kiln_heap_t *heap) {
  kiln_heap_delayed_free_all(heap);
  /* After this no remote thread can enter DELAYED_FREEING on our pages, and
   * none is inside it (kiln_page_set_delayed waits them out)... */
  heap_visit_pages(heap, visit_never_delayed);
  /* ...so the delayed list is final: drain it, then hand the pages over. */
  kiln_heap_delayed_free_all(heap);
  heap_visit_pages(heap, visit_abandon);
  heap_reset_direct(heap);
  kiln_stats_flush_pending(heap->tld);
  /* Its huge blocks stay valid and become the program's to free. */
  kiln_heap_huge_release_all(heap, false);
}

void kiln_heap_drop_all(kiln_heap_t *heap) {
  heap_visit_pages(heap, visit_never_delayed);
  atomic_store_explicit(&heap->thread_delayed_free, NULL, memory_order_relaxed);
  heap_visit_pages(heap, visit_drop);
  heap_reset_direct(heap);
  heap->allocated = 0;
  kiln_heap_huge_release_all(heap, true);
}
