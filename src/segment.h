/* segment.h — segments and the pages they hand to heaps (src/segment.c),
 * huge blocks (src/huge.c), and the segment map (src/segment_map.c). */
#ifndef KILN_SEGMENT_H
#define KILN_SEGMENT_H

#include "ptr.h"
#include "types.h"

/* The page kind that holds blocks of a bin. */
static inline kiln_segment_kind_t kiln_bin_segment_kind(unsigned bin) {
  size_t size = kiln_bin_size[bin];
  if (size <= KILN_SMALL_BLOCK_MAX) return KILN_SEGMENT_SMALL;
  if (size <= KILN_MEDIUM_BLOCK_MAX) return KILN_SEGMENT_MEDIUM;
  return KILN_SEGMENT_LARGE;
}

/* A free page of `kind` for the tld (reclaiming an abandoned segment, taking
 * one from the cache or mapping a new one as needed); NULL on out of memory
 * (errno ENOMEM).  The page comes back with segment_in_use set, its area
 * committed, and everything else zeroed. */
kiln_page_t *kiln_segment_page_alloc(kiln_tld_t *tld, kiln_segment_kind_t kind);
/* Give a page whose blocks are all free back to its segment (owner only). */
void kiln_segment_page_free(kiln_tld_t *tld, kiln_page_t *page);
/* The page's block area: [*start, *start + *size). */
uint8_t *kiln_segment_page_area(kiln_segment_t *segment, kiln_page_t *page, size_t *size);
/* The hardened mode's guard page in front of page 0's blocks (secure.c).
 * Segments change kind through the segment cache, so the guard sits at one
 * place for every kind: right after the largest header (small segments',
 * which have the most pages), where no kind's header reaches when
 * segment_init writes it. */
uint8_t *kiln_segment_front_guard(kiln_segment_t *segment);

/* The thread is exiting and `page` still has live blocks: hand it over. */
void kiln_segment_page_abandon(kiln_tld_t *tld, kiln_page_t *page);
/* Take over abandoned segments into `heap` (at most `max`; SIZE_MAX for all). */
size_t kiln_segment_reclaim(kiln_heap_t *heap, size_t max);

/* Hand back to the OS the free pages whose purge delay has passed (all of
 * them with force), and expire cached segments. Owner only. */
void kiln_segment_purge(kiln_tld_t *tld, bool force);
/* Unmap every cached empty segment and huge mapping (kiln_collect(true)). */
void kiln_segment_cache_clear(void);

/* Whether p lies in a huge segment (kiln_owns' slow path). */
bool kiln_segment_contains_slow(const void *p);

/* Huge segments join the process-wide list (stats, leak reports). */
void kiln_segment_register_huge(kiln_segment_t *segment);
void kiln_segment_unregister_huge(kiln_segment_t *segment);

/* Huge blocks (huge.c): a dedicated segment per block. */
/* `owner`: the heap allocating; a first-class heap keeps a list of its huge
 * blocks so that destroy/reset release them. */
void *kiln_huge_alloc(kiln_heap_t *owner, size_t size, size_t alignment, bool zero);
/* Detach the heap's huge blocks; free them too with free_blocks (destroy,
 * reset), or leave them to the program (thread exit). */
void kiln_heap_huge_release_all(kiln_heap_t *heap, bool free_blocks);
void kiln_huge_free(kiln_segment_t *segment);
/* Make the hardened mode's guard page of the mapping (segment->guard_offset,
 * secure.c) accessible again and forget it. */
void kiln_huge_drop_guard(kiln_segment_t *segment);
/* The hardened mode (kiln_secure_init, before the first block): every huge
 * block gets a guard page between its header and itself (huge.c). */
void kiln_huge_use_front_guards(void);
/* Grow or shrink in place within the mapping; false if it does not fit. */
bool kiln_huge_resize(kiln_segment_t *segment, void *p, size_t size);
/* Grow a huge block by moving its pages; the new address or NULL. */
void *kiln_huge_grow(kiln_segment_t *segment, void *p, size_t size);
/* Unmap cached huge mappings older than the purge delay (all with force). */
void kiln_huge_cache_purge(bool force);
void kiln_huge_cache_clear(void);
void kiln_huge_cache_lock(void);
void kiln_huge_cache_unlock(void);

/* The process-wide lock of segment lists (abandoned list, caches, all
 * segments); fork handlers take it. */
void kiln_segment_lock(void);
void kiln_segment_unlock(void);

/* Visit every segment (stats, leak reports); holds the segment lock. */
typedef void kiln_segment_visitor(kiln_segment_t *segment, void *arg);
void kiln_segment_visit_all(kiln_segment_visitor *visit, void *arg);


#endif /* KILN_SEGMENT_H */
