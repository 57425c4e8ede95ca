/* heap_api.c — first-class heaps, the public side (kiln_heap_* in kiln.h).
 * Creation and destruction are in thread.c, which owns the thread's list of
 * heaps; the page mechanics are heap.c's. */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "segment.h"

void *kiln_heap_malloc(kiln_heap_t *heap, size_t size) {
  if (kiln_likely(size <= KILN_DIRECT_MAX)) {
    kiln_page_t *page = heap->pages_direct[(size + 15) >> 4];
    if (kiln_likely(page->free != NULL)) return kiln_page_pop(page);
  }
  return kiln_heap_malloc_generic(heap, size, false);
}

void *kiln_heap_calloc(kiln_heap_t *heap, size_t count, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(count, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return kiln_heap_malloc_generic(heap, total, true);
}

void *kiln_heap_aligned_alloc(kiln_heap_t *heap, size_t alignment, size_t size) {
  if (!kiln_is_power_of_two(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return kiln_heap_malloc_aligned(heap, size, alignment, false);
}

/* Like kiln_realloc, but a moved block comes from `heap`. */
void *kiln_heap_realloc(kiln_heap_t *heap, void *p, size_t size) {
  if (p == NULL) return kiln_heap_malloc(heap, size);
  size_t usable = kiln_usable_size(p);
  if (usable == 0 || size == 0) return kiln_realloc(p, size); /* errors and realloc(p, 0) */
  if (size <= usable && size >= usable / 2) return kiln_realloc(p, size);
  void *moved = kiln_heap_malloc(heap, size);
  if (moved == NULL) return NULL;
  memcpy(moved, p, usable < size ? usable : size);
  kiln_free(p);
  return moved;
}

void kiln_heap_reset(kiln_heap_t *heap) {
  if (heap == NULL) return;
  kiln_heap_drop_all(heap);
}

void kiln_heap_set_limit(kiln_heap_t *heap, size_t bytes) { kiln_heap_limit_set(heap, bytes); }

size_t kiln_heap_allocated(const kiln_heap_t *heap) {
  size_t huge = atomic_load_explicit(&heap->huge_bytes, memory_order_relaxed);
  if (heap->limit != 0) return heap->allocated + huge;
  size_t bytes = huge;
  for (unsigned q = 1; q <= KILN_BIN_FULL; q++) {
    for (const kiln_page_t *page = heap->pages[q].first; page != NULL; page = page->next)
      bytes += (size_t)page->used * page->block_size;
  }
  return bytes;
}
