/* segment_map.c — which 4 MiB chunks of the address space hold Kiln
 * segments (see ptr.h for the encoding and why it makes free() safe). */
#include "ptr.h"

/* 8 MiB of .bss: zero pages cost nothing until a segment's word is set. */
_Atomic uint64_t kiln_segment_map[KILN_MAP_WORDS];

void kiln_segment_map_set(uintptr_t chunk_addr, unsigned state) {
  uintptr_t chunk = chunk_addr >> KILN_SEGMENT_SHIFT;
  if (chunk >= KILN_MAP_CHUNKS)
    kiln_fatal("kiln: the OS returned memory at %p, above the %d-bit address range Kiln maps",
               (void *)chunk_addr, KILN_ADDRESS_BITS);
  unsigned shift = (unsigned)(chunk & 31) * 2;
  _Atomic uint64_t *word = &kiln_segment_map[chunk >> 5];
  /* fetch_and then fetch_or: other chunks of the same word may change
   * concurrently (other threads' segments), so a plain store would lose
   * their bits.  Release: whoever later sees the entry also sees the
   * segment header written before it. */
  atomic_fetch_and_explicit(word, ~((uint64_t)3 << shift), memory_order_release);
  if (state != KILN_CHUNK_NONE)
    atomic_fetch_or_explicit(word, (uint64_t)state << shift, memory_order_release);
}
