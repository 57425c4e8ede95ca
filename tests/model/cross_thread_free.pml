/* cross_thread_free.pml — one page, its owner and two remote threads:
 * Kiln's cross-thread free protocol with the delayed-free states.
 *
 * Mirrors (keep in step; the C code points back here):
 *   remote()            kiln_page_free_mt              src/page.c
 *                       (called from free_generic_hinted, src/free.c, when
 *                        segment->thread_id is not the caller)
 *   collect()           kiln_page_collect              src/page.c
 *   set_delayed()       kiln_page_set_delayed          src/page.c
 *   free_local()        kiln_free_local                src/free.c
 *   page_to_full()      kiln_heap_page_to_full         src/heap.c
 *   unfull()            kiln_heap_page_unfull          src/heap.c
 *   delayed_free_all()  kiln_heap_delayed_free_all     src/heap.c
 *   owner, exit branch  kiln_heap_abandon + visit_abandon (page part) src/heap.c
 *
 * Abstractions: page->xthread_free (pointer | 2-bit state, one word) is the
 * pair tf_ptr/tf_state, only ever read or written together inside one
 * atomic{} (a load, or a CAS: compare both, write both).  A CAS loop is a
 * load followed by a retry loop of atomic compare-and-set steps, so other
 * threads interleave between the load and the CAS exactly as in C.  Weak
 * CAS's spurious failures only add retries and are left out.  The owner's
 * wait while the state is DELAYED_FREEING (kiln_os_yield loop) is a
 * blocking guard.  Memory orders are not modelled (spin explores
 * sequentially consistent interleavings): the C comments justify them; TSan
 * runs check them on real executions.  The page keeps its capacity (N blocks,
 * no extension) and is never released here (abandon_reclaim.pml does that).
 *
 * Properties
 *   safety  (./pan): no block handed out twice (pop asserts it is not
 *           live), no block lost (final census: every block exactly once,
 *           live or on one list), free lists never cycle, no remote thread
 *           touches the heap after its owner dropped it (the owner waits out
 *           DELAYED_FREEING), no deadlock (invalid end states).
 *   liveness (-DLIVENESS, ./pan -a -f): <> reclaimed — under weak fairness
 *           every run ends with every freed block back where the owner can
 *           allocate it (or on thread_free, for an abandoned page).
 * Mutants (scripts/check-models.sh --mutants; spin must FIND an error):
 *   MUTANT_PLAIN_PUSH  the remote push is a plain load and store, no CAS
 *   MUTANT_NO_WAIT     set_delayed does not wait out DELAYED_FREEING
 */

#define N 3            /* blocks in the page */
#define R 2            /* remote threads */
#ifndef MAXSTEPS
#define MAXSTEPS 5     /* owner operations before it exits or drains */
#endif
#define NIL 255

#define USE_DELAYED 0
#define DELAYED_FREEING 1
#define NO_DELAYED 2
#define NEVER_DELAYED 3

byte next[N];               /* block->next */
byte page_free = NIL;       /* page->free        (owner only) */
byte local_free = NIL;      /* page->local_free  (owner only) */
byte used = 0;              /* page->used        (owner only) */
bool in_full = false;       /* page->flags.x.in_full (owner only) */
byte tf_ptr = NIL;          /* page->xthread_free: the list ... */
byte tf_state = NO_DELAYED; /* ... and its 2 low bits */
bool xheap = true;          /* page->xheap != NULL */
byte delayed_head = NIL;    /* heap->thread_delayed_free */

/* ghosts */
bool live[N];               /* handed out and not yet freed by the program */
bool owner_held[N];         /* live and held by the owner */
bool heap_alive = true;     /* the heap's memory still exists */
bool owner_exited = false;
byte remotes_done = 0;
bool reclaimed = false;     /* the final census passed */

chan to_remote[R] = [N + 1] of { byte };   /* blocks handed to remote threads; NIL = stop */

