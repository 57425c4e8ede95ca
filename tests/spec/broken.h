/* broken.h — deliberately wrong allocators, to prove the spec's checks fail.
 *
 * Each is a toy bump allocator (its own mmap'd region, never Kiln) that is
 * correct except for one planted bug.  tests/test_spec.c runs the driver
 * against each and asserts the expected check fires and the shrinker cuts
 * the sequence down to a handful of operations; `spec_long --broken NAME`
 * shows the same by hand.
 */
#ifndef KILN_SPEC_BROKEN_H
#define KILN_SPEC_BROKEN_H

#include "model.h"

typedef enum spec_broken_e {
  SPEC_BROKEN_NONE,    /* the toy with no bug: the checks must all pass */
  SPEC_BROKEN_OVERLAP, /* malloc of 33..48 bytes advances the bump by 16: blocks overlap */
  SPEC_BROKEN_REALLOC, /* realloc that moves the block forgets to copy byte 0 */
  SPEC_BROKEN_ERRNO,   /* calloc overflow returns NULL without setting errno */
  SPEC_BROKEN_ZERO,    /* calloc leaves the last byte of blocks >= 64 bytes non-zero */
  SPEC_BROKEN_OUT,     /* a failing posix_memalign stores NULL in *out */
  SPEC_BROKEN_ALIGN,   /* aligned_alloc ignores alignments above 64 */
  SPEC_BROKEN_COUNT
} spec_broken_t;

const spec_api_t *spec_broken_api(spec_broken_t bug);
/* The check that must catch the bug. */
spec_failure_t spec_broken_expected(spec_broken_t bug);
const char *spec_broken_name(spec_broken_t bug);
/* SPEC_BROKEN_COUNT if `name` names none. */
spec_broken_t spec_broken_parse(const char *name);

#endif /* KILN_SPEC_BROKEN_H */
