/* check_internal.h — what the files of the checking and hardened modes share
 * with each other (never seen by the core, which only knows check.h).
 *
 *   check.c          modes, the hooks of check.h, canaries, poison, reports
 *   check_table.c    the side table: live blocks' records, freed-block
 *                    history and the quarantine, in lock-striped shards
 *   check_records.c  where live blocks' records are kept: a slot per block
 *                    a page can carve, found by address arithmetic
 *   check_stack.c    call-stack capture (frame-pointer walk) and the stack
 *                    depot that interns stacks as 32-bit ids
 *   check_symbols.c  report-time symbolisation: dladdr, ELF symbols, DWARF
 *                    line tables (file:line), without malloc
 *   check_leaks.c    the leak report at exit (reachability scan)
 *   secure.c         the hardened mode (KILN_SECURE)
 *
 * Nothing in these files calls malloc (the checking mode runs *inside* it):
 * memory comes from kiln_os_alloc, text goes out through kiln_message.
 */
#ifndef KILN_CHECK_INTERNAL_H
#define KILN_CHECK_INTERNAL_H

#include <pthread.h>

#include "check.h"
#include "internal.h"
#include "types.h"

/* --- modes (check.c) ------------------------------------------------------
 * kiln_check_mode (check.h) is the core's one switch: true when any of the
 * modes below needs the hooks.  They are fixed before the first heap exists. */
typedef struct kiln_check_config_s {
  bool check;        /* KILN_CHECK=1|leaks or KILN_LEAKS=1: the checking mode */
  bool leaks;        /* leak report at exit */
  bool report_only;  /* KILN_ON_ERROR=report: report and go on */
  bool secure;       /* KILN_SECURE=1: the hardened mode */
  bool valgrind;     /* KILN_VALGRIND build running under valgrind */
  size_t quarantine; /* bytes of freed blocks held back */
} kiln_check_config_t;

extern kiln_shared kiln_check_config_t kiln_check_config;

/* --- call stacks (check_stack.c) ------------------------------------------ */
typedef uint32_t kiln_stack_id_t; /* 0: unknown */
#define KILN_STACK_DEPTH 16

void kiln_stack_init(void);
/* The calling thread's stack, interned; 0 when it cannot be taken (stack
 * bounds unknown yet, a nested call, the depot full). */
kiln_stack_id_t kiln_stack_capture(void);
/* The frames (return addresses, innermost first) of an interned stack. */
size_t kiln_stack_frames(kiln_stack_id_t id, const uintptr_t **frames);
/* Bounds of the calling thread's stack, if known (leak scan, invalid free
 * diagnosis). */
bool kiln_stack_bounds(uintptr_t *lo, uintptr_t *hi);
void kiln_stack_fork_prepare(void);
void kiln_stack_fork_parent(void);

/* --- symbols (check_symbols.c) -------------------------------------------- */
typedef struct kiln_symbol_s {
  const char *module;   /* basename of the object file ("?" if unknown) */
  uintptr_t module_off; /* address - load address of the module */
  const char *function; /* NULL if unknown */
  uintptr_t function_off;
  const char *file;     /* basename of the source file, NULL if unknown */
  unsigned line;
  bool is_kiln;         /* the code is Kiln's own (skipped in reports) */
} kiln_symbol_t;

/* Symbolise a code address (a return address: looked up at addr - 1). */
void kiln_symbolize(uintptr_t addr, kiln_symbol_t *out);
/* What static data object holds addr: module name, and symbol if known;
 * false if addr is in no loaded module. */
bool kiln_symbolize_data(uintptr_t addr, const char **module, const char **symbol);
/* "file:line (function)", "function+0x1a (module)" or "module+0x1234" for
 * the first frame of the stack that is not Kiln's; "an unknown place". */
void kiln_format_site(char *buf, size_t size, kiln_stack_id_t id);
/* Whether the first frame that is not Kiln's is in the dynamic loader
 * (ld-linux*.so: TLS blocks, link maps). */
