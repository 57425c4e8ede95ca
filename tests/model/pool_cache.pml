/* pool_cache.pml — the fixed-size pool's per-thread caches: an owner enters
 * its cache with plain stores and loads (its own `inside` word, then the
 * cache's `revoke` and `owner`); other threads take the cache over (steal,
 * trim) with a heavy fence (membarrier) on their side only.
 *
 * Mirrors (keep in step; src/pool.c points back here):
 *   enter()        pool_cache_enter         (owner's fast path, both calls)
 *   leave          pool_cache_leave
 *   take_over()    pool_cache_claim + pool_caches_revoke (a steal), and
 *                  kiln_pool_trim (the trimmer: revoke, flush, unown)
 *   heavy_fence()  kiln_os_heavy_fence (membarrier PRIVATE_EXPEDITED)
 *   the lock       pool->cache_lock
 *
 * Memory model: x86-TSO.  Each thread has a FIFO store buffer (BUF slots);
 * a store goes into it, a flusher process per thread moves the oldest
 * entry to memory at any time, a load reads the thread's newest buffered
 * store to that location if any, else memory.  That is exactly the
 * reordering x86 allows (a store passing a later load), which is what the
 * owner's compiler-only fence leaves possible.  A full fence, and every
 * locked instruction (pthread_mutex_lock/unlock), waits until the thread's
 * buffer is empty.  membarrier(PRIVATE_EXPEDITED) is modelled as its
 * contract: the caller's buffer is drained, then every other thread's
 * buffer is empty at some instant before the call returns (each thread ran
 * a full barrier in between; stores it makes after that may be buffered
 * again).
 *
 * One cache, shared by NW worker threads (slots equal modulo POOL_CACHES),
 * and a trimmer.  A worker's `inside` word holds 1 while it is in (or
 * entering, or bailing out of) this cache.  Each worker makes CALLS calls; a call
 * enters as owner if it can, else may take the cache over (the C code does
 * so after POOL_STEAL_AFTER such calls: here any of them may) and then
 * enter, else takes the mutex path (not modelled: it does not touch the
 * cache).  Inside, a worker uses the cache (the ghost `users` counts who
 * is in it); the trimmer, once it has revoked the owner and seen the
 * owner's `inside` clear, flushes it (counted as a user too).
 *
 * Properties
 *   safety (./pan): at most one thread is ever inside the cache; no
 *   deadlock (invalid end states).
 *   liveness (-DLIVENESS -DNO_TRIM, ./pan -a -f): <> every worker made all
 *   its calls (under weak fairness: a revoker's wait for the owner's
 *   `inside` ends).  Without the trimmer, to stay within pan's default of
 *   6 processes under fairness.
 * Mutants (scripts/check-models.sh --mutants; spin must FIND an error):
 *   MUTANT_NO_HEAVY_FENCE  the revoker only fences itself (a full fence, no
 *                          membarrier): the owner's store to `inside` can
 *                          still sit in its buffer while the revoker reads
 *                          0, and the owner's load of `revoke` can be older
 *   MUTANT_NO_RECHECK      the owner does not re-read `owner` after
 *                          `revoke`: a steal that completed between its
 *                          first check and its store to `inside` goes unseen
 *   MUTANT_SHARED_BUSY     one `busy` word in the cache instead of a word
 *                          per thread (the first version of the C code): a
 *                          thread that just lost the cache clears it as it
 *                          bails out, under the new owner
 */

#ifndef NW
#define NW 2           /* worker threads sharing the cache */
#endif
#ifndef CALLS
#define CALLS 2        /* calls per worker */
#endif
#ifdef NO_TRIM
#define NT NW          /* threads with a store buffer: workers 0..NW-1 */
#else
#define NT (NW + 1)    /* threads with a store buffer: workers 0..NW-1, the trimmer NW */
#endif
#define BUF 3          /* store-buffer slots per thread */

/* memory locations */
#define OWNER 0        /* cache->owner: 0 none, else worker id + 1 (its slot + 1) */
#define REVOKE 1       /* cache->revoke */
#define INSIDE 2       /* pool_slots[w].inside at INSIDE + w: 1 = this cache */
#define NLOC (2 + NW)
#ifdef MUTANT_SHARED_BUSY
#define INSIDE_OF(w) INSIDE
#else
#define INSIDE_OF(w) (INSIDE + (w))
#endif

byte mem[NLOC];
byte bloc[NT * BUF];   /* store buffers: location ... */
byte bval[NT * BUF];   /* ... and value, oldest first */
byte blen[NT];

bool lock_held = false; /* pool->cache_lock */
byte users = 0;         /* ghost: threads using the cache right now */
byte finished = 0;          /* ghost: workers that finished */

/* --- x86-TSO ------------------------------------------------------------- */

