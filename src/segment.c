/* segment.c — 4 MiB segments: mapping, carving into pages, handing free
 * pages back to the OS, caching empty segments, and passing the segments of
 * exited threads to live ones (abandon / reclaim).
 *
 * Ownership: a segment belongs to one thread's tld (thread_id != 0), which
 * alone allocates and frees its pages; or to nobody (abandoned, cached).
 * Process-wide lists (all segments, abandoned, cache) are guarded by one
 * mutex: they change once per 4 MiB of memory, far from any fast path.
 *
 * The abandon/reclaim protocol is modelled in tests/model/abandon_reclaim.pml.
 */
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "heap.h"
#include "os.h"
#include "page.h"
#include "segment.h"
#include "stats.h"

static pthread_mutex_t segment_mutex = PTHREAD_MUTEX_INITIALIZER;
static kiln_segment_t *all_segments;                         /* every live segment (incl. huge) */
static kiln_segment_queue_t abandoned[KILN_SEGMENT_KINDS];   /* per kind */
static _Atomic size_t abandoned_count;

/* Empty 4 MiB segments kept mapped for reuse (LIFO); decommitted once they
 * have waited longer than the purge delay. */
#define SEGMENT_CACHE_MAX 64
typedef struct cache_entry_s {
  kiln_segment_t *segment;
  uint64_t cached_at;
  bool committed;
} cache_entry_t;
static cache_entry_t segment_cache[SEGMENT_CACHE_MAX];
static size_t segment_cache_count;
static _Atomic size_t segment_cache_committed; /* entries not yet decommitted */
/* When the oldest committed entry is due for decommit (UINT64_MAX: none):
 * kiln_segment_purge runs at every page a thread frees or takes, and
 * returns without the lock until then.  (Taking an entry leaves this early,
 * which costs one look under the lock.) */
static _Atomic uint64_t segment_cache_due = UINT64_MAX;

void kiln_segment_lock(void) { pthread_mutex_lock(&segment_mutex); }
void kiln_segment_unlock(void) { pthread_mutex_unlock(&segment_mutex); }


/* --- the process-wide list (caller holds the lock) ------------------------ */
static void all_list_add(kiln_segment_t *segment) {
  segment->all_prev = NULL;
  segment->all_next = all_segments;
  if (all_segments != NULL) all_segments->all_prev = segment;
  all_segments = segment;
}

static void all_list_remove(kiln_segment_t *segment) {
  if (segment->all_prev != NULL) segment->all_prev->all_next = segment->all_next;
  else all_segments = segment->all_next;
  if (segment->all_next != NULL) segment->all_next->all_prev = segment->all_prev;
}

void kiln_segment_visit_all(kiln_segment_visitor *visit, void *arg) {
  kiln_segment_lock();
  for (kiln_segment_t *s = all_segments; s != NULL; s = s->all_next) visit(s, arg);
  kiln_segment_unlock();
}

/* --- segment queues ------------------------------------------------------- */
static void segment_queue_push(kiln_segment_queue_t *queue, kiln_segment_t *segment) {
  segment->prev = queue->last;
  segment->next = NULL;
  if (queue->last != NULL) queue->last->next = segment;
  else queue->first = segment;
  queue->last = segment;
}

static void segment_queue_remove(kiln_segment_queue_t *queue, kiln_segment_t *segment) {
  if (segment->prev != NULL) segment->prev->next = segment->next;
  else queue->first = segment->next;
  if (segment->next != NULL) segment->next->prev = segment->prev;
  else queue->last = segment->prev;
  segment->next = segment->prev = NULL;
}

/* --- geometry --------------------------------------------------------------- */
static uint32_t kind_page_shift(kiln_segment_kind_t kind) {
  static const uint32_t shifts[KILN_SEGMENT_KINDS] = {
    [KILN_SEGMENT_SMALL] = KILN_SMALL_PAGE_SHIFT,
    [KILN_SEGMENT_MEDIUM] = KILN_MEDIUM_PAGE_SHIFT,
    [KILN_SEGMENT_LARGE] = KILN_LARGE_PAGE_SHIFT,
    [KILN_SEGMENT_HUGE] = 63,
  };
  return shifts[kind];
}

