/* free_sized — free_sized / free_aligned_sized with a size or alignment that
 * is not the block's (C23: undefined behaviour).
 * EXPECT size: kiln: free_sized size mismatch on @P@ (48-byte block): freed with size 40 — allocated at free_sized.c:@L:SIZED@ (main)
 * EXPECT aligned: kiln: free_aligned_sized size mismatch on @P@ (128-byte block): freed with size 100 — allocated at free_sized.c:@L:ALIGNED@ (main)
 * EXPECT alignment: kiln: free_aligned_sized alignment mismatch on @P@ (128-byte block, alignment 64): freed with alignment 32 — allocated at free_sized.c:@L:ALIGNMENT@ (main)
 */
#include "misuse.h"

int main(int argc, char **argv) {
  bool clean = has_arg(argc, argv, "clean");
  if (has_arg(argc, argv, "size")) {
    char *p = malloc(48); /* @SIZED */
    free_sized(p, clean ? 48 : 40);
  } else if (has_arg(argc, argv, "aligned")) {
    char *p = aligned_alloc(64, 128); /* @ALIGNED */
    free_aligned_sized(p, 64, clean ? 128 : 100);
  } else if (has_arg(argc, argv, "alignment")) {
    char *p = aligned_alloc(64, 128); /* @ALIGNMENT */
    free_aligned_sized(p, clean ? 64 : 32, 128);
  }
  return 0;
}
