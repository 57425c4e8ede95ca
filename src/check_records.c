/* check_records.c — where the checking mode keeps the record of every live
 * block: one slot per block a page can carve, found from the block's address
 * by arithmetic, with no hash table.
 *
 * Layout.  Each 4 MiB chunk of the address space that holds a segment
 * header gets an area of RECORDS_PER_PAGE slots for each of its pages (a
 * huge segment uses slot 0), reserved on the first record and never
 * unmapped: slot = area[page_index * RECORDS_PER_PAGE + block index], the
 * block index being the page's exact division (ptr.h).  An area is 8 MiB of
 * address space, but only slots of carved blocks are ever touched, in the
 * order the page carves them: 32 bytes of records per block, next to the
 * records of the block's neighbours.  A directory in two levels (a static
 * top of 8192 pointers, tables of 4096 areas made on demand) finds the area
 * of a chunk.
 *
 * Why not the hash table keyed by block that this replaced: in programs with
 * many live blocks (python, xmalloc, mstress) every insert and every free
 * probed a random slot of a table of tens of MiB, a cache and TLB miss each
 * time (a fifth to a third of the checking mode's samples in perf); the
 * records of blocks carved together now share their lines and pages, and
 * need no probing, no growth and no backward-shift deletion.  A page's
 * metadata already sits out of line in its segment header for the same
 * reason (mimalloc's design, types.h); this is the checking mode's
 * equivalent.
 *
 * Memory.  Areas are address space the memory limit does not count
 * (KILN_LIMIT budgets the program's memory; the records are the mode's),
 * and their touched pages are given back when the core purges the pages
 * (or the segment) whose blocks they describe (kiln_check_purged).  A
 * chunk's area stays reserved after its segment goes, so that a racing
 * look-up of a stale pointer never reads unmapped memory; address space is
 * what a process has most of.
 *
 * Who writes a slot: see check_table.c (a slot's `block` field publishes it).
 */
#include "check_internal.h"
#include "os.h"
#include "ptr.h"
#include "segment.h"

/* The most blocks a page can hold: a 64 KiB small page of 16-byte blocks
 * (medium and large pages hold at most 64). */
#define RECORDS_PER_PAGE ((size_t)1 << (KILN_SMALL_PAGE_SHIFT - 4))
#define AREA_PAGES KILN_SMALL_PAGES_PER_SEGMENT
#define AREA_BYTES (AREA_PAGES * RECORDS_PER_PAGE * sizeof(kiln_live_t))
/* (Every size class is a multiple of 16 bytes: size_class.h.) */
_Static_assert((KILN_SEGMENT_SIZE >> KILN_MEDIUM_PAGE_SHIFT) <= AREA_PAGES, "medium pages fit the area");

#define DIR_LOW_BITS 12
#define DIR_LOW_SLOTS ((size_t)1 << DIR_LOW_BITS)
#define DIR_TOP_SLOTS (KILN_MAP_CHUNKS >> DIR_LOW_BITS)

typedef _Atomic(kiln_live_t *) area_ref_t;
static _Atomic(area_ref_t *) dir_top[DIR_TOP_SLOTS];

/* Publish a fresh mapping in *ref unless another thread was first; the
 * loser unmaps its own.  Returns what *ref holds. */
static void *publish(_Atomic(void *) *ref, void *fresh, size_t bytes) {
  void *expected = NULL;
  if (atomic_compare_exchange_strong_explicit(ref, &expected, fresh, memory_order_acq_rel, memory_order_acquire))
    return fresh;
  kiln_os_release(fresh, bytes);
  return expected;
}

/* The slot in the directory of the area of `chunk`; NULL if its table does
 * not exist and make is false, or cannot be mapped. */
static area_ref_t *area_ref(uintptr_t chunk, bool make) {
  _Atomic(area_ref_t *) *top = &dir_top[chunk >> DIR_LOW_BITS];
  area_ref_t *low = atomic_load_explicit(top, memory_order_acquire);
  if (low == NULL) {
    if (!make) return NULL;
    size_t bytes = DIR_LOW_SLOTS * sizeof(area_ref_t);
    low = kiln_os_reserve(bytes);
    if (low == NULL) return NULL;
    low = publish((_Atomic(void *) *)top, low, bytes);
  }
  return &low[chunk & (DIR_LOW_SLOTS - 1)];
}