static size_t header_size_for(uint32_t page_count) {
  return kiln_align_up(sizeof(kiln_segment_t) + page_count * sizeof(kiln_page_t), kiln_os_page_size());
}

_Static_assert(KILN_SMALL_PAGE_SHIFT < KILN_MEDIUM_PAGE_SHIFT && KILN_MEDIUM_PAGE_SHIFT < KILN_LARGE_PAGE_SHIFT,
               "small segments have the most pages, so the largest header");
uint8_t *kiln_segment_front_guard(kiln_segment_t *segment) {
  return (uint8_t *)segment + header_size_for(KILN_SMALL_PAGES_PER_SEGMENT);
}

uint8_t *kiln_segment_page_area(kiln_segment_t *segment, kiln_page_t *page, size_t *size) {
  if (segment->kind == KILN_SEGMENT_HUGE) {
    *size = page->block_size;
    return page->start;
  }
  size_t page_size = (size_t)1 << segment->page_shift;
  uint8_t *start = (uint8_t *)segment + (size_t)page->page_index * page_size;
  size_t skip = page->page_index == 0 ? segment->header_size : 0;
  *size = page_size - skip;
  return start + skip;
}

static void segment_init(kiln_segment_t *segment, kiln_tld_t *tld, kiln_segment_kind_t kind,
                         bool pages_committed) {
  uint32_t shift = kind_page_shift(kind);
  uint32_t count = (uint32_t)(KILN_SEGMENT_SIZE >> shift);
  memset(segment, 0, sizeof(kiln_segment_t) + count * sizeof(kiln_page_t));
  segment->mapped_size = KILN_SEGMENT_SIZE;
  segment->header_size = header_size_for(count);
  segment->kind = kind;
  segment->page_shift = shift;
  segment->page_count = count;
  segment->tld = tld;
  atomic_store_explicit(&segment->thread_id, tld->thread_id, memory_order_relaxed);
  for (uint32_t i = 0; i < count; i++) {
    segment->pages[i].page_index = i;
    segment->pages[i].is_committed = pages_committed;
  }
}

/* Bytes of the segment that are committed (header + committed page areas). */
static size_t segment_committed_bytes(kiln_segment_t *segment) {
  size_t bytes = segment->header_size;
  for (uint32_t i = 0; i < segment->page_count; i++) {
    size_t size;
    if (segment->pages[i].is_committed) {
      kiln_segment_page_area(segment, &segment->pages[i], &size);
      bytes += size;
    }
  }
  return bytes;
}

/* --- the cache of empty segments (caller holds the lock) -------------------- */
static void cache_decommit(cache_entry_t *entry) {
  kiln_segment_t *segment = entry->segment;
  /* Hand back every committed range; the header goes too (re-written on
   * reuse). */
  for (uint32_t i = 0; i < segment->page_count; i++) {
    kiln_page_t *page = &segment->pages[i];
    if (!page->is_committed) continue;
    size_t size;
    uint8_t *area = kiln_segment_page_area(segment, page, &size);
    kiln_os_decommit(area, size);
  }
  kiln_os_decommit(segment, segment->header_size);
  if (kiln_check_tracks_blocks) kiln_check_purged(segment, NULL);
  entry->committed = false;
  atomic_fetch_sub_explicit(&segment_cache_committed, 1, memory_order_relaxed);
  kiln_stats_count(KILN_STAT_PURGES, 1);
}

static void cache_unmap(cache_entry_t *entry) {
  kiln_segment_t *segment = entry->segment;
  size_t committed = entry->committed ? segment_committed_bytes(segment) : 0;
  if (entry->committed) atomic_fetch_sub_explicit(&segment_cache_committed, 1, memory_order_relaxed);
  if (entry->committed && kiln_check_tracks_blocks) kiln_check_purged(segment, NULL);
  kiln_os_free(segment, KILN_SEGMENT_SIZE, committed);
}

