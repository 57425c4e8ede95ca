/* valgrind — a leak and a use after free in a program linked with Kiln built
 * with -DKILN_VALGRIND=ON; valgrind.sh runs it under memcheck and expects
 * memcheck to report both, as it would with glibc's malloc. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile char sink;

__attribute__((noinline)) static void leak(void) {
  char *p = malloc(77);
  memset(p, 1, 77);
  p = NULL; /* lost */
}

int main(void) {
  leak();
  char *q = malloc(33);
  memset(q, 2, 33);
  free(q);
  sink = q[5]; /* use after free */
  char *r = malloc(16);
  sink = r[20]; /* past the end */
  free(r);
  return 0;
}
