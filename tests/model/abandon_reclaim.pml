/* abandon_reclaim.pml — a thread exits and abandons its pages; another
 * thread reclaims the segment; a third keeps freeing blocks meanwhile.
 *
 * Mirrors (keep in step; the C code points back here):
 *   exiting()             kiln_heap_abandon, visit_never_delayed,
 *                         visit_abandon                    src/heap.c
 *   release_page()        kiln_heap_page_free              src/heap.c
 *                         + kiln_segment_page_free         src/segment.c
 *   page_abandon()        kiln_segment_page_abandon        src/segment.c
 *   maybe_abandon()       segment_maybe_abandon            src/segment.c
 *   reclaimer(), reclaim  segment_try_reclaim, segment_reclaim,
 *                         kiln_heap_adopt_page             src/segment.c, src/heap.c
 *   free_generic()        free_generic_hinted's owner test src/free.c
 *   free_mt()             kiln_page_free_mt                src/page.c
 *   collect(), set_delayed(), free_local(), delayed_free_all(): as in
 *                         cross_thread_free.pml (src/page.c, src/free.c, src/heap.c)
 *
 * The world: one segment with two pages of NB blocks, P0 and P1, in that
 * order in the exiting thread's queues (bins ascending, as heap_visit_pages
 * walks them).  Every block starts either free, or live and held by the
 * remote thread R, or live and held by the reclaiming thread T2 (all
 * combinations; P0 may start in the full queue, USE_DELAYED).  T1 exits;
 * T2 frees its blocks (as a remote thread before it reclaims, as the owner
 * after) and reclaims the segment if it is on the abandoned list; R frees
 * its blocks at any moment.  The segment lock is an atomic{} around the list
 * operations.  Abstractions as in cross_thread_free.pml.
 *
 * Properties
 *   safety (./pan): no block lost or duplicated (a page is released only
 *     with all its blocks on its free lists; the final census finds each
 *     block once); no use of a page after release (every remote access
 *     asserts the page is in use) nor of a dead heap; the segment is never
 *     stranded: at the end it is released, on the abandoned list, or owned
 *     by the live thread T2 — never still owned by the dead T1 (whose thread
 *     pointer the next thread may reuse: src/ptr.h kiln_thread_id).
 *   liveness (-DLIVENESS, ./pan -a -f): <> all_done (the script checks it
 *     with -DNO_T2_BLOCKS, T2 holding no block, to stay within the CI budget;
 *     the safety run has all configurations).
 * Mutants (scripts/check-models.sh --mutants; spin must FIND an error):
 *   MUTANT_NO_NEVER — abandon skips the NEVER_DELAYED step (and so its wait
 *   for DELAYED_FREEING); MUTANT_NO_ABANDON_ON_FREE — kiln_segment_page_free
 *   does not call segment_maybe_abandon.  That was Kiln's code when this
 *   model was written: P0 abandoned (1 of 2 used pages), then P1 found empty
 *   and freed (used_pages 1) left the segment owned by the dead thread; spin
 *   found it here and tests/spec found the crash it causes (a new thread
 *   reusing the thread pointer frees "locally" into a page with no heap).
 */

#define NB 2           /* blocks per page */
#define NP 2           /* pages in the segment */
#define NBLK 4         /* NB * NP */
#define NIL 255

#define USE_DELAYED 0
#define DELAYED_FREEING 1
#define NO_DELAYED 2
#define NEVER_DELAYED 3

/* thread ids: 1 = T1 (exits), 2 = T2 (reclaims), 3 = R (remote only) */
#define T1 1
#define T2 2
#define TR 3

#define page_of(b) ((b) / NB)

byte next[NBLK];
byte page_free[NP];
byte local_free[NP];
byte used[NP];
bool in_full[NP];
bool in_use[NP];            /* page->segment_in_use */
byte tf_ptr[NP];
byte tf_state[NP];
byte xheap[NP];             /* 0 = NULL, else the owning thread's heap */
byte delayed_head[3];       /* heap->thread_delayed_free, per heap (index = thread) */

