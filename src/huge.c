/* huge.c — blocks above KILN_LARGE_BLOCK_MAX: one segment each.
 *
 * A huge segment is a header (one OS page) followed by the block, aligned as
 * asked; it is owned by no thread (thread_id 0), so any thread frees it
 * directly.  Freed mappings wait in a small cache so that programs that
 * allocate and free big buffers in a loop do not pay mmap/munmap and page
 * faults each time; the cache is bounded in bytes and its entries are
 * unmapped after the purge delay.
 *
 * A mapping taken from the cache may be larger than the block: the block
 * ends at the first page boundary after the bytes asked for (block_size),
 * and the rest of the mapping stays behind it as *slack*, with its pages
 * still resident from the mapping's last use.  realloc grows the block into
 * its slack in place (no system call, no page fault), and the next life of
 * the mapping finds the pages there.  Trimming each reused mapping to twice
 * the block (as before) cost large-blocks five times the time in page
 * faults.  The slack of all live blocks stays within a bound (a multiple of
 * the cache's budget, huge_budget): past it, a reused mapping is trimmed, so
 * small blocks cannot pin big mappings' memory without end.
 *
 * Alignments above half a segment are the one place where the block does not
 * begin in its segment's first chunk: the header then sits one chunk before
 * the block and the segment map marks the block's chunk KILN_CHUNK_PREV.
 *
 * The hardened mode's front guard (kiln_huge_use_front_guards): a PROT_NONE
 * page right before every huge block, between it and its header, so an
 * underflow from the block faults instead of rewriting the header (the
 * block's size and start, the segment's links).  The block then starts one
 * OS page later.  Like the guard after the block (secure.c), the page stays
 * protected while the mapping waits in the huge cache, so reusing a mapping
 * costs no mprotect; only moving the pages takes it off for the move
 * (mremap needs its range to be one mapping, and a guard splits it).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "os.h"
#include "segment.h"
#include "stats.h"

#define HUGE_CACHE_SLOTS 16
/* How much address space (and, as the pages stay committed, RSS) may wait
 * in the cache: 48 MiB, or as much as the huge blocks in use when they are
 * more (a program cycling big buffers reuses them without page faults, at
 * the price of up to twice their memory), never above 256 MiB.  Entries wait
 * at most HUGE_CACHE_EXPIRE_MS. */
#define HUGE_CACHE_MIN_BYTES ((size_t)48 << 20)
#define HUGE_CACHE_MAX_BYTES ((size_t)256 << 20)
/* Longer than the purge delay of pages: a program cycling buffers of
 * several MiB touches each for milliseconds, so a 10 ms expiry would empty
 * the cache between two uses. */
#define HUGE_CACHE_EXPIRE_MS 250

typedef struct huge_cache_entry_s {
  kiln_segment_t *segment;
  size_t size;
  uint64_t cached_at;
} huge_cache_entry_t;

static pthread_mutex_t huge_mutex = PTHREAD_MUTEX_INITIALIZER;
static huge_cache_entry_t huge_cache[HUGE_CACHE_SLOTS];
static size_t huge_cache_count;
static size_t huge_cache_bytes;
static _Atomic size_t huge_cache_nonempty;
/* When the oldest entry expires (UINT64_MAX: none): kiln_huge_cache_purge
 * runs at every page a thread frees or takes, and most of those calls find
 * nothing due; they return without the process-wide lock.  Taking an entry
 * leaves it early, which only costs one call a look under the lock. */
static _Atomic uint64_t huge_cache_due = UINT64_MAX;

/* Slack of live huge blocks: bytes mapped after their block_size (see the
 * top).  Reserved under huge_mutex (huge_cache_take), up to
 * HUGE_SLACK_BUDGETS times the cache's budget; given back with a plain
 * atomic subtraction.  One budget (slack <= the bytes in use) still trimmed
 * 180 MiB in large-blocks (2 threads, 4 live blocks of 1-32 MiB each) that
 * later mallocs grew back by mremap, page by page: 110-130 k page faults;
 * two budgets trim almost nothing: 72-82 k faults (tcmalloc: 65-107 k), for
 * 256 MiB of peak RSS against 205 MiB (mimalloc 255, tcmalloc 244-330). */
#define HUGE_SLACK_BUDGETS 2
static _Atomic size_t huge_slack;

