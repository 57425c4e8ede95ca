/* free.h — the paths of free that leave the inline fast path (src/free.c). */
#ifndef KILN_FREE_H
#define KILN_FREE_H

#include "types.h"

void kiln_free_generic(kiln_segment_t *segment, kiln_page_t *page, void *p);
void kiln_free_not_ours(void *p);
/* free of NULL, of a foreign pointer or of a >4 MiB-aligned huge block. */
void kiln_free_rare(void *p);
void kiln_free_retire(kiln_page_t *page);
/* Release a block (its start) without any check: local, remote or huge. */
void kiln_free_block(kiln_segment_t *segment, kiln_page_t *page, kiln_block_t *block);
/* Free a block of a page the calling thread owns (any flags). */
void kiln_free_local(kiln_heap_t *heap, kiln_page_t *page, kiln_block_t *block);
/* Free a block of a page another thread owns (or an abandoned page). */
void kiln_free_remote(kiln_page_t *page, kiln_block_t *block);
/* The start of the block that contains p, or NULL if p is not in a carved
 * block of the page. */
kiln_block_t *kiln_page_block_of(kiln_page_t *page, const void *p);

#endif /* KILN_FREE_H */
