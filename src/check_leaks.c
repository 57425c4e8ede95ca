/* check_leaks.c — the leak report at exit (KILN_CHECK=leaks, KILN_LEAKS=1).
 *
 * Which live blocks are leaks?  "Every block still allocated" would list the
 * C library's own long-lived blocks (stdio buffers, dlopen's link maps, ...)
 * in every report, so the report follows LeakSanitizer and valgrind: a block
 * is *leaked* when no pointer to it (or into it) is found in the roots —
 * the writable data and TLS of every loaded object, the exiting thread's
 * stack — nor in a block found that way (transitively).  The
 * leaked blocks are listed, grouped by allocation stack, largest total
 * first; the still-reachable ones are summed up in one line.  Blocks the
 * dynamic loader allocated (threads' TLS and DTV, link maps) count as
 * reachable: their references live where the scan does not look (exited
 * threads' descriptors in glibc's stack cache).  Known gaps: other threads'
 * stacks and registers are not scanned (threads still running at exit may
 * hold the only pointer to a block; it is then reported), and the scan is
 * conservative (an integer that looks like a pointer keeps a block alive).
 *
 * The scan holds every shard of the side table locked, so that no block can
 * be freed (and its memory unmapped) while it is read; the roots are listed
 * first, because dl_iterate_phdr takes the loader's lock and a thread inside
 * dlopen might be waiting in malloc for one of our shards.  Scratch memory
 * comes from the OS; qsort (which may malloc) is replaced by a heapsort.
 */
#define _GNU_SOURCE
#include <link.h>
#include <string.h>

#include "check_internal.h"
#include "os.h"

#define ROOTS_MAX 512

typedef struct leak_block_s {
  uintptr_t user;
  size_t size;
  kiln_stack_id_t stack;
  uint32_t marked;
} leak_block_t;

typedef struct leak_group_s {
  kiln_stack_id_t stack;
  size_t count;
  size_t bytes;
} leak_group_t;

typedef struct range_s {
  uintptr_t lo, hi;
} range_t;

typedef struct scan_s {
  leak_block_t *blocks;
  size_t count, capacity;
  uint32_t *work;
  size_t work_count;
  uintptr_t lo, hi; /* [lowest user, highest end) of all blocks */
  range_t roots[ROOTS_MAX];
  size_t root_count;
} scan_t;

/* --- heapsort (qsort may allocate) -------------------------------------------- */
typedef bool less_fn(const void *a, const void *b);

static void swap_bytes(uint8_t *a, uint8_t *b, size_t size) {
  for (size_t i = 0; i < size; i++) {
    uint8_t t = a[i];
    a[i] = b[i];
    b[i] = t;
  }
}

static void sift_down(uint8_t *base, size_t size, size_t root, size_t n, less_fn *less) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && less(base + child * size, base + (child + 1) * size)) child++;
    if (!less(base + root * size, base + child * size)) return;
    swap_bytes(base + root * size, base + child * size, size);
    root = child;
  }
}

static void heap_sort(void *array, size_t n, size_t size, less_fn *less) {
  uint8_t *base = array;
  for (size_t i = n / 2; i-- > 0;) sift_down(base, size, i, n, less);
  for (size_t end = n; end-- > 1;) {
    swap_bytes(base, base + end * size, size);
    sift_down(base, size, 0, end, less);
  }
}

static bool block_less(const void *a, const void *b) {
  return ((const leak_block_t *)a)->user < ((const leak_block_t *)b)->user;
}

static bool group_more_bytes(const void *a, const void *b) {
  /* "less" for a descending sort: a sorts after b when it has fewer bytes. */
  const leak_group_t *x = a, *y = b;
  return x->bytes > y->bytes || (x->bytes == y->bytes && x->stack > y->stack);
}

static bool stack_less(const void *a, const void *b) {
  return ((const leak_block_t *)a)->stack < ((const leak_block_t *)b)->stack;
}