/* The clock of the purge delays (pages on the purge queue, segments in the
 * cache): the coarse one, read at every page free; a delay then runs to
 * within a timer tick (1-10 ms) of KILN_PURGE_DELAY, either way. */
static uint64_t purge_clock_ms(void) { return kiln_os_clock_coarse_ms(); }

static void cache_purge_locked(uint64_t now, bool force) {
  uint64_t delay = (uint64_t)kiln_option(KILN_OPTION_PURGE_DELAY);
  uint64_t due = UINT64_MAX;
  for (size_t i = 0; i < segment_cache_count; i++) {
    cache_entry_t *entry = &segment_cache[i];
    if (!entry->committed) continue;
    if (force || entry->cached_at + delay <= now) cache_decommit(entry);
    else if (entry->cached_at + delay < due) due = entry->cached_at + delay;
  }
  atomic_store_explicit(&segment_cache_due, due, memory_order_relaxed);
}

void kiln_segment_cache_clear(void) {
  kiln_segment_lock();
  for (size_t i = 0; i < segment_cache_count; i++) cache_unmap(&segment_cache[i]);
  segment_cache_count = 0;
  kiln_segment_unlock();
  kiln_huge_cache_clear();
}

/* --- segment life ----------------------------------------------------------- */
static kiln_segment_t *segment_alloc(kiln_tld_t *tld, kiln_segment_kind_t kind) {
  kiln_segment_t *segment = NULL;
  bool committed = true;
  kiln_segment_lock();
  if (segment_cache_count > 0) {
    cache_entry_t entry = segment_cache[--segment_cache_count];
    segment = entry.segment;
    committed = entry.committed;
    if (committed) atomic_fetch_sub_explicit(&segment_cache_committed, 1, memory_order_relaxed);
  }
  kiln_segment_unlock();
  if (segment != NULL && !committed) {
    /* The header is about to be written: account for it again. */
    if (!kiln_os_recommit(header_size_for((uint32_t)(KILN_SEGMENT_SIZE >> kind_page_shift(kind))))) {
      kiln_os_free(segment, KILN_SEGMENT_SIZE, 0);
      return NULL;
    }
  }
  if (segment != NULL && committed) {
    /* The header still describes the segment's last life: pages it had
     * decommitted were released from the count, and segment_init is about
     * to mark every page committed again. */
    size_t missing = KILN_SEGMENT_SIZE - segment_committed_bytes(segment);
    if (missing != 0 && !kiln_os_recommit(missing)) {
      kiln_os_free(segment, KILN_SEGMENT_SIZE, KILN_SEGMENT_SIZE - missing);
      return NULL;
    }
  }
  if (segment == NULL) {
    segment = kiln_os_alloc_aligned(KILN_SEGMENT_SIZE, KILN_SEGMENT_SIZE);
    if (segment == NULL) return NULL;
  }
  /* Decommitted (only the header was recommitted): pages recommit when
   * handed out. */
  segment_init(segment, tld, kind, committed);
  kiln_segment_lock();
  all_list_add(segment);
  kiln_segment_unlock();
  kiln_segment_map_set((uintptr_t)segment, KILN_CHUNK_START);
  return segment;
}

