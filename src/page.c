/* page.c — a page's free lists: set-up, extension, collection, remote frees.
 *
 * The cross-thread protocol here (kiln_page_free_mt, kiln_page_collect,
 * kiln_page_set_delayed) is modelled in tests/model/cross_thread_free.pml and
 * tests/model/abandon_reclaim.pml; keep the two in step.
 */
#include "page.h"

#include "heap.h"
#include "os.h"
#include "segment.h"

/* block_size = 2^t * m with m odd; the inverse of m mod 2^64 by Newton's
 * iteration x <- x(2 - m x): each step doubles the correct low bits, and
 * x = m is right to 3 bits (m*m = 1 mod 8 for odd m): 3,6,12,24,48,96. */
static void page_set_divisor(kiln_page_t *page, size_t block_size) {
  unsigned t = (unsigned)__builtin_ctzll(block_size);
  uint64_t m = block_size >> t;
  uint64_t inv = m;
  for (int i = 0; i < 5; i++) inv *= 2 - m * inv;
  page->div_shift = (uint8_t)t;
  page->div_inverse = inv;
}

/* Hardened mode: the page's secret key, and the high half a link into the
 * page's segment has once encoded (the double-free screen's two values,
 * secure.h).  The low 4 bits of the key stay 0, so a genuine link decodes
 * to a 16-byte aligned block, and | 16 keeps the key non-zero.  Every block
 * of the page shares the high half of its address with page->start (a
 * segment is one 4 MiB-aligned chunk and never crosses a 4 GiB line).  A
 * key is drawn again if either value would be a high half that program
 * data often has, 0 (small numbers) or all ones (small negative ones):
 * live blocks holding them would all pass the screen, and each free would
 * search the lists (a chance of 2^-30 a page otherwise). */
static void page_set_key(kiln_heap_t *heap, kiln_page_t *page) {
  uint32_t segment_hi = (uint32_t)((uintptr_t)page->start >> 32);
  for (;;) {
    page->key = (uintptr_t)(kiln_random_next(&heap->random) & ~(uint64_t)15) | 16;
    uint32_t key_hi = (uint32_t)(page->key >> 32);
    page->screen_hi = key_hi ^ segment_hi;
    if (key_hi != 0 && key_hi != UINT32_MAX && page->screen_hi != 0 && page->screen_hi != UINT32_MAX) return;
  }
}

void kiln_page_init(kiln_heap_t *heap, kiln_page_t *page, unsigned bin, size_t block_size) {
  kiln_segment_t *segment = kiln_segment_of(page);
  size_t area_size;
  page->start = kiln_segment_page_area(segment, page, &area_size);
  page->block_size = block_size;
  size_t reserved = area_size / block_size;
  page->reserved = (uint16_t)(reserved > UINT16_MAX ? UINT16_MAX : reserved);
  __atomic_store_n(&page->capacity, 0, __ATOMIC_RELAXED);
  page->bin = (uint16_t)bin;
  page->used = 0;
  page->used_accounted = 0;
  page->alloc_count = 0;
  page->free = NULL;
  page->local_free = NULL;
  page->flags.all = 0;
  page->key = 0;
  if (heap->secure) {
    page_set_key(heap, page);
    page->flags.x.checked = KILN_PAGE_CHECKED_KEYED; /* the checking mode sets CHECKED */
  }
  page_set_divisor(page, block_size);
  atomic_store_explicit(&page->xthread_free, (uintptr_t)KILN_NO_DELAYED_FREE, memory_order_relaxed);
  /* Release: a remote thread that later reads xheap (in DELAYED_FREEING)
   * sees a fully set-up heap. */
  atomic_store_explicit(&page->xheap, heap, memory_order_release);
}

/* Hardened mode: a batch is linked in a random order, so consecutive mallocs
 * do not hand out neighbouring blocks (heap grooming for an overflow into a
 * chosen victim gets harder).  The batch is 16 KiB, at least 4 blocks and
 * at most 256 (the order array below): blocks of 64 bytes and more get
 * more places to be shuffled into than the plain mode's one-page batch,
 * and malloc takes its slow path to carve them less often (simple: 0.95x
 * the time of one-page batches; mstress, and the peak RSS of mstress,
 * larson, xmalloc and python, the same within noise).
 * (Ideas: mimalloc's secure-mode extension, hardened_malloc's random slots.) */
