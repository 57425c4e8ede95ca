/* cache-thrash — active false sharing: threads allocate their own small
 * objects concurrently; an allocator that carves consecutive blocks of one
 * cache line for different threads makes them write to the same line.  See
 * cache_false_sharing.h for the loop. */
#include "cache_false_sharing.h"

int main(int argc, char **argv) { return cache_false_sharing_main(argc, argv, "cache-thrash", 0); }
