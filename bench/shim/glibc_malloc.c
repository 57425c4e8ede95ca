/* glibc_malloc.c — a preload that puts glibc's allocator back.
 *
 * Some real programs are linked against another allocator (Debian's
 * redis-server links libjemalloc), so running them "without LD_PRELOAD" does
 * not measure glibc.  bench/run preloads this library for the glibc runs of
 * such programs: every entry point forwards to glibc's own implementation
 * (__libc_* are glibc's exported internal names), so all malloc-family calls
 * meet glibc's malloc.
 *
 * Limit: the __libc_* references bind to the first definition in the
 * process, and tcmalloc, mimalloc and Kiln also export those names.  That is
 * harmless for what this is for (jemalloc, which redis links, does not), but
 * a program linked against one of those would not get glibc from this shim.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#define EXPORT __attribute__((visibility("default")))

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

EXPORT void *malloc(size_t n) { return __libc_malloc(n); }
EXPORT void free(void *p) { __libc_free(p); }
EXPORT void *calloc(size_t n, size_t s) { return __libc_calloc(n, s); }
EXPORT void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
EXPORT void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *aligned_alloc(size_t a, size_t n) { return __libc_memalign(a, n); }
EXPORT void *valloc(size_t n) { return __libc_valloc(n); }
EXPORT void *pvalloc(size_t n) { return __libc_pvalloc(n); }

EXPORT int posix_memalign(void **out, size_t a, size_t n) {
  if (a == 0 || (a & (a - 1)) || a % sizeof(void *)) return EINVAL;
  void *p = __libc_memalign(a, n);
  if (!p) return ENOMEM;
  *out = p;
  return 0;
}

/* glibc exports no __libc_ name for this one.  Look it up in libc.so.6 itself
 * (dlsym(RTLD_NEXT) could find the other allocator's first); by the time a
 * program asks for a usable size, malloc works, so dlopen may allocate. */
EXPORT size_t malloc_usable_size(void *p) {
  static size_t (*glibc_usable)(void *);
  if (!glibc_usable) {
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc) glibc_usable = (size_t (*)(void *))dlsym(libc, "malloc_usable_size");
    if (!glibc_usable) return 0;
  }
  return glibc_usable(p);
}