#define PAGE_SHUFFLE_BYTES ((size_t)16384)
#define PAGE_SHUFFLE_MIN_BLOCKS 4
#define PAGE_SHUFFLE_MAX_BLOCKS 256

static size_t page_extend_count(const kiln_page_t *page) {
  bool keyed = page->key != 0;
  size_t count = (keyed ? PAGE_SHUFFLE_BYTES : KILN_PAGE_EXTEND_BYTES) / page->block_size;
  size_t min = keyed ? PAGE_SHUFFLE_MIN_BLOCKS : KILN_PAGE_EXTEND_MIN_BLOCKS;
  if (count < min) count = min;
  if (keyed && count > PAGE_SHUFFLE_MAX_BLOCKS) count = PAGE_SHUFFLE_MAX_BLOCKS;
  if (count > (size_t)(page->reserved - page->capacity)) count = page->reserved - page->capacity;
  return count;
}

/* Link `count` blocks from `first` in a random order in front of
 * page->free.  The order is the "inside-out" Fisher-Yates shuffle (Knuth,
 * TAOCP 3.4.2, Algorithm P run forwards): after step i, order[0..i] is a
 * uniformly random permutation of 0..i, so no separate pass fills the
 * identity first.  Each 64-bit random value gives two 32-bit draws, scaled
 * to [0, i] by a multiply-high instead of a division (Lemire, "Fast Random
 * Integer Generation in an Interval", 2019; bias under 2^-24 for i < 256). */
static void page_link_shuffled(kiln_page_t *page, uint8_t *first, size_t count) {
  uint16_t order[PAGE_SHUFFLE_MAX_BLOCKS];
  kiln_heap_t *heap = atomic_load_explicit(&page->xheap, memory_order_relaxed);
  uint64_t state = heap->random, bits = 0;
  order[0] = 0;
  for (size_t i = 1; i < count; i++) {
    if (i & 1) bits = kiln_random_next(&state);
    else bits >>= 32;
    size_t j = (size_t)(((bits & UINT32_MAX) * (i + 1)) >> 32);
    order[i] = order[j];
    order[j] = (uint16_t)i;
  }
  heap->random = state;
  kiln_block_t *next = page->free;
  for (size_t i = count; i-- > 0;) {
    kiln_block_t *block = (kiln_block_t *)(first + (size_t)order[i] * page->block_size);
    kiln_block_set_next(page, block, next);
    next = block;
  }
  page->free = next;
}

void kiln_page_extend(kiln_page_t *page) {
  if (page->capacity >= page->reserved) return;
  size_t block_size = page->block_size;
  size_t count = page_extend_count(page);
  uint8_t *first = page->start + (size_t)page->capacity * block_size;
  if (page->key != 0) {
    page_link_shuffled(page, first, count);
  } else {
    /* Link the new blocks in address order, the last one to the current
     * free list (empty when called from the slow path). */
    uint8_t *p = first;
    for (size_t i = 0; i + 1 < count; i++, p += block_size)
      ((kiln_block_t *)p)->next = (kiln_block_t *)(p + block_size);
    ((kiln_block_t *)p)->next = page->free;
    page->free = (kiln_block_t *)first;
  }
  /* Relaxed atomic store: other threads read capacity (remote free,
   * usable size, statistics) while the owner extends; any value they see is
   * one the page has had, and blocks they hold were carved before. */
  __atomic_store_n(&page->capacity, (uint16_t)(page->capacity + count), __ATOMIC_RELAXED);
  page->alloc_count += count;
}

/* A free list that leads outside the page's carved blocks: a link was
 * overwritten (use after free, or an overflow into a freed block). */