static void segment_free(kiln_tld_t *tld, kiln_segment_t *segment) {
  if (segment->in_free_queue) {
    segment_queue_remove(&tld->free_pages[segment->kind], segment);
    segment->in_free_queue = false;
  }
  for (uint32_t i = 0; i < segment->page_count; i++) {
    kiln_page_t *page = &segment->pages[i];
    if (page->in_purge_queue) {
      kiln_queue_remove(&tld->purge_queue, page);
      page->in_purge_queue = false;
    }
  }
  kiln_segment_map_set((uintptr_t)segment, KILN_CHUNK_NONE);
  atomic_store_explicit(&segment->thread_id, 0, memory_order_relaxed);
  size_t cache_max = (size_t)kiln_option(KILN_OPTION_SEGMENT_CACHE);
  if (cache_max > SEGMENT_CACHE_MAX) cache_max = SEGMENT_CACHE_MAX;
  kiln_segment_lock();
  all_list_remove(segment);
  if (segment_cache_count < cache_max) {
    uint64_t now = purge_clock_ms();
    segment_cache[segment_cache_count++] = (cache_entry_t){.segment = segment, .cached_at = now, .committed = true};
    atomic_fetch_add_explicit(&segment_cache_committed, 1, memory_order_relaxed);
    uint64_t due = now + (uint64_t)kiln_option(KILN_OPTION_PURGE_DELAY);
    if (due < atomic_load_explicit(&segment_cache_due, memory_order_relaxed))
      atomic_store_explicit(&segment_cache_due, due, memory_order_relaxed);
    if (kiln_option(KILN_OPTION_PURGE_DELAY) == 0) cache_purge_locked(0, true);
    segment = NULL;
  }
  kiln_segment_unlock();
  if (segment != NULL) {
    if (kiln_check_tracks_blocks) kiln_check_purged(segment, NULL);
    kiln_os_free(segment, KILN_SEGMENT_SIZE, segment_committed_bytes(segment));
  }
}

/* --- pages -------------------------------------------------------------------- */
static kiln_page_t *segment_find_free_page(kiln_segment_t *segment) {
  for (uint32_t i = 0; i < segment->page_count; i++)
    if (!segment->pages[i].segment_in_use) return &segment->pages[i];
  return NULL;
}

static bool segment_try_reclaim(kiln_tld_t *tld, kiln_segment_kind_t kind);
static void segment_maybe_abandon(kiln_tld_t *tld, kiln_segment_t *segment);

kiln_page_t *kiln_segment_page_alloc(kiln_tld_t *tld, kiln_segment_kind_t kind) {
  kiln_segment_queue_t *queue = &tld->free_pages[kind];
  while (queue->first == NULL) {
    if (atomic_load_explicit(&abandoned_count, memory_order_relaxed) > 0 && segment_try_reclaim(tld, kind))
      continue;
    kiln_segment_t *segment = segment_alloc(tld, kind);
    if (segment == NULL) return NULL;
    segment_queue_push(queue, segment);
    segment->in_free_queue = true;
  }
  kiln_segment_t *segment = queue->first;
  kiln_page_t *page = segment_find_free_page(segment);
  if (page->in_purge_queue) {
    kiln_queue_remove(&tld->purge_queue, page);
    page->in_purge_queue = false;
  }
  if (!page->is_committed) {
    size_t size;
    kiln_segment_page_area(segment, page, &size);
    if (!kiln_os_recommit(size)) return NULL;
    page->is_committed = true;
  }
  page->segment_in_use = true;
  segment->used_pages++;
  if (segment->used_pages == segment->page_count) {
    segment_queue_remove(queue, segment);
    segment->in_free_queue = false;
  }
  return page;
}

void kiln_segment_page_free(kiln_tld_t *tld, kiln_page_t *page) {
  kiln_segment_t *segment = kiln_segment_of(page);
  page->segment_in_use = false;
  __atomic_store_n(&page->capacity, 0, __ATOMIC_RELAXED); /* no pointer passes kiln_page_block_index now */
  page->used = 0;
  page->free = page->local_free = NULL;
  page->flags.all = 0;
  page->key = 0;
  atomic_store_explicit(&page->xheap, NULL, memory_order_relaxed);
  atomic_store_explicit(&page->xthread_free, 0, memory_order_relaxed);
  segment->used_pages--;
  if (segment->used_pages == 0) {
    segment_free(tld, segment);
    return;
  }
  if (!segment->in_free_queue) {
    segment_queue_push(&tld->free_pages[segment->kind], segment);
    segment->in_free_queue = true;
  }
  /* The page's memory goes back to the OS after the purge delay, unless it
   * is reused before: a program that frees and reallocates at once keeps its
   * memory hot. */
  page->purge_at = purge_clock_ms() + (uint64_t)kiln_option(KILN_OPTION_PURGE_DELAY);
  page->in_purge_queue = true;
  kiln_queue_push_back(&tld->purge_queue, page);
  segment_maybe_abandon(tld, segment);
  kiln_segment_purge(tld, false);
}

