/* secure.c — the hardened mode (KILN_SECURE=1, or the default with the CMake
 * option KILN_SECURE_DEFAULT).  Cheap defences that make heap corruption hard
 * to exploit, in the spirit of hardened_malloc and mimalloc's secure mode.
 * Each is listed with what it stops:
 *
 *   O(1) double-free detection.  A block on one of its page's free lists
 *     holds, in its first word, the link to the next free block encoded with
 *     the page's secret key (page.h); decoded, that is NULL or a block of the
 *     same page.  malloc clears the word, so a live block holds program data
 *     there, whose high half decodes to NULL's or to the block's own (the
 *     O(1) screen, kiln_secure_looks_free in secure.h) only by an accident
 *     of probability ~2^-31 (the key is random).  Only a block that passes
 *     the screen has the page's free lists searched, and if it is found
 *     there it is reported (mimalloc's secure mode does the same).
 *     Stops: double free (any thread, any size while the page lives), and so
 *     the classic "free twice, get the same block from two mallocs" overlap
 *     that turns a double free into a type confusion.  A double free after
 *     the block was handed out again is a valid free of the new block (as in
 *     every allocator); a huge block's mapping is gone at its first free, so
 *     its second free is an invalid free.
 *   Invalid free fails closed.  A pointer that starts no carved block (stack,
 *     static, another allocator's, interior, a destroyed heap's) aborts with a
 *     message instead of being ignored.  Stops: House-of-Spirit style frees
 *     of forged chunks.  (Free of Kiln-unknown pointers never touched Kiln's
 *     heap anyway, thanks to the segment map; now it is also not silent.)
 *   Randomised allocation order.  A page carves its blocks in batches of
 *     16 KiB (at least 4 blocks, at most 256; page.c), each linked in a
 *     random order instead of address order.  Stops: heap feng shui /
 *     grooming that relies on consecutive mallocs returning adjacent blocks
 *     (overflowing from a controlled block into a chosen victim).  The
 *     batches stay lazy, so a fresh page is not touched in full.
 *   Guard pages.  The last OS page of every segment is PROT_NONE (the last
 *     page of blocks gives up the room), so is the OS page between a
 *     segment's header and its first blocks (the first page gives it up),
 *     and a huge block has a PROT_NONE page right after its last page and
 *     one right before its first, between it and its header (huge.c).
 *     Stops: linear overflows running off the end of a segment into the
 *     next segment's header (page metadata), underflows running from the
 *     first blocks back into their own segment's header, overflows off the
 *     end of a huge block into whatever is mapped next, and underflows from
 *     a huge block into its header — they fault at once instead.
 *   Metadata out of line.  By design of the core: segment headers hold all
 *     page metadata, and a free block holds only its (encoded) `next` link.
 *     Stops: overflows that rewrite size/flags headers next to user data
 *     (the glibc unlink family).
 *   Zero on free: the first 32 bytes of every freed block (all of a
 *     smaller one; secure.h).  Stops: information leaks of freed secrets
 *     through uninitialised reads of a later block, and makes
 *     use-after-free reads of those bytes see zeros (a NULL function or
 *     vtable pointer crashes instead of jumping to attacker data).  The
 *     prefix is where structures keep their headers and pointers; the rest
 *     of a larger block is not zeroed: the cost would grow with the size
 *     (zeroing up to 1 KiB made larson 20 % slower; 64 bytes, 10 %).  Two
 *     16-byte stores, the same for every size, so the cost does not depend
 *     on the size and free takes no branch on it.  KILN_SECURE_ZERO=bytes
 *     shortens the prefix, 0 turns it off (kiln_secure_init).
 *   free_sized with a size larger than the block aborts.
 *
 *   Free-list links encoded with a per-page secret (the core: page->key,
 *     page.h); malloc checks each block it pops to be a block of the page
 *     before handing it out.  Stops: a link overwritten through a
 *     use after free or an overflow into a freed block steering malloc to an
 *     address of the attacker's choice (tcache/fastbin poisoning).
 *
 * How it hooks in: pages of a hardened heap have a key (page.h), which sends
 * the malloc fast path to kiln_page_pop_keyed (check the block, clear the
 * block's link word), and flags.x.checked, which sends every free out of the
 * plain fast path: the owner's frees of block starts on pages with no
 * other flag take kiln_secure_free_local (secure.h, inline in free), other
 * threads' frees of block starts kiln_secure_free_remote, the rest the
 * generic path to kiln_secure_free.  The hardened mode also sets
 * kiln_check_mode, so mallocs that miss the fast path and may become huge
 * reach kiln_secure_malloc (guards of huge blocks; check.h).
 */