/* Bytes that may wait for reuse: as much as the huge blocks in use, at
 * least HUGE_CACHE_MIN_BYTES, at most HUGE_CACHE_MAX_BYTES. */
static size_t huge_budget(void) {
  size_t budget = kiln_stats_huge_in_use();
  if (budget < HUGE_CACHE_MIN_BYTES) budget = HUGE_CACHE_MIN_BYTES;
  if (budget > HUGE_CACHE_MAX_BYTES) budget = HUGE_CACHE_MAX_BYTES;
  return budget;
}

/* The bytes mapped after a huge block's end. */
static size_t huge_slack_of(const kiln_segment_t *segment) {
  const kiln_page_t *page = &segment->pages[0];
  return (size_t)((const uint8_t *)segment + segment->mapped_size - (page->start + page->block_size));
}

static size_t huge_header_size(void) {
  return kiln_align_up(sizeof(kiln_segment_t) + sizeof(kiln_page_t), kiln_os_page_size());
}

/* Take the cached mapping that fits `size` best: the smallest at least as
 * large, else the largest (the caller grows it with mremap, which keeps its
 * pages and only faults in the difference).  *keep: how many bytes past
 * `size` the block may keep as slack (the budget's room, reserved here). */
static kiln_segment_t *huge_cache_take(size_t size, size_t *keep) {
  *keep = 0;
  if (atomic_load_explicit(&huge_cache_nonempty, memory_order_relaxed) == 0) return NULL;
  kiln_segment_t *found = NULL;
  pthread_mutex_lock(&huge_mutex);
  size_t best = SIZE_MAX, largest = SIZE_MAX;
  for (size_t i = 0; i < huge_cache_count; i++) {
    size_t have = huge_cache[i].size;
    if (have >= size && (best == SIZE_MAX || have < huge_cache[best].size)) best = i;
    if (largest == SIZE_MAX || have > huge_cache[largest].size) largest = i;
  }
  if (best == SIZE_MAX) best = largest;
  if (best != SIZE_MAX) {
    found = huge_cache[best].segment;
    size_t have = huge_cache[best].size;
    huge_cache_bytes -= have;
    huge_cache[best] = huge_cache[--huge_cache_count];
    atomic_store_explicit(&huge_cache_nonempty, huge_cache_count, memory_order_relaxed);
    if (have > size) {
      size_t slack = atomic_load_explicit(&huge_slack, memory_order_relaxed);
      size_t budget = HUGE_SLACK_BUDGETS * huge_budget();
      size_t room = budget > slack ? budget - slack : 0;
      *keep = kiln_align_down(have - size < room ? have - size : room, kiln_os_page_size());
      atomic_fetch_add_explicit(&huge_slack, *keep, memory_order_relaxed);
    }
  }
  pthread_mutex_unlock(&huge_mutex);
  return found;
}

/* Make the guard page at *offset (0: none) accessible again and forget it. */
static void guard_drop(kiln_segment_t *segment, size_t *offset) {
  if (*offset == 0) return;
  kiln_os_unprotect((uint8_t *)segment + *offset, kiln_os_page_size());
  *offset = 0;
}

void kiln_huge_drop_guard(kiln_segment_t *segment) { guard_drop(segment, &segment->guard_offset); }

/* --- the front guard (see the top) --- */
static bool huge_front_guards;

void kiln_huge_use_front_guards(void) { huge_front_guards = true; }

/* The room huge_map leaves between the header and the block. */
static size_t huge_front_gap(void) { return huge_front_guards ? kiln_os_page_size() : 0; }

/* Before the mapping's pages move (mremap needs one mapping; under
 * valgrind they are copied): both guards go.  The front one comes back
 * with huge_front_guard_place, the back one with the hardened mode's next
 * huge_guard (secure.c). */
static void huge_drop_guards_to_move(kiln_segment_t *segment) {
  guard_drop(segment, &segment->guard_offset);
  guard_drop(segment, &segment->front_guard_offset);
}

/* Guard the page right before the block (pages[0].start), where huge_map
 * left room: at least a page after the header.  A guard the mapping kept
 * from a block laid out otherwise (another alignment) goes first, as it may
 * lie inside this block. */
static void huge_front_guard_place(kiln_segment_t *segment) {
  if (!huge_front_guards) return;
  size_t page = kiln_os_page_size();
  size_t want = (size_t)(segment->pages[0].start - (uint8_t *)segment) - page;
  if (segment->front_guard_offset == want) return;
  guard_drop(segment, &segment->front_guard_offset);
  kiln_os_protect((uint8_t *)segment + want, page);
  segment->front_guard_offset = want;
}

