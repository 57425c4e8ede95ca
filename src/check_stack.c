/* check_stack.c — call stacks for the checking mode: capture, and a depot
 * that stores each distinct stack once and names it by a 32-bit id.
 *
 * Capture: a frame-pointer walk.  Why not glibc's backtrace()?  It unwinds
 * with the DWARF CFI tables (right even through code built without frame
 * pointers) but costs about a microsecond per frame, on every malloc and
 * every free, and its first call dlopens libgcc_s, which mallocs.  The walk
 * costs a few nanoseconds per frame and never allocates — the choice of
 * AddressSanitizer's "fast unwinder" for malloc/free stacks.  Its price:
 * frames of code built without frame pointers are skipped (the allocation
 * site itself is always right: Kiln is built with -fno-omit-frame-pointer,
 * so the walk reaches the return address into the caller of malloc; deeper
 * frames need the program's frame pointers).  Every frame read is checked
 * against the thread's stack bounds, so a garbage frame pointer ends the
 * walk instead of faulting.
 *
 * The bounds come from pthread_getattr_np once per thread; it mallocs (for
 * the main thread it reads /proc/self/maps), so the call is guarded against
 * recursion and only made after the library's constructors have run (before
 * that, libc may not be ready for it): allocations before then, and the
 * nested ones, get no stack.
 *
 * The depot: an open-addressing table of 2^18 atomic pointers to entries
 * {hash, depth, frames[]} carved from OS memory.  Look-ups are lock-free
 * (acquire loads of published entries); insertion publishes a fully written
 * entry with a release CAS, so readers never see half an entry.  Entries are
 * never freed: stacks repeat, so the depot stays small (the leak report and
 * every message refer to stacks by id).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>

#include "check_internal.h"
#include "os.h"

#ifdef KILN_VALGRIND
#include <valgrind/memcheck.h>
#else
#define VALGRIND_DISABLE_ERROR_REPORTING ((void)0)
#define VALGRIND_ENABLE_ERROR_REPORTING ((void)0)
#endif

#define DEPOT_BITS 18
#define DEPOT_SLOTS ((size_t)1 << DEPOT_BITS)
#define DEPOT_MAX_PROBES 64
#define DEPOT_CHUNK ((size_t)256 << 10)

typedef struct depot_entry_s {
  uint64_t hash;
  size_t depth;
  uintptr_t frames[];
} depot_entry_t;

static _Atomic(depot_entry_t *) *depot_slots; /* DEPOT_SLOTS entries */
static pthread_mutex_t depot_mutex = PTHREAD_MUTEX_INITIALIZER; /* guards the chunk below */
static uint8_t *depot_chunk;
static size_t depot_chunk_left;
static _Atomic bool capture_ready;

/* Per-thread: stack bounds (0 until known), a recursion guard.  Initial-exec
 * TLS like the core's heap pointer: 24 bytes of the static TLS surplus
 * (with the thread's number, check_internal.h), and no __tls_get_addr call
 * (which may allocate). */
static __thread struct {
  uintptr_t lo, hi;
  uint32_t busy;
} tl_stack __attribute__((tls_model("initial-exec")));

/* Per thread (initial-exec TLS too, 128 bytes), the last stacks it
 * interned, by hash (direct-mapped): a program allocates and frees from a
 * few sites over and over, and the depot's slot and entry for them, in a
 * 2 MiB table, were cache misses once the checking mode's quarantine had
 * streamed through the cache (a quarter of the capture's time in
 * bench/workloads/simple).  A hit trusts the 64-bit hash and the depth, as
 * two different stacks agree on both by chance with probability about
 * 2^-64; the depot compares the frames. */
#define RECENT_STACKS 8
static __thread struct {
  uint64_t hash;
  uint32_t depth;
  kiln_stack_id_t id;
} tl_recent[RECENT_STACKS] __attribute__((tls_model("initial-exec")));

void kiln_stack_init(void) {
  depot_slots = kiln_os_alloc(DEPOT_SLOTS * sizeof *depot_slots);
}

