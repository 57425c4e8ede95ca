/* heap.h — heaps: where threads allocate (src/heap.c), and the thread
 * records behind them (src/thread.c). */
#ifndef KILN_HEAP_H
#define KILN_HEAP_H

#include "ptr.h"
#include "types.h"

/* Sentinels: a page that is never free (so the fast path's pop fails into the
 * slow path instead of testing for NULL) and a heap whose every direct slot
 * points at it (a thread's heap before its first allocation). */
extern kiln_shared kiln_page_t kiln_page_empty;
extern kiln_shared kiln_heap_t kiln_heap_empty;

/* The calling thread's default heap (&kiln_heap_empty before its first
 * allocation).  Initial-exec TLS: one %fs-relative load, and no call to
 * __tls_get_addr, which may itself allocate; one pointer fits glibc's static
 * TLS surplus, so dlopen of libkiln still works. */
extern __thread kiln_heap_t *kiln_tl_heap __attribute__((tls_model("initial-exec")));

kiln_inline kiln_heap_t *kiln_heap_get_default(void) { return kiln_tl_heap; }

/* Set up the calling thread (first allocation): returns its default heap. */
kiln_heap_t *kiln_thread_init(void);
/* Whether process-wide init is done. */
void kiln_process_init(void);

/* Slow path of allocation: a block of `size` bytes from `heap`, zeroed if
 * asked; NULL with errno ENOMEM. */
void *kiln_heap_malloc_generic(kiln_heap_t *heap, size_t size, bool zero);
void *kiln_heap_malloc_aligned(kiln_heap_t *heap, size_t size, size_t alignment, bool zero);
/* The same without the checking mode's diversion (check.c allocates with
 * these). */
void *kiln_heap_malloc_core(kiln_heap_t *heap, size_t size, bool zero);
void *kiln_heap_malloc_aligned_core(kiln_heap_t *heap, size_t size, size_t alignment, bool zero);
/* The page to allocate `bin` blocks from (never full); NULL when out of memory. */
kiln_page_t *kiln_heap_find_page(kiln_heap_t *heap, unsigned bin);
/* Drain the blocks remote threads freed into this heap's full pages. */
void kiln_heap_delayed_free_all(kiln_heap_t *heap);
/* Point the direct slots of the bin at its current page. */
void kiln_heap_update_direct(kiln_heap_t *heap, unsigned bin);
/* A page became full/non-full or empty (owner). */
void kiln_heap_page_to_full(kiln_heap_t *heap, kiln_page_t *page);
void kiln_heap_page_unfull(kiln_heap_t *heap, kiln_page_t *page);
/* Whether the page is the only one in its bin's queue (queues are doubly
 * linked, so a page with no neighbours is alone in its queue; not in_full
 * says that queue is its bin's). */
kiln_inline bool kiln_page_alone_in_bin(const kiln_page_t *page) {
  return page->next == NULL && page->prev == NULL && !page->flags.x.in_full;
}
/* An empty page: freed (true), or kept as the only page of its bin. */
bool kiln_heap_page_retire(kiln_heap_t *heap, kiln_page_t *page);
void kiln_heap_page_free(kiln_heap_t *heap, kiln_page_t *page);
/* Take an abandoned page into the heap (reclaim); true if all its blocks
 * turned out free (the caller then frees it with kiln_heap_page_free). */
bool kiln_heap_adopt_page(kiln_heap_t *heap, kiln_page_t *page);
/* Initialise a heap record for the tld. */
void kiln_heap_setup(kiln_heap_t *heap, kiln_tld_t *tld, bool first_class);
/* Periodic collection of all the thread's pages (see heap.c). */
void kiln_heap_heartbeat(kiln_heap_t *heap);
/* Move every page's local_free and thread_free into free (statistics). */
void kiln_heap_collect_lists(kiln_heap_t *heap);
/* Set a heap's limit (kiln_heap_set_limit). */
void kiln_heap_limit_set(kiln_heap_t *heap, size_t bytes);
/* Collect: free empty pages; abandon: hand live pages over (thread exit);
 * destroy: drop every page, live blocks included. */
void kiln_heap_collect(kiln_heap_t *heap, bool force);
void kiln_heap_abandon(kiln_heap_t *heap);
void kiln_heap_drop_all(kiln_heap_t *heap);

/* Account the page's `used` change into the process allocation estimate
 * (through the thread's pending bytes, flushed in steps of
 * KILN_STATS_FLUSH_BYTES and when the thread's heaps are abandoned). */
void kiln_stats_page_used(kiln_tld_t *tld, kiln_page_t *page);
void kiln_stats_flush_pending(kiln_tld_t *tld);

/* Internal fixed-size records (thread records, first-class heaps) carved
 * from OS memory, never returned, reused through a free list: type-stable,
 * so a remote thread racing with a heap's destruction never touches unmapped
 * memory (src/thread.c). */
void *kiln_record_alloc(size_t size);
void kiln_record_free(void *record, size_t size);

#endif /* KILN_HEAP_H */