/* Unmap the mapping from `end` (a page multiple) on; a guard page there goes
 * with it (a front guard too: one kept from an over-aligned block lies far
 * into the mapping). */
static void huge_unmap_tail(kiln_segment_t *segment, size_t end) {
  size_t tail = segment->mapped_size - end;
  if (tail == 0) return;
  kiln_os_free((uint8_t *)segment + end, tail, tail);
  segment->mapped_size = end;
  if (segment->guard_offset >= end) segment->guard_offset = 0;
  if (segment->front_guard_offset >= end) segment->front_guard_offset = 0;
}

/* Fit a cached mapping to `total` bytes plus at most `keep` bytes of slack
 * (reserved by huge_cache_take): unmap the rest of a larger one, or grow a
 * smaller one by moving its pages.  NULL if growing failed (the mapping is
 * gone). */
static kiln_segment_t *huge_fit(kiln_segment_t *segment, size_t total, size_t keep) {
  size_t have = segment->mapped_size;
  if (have >= total) {
    huge_unmap_tail(segment, total + keep); /* total + keep <= have */
    return segment;
  }
  huge_drop_guards_to_move(segment); /* (kiln_huge_alloc puts the front one back) */
  kiln_segment_t *grown = kiln_os_remap(segment, have, total, KILN_SEGMENT_SIZE);
  if (grown == NULL) {
    kiln_os_free(segment, have, have);
    return NULL;
  }
  grown->mapped_size = total;
  return grown;
}

static bool huge_cache_put(kiln_segment_t *segment) {
  size_t size = segment->mapped_size;
  size_t budget = huge_budget();
  if (size > budget || kiln_option(KILN_OPTION_PURGE_DELAY) == 0) return false;
  bool stored = false;
  pthread_mutex_lock(&huge_mutex);
  if (huge_cache_count < HUGE_CACHE_SLOTS && huge_cache_bytes + size <= budget) {
    uint64_t now = kiln_os_clock_ms();
    huge_cache[huge_cache_count++] = (huge_cache_entry_t){.segment = segment, .size = size, .cached_at = now};
    huge_cache_bytes += size;
    if (now + HUGE_CACHE_EXPIRE_MS < atomic_load_explicit(&huge_cache_due, memory_order_relaxed))
      atomic_store_explicit(&huge_cache_due, now + HUGE_CACHE_EXPIRE_MS, memory_order_relaxed);
    atomic_store_explicit(&huge_cache_nonempty, huge_cache_count, memory_order_relaxed);
    stored = true;
  }
  pthread_mutex_unlock(&huge_mutex);
  return stored;
}

void kiln_huge_cache_purge(bool force) {
  if (atomic_load_explicit(&huge_cache_nonempty, memory_order_relaxed) == 0) return;
  uint64_t now = kiln_os_clock_ms();
  if (!force && now < atomic_load_explicit(&huge_cache_due, memory_order_relaxed)) return;
  uint64_t delay = HUGE_CACHE_EXPIRE_MS;
  huge_cache_entry_t expired[HUGE_CACHE_SLOTS];
  size_t expired_count = 0;
  uint64_t due = UINT64_MAX;
  pthread_mutex_lock(&huge_mutex);
  for (size_t i = 0; i < huge_cache_count;) {
    if (force || huge_cache[i].cached_at + delay <= now) {
      expired[expired_count++] = huge_cache[i];
      huge_cache_bytes -= huge_cache[i].size;
      huge_cache[i] = huge_cache[--huge_cache_count];
    } else {
      if (huge_cache[i].cached_at + delay < due) due = huge_cache[i].cached_at + delay;
      i++;
    }
  }
  atomic_store_explicit(&huge_cache_nonempty, huge_cache_count, memory_order_relaxed);
  atomic_store_explicit(&huge_cache_due, due, memory_order_relaxed);
  pthread_mutex_unlock(&huge_mutex);
  for (size_t i = 0; i < expired_count; i++) {
    kiln_os_free(expired[i].segment, expired[i].size, expired[i].size);
    kiln_stats_count(KILN_STAT_PURGES, 1);
  }
}

void kiln_huge_cache_clear(void) { kiln_huge_cache_purge(true); }