#include <string.h>

#include "alloc.h"
#include "check_internal.h"
#include "heap.h"
#include "os.h"
#include "page.h"
#include "segment.h"

/* --- double free ----------------------------------------------------------------------
 * Is `block` on one of the page's free lists, or on its heap's delayed-free
 * list (a mark in the block: page.h)?  Only asked when its first word
 * decodes like a link.  Reads only this page's memory (every decoded
 * link is checked to be a carved block of the page before it is followed),
 * and at most `capacity` steps per list, so a list changed concurrently by
 * the owner (local_free, free) or another thread (thread_free) cannot send
 * the walk astray or loop it: at worst a racing double free goes unseen. */
static bool list_contains(const kiln_page_t *page, const kiln_block_t *list, const kiln_block_t *block) {
  uint16_t capacity = __atomic_load_n(&page->capacity, __ATOMIC_RELAXED);
  for (size_t steps = 0; list != NULL && steps <= capacity; steps++) {
    if (list == block) return true;
    if (kiln_page_block_index(page, list) >= capacity) return false;
    list = kiln_block_next(page, list);
  }
  return false;
}

static kiln_noinline bool on_free_lists(kiln_page_t *page, kiln_block_t *block) {
  /* First a block that waits on its heap's delayed-free list (another
   * thread freed it into a full page): it links to itself (page.h). */
  if (kiln_block_waits_delayed(page, block)) return true;
  uintptr_t tf = atomic_load_explicit(&page->xthread_free, memory_order_acquire);
  return list_contains(page, __atomic_load_n(&page->free, __ATOMIC_RELAXED), block) ||
         list_contains(page, __atomic_load_n(&page->local_free, __ATOMIC_RELAXED), block) ||
         list_contains(page, kiln_thread_free_ptr(tf), block);
}

kiln_inline bool is_free_block(kiln_page_t *page, kiln_block_t *block) {
  return kiln_unlikely(kiln_secure_looks_free(page, block)) && on_free_lists(page, block);
}

/* --- huge blocks: a guard page after the block --------------------------------------
 * The hardened mode asks the core for one page more than the program did,
 * and turns the block's last page into a PROT_NONE guard, right after the
 * page holding the last byte asked for; block_size then stops at the guard
 * (usable sizes and kiln_usable_size exclude it).  segment->guard_offset
 * remembers it, and it stays in place when the block is freed and its
 * mapping waits in the huge cache: a later block of the same page count
 * finds its guard already there (mprotect, which takes the process's mmap
 * lock and flushes TLBs, was most of the hardened mode's cost on
 * realloc-growth).  The core drops a kept guard that would lie inside a new
 * or grown block (huge.c); one in the mapping's slack, past the block, is
 * moved by the next huge_guard.
 *
 * A block that realloc grows gets headroom: its usable size runs 1/8 past
 * the bytes asked for (rounded to pages), and the guard sits after that.
 * Buffers grown a few bytes at a time then move the guard once per eighth
 * of growth instead of at every page they cross (two mprotect calls each:
 * 1973 calls in 300k operations of realloc-growth).  The headroom is the
 * block's own room, like the rounding of a size class: an overflow past the
 * bytes asked for but inside it corrupts nothing else, and one past it
 * faults at the guard; the checking mode's canaries catch the former. */
