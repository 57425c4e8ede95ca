// micro.cc — google-benchmark micro-benchmarks of five allocators side by
// side, each through its own API, in ONE process: Kiln (kiln_*), glibc
// (__libc_*), mimalloc (mi_*), tcmalloc (tc_*) and jemalloc (its own unprefixed
// malloc/free from its handle, and mallocx; see below).
//
// Why the peers are dlopen'ed and not linked.  Every one of libjemalloc,
// libtcmalloc_minimal and libmimalloc also defines malloc/free; so does
// kiln_static (it overrides malloc in this binary).  Linked together, the
// first definition in symbol-search order would become the process's malloc,
// and the others' internal calls to malloc/free (their own start-up code,
// libstdc++'s operator new) could land in a different allocator than the one
// that owns the pointer.  Loaded with RTLD_LOCAL their symbols stay out of the
// global scope, and RTLD_DEEPBIND makes each library resolve its own
// references inside itself first, so each peer talks only to itself; we call
// its prefixed entry points through dlsym.  glibc's allocator stays callable
// as __libc_malloc/__libc_free even though Kiln owns `malloc` here (found in
// libc.so.6's own scope: see find_allocators).
//
// A peer whose library is missing (or fails to load) is skipped with one
// line on stderr.  Built without Kiln (bench/ configured on its own because
// src/ does not build) the Kiln rows are skipped the same way.
//
// Names: <benchmark>/<allocator>/<argument>; benchmarks are registered with
// the allocators innermost, so each allocator's runs alternate with the
// others' rather than running back to back.

#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#ifdef KILN_MICRO_HAVE_KILN
#include "kiln.h"
#endif

namespace {

struct Allocator {
  std::string name;
  void *(*malloc)(size_t);
  void (*free)(void *);
  void *(*calloc)(size_t, size_t);
  void *(*realloc)(void *, size_t);
  void *(*aligned)(size_t alignment, size_t size);
};

std::vector<Allocator> allocators;

void *must_sym(void *lib, const char *name, const char *path) {
  void *f = dlsym(lib, name);
  if (!f) std::fprintf(stderr, "micro: %s has no %s\n", path, name);
  return f;
}

// Opens the first library of `paths` that loads, or returns nullptr after
// saying why the peer is skipped.
void *open_peer(const char *peer, std::initializer_list<const char *> paths) {
  std::string errors;
  for (const char *path : paths) {
    if (void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)) return lib;
    errors += std::string("\n  ") + dlerror();
  }
  std::fprintf(stderr, "micro: skipping %s: its library is not installed or does not load:%s\n", peer,
               errors.c_str());
  return nullptr;
}

// --- jemalloc: Debian's libjemalloc2 is built without a prefix (header
// <jemalloc/jemalloc.h>, no JEMALLOC_PREFIX), so its own API is plain
// malloc/free/calloc/realloc plus mallocx/rallocx/dallocx, found in its handle.
// Plain malloc/free/calloc/realloc are used for those operations: in
// jemalloc 5.3 only they have the thread-cache fast path, and mallocx/dallocx
// take the general path, about twice as slow (measured here: 15 vs 7 ns a
// pair); timing a peer on its slow path would flatter Kiln.  mallocx serves
// aligned allocation (MALLOCX_ALIGN).  The header is not included, as it
// redeclares malloc; the flag encoding is copied from it.
void *(*je_mallocx)(size_t, int);
inline int je_mallocx_align(size_t a) { return __builtin_ctzl(a); }  // MALLOCX_ALIGN(a) = MALLOCX_LG_ALIGN(log2 a)
void *je_aligned(size_t a, size_t n) { return je_mallocx(n, je_mallocx_align(a)); }

// --- mimalloc's aligned entry point takes (size, alignment).
void *(*mi_malloc_aligned_fn)(size_t, size_t);
void *mi_aligned(size_t a, size_t n) { return mi_malloc_aligned_fn(n, a); }