byte thread_id = T1;        /* segment->thread_id */
byte used_pages = NP;
byte abandoned_pages = 0;
bool on_list = false;       /* on the abandoned list */

/* ghosts */
byte holder[NBLK];          /* 0 = not live, else the thread that will free it */
bool released[NP];          /* the page was given back to its segment */
bool seg_freed = false;
bool heap_alive[3];
bool t1_done = false, r_done = false, t2_done = false;
bool all_done = false;

inline set_delayed(p, st, override) {
  atomic { tf_state[p] != DELAYED_FREEING ->
    if
    :: tf_state[p] == st || (tf_state[p] == NEVER_DELAYED && !override) -> skip
    :: else -> tf_state[p] = st
    fi
  }
}

inline collect(p) {
  if
  :: tf_ptr[p] != NIL ->
    atomic { head = tf_ptr[p]; tf_ptr[p] = NIL }
    d_step {
      cnt = 1;
      t = head;
      do
      :: next[t] != NIL -> t = next[t]; cnt++; assert(cnt <= NB)
      :: else -> break
      od;
      next[t] = page_free[p];
      page_free[p] = head;
      used[p] = used[p] - cnt;
      head = 0; cnt = 0; t = 0
    }
  :: else -> skip
  fi;
  d_step {
    if
    :: local_free[p] != NIL ->
      if
      :: page_free[p] == NIL -> page_free[p] = local_free[p]
      :: else ->
        t = local_free[p];
        cnt = 1;
        do
        :: next[t] != NIL -> t = next[t]; cnt++; assert(cnt <= NB)
        :: else -> break
        od;
        next[t] = page_free[p];
        page_free[p] = local_free[p]
      fi;
      local_free[p] = NIL;
      t = 0; cnt = 0
    :: else -> skip
    fi
  }
}

/* kiln_free_local; used == 0 -> retire keeps the only page of its bin */
inline free_local(p, b) {
  d_step { next[b] = local_free[p]; local_free[p] = b; used[p]-- };
  if
  :: in_full[p] -> in_full[p] = false; set_delayed(p, NO_DELAYED, false)
  :: else -> skip
  fi
}

inline delayed_free_all(me) {
  atomic { d = delayed_head[me]; delayed_head[me] = NIL }
  do
  :: d != NIL -> nx = next[d]; free_local(page_of(d), d); d = nx
  :: else -> break
  od;
  nx = 0
}

/* kiln_heap_page_free + kiln_segment_page_free (owner only) */
inline release_page(p) {
  set_delayed(p, NEVER_DELAYED, true);
  d_step {
    /* every block of the page must be on its free lists: none is lost */
    cnt = 0;
    t = page_free[p];
    do :: t != NIL -> cnt++; t = next[t] :: else -> break od;
    t = local_free[p];
    do :: t != NIL -> cnt++; t = next[t] :: else -> break od;
    assert(used[p] == 0 && cnt == NB && tf_ptr[p] == NIL);
    in_use[p] = false;
    released[p] = true;
    page_free[p] = NIL; local_free[p] = NIL; in_full[p] = false;
    xheap[p] = 0;
    tf_ptr[p] = NIL; tf_state[p] = USE_DELAYED;   /* the C code stores 0 */
    used_pages--;
    cnt = 0; t = 0
  };
  if
  :: used_pages == 0 -> atomic { thread_id = 0; seg_freed = true }   /* segment_free */
  :: else ->
#ifdef MUTANT_NO_ABANDON_ON_FREE
    skip   /* the bug fixed in Kiln: a segment whose last non-abandoned page is
            * freed stays owned by the exiting thread forever */
#else
    maybe_abandon()
#endif
  fi
}

/* segment_maybe_abandon */
inline maybe_abandon() {
  if
  :: abandoned_pages == 0 || abandoned_pages < used_pages -> skip
  :: else -> atomic { thread_id = 0; on_list = true }   /* under the segment lock */
  fi
}

