/* arena_parser.c — a parser that uses one arena per request and rewinds it
 * after every line.
 *
 * Each "request" is a generated text of log-like lines:
 *     GET /shop/items/417?color=red&size=42 user=alice tags=new,sale
 * Every line is parsed into a small tree (method, path segments, query
 * pairs, tags) whose nodes and strings all come from the request's arena; the
 * line's figures are folded into the request's summary, and the arena is
 * rewound to the mark taken before the line, so memory stays at one line's
 * worth however long the request is.  The summary itself is allocated before
 * the mark and survives the rewinds.  Requests alternate between an arena that
 * grows from the OS and one over a buffer on the stack (no heap at all).
 *
 * The generator computes the same figures while it writes the text; the
 * program exits 0 when the parser agrees with it on every request.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kiln.h"

typedef struct pair_s {
  const char *key, *value;
} pair_t;

typedef struct line_s {
  const char *method;
  const char **segments;
  size_t segment_count;
  pair_t *query;
  size_t query_count;
  const char *user;
  const char **tags;
  size_t tag_count;
} line_t;

typedef struct summary_s {
  size_t lines, segments, pairs, tags;
  uint64_t numbers; /* sum of every number in paths and query values */
  uint64_t hash;    /* FNV-1a over user names */
} summary_t;

/* --- the arena helpers a parser needs ----------------------------------- */

static char *arena_strndup(kiln_arena_t *arena, const char *s, size_t n) {
  char *copy = kiln_arena_alloc(arena, n + 1, 1);
  if (copy == NULL) return NULL;
  memcpy(copy, s, n);
  copy[n] = '\0';
  return copy;
}

/* Split s[0..n) at `sep` into an arena array of arena strings. */
static const char **arena_split(kiln_arena_t *arena, const char *s, size_t n, char sep, size_t *count) {
  size_t parts = 1;
  for (size_t i = 0; i < n; i++) parts += s[i] == sep;
  const char **out = kiln_arena_alloc(arena, parts * sizeof *out, 0);
  if (out == NULL) return NULL;
  size_t k = 0, start = 0;
  for (size_t i = 0; i <= n; i++) {
    if (i == n || s[i] == sep) {
      if ((out[k++] = arena_strndup(arena, s + start, i - start)) == NULL) return NULL;
      start = i + 1;
    }
  }
  *count = parts;
  return out;
}

static uint64_t fnv1a(uint64_t h, const char *s) {
  while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
  return h;
}

static uint64_t number_of(const char *s) {
  uint64_t v = 0;
  if (*s < '0' || *s > '9') return 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  return v;
}

/* Parse one line (no newline) into a tree in the arena; false on ENOMEM. */
static bool parse_line(kiln_arena_t *arena, const char *s, size_t n, line_t *out) {
  memset(out, 0, sizeof *out);
  const char *end = s + n, *sp = memchr(s, ' ', n);
  if (sp == NULL || (out->method = arena_strndup(arena, s, (size_t)(sp - s))) == NULL) return false;
  const char *target = sp + 1, *target_end = memchr(target, ' ', (size_t)(end - target));
  if (target_end == NULL) target_end = end;
  const char *q = memchr(target, '?', (size_t)(target_end - target));
  const char *path_end = q != NULL ? q : target_end;
  out->segments = arena_split(arena, target + 1, (size_t)(path_end - target - 1), '/', &out->segment_count);
  if (out->segments == NULL) return false;
  if (q != NULL) {
    size_t count;
    const char **pairs = arena_split(arena, q + 1, (size_t)(target_end - q - 1), '&', &count);
    if (pairs == NULL) return false;
    out->query = kiln_arena_alloc(arena, count * sizeof *out->query, 0);
    if (out->query == NULL) return false;
    for (size_t i = 0; i < count; i++) {
      char *eq = strchr(pairs[i], '=');
      if (eq != NULL) *eq = '\0';
      out->query[i] = (pair_t){pairs[i], eq != NULL ? eq + 1 : ""};
    }
    out->query_count = count;
  }
  for (const char *f = target_end; f < end;) {
    f++;
    const char *f_end = memchr(f, ' ', (size_t)(end - f));
    if (f_end == NULL) f_end = end;
    if (strncmp(f, "user=", 5) == 0)
      out->user = arena_strndup(arena, f + 5, (size_t)(f_end - f - 5));
    else if (strncmp(f, "tags=", 5) == 0)
      out->tags = arena_split(arena, f + 5, (size_t)(f_end - f - 5), ',', &out->tag_count);
    f = f_end;
  }
  return out->user != NULL;
}

static void fold(summary_t *sum, const line_t *line) {
  sum->lines++;
  sum->segments += line->segment_count;
  sum->pairs += line->query_count;
  sum->tags += line->tag_count;
  for (size_t i = 0; i < line->segment_count; i++) sum->numbers += number_of(line->segments[i]);
  for (size_t i = 0; i < line->query_count; i++) sum->numbers += number_of(line->query[i].value);
  sum->hash = fnv1a(sum->hash, line->user);
}