kiln_cold _Noreturn void kiln_page_list_corrupt(const kiln_page_t *page, const void *p) {
  kiln_fatal("kiln: heap corruption detected: the free list of the %zu-byte page %p leads to %p, "
             "not a block of its page (use after free or overflow into a freed block)",
             page->block_size, (void *)page->start, p);
}

/* The next block of a list that collect walks to its end.  On a keyed page
 * the link is checked as the pop checks a block (kiln_page_pop_keyed): a
 * forged link aborts here instead of being followed, read and, at the end
 * of the walk, written through. */
static kiln_block_t *list_next(const kiln_page_t *page, const kiln_block_t *block) {
  kiln_block_t *next = kiln_block_next(page, block);
  if (page->key != 0 && next != NULL && !kiln_page_carved(page, next))
    kiln_page_list_corrupt(page, next);
  return next;
}

size_t kiln_page_collect(kiln_page_t *page) {
  /* local_free first: on the usual call (the malloc slow path, `free`
   * empty) it becomes `free` in O(1), and the remote list, which is walked
   * anyway to count it, goes in front of it.  Done the other way round, the
   * remote blocks made `free` non-empty, and local_free (up to a page of
   * blocks: 4096 of 16 bytes) had to be walked inside one malloc to find its
   * tail.  (In mstress that walk was 6 % of the samples, but the blocks it
   * touched were about to be allocated: the mean time did not change.) */
  if (page->local_free != NULL) {
    if (page->free == NULL) {
      /* capacity == used + |free| + |local_free| and free is empty */
      page->alloc_count += (size_t)page->capacity - page->used;
      page->free = page->local_free;
    } else {
      kiln_block_t *tail = page->local_free;
      size_t local = 1;
      for (kiln_block_t *next; (next = list_next(page, tail)) != NULL; tail = next) local++;
      page->alloc_count += local;
      kiln_block_set_next(page, tail, page->free);
      page->free = page->local_free;
    }
    page->local_free = NULL;
  }
  size_t remote = 0;
  uintptr_t tf = atomic_load_explicit(&page->xthread_free, memory_order_relaxed);
  if (kiln_thread_free_ptr(tf) != NULL) {
    /* Take the whole list, keeping the delayed-free state bits.  Acquire
     * pairs with the release CAS of every remote push: their writes of
     * block->next (and the program's writes before free) are visible. */
    while (!atomic_compare_exchange_weak_explicit(&page->xthread_free, &tf, tf & 3u,
                                                  memory_order_acquire, memory_order_relaxed)) {
    }
    kiln_block_t *head = kiln_thread_free_ptr(tf);
    kiln_block_t *tail = head;
    remote = 1;
    for (kiln_block_t *next; (next = list_next(page, tail)) != NULL; tail = next) remote++;
    kiln_block_set_next(page, tail, page->free);
    page->free = head;
    page->used -= (uint32_t)remote;
    page->alloc_count += remote;
    if (page->flags.x.accounted) {
      kiln_heap_t *heap = atomic_load_explicit(&page->xheap, memory_order_relaxed);
      heap->allocated -= remote * page->block_size;
    }
  }
  return remote;
}

void kiln_page_set_delayed(kiln_page_t *page, kiln_delayed_t state, bool override_never) {
  uintptr_t tf = atomic_load_explicit(&page->xthread_free, memory_order_relaxed);
  for (;;) {
    kiln_delayed_t old = kiln_thread_free_state(tf);
    if (old == KILN_DELAYED_FREEING) {
      /* A remote thread is pushing a block to the heap's delayed list; it
       * holds the heap pointer until it resets the state: wait it out. */
      kiln_os_yield();
      tf = atomic_load_explicit(&page->xthread_free, memory_order_acquire);
      continue;
    }
    if (old == state || (old == KILN_NEVER_DELAYED_FREE && !override_never)) return;
    uintptr_t desired = (tf & ~(uintptr_t)3) | (uintptr_t)state;
    /* acq_rel: release publishes xheap (set before) to a remote thread that
     * sees USE_DELAYED; acquire orders us after a finished DELAYED_FREEING. */
    if (atomic_compare_exchange_weak_explicit(&page->xthread_free, &tf, desired, memory_order_acq_rel,
                                              memory_order_relaxed))
      return;
  }
}

