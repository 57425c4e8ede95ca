/* secure.h — the hardened mode's free fast path, inline in free (alloc.h);
 * the rest of the mode, and what each defence stops, is in src/secure.c. */
#ifndef KILN_SECURE_H
#define KILN_SECURE_H

#include "free.h"
#include "page.h"

/* Could the block's first word be an encoded link?  A genuine one decodes
 * to NULL or to a block of the page, so to the block's own 4 MiB segment.
 * Program data decodes into the segment only if its top 42 bits equal those
 * of key ^ block: by chance, ~2^-42 (the key is random and secret).  The
 * segment test is a shift where the exact "carved block of the page" test
 * (ptr.h's block index, which the search of secure.c applies to every link
 * it follows) is a multiplication, and
 * this screen runs on every free; a false alarm costs only the search. */
kiln_inline bool kiln_secure_looks_free(const kiln_page_t *page, const kiln_block_t *block) {
  uintptr_t next = (uintptr_t)kiln_block_next(page, block);
  return next == 0 || ((next ^ (uintptr_t)block) >> KILN_SEGMENT_SHIFT) == 0;
}

/* Zero on free: the first KILN_SECURE_ZERO_MAX (32) bytes of every freed
 * block, or the whole block if it is smaller; KILN_SECURE_ZERO picks a
 * shorter prefix (16; 0: none).  The same two 16-byte stores for every
 * size: the first at the block's start, the second at an offset that the
 * page keeps in its hot cache line (set when the page is set up,
 * secure.c), clamped into the prefix, so the two overlap in 16-byte
 * blocks.  Free thus takes no branch on the size.  A branch per size tier,
 * as before, mispredicted on programs that free mixed sizes: about one
 * miss per free, which cost mstress more time than the stores themselves.
 * The prefix was 64 bytes (four stores) until the stores were measured
 * alone: against 32 bytes, paired runs gave simple 1.08x and larson 1.10x
 * the time (blocks start 16 bytes apart, so 64 bytes span two cache lines
 * three times in four, and larson frees cold blocks; docs/CHECKING.md).
 * The first bytes are where structures keep their headers and pointers. */
#define KILN_SECURE_ZERO_MAX ((size_t)32)
_Static_assert(KILN_SECURE_ZERO_MAX == 16 * 2,
               "kiln_secure_zero_freed makes one store at the start and one at page->zero_offset");
extern kiln_shared size_t kiln_secure_zero_bytes; /* the prefix zeroed (0: none) */

kiln_inline void kiln_secure_zero_freed(const kiln_page_t *page, kiln_block_t *block) {
  if (kiln_unlikely(kiln_secure_zero_bytes == 0)) return;
  uint8_t *start = (uint8_t *)block;
  __builtin_memset(start, 0, 16);
  __builtin_memset(start + page->zero_offset, 0, 16);
}

/* A free whose block looks already free (kiln_secure_looks_free): search
 * the page's lists, report a double free or free the block (secure.c). */
void kiln_secure_free_suspect(kiln_page_t *page, kiln_block_t *block, bool owned);
/* Another thread's free of a block start on a keyed page (secure.c). */
void kiln_secure_free_remote(kiln_page_t *page, kiln_block_t *block);

/* The owner's free of a block start on a keyed page, once cleared: zero
 * it, then as the plain fast path (alloc.h) with the link encoded. */
kiln_inline void kiln_secure_free_local_checked(kiln_page_t *page, kiln_block_t *block) {
  /* The link is made before the zeroing: its stores may alias the page as
   * far as the compiler knows, and it would load the list head and the key
   * again after them. */
  kiln_block_t *link = kiln_block_link(page, page->local_free);
  kiln_secure_zero_freed(page, block);
  block->next = link;
  page->local_free = block;
  if (kiln_unlikely(--page->used == 0)) kiln_free_retire(page);
}

/* The owner's free of a block start on a keyed page with no other flag
 * (KILN_PAGE_FLAGS_KEYED): the O(1) double-free screen, then the above.
 * Inline in free: its only call on the common path is the retire that the
 * plain path makes too, so free still needs no stack frame. */
kiln_inline void kiln_secure_free_local(kiln_page_t *page, kiln_block_t *block) {
  if (kiln_unlikely(kiln_secure_looks_free(page, block))) kiln_secure_free_suspect(page, block, true);
  else kiln_secure_free_local_checked(page, block);
}

#endif /* KILN_SECURE_H */
