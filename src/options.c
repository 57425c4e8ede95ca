/* options.c — run-time options, one table, read from the environment once.
 *
 * Each option is KILN_<NAME>; the table below is the only list of them (the
 * enum in internal.h indexes it, and a static assertion keeps the two the same
 * length).  Idea from mimalloc's options.c: a table of {name, default, help}.
 *
 * The environment is read by scanning `environ` directly: getenv is safe too,
 * but scanning makes it obvious that nothing here can allocate or lock.
 */
#include <string.h>

#include "internal.h"

extern char **environ;

typedef enum option_kind_e { OPTION_BOOL, OPTION_NUMBER, OPTION_SIZE, OPTION_WORD } option_kind_t;

typedef struct option_desc_s {
  const char *name;          /* environment variable */
  option_kind_t kind;
  long long default_value;
  const char *help;
} option_desc_t;

#ifdef KILN_SECURE_DEFAULT
#define SECURE_DEFAULT 1
#else
#define SECURE_DEFAULT 0
#endif

static const option_desc_t option_table[] = {
  [KILN_OPTION_VERBOSE] = {"KILN_VERBOSE", OPTION_BOOL, 0, "log option values and OS failures to stderr"},
  [KILN_OPTION_SHOW_STATS] = {"KILN_SHOW_STATS", OPTION_BOOL, 0, "print a statistics summary at exit"},
  [KILN_OPTION_LIMIT] = {"KILN_LIMIT", OPTION_SIZE, 0, "process memory budget (e.g. 512M); 0 = none"},
  [KILN_OPTION_PURGE_DELAY] = {"KILN_PURGE_DELAY", OPTION_NUMBER, 10,
                               "milliseconds before free pages are handed back to the OS"},
  [KILN_OPTION_SEGMENT_CACHE] = {"KILN_SEGMENT_CACHE", OPTION_NUMBER, 8,
                                 "empty segments kept mapped for reuse (each 4 MiB)"},
  [KILN_OPTION_CHECK] = {"KILN_CHECK", OPTION_WORD, 0, "1: checking mode; leaks: checking + leak report"},
  [KILN_OPTION_LEAKS] = {"KILN_LEAKS", OPTION_BOOL, 0, "leak report at exit (turns the checking mode on)"},
  [KILN_OPTION_ON_ERROR] = {"KILN_ON_ERROR", OPTION_WORD, 0, "abort (default) or report: what a detected bug does"},
  [KILN_OPTION_SECURE] = {"KILN_SECURE", OPTION_BOOL, SECURE_DEFAULT, "hardened mode"},
  [KILN_OPTION_QUARANTINE] = {"KILN_QUARANTINE", OPTION_SIZE, 4 << 20,
                              "bytes of freed blocks the checking mode holds back"},
  [KILN_OPTION_SECURE_ZERO] = {"KILN_SECURE_ZERO", OPTION_SIZE, 32,
                               "hardened mode: zero this many first bytes of every freed block (at most 32; 0: none)"},
};
_Static_assert(sizeof option_table / sizeof option_table[0] == KILN_OPTION_COUNT,
               "option_table and kiln_option_t must list the same options");

/* Values: -1 until read.  Reading twice concurrently stores the same value,
 * so relaxed atomics suffice. */
static long long option_values[KILN_OPTION_COUNT];
static bool option_read[KILN_OPTION_COUNT];

const char *kiln_getenv(const char *name) {
  if (environ == NULL) return NULL;
  size_t len = strlen(name);
  for (char **e = environ; *e != NULL; e++) {
    if (strncmp(*e, name, len) == 0 && (*e)[len] == '=') return *e + len + 1;
  }
  return NULL;
}

bool kiln_parse_size(const char *text, unsigned long long *out) {
  if (text == NULL || *text == '\0') return false;
  unsigned long long value = 0;
  const char *p = text;
  while (*p >= '0' && *p <= '9') {
    unsigned long long next = value * 10 + (unsigned long long)(*p - '0');
    if (next / 10 != value) return false; /* overflow */
    value = next;
    p++;
  }
  if (p == text) return false;
  unsigned shift = 0;
  switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    default: break;
  }
  if (shift != 0 && (*p == 'i' || *p == 'I')) p++;
  if (shift != 0 && (*p == 'b' || *p == 'B')) p++;
  if (*p != '\0') return false;
  if (shift != 0 && (value << shift) >> shift != value) return false;
  *out = value << shift;
  return true;
}

static long long parse_option(kiln_option_t option, const char *text) {
  const option_desc_t *desc = &option_table[option];
  unsigned long long number;
  switch (desc->kind) {
    case OPTION_BOOL:
      if (strcmp(text, "1") == 0 || strcmp(text, "yes") == 0 || strcmp(text, "on") == 0 ||
          strcmp(text, "true") == 0)
        return 1;
      if (strcmp(text, "0") == 0 || strcmp(text, "no") == 0 || strcmp(text, "off") == 0 ||
          strcmp(text, "false") == 0)
        return 0;
      break;
    case OPTION_NUMBER:
    case OPTION_SIZE:
      if (desc->kind == OPTION_SIZE ? kiln_parse_size(text, &number)
                                    : (kiln_parse_size(text, &number) && number < (1ull << 40)))
        return (long long)number;
      break;
    case OPTION_WORD:
      /* Words are mapped by their users; here: 0 = off/default, 1 = on,
       * 2 = the option's second word ("leaks", "report"). */
      if (strcmp(text, "0") == 0 || strcmp(text, "off") == 0 || strcmp(text, "abort") == 0) return 0;
      if (strcmp(text, "1") == 0 || strcmp(text, "on") == 0) return 1;
      if (strcmp(text, "leaks") == 0 || strcmp(text, "report") == 0) return 2;
      break;
  }
  kiln_message("kiln: ignoring %s=%s (not a valid value)", desc->name, text);
  return desc->default_value;
}

long long kiln_option(kiln_option_t option) {
  if (kiln_likely(__atomic_load_n(&option_read[option], __ATOMIC_ACQUIRE)))
    return option_values[option];
  const char *text = kiln_getenv(option_table[option].name);
  long long value = text ? parse_option(option, text) : option_table[option].default_value;
  __atomic_store_n(&option_values[option], value, __ATOMIC_RELAXED);
  __atomic_store_n(&option_read[option], true, __ATOMIC_RELEASE);
  return value;
}

bool kiln_option_is_set(kiln_option_t option) { return kiln_option(option) != 0; }

void kiln_options_init(void) {
  for (int i = 0; i < KILN_OPTION_COUNT; i++) (void)kiln_option((kiln_option_t)i);
  if (kiln_option(KILN_OPTION_VERBOSE)) {
    for (int i = 0; i < KILN_OPTION_COUNT; i++)
      kiln_message("kiln: option %s = %lld (%s)", option_table[i].name, option_values[i],
                   option_table[i].help);
  }
}