void kiln_page_free_mt(kiln_page_t *page, kiln_block_t *block) {
  uintptr_t tf = atomic_load_explicit(&page->xthread_free, memory_order_relaxed);
  uintptr_t desired;
  bool use_delayed;
  do {
    use_delayed = kiln_thread_free_state(tf) == KILN_USE_DELAYED_FREE;
    if (kiln_unlikely(use_delayed)) {
      desired = (tf & ~(uintptr_t)3) | KILN_DELAYED_FREEING;
    } else {
      kiln_block_set_next(page, block, kiln_thread_free_ptr(tf));
      desired = (uintptr_t)block | (tf & 3u);
    }
    /* Release: the owner's acquire in kiln_page_collect sees block->next and
     * everything the program wrote to the block.  Acquire (on the delayed
     * branch) makes the owner's earlier store of xheap visible. */
  } while (!atomic_compare_exchange_weak_explicit(&page->xthread_free, &tf, desired, memory_order_acq_rel,
                                                  memory_order_relaxed));
  if (kiln_likely(!use_delayed)) return;

  /* The page is in its heap's full queue: tell the heap, so its owner moves
   * the page back to where allocation looks.  The owner cannot drop the heap
   * meanwhile: abandon and destroy wait while the state is DELAYED_FREEING. */
  kiln_heap_t *heap = atomic_load_explicit(&page->xheap, memory_order_acquire);
  if (heap != NULL) {
    kiln_block_t *head = atomic_load_explicit(&heap->thread_delayed_free, memory_order_relaxed);
    if (page->key != 0) kiln_block_set_next(page, block, block); /* waits delayed (page.h) */
    do {
      kiln_block_set_delayed_next(page, block, head); /* (with this block's page key: kiln_heap_delayed_free_all) */
    } while (!atomic_compare_exchange_weak_explicit(&heap->thread_delayed_free, &head, block,
                                                    memory_order_release, memory_order_relaxed));
  }
  /* Leave DELAYED_FREEING (nobody else changes the state meanwhile; only the
   * pointer bits move).  Without a heap, the block goes on thread_free. */
  tf = atomic_load_explicit(&page->xthread_free, memory_order_relaxed);
  do {
    if (heap == NULL) {
      kiln_block_set_next(page, block, kiln_thread_free_ptr(tf));
      desired = (uintptr_t)block | KILN_NO_DELAYED_FREE;
    } else {
      desired = (tf & ~(uintptr_t)3) | KILN_NO_DELAYED_FREE;
    }
  } while (!atomic_compare_exchange_weak_explicit(&page->xthread_free, &tf, desired, memory_order_release,
                                                  memory_order_relaxed));
}

kiln_hot_entry void *kiln_page_pop_keyed(kiln_page_t *page) {
  kiln_block_t *block = page->free;
  if (kiln_unlikely(!kiln_page_carved(page, block)))
    kiln_page_list_corrupt(page, block);
  page->free = kiln_block_next(page, block);
  page->used++;
  block->next = NULL;
  return block;
}

void kiln_queue_push_front(kiln_page_queue_t *queue, kiln_page_t *page) {
  page->prev = NULL;
  page->next = queue->first;
  if (queue->first != NULL) queue->first->prev = page;
  else queue->last = page;
  queue->first = page;
}

void kiln_queue_push_back(kiln_page_queue_t *queue, kiln_page_t *page) {
  page->next = NULL;
  page->prev = queue->last;
  if (queue->last != NULL) queue->last->next = page;
  else queue->first = page;
  queue->last = page;
}

void kiln_queue_remove(kiln_page_queue_t *queue, kiln_page_t *page) {
  if (page->prev != NULL) page->prev->next = page->next;
  else queue->first = page->next;
  if (page->next != NULL) page->next->prev = page->prev;
  else queue->last = page->prev;
  page->next = page->prev = NULL;
}
