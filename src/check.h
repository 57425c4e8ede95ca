/* check.h — hooks of the checking and hardened modes (KILN_CHECK and
 * KILN_SECURE, src/check.c and src/secure.c) into the core.  When both are
 * off, kiln_check_enabled() is one load of a flag that never changes after
 * start-up, tested only on slow paths: the checked pages carry a flag that
 * diverts their frees, and checking heaps keep their direct slots empty, so
 * the fast paths themselves test nothing (but a hardened page's key, which
 * shares the first cache line with its free list). */
#ifndef KILN_CHECK_H
#define KILN_CHECK_H

#include "internal.h"
#include "types.h"

extern kiln_shared bool kiln_check_mode;
/* The checking mode proper (every block recorded, KILN_CHECK): heaps keep
 * their direct slots empty so that every malloc reaches kiln_check_malloc.
 * The hardened mode alone keeps them: its pages are keyed instead. */
extern kiln_shared bool kiln_check_tracks_blocks;

/* page->flags.x.has_aligned on the checking mode's pages: the program's
 * pointer sits a front canary into its block, so kiln_page_block_of maps any
 * interior pointer to its block and kiln_check_free validates it. */
#define KILN_CHECK_ALIGNED_ANY 2
/* The checking mode's front canary for ordinary alignments: the program's
 * pointer is its block's start + this. */
#define KILN_CHECK_FRONT_DEFAULT 16

static inline bool kiln_check_enabled(void) { return __builtin_expect(kiln_check_mode, 0); }

/* The hardened mode alone changes nothing about a request of up to this
 * size with the default alignment: it never becomes a huge block (whose
 * guard page kiln_secure_malloc adds), and the keyed pop already cleared the
 * block's link word.  With OS pages of up to 64 KiB (every Linux port) the
 * bound is exact; with larger ones a few sizes would be served from large
 * pages instead of huge ones, which is just as safe. */
#define KILN_SECURE_PLAIN_MAX (KILN_LARGE_BLOCK_MAX - ((size_t)64 << 10))
/* Must a malloc of `size` (default alignment) go through kiln_check_malloc? */
static inline bool kiln_check_wants_malloc(size_t size) {
  return kiln_check_enabled() && (kiln_check_tracks_blocks || size > KILN_SECURE_PLAIN_MAX);
}

/* Read the options; called once at process start. */
void kiln_check_init(void);
/* Allocation with the checks (canary, bookkeeping of the call site). */
void *kiln_check_malloc(kiln_heap_t *heap, size_t size, size_t alignment, bool zero);
/* A page was set up / is about to be freed. */
void kiln_check_page_init(kiln_heap_t *heap, kiln_page_t *page);
void kiln_check_page_freed(kiln_page_t *page);
/* The core purges the memory of a free page, or of a whole free segment
 * (page NULL): the checking mode gives back its records of their blocks. */
void kiln_check_purged(kiln_segment_t *segment, kiln_page_t *page);
/* The free of block (p as the program passed it); false when the block must
 * not be freed now (quarantined, or the free was a reported bug). */
bool kiln_check_free(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size_hint,
                     size_t alignment_hint);
/* A detected misuse: `what` e.g. "invalid free"; aborts unless
 * KILN_ON_ERROR=report. */
void kiln_check_report(const char *what, const void *p, size_t size);
/* The usable size the program may rely on (the requested size in checking mode). */
size_t kiln_check_usable_size(kiln_page_t *page, kiln_block_t *block, size_t usable);
/* realloc within the block's usable size: update the recorded size and
 * canary; false if it must move. */
bool kiln_check_resize_in_place(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size);
/* realloc growing a block past its usable size without a copy (the
 * hardened mode's huge blocks, moving their guard); NULL: move it. */
void *kiln_check_grow(kiln_segment_t *segment, kiln_page_t *page, kiln_block_t *block, void *p, size_t size);
/* Leak report at exit. */
void kiln_check_at_exit(void);

#endif /* KILN_CHECK_H */