/* A full buffer stalls the thread until the flusher makes room. */
inline store(t, loc, v) {
  atomic { blen[t] < BUF -> bloc[t * BUF + blen[t]] = loc; bval[t * BUF + blen[t]] = v; blen[t]++ }
}

/* r = the newest buffered store of t to loc, else memory */
inline load(t, loc, r) {
  atomic {
    r = mem[loc];
    k = 0;
    do
    :: k < blen[t] -> if :: bloc[t * BUF + k] == loc -> r = bval[t * BUF + k] :: else -> skip fi; k++
    :: else -> break
    od;
    k = 0
  }
}

inline fence(t) { blen[t] == 0 }

proctype flusher(byte t) {
  byte k;
  end: do
  :: atomic {
       blen[t] > 0 ->
       mem[bloc[t * BUF]] = bval[t * BUF];
       k = 0;
       do
       :: k + 1 < blen[t] -> bloc[t * BUF + k] = bloc[t * BUF + k + 1]; bval[t * BUF + k] = bval[t * BUF + k + 1]; k++
       :: else -> break
       od;
       blen[t]--;
       k = 0
     }
  od
}

/* membarrier: the caller's own barrier, then each other thread's. */
inline heavy_fence(t) {
  fence(t);
#ifndef MUTANT_NO_HEAVY_FENCE
  j = 0;
  do
  :: j < NT -> if :: j != t -> blen[j] == 0 :: else -> skip fi; j++
  :: else -> break
  od;
  j = 0
#endif
}

/* pthread_mutex_lock / unlock: locked instructions, so full fences. */
inline lock(t) { fence(t); atomic { !lock_held -> lock_held = true } }
inline unlock(t) { fence(t); lock_held = false }

/* --- the protocol ------------------------------------------------------- */

/* pool_cache_enter: ok = entered as owner me (= t + 1) */
inline enter(t, ok) {
  ok = false;
  load(t, OWNER, r);
  if
  :: r == t + 1 ->
     store(t, INSIDE_OF(t), 1);
     /* pool_fence_light: a compiler fence only (nothing in TSO) */
     load(t, REVOKE, r);
     if
     :: r == 0 ->
#ifdef MUTANT_NO_RECHECK
        ok = true
#else
        load(t, OWNER, r);
        if :: r == t + 1 -> ok = true :: else -> skip fi
#endif
     :: else -> skip
     fi;
     if :: !ok -> store(t, INSIDE_OF(t), 0) :: else -> skip fi
  :: else -> skip
  fi
}

/* pool_caches_revoke for one cache (lock held) */
inline revoke(t) {
  store(t, REVOKE, 1);
  heavy_fence(t);
  /* The kiln_os_yield loop on the owner's `inside` (r holds the owner), as
   * a blocking guard: the revoker never stores to another thread's word,
   * so its loads of it read memory. */
  mem[INSIDE_OF(r - 1)] == 0
}

inline use_cache() {
  atomic { users++; assert(users == 1) };
  users--
}

proctype worker(byte t) {
  byte r, k, j, calls = 0;
  bool ok;
  do
  :: calls < CALLS ->
     enter(t, ok);
     if
     :: ok -> use_cache(); store(t, INSIDE_OF(t), 0)   /* pool_cache_leave */
     :: !ok ->
        if
        :: true ->                                /* pool_cache_claim takes it */
           lock(t);
           load(t, OWNER, r);
           if
           :: r != t + 1 ->
              if :: r != 0 -> revoke(t) :: else -> skip fi;
              store(t, OWNER, t + 1);
              store(t, REVOKE, 0)
           :: else -> skip
           fi;
           unlock(t);
           enter(t, ok);
           if :: ok -> use_cache(); store(t, INSIDE_OF(t), 0) :: else -> skip fi
        :: true -> skip                           /* the mutex path: not the cache */
        fi
     fi;
     calls++
  :: else -> break
  od;
  fence(t);
  atomic { finished++ }
}

/* kiln_pool_trim: take the owned cache, flush it, leave it unowned. */
proctype trimmer() {
  byte t = NW, r, k, j;
  lock(t);
  load(t, OWNER, r);
  if
  :: r != 0 ->
     revoke(t);
     use_cache();                                 /* pool_flush */
     store(t, OWNER, 0);
     store(t, REVOKE, 0)
  :: else -> skip
  fi;
  unlock(t)
}

init {
  byte i;
  atomic {
    i = 0;
    do
    :: i < NT -> run flusher(i); i++
    :: else -> break
    od;
    i = 0;
    do
    :: i < NW -> run worker(i); i++
    :: else -> break
    od;
#ifndef NO_TRIM
    run trimmer()
#endif
  }
}

#ifdef LIVENESS
ltl all_done { <> (finished == NW) }
#endif
