/* thread.c — process and thread life: lazy initialisation with no recursion
 * into malloc, thread records, thread exit (abandoning the thread's pages to
 * others), fork, and the exit-time reports.
 *
 * Bootstrap: the first allocation of a thread finds kiln_heap_empty in its
 * TLS slot, falls into the slow path, and lands in kiln_thread_init.  Nothing
 * on that path calls malloc: records come from kiln_record_alloc (OS memory),
 * options are read by scanning `environ`, and pthread_key_create /
 * pthread_setspecific (for keys below PTHREAD_KEY_2NDLEVEL_SIZE) do not
 * allocate.  pthread_atfork may allocate: it runs after the calling thread's
 * heap is set, so the nested malloc is served normally.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "heap.h"
#include "os.h"
#include "pool.h"
#include "segment.h"
#include "stats.h"

__thread kiln_heap_t *kiln_tl_heap __attribute__((tls_model("initial-exec"))) = &kiln_heap_empty;

typedef struct kiln_thread_s {
  kiln_tld_t tld;
  kiln_heap_t heap;
} kiln_thread_t;

/* --- thread numbers (internal.h) ------------------------------------------ */
__thread uint32_t kiln_thread_number_own __attribute__((tls_model("initial-exec")));
static _Atomic uint32_t thread_numbers;

uint32_t kiln_thread_number_assign(void) {
  kiln_thread_number_own = atomic_fetch_add_explicit(&thread_numbers, 1, memory_order_relaxed) + 1;
  return kiln_thread_number_own;
}

/* --- records: type-stable internal memory ---------------------------------- */
#define RECORD_CHUNK ((size_t)64 << 10)

typedef struct record_free_s {
  struct record_free_s *next;
} record_free_t;

static pthread_mutex_t record_mutex = PTHREAD_MUTEX_INITIALIZER;
/* Free lists per record size (there are two sizes: thread and heap). */
typedef struct record_class_s {
  size_t size;
  record_free_t *free;
} record_class_t;
static record_class_t record_classes[2];
static uint8_t *record_chunk;
static size_t record_chunk_left;

static record_class_t *record_class_for(size_t size) {
  for (size_t i = 0; i < 2; i++) {
    if (record_classes[i].size == size) return &record_classes[i];
    if (record_classes[i].size == 0) {
      record_classes[i].size = size;
      return &record_classes[i];
    }
  }
  kiln_fatal("kiln: internal error: a third record size (%zu)", size);
}

void *kiln_record_alloc(size_t size) {
  size = kiln_align_up(size, 64);
  pthread_mutex_lock(&record_mutex);
  record_class_t *cls = record_class_for(size);
  void *record = cls->free;
  if (record != NULL) {
    cls->free = cls->free->next;
  } else {
    if (record_chunk_left < size) {
      /* Records are never unmapped (type stability); like all of Kiln's
       * memory they count as committed and against the limit. */
      record_chunk = kiln_os_alloc(RECORD_CHUNK);
      record_chunk_left = record_chunk ? RECORD_CHUNK : 0;
    }
    if (record_chunk != NULL && record_chunk_left >= size) {
      record = record_chunk;
      record_chunk += size;
      record_chunk_left -= size;
    }
  }
  pthread_mutex_unlock(&record_mutex);
  if (record != NULL) memset(record, 0, size);
  return record;
}

void kiln_record_free(void *record, size_t size) {
  size = kiln_align_up(size, 64);
  pthread_mutex_lock(&record_mutex);
  record_class_t *cls = record_class_for(size);
  record_free_t *node = record;
  node->next = cls->free;
  cls->free = node;
  pthread_mutex_unlock(&record_mutex);
}

/* --- the list of live threads (statistics merge their counters) ------------ */
static kiln_thread_t *threads_all;
static pthread_mutex_t threads_mutex = PTHREAD_MUTEX_INITIALIZER;
static kiln_tld_stats_t dead_thread_stats; /* counters of exited threads, under threads_mutex */

/* --- process init ----------------------------------------------------------- */
static pthread_key_t thread_key;
static _Atomic int process_state; /* 0 none, 1 running init, 2 done */
static _Atomic uintptr_t process_init_thread;

static void thread_done(void *value);
static void fork_prepare(void);
static void fork_parent(void);
static void fork_child(void);

