/* secure.h — the hardened mode's free fast path, inline in free (alloc.h);
 * the rest of the mode, and what each defence stops, is in src/secure.c. */
#ifndef KILN_SECURE_H
#define KILN_SECURE_H

#include "free.h"
#include "page.h"

/* Freed blocks up to this size can be zeroed (larger ones: the cost grows
 * with the size; secure.c); KILN_SECURE_ZERO picks the bound at or below it
 * (kiln_secure_zero_max, 0: none). */
#define KILN_SECURE_ZERO_MAX ((size_t)128)
extern size_t kiln_secure_zero_max;

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

/* Zero a freed block of 16 to 128 bytes with 16-byte stores from both ends,
 * which overlap in the middle: 2, 4 or 8 stores after at most two size
 * tests, where a loop would take a test per 16 bytes (and, with sizes that
 * vary, mispredict its exit).  Blocks are never under 16 bytes
 * (size_class.c). */
_Static_assert(KILN_SECURE_ZERO_MAX == 128, "kiln_secure_zero covers 128 bytes with 2 x 4 stores");
kiln_inline void kiln_secure_zero_16(uint8_t *p) { __builtin_memset(p, 0, 16); }
kiln_inline void kiln_secure_zero(kiln_block_t *block, size_t size) {
  uint8_t *start = (uint8_t *)block, *end = start + size;
  kiln_secure_zero_16(start);
  kiln_secure_zero_16(end - 16);
  if (size <= 32) return;
  kiln_secure_zero_16(start + 16);
  kiln_secure_zero_16(end - 32);
  if (size <= 64) return;
  kiln_secure_zero_16(start + 32);
  kiln_secure_zero_16(start + 48);
  kiln_secure_zero_16(end - 64);
  kiln_secure_zero_16(end - 48);
}

/* Zero a freed block if it is small enough (the hardened mode's every free
 * path: local, remote, generic). */
kiln_inline void kiln_secure_zero_freed(const kiln_page_t *page, kiln_block_t *block) {
  size_t size = page->block_size;
  if (size <= kiln_secure_zero_max) kiln_secure_zero(block, size);
}

/* A free whose block looks already free (kiln_secure_looks_free): search
 * the page's lists, report a double free or free the block (secure.c). */
void kiln_secure_free_suspect(kiln_page_t *page, kiln_block_t *block, bool owned);
/* Another thread's free of a block start on a keyed page (secure.c). */
void kiln_secure_free_remote(kiln_page_t *page, kiln_block_t *block);

/* The owner's free of a block start on a keyed page, once cleared: zero
 * it, then as the plain fast path (alloc.h) with the link encoded. */
kiln_inline void kiln_secure_free_local_checked(kiln_page_t *page, kiln_block_t *block) {
  kiln_secure_zero_freed(page, block);
  kiln_block_set_next(page, block, page->local_free);
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
