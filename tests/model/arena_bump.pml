/* arena_bump.pml — the thread-safe arena's bump: CAS on the current chunk's
 * offset, a lock for growing.
 *
 * Mirrors (keep in step; src/arena.c points back here):
 *   the loop in thread()      kiln_arena_alloc, KILN_ARENA_THREAD_SAFE branch
 *   bump_mt                   arena_bump_mt      (CAS loop on chunk->offset)
 *   fit()                     arena_fit
 *   the locked part           arena_alloc_slow_mt + arena_add_chunk
 *
 * Units: one unit = one OS page = the smallest chunk granule; the chunk
 * header takes HEADER units, a request SZ units at alignment AL units
 * (chunks start at multiples of every alignment, as mmap'd chunks start at a
 * page).  Chunk 0 is the static empty chunk (size 0: nothing fits).  Chunks
 * are never freed while threads allocate (rewind/reset/destroy must not race
 * with kiln_arena_alloc: kiln.h).  Memory orders are not modelled: spin's
 * interleavings are sequentially consistent; the C code publishes a chunk's
 * header with the release store of arena->current, loaded with acquire.
 *
 * Properties
 *   safety (./pan): every block lies inside its chunk after the header
 *     (no allocation beyond the chunk end) and no two blocks share a unit
 *     (no overlap); held never exceeds the limit; no deadlock.
 *   liveness (-DLIVENESS, ./pan -a -f): <> every thread finished (CAS
 *     retries and the grow/retry loop terminate under weak fairness).
 * Mutants (scripts/check-models.sh --mutants; spin must FIND an error):
 *   MUTANT_PLAIN_BUMP             the CAS is a plain load and store
 *   MUTANT_PUBLISH_BEFORE_CARVE   the grower publishes the new chunk before
 *                                 carving its own block with the plain bump
 */

/* Two shapes fit the CI budget (scripts/check-models.sh runs both):
 * 3 threads x 1 allocation (-DNT=3 -DALLOCS=1, the default) and
 * 2 threads x 2 allocations (-DNT=2 -DALLOCS=2); 3 x 2 is 1.1e8 states. */
#ifndef NT
#define NT 3           /* threads */
#endif
#ifndef ALLOCS
#define ALLOCS 1       /* allocations per thread */
#endif
#define MAXCH 5        /* chunk slots, 0 = the empty sentinel */
#define HEADER 1       /* CHUNK_HEADER, in units */
#define CHUNK 5        /* arena->chunk_size */
#define LIMIT 12       /* arena->limit: growth past it fails (ENOMEM) */

byte size[MAXCH];      /* chunk->size (0 for the sentinel) */
byte offset[MAXCH];    /* chunk->offset */
byte current = 0;      /* arena->current */
byte nchunks = 1;      /* chunks mapped so far (ghost allocator of slots) */
byte held = 0;         /* arena->held */
byte lock = 0;         /* arena->lock: 0 = free, else holder's _pid + 1 */
byte finished = 0;

int claimed[MAXCH];    /* ghost: units handed out, one bit per unit */

/* arena_fit: the aligned start, or 0 if the block does not fit */
inline fit(c, off, sz, al, st) {
  st = ((off + al - 1) / al) * al;
  if
  :: st > size[c] || sz > size[c] - st -> st = 0
  :: else -> skip
  fi
}

/* ghost: the block [st, st + sz) of chunk c is now this thread's */
inline claim(c, st, sz) {
  d_step {
    assert(c != 0 && st >= HEADER && st + sz <= size[c]);   /* inside the chunk */
    k = st;
    do
    :: k < st + sz ->
      assert((claimed[c] & (1 << k)) == 0);                 /* no overlap */
      claimed[c] = claimed[c] | (1 << k);
      k++
    :: else -> break
    od;
    k = 0
  }
}

proctype thread() {
  byte n, sz, al, c, off, st, k, need, csize, room, nc;
  bool retry;
  do
  :: n < ALLOCS ->
    n++;
    if
    :: sz = 1
    :: sz = 3
    fi;
    if
    :: al = 1
    :: al = 2
    fi;
    do
    :: c = current;                         /* acquire */
      /* arena_bump_mt */
      off = offset[c];                      /* relaxed */
      do
      :: fit(c, off, sz, al, st);
        if
        :: st == 0 -> break
        :: else ->
#ifdef MUTANT_PLAIN_BUMP
          offset[c] = st + sz;
          break
#else
          atomic {                          /* compare_exchange_weak, relaxed */
            if
            :: offset[c] == off -> offset[c] = st + sz; break
            :: else -> off = offset[c]
            fi
          }
#endif
        fi
      od;
      if
      :: st != 0 -> claim(c, st, sz); break
      :: else -> skip
      fi;
      /* arena_alloc_slow_mt */
      atomic { lock == 0 -> lock = _pid + 1 }
      retry = (current != c);               /* relaxed: stores to current are under the lock */
      if
      :: !retry ->                          /* arena_add_chunk */
        need = HEADER + al - 1 + sz;
        csize = (need > CHUNK -> need : CHUNK);
        room = (held < LIMIT -> LIMIT - held : 0);
        if
        :: csize > room -> csize = room
        :: else -> skip
        fi;
        if
        :: csize < need -> skip             /* ENOMEM: block stays NULL */
        :: else ->
          nc = nchunks;
          nchunks++;
          assert(nc < MAXCH);
          size[nc] = csize;
          offset[nc] = HEADER;
#ifdef MUTANT_PUBLISH_BEFORE_CARVE
          current = nc;
          held = held + csize;
          off = offset[nc];
          fit(nc, off, sz, al, st);
          offset[nc] = st + sz;
#else
          fit(nc, HEADER, sz, al, st);      /* arena_bump: not yet shared */
          offset[nc] = st + sz;
          held = held + csize;
          assert(held <= LIMIT);
          current = nc;                     /* release */
#endif
          claim(nc, st, sz)
        fi
      :: else -> skip
      fi;
      lock = 0;
      if
      :: retry -> skip                      /* someone grew the arena: bump there */
      :: else -> break
      fi
    od;
    st = 0; off = 0; c = 0; need = 0; csize = 0; room = 0; nc = 0; retry = false
  :: else -> break
  od;
  finished++
}

init {
  atomic {
    byte i;
    for (i : 1 .. NT) { run thread() }
  }
}

#ifdef LIVENESS
ltl all_finish { <> (finished == NT) }
#endif
