/* alloc.h — the fast paths of malloc and free, inline so that both the
 * kiln_* entry points (alloc.c, free.c) and the libc names (override.c)
 * compile the same few instructions. */
#ifndef KILN_ALLOC_H
#define KILN_ALLOC_H

#include "check.h"
#include "free.h"
#include "heap.h"
#include "page.h"
#include "ptr.h"
#include "secure.h"

/* Take the first free block (page->free != NULL).  A hardened page (key set,
 * in the same cache line) decodes and validates the link out of line: inlined
 * here (with a tail jump to the error report), it cost the plain path two
 * more instructions, as GCC then gave the page and the block other registers. */
kiln_inline void *kiln_page_pop(kiln_page_t *page) {
  if (kiln_unlikely(page->key != 0)) return kiln_page_pop_keyed(page);
  kiln_block_t *block = page->free;
  page->free = block->next;
  page->used++;
  return block;
}

/* malloc: thread heap (one TLS load) -> direct slot -> page -> pop. */
kiln_inline void *kiln_malloc_inline(size_t size) {
  kiln_heap_t *heap = kiln_heap_get_default();
  if (kiln_likely(size <= KILN_DIRECT_MAX)) {
    kiln_page_t *page = heap->pages_direct[(size + 15) >> 4];
    if (kiln_likely(page->free != NULL)) return kiln_page_pop(page);
  }
  return kiln_heap_malloc_generic(heap, size, false);
}

/* free: segment by bitmap and mask -> page by index -> if we own it and it
 * is a plain page and p starts a carved block, push on local_free.  A block
 * start on a hardened page goes to secure.c (the owner's and other threads'
 * each to their own hook), the rest to free.c.  (This is
 * kiln_segment_of unrolled, so the rare cases leave in one branch; a NULL p
 * falls in chunk 0, which is never a segment.) */
kiln_inline void kiln_free_inline(void *p) {
  uintptr_t chunk = (uintptr_t)p >> KILN_SEGMENT_SHIFT;
  if (kiln_likely(chunk < KILN_MAP_CHUNKS && kiln_map_test(kiln_segment_start_map, chunk))) {
    kiln_segment_t *segment = (kiln_segment_t *)((uintptr_t)p & ~(uintptr_t)KILN_SEGMENT_MASK);
    kiln_page_t *page = kiln_segment_page_of_valid(segment, p);
    bool owned = atomic_load_explicit(&segment->thread_id, memory_order_relaxed) == kiln_thread_id();
    /* (Any thread asks: a block handed out was carved before.) */
    bool starts_block = kiln_page_carved(page, p);
    if (kiln_likely(owned && starts_block)) {
      kiln_block_t *block = (kiln_block_t *)p;
      if (kiln_likely(page->flags.all == 0)) {
        block->next = page->local_free;
        page->local_free = block;
        if (kiln_unlikely(--page->used == 0)) kiln_free_retire(page);
      } else if (page->flags.all == KILN_PAGE_FLAGS_KEYED) {
        kiln_secure_free_local(page, block);
      } else {
        kiln_free_generic(segment, page, p);
      }
      return;
    }
    /* (flags.x.checked is set before the page hands out a block and stays;
     * the owner changes only the other flag bytes.) */
    if (starts_block && page->flags.x.checked == KILN_PAGE_CHECKED_KEYED)
      kiln_secure_free_remote(page, (kiln_block_t *)p);
    else kiln_free_generic(segment, page, p);
    return;
  }
  kiln_free_rare(p);
}

#endif /* KILN_ALLOC_H */