void find_allocators() {
#ifdef KILN_MICRO_HAVE_KILN
  allocators.push_back({"kiln", kiln_malloc, kiln_free, kiln_calloc, kiln_realloc, kiln_aligned_alloc});
#else
  std::fprintf(stderr, "micro: skipping kiln: built without libkiln (src/ did not build)\n");
#endif
  // glibc: its allocator stays callable as __libc_malloc & co., but Kiln
  // (linked into this binary) exports those aliases too, as tcmalloc and
  // mimalloc do, so the names would bind to Kiln here.  Look them up in
  // libc.so.6's own scope instead.
  if (void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD)) {
    Allocator a{};
    a.name = "glibc";
    a.malloc = (void *(*)(size_t))must_sym(libc, "__libc_malloc", "libc.so.6");
    a.free = (void (*)(void *))must_sym(libc, "__libc_free", "libc.so.6");
    a.calloc = (void *(*)(size_t, size_t))must_sym(libc, "__libc_calloc", "libc.so.6");
    a.realloc = (void *(*)(void *, size_t))must_sym(libc, "__libc_realloc", "libc.so.6");
    a.aligned = (void *(*)(size_t, size_t))must_sym(libc, "__libc_memalign", "libc.so.6");
    if (a.malloc && a.free && a.calloc && a.realloc && a.aligned) allocators.push_back(a);
  } else {
    std::fprintf(stderr, "micro: skipping glibc: libc.so.6 not found: %s\n", dlerror());
  }

  if (void *lib = open_peer("mimalloc", {"libmimalloc.so.2", "libmimalloc.so"})) {
    Allocator a{};
    a.name = "mimalloc";
    a.malloc = (void *(*)(size_t))must_sym(lib, "mi_malloc", "libmimalloc");
    a.free = (void (*)(void *))must_sym(lib, "mi_free", "libmimalloc");
    a.calloc = (void *(*)(size_t, size_t))must_sym(lib, "mi_calloc", "libmimalloc");
    a.realloc = (void *(*)(void *, size_t))must_sym(lib, "mi_realloc", "libmimalloc");
    mi_malloc_aligned_fn = (void *(*)(size_t, size_t))must_sym(lib, "mi_malloc_aligned", "libmimalloc");
    a.aligned = mi_aligned;
    if (a.malloc && a.free && a.calloc && a.realloc && mi_malloc_aligned_fn) allocators.push_back(a);
  }
  if (void *lib = open_peer("tcmalloc", {"libtcmalloc_minimal.so.4", "libtcmalloc_minimal.so"})) {
    Allocator a{};
    a.name = "tcmalloc";
    a.malloc = (void *(*)(size_t))must_sym(lib, "tc_malloc", "libtcmalloc_minimal");
    a.free = (void (*)(void *))must_sym(lib, "tc_free", "libtcmalloc_minimal");
    a.calloc = (void *(*)(size_t, size_t))must_sym(lib, "tc_calloc", "libtcmalloc_minimal");
    a.realloc = (void *(*)(void *, size_t))must_sym(lib, "tc_realloc", "libtcmalloc_minimal");
    a.aligned = (void *(*)(size_t, size_t))must_sym(lib, "tc_memalign", "libtcmalloc_minimal");
    if (a.malloc && a.free && a.calloc && a.realloc && a.aligned) allocators.push_back(a);
  }
  if (void *lib = open_peer("jemalloc", {"libjemalloc.so.2", "libjemalloc.so"})) {
    Allocator a{};
    a.name = "jemalloc";
    a.malloc = (void *(*)(size_t))must_sym(lib, "malloc", "libjemalloc");
    a.free = (void (*)(void *))must_sym(lib, "free", "libjemalloc");
    a.calloc = (void *(*)(size_t, size_t))must_sym(lib, "calloc", "libjemalloc");
    a.realloc = (void *(*)(void *, size_t))must_sym(lib, "realloc", "libjemalloc");
    je_mallocx = (void *(*)(size_t, int))must_sym(lib, "mallocx", "libjemalloc");
    a.aligned = je_aligned;
    if (a.malloc && a.free && a.calloc && a.realloc && je_mallocx) allocators.push_back(a);
  }
}

void *checked(void *p, benchmark::State &state) {
  if (!p) state.SkipWithError("allocation failed");
  return p;
}

