/* leaks — known leaks, reported at exit (KILN_LEAKS=1 or KILN_CHECK=leaks):
 * three 100-byte blocks from one site, one 1000-byte block from another, and
 * a block still reachable from a global (not a leak; neither are the
 * dynamic loader's blocks, such as the exited thread's TLS).
 * EXPECT leaks: kiln: leak of 1000 bytes in 1 block allocated at leaks.c:@L:BIG@ (leak_big)
 * EXPECT leaks: kiln: leak of 300 bytes in 3 blocks allocated at leaks.c:@L:SMALL@ (leak_small)
 * EXPECT leaks: kiln: 1300 bytes leaked in 4 blocks from 2 sites (@ANY@ still reachable)
 */
#include <pthread.h>

#include "misuse.h"

static void *kept; /* reachable at exit: not a leak */
static void *small[3];
static void *big;

__attribute__((noinline)) static void leak_small(int i) {
  small[i] = malloc(100); /* @SMALL */
  memset(small[i], 's', 100);
}

__attribute__((noinline)) static void leak_big(void) {
  big = malloc(1000); /* @BIG */
  memset(big, 'b', 1000);
}

/* The blocks are made on a thread that is gone by exit: no stale copy of
 * their pointers can stay in a register or stack slot of the exiting
 * thread, which the exit-time scan reads (conservatively). */
static void *make_blocks(void *arg) {
  bool clean = arg != NULL;
  for (int i = 0; i < 3; i++) leak_small(i);
  leak_big();
  if (clean) {
    for (int i = 0; i < 3; i++) free(small[i]);
    free(big);
  }
  /* Drop the pointers: the blocks become unreachable. */
  for (int i = 0; i < 3; i++) small[i] = NULL;
  big = NULL;
  return NULL;
}

int main(int argc, char **argv) {
  bool clean = has_arg(argc, argv, "clean");
  kept = malloc(64);
  pthread_t thread;
  if (pthread_create(&thread, NULL, make_blocks, clean ? &thread : NULL) != 0) return 1;
  pthread_join(thread, NULL);
  if (clean) free(kept);
  return 0;
}