void kiln_segment_purge(kiln_tld_t *tld, bool force) {
  uint64_t now = 0;
  kiln_page_t *page = tld->purge_queue.first;
  if (page != NULL) {
    now = purge_clock_ms();
    /* The queue is in purge_at order (constant delay, appended in time order). */
    while (page != NULL && (force || page->purge_at <= now)) {
      kiln_page_t *next = page->next;
      kiln_queue_remove(&tld->purge_queue, page);
      page->in_purge_queue = false;
      size_t size;
      kiln_segment_t *segment = kiln_segment_of(page);
      uint8_t *area = kiln_segment_page_area(segment, page, &size);
      kiln_os_decommit(area, size);
      if (kiln_check_tracks_blocks) kiln_check_purged(segment, page);
      page->is_committed = false;
      kiln_stats_count(KILN_STAT_PURGES, 1);
      page = next;
    }
  }
  if (atomic_load_explicit(&segment_cache_committed, memory_order_relaxed) > 0) {
    if (now == 0) now = purge_clock_ms();
    if (force || now >= atomic_load_explicit(&segment_cache_due, memory_order_relaxed)) {
      kiln_segment_lock();
      cache_purge_locked(now, force);
      kiln_segment_unlock();
    }
  }
  kiln_huge_cache_purge(force);
}

/* --- abandon and reclaim -------------------------------------------------------
 * Thread exit (kiln_heap_abandon) first makes every live page NEVER_DELAYED,
 * waits out remote threads in DELAYED_FREEING and clears page->xheap; then
 * each page is handed here.  When every used page of a segment is abandoned,
 * the segment goes on the process-wide abandoned list, owned by nobody.
 * Remote frees go on meanwhile: they only push onto pages' thread_free. */
/* Abandon the segment once every used page is abandoned (called after a
 * page is abandoned, and after a free page of a partly abandoned segment is
 * freed: either can be the last step). */
static void segment_maybe_abandon(kiln_tld_t *tld, kiln_segment_t *segment) {
  if (segment->abandoned_pages == 0 || segment->abandoned_pages < segment->used_pages) return;
  if (segment->in_free_queue) {
    segment_queue_remove(&tld->free_pages[segment->kind], segment);
    segment->in_free_queue = false;
  }
  /* The tld is going away: its free pages cannot wait in its purge queue. */
  for (uint32_t i = 0; i < segment->page_count; i++) {
    kiln_page_t *free_page = &segment->pages[i];
    if (!free_page->in_purge_queue) continue;
    kiln_queue_remove(&tld->purge_queue, free_page);
    free_page->in_purge_queue = false;
    size_t size;
    uint8_t *area = kiln_segment_page_area(segment, free_page, &size);
    kiln_os_decommit(area, size);
    free_page->is_committed = false;
  }
  segment->tld = NULL;
  kiln_segment_lock();
  /* Release (via the unlock): the reclaiming thread, which takes the lock,
   * sees every owner-side write to the segment's pages. */
  atomic_store_explicit(&segment->thread_id, 0, memory_order_relaxed);
  segment_queue_push(&abandoned[segment->kind], segment);
  atomic_fetch_add_explicit(&abandoned_count, 1, memory_order_relaxed);
  kiln_segment_unlock();
  kiln_stats_count(KILN_STAT_SEGMENTS_ABANDONED, 1);
}

