/* ptr.h — every pointer trick of Kiln, each with the reason it is valid.
 *
 *   kiln_segment_of(p)        pointer -> its segment header, or NULL if Kiln
 *                             does not manage the address (one table load)
 *   kiln_segment_page_of(s,p) pointer -> the page metadata in its segment
 *   kiln_page_block_index(pg,p) pointer -> index of the block it starts, or a
 *                             value >= capacity if p starts no carved block
 *   kiln_thread_id()          a unique id of the calling thread, no syscall
 *
 * The segment map (segment_map.c) has two bits per 4 MiB chunk of the 47-bit
 * user address space (2^25 chunks, 8 MiB of zero-filled .bss that costs no
 * memory until written: only chunks that hold a segment touch their word):
 *   KILN_CHUNK_NONE   Kiln has no segment header for this chunk
 *   KILN_CHUNK_START  a segment header sits at the chunk's start
 *   KILN_CHUNK_PREV   a huge block aligned to >= 4 MiB starts here; its
 *                     segment header is at the start of the previous chunk
 * With it `free` of any pointer — Kiln's, another allocator's, the stack's —
 * is answered without dereferencing the pointer, so a foreign pointer can
 * never make Kiln read or write memory it does not own.
 */
#ifndef KILN_PTR_H
#define KILN_PTR_H

#include "internal.h"
#include "types.h"

#define KILN_ADDRESS_BITS 47
#define KILN_MAP_CHUNKS ((uintptr_t)1 << (KILN_ADDRESS_BITS - KILN_SEGMENT_SHIFT))
#define KILN_MAP_WORDS (KILN_MAP_CHUNKS / 32) /* 32 two-bit entries per 64-bit word */

enum { KILN_CHUNK_NONE = 0, KILN_CHUNK_START = 1, KILN_CHUNK_PREV = 2 };

extern _Atomic uint64_t kiln_segment_map[KILN_MAP_WORDS];

/* Record (or clear, with KILN_CHUNK_NONE) what chunk `chunk_addr` holds. */
void kiln_segment_map_set(uintptr_t chunk_addr, unsigned state);

kiln_inline unsigned kiln_segment_map_get(uintptr_t addr) {
  uintptr_t chunk = addr >> KILN_SEGMENT_SHIFT;
  if (kiln_unlikely(chunk >= KILN_MAP_CHUNKS)) return KILN_CHUNK_NONE;
  /* Relaxed is enough: a thread can only legitimately hold a pointer into a
   * segment after the allocation that produced it, which happened-after the
   * map entry was published (release in kiln_segment_map_set, and the pointer
   * reached this thread through some synchronisation of the program's). A
   * racing foreign pointer sees either state, both handled. */
  uint64_t word = atomic_load_explicit(&kiln_segment_map[chunk >> 5], memory_order_relaxed);
  return (unsigned)(word >> ((chunk & 31) * 2)) & 3u;
}

/* Why masking is valid: every segment starts at a multiple of
 * KILN_SEGMENT_SIZE, and a block's first byte lies in its segment's first
 * chunk (START) or, for a huge block aligned to >= 4 MiB, exactly at the
 * start of the chunk after the header (PREV); the map says which. */
kiln_inline kiln_segment_t *kiln_segment_of(const void *p) {
  uintptr_t addr = (uintptr_t)p;
  unsigned state = kiln_segment_map_get(addr);
  uintptr_t chunk_start = addr & ~(uintptr_t)KILN_SEGMENT_MASK;
  if (kiln_likely(state == KILN_CHUNK_START)) return (kiln_segment_t *)chunk_start;
  if (state == KILN_CHUNK_PREV) return (kiln_segment_t *)(chunk_start - KILN_SEGMENT_SIZE);
  return NULL;
}

/* Pages of a segment are 1 << page_shift bytes from the segment start (page 0
 * begins with the header).  Huge segments have page_shift 63: any in-segment
 * offset is < 2^63, so the index is 0.  Returns NULL for an offset past the
 * last page (only possible for a foreign pointer). */
kiln_inline kiln_page_t *kiln_segment_page_of(kiln_segment_t *segment, const void *p) {
  size_t index = ((uintptr_t)p - (uintptr_t)segment) >> segment->page_shift;
  if (kiln_unlikely(index >= segment->page_count)) return NULL;
  return &segment->pages[index];
}

/* Divisibility by a constant with one multiplication (Hacker's Delight,
 * 10-17; Granlund & Montgomery 1994).  Write block_size = 2^t * m, m odd, and
 * let inv be m's inverse modulo 2^64.  For an offset o:
 *   if block_size divides o, then o = q * 2^t * m, so o * inv = q * 2^t
 *   (mod 2^64) and rotating right by t gives exactly q;
 *   otherwise either a low bit below 2^t is set (the rotation moves it to the
 *   top, giving a value >= 2^(64-t) > any capacity) or m does not divide
 *   o >> t, and then (o >> t) * inv mod 2^64 > (2^64 - 1) / m >= capacity.
 * So "rotr(o * inv, t) < capacity" holds iff o is a multiple of block_size
 * below capacity * block_size: p starts a block that was carved.  An offset
 * below the page start wraps to a huge o and fails too. */
kiln_inline size_t kiln_page_block_index(const kiln_page_t *page, const void *p) {
  uint64_t offset = (uint64_t)((uintptr_t)p - (uintptr_t)page->start);
  uint64_t x = offset * page->div_inverse;
  unsigned t = page->div_shift;
  return (size_t)((x >> t) | (x << ((64 - t) & 63)));
}

/* The thread pointer (%fs:0 on x86-64, tpidr_el0 on AArch64) is distinct for
 * every live thread and costs one instruction; it is reused after a thread
 * exits, which is fine: a dead thread's segments are abandoned (owner 0)
 * before its thread pointer can be handed to a new thread. */
kiln_inline uintptr_t kiln_thread_id(void) {
  return (uintptr_t)__builtin_thread_pointer();
}

#endif /* KILN_PTR_H */