void kiln_huge_cache_lock(void) { pthread_mutex_lock(&huge_mutex); }
void kiln_huge_cache_unlock(void) { pthread_mutex_unlock(&huge_mutex); }

/* Map a segment for a block of `size` bytes aligned to `alignment`; returns
 * the segment and sets *block.  Caller checked size <= KILN_MAX_ALLOC_SIZE. */
static kiln_segment_t *huge_map(size_t size, size_t alignment, uint8_t **block, uint8_t **block_end, bool *fresh) {
  size_t page = kiln_os_page_size();
  size_t header = huge_header_size();
  *fresh = true;
  if (alignment <= KILN_SEGMENT_SIZE / 2) {
    /* Header (and the room for a front guard), then the block at the first
     * aligned offset: offset <= max(header + gap, alignment) <= 2 MiB,
     * inside the first chunk. */
    size_t offset = kiln_align_up(header + huge_front_gap(), alignment < 16 ? 16 : alignment);
    if (size > KILN_MAX_ALLOC_SIZE - offset - page) { return NULL; }
    size_t total = kiln_align_up(offset + size, page);
    size_t keep;
    kiln_segment_t *segment = huge_cache_take(total, &keep);
    if (segment != NULL) {
      segment = huge_fit(segment, total, keep);
      /* What huge_fit did not keep (or all, if growing failed) is no slack. */
      size_t kept = segment != NULL ? segment->mapped_size - total : 0;
      if (kept < keep) atomic_fetch_sub_explicit(&huge_slack, keep - kept, memory_order_relaxed);
    }
    if (segment != NULL) {
      *fresh = false;
    } else {
      segment = kiln_os_alloc_aligned(total, KILN_SEGMENT_SIZE);
      if (segment == NULL) return NULL;
      segment->mapped_size = total;
    }
    *block = (uint8_t *)segment + offset;
    *block_end = (uint8_t *)segment + total;
    return segment;
  }
  /* alignment > 2 MiB (a power of two, so a multiple of the segment size):
   * map alignment + size, keep from one chunk before an aligned address. */
  if (alignment > KILN_MAX_ALLOC_SIZE / 2 || size > KILN_MAX_ALLOC_SIZE - alignment) return NULL;
  size_t body = kiln_align_up(size, page);
  uint8_t *raw = kiln_os_alloc_aligned(alignment + body, alignment);
  if (raw == NULL) return NULL;
  uint8_t *aligned_block = raw + alignment;
  kiln_segment_t *segment = (kiln_segment_t *)(aligned_block - KILN_SEGMENT_SIZE);
  size_t lead = (size_t)((uint8_t *)segment - raw);
  kiln_os_free(raw, lead, lead);
  segment->mapped_size = KILN_SEGMENT_SIZE + body;
  *block = aligned_block;
  *block_end = aligned_block + body;
  return segment;
}

/* --- huge blocks of first-class heaps ------------------------------------ */
static void heap_huge_lock(kiln_heap_t *heap) {
  /* acquire: the list as the last holder left it */
  while (atomic_flag_test_and_set_explicit(&heap->huge_lock, memory_order_acquire)) kiln_os_yield();
}
static void heap_huge_unlock(kiln_heap_t *heap) {
  atomic_flag_clear_explicit(&heap->huge_lock, memory_order_release);
}

static void heap_huge_link(kiln_heap_t *heap, kiln_segment_t *segment) {
  heap_huge_lock(heap);
  segment->huge_heap = heap;
  segment->prev = NULL;
  segment->next = heap->huge_first;
  if (heap->huge_first != NULL) heap->huge_first->prev = segment;
  heap->huge_first = segment;
  atomic_fetch_add_explicit(&heap->huge_bytes, segment->pages[0].block_size, memory_order_relaxed);
  heap_huge_unlock(heap);
}

/* Returns the heap it was linked to (NULL if none). */
static kiln_heap_t *heap_huge_unlink(kiln_segment_t *segment) {
  kiln_heap_t *heap = segment->huge_heap;
  if (heap == NULL) return NULL;
  heap_huge_lock(heap);
  if (segment->prev != NULL) segment->prev->next = segment->next;
  else heap->huge_first = segment->next;
  if (segment->next != NULL) segment->next->prev = segment->prev;
  segment->huge_heap = NULL;
  atomic_fetch_sub_explicit(&heap->huge_bytes, segment->pages[0].block_size, memory_order_relaxed);
  heap_huge_unlock(heap);
  return heap;
}

