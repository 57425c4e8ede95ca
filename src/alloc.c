/* alloc.c — the kiln_* allocation entry points and their POSIX/C edge cases
 * (errno, overflow, alignment rules, realloc semantics).  The unprefixed
 * libc names in override.c forward here or to the same inline fast paths. */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "check.h"
#include "os.h"
#include "segment.h"

const char *kiln_version(void) { return "0.1.0"; }

kiln_hot_entry void *kiln_malloc(size_t size) { return kiln_malloc_inline(size); }

void *kiln_calloc(size_t count, size_t size) {
  size_t total;
  if (kiln_unlikely(__builtin_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  kiln_heap_t *heap = kiln_heap_get_default();
  if (kiln_likely(total <= KILN_DIRECT_MAX)) {
    /* malloc's fast path, then zero: reused blocks hold old data. */
    kiln_page_t *page = heap->pages_direct[(total + 15) >> 4];
    if (kiln_likely(page->free != NULL)) return memset(kiln_page_pop(page), 0, total);
  }
  return kiln_heap_malloc_generic(heap, total, true);
}

/* Where a moved block goes: back into the first-class heap it came from
 * when that heap belongs to the calling thread (so kiln_heap_destroy still
 * releases it), else into the caller's default heap. */
static kiln_heap_t *realloc_heap(kiln_segment_t *segment, kiln_page_t *page) {
  kiln_heap_t *heap = segment->kind == KILN_SEGMENT_HUGE ? segment->huge_heap
                                                          : atomic_load_explicit(&page->xheap, memory_order_relaxed);
  if (heap != NULL && heap->is_first_class && heap->thread_id == kiln_thread_id()) return heap;
  return kiln_heap_get_default();
}

/* A huge block of a limited first-class heap never grows in place: its
 * growth would bypass the heap's limit, which only the move below asks (via
 * kiln_heap_malloc, on the heap's own thread). */
static bool huge_grows_in_place(const kiln_segment_t *segment) {
  const kiln_heap_t *owner = segment->huge_heap;
  return owner == NULL || owner->limit == 0;
}

/* The realloc contract: realloc(NULL, n) == malloc(n); realloc(p, 0) frees p
 * and returns NULL (glibc's choice); on failure NULL with ENOMEM and p
 * untouched; otherwise min(old, new) bytes preserved.  In place when the
 * block already fits and would not waste more than half of it. */
void *kiln_realloc(void *p, size_t size) {
  if (p == NULL) return kiln_malloc(size);
  if (size == 0) {
    kiln_free(p);
    return NULL;
  }
  if (kiln_unlikely(size > KILN_MAX_ALLOC_SIZE)) {
    errno = ENOMEM;
    return NULL;
  }
  kiln_segment_t *segment = kiln_segment_of(p);
  kiln_page_t *page = segment ? kiln_segment_page_of(segment, p) : NULL;
  kiln_block_t *block = page ? kiln_page_block_of(page, p) : NULL;
  if (kiln_unlikely(block == NULL)) {
    /* Not Kiln's: we cannot know how much to copy. */
    kiln_free_not_ours(p);
    errno = EINVAL;
    return NULL;
  }
  size_t usable = kiln_usable_size(p);
  if (kiln_unlikely(page->flags.x.checked && usable == 0)) {
    /* Checking mode (issue 5): p is no live block (interior pointer, freed
     * block); the free names the bug, then realloc fails as for a foreign
     * pointer. */
    kiln_free(p);
    errno = EINVAL;
    return NULL;
  }
  if (!page->flags.x.checked) {
    if (segment->kind == KILN_SEGMENT_HUGE) {
      if (kiln_huge_resize(segment, p, size)) return p;
      if (size > usable && huge_grows_in_place(segment)) {
        void *grown = kiln_huge_grow(segment, p, size);
        if (grown != NULL) return grown;
      }
    } else if (size <= usable && (size >= usable / 2 || usable <= 128)) {
      return p; /* shrinking to under half moves, unless the block is tiny anyway */
    }
  } else if (size <= usable && kiln_check_resize_in_place(page, block, p, size)) {
    return p;
  } else if (size > usable && (segment->kind != KILN_SEGMENT_HUGE || huge_grows_in_place(segment))) {
    void *grown = kiln_check_grow(segment, page, block, p, size);
    if (grown != NULL) return grown;
  }
  void *moved = kiln_heap_malloc(realloc_heap(segment, page), size);
  if (moved == NULL) return NULL;
  memcpy(moved, p, usable < size ? usable : size);
  kiln_free(p);
  return moved;
}

void *kiln_reallocarray(void *p, size_t count, size_t size) {
  size_t total;
  if (kiln_unlikely(__builtin_mul_overflow(count, size, &total))) {
    errno = ENOMEM;
    return NULL;
  }
  return kiln_realloc(p, total);
}

/* aligned_alloc (C11/C17 as glibc implements it): any power-of-two
 * alignment, EINVAL otherwise; size need not be a multiple of it. */
void *kiln_aligned_alloc(size_t alignment, size_t size) {
  if (kiln_unlikely(!kiln_is_power_of_two(alignment))) {
    errno = EINVAL;
    return NULL;
  }
  return kiln_heap_malloc_aligned(kiln_heap_get_default(), size, alignment, false);
}

/* POSIX: EINVAL unless alignment is a power of two multiple of
 * sizeof(void *); *out is written only on success. */
int kiln_posix_memalign(void **out, size_t alignment, size_t size) {
  if (alignment % sizeof(void *) != 0 || !kiln_is_power_of_two(alignment)) return EINVAL;
  int saved = errno;
  void *p = kiln_heap_malloc_aligned(kiln_heap_get_default(), size, alignment, false);
  if (p == NULL) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

/* memalign (obsolete, glibc's rules): a non-power-of-two alignment is
 * rounded up to the next power of two. */
void *kiln_memalign(size_t alignment, size_t size) {
  if (!kiln_is_power_of_two(alignment)) {
    if (alignment > ((size_t)1 << 62)) {
      errno = EINVAL;
      return NULL;
    }
    size_t rounded = 16;
    while (rounded < alignment) rounded <<= 1;
    alignment = rounded;
  }
  return kiln_heap_malloc_aligned(kiln_heap_get_default(), size, alignment, false);
}

void *kiln_valloc(size_t size) {
  return kiln_heap_malloc_aligned(kiln_heap_get_default(), size, kiln_os_page_size(), false);
}

/* pvalloc: page-aligned, size rounded up to whole pages (0 -> one page). */
void *kiln_pvalloc(size_t size) {
  size_t page = kiln_os_page_size();
  if (size > KILN_MAX_ALLOC_SIZE) {
    errno = ENOMEM;
    return NULL;
  }
  size_t rounded = size == 0 ? page : kiln_align_up(size, page);
  return kiln_heap_malloc_aligned(kiln_heap_get_default(), rounded, page, false);
}