static size_t huge_headroom(size_t size) { return kiln_align_up(size / 8, kiln_os_page_size()); }

/* The core's block (block_size as huge.c set it, the guard page included)
 * holds the bytes asked for and their guard.  If it has no page to spare
 * (a block the core sized without the extra page), there is no guard.
 * new_block: a block kiln_secure_malloc just got, whose mapping may come
 * from the huge cache (see inside). */
static void huge_guard(kiln_segment_t *segment, kiln_page_t *page, uint8_t *p, size_t size, bool new_block) {
  size_t page_size = kiln_os_page_size();
  /* At least one usable byte: a 0-byte block keeps its address to itself. */
  uint8_t *want = (uint8_t *)kiln_align_up((uintptr_t)p + (size ? size : 1), page_size);
  if (want + page_size > page->start + page->block_size) want = NULL; /* no room: no guard */
  uint8_t *have = segment->guard_offset != 0 ? (uint8_t *)segment + segment->guard_offset : NULL;
  bool past_block = false; /* the guard lies in the mapping's slack, past the core's block */
  if (new_block && want != NULL) {
    /* A mapping from the huge cache may run on past the core's block (its
     * slack, kept for a later, larger block).  The guard then goes to, or
     * stays at, the mapping's last page: an overflow runs through the
     * slack, which holds nothing, before it faults, and every later block
     * that fits the mapping finds the guard already in place (moving it
     * took two mprotect calls at most reuses: 540 of large-blocks' 690). */
    uint8_t *block_end = page->start + page->block_size;
    uint8_t *last = (uint8_t *)segment + segment->mapped_size - page_size;
    bool kept_past = have != NULL && have > block_end;
    past_block = kept_past || last > block_end;
    if (past_block) want = kept_past ? have : last;
  }
  if (have != want) {
    if (have != NULL) kiln_os_unprotect(have, page_size);
    if (want != NULL) kiln_os_protect(want, page_size);
    segment->guard_offset = want != NULL ? (size_t)(want - (uint8_t *)segment) : 0;
  }
  if (want != NULL && !past_block) page->block_size = (size_t)(want - page->start);
}

/* Before the core frees, resizes or moves the block: block_size goes back
 * to the core's (the guard page right after the block is part of it), which
 * its statistics subtract.  The guard stays (see above). */
static void huge_release(kiln_segment_t *segment, kiln_page_t *page) {
  if (segment->guard_offset != 0 && (uint8_t *)segment + segment->guard_offset == page->start + page->block_size)
    page->block_size += kiln_os_page_size();
}

/* Before the core shrinks the block: no guard left in the mapping. */
static void huge_unguard(kiln_segment_t *segment, kiln_page_t *page) {
  huge_release(segment, page);
  kiln_huge_drop_guard(segment);
}

/* --- the hooks ----------------------------------------------------------------------- */
size_t kiln_secure_zero_bytes = KILN_SECURE_ZERO_MAX;

void kiln_secure_init(void) {
  unsigned long long zero = (unsigned long long)kiln_option(KILN_OPTION_SECURE_ZERO);
  /* Whole 16-byte stores: a bound between two multiples of 16 rounds down. */
  kiln_secure_zero_bytes = (zero < KILN_SECURE_ZERO_MAX ? (size_t)zero : KILN_SECURE_ZERO_MAX) & ~(size_t)15;
  kiln_huge_use_front_guards();
}

/* The second store of kiln_secure_zero_freed: at the last 16 bytes of the
 * prefix, so the two cover [0, prefix) and never pass it (block sizes are
 * multiples of 16, at least 16: size_class.c). */
static void zero_offset_set(kiln_page_t *page) {
  size_t prefix = page->block_size < kiln_secure_zero_bytes ? page->block_size : kiln_secure_zero_bytes;
  page->zero_offset = (uint8_t)(prefix >= 16 ? prefix - 16 : 0);
}

