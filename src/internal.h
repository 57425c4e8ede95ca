/* internal.h — what Kiln's files share with each other (never installed).
 *
 * Naming: public functions are kiln_*, functions shared between files are
 * kiln_* too but declared only here or in a module header, file-local ones
 * are static.  Cross-thread variants end in _mt.
 */
#ifndef KILN_INTERNAL_H
#define KILN_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln.h"

#define kiln_likely(x) __builtin_expect(!!(x), 1)
#define kiln_unlikely(x) __builtin_expect(!!(x), 0)
#define kiln_cold __attribute__((cold, noinline))
/* The entry points of the fast paths (malloc, free, kiln_malloc,
 * kiln_free, and the hardened mode's kiln_page_pop_keyed) each start a
 * cache line, so that their few hot instructions
 * span the fewest lines and decoder windows whatever the code around them
 * adds: malloc starting 48 bytes into a line made simple 4-6 % slower (the
 * minimum of 25 alternating runs) than the same code line-aligned. */
#define kiln_hot_entry __attribute__((aligned(64)))
#define kiln_noinline __attribute__((noinline))
#define kiln_inline static inline __attribute__((always_inline))
/* On every declaration of a variable that other files share: hidden, so the
 * compiler addresses it directly (the build's -fvisibility=hidden covers
 * definitions, not declarations; without this every access first loads
 * the variable's address, one more instruction on the fast paths). */
#define kiln_shared __attribute__((visibility("hidden")))

/* Requests above PTRDIFF_MAX fail: pointer differences inside such a block
 * would overflow ptrdiff_t (C11 6.5.6p9). */
#define KILN_MAX_ALLOC_SIZE ((size_t)PTRDIFF_MAX)

/* Round x up to a multiple of `alignment` (a power of two).
 * Proof it cannot wrap for the values Kiln passes: callers guarantee
 * x <= PTRDIFF_MAX and alignment <= 2^62, so x + alignment - 1 < 2^63 + 2^62
 * < SIZE_MAX; the mask then only clears low bits. */
kiln_inline uintptr_t kiln_align_up(uintptr_t x, uintptr_t alignment) {
  return (x + alignment - 1) & ~(alignment - 1);
}
kiln_inline uintptr_t kiln_align_down(uintptr_t x, uintptr_t alignment) {
  return x & ~(alignment - 1);
}
kiln_inline bool kiln_is_power_of_two(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* A small number for the calling thread, handed out in order at its first
 * call (1 = the first), never reused (thread.c).  For reports (the checking
 * mode names threads by it) and for spreading per-thread state over
 * stripes without hashing (stats.c's event counters, the pool's caches).
 * Inline: the checking mode asks at every malloc and free, and the call
 * cost more than the answer.  Initial-exec TLS like the core's heap pointer
 * (no __tls_get_addr, which may allocate); 0 until the thread has one. */
extern __thread uint32_t kiln_thread_number_own __attribute__((tls_model("initial-exec")));
uint32_t kiln_thread_number_assign(void);
static inline uint32_t kiln_thread_number(void) {
  uint32_t number = kiln_thread_number_own;
  return kiln_likely(number != 0) ? number : kiln_thread_number_assign();
}

/* xorshift64 (Marsaglia 2003): a fast, non-cryptographic step for the
 * hardened mode's page keys and shuffles, from a getrandom seed (never 0). */
kiln_inline uint64_t kiln_random_next(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return *state = x;
}

/* --- messages (src/message.c): formatted without malloc or stdio ---------
 * Supported conversions: %s %c %d %i %u %x %p %zu %zx %zd %lu %lld %llu %%. */
void kiln_message(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kiln_vmessage(const char *fmt, va_list args);
/* Print and abort. */
_Noreturn void kiln_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), cold));
/* Print only with KILN_VERBOSE=1. */
void kiln_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Format into buf (always NUL-terminated); returns the length written. */
size_t kiln_format(char *buf, size_t size, const char *fmt, va_list args);

/* --- options (src/options.c) --------------------------------------------- */
typedef enum kiln_option_e {
  KILN_OPTION_VERBOSE,       /* KILN_VERBOSE=1: log options and OS failures */
  KILN_OPTION_SHOW_STATS,    /* KILN_SHOW_STATS=1: statistics summary at exit */
  KILN_OPTION_LIMIT,         /* KILN_LIMIT=512M: process memory budget */
  KILN_OPTION_PURGE_DELAY,   /* KILN_PURGE_DELAY=ms before free pages go back to the OS */
  KILN_OPTION_SEGMENT_CACHE, /* KILN_SEGMENT_CACHE=n empty segments kept for reuse */
  KILN_OPTION_CHECK,         /* KILN_CHECK=1|leaks: the checking mode */
  KILN_OPTION_LEAKS,         /* KILN_LEAKS=1: leak report at exit (implies checking) */
  KILN_OPTION_ON_ERROR,      /* KILN_ON_ERROR=abort|report */
  KILN_OPTION_SECURE,        /* KILN_SECURE=1: the hardened mode */
  KILN_OPTION_QUARANTINE,    /* KILN_QUARANTINE=bytes held by the checking mode's quarantine */
  KILN_OPTION_SECURE_ZERO,   /* KILN_SECURE_ZERO=bytes: the hardened mode zeroes this prefix of freed blocks */
  KILN_OPTION_COUNT
} kiln_option_t;

/* The option's value (read once from the environment on first use). */
long long kiln_option(kiln_option_t option);
bool kiln_option_is_set(kiln_option_t option);
/* Read all options now (called from process init). */
void kiln_options_init(void);
/* Look up an environment variable without allocating (NULL if unset). */
const char *kiln_getenv(const char *name);
/* Parse "512M", "2g", "4096", "10k" (binary units); false if malformed. */
bool kiln_parse_size(const char *text, unsigned long long *out);

/* --- memory limit (src/stats.c) ------------------------------------------ */
/* Reserve `size` bytes of committed memory against the limit; false (errno
 * ENOMEM) if it would exceed it. */
bool kiln_limit_reserve(size_t size);
void kiln_limit_release(size_t size);

/* --- process-wide OS counters (src/stats.c) ------------------------------ */
/* Address space mapped/unmapped (committed bytes are counted by
 * kiln_limit_reserve/release). */
void kiln_stats_mapped(size_t bytes);
void kiln_stats_unmapped(size_t bytes);

#endif /* KILN_INTERNAL_H */
