/* secure.h — the hardened mode's free fast path, inline in free (alloc.h);
 * the rest of the mode, and what each defence stops, is in src/secure.c. */
#ifndef KILN_SECURE_H
#define KILN_SECURE_H

#include "free.h"
#include "page.h"

/* Could the block's first word be an encoded link?  A genuine one decodes
 * to NULL or to a block of the page, whose address has the same high half
 * (bits 32-63) as the block's: the page's segment is one 4 MiB-aligned
 * chunk, which never crosses a 4 GiB line.  So the screen reads only the
 * word's high half and compares it with the two values a link's can have:
 * the key's (NULL) and page->screen_hi (key ^ the segment's high half), both
 * in the page's hot line: one 4-byte load and two compares.  Program data
 * matches one of them by chance, ~2^-31 (the key is random and secret), and
 * a false alarm costs only the search, which follows every link with the
 * exact "carved block of the page" test (ptr.h's block index).
 * Only the high half, not the whole word, because of store forwarding
 * (kiln_word_high_half): the 8-byte load this screen made before stalled
 * free whenever the program had just written a block's first bytes
 * (kiln-bench-interleave, simple: the hardened mode 1.45-1.60x the fast
 * mode before, 1.38-1.40x with this screen; docs/CHECKING.md). */
_Static_assert(((uint64_t)1 << 32) % KILN_SEGMENT_SIZE == 0, "a segment chunk never crosses a 4 GiB line");
kiln_inline bool kiln_secure_looks_free(const kiln_page_t *page, const kiln_block_t *block) {
  uint32_t high = kiln_word_high_half(block);
  return high == kiln_word_high_half(&page->key) || high == page->screen_hi;
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
