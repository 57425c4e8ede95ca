/* segment_map.c — which 4 MiB chunks of the address space hold Kiln
 * segments (see ptr.h for the two bitmaps and why they make free() safe). */
#include "ptr.h"

/* 4 MiB of .bss each: zero pages cost nothing until a segment's bit is set. */
_Atomic uint64_t kiln_segment_start_map[KILN_MAP_WORDS];
_Atomic uint64_t kiln_segment_prev_map[KILN_MAP_WORDS];

void kiln_segment_map_set(uintptr_t chunk_addr, enum kiln_chunk_e state) {
  uintptr_t chunk = chunk_addr >> KILN_SEGMENT_SHIFT;
  if (chunk >= KILN_MAP_CHUNKS)
    kiln_fatal("kiln: the OS returned memory at %p, above the %d-bit address range Kiln maps",
               (void *)chunk_addr, KILN_ADDRESS_BITS);
  uint64_t bit = (uint64_t)1 << (chunk & 63);
  /* Atomic read-modify-write: other chunks of the same word change
   * concurrently (other threads' segments).  Release: whoever later sees the
   * bit also sees the segment header written before it. */
  atomic_fetch_and_explicit(&kiln_segment_start_map[chunk >> 6], ~bit, memory_order_release);
  atomic_fetch_and_explicit(&kiln_segment_prev_map[chunk >> 6], ~bit, memory_order_release);
  if (state == KILN_CHUNK_START)
    atomic_fetch_or_explicit(&kiln_segment_start_map[chunk >> 6], bit, memory_order_release);
  else if (state == KILN_CHUNK_PREV)
    atomic_fetch_or_explicit(&kiln_segment_prev_map[chunk >> 6], bit, memory_order_release);
}

kiln_segment_t *kiln_segment_of_slow(uintptr_t addr) {
  uintptr_t chunk = addr >> KILN_SEGMENT_SHIFT;
  if (chunk >= KILN_MAP_CHUNKS || !kiln_map_test(kiln_segment_prev_map, chunk)) return NULL;
  return (kiln_segment_t *)((addr & ~(uintptr_t)KILN_SEGMENT_MASK) - KILN_SEGMENT_SIZE);
}