void *kiln_secure_malloc(kiln_heap_t *heap, size_t size, size_t alignment, bool zero) {
  /* (heap.c sends plain requests this small straight to the core.) */
  if (kiln_likely(size <= KILN_SECURE_PLAIN_MAX && alignment <= 16))
    return kiln_heap_malloc_core(heap, size, zero);
  size_t page_size = kiln_os_page_size();
  /* A request that will be huge gets one more page, for the guard. */
  size_t request = size;
  if (size > KILN_LARGE_BLOCK_MAX - page_size && size <= KILN_MAX_ALLOC_SIZE - page_size) request += page_size;
  uint8_t *p = alignment <= 16 ? kiln_heap_malloc_core(heap, request, zero)
                               : kiln_heap_malloc_aligned_core(heap, request, alignment, zero);
  if (p == NULL) return NULL;
  /* A block of a keyed page had its link word cleared by the pop
   * (kiln_page_pop_keyed); a huge block gets its guard. */
  if (request + alignment <= KILN_LARGE_BLOCK_MAX) return p; /* not huge */
  kiln_segment_t *segment = kiln_segment_of(p);
  if (segment->kind == KILN_SEGMENT_HUGE) huge_guard(segment, &segment->pages[0], p, size, true);
  return p;
}

static kiln_cold void report_double_free(const void *p, size_t usable) {
  kiln_report_begin();
  kiln_message("kiln: double free of %p (%zu-byte block, already free)", p, usable);
  kiln_report_end();
}

kiln_inline void free_remote_checked(kiln_page_t *page, kiln_block_t *block) {
  kiln_secure_zero_freed(page, block);
  kiln_free_remote(page, block);
}

/* The block's first word looks like a link: search the lists. */
void kiln_secure_free_suspect(kiln_page_t *page, kiln_block_t *block, bool owned) {
  if (on_free_lists(page, block)) report_double_free(block, page->block_size);
  else if (owned) kiln_secure_free_local_checked(page, block);
  else free_remote_checked(page, block);
}

/* Every call here is a tail call, so it needs no stack frame. */
void kiln_secure_free_remote(kiln_page_t *page, kiln_block_t *block) {
  if (kiln_unlikely(kiln_secure_looks_free(page, block))) kiln_secure_free_suspect(page, block, false);
  else free_remote_checked(page, block);
}

bool kiln_secure_free(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size_hint,
                      size_t alignment_hint) {
  (void)alignment_hint;
  size_t usable = page->block_size - (size_t)((const uint8_t *)p - (const uint8_t *)block);
  if (page->bin != KILN_BIN_HUGE && page->key != 0 && is_free_block(page, block)) {
    report_double_free(p, usable);
    return false;
  }
  if (size_hint > usable) {
    kiln_report_begin();
    kiln_message("kiln: free_sized size mismatch on %p (%zu-byte block): freed with size %zu", p, usable, size_hint);
    kiln_report_end();
  }
  if (page->bin == KILN_BIN_HUGE) {
    huge_release(kiln_segment_of(block), page);
  } else {
    kiln_secure_zero_freed(page, block);
  }
  return true;
}

