/* size_class.h — request size -> bin -> block size.
 *
 * The classes (one table in size_class.c, checked against this formula by
 * tests/test_size_class.c for every size up to the largest class):
 *   - 16 .. 128 bytes in steps of 16 (bins 1..8): the 16-byte alignment every
 *     block needs makes a finer step impossible; waste is < 16 bytes.
 *   - above 128: eight classes per power of two, 2^k + j * 2^(k-3), j = 1..8,
 *     up to 256 KiB (bins 9..96).  A request of n > 128 bytes gets a block of
 *     at most n + n/8 bytes: internal waste <= 12.5 % of the request.
 *   - above 256 KiB: huge, a dedicated mapping rounded to the OS page (with a
 *     cache, and realloc growing it by moving pages).  Why not larger
 *     classes: a page of one class spans a whole 4 MiB segment there, and a
 *     few live blocks of many such classes hold much more memory than they
 *     use (the realloc benchmark's peak RSS was 1.8x mimalloc's with
 *     classes to 1 MiB).
 * Every class size is a multiple of 16 (for k >= 7, 2^(k-3) >= 16), so blocks
 * carved at multiples of the size from a 16-aligned start are 16-aligned.
 */
#ifndef KILN_SIZE_CLASS_H
#define KILN_SIZE_CLASS_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

#define KILN_BIN_MAX 96                   /* the last regular bin (256 KiB blocks) */
#define KILN_BIN_COUNT (KILN_BIN_MAX + 1) /* bins 0..KILN_BIN_MAX; 0 is unused */
#define KILN_BIN_HUGE (KILN_BIN_MAX + 1)  /* marker for huge pages */
#define KILN_SMALL_BLOCK_MAX ((size_t)8 << 10)   /* blocks <= this live in small pages */
#define KILN_MEDIUM_BLOCK_MAX ((size_t)64 << 10) /* <= this in medium pages */
#define KILN_LARGE_BLOCK_MAX ((size_t)256 << 10) /* <= this in large pages; above: huge */

/* Block size of each bin (size_class.c). */
extern kiln_shared const uint32_t kiln_bin_size[KILN_BIN_COUNT];

/* The bin for a request of `size` bytes, 0 < size <= KILN_LARGE_BLOCK_MAX
 * (callers map 0 to 1).  The formula the table is checked against. */
static inline unsigned kiln_bin_of(size_t size) {
  if (size <= 128) return (unsigned)((size + 15) >> 4);
  size_t w = size - 1;
  unsigned top = 63u - (unsigned)__builtin_clzll(w); /* 2^top <= w < 2^(top+1), top >= 7 */
  return 8u + (top - 7u) * 8u + (unsigned)((w >> (top - 3)) & 7u) + 1u;
}

#endif /* KILN_SIZE_CLASS_H */