void kiln_heap_huge_release_all(kiln_heap_t *heap, bool free_blocks) {
  heap_huge_lock(heap);
  kiln_segment_t *list = heap->huge_first;
  heap->huge_first = NULL;
  atomic_store_explicit(&heap->huge_bytes, 0, memory_order_relaxed);
  for (kiln_segment_t *s = list; s != NULL; s = s->next) s->huge_heap = NULL;
  heap_huge_unlock(heap);
  while (free_blocks && list != NULL) {
    kiln_segment_t *next = list->next;
    /* Checking/hardened mode (issue 5): the block dies with its heap. */
    if (kiln_check_enabled()) kiln_check_page_freed(&list->pages[0]);
    kiln_huge_free(list);
    list = next;
  }
}

void *kiln_huge_alloc(kiln_heap_t *owner, size_t size, size_t alignment, bool zero) {
  uint8_t *block, *block_end;
  bool fresh;
  kiln_segment_t *segment = huge_map(size, alignment, &block, &block_end, &fresh);
  if (segment == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  size_t mapped = segment->mapped_size;
  size_t guard_offset = fresh ? 0 : segment->guard_offset;
  size_t front_guard_offset = fresh ? 0 : segment->front_guard_offset;
  memset(segment, 0, sizeof(kiln_segment_t) + sizeof(kiln_page_t));
  segment->mapped_size = mapped;
  segment->guard_offset = guard_offset;
  segment->front_guard_offset = front_guard_offset;
  segment->header_size = (size_t)(block - (uint8_t *)segment);
  /* A guard the mapping kept from its last block may stay only past this
   * one (the hardened mode then moves it or keeps it: secure.c). */
  if (guard_offset != 0 && (uint8_t *)segment + guard_offset < block + size) kiln_huge_drop_guard(segment);
  segment->kind = KILN_SEGMENT_HUGE;
  segment->page_shift = 63;
  segment->page_count = 1;
  segment->used_pages = 1;
  kiln_page_t *page = &segment->pages[0];
  page->start = block;
  page->block_size = (size_t)(block_end - block); /* the rest of the mapping: slack (reserved by huge_map) */
  page->capacity = page->reserved = 1;
  page->used = 1;
  page->segment_in_use = true;
  page->is_committed = true;
  page->bin = KILN_BIN_HUGE;
  page->div_shift = 0;
  page->div_inverse = 0; /* only offset 0 maps to index 0 < capacity */
  page->alloc_count = 1;
  atomic_store_explicit(&page->xthread_free, (uintptr_t)KILN_NEVER_DELAYED_FREE, memory_order_relaxed);
  huge_front_guard_place(segment); /* before the memset: a kept guard may lie inside the block */
  if (zero && !fresh) memset(block, 0, size);
  if (kiln_check_enabled()) page->flags.x.checked = KILN_PAGE_CHECKED;
  kiln_segment_register_huge(segment);
  kiln_segment_map_set((uintptr_t)segment, KILN_CHUNK_START);
  if (block >= (uint8_t *)segment + KILN_SEGMENT_SIZE) kiln_segment_map_set((uintptr_t)block, KILN_CHUNK_PREV);
  kiln_stats_count(KILN_STAT_HUGE_ALLOCS, 1);
  kiln_stats_huge_bytes((long long)page->block_size);
  if (owner != NULL && owner->is_first_class) heap_huge_link(owner, segment);
  return block;
}

void kiln_huge_free(kiln_segment_t *segment) {
  heap_huge_unlink(segment);
  kiln_page_t *page = &segment->pages[0];
  kiln_stats_count(KILN_STAT_HUGE_FREES, 1);
  kiln_stats_huge_bytes(-(long long)page->block_size);
  atomic_fetch_sub_explicit(&huge_slack, huge_slack_of(segment), memory_order_relaxed);
  page->capacity = 0;
  kiln_segment_unregister_huge(segment);
  uint8_t *block = page->start;
  if (block >= (uint8_t *)segment + KILN_SEGMENT_SIZE) kiln_segment_map_set((uintptr_t)block, KILN_CHUNK_NONE);
  kiln_segment_map_set((uintptr_t)segment, KILN_CHUNK_NONE);
  /* Only ordinarily aligned mappings are cached (their layout is reusable). */
  if (block < (uint8_t *)segment + KILN_SEGMENT_SIZE && huge_cache_put(segment)) return;
  kiln_os_free(segment, segment->mapped_size, segment->mapped_size);
}

/* Grow the block in place into its slack, if the mapping has room: no
 * system call, and the slack's pages are usually resident.  Else grow by
 * moving the mapping's pages (mremap): no copy, as glibc does for its
 * mmapped chunks.  Only ordinarily aligned blocks (block in the first
 * chunk).  Returns the block's new address or NULL. */
void *kiln_huge_grow(kiln_segment_t *segment, void *p, size_t size) {
  kiln_page_t *page = &segment->pages[0];
  size_t offset = (size_t)(page->start - (uint8_t *)segment);
  if ((uint8_t *)p != page->start || offset >= KILN_SEGMENT_SIZE || size > KILN_MAX_ALLOC_SIZE - offset)
    return NULL;
  size_t old_block = page->block_size;
  size_t new_end = kiln_align_up(offset + size, kiln_os_page_size());
  size_t old_slack = huge_slack_of(segment);
  kiln_heap_t *heap = heap_huge_unlink(segment); /* its byte count changes */
  if (new_end <= segment->mapped_size) {
    /* A guard page left from the mapping's last life inside the new block
     * goes (the hardened mode places its own after). */
    if (segment->guard_offset != 0 && segment->guard_offset < new_end) kiln_huge_drop_guard(segment);
    page->block_size = new_end - offset;
    atomic_fetch_sub_explicit(&huge_slack, old_slack - huge_slack_of(segment), memory_order_relaxed);
    kiln_stats_huge_bytes((long long)(page->block_size - old_block));
    if (heap != NULL) heap_huge_link(heap, segment);
    return p;
  }
  /* The header moves with the pages: take it off the lists first, and the
   * guard pages (one mapping to move; the back one would lie inside the
   * block). */
  kiln_segment_unregister_huge(segment);
  kiln_segment_map_set((uintptr_t)segment, KILN_CHUNK_NONE);
  huge_drop_guards_to_move(segment);
  size_t old_size = segment->mapped_size;
  kiln_segment_t *moved = kiln_os_remap(segment, old_size, new_end, KILN_SEGMENT_SIZE);
  bool grown = moved != NULL;
  if (!grown) {
    moved = segment; /* untouched: put it back */
  } else {
    moved->mapped_size = new_end;
    moved->pages[0].start = (uint8_t *)moved + offset;
    moved->pages[0].block_size = new_end - offset;
    atomic_fetch_sub_explicit(&huge_slack, old_slack, memory_order_relaxed); /* the block took it */
    kiln_stats_huge_bytes((long long)(new_end - offset - old_block));
  }
  huge_front_guard_place(moved); /* back in place, moved or not */
  kiln_segment_register_huge(moved);
  kiln_segment_map_set((uintptr_t)moved, KILN_CHUNK_START);
  if (heap != NULL) heap_huge_link(heap, moved);
  return grown ? moved->pages[0].start : NULL;
}

bool kiln_huge_resize(kiln_segment_t *segment, void *p, size_t size) {
  kiln_page_t *page = &segment->pages[0];
  if ((uint8_t *)p != page->start) return false;
  size_t page_size = kiln_os_page_size();
  size_t offset = (size_t)(page->start - (uint8_t *)segment);
  if (size > page->block_size) return false; /* growing needs a new mapping */
  /* Shrinking: give the tail back when it is worth a page or more, but keep
   * the block huge (above KILN_LARGE_BLOCK_MAX) so it stays in this path. */
  if (size <= KILN_LARGE_BLOCK_MAX) return false;
  size_t keep = kiln_align_up(offset + size, page_size);
  if (keep < offset + page->block_size) {
    /* The block loses a page or more: the tail goes back to the OS, slack
     * included.  (A block that keeps its last page keeps its slack too: a
     * buffer grown a few bytes at a time comes here at every step.) */
    kiln_heap_t *heap = heap_huge_unlink(segment);
    atomic_fetch_sub_explicit(&huge_slack, huge_slack_of(segment), memory_order_relaxed);
    kiln_stats_huge_bytes(-(long long)(page->block_size - (keep - offset)));
    huge_unmap_tail(segment, keep);
    page->block_size = keep - offset;
    if (heap != NULL) heap_huge_link(heap, segment);
  }
  return true;
}