bool kiln_secure_resize_in_place(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size) {
  /* Called with size <= the usable size.  A huge block shrinks in place and
   * gives its tail back as in the fast mode (kiln_huge_resize, keeping a
   * page for the guard, which moves down with the end); others follow the
   * core's rule: stay unless more than half would be wasted. */
  size_t usable = page->block_size - (size_t)((const uint8_t *)p - (const uint8_t *)block);
  if (page->bin != KILN_BIN_HUGE) return size >= usable / 2;
  kiln_segment_t *segment = kiln_segment_of(p);
  /* The new end before the guard, and the guard within the new size's
   * headroom: nothing to do (a buffer grown by a few bytes at a time, inside
   * the headroom of its last growth).  Otherwise the block shrinks to its
   * new end and the guard follows it down. */
  uint8_t *end = (uint8_t *)kiln_align_up((uintptr_t)p + (size ? size : 1), kiln_os_page_size());
  uint8_t *guard = segment->guard_offset != 0 ? (uint8_t *)segment + segment->guard_offset : NULL;
  if (guard != NULL && end <= guard && guard <= end + huge_headroom(size)) return true;
  huge_unguard(segment, page);
  kiln_huge_resize(segment, (void *)p, size + kiln_os_page_size());
  huge_guard(segment, page, (uint8_t *)p, size, false);
  return true;
}

/* realloc past the usable size: a huge block grows like in the fast mode
 * (within its mapping, or by moving its pages with mremap), with headroom
 * (see above) if there is memory for it, and its guard moves to the new
 * end.  NULL (the block unchanged) when it cannot. */
void *kiln_secure_grow(kiln_segment_t *segment, kiln_page_t *page, void *p, size_t size) {
  size_t page_size = kiln_os_page_size();
  if (segment->kind != KILN_SEGMENT_HUGE || (uint8_t *)p != page->start || size > KILN_MAX_ALLOC_SIZE - page_size)
    return NULL; /* (an over-aligned huge block starts inside its page: it moves) */
  size_t old_usable = page->block_size;
  size_t room = huge_headroom(size);
  if (room > KILN_MAX_ALLOC_SIZE - page_size - size) room = 0;
  /* The core grows the block into its slack (dropping the guard, now inside
   * it) or moves it; the guard then goes after the new end. */
  huge_release(segment, page);
  uint8_t *grown = kiln_huge_grow(segment, p, size + room + page_size);
  if (grown == NULL && room != 0) {
    room = 0;
    grown = kiln_huge_grow(segment, p, size + page_size);
  }
  if (grown == NULL) {
    huge_guard(segment, page, p, old_usable, false);
    return NULL;
  }
  kiln_segment_t *moved = kiln_segment_of(grown);
  huge_guard(moved, &moved->pages[0], grown, size + room, false);
  return grown;
}

/* Fresh page: its zeroing offsets, and the segment's guards if this is its
 * first or last page (before the core carves the first batch;
 * kiln_page_extend shuffles it).  The first page's blocks start one OS page
 * after the header, behind a guard; the last page's stop before the
 * segment's last OS page, a guard.  The page's area (segment.c) still
 * counts the guards: decommitting them is harmless, and accounting stays
 * the same in every mode.  A guard stays for the segment's life (the mode
 * is the process's), so mprotect runs again only when the page is set up
 * again, on a page that had been freed. */
void kiln_secure_page_init(kiln_heap_t *heap, kiln_page_t *page) {
  (void)heap;
  zero_offset_set(page);
  kiln_segment_t *segment = kiln_segment_of(page);
  size_t page_size = kiln_os_page_size();
  bool first = page->page_index == 0, last = page->page_index == segment->page_count - 1;
  if (!first && !last) return;
  /* The blocks lie in [start, end): the area minus the guards. */
  uint8_t *end = (uint8_t *)segment + ((size_t)(page->page_index + 1) << segment->page_shift);
  if (first) {
    uint8_t *guard = kiln_segment_front_guard(segment);
    kiln_os_protect(guard, page_size);
    page->start = guard + page_size;
  }
  if (last) {
    end -= page_size;
    kiln_os_protect(end, page_size);
  }
  size_t fit = (size_t)(end - page->start) / page->block_size;
  if (fit < page->reserved) page->reserved = (uint16_t)fit;
}

void kiln_secure_page_freed(kiln_page_t *page) {
  /* A huge block of a destroyed heap: as at its free. */
  if (page->used > 0 && page->bin == KILN_BIN_HUGE) huge_release(kiln_segment_of(page->start), page);
}