/* --- roots ------------------------------------------------------------------------- */
static void add_root(scan_t *scan, uintptr_t lo, uintptr_t hi) {
  if (hi > lo && scan->root_count < ROOTS_MAX) scan->roots[scan->root_count++] = (range_t){lo, hi};
}

static int collect_module_roots(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  scan_t *scan = arg;
  /* Kiln's own data (the segment map, options) holds no program pointers:
   * skip it when Kiln is a module of its own. */
  uintptr_t self = (uintptr_t)collect_module_roots;
  for (unsigned i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && info->dlpi_name[0] != '\0' &&
        self >= info->dlpi_addr + ph->p_vaddr && self < info->dlpi_addr + ph->p_vaddr + ph->p_memsz)
      return 0;
  }
  for (unsigned i = 0; i < info->dlpi_phnum; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type == PT_LOAD && (ph->p_flags & PF_W))
      add_root(scan, info->dlpi_addr + ph->p_vaddr, info->dlpi_addr + ph->p_vaddr + ph->p_memsz);
    if (ph->p_type == PT_TLS && info->dlpi_tls_data != NULL)
      add_root(scan, (uintptr_t)info->dlpi_tls_data, (uintptr_t)info->dlpi_tls_data + ph->p_memsz);
  }
  return 0;
}

/* --- marking ------------------------------------------------------------------------ */
static void gather(kiln_live_t *rec, void *arg) {
  scan_t *scan = arg;
  rec->marked = 0;
  if (scan->count == scan->capacity) return; /* grew since sizing: those blocks go unreported */
  uintptr_t user = rec->block + rec->user_off;
  scan->blocks[scan->count++] = (leak_block_t){.user = user, .size = rec->size, .stack = rec->stack};
}

/* The block that p points into (or at, for a 0-byte block), if any. */
static leak_block_t *block_at(scan_t *scan, uintptr_t p) {
  if (p < scan->lo || p >= scan->hi) return NULL;
  size_t lo = 0, hi = scan->count;
  while (lo < hi) { /* first block with user > p */
    size_t mid = lo + (hi - lo) / 2;
    if (scan->blocks[mid].user <= p) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0) return NULL;
  leak_block_t *b = &scan->blocks[lo - 1];
  return p < b->user + (b->size ? b->size : 1) ? b : NULL;
}

static void scan_range(scan_t *scan, uintptr_t lo, uintptr_t hi) {
  lo = kiln_align_up(lo, sizeof(uintptr_t));
  for (uintptr_t a = lo; a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t)) {
    uintptr_t word;
    memcpy(&word, (const void *)a, sizeof word);
    leak_block_t *b = block_at(scan, word);
    if (b != NULL && !b->marked) {
      b->marked = 1;
      scan->work[scan->work_count++] = (uint32_t)(b - scan->blocks);
    }
  }
}

static void mark(scan_t *scan) {
  for (size_t i = 0; i < scan->root_count; i++) scan_range(scan, scan->roots[i].lo, scan->roots[i].hi);
  while (scan->work_count > 0) {
    leak_block_t *b = &scan->blocks[scan->work[--scan->work_count]];
    scan_range(scan, b->user, b->user + b->size);
  }
}

/* The calling thread's stack from `from` (a frame of the exit path above
 * the scanner's own frames, whose locals hold copies of pointers into the
 * blocks being scanned) up to the top.  Its registers are not roots: at exit
 * they hold nothing of the program's. */
static void add_stack_root(scan_t *scan, uintptr_t from) {
  uintptr_t lo, hi;
  if (kiln_stack_bounds(&lo, &hi) && from >= lo && from < hi) add_root(scan, from, hi);
}

/* --- the report --------------------------------------------------------------------- */
static const char *plural(size_t n) { return n == 1 ? "" : "s"; }

