/* pool.h — what the rest of Kiln calls in pool.c (the pools themselves are
 * kiln_pool_* in include/kiln.h). */
#ifndef KILN_POOL_H
#define KILN_POOL_H

/* fork: thread.c's handlers call these around the core's (see pool.c). */
void kiln_pool_fork_prepare(void);
void kiln_pool_fork_parent(void);
void kiln_pool_fork_child(void);

#endif /* KILN_POOL_H */
