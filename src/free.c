/* free.c — free, its slow paths, and usable sizes.
 *
 * The fast path (alloc.h) handles the common case: the calling thread owns
 * the page, the page has no special flag, and p starts a carved block.
 * Everything else comes here: huge blocks, full pages, over-aligned blocks,
 * the checking mode, other threads' blocks (kiln_page_free_mt), and pointers
 * Kiln never handed out, which are counted and otherwise left alone.
 */
#include "alloc.h"
#include "check.h"
#include "page.h"
#include "segment.h"
#include "stats.h"

void kiln_free_not_ours(void *p) {
  if (p == NULL) return;
  kiln_stats_count(KILN_STAT_INVALID_FREES, 1);
  if (kiln_check_enabled()) {
    kiln_check_report("invalid free", p, 0);
    return;
  }
  kiln_verbose("kiln: free(%p) of a pointer Kiln did not allocate: ignored", p);
}

static void free_invalid(void *p) {
  kiln_stats_count(KILN_STAT_INVALID_FREES, 1);
  if (kiln_check_enabled()) {
    kiln_check_report("invalid free", p, 0);
    return;
  }
  kiln_verbose("kiln: free(%p) of a pointer that starts no block: ignored", p);
}

kiln_noinline void kiln_free_rare(void *p) {
  kiln_segment_t *segment = kiln_segment_of_slow((uintptr_t)p);
  if (segment == NULL) kiln_free_not_ours(p);
  else kiln_free_generic(segment, kiln_segment_page_of_valid(segment, p), p);
}

kiln_cold void kiln_free_retire(kiln_page_t *page) {
  /* The heartbeat after (it may free the page), and only when a page went:
   * a loop that mallocs and frees one block empties its page every time
   * (and the page stays, as the only one of its bin). */
  if (kiln_page_alone_in_bin(page)) return;
  kiln_heap_t *heap = atomic_load_explicit(&page->xheap, memory_order_relaxed);
  if (kiln_heap_page_retire(heap, page)) kiln_heap_heartbeat(heap);
}

void kiln_free_local(kiln_heap_t *heap, kiln_page_t *page, kiln_block_t *block) {
  if (page->flags.x.accounted) heap->allocated -= page->block_size;
  kiln_block_set_next(page, block, page->local_free);
  page->local_free = block;
  page->used--;
  if (page->flags.x.in_full) kiln_heap_page_unfull(heap, page);
  if (page->used == 0) kiln_heap_page_retire(heap, page);
}

kiln_block_t *kiln_page_block_of(kiln_page_t *page, const void *p) {
  if (!page->segment_in_use) return NULL;
  if (page->bin == KILN_BIN_HUGE) return (const uint8_t *)p == page->start ? (kiln_block_t *)page->start : NULL;
  /* Any thread may be here: capacity and has_aligned are read relaxed (the
   * owner changes them; see kiln_page_extend). */
  uint16_t capacity = __atomic_load_n(&page->capacity, __ATOMIC_RELAXED);
  if (!__atomic_load_n(&page->flags.x.has_aligned, __ATOMIC_RELAXED))
    return kiln_page_block_index(page, p) < capacity ? (kiln_block_t *)p : NULL;
  if (page->flags.x.has_aligned == KILN_CHECK_ALIGNED_ANY) {
    /* The checking mode's usual pointer: block start + the default front
     * (blocks there are larger than the front, so p lies in that block);
     * this spares the division below on nearly every checked free. */
    const uint8_t *start = (const uint8_t *)p - KILN_CHECK_FRONT_DEFAULT;
    if (kiln_page_block_index(page, start) < capacity) return (kiln_block_t *)start;
  }
  /* A page holding over-aligned blocks: p may be the aligned address inside
   * a block, align_up(block, A) for the alignment A asked for.  Such a p is a
   * multiple of A and lies less than A past the block start, so it is less
   * than lowbit(p) (the largest power of two dividing p) past it; any other
   * interior pointer (p + 16 of a plain block, say) is refused. */
  uintptr_t offset = (uintptr_t)p - (uintptr_t)page->start;
  size_t index = offset / page->block_size;
  if ((uintptr_t)p < (uintptr_t)page->start || index >= capacity) return NULL;
  uint8_t *block = page->start + index * page->block_size;
  uintptr_t inside = (uintptr_t)p - (uintptr_t)block;
  uintptr_t lowbit = (uintptr_t)p & (0 - (uintptr_t)p);
  /* The checking mode's pages put the program's pointer behind a front
   * canary: there any interior pointer names its block, and the hook tells
   * the program's pointer from a stray one (check.h, issue 5). */
  if (inside != 0 && inside >= lowbit && page->flags.x.has_aligned != KILN_CHECK_ALIGNED_ANY) return NULL;
  return (kiln_block_t *)block;
}