// One malloc and one free of `size` bytes, back to back: the fast path.
void BM_pair(benchmark::State &state, const Allocator *a, size_t size) {
  for (auto _ : state) {
    void *p = a->malloc(size);
    benchmark::DoNotOptimize(p);
    static_cast<char *>(checked(p, state))[0] = 1;
    a->free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// 256 mallocs, then 256 frees in allocation order: the free list is walked.
void BM_batch(benchmark::State &state, const Allocator *a, size_t size) {
  constexpr size_t N = 256;
  void *v[N];
  for (auto _ : state) {
    for (size_t i = 0; i < N; i++) {
      v[i] = a->malloc(size);
      static_cast<char *>(checked(v[i], state))[0] = 1;
    }
    benchmark::ClobberMemory();
    for (size_t i = 0; i < N; i++) a->free(v[i]);
  }
  state.SetItemsProcessed(state.iterations() * N);
}

void BM_calloc(benchmark::State &state, const Allocator *a, size_t size) {
  for (auto _ : state) {
    char *p = static_cast<char *>(checked(a->calloc(1, size), state));
    benchmark::DoNotOptimize(p[size - 1]);
    a->free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// Grow a buffer from 16 bytes to `size` by 16-byte steps, as a string builder.
void BM_realloc(benchmark::State &state, const Allocator *a, size_t size) {
  size_t steps = 0;
  for (auto _ : state) {
    char *p = nullptr;
    for (size_t n = 16; n <= size; n += 16, steps++) {
      p = static_cast<char *>(checked(a->realloc(p, n), state));
      p[n - 1] = 1;
    }
    a->free(p);
  }
  state.SetItemsProcessed(steps);
}

void BM_aligned(benchmark::State &state, const Allocator *a, size_t alignment) {
  for (auto _ : state) {
    void *p = a->aligned(alignment, 64);
    benchmark::DoNotOptimize(p);
    if (reinterpret_cast<uintptr_t>(checked(p, state)) % alignment) state.SkipWithError("misaligned");
    a->free(p);
  }
  state.SetItemsProcessed(state.iterations());
}

// The hand-over between BM_cross_thread's two threads: a single-producer
// single-consumer ring of batches.  A side that must wait spins briefly, then
// sleeps on a condition variable: yielding instead would hand the core to
// unrelated processes on a busy machine and measure them.
//
// All atomics are seq_cst: head/tail need acquire/release (a batch is
// published with tail; the consumer is done with a slot when it moves head),
// and the sleep protocol needs the total order: a waiter increments
// `sleepers` then re-checks, an updater stores then reads `sleepers`, so one
// of them sees the other (Dekker); the waiter holds the mutex from its
// increment until wait() releases it, so the notify cannot slip in between.
struct HandOff {
  static constexpr size_t BATCH = 64, DEPTH = 64;
  alignas(64) std::atomic<size_t> head{0};
  alignas(64) std::atomic<size_t> tail{0};
  alignas(64) void *slot[DEPTH][BATCH];
  std::atomic<bool> done{false};
  std::atomic<int> sleepers{0};
  std::mutex lock;
  std::condition_variable wake;

  template <class Ready>
  void wait_for(Ready ready) {
    for (int i = 0; i < 2000; i++) {
      if (ready()) return;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
    std::unique_lock<std::mutex> hold(lock);
    sleepers.fetch_add(1);
    while (!ready()) wake.wait(hold);
    sleepers.fetch_sub(1);
  }
  void wake_other() {
    if (sleepers.load()) {
      std::lock_guard<std::mutex> hold(lock);
      wake.notify_all();
    }
  }
};

// This thread allocates batches of `size`-byte blocks; a second thread frees
// them (every free is a cross-thread free).  The time is the producer's,
// which the consumer throttles when it falls behind.
void BM_cross_thread(benchmark::State &state, const Allocator *a, size_t size) {
  constexpr size_t BATCH = HandOff::BATCH, DEPTH = HandOff::DEPTH;
  HandOff *r = new HandOff;
  std::thread consumer([r, a] {
    for (size_t h = 0;; h++) {
      r->wait_for([&] { return r->tail.load() != h || r->done.load(); });
      if (r->tail.load() == h) return;  // done, and nothing left
      for (size_t i = 0; i < BATCH; i++) a->free(r->slot[h % DEPTH][i]);
      r->head.store(h + 1);
      r->wake_other();
    }
  });
  size_t t = 0;
  for (auto _ : state) {
    r->wait_for([&] { return t - r->head.load() < DEPTH; });
    for (size_t i = 0; i < BATCH; i++) {
      r->slot[t % DEPTH][i] = a->malloc(size);
      static_cast<char *>(checked(r->slot[t % DEPTH][i], state))[0] = 1;
    }
    r->tail.store(++t);
    r->wake_other();
  }
  r->done.store(true);
  r->wake_other();
  consumer.join();
  delete r;
  state.SetItemsProcessed(state.iterations() * BATCH);
}

using Fn = void (*)(benchmark::State &, const Allocator *, size_t);

void add(const char *bench, Fn fn, std::initializer_list<size_t> args, bool real_time = false) {
  for (size_t arg : args)
    for (const Allocator &a : allocators) {
      std::string name = std::string(bench) + "/" + a.name + "/" + std::to_string(arg);
      auto *b = benchmark::RegisterBenchmark(name.c_str(), fn, &a, arg);
      if (real_time) b->UseRealTime();
    }
}

// jemalloc's library uses initial-exec TLS; a dlopen'ed library gets such TLS
// only from the small surplus glibc reserves at start-up, which jemalloc's
// does not fit ("cannot allocate memory in static TLS block").  The surplus
// is a tunable read at start-up, so set it and re-exec once.
void reserve_static_tls(char **argv) {
  if (std::getenv("KILN_MICRO_REEXECED")) return;
  std::string tunables = "glibc.rtld.optional_static_tls=65536";
  if (const char *old = std::getenv("GLIBC_TUNABLES"); old && *old) tunables = std::string(old) + ":" + tunables;
  setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  setenv("KILN_MICRO_REEXECED", "1", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "micro: could not re-exec for more static TLS (%s); jemalloc may not load\n",
               std::strerror(errno));
}

}  // namespace

int main(int argc, char **argv) {
  reserve_static_tls(argv);
  find_allocators();
  add("pair", BM_pair, {16, 32, 48, 64, 128, 256, 512, 1024, 4096, 32768});
  add("batch", BM_batch, {16, 64, 256, 1024});
  add("calloc", BM_calloc, {64, 1024, 65536});
  add("realloc", BM_realloc, {1024, 16384});
  add("aligned", BM_aligned, {32, 64, 4096});
  add("cross_thread", BM_cross_thread, {64}, true);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