/* Capture only once libc is fully up (see the header comment). */
__attribute__((constructor)) static void stack_ready(void) {
  atomic_store_explicit(&capture_ready, true, memory_order_release);
}

static void stack_find_bounds(void) {
  pthread_attr_t attr;
  void *addr;
  size_t size;
  tl_stack.hi = 1; /* "tried": a failure is not retried on every call */
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size > 0) {
    tl_stack.lo = (uintptr_t)addr;
    tl_stack.hi = (uintptr_t)addr + size;
  }
  pthread_attr_destroy(&attr);
}

bool kiln_stack_bounds(uintptr_t *lo, uintptr_t *hi) {
  if (tl_stack.hi == 0 && !tl_stack.busy && atomic_load_explicit(&capture_ready, memory_order_acquire)) {
    tl_stack.busy = 1;
    stack_find_bounds();
    tl_stack.busy = 0;
  }
  if (tl_stack.hi <= 1) return false;
  *lo = tl_stack.lo;
  *hi = tl_stack.hi;
  return true;
}

/* One step of the stack hash, applied to each frame as the walk reads it
 * (so the frames are not read a second time to hash them). */
static inline uint64_t stack_hash_step(uint64_t h, uintptr_t frame) {
  h ^= frame;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 32);
}

static inline uint64_t stack_hash_seed(void) { return 0x9e3779b97f4a7c15ull; }

/* The depth goes in last: the walk does not know it until the end. */
static inline uint64_t stack_hash_final(uint64_t h, size_t depth) { return stack_hash_step(h, depth); }

static depot_entry_t *depot_new_entry(uint64_t hash, const uintptr_t *frames, size_t depth) {
  size_t bytes = sizeof(depot_entry_t) + depth * sizeof(uintptr_t);
  pthread_mutex_lock(&depot_mutex);
  if (depot_chunk_left < bytes) {
    depot_chunk = kiln_os_alloc(DEPOT_CHUNK);
    depot_chunk_left = depot_chunk ? DEPOT_CHUNK : 0;
  }
  depot_entry_t *entry = NULL;
  if (depot_chunk_left >= bytes) {
    entry = (depot_entry_t *)depot_chunk;
    depot_chunk += bytes;
    depot_chunk_left -= bytes;
  }
  pthread_mutex_unlock(&depot_mutex);
  if (entry == NULL) return NULL;
  entry->hash = hash;
  entry->depth = depth;
  for (size_t i = 0; i < depth; i++) entry->frames[i] = frames[i];
  return entry;
}

static bool entry_equals(const depot_entry_t *e, uint64_t hash, const uintptr_t *frames, size_t depth) {
  if (e->hash != hash || e->depth != depth) return false;
  for (size_t i = 0; i < depth; i++) /* a loop, not memcmp: no libc call per malloc (-fno-builtin) */
    if (e->frames[i] != frames[i]) return false;
  return true;
}

/* Inlined into the capture, its one caller: a call's prologue and epilogue
 * cost more than the usual look-up (one slot, a few frames compared). */
__attribute__((always_inline)) static inline kiln_stack_id_t depot_intern(const uintptr_t *frames, size_t depth,
                                                                          uint64_t hash) {
  if (depth == 0 || depot_slots == NULL) return 0;
  size_t slot = (size_t)(hash >> (64 - DEPOT_BITS));
  depot_entry_t *fresh = NULL;
  for (size_t probe = 0; probe < DEPOT_MAX_PROBES; probe++, slot = (slot + 1) & (DEPOT_SLOTS - 1)) {
    /* Acquire pairs with the release CAS below: the entry's contents are
     * visible before it is compared. */
    depot_entry_t *entry = atomic_load_explicit(&depot_slots[slot], memory_order_acquire);
    while (entry == NULL) {
      if (fresh == NULL) fresh = depot_new_entry(hash, frames, depth);
      if (fresh == NULL) return 0;
      if (atomic_compare_exchange_strong_explicit(&depot_slots[slot], &entry, fresh, memory_order_release,
                                                  memory_order_acquire))
        return (kiln_stack_id_t)(slot + 1);
      /* Lost the race: `entry` is the winner; compare with it.  Our entry
       * stays unused (a few bytes, rare). */
    }
    if (entry_equals(entry, hash, frames, depth)) return (kiln_stack_id_t)(slot + 1);
  }
  return 0;
}