void kiln_segment_page_abandon(kiln_tld_t *tld, kiln_page_t *page) {
  kiln_segment_t *segment = kiln_segment_of(page);
  segment->abandoned_pages++;
  segment_maybe_abandon(tld, segment);
}

static void segment_reclaim(kiln_heap_t *heap, kiln_segment_t *segment) {
  kiln_tld_t *tld = heap->tld;
  segment->tld = tld;
  segment->abandoned_pages = 0;
  atomic_store_explicit(&segment->thread_id, tld->thread_id, memory_order_release);
  kiln_stats_count(KILN_STAT_SEGMENTS_RECLAIMED, 1);
  /* Put it in the free queue first: adopting may free pages, and a segment
   * whose pages all turn out free is released by kiln_segment_page_free. */
  if (segment->used_pages < segment->page_count) {
    segment_queue_push(&tld->free_pages[segment->kind], segment);
    segment->in_free_queue = true;
  }
  /* Adopt every live page first, free the empty ones after: freeing the
   * last page releases the segment, which must not be read after that. */
  kiln_page_t *empty[KILN_SMALL_PAGES_PER_SEGMENT];
  size_t empty_count = 0;
  for (uint32_t i = 0; i < segment->page_count; i++) {
    kiln_page_t *page = &segment->pages[i];
    if (page->segment_in_use && kiln_heap_adopt_page(heap, page)) empty[empty_count++] = page;
  }
  for (size_t i = 0; i < empty_count; i++) kiln_heap_page_free(heap, empty[i]);
}

/* Take one abandoned segment of `kind` off the process-wide list. */
static kiln_segment_t *abandoned_pop(kiln_segment_kind_t kind) {
  kiln_segment_lock();
  kiln_segment_t *segment = abandoned[kind].first;
  if (segment != NULL) {
    segment_queue_remove(&abandoned[kind], segment);
    atomic_fetch_sub_explicit(&abandoned_count, 1, memory_order_relaxed);
  }
  kiln_segment_unlock();
  return segment;
}

static bool segment_try_reclaim(kiln_tld_t *tld, kiln_segment_kind_t kind) {
  kiln_segment_t *segment = abandoned_pop(kind);
  if (segment == NULL) return false;
  segment_reclaim(tld->heap_backing, segment);
  return true;
}

size_t kiln_segment_reclaim(kiln_heap_t *heap, size_t max) {
  size_t reclaimed = 0;
  for (int kind = 0; kind < KILN_SEGMENT_HUGE && reclaimed < max; kind++) {
    while (reclaimed < max && atomic_load_explicit(&abandoned_count, memory_order_relaxed) > 0) {
      kiln_segment_t *segment = abandoned_pop((kiln_segment_kind_t)kind);
      if (segment == NULL) break;
      segment_reclaim(heap, segment);
      reclaimed++;
    }
  }
  return reclaimed;
}

/* kiln_owns for addresses the segment map does not cover: the interior of a
 * huge block past its first chunk.  A walk under the lock: kiln_owns is
 * not a hot path. */
bool kiln_segment_contains_slow(const void *p) {
  bool found = false;
  kiln_segment_lock();
  for (kiln_segment_t *s = all_segments; s != NULL && !found; s = s->all_next)
    found = s->kind == KILN_SEGMENT_HUGE && (const uint8_t *)p >= (const uint8_t *)s &&
            (const uint8_t *)p < (const uint8_t *)s + s->mapped_size;
  kiln_segment_unlock();
  return found;
}

/* --- huge segments share the lists ---------------------------------------------- */
void kiln_segment_register_huge(kiln_segment_t *segment) {
  kiln_segment_lock();
  all_list_add(segment);
  kiln_segment_unlock();
}

void kiln_segment_unregister_huge(kiln_segment_t *segment) {
  kiln_segment_lock();
  all_list_remove(segment);
  kiln_segment_unlock();
}