/* size_hint/alignment_hint: what free_sized/free_aligned_sized claimed
 * (0: nothing claimed), verified by the checking mode. */
static void free_generic_hinted(kiln_segment_t *segment, kiln_page_t *page, void *p, size_t size_hint,
                                size_t alignment_hint) {
  kiln_block_t *block = page != NULL ? kiln_page_block_of(page, p) : NULL;
  if (kiln_unlikely(block == NULL)) {
    free_invalid(p);
    return;
  }
  if (kiln_unlikely(page->flags.x.checked) && !kiln_check_free(page, block, p, size_hint, alignment_hint))
    return;
  kiln_free_block(segment, page, block);
}

void kiln_free_block(kiln_segment_t *segment, kiln_page_t *page, kiln_block_t *block) {
  if (segment->kind == KILN_SEGMENT_HUGE) {
    kiln_huge_free(segment);
    return;
  }
  if (atomic_load_explicit(&segment->thread_id, memory_order_relaxed) == kiln_thread_id())
    kiln_free_local(atomic_load_explicit(&page->xheap, memory_order_relaxed), page, block);
  else
    kiln_free_remote(page, block);
}

void kiln_free_remote(kiln_page_t *page, kiln_block_t *block) {
  kiln_page_free_mt(page, block);
  /* Counted in the freeing thread's own counters: a process-wide atomic
   * here would bounce one cache line between all freeing threads. */
  kiln_heap_t *self = kiln_heap_get_default();
  if (self != &kiln_heap_empty) {
    uint64_t *count = &self->tld->stats.remote_frees;
    __atomic_store_n(count, *count + 1, __ATOMIC_RELAXED);
  } else {
    kiln_stats_count(KILN_STAT_REMOTE_FREES_NO_HEAP, 1); /* a thread that never allocated */
  }
}

kiln_noinline void kiln_free_generic(kiln_segment_t *segment, kiln_page_t *page, void *p) {
  free_generic_hinted(segment, page, p, 0, 0);
}

kiln_hot_entry void kiln_free(void *p) { kiln_free_inline(p); }

size_t kiln_usable_size(const void *p) {
  kiln_segment_t *segment = kiln_segment_of(p);
  if (segment == NULL) return 0;
  kiln_page_t *page = kiln_segment_page_of(segment, p);
  if (page == NULL) return 0;
  kiln_block_t *block = kiln_page_block_of(page, p);
  if (block == NULL) return 0;
  size_t usable = page->block_size - (size_t)((const uint8_t *)p - (const uint8_t *)block);
  if (kiln_unlikely(page->flags.x.checked)) return kiln_check_usable_size(page, block, usable);
  return usable;
}

bool kiln_owns(const void *p) {
  if (p == NULL) return false;
  return kiln_segment_of(p) != NULL || kiln_segment_contains_slow(p);
}

/* C23: the size (and alignment) must be those of the allocation; outside the
 * checking mode Kiln does not need them. */
static void free_checked_sized(void *p, size_t size, size_t alignment) {
  kiln_segment_t *segment = kiln_segment_of(p);
  if (segment == NULL) {
    kiln_free_not_ours(p);
    return;
  }
  free_generic_hinted(segment, kiln_segment_page_of(segment, p), p, size == 0 ? 1 : size, alignment);
}

void kiln_free_sized(void *p, size_t size) {
  if (kiln_unlikely(kiln_check_enabled()) && p != NULL) free_checked_sized(p, size, 0);
  else kiln_free_inline(p);
}

void kiln_free_aligned_sized(void *p, size_t alignment, size_t size) {
  if (kiln_unlikely(kiln_check_enabled()) && p != NULL) free_checked_sized(p, size, alignment == 0 ? 1 : alignment);
  else kiln_free_inline(p);
}