void kiln_process_init(void) {
  if (atomic_load_explicit(&process_state, memory_order_acquire) == 2) return;
  int expected = 0;
  if (!atomic_compare_exchange_strong(&process_state, &expected, 1)) {
    /* Someone else is initialising: if it is us (a nested allocation from
     * inside init), carry on; otherwise wait for it. */
    if (atomic_load(&process_init_thread) == kiln_thread_id()) return;
    while (atomic_load_explicit(&process_state, memory_order_acquire) != 2) kiln_os_yield();
    return;
  }
  atomic_store(&process_init_thread, kiln_thread_id());
  kiln_options_init();
  unsigned long long limit = (unsigned long long)kiln_option(KILN_OPTION_LIMIT);
  if (limit != 0) kiln_set_limit((size_t)limit);
  kiln_check_init();
  if (kiln_option(KILN_OPTION_SHOW_STATS) || kiln_check_enabled()) kiln_os_keep_stderr();
  if (pthread_key_create(&thread_key, thread_done) != 0) kiln_fatal("kiln: pthread_key_create failed");
  atomic_store_explicit(&process_state, 2, memory_order_release);
  /* May allocate: after state 2, so that allocation takes the normal path. */
  pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Run init early too, from the library's constructor, so options are read
 * before main (and KILN_VERBOSE reports them). */
__attribute__((constructor)) static void kiln_constructor(void) {
  kiln_process_init();
}

/* --- threads ------------------------------------------------------------------ */
kiln_heap_t *kiln_thread_init(void) {
  kiln_process_init();
  kiln_heap_t *heap = kiln_tl_heap;
  if (heap != &kiln_heap_empty) return heap; /* a nested call set it up */
  kiln_thread_t *thread = kiln_record_alloc(sizeof(kiln_thread_t));
  if (thread == NULL) kiln_fatal("kiln: out of memory while setting up a thread");
  kiln_tld_t *tld = &thread->tld;
  tld->thread_id = kiln_thread_id();
  kiln_heap_setup(&thread->heap, tld, false);
  tld->heap_backing = &thread->heap;
  tld->heaps = &thread->heap;
  kiln_tl_heap = &thread->heap;
  pthread_mutex_lock(&threads_mutex);
  tld->thread_next = threads_all;
  threads_all = thread;
  pthread_mutex_unlock(&threads_mutex);
  kiln_stats_count(KILN_STAT_THREADS_STARTED, 1);
  /* Ask for thread_done at exit (no allocation for an early key). */
  pthread_setspecific(thread_key, thread);
  return &thread->heap;
}

static void stats_add(kiln_tld_stats_t *into, const kiln_tld_stats_t *from) {
  for (size_t i = 0; i < KILN_BIN_COUNT; i++)
    into->bin_alloc_count[i] += __atomic_load_n(&from->bin_alloc_count[i], __ATOMIC_RELAXED);
  into->remote_frees += __atomic_load_n(&from->remote_frees, __ATOMIC_RELAXED);
}

/* Thread exit: every heap of the thread hands its pages over; the records go
 * back for reuse.  Later allocations by this thread (other keys'
 * destructors) start a new record, and glibc calls us again for it. */
static void thread_done(void *value) {
  kiln_thread_t *thread = value;
  if (thread == NULL) return;
  kiln_tld_t *tld = &thread->tld;
  kiln_tl_heap = &kiln_heap_empty;
  for (kiln_heap_t *heap = tld->heaps; heap != NULL;) {
    kiln_heap_t *next = heap->next;
    kiln_heap_abandon(heap);
    if (heap->is_first_class) kiln_record_free(heap, sizeof(kiln_heap_t));
    heap = next;
  }
  kiln_segment_purge(tld, true);
  pthread_mutex_lock(&threads_mutex);
  /* Flush the page counters still in live pages? They travel with the pages;
   * only the tld's own counters are merged here. */
  stats_add(&dead_thread_stats, &tld->stats);
  kiln_thread_t **link = &threads_all;
  while (*link != NULL && *link != thread) link = &(*link)->tld.thread_next;
  if (*link == thread) *link = thread->tld.thread_next;
  pthread_mutex_unlock(&threads_mutex);
  kiln_record_free(thread, sizeof(kiln_thread_t));
}

void kiln_threads_stats(kiln_tld_stats_t *out) {
  pthread_mutex_lock(&threads_mutex);
  *out = dead_thread_stats;
  for (kiln_thread_t *t = threads_all; t != NULL; t = t->tld.thread_next) stats_add(out, &t->tld.stats);
  pthread_mutex_unlock(&threads_mutex);
}

/* --- first-class heaps live in the calling thread's list -------------------- */
kiln_heap_t *kiln_heap_new(void) {
  kiln_heap_t *backing = kiln_tl_heap;
  if (backing == &kiln_heap_empty) backing = kiln_thread_init();
  kiln_heap_t *heap = kiln_record_alloc(sizeof(kiln_heap_t));
  if (heap == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  kiln_tld_t *tld = backing->tld;
  kiln_heap_setup(heap, tld, true);
  heap->next = tld->heaps;
  tld->heaps = heap;
  return heap;
}

static void heap_unlink(kiln_heap_t *heap) {
  kiln_heap_t **link = &heap->tld->heaps;
  while (*link != NULL && *link != heap) link = &(*link)->next;
  if (*link == heap) *link = heap->next;
}

void kiln_heap_destroy(kiln_heap_t *heap) {
  if (heap == NULL || !heap->is_first_class) return;
  kiln_heap_drop_all(heap);
  heap_unlink(heap);
  kiln_record_free(heap, sizeof(kiln_heap_t));
}

/* --- fork ------------------------------------------------------------------------
 * The child has one thread: any lock another thread held at fork() would stay
 * held forever, so prepare takes every Kiln lock and both sides release it.
 * Kiln's locks are leaves (nothing is called while holding them that takes
 * another lock, stdio's included), so taking them here cannot deadlock; the
 * pools' locks come first (pool.c's own order among them). */
static void fork_prepare(void) {
  kiln_pool_fork_prepare(); /* first: the pools' locks are taken before any of the core's */
  pthread_mutex_lock(&threads_mutex);
  pthread_mutex_lock(&record_mutex);
  kiln_segment_lock();
  kiln_huge_cache_lock();
}

static void fork_core_release(void) {
  kiln_huge_cache_unlock();
  kiln_segment_unlock();
  pthread_mutex_unlock(&record_mutex);
  pthread_mutex_unlock(&threads_mutex);
}

static void fork_parent(void) {
  fork_core_release();
  kiln_pool_fork_parent();
}

/* The child's only thread is the one that took the locks in fork_prepare:
 * it releases them (re-initialising a held mutex is undefined), and the
 * pools forget the threads that are gone. */
static void fork_child(void) {
  fork_core_release();
  kiln_pool_fork_child();
}

/* --- exit ---------------------------------------------------------------------- */
__attribute__((destructor)) static void kiln_destructor(void) {
  if (kiln_check_enabled()) kiln_check_at_exit();
  if (kiln_option(KILN_OPTION_SHOW_STATS)) kiln_stats_print_summary();
}