/* --- the generated input ---------------------------------------------------- */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t next(void) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng >> 16);
}

static const char *words[] = {"shop", "items", "cart", "api", "v2", "users", "orders", "search"};
static const char *users[] = {"alice", "bob", "carol", "dave", "erin"};
static const char *keys[] = {"color", "size", "page", "sort", "q"};

/* Write `lines` lines into buf (NUL-terminated); the expected summary too. */
static size_t generate(char *buf, size_t cap, size_t lines, summary_t *expect) {
  size_t len = 0;
  memset(expect, 0, sizeof *expect);
  expect->hash = 1469598103934665603ull;
  for (size_t l = 0; l < lines; l++) {
    len += (size_t)snprintf(buf + len, cap - len, "%s ", next() % 4 ? "GET" : "POST");
    size_t segs = 1 + next() % 5;
    for (size_t i = 0; i < segs; i++) {
      if (next() % 3 == 0) {
        unsigned v = next() % 10000;
        expect->numbers += v;
        len += (size_t)snprintf(buf + len, cap - len, "/%u", v);
      } else {
        len += (size_t)snprintf(buf + len, cap - len, "/%s", words[next() % 8]);
      }
    }
    expect->segments += segs;
    size_t pairs = next() % 4;
    for (size_t i = 0; i < pairs; i++) {
      unsigned v = next() % 100;
      expect->numbers += v;
      len += (size_t)snprintf(buf + len, cap - len, "%c%s=%u", i == 0 ? '?' : '&', keys[next() % 5], v);
    }
    expect->pairs += pairs;
    const char *user = users[next() % 5];
    expect->hash = fnv1a(expect->hash, user);
    len += (size_t)snprintf(buf + len, cap - len, " user=%s", user);
    size_t tags = next() % 4;
    if (tags > 0) {
      len += (size_t)snprintf(buf + len, cap - len, " tags=");
      for (size_t i = 0; i < tags; i++) len += (size_t)snprintf(buf + len, cap - len, "%st%u", i ? "," : "", next() % 50);
      expect->tags += tags;
    }
    len += (size_t)snprintf(buf + len, cap - len, "\n");
    expect->lines++;
  }
  return len;
}

/* --- one request -------------------------------------------------------------- */

static bool serve(kiln_arena_t *arena, const char *text, size_t len, const summary_t *expect,
                  size_t *high_water, size_t *chunks) {
  summary_t *sum = kiln_arena_alloc(arena, sizeof *sum, 0); /* lives for the whole request */
  if (sum == NULL) return false;
  memset(sum, 0, sizeof *sum);
  sum->hash = 1469598103934665603ull;
  kiln_arena_mark_t line_start = kiln_arena_mark(arena);
  for (const char *s = text, *end = text + len; s < end;) {
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t n = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);
    line_t line;
    if (!parse_line(arena, s, n, &line)) {
      fprintf(stderr, "arena_parser: parse failed (%s)\n", errno == ENOMEM ? "out of arena memory" : "syntax");
      return false;
    }
    fold(sum, &line);
    kiln_arena_rewind(arena, line_start); /* the line's tree is gone; the summary stays */
    s += n + 1;
  }
  kiln_arena_info_t info = kiln_arena_info(arena);
  if (info.high_water > *high_water) *high_water = info.high_water;
  if (info.chunks > *chunks) *chunks = info.chunks;
  return memcmp(sum, expect, sizeof *sum) == 0;
}

int main(void) {
  enum { REQUESTS = 40, LINES = 2000 };
  static char text[LINES * 128];
  size_t high_water = 0, chunks = 0, total_lines = 0;
  for (int r = 0; r < REQUESTS; r++) {
    summary_t expect;
    size_t len = generate(text, sizeof text, LINES, &expect);
    kiln_arena_t *arena;
    _Alignas(16) char stack_buffer[16 * 1024];
    if (r % 2 == 0)
      arena = kiln_arena_new(16 * 1024, 1 << 20, KILN_ARENA_DEFAULT); /* 1 MiB cap per request */
    else
      arena = kiln_arena_new_fixed(stack_buffer, sizeof stack_buffer, KILN_ARENA_DEFAULT);
    if (arena == NULL) { perror("arena_parser: kiln_arena_new"); return 1; }
    bool ok = serve(arena, text, len, &expect, &high_water, &chunks);
    kiln_arena_destroy(arena);
    if (!ok) { fprintf(stderr, "arena_parser: request %d parsed wrong\n", r); return 1; }
    total_lines += expect.lines;
  }
  printf("arena_parser: %d requests, %zu lines parsed and checked; arena high water %zu bytes, "
         "at most %zu chunk(s) per request\n", REQUESTS, total_lines, high_water, chunks);
  return chunks == 1 ? 0 : 1; /* rewinding per line keeps each request in one chunk */
}
