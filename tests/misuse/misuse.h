/* misuse.h — shared by the misuse programs (one bug class each).
 *
 * Each program commits its bug unless "clean" is among its arguments; then it
 * does the same work correctly and must run without any report.  It is built
 * twice (tests/misuse.cmake): linked with kiln_static, and plain, to run with
 * LD_PRELOAD=libkiln.so.  In the plain build the Kiln-only functions it calls
 * (first-class heaps, free_sized, which glibc may lack) are weak references,
 * resolved at load time by the preloaded library.
 *
 * Built with -O0 -g -fno-omit-frame-pointer so that the expected sites
 * (EXPECT lines, see run.sh) are exact.
 */
#ifndef KILN_MISUSE_H
#define KILN_MISUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Weak only in the plain build: a weak reference does not pull a member out
 * of a static library, so the linked build declares them normally. */
#ifdef KILN_MISUSE_LINKED
#define MISUSE_WEAK
#else
#define MISUSE_WEAK __attribute__((weak))
#endif
typedef struct kiln_heap_s kiln_heap_t;
kiln_heap_t *kiln_heap_new(void) MISUSE_WEAK;
void *kiln_heap_malloc(kiln_heap_t *heap, size_t size) MISUSE_WEAK;
void kiln_heap_destroy(kiln_heap_t *heap) MISUSE_WEAK;
void free_sized(void *p, size_t size) MISUSE_WEAK;
void free_aligned_sized(void *p, size_t alignment, size_t size) MISUSE_WEAK;

static inline bool has_arg(int argc, char **argv, const char *word) {
  for (int i = 1; i < argc; i++)
    if (strcmp(argv[i], word) == 0) return true;
  return false;
}

/* Keep the compiler from reasoning about a pointer (it may warn about, or
 * fold, a free of a stack or static address). */
static inline void *opaque(void *p) {
  void *volatile v = p;
  return v;
}

#endif
