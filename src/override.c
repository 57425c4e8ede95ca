/* override.c — the C library's allocator names, so that linking libkiln or
 * LD_PRELOADing it replaces malloc everywhere in the process.
 *
 * Only built with KILN_OVERRIDE (the default; the sanitizer builds turn it
 * off because the sanitizer runtime owns malloc there).  malloc and free
 * compile the inline fast paths directly; the rest forward to kiln_*.
 * Also exported: glibc's __libc_* aliases (some programs and libraries call
 * them to reach "the real malloc"), malloc_usable_size, mallopt, and the
 * glibc statistics calls (malloc_trim, malloc_stats, mallinfo, mallinfo2).
 */
#ifdef KILN_OVERRIDE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>

#include "alloc.h"

#define KILN_PUBLIC __attribute__((visibility("default")))

KILN_PUBLIC kiln_hot_entry void *malloc(size_t size) { return kiln_malloc_inline(size); }
KILN_PUBLIC kiln_hot_entry void free(void *p) { kiln_free_inline(p); }
KILN_PUBLIC void *calloc(size_t count, size_t size) { return kiln_calloc(count, size); }
KILN_PUBLIC void *realloc(void *p, size_t size) { return kiln_realloc(p, size); }
KILN_PUBLIC void *reallocarray(void *p, size_t count, size_t size) { return kiln_reallocarray(p, count, size); }
KILN_PUBLIC void *aligned_alloc(size_t alignment, size_t size) { return kiln_aligned_alloc(alignment, size); }
KILN_PUBLIC int posix_memalign(void **out, size_t alignment, size_t size) {
  return kiln_posix_memalign(out, alignment, size);
}
KILN_PUBLIC void *memalign(size_t alignment, size_t size) { return kiln_memalign(alignment, size); }
KILN_PUBLIC void *valloc(size_t size) { return kiln_valloc(size); }
KILN_PUBLIC void *pvalloc(size_t size) { return kiln_pvalloc(size); }
KILN_PUBLIC size_t malloc_usable_size(void *p) { return kiln_usable_size(p); }
KILN_PUBLIC void free_sized(void *p, size_t size) { kiln_free_sized(p, size); }
KILN_PUBLIC void free_aligned_sized(void *p, size_t alignment, size_t size) {
  kiln_free_aligned_sized(p, alignment, size);
}
KILN_PUBLIC void cfree(void *p) { kiln_free_inline(p); }

KILN_PUBLIC void *__libc_malloc(size_t size) { return kiln_malloc_inline(size); }
KILN_PUBLIC void __libc_free(void *p) { kiln_free_inline(p); }
KILN_PUBLIC void *__libc_calloc(size_t count, size_t size) { return kiln_calloc(count, size); }
KILN_PUBLIC void *__libc_realloc(void *p, size_t size) { return kiln_realloc(p, size); }
KILN_PUBLIC void *__libc_memalign(size_t alignment, size_t size) { return kiln_memalign(alignment, size); }
KILN_PUBLIC void *__libc_valloc(size_t size) { return kiln_valloc(size); }
KILN_PUBLIC void *__libc_pvalloc(size_t size) { return kiln_pvalloc(size); }
KILN_PUBLIC int __posix_memalign(void **out, size_t alignment, size_t size) {
  return kiln_posix_memalign(out, alignment, size);
}

/* mallopt: Kiln has no glibc tunables; accept and ignore (1 = success), as
 * programs treat 0 as an error. */
KILN_PUBLIC int mallopt(int param, int value) {
  (void)param;
  (void)value;
  return 1;
}

/* malloc_trim: hand free memory back now; 1 if any could be released. */
KILN_PUBLIC int malloc_trim(size_t pad) {
  (void)pad;
  kiln_stats_t before, after;
  kiln_stats_get(&before);
  kiln_collect(true);
  kiln_stats_get(&after);
  return after.committed < before.committed;
}

KILN_PUBLIC void malloc_stats(void) { kiln_stats_print(stderr); }

static size_t clamp_int(size_t v) { return v > (size_t)__INT_MAX__ ? (size_t)__INT_MAX__ : v; }

KILN_PUBLIC struct mallinfo2 mallinfo2(void) {
  kiln_stats_t s;
  kiln_stats_get(&s);
  struct mallinfo2 info = {0};
  info.arena = s.committed;                 /* memory obtained from the OS and held */
  info.hblkhd = s.mapped;                   /* address space mapped */
  info.uordblks = s.allocated;              /* bytes in allocated blocks */
  info.fordblks = s.committed > s.allocated ? s.committed - s.allocated : 0; /* free, still held */
  info.usmblks = s.allocated_peak;
  return info;
}

KILN_PUBLIC struct mallinfo mallinfo(void) {
  struct mallinfo2 i2 = mallinfo2();
  struct mallinfo info = {0};
  info.arena = (int)clamp_int(i2.arena);
  info.hblkhd = (int)clamp_int(i2.hblkhd);
  info.uordblks = (int)clamp_int(i2.uordblks);
  info.fordblks = (int)clamp_int(i2.fordblks);
  info.usmblks = (int)clamp_int(i2.usmblks);
  return info;
}
#else
/* Without KILN_OVERRIDE this file is empty on purpose (ISO C wants one
 * declaration per translation unit). */
typedef int kiln_override_disabled;
#endif