bool kiln_stack_from_loader(kiln_stack_id_t id);
/* Print the program's frames of a stack, one per line, after `title`. */
void kiln_print_stack(const char *title, kiln_stack_id_t id);

/* --- text ----------------------------------------------------------------- */
/* Append a formatted string to buf[*len..size) (always NUL-terminated). */
void kiln_buf_printf(char *buf, size_t size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* --- the side table (check_table.c) --------------------------------------- */
/* A live block.  `block` is the start of the core's block (the key); the
 * program's pointer is block + user_off. */
typedef struct kiln_live_s {
  uintptr_t block;
  size_t size;           /* bytes requested */
  uint32_t user_off;     /* program pointer - block */
  kiln_stack_id_t stack; /* allocation site */
  uint32_t thread;       /* kiln_thread_number() of the allocating thread */
  uint8_t align_log2;    /* requested alignment: log2 + 1 (0: none asked) */
  uint8_t marked;        /* leak scan: reachable */
  uint16_t canary_len;   /* bytes of back canary after the requested size */
} kiln_live_t;

/* A freed block, newest last in its shard's ring.  While `held`, the block
 * sits in the quarantine (not yet given back to the core). */
typedef struct kiln_freed_s {
  uintptr_t block;
  size_t size;
  uint32_t user_off;
  kiln_stack_id_t alloc_stack;
  kiln_stack_id_t free_stack;
  uint32_t alloc_thread;
  uint32_t free_thread;
  uint32_t poison_len;   /* bytes of poison written from the user pointer */
  uint8_t held;          /* in quarantine */
  uint8_t destroyed;     /* freed by kiln_heap_destroy/reset, not by free */
  uint8_t align_log2;
} kiln_freed_t;

/* A block leaving the quarantine: verify its poison, then release it. */
typedef struct kiln_evicted_s {
  kiln_freed_t rec;
  _Atomic size_t *in_flight; /* the count kiln_table_release_done lowers */
  bool shared;               /* ... a shard's (atomic decrement), not the thread's own */
} kiln_evicted_t;
#define KILN_EVICT_BATCH 8

/* --- live records' slots (check_records.c) --------------------------------- */
/* The slot of the record of a block start (a carved block of a Kiln page,
 * or a huge block); NULL if Kiln cannot hold a record for that address, or
 * (make) the slot's memory cannot be mapped.  What a slot's fields mean,
 * and who may write them: check_table.c. */
kiln_live_t *kiln_records_slot(uintptr_t block, bool make);
/* The same when the block's page is known (a carved block of it). */
kiln_live_t *kiln_records_slot_in(kiln_page_t *page, uintptr_t block, bool make);
/* A visitor of live records: visit(rec, arg) for each. */
typedef struct kiln_live_visitor_s {
  void (*visit)(kiln_live_t *rec, void *arg);
  void *arg;
} kiln_live_visitor_t;
/* Call the visitor on every live slot of every segment (takes the segment
 * lock). */
void kiln_records_visit(kiln_live_visitor_t visitor);
/* The core purges a free page's memory (page), or a whole free segment's
 * (page NULL): give the physical memory of their records back too. */
void kiln_records_discard(kiln_segment_t *segment, kiln_page_t *page);

bool kiln_table_init(void);
/* Which shard holds a block's records (tests). */
size_t kiln_table_shard_index(uintptr_t block);
/* Insert a live block of `page`; false if its slot cannot be mapped (out
 * of memory). */
bool kiln_table_insert(kiln_page_t *page, const kiln_live_t *rec);
/* Copy the live record of `block` into *out; false if not live. */
bool kiln_table_lookup(uintptr_t block, kiln_live_t *out);
/* Free `block` (of `page`) if p is its program pointer, in one critical section: take
 * the live record out (into *rec), call under_lock (checks and poison; it
 * fills in *freed), record *freed in the history and quarantine; blocks
 * pushed out of the quarantine come back in evicted[] (*evicted_count, at
 * most KILN_EVICT_BATCH) for the caller to release.  NOT_LIVE: no record;
 * INTERIOR: a live block, but p is not its pointer (*rec filled). */
typedef enum { KILN_TAKE_OK, KILN_TAKE_NOT_LIVE, KILN_TAKE_INTERIOR } kiln_take_t;
kiln_take_t kiln_table_free(kiln_page_t *page, uintptr_t block, uintptr_t p, kiln_live_t *rec, kiln_freed_t *freed,
                            void (*under_lock)(const kiln_live_t *rec, kiln_freed_t *freed, void *arg), void *arg,
                            kiln_evicted_t *evicted, size_t *evicted_count);
/* realloc in place: the block's new requested size and canary length. */
void kiln_table_resize(uintptr_t block, size_t size, uint16_t canary_len);
/* Record a free in the history (rec->held: also quarantine the block);
 * blocks pushed out of the quarantine are returned in evicted[] (at most
 * KILN_EVICT_BATCH): the caller gives them back to the core, then calls
 * kiln_table_release_done (a heap being destroyed waits for that). */
size_t kiln_table_push_freed(const kiln_freed_t *rec, kiln_evicted_t *evicted);
/* More evictions from the shard of `block` while the quarantine is over its
 * budget, after a kiln_table_free or kiln_table_push_freed that returned a
 * full batch (KILN_EVICT_BATCH): call again, releasing each batch, until
 * one comes back short. */
size_t kiln_table_evict(uintptr_t block, kiln_evicted_t *evicted);
void kiln_table_release_done(const kiln_evicted_t *evicted, size_t count);
/* Take up to `max` blocks out of the quarantine, oldest first (all shards):
 * for out-of-memory retries and at exit. */
size_t kiln_table_drain(kiln_evicted_t *evicted, size_t max);
/* The newest freed record of a block start or a program pointer. */
bool kiln_table_find_freed(uintptr_t block, uintptr_t p, kiln_freed_t *out);
/* A page is dropped with live blocks in it (heap destroy/reset): move them to
 * the history as destroyed, forget quarantined blocks of [start, end).
 * `visit` is called on every live block removed (valgrind bookkeeping). */
void kiln_table_page_dropped(uintptr_t start, size_t block_size, size_t count, kiln_stack_id_t site,
                             void (*visit)(const kiln_live_t *rec));
/* Call visit on every live record with all shards locked (leak scan); the
 * visitor must not allocate or lock. */
void kiln_table_lock_all(void);
void kiln_table_unlock_all(void);
void kiln_table_visit_locked(void (*visit)(kiln_live_t *rec, void *arg), void *arg);
/* Live records (approximate, for sizing scratch memory). */
size_t kiln_table_live_count(void);
void kiln_table_fork_prepare(void);
void kiln_table_fork_parent(void);

/* --- leaks (check_leaks.c) -------------------------------------------------- */
/* At exit; the exiting thread's stack is scanned from stack_from up (the
 * caller's frame: above the scanner's own). */
void kiln_leaks_report(uintptr_t stack_from);

/* --- hardened mode (secure.c) ----------------------------------------------- */
/* Once, when the hardened mode is on: reads its options. */
void kiln_secure_init(void);
void *kiln_secure_malloc(kiln_heap_t *heap, size_t size, size_t alignment, bool zero);
/* Page-level defences (randomised order, segment-end guard); also applied to
 * the checking mode's pages when both modes are on. */
void kiln_secure_page_init(kiln_heap_t *heap, kiln_page_t *page);
void kiln_secure_page_freed(kiln_page_t *page);
bool kiln_secure_free(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size_hint,
                      size_t alignment_hint);
void *kiln_secure_grow(kiln_segment_t *segment, kiln_page_t *page, void *p, size_t size);
bool kiln_secure_resize_in_place(kiln_page_t *page, kiln_block_t *block, const void *p, size_t size);

/* --- reports (check.c) --------------------------------------------------------
 * Serialised (one lock), printed through kiln_message; kiln_report_end
 * aborts unless KILN_ON_ERROR=report. */
void kiln_report_begin(void);
void kiln_report_end(void);
/* End a report that is never fatal (the leak report). */
void kiln_report_done(void);

#endif /* KILN_CHECK_INTERNAL_H */