size_t kiln_stack_frames(kiln_stack_id_t id, const uintptr_t **frames) {
  if (id == 0 || depot_slots == NULL || id > DEPOT_SLOTS) return 0;
  depot_entry_t *entry = atomic_load_explicit(&depot_slots[id - 1], memory_order_acquire);
  if (entry == NULL) return 0;
  *frames = entry->frames;
  return entry->depth;
}

/* The walk: on x86-64 and AArch64 with frame pointers, a frame record is
 * {saved frame pointer, return address} at the frame pointer, and records
 * link towards the stack's base (higher addresses).  Each record read must
 * lie in [our own frame, stack top), strictly above the previous one: the
 * memory between the current frame and the top of the stack is mapped, so
 * no read can fault, and the walk cannot loop.
 *
 * It starts at kiln_stack_capture's own record, whose return address is the
 * call site in the caller: so the stack begins at the caller with nothing
 * to skip.  That needs kiln_stack_capture to have a frame record of its
 * own, hence noinline (Kiln is built with -fno-omit-frame-pointer).  The
 * frames after it are Kiln's (the hook, the entry point): kept, reports
 * skip every leading Kiln frame by symbol.  The frames are hashed as they
 * are read: at the usual depth of a few frames, the fixed costs of a
 * capture (a second function, a second pass) were most of its price. */
static inline kiln_stack_id_t stack_walk(uintptr_t fp, uintptr_t hi) {
  uintptr_t frames[KILN_STACK_DEPTH];
  size_t depth = 0;
  uint64_t hash = stack_hash_seed();
  if (hi < 2 * sizeof(uintptr_t)) return 0;
  uintptr_t last = hi - 2 * sizeof(uintptr_t); /* the highest record that fits */
  while (depth < KILN_STACK_DEPTH && fp <= last && (fp & (sizeof(uintptr_t) - 1)) == 0) {
    const uintptr_t *record = (const uintptr_t *)fp;
    uintptr_t ret = record[1];
    if (ret < 4096) break;
    frames[depth++] = ret;
    hash = stack_hash_step(hash, ret);
    uintptr_t next = record[0];
    if (next <= fp) break;
    fp = next;
  }
  hash = stack_hash_final(hash, depth);
  size_t way = (size_t)hash & (RECENT_STACKS - 1);
  if (tl_recent[way].hash == hash && tl_recent[way].depth == depth && tl_recent[way].id != 0)
    return tl_recent[way].id;
  kiln_stack_id_t id = depot_intern(frames, depth, hash);
  tl_recent[way].hash = hash;
  tl_recent[way].depth = (uint32_t)depth;
  tl_recent[way].id = id;
  return id;
}

/* Under valgrind the walk reads stack slots of frames without a frame
 * pointer, which memcheck would call uninitialised: its error reporting is
 * paused for the walk (the program's own accesses are checked as ever). */
__attribute__((noinline)) kiln_stack_id_t kiln_stack_capture(void) {
  uintptr_t lo = tl_stack.lo, hi = tl_stack.hi;
  if (kiln_unlikely(hi <= 1) && (tl_stack.busy || !kiln_stack_bounds(&lo, &hi))) return 0;
  uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
  if (fp < lo || fp >= hi) return 0; /* on another stack (signal, coroutine) */
  if (kiln_likely(!kiln_check_config.valgrind)) return stack_walk(fp, hi);
  VALGRIND_DISABLE_ERROR_REPORTING;
  kiln_stack_id_t id = stack_walk(fp, hi);
  VALGRIND_ENABLE_ERROR_REPORTING;
  return id;
}

/* fork: the depot's chunk lock is a leaf lock, held across fork (the child
 * releases it like the parent). */
void kiln_stack_fork_prepare(void) { pthread_mutex_lock(&depot_mutex); }
void kiln_stack_fork_parent(void) { pthread_mutex_unlock(&depot_mutex); }
