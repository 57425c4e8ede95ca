/* size_class.c — the one table of block sizes (see size_class.h). */
#include "size_class.h"

/* Eight classes per doubling from 2^k (k >= 7): 2^k + j*2^(k-3), j = 1..8. */
#define KILN_DOUBLING(k)                                                         \
  (1u << (k)) + 1u * (1u << ((k)-3)), (1u << (k)) + 2u * (1u << ((k)-3)),        \
      (1u << (k)) + 3u * (1u << ((k)-3)), (1u << (k)) + 4u * (1u << ((k)-3)),    \
      (1u << (k)) + 5u * (1u << ((k)-3)), (1u << (k)) + 6u * (1u << ((k)-3)),    \
      (1u << (k)) + 7u * (1u << ((k)-3)), (1u << (k)) + 8u * (1u << ((k)-3))

const uint32_t kiln_bin_size[KILN_BIN_COUNT] = {
  0, /* bin 0: unused (malloc(0) is served by bin 1) */
  16, 32, 48, 64, 80, 96, 112, 128,
  KILN_DOUBLING(7),  KILN_DOUBLING(8),  KILN_DOUBLING(9),  KILN_DOUBLING(10),
  KILN_DOUBLING(11), KILN_DOUBLING(12), KILN_DOUBLING(13), KILN_DOUBLING(14),
  KILN_DOUBLING(15), KILN_DOUBLING(16), KILN_DOUBLING(17),
};
_Static_assert(sizeof kiln_bin_size / sizeof kiln_bin_size[0] == KILN_BIN_COUNT, "bin table length");
