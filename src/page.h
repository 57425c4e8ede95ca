/* page.h — one page's free lists (src/page.c).
 *
 * Three lists per page (mimalloc's free-list sharding): `free` feeds the
 * allocation fast path, `local_free` takes the owner's frees, `thread_free`
 * (atomic) takes other threads' frees.  kiln_page_collect moves the last two
 * into `free` when it runs dry, so the fast paths never synchronise.
 */
#ifndef KILN_PAGE_H
#define KILN_PAGE_H

#include "internal.h"
#include "ptr.h"
#include "types.h"

/* Set a fresh page (from kiln_segment_page_alloc) up for `bin` in `heap`:
 * block size, reserved blocks, key; its free list is empty until the caller
 * extends it (after the modes' hooks, which may lower `reserved`). */
void kiln_page_init(kiln_heap_t *heap, kiln_page_t *page, unsigned bin, size_t block_size);
/* Carve more blocks into an empty `free` list (up to KILN_PAGE_EXTEND_BYTES). */
void kiln_page_extend(kiln_page_t *page);
/* Move local_free and thread_free into free (owner only).  Returns the
 * number of blocks other threads had freed. */
size_t kiln_page_collect(kiln_page_t *page);

/* Free-list links.  In the hardened mode a page has a random key and every
 * `next` of its lists is stored xor the key, so a link overwritten by a
 * use-after-free or an overflow decodes to an address outside the page,
 * which kiln_page_pop_keyed detects before handing it out.  Plain pages
 * have key 0: these are then plain loads and stores, and the fast paths test
 * the key (it shares the first cache line with `free`) only to branch to the
 * keyed pop. */
kiln_inline kiln_block_t *kiln_block_next(const kiln_page_t *page, const kiln_block_t *block) {
  return (kiln_block_t *)((uintptr_t)block->next ^ page->key);
}
/* The word a block holds to link to `next` (see kiln_block_set_next). */
kiln_inline kiln_block_t *kiln_block_link(const kiln_page_t *page, const kiln_block_t *next) {
  return (kiln_block_t *)((uintptr_t)next ^ page->key);
}
kiln_inline void kiln_block_set_next(const kiln_page_t *page, kiln_block_t *block, kiln_block_t *next) {
  block->next = kiln_block_link(page, next);
}

/* The heap's delayed-free list (kiln_page_free_mt, drained by
 * kiln_heap_delayed_free_all) links blocks of different pages.  A block of a
 * keyed page on it holds its link in its second word (blocks have at least
 * 16 bytes) and a link to itself in the first: that one decodes into the
 * block's own page, so the hardened mode's double-free screen (secure.h)
 * sees the block as free, and its search knows it for a block that waits on
 * a delayed list, as no list of a page links a block to itself.  Plain pages
 * link through the first word, as their other lists do. */
kiln_inline uintptr_t *kiln_block_delayed_word(const kiln_page_t *page, kiln_block_t *block) {
  return (uintptr_t *)block + (page->key != 0);
}
kiln_inline void kiln_block_set_delayed_next(const kiln_page_t *page, kiln_block_t *block, kiln_block_t *next) {
  *kiln_block_delayed_word(page, block) = (uintptr_t)kiln_block_link(page, next);
}
kiln_inline kiln_block_t *kiln_block_delayed_next(const kiln_page_t *page, kiln_block_t *block) {
  return (kiln_block_t *)(*kiln_block_delayed_word(page, block) ^ page->key);
}
kiln_inline bool kiln_block_waits_delayed(const kiln_page_t *page, const kiln_block_t *block) {
  return page->key != 0 && kiln_block_next(page, block) == block;
}

/* Pop from a keyed page (hardened mode; page->free != NULL): check that the
 * block is a carved block of this page before handing it out, and clear its
 * link word, so a live block never holds a valid encoded link (the O(1)
 * double-free test of secure.c relies on it).  A forged link thus waits in
 * page->free until the next pop, which aborts; nothing else follows
 * page->free (collect only links onto it, and checks every link of the
 * lists it walks, as secure.c's list search does).  Checking the link as it
 * is decoded, one pop earlier, would need a test for NULL as well (the end
 * of the list): a
 * branch that mispredicted whenever one of many pages ran dry (larson,
 * random sizes: 54k misses in 1M mallocs), or a select that cost 4 more
 * instructions a pop. */
void *kiln_page_pop_keyed(kiln_page_t *page);
/* Abort: a free list of `page` leads to p, which is no block of it. */
_Noreturn void kiln_page_list_corrupt(const kiln_page_t *page, const void *p);

kiln_inline kiln_block_t *kiln_thread_free_ptr(uintptr_t tf) { return (kiln_block_t *)(tf & ~(uintptr_t)3); }
kiln_inline kiln_delayed_t kiln_thread_free_state(uintptr_t tf) { return (kiln_delayed_t)(tf & 3); }

/* Set the delayed-free state (owner): waits while a remote thread is in
 * DELAYED_FREEING; unless override, never leaves NEVER_DELAYED. */
void kiln_page_set_delayed(kiln_page_t *page, kiln_delayed_t state, bool override_never);

/* Free p (a block start of this page) from another thread (atomic). */
void kiln_page_free_mt(kiln_page_t *page, kiln_block_t *block);

/* Page queue of a heap (doubly linked through page->next/prev). */
void kiln_queue_push_front(kiln_page_queue_t *queue, kiln_page_t *page);
void kiln_queue_push_back(kiln_page_queue_t *queue, kiln_page_t *page);
void kiln_queue_remove(kiln_page_queue_t *queue, kiln_page_t *page);

#endif /* KILN_PAGE_H */