/* kiln_segment_page_abandon */
inline page_abandon(p) {
  abandoned_pages++;
  maybe_abandon()
}

/* kiln_page_free_mt, by thread `me` (not the owner) */
inline free_mt(p, b) {
  atomic { assert(!released[p]); tp = tf_ptr[p]; ts = tf_state[p] }
  do
  :: use_delayed = (ts == USE_DELAYED);
    if
    :: !use_delayed -> next[b] = tp
    :: else -> skip
    fi;
    atomic {
      assert(!released[p]);
      if
      :: tf_ptr[p] == tp && tf_state[p] == ts ->
        if
        :: use_delayed -> tf_state[p] = DELAYED_FREEING
        :: else -> tf_ptr[p] = b
        fi;
        break
      :: else -> tp = tf_ptr[p]; ts = tf_state[p]
      fi
    }
  od;
  if
  :: use_delayed ->
    atomic { assert(!released[p]); h = xheap[p] }
    if
    :: h != 0 ->
      assert(heap_alive[h]);
      dh = delayed_head[h];
      do
      :: next[b] = dh;
        atomic {
          assert(heap_alive[h]);
          if
          :: delayed_head[h] == dh -> delayed_head[h] = b; break
          :: else -> dh = delayed_head[h]
          fi
        }
      od
    :: else -> skip
    fi;
    atomic { assert(!released[p]); tp = tf_ptr[p]; ts = tf_state[p] }
    do
    :: if
      :: h == 0 -> next[b] = tp
      :: else -> skip
      fi;
      atomic {
        assert(!released[p]);
        if
        :: tf_ptr[p] == tp && tf_state[p] == ts ->
          if
          :: h == 0 -> tf_ptr[p] = b
          :: else -> skip
          fi;
          tf_state[p] = NO_DELAYED;
          break
        :: else -> tp = tf_ptr[p]; ts = tf_state[p]
        fi
      }
    od
  :: else -> skip
  fi;
  tp = 0; ts = 0; h = 0; dh = 0; use_delayed = false
}

/* free(b) by thread `me`: the owner test of free_generic_hinted */
inline free_generic(me, b) {
  assert(holder[b] == me);
  holder[b] = 0;
  p = page_of(b);
  atomic { assert(!seg_freed && !released[p]); owner = thread_id }   /* relaxed load */
  if
  :: owner == me -> free_local(p, b)
  :: else -> free_mt(p, b)
  fi;
  owner = 0
}

init {
  byte b, p, head, cnt, t, d, nx, owner, tp, ts, dh, h, t2_blocks;
  bool use_delayed;
  /* every combination of holders (T2 holds at most one block, to bound the
   * state space); P0 may be full */
  atomic {
    heap_alive[T1] = true; heap_alive[T2] = true;
    delayed_head[0] = NIL; delayed_head[1] = NIL; delayed_head[2] = NIL;
    for (p : 0 .. NP - 1) {
      page_free[p] = NIL; local_free[p] = NIL; tf_ptr[p] = NIL; tf_state[p] = NO_DELAYED;
      in_use[p] = true; xheap[p] = T1
    }
    for (b : 0 .. NBLK - 1) {
      if
      :: holder[b] = 0; next[b] = page_free[page_of(b)]; page_free[page_of(b)] = b
      :: holder[b] = TR; used[page_of(b)]++
#ifndef NO_T2_BLOCKS
      :: t2_blocks == 0 -> holder[b] = T2; used[page_of(b)]++; t2_blocks++
#endif
      fi
    }
    if
    :: page_free[0] == NIL -> in_full[0] = true; tf_state[0] = USE_DELAYED
    :: true -> skip
    fi;
    b = 0; p = 0; t2_blocks = 0;
    run exiting();
    run remote();
    run reclaimer()
  };
  t1_done && r_done && t2_done;
  /* the census */
  assert(seg_freed || on_list || thread_id == T2);   /* never stranded with the dead T1 */
  for (p : 0 .. NP - 1) {
    if
    :: in_use[p] ->
      cnt = 0;
      t = page_free[p];
      do :: t != NIL -> cnt++; t = next[t] :: else -> break od;
      t = local_free[p];
      do :: t != NIL -> cnt++; t = next[t] :: else -> break od;
      t = tf_ptr[p];
      do :: t != NIL -> cnt++; t = next[t] :: else -> break od;
      assert(cnt == NB)          /* all freed, each once (lists are disjoint: cnt counts with repeats) */
    :: else -> skip
    fi
  }
  all_done = true
}

