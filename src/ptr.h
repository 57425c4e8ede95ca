/* ptr.h — every pointer trick of Kiln, each with the reason it is valid.
 *
 *   kiln_segment_of(p)        pointer -> its segment header, or NULL if Kiln
 *                             does not manage the address (one table load)
 *   kiln_segment_page_of(s,p) pointer -> the page metadata in its segment
 *   kiln_page_block_index(pg,p) pointer -> index of the block it starts, or a
 *                             value >= capacity if p starts no carved block
 *   kiln_thread_id()          a unique id of the calling thread, no syscall
 *   kiln_word_high_half(w)    bits 32-63 of the 64-bit word at w, by a
 *                             4-byte load
 *
 * The segment map (segment_map.c) has two bitmaps over the 4 MiB chunks of
 * the 47-bit user address space (2^25 chunks, 4 MiB of zero-filled .bss
 * each, which cost no memory until written: only words of chunks that hold
 * a segment are ever touched):
 *   start map  a segment header sits at the chunk's start
 *   prev map   a huge block aligned to >= 4 MiB starts at this chunk; its
 *              segment header is at the start of the previous chunk
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
#define KILN_MAP_WORDS (KILN_MAP_CHUNKS / 64)

enum kiln_chunk_e { KILN_CHUNK_NONE = 0, KILN_CHUNK_START = 1, KILN_CHUNK_PREV = 2 };

extern kiln_shared _Atomic uint64_t kiln_segment_start_map[KILN_MAP_WORDS];
extern kiln_shared _Atomic uint64_t kiln_segment_prev_map[KILN_MAP_WORDS];

/* Record (or clear, with KILN_CHUNK_NONE) what the chunk at `chunk_addr` holds. */
void kiln_segment_map_set(uintptr_t chunk_addr, enum kiln_chunk_e state);
/* The rare cases of kiln_segment_of: PREV chunks and foreign pointers. */
kiln_segment_t *kiln_segment_of_slow(uintptr_t addr);

/* Relaxed loads are enough: a thread can only legitimately hold a pointer
 * into a segment after the allocation that produced it, which happened after
 * the map bit was published (release in kiln_segment_map_set), and the
 * pointer reached this thread through some synchronisation of the program's.
 * A racing foreign pointer sees either state, both handled. */
kiln_inline bool kiln_map_test(_Atomic uint64_t *map, uintptr_t chunk) {
  uint64_t word = atomic_load_explicit(&map[chunk >> 6], memory_order_relaxed);
  return (word >> (chunk & 63)) & 1u;
}

/* Why masking is valid: every segment starts at a multiple of
 * KILN_SEGMENT_SIZE, and a block's first byte lies in its segment's first
 * chunk (start map) or, for a huge block aligned to >= 4 MiB, exactly at the
 * start of the chunk after the header (prev map). */
kiln_inline kiln_segment_t *kiln_segment_of(const void *p) {
  uintptr_t addr = (uintptr_t)p;
  uintptr_t chunk = addr >> KILN_SEGMENT_SHIFT;
  if (kiln_likely(chunk < KILN_MAP_CHUNKS && kiln_map_test(kiln_segment_start_map, chunk)))
    return (kiln_segment_t *)(addr & ~(uintptr_t)KILN_SEGMENT_MASK);
  return kiln_segment_of_slow(addr);
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

/* The same for a pointer kiln_segment_of accepted: then the index is always
 * in range (START chunk: p - segment < 4 MiB, so the index is below
 * 4 MiB >> page_shift == page_count; huge segments: page_shift 63 gives 0),
 * and the fast path skips the test. */
kiln_inline kiln_page_t *kiln_segment_page_of_valid(kiln_segment_t *segment, const void *p) {
  return &segment->pages[((uintptr_t)p - (uintptr_t)segment) >> segment->page_shift];
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

/* Whether p starts a block the page has carved (see above).  Any thread may
 * ask: capacity is read relaxed, as the owner raises it while extending the
 * page (kiln_page_extend), and any value read is one the page has had. */
kiln_inline bool kiln_page_carved(const kiln_page_t *page, const void *p) {
  return kiln_page_block_index(page, p) < __atomic_load_n(&page->capacity, __ATOMIC_RELAXED);
}

/* The thread pointer (%fs:0 on x86-64, tpidr_el0 on AArch64) is distinct for
 * every live thread and costs one instruction; it is reused after a thread
 * exits, which is fine: a dead thread's segments are abandoned (owner 0)
 * before its thread pointer can be handed to a new thread. */
kiln_inline uintptr_t kiln_thread_id(void) {
  return (uintptr_t)__builtin_thread_pointer();
}

/* The upper 32 bits of the 64-bit word at `word`, read with a 4-byte load
 * of the half that holds them (byte 4 on a little-endian machine, byte 0 on
 * a big-endian one).  Valid for any 8-byte aligned word Kiln may read (a
 * block's first word, a page field); memcpy, because the half is not an
 * object of its own (no aliasing question), and compilers make it one load.
 * Why a half: a load wider than the program's last store to the same bytes
 * cannot take its value from the store buffer and waits until that store
 * reaches the cache (store-to-load forwarding; Intel's and AMD's optimization
 * manuals).  Programs often write a block's first bytes just before they
 * free it (simple writes one byte at p[0]); a load of bytes 4-7 does not
 * overlap a write of bytes 0-3 and is served by a write of all eight. */
_Static_assert(sizeof(uint64_t) == 8 && sizeof(uintptr_t) == 8, "Kiln needs 64-bit words");
kiln_inline uint32_t kiln_word_high_half(const void *word) {
  uint32_t half;
  __builtin_memcpy(&half, (const char *)word + (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? 4 : 0), 4);
  return half;
}

#endif /* KILN_PTR_H */