/* --- owner side --------------------------------------------------------- */

inline set_delayed(st, override) {
#ifdef MUTANT_NO_WAIT
  atomic {
#else
  atomic { tf_state != DELAYED_FREEING ->
#endif
    if
    :: tf_state == st || (tf_state == NEVER_DELAYED && !override) -> skip
    :: else -> tf_state = st
    fi
  }
}

inline unfull() {
  in_full = false;
  set_delayed(NO_DELAYED, false)
}

inline free_local(b) {
  d_step { next[b] = local_free; local_free = b; used-- };
  if
  :: in_full -> unfull()
  :: else -> skip
  fi
  /* used == 0: kiln_heap_page_retire keeps the only page of a bin */
}

inline collect() {
  if
  :: tf_ptr != NIL ->       /* relaxed peek, then the exchange (a CAS loop in C) */
    atomic { head = tf_ptr; tf_ptr = NIL }
    /* The list taken is private now, and page->free is the owner's: the
     * rest is one step (d_step) without loss of interleavings that matter. */
    d_step {
      cnt = 1;
      t = head;
      do
      :: next[t] != NIL -> t = next[t]; cnt++; assert(cnt <= N)   /* no cycle */
      :: else -> break
      od;
      next[t] = page_free;
      page_free = head;
      used = used - cnt;
      head = 0; cnt = 0; t = 0
    }
  :: else -> skip
  fi;
  d_step {
    if
    :: local_free != NIL ->
      if
      :: page_free == NIL -> page_free = local_free
      :: else ->
        t = local_free;
        cnt = 1;
        do
        :: next[t] != NIL -> t = next[t]; cnt++; assert(cnt <= N)
        :: else -> break
        od;
        next[t] = page_free;
        page_free = local_free
      fi;
      local_free = NIL;
      t = 0; cnt = 0
    :: else -> skip
    fi
  }
}

inline page_to_full() {
  in_full = true;
  set_delayed(USE_DELAYED, false);
  collect();    /* a remote free that landed before USE_DELAYED */
  if
  :: page_free != NIL -> unfull()
  :: else -> skip
  fi
}

inline delayed_free_all() {
  atomic { d = delayed_head; delayed_head = NIL }    /* atomic_exchange, acquire */
  do
  :: d != NIL -> nx = next[d]; free_local(d); d = nx
  :: else -> break
  od;
  nx = 0
}

/* Every block is in exactly one place: live, or on exactly one list. */
inline census() {
  for (i : 0 .. N - 1) { seen[i] = 0 }
  t = page_free;
  do :: t != NIL -> seen[t]++; assert(seen[t] == 1); t = next[t] :: else -> break od;
  t = local_free;
  do :: t != NIL -> seen[t]++; assert(seen[t] == 1); t = next[t] :: else -> break od;
  t = tf_ptr;
  do :: t != NIL -> seen[t]++; assert(seen[t] == 1); t = next[t] :: else -> break od;
  t = delayed_head;
  do :: t != NIL -> seen[t]++; assert(seen[t] == 1); t = next[t] :: else -> break od;
  for (i : 0 .. N - 1) { assert(seen[i] + live[i] == 1) }
}

active proctype owner() {
  byte b, steps, head, cnt, t, d, nx, i;
  byte seen[N];
  /* a fresh page: all N blocks carved onto page->free */
  atomic {
    for (i : 0 .. N - 2) { next[i] = i + 1 }
    next[N - 1] = NIL;
    page_free = 0
  }
  do
  :: steps < MAXSTEPS ->
    steps++;
    if
    :: page_free != NIL ->                  /* kiln_page_pop */
      d_step {
        b = page_free;
        page_free = next[b];
        used++;
        assert(!live[b]);                   /* never handed out twice */
        live[b] = true
      };
      if
      :: to_remote[0]!b
      :: to_remote[1]!b
      :: owner_held[b] = true
      fi;
      b = 0
    :: select(b : 0 .. N - 1);              /* the owner frees a block it holds */
      if
      :: owner_held[b] -> owner_held[b] = false; live[b] = false; free_local(b)
      :: else -> skip
      fi;
      b = 0
    :: page_free == NIL ->                  /* kiln_heap_find_page */
      collect();
      if
      :: page_free == NIL && !in_full -> page_to_full()
      :: else -> skip
      fi
    :: delayed_head != NIL -> delayed_free_all()   /* kiln_heap_malloc_generic */
    fi
  :: else -> break
  od;
  for (i : 0 .. R - 1) { to_remote[i]!NIL }
  if
  :: /* thread exit: kiln_heap_abandon */
    delayed_free_all();
    set_delayed(NEVER_DELAYED, true);       /* visit_never_delayed: waits out DELAYED_FREEING */
    delayed_free_all();                     /* the delayed list is final now */
    collect();                              /* visit_abandon */
    xheap = false;
    heap_alive = false;                     /* the thread record is freed */
    owner_exited = true;
    remotes_done == R;
    assert(delayed_head == NIL);            /* nothing stranded on a dead heap */
    census()
  :: /* the owner lives on: everything freed comes back to page->free */
    remotes_done == R;
    delayed_free_all();
    collect();
    census();
    assert(tf_ptr == NIL && delayed_head == NIL && local_free == NIL);
    for (i : 0 .. N - 1) { assert(live[i] || seen[i] == 1) }
  fi;
  reclaimed = true
}

/* --- remote side: kiln_page_free_mt ------------------------------------- */

active [R] proctype remote() {
  byte b, tp, ts, dh;
  bool use_delayed, h;
  byte me = _pid - 1;
  do
  :: to_remote[me]?b ->
    if
    :: b == NIL -> break
    :: else -> skip
    fi;
    assert(live[b]);
    live[b] = false;                        /* the program calls free(b) */
    atomic { tp = tf_ptr; ts = tf_state }   /* relaxed load */
#ifdef MUTANT_PLAIN_PUSH
    use_delayed = (ts == USE_DELAYED);
    if
    :: use_delayed -> tf_state = DELAYED_FREEING
    :: else -> next[b] = tp; tf_ptr = b     /* store without compare: lost updates */
    fi;
#else
    do
    :: use_delayed = (ts == USE_DELAYED);
      if
      :: !use_delayed -> next[b] = tp
      :: else -> skip
      fi;
      atomic {                              /* CAS, acq_rel */
        if
        :: tf_ptr == tp && tf_state == ts ->
          if
          :: use_delayed -> tf_state = DELAYED_FREEING
          :: else -> tf_ptr = b
          fi;
          break
        :: else -> tp = tf_ptr; ts = tf_state
        fi
      }
    od;
#endif
    if
    :: use_delayed ->
      h = xheap;                            /* acquire */
      if
      :: h ->
        assert(heap_alive);                 /* the owner may not have dropped the heap */
        dh = delayed_head;
        do
        :: next[b] = dh;
          atomic {
            if
            :: delayed_head == dh -> delayed_head = b; break
            :: else -> dh = delayed_head
            fi
          }
        od
      :: else -> skip
      fi;
      atomic { tp = tf_ptr; ts = tf_state }
      do                                    /* leave DELAYED_FREEING */
      :: if
        :: !h -> next[b] = tp
        :: else -> skip
        fi;
        atomic {
          if
          :: tf_ptr == tp && tf_state == ts ->
            if
            :: !h -> tf_ptr = b
            :: else -> skip
            fi;
            tf_state = NO_DELAYED;
            break
          :: else -> tp = tf_ptr; ts = tf_state
          fi
        }
      od
    :: else -> skip
    fi
  od;
  remotes_done++
}

#ifdef LIVENESS
ltl eventually_reclaimed { <> reclaimed }
#endif