/* T1: the thread that exits (thread_done -> kiln_heap_abandon) */
proctype exiting() {
  byte p, head, cnt, t, d, nx;
  delayed_free_all(T1);
#ifndef MUTANT_NO_NEVER
  for (p : 0 .. NP - 1) { set_delayed(p, NEVER_DELAYED, true) }   /* visit_never_delayed */
#endif
  delayed_free_all(T1);
  for (p : 0 .. NP - 1) {                                         /* visit_abandon */
    collect(p);
    if
    :: used[p] == 0 -> release_page(p)
    :: else ->
      in_full[p] = false;
      xheap[p] = 0;
      page_abandon(p)
    fi
  }
  heap_alive[T1] = false;       /* the thread record is freed */
  t1_done = true
}

/* R: a thread that only frees */
proctype remote() {
  byte b, p, head, cnt, t, d, nx, owner, tp, ts, dh, h;
  bool use_delayed;
  do   /* one branch per block: no idle choice, so every run makes progress */
  :: holder[0] == TR -> b = 0; free_generic(TR, b)
  :: holder[1] == TR -> b = 1; free_generic(TR, b)
  :: holder[2] == TR -> b = 2; free_generic(TR, b)
  :: holder[3] == TR -> b = 3; free_generic(TR, b)
  :: else -> break
  od;
  r_done = true
}

/* T2: frees its blocks, reclaims the segment when it can, then collects */
proctype reclaimer() {
  byte b, p, head, cnt, t, d, nx, owner, tp, ts, dh, h, k;
  bool use_delayed, reclaimed = false;
  bool was_empty[NP];
  do
  :: holder[0] == T2 -> b = 0; free_generic(T2, b)
  :: holder[1] == T2 -> b = 1; free_generic(T2, b)
  :: holder[2] == T2 -> b = 2; free_generic(T2, b)
  :: holder[3] == T2 -> b = 3; free_generic(T2, b)
  :: atomic { !reclaimed && on_list -> on_list = false; reclaimed = true }   /* segment_try_reclaim */
    /* segment_reclaim */
    abandoned_pages = 0;
    thread_id = T2;
    for (p : 0 .. NP - 1) {
      if
      :: in_use[p] ->                       /* kiln_heap_adopt_page */
        xheap[p] = T2;
        set_delayed(p, NO_DELAYED, true);
        collect(p);
        in_full[p] = false;
        was_empty[p] = (used[p] == 0)
      :: else -> skip
      fi
    }
    for (p : 0 .. NP - 1) {
      if
      :: was_empty[p] -> was_empty[p] = false; release_page(p)
      :: else -> skip
      fi
    }
  :: (holder[0] != T2 && holder[1] != T2 && holder[2] != T2 && holder[3] != T2) &&
     (reclaimed || (t1_done && !on_list)) -> break
  od;
  /* live on: once R is done, a final kiln_heap_collect frees what came back */
  r_done;
  if
  :: reclaimed && !seg_freed ->
    delayed_free_all(T2);
    for (p : 0 .. NP - 1) {
      if
      :: in_use[p] -> collect(p);
        if
        :: used[p] == 0 -> release_page(p)
        :: else -> skip
        fi
      :: else -> skip
      fi
    }
  :: else -> skip
  fi;
  t2_done = true
}

#ifdef LIVENESS
ltl eventually_done { <> all_done }
#endif
