/* cache-scratch — passive false sharing: each thread starts by freeing a
 * small block that the main thread allocated next to the other threads'
 * blocks; an allocator that hands that block straight back to the thread
 * (a thread-local free list fed by foreign frees) makes threads write to one
 * cache line.  See cache_false_sharing.h for the loop. */
#include "cache_false_sharing.h"

int main(int argc, char **argv) { return cache_false_sharing_main(argc, argv, "cache-scratch", 1); }