static kiln_live_t *area_of(uintptr_t chunk, bool make) {
  area_ref_t *ref = area_ref(chunk, make);
  if (ref == NULL) return NULL;
  kiln_live_t *area = atomic_load_explicit(ref, memory_order_acquire);
  if (area == NULL && make) {
    area = kiln_os_reserve(AREA_BYTES);
    if (area == NULL) return NULL;
    area = publish((_Atomic(void *) *)ref, area, AREA_BYTES);
  }
  return area;
}

/* Slot index of a block start in its segment's area, or SIZE_MAX. */
static size_t slot_index(kiln_segment_t *segment, kiln_page_t *page, uintptr_t block) {
  if (segment->kind == KILN_SEGMENT_HUGE) return block == (uintptr_t)page->start ? 0 : SIZE_MAX;
  size_t index = kiln_page_block_index(page, (const void *)block);
  if (index >= RECORDS_PER_PAGE) return SIZE_MAX;
  return (size_t)page->page_index * RECORDS_PER_PAGE + index;
}

kiln_live_t *kiln_records_slot_in(kiln_page_t *page, uintptr_t block, bool make) {
  /* Page metadata lives in its segment's header, at the segment's start,
   * which is aligned to KILN_SEGMENT_SIZE (types.h). */
  kiln_segment_t *segment = (kiln_segment_t *)((uintptr_t)page & ~(uintptr_t)KILN_SEGMENT_MASK);
  size_t index = slot_index(segment, page, block);
  if (index == SIZE_MAX) return NULL;
  kiln_live_t *area = area_of((uintptr_t)segment >> KILN_SEGMENT_SHIFT, make);
  return area == NULL ? NULL : &area[index];
}

kiln_live_t *kiln_records_slot(uintptr_t block, bool make) {
  kiln_segment_t *segment = kiln_segment_of((const void *)block);
  if (segment == NULL) return NULL;
  kiln_page_t *page = kiln_segment_page_of(segment, (const void *)block);
  return page == NULL ? NULL : kiln_records_slot_in(page, block, make);
}

/* The slots a page may have used: its carved blocks (a huge page: one). */
static size_t page_slots(const kiln_segment_t *segment, const kiln_page_t *page) {
  if (segment->kind == KILN_SEGMENT_HUGE) return 1;
  size_t carved = __atomic_load_n(&page->capacity, __ATOMIC_RELAXED);
  return carved < RECORDS_PER_PAGE ? carved : RECORDS_PER_PAGE;
}

/* Every live record sits in a carved block of a page of a segment on the
 * process-wide list: a page's capacity only grows while it is in use, and
 * its records are all empty when it is freed. */
static void visit_segment(kiln_segment_t *segment, void *arg) {
  const kiln_live_visitor_t *v = arg;
  kiln_live_t *area = area_of((uintptr_t)segment >> KILN_SEGMENT_SHIFT, false);
  if (area == NULL) return;
  for (uint32_t i = 0; i < segment->page_count; i++) {
    kiln_page_t *page = &segment->pages[i];
    kiln_live_t *slots = &area[(size_t)i * RECORDS_PER_PAGE];
    size_t n = page_slots(segment, page);
    for (size_t j = 0; j < n; j++)
      if (__atomic_load_n(&slots[j].block, __ATOMIC_ACQUIRE) != 0) v->visit(&slots[j], v->arg);
  }
}

void kiln_records_visit(kiln_live_visitor_t visitor) { kiln_segment_visit_all(visit_segment, &visitor); }

void kiln_records_discard(kiln_segment_t *segment, kiln_page_t *page) {
  kiln_live_t *area = area_of((uintptr_t)segment >> KILN_SEGMENT_SHIFT, false);
  if (area == NULL) return;
  size_t os_page = kiln_os_page_size();
  uintptr_t start = (uintptr_t)area, end = start + AREA_BYTES;
  if (page != NULL) {
    start = (uintptr_t)&area[(size_t)page->page_index * RECORDS_PER_PAGE];
    end = start + RECORDS_PER_PAGE * sizeof(kiln_live_t);
  }
  kiln_os_discard((void *)start, kiln_align_down(end - start, os_page));
}