void kiln_leaks_report(uintptr_t stack_from) {
  size_t estimate = kiln_table_live_count() + 4096;
  size_t bytes = estimate * (sizeof(leak_block_t) + sizeof(uint32_t) + sizeof(leak_group_t)) + sizeof(scan_t);
  bytes = kiln_align_up(bytes, kiln_os_page_size());
  uint8_t *scratch = kiln_os_alloc(bytes);
  if (scratch == NULL) {
    kiln_message("kiln: leak report skipped: no memory for it");
    return;
  }
  scan_t *scan = (scan_t *)scratch;
  scan->blocks = (leak_block_t *)(scratch + sizeof(scan_t));
  scan->capacity = estimate;
  scan->work = (uint32_t *)(scan->blocks + estimate);
  leak_group_t *groups = (leak_group_t *)kiln_align_up((uintptr_t)(scan->work + estimate), 8);

  dl_iterate_phdr(collect_module_roots, scan);
  add_stack_root(scan, stack_from);
  kiln_table_lock_all();
  kiln_table_visit_locked(gather, scan);
  heap_sort(scan->blocks, scan->count, sizeof(leak_block_t), block_less);
  if (scan->count > 0) {
    scan->lo = scan->blocks[0].user;
    for (size_t i = 0; i < scan->count; i++) {
      uintptr_t end = scan->blocks[i].user + (scan->blocks[i].size ? scan->blocks[i].size : 1);
      if (end > scan->hi) scan->hi = end;
    }
  }
  mark(scan);
  kiln_table_unlock_all();

  /* Group the unreachable blocks by stack. */
  size_t leaked = 0, reachable = 0, leaked_bytes = 0, reachable_bytes = 0, group_count = 0;
  size_t kept = 0;
  for (size_t i = 0; i < scan->count; i++) {
    leak_block_t *b = &scan->blocks[i];
    if (b->marked) {
      reachable++;
      reachable_bytes += b->size;
    } else {
      scan->blocks[kept++] = *b;
    }
  }
  heap_sort(scan->blocks, kept, sizeof(leak_block_t), stack_less);
  for (size_t i = 0; i < kept; i++) {
    leak_block_t *b = &scan->blocks[i];
    if (group_count == 0 || groups[group_count - 1].stack != b->stack)
      groups[group_count++] = (leak_group_t){.stack = b->stack};
    groups[group_count - 1].count++;
    groups[group_count - 1].bytes += b->size;
    leaked++;
    leaked_bytes += b->size;
  }
  /* Blocks of the dynamic loader (the DTV and TLS of threads, link maps)
   * are referenced from places the scan does not see, such as the
   * descriptors of exited threads in glibc's stack cache: counted as
   * reachable, as LeakSanitizer does (its use_ld_allocations). */
  kiln_report_begin(); /* symbolising needs it */
  size_t kept_groups = 0;
  for (size_t i = 0; i < group_count; i++) {
    if (kiln_stack_from_loader(groups[i].stack)) {
      reachable += groups[i].count;
      reachable_bytes += groups[i].bytes;
      leaked -= groups[i].count;
      leaked_bytes -= groups[i].bytes;
    } else {
      groups[kept_groups++] = groups[i];
    }
  }
  group_count = kept_groups;
  heap_sort(groups, group_count, sizeof(leak_group_t), group_more_bytes);

  if (leaked > 0) {
    for (size_t i = 0; i < group_count; i++) {
      char site[256];
      kiln_format_site(site, sizeof site, groups[i].stack);
      kiln_message("kiln: leak of %zu byte%s in %zu block%s allocated at %s", groups[i].bytes,
                   plural(groups[i].bytes), groups[i].count, plural(groups[i].count), site);
      kiln_print_stack("allocated at", groups[i].stack);
    }
    kiln_message("kiln: %zu byte%s leaked in %zu block%s from %zu site%s (%zu byte%s in %zu block%s still "
                 "reachable)",
                 leaked_bytes, plural(leaked_bytes), leaked, plural(leaked), group_count, plural(group_count),
                 reachable_bytes, plural(reachable_bytes), reachable, plural(reachable));
  }
  /* A leak is reported, not fatal: the report runs at exit, and aborting
   * there would throw away the program's unflushed output and status. */
  kiln_report_done();
  kiln_os_free(scratch, bytes, bytes);
}
