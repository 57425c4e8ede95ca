/* heap_server.c — a server-like program with a first-class heap per
 * connection, destroyed when the connection closes.
 *
 * Two worker threads each run an event loop over their own simulated
 * connections (a heap belongs to the thread that made it, so a connection
 * stays on its worker).  Every request allocates from the connection's heap
 * (kiln_heap_malloc/calloc/realloc): a header table, a body buffer that grows
 * with realloc, a response.  Some blocks are freed one by one with kiln_free,
 * as a real handler would; the rest — and anything a handler forgot — goes
 * away at close with one kiln_heap_destroy, so a connection can never leak.
 * One connection in eight is "greedy": its heap has a 256 KiB budget
 * (kiln_heap_set_limit) that its requests overrun; the allocation fails with
 * ENOMEM, the server answers "413" and closes it, and goes on.
 *
 * Exits 0 when every response was checked and every greedy connection was
 * refused exactly as budgeted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kiln.h"

enum { WORKERS = 2, CONNECTIONS = 400, OPEN = 16, REQUESTS = 40 };

typedef struct conn_s {
  kiln_heap_t *heap;
  unsigned id;
  unsigned served;
  bool greedy;
  char *session; /* lives as long as the connection: freed by kiln_heap_destroy */
} conn_t;

typedef struct worker_s {
  int index;
  unsigned served, refused, closed;
  size_t peak_heap_bytes;
  bool failed;
} worker_t;

static uint32_t next(uint64_t *s) {
  *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
  return (uint32_t)(*s >> 16);
}

/* Handle one request on `c`: 0 served, 1 refused for the budget, -1 wrong. */
static int handle(conn_t *c, uint64_t *rng) {
  size_t headers = 4 + next(rng) % 12;
  char **table = kiln_heap_calloc(c->heap, headers, sizeof *table);
  if (table == NULL) return errno == ENOMEM ? 1 : -1;
  for (size_t i = 0; i < headers; i++) {
    table[i] = kiln_heap_malloc(c->heap, 48);
    if (table[i] == NULL) return errno == ENOMEM ? 1 : -1; /* the rest goes at close */
    snprintf(table[i], 48, "X-Header-%zu: %u", i, c->id);
  }
  /* The body arrives in pieces: the buffer grows with realloc. */
  size_t len = 0, cap = 64, pieces = 1 + next(rng) % 16;
  size_t piece = c->greedy ? 16384 : 512;
  char *body = kiln_heap_malloc(c->heap, cap);
  if (body == NULL) return errno == ENOMEM ? 1 : -1;
  for (size_t i = 0; i < pieces; i++) {
    if (len + piece > cap) {
      while (len + piece > cap) cap *= 2;
      char *grown = kiln_heap_realloc(c->heap, body, cap);
      if (grown == NULL) return errno == ENOMEM ? 1 : -1; /* body is still valid; freed at close */
      body = grown;
    }
    memset(body + len, 'a' + (int)(i % 26), piece);
    len += piece;
  }
  for (size_t i = 0; i < pieces; i++)
    if (body[i * piece] != 'a' + (int)(i % 26) || body[i * piece + piece - 1] != 'a' + (int)(i % 26)) return -1;
  char *response = kiln_heap_malloc(c->heap, 128);
  if (response == NULL) return errno == ENOMEM ? 1 : -1;
  int n = snprintf(response, 128, "HTTP/1.1 200 OK (conn %u, req %u, %zu bytes, %s)", c->id, c->served, len,
                   c->session);
  if (n <= 0 || strstr(response, c->session) == NULL) return -1;
  /* The handler frees what it is done with; it "forgets" the header table
   * every few requests: the heap takes it at close anyway. */
  kiln_free(body);
  kiln_free(response);
  if (next(rng) % 4 != 0) {
    for (size_t i = 0; i < headers; i++) kiln_free(table[i]);
    kiln_free(table);
  }
  c->served++;
  return 0;
}

static bool open_conn(conn_t *c, unsigned id) {
  c->heap = kiln_heap_new();
  if (c->heap == NULL) return false;
  c->id = id;
  c->served = 0;
  c->greedy = id % 8 == 7;
  if (c->greedy) kiln_heap_set_limit(c->heap, 256 * 1024);
  c->session = kiln_heap_malloc(c->heap, 32);
  if (c->session == NULL) { kiln_heap_destroy(c->heap); return false; }
  snprintf(c->session, 32, "session-%08x", id * 2654435761u);
  return true;
}

static void *worker_main(void *arg) {
  worker_t *w = arg;
  uint64_t rng = 0x9e3779b97f4a7c15ull * (uint64_t)(w->index + 1);
  conn_t conns[OPEN];
  unsigned opened = 0;
  unsigned total = CONNECTIONS / WORKERS;
  for (int i = 0; i < OPEN; i++) {
    if (!open_conn(&conns[i], (unsigned)w->index * total + opened++)) { w->failed = true; return NULL; }
  }
  /* Event loop: serve a random open connection; close it after its requests
   * (or when it is refused) and open the next one in its slot. */
  unsigned live = OPEN;
  while (live > 0) {
    conn_t *c = &conns[next(&rng) % OPEN];
    if (c->heap == NULL) continue;
    int r = handle(c, &rng);
    size_t bytes = kiln_heap_allocated(c->heap);
    if (bytes > w->peak_heap_bytes) w->peak_heap_bytes = bytes;
    if (r < 0) { fprintf(stderr, "heap_server: wrong response on conn %u\n", c->id); w->failed = true; }
    if (r == 1 && !c->greedy) { fprintf(stderr, "heap_server: conn %u refused\n", c->id); w->failed = true; }
    w->served += r == 0;
    w->refused += r == 1;
    if (r != 0 || c->served == REQUESTS) {
      kiln_heap_destroy(c->heap); /* every block of the connection, at once */
      c->heap = NULL;
      w->closed++;
      if (opened < total) {
        if (!open_conn(c, (unsigned)w->index * total + opened++)) { w->failed = true; return NULL; }
      } else {
        live--;
      }
    }
  }
  return NULL;
}

int main(void) {
  pthread_t tid[WORKERS];
  worker_t workers[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    workers[i] = (worker_t){.index = i};
    if (pthread_create(&tid[i], NULL, worker_main, &workers[i]) != 0) { perror("pthread_create"); return 1; }
  }
  unsigned served = 0, refused = 0, closed = 0;
  size_t peak = 0;
  bool failed = false;
  for (int i = 0; i < WORKERS; i++) {
    pthread_join(tid[i], NULL);
    served += workers[i].served;
    refused += workers[i].refused;
    closed += workers[i].closed;
    if (workers[i].peak_heap_bytes > peak) peak = workers[i].peak_heap_bytes;
    failed |= workers[i].failed;
  }
  printf("heap_server: %u connections closed, %u requests served, %u greedy connections refused (413), "
         "largest connection heap %zu KiB\n", closed, served, refused, peak >> 10);
  /* Every greedy connection (one in eight) must have hit its budget. */
  return !failed && closed == CONNECTIONS && refused == CONNECTIONS / 8 ? 0 : 1;
}
