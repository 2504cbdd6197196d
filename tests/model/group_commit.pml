/* group_commit.pml — group commit, segment rotation, and recovery after any crash.
 *
 * Stands for (engine/wal.c): wal_append, wal_sync, lead_round, write_and_sync, rotate,
 * seg_create, grow_empty_segment, flusher_main; (engine/recover.c): recovery_scan's verdict on a
 * bad record (on_bad_record, valid_record_after, segment_has_content) and recovery_commit's
 * cut-and-sync of the segment the log resumes in. docs/VERIFICATION.md says what is abstracted.
 *
 * Writers append records and flush; one leader at a time takes the pending buffer, writes it to
 * the current segment and fdatasyncs it while the others wait on the condition; the background
 * flusher flushes at any moment (its deadline is abstracted to "any time"). A segment is rotated
 * when a record does not fit (chosen freely: record sizes are abstracted), after which the old
 * segment must be durable.
 *
 * After every step that changes what a crash would leave, the model checks two crashes:
 *  - a power cut: every synced record survives, and any subset of written-but-unsynced records
 *    survives (the page cache written back partially, in any order; records are the unit of
 *    loss: a record with any sector lost is a bad record, which is what recovery sees);
 *  - a process kill (the page cache survives) followed by recovery, a FLUSH in the new session
 *    (which returns at once: wal_open takes the replayed log as durable) and then a power cut.
 * Properties (asserts):
 *  - every_acked_write_survives_power_cut: recovery opens (never refuses) and keeps every
 *    record a returned flush covered; replay is of LSNs 1..k in order, so the state is a prefix;
 *  - flush_after_kill_recovery_survives_power_cut: the same for the records the new session
 *    took as durable after a kill;
 *  - no deadlock (invalid end states), and with -DLIVENESS: every writer's flush returns.
 *
 * Switches: -DMUTANT_FOLLOWER_ANY_ROUND, -DMUTANT_DURABLE_AFTER_WRITE, -DMUTANT_ROTATE_NO_FLUSH,
 * -DMUTANT_NO_BROADCAST (known-wrong wal.c, must be rejected); -DTODAY_HOLE_IS_DAMAGE,
 * -DTODAY_SYNC_ONLY_ON_CUT (recover.c as it is today: both rejected, see docs/VERIFICATION.md
 * "Findings"). */

#ifndef W
#define W 2            /* writer threads */
#endif
#ifndef A
#define A 2            /* appends per writer */
#endif
#define N (W * A)      /* records in a run: LSNs 1..N */
#define NSEG 2         /* segment files at most */
#define FL W           /* the flusher's thread number (writers are 0..W-1); the trail says "thread N" */

/* ---- the wal, guarded by w->mu: every access is inside one atomic block ---- */
byte next_lsn = 1;
byte durable_lsn;
byte pend_lo = 1;      /* pend holds LSNs pend_lo .. next_lsn-1 */
bool flushing;
bool rotating;
bool waiting[W + 1];   /* blocked in pthread_cond_wait(&w->cv); a broadcast clears them all */
byte cur;              /* current segment */

/* ---- segments and records on disk ---- */
byte seg_first[NSEG];  /* first LSN its header names (header + directory entry synced at creation) */
byte seg_n[NSEG];      /* records appended to it */
bool seg_exact[NSEG];  /* its file ends exactly at its last record (no preallocated tail) */
byte rec_seg[N + 1];   /* segment of each record */
byte hint[N + 1];      /* the proposed header field: durable_lsn when its round was taken */
bool written[N + 1];   /* pwritten: in the page cache */
bool synced[N + 1];    /* covered by a successful fdatasync: on the platter */

byte acked;            /* highest LSN a returned flush covered */
byte ndone;            /* writers whose flush returned */

/* ---- scratch of the crash checks: hidden, so not part of the state ---- */
hidden byte ondisk[N + 1];
hidden byte syncd2[N + 1];
hidden byte u_lsn[N + 1];
hidden byte nu, subset, ui, rh, ri, rk, rk0, rs, last;
hidden byte refused, rsync;
hidden byte every_acked_write_survives_power_cut;
hidden byte flush_after_kill_recovery_survives_power_cut;
hidden byte recovery_after_kill_opens;

/* Recovery over the view ondisk[]: the first missing LSN rh is either a torn tail (cut: the
 * state is LSNs 1..rh-1) or damage (refused). Today (recover.c): any valid record after it, or
 * a later segment whose header is not the next LSN, is damage. Proposed: a record after the
 * hole is evidence of damage only when its hint says the hole was already durable when the
 * record's flush round was taken (the leader stamps it: the round's first LSN - 1). */
inline recover_view() {
	rh = 1;
	do
	:: rh < next_lsn && ondisk[rh] -> rh++
	:: else -> break
	od;
	refused = 0;
	ri = rh + 1;
	do
	:: ri < next_lsn ->
#ifdef TODAY_HOLE_IS_DAMAGE
		if :: ondisk[ri] -> refused = 1 :: else -> skip fi;
#else
		if :: ondisk[ri] && hint[ri] >= rh -> refused = 1 :: else -> skip fi;
#endif
		ri++
	:: else -> break
	od;
	rs = 0;
	do
	:: rs <= cur -> if :: seg_first[rs] > rh -> refused = 1 :: else -> skip fi; rs++
	:: else -> break
	od;
	rk = rh - 1
}

/* Power cut: every subset of the records in the page cache but not synced (syncd2[]) may be
 * lost; recovery must open and keep LSNs 1..need. Sets ok to false on a counterexample. */
inline power_cut(need, ok, after_kill) {
	nu = 0;
	ri = 1;
	do
	:: ri < next_lsn ->
		if :: written[ri] && !syncd2[ri] -> u_lsn[nu] = ri; nu++ :: else -> skip fi;
		ri++
	:: else -> break
	od;
	subset = 0;
	do
	:: subset < (1 << nu) && ok ->   /* up to the first counterexample */
		ri = 1;
		do :: ri < next_lsn -> ondisk[ri] = syncd2[ri]; ri++ :: else -> break od;
		ui = 0;
		do
		:: ui < nu -> if :: (subset >> ui) & 1 -> ondisk[u_lsn[ui]] = 1 :: else -> skip fi; ui++
		:: else -> break
		od;
		recover_view();
		if
		:: refused || rk < need ->
			ui = 0;
			do
			:: ui < nu ->
				if
				:: (subset >> ui) & 1 -> printf("@@ CRASH: unsynced LSN %d reaches the disk\n", u_lsn[ui])
				:: else -> printf("@@ CRASH: unsynced LSN %d is lost\n", u_lsn[ui])
				fi;
				ui++
			:: else -> break
			od
		:: else -> skip
		fi;
		if
		:: (refused || rk < need) && after_kill ->
			printf("@@ CRASH: process kill here; recovery replays LSNs 1..%d from the page cache and resumes in segment %d (fdatasyncs it: %d); the new session's FLUSH returns at once\n",
			       rk0, cur, rsync)
		:: else -> skip
		fi;
		if
		:: refused && !after_kill ->
			printf("@@ CRASH: power cut: recovery REFUSES to open (damage after LSN %d), though LSNs up to %d were acknowledged\n",
			       rk, need);
			ok = 0
		:: refused && after_kill ->
			printf("@@ CRASH: then a power cut: recovery REFUSES to open (damage after LSN %d), though the new session's FLUSH covered LSNs up to %d\n",
			       rk, need);
			ok = 0
		:: !refused && rk < need && !after_kill ->
			printf("@@ CRASH: power cut: recovered up to LSN %d, though LSNs up to %d were acknowledged\n",
			       rk, need);
			ok = 0
		:: !refused && rk < need && after_kill ->
			printf("@@ CRASH: then a power cut: recovered up to LSN %d, though the new session's FLUSH covered LSNs up to %d\n",
			       rk, need);
			ok = 0
		:: else -> skip
		fi;
		subset++
	:: else -> break
	od
}

inline crash_check() {
#ifndef LIVENESS    /* the liveness run checks progress only: the safety run checks crashes */
	d_step {
	/* 1. power cut now */
	ri = 0;
	do :: ri <= N -> syncd2[ri] = synced[ri]; ri++ :: else -> break od;
	every_acked_write_survives_power_cut = 1;
	power_cut(acked, every_acked_write_survives_power_cut, 0);
	assert(every_acked_write_survives_power_cut);

	/* 2. process kill now: recovery reads the page cache (written[]), which has no hole */
	ri = 1;
	do :: ri < next_lsn -> ondisk[ri] = written[ri]; ri++ :: else -> break od;
	recover_view();
	recovery_after_kill_opens = !refused || !every_acked_write_survives_power_cut;
	if
	:: !recovery_after_kill_opens -> printf("@@ CRASH: process kill: recovery REFUSES the page cache's log\n")
	:: else -> skip
	fi;
	assert(recovery_after_kill_opens);
	rk0 = rk;
	/* It resumes in the last segment. Today it syncs only when it cuts something: a segment
	 * whose file ends exactly at a record it replayed is left unsynced. */
	last = 0;
	ri = 1;
	do :: ri < next_lsn -> if :: rec_seg[ri] == cur -> last = ri :: else -> skip fi; ri++
	:: else -> break
	od;
#ifdef TODAY_SYNC_ONLY_ON_CUT
	rsync = !(seg_exact[cur] && last != 0 && written[last]);
#else
	rsync = 1;
#endif
	ri = 0;
	do
	:: ri <= N -> syncd2[ri] = synced[ri] || (rsync && written[ri] && rec_seg[ri] == cur); ri++
	:: else -> break
	od;
	/* the new session's durable_lsn is rk0: its first FLUSH returns at once; then power cut */
	flush_after_kill_recovery_survives_power_cut = 1;
	if   /* (only once the first check held: a counterexample tells one story) */
	:: every_acked_write_survives_power_cut ->
		power_cut(rk0, flush_after_kill_recovery_survives_power_cut, 1)
	:: else -> skip
	fi;
	assert(flush_after_kill_recovery_survives_power_cut)
	}
#else
	skip
#endif
}

/* ---- wal.c ---- */


/* lead_round, first half (w->mu held, !flushing): take pend. */
inline take_batch() {
	lo = pend_lo;
	hi = next_lsn - 1;
#ifndef MUTANT_DURABLE_AFTER_WRITE
	upto = next_lsn - 1;
#endif
	fdseg = cur;
	l = lo;
	do :: l <= hi -> hint[l] = durable_lsn; l++ :: else -> break od;   /* stamped by the leader */
	pend_lo = next_lsn;
	flushing = 1;
	if
	:: lo <= hi -> printf("@@ thread %d leads a round: takes LSNs %d..%d for segment %d\n", me, lo, hi, fdseg)
	:: else -> printf("@@ thread %d leads a round with nothing new to write (fdatasync of segment %d)\n", me, fdseg)
	fi
}

/* lead_round, without the mutex: write_and_sync, then (mutex again) finish the round. */
inline do_round() {
	l = lo;
	do
	:: l <= hi -> atomic { written[l] = 1; printf("@@ LSN %d written (page cache)\n", l); crash_check() }; l++
	:: else -> break
	od;
	atomic {
		/* fdatasync(fd): every record written to that file is now durable */
		l = 1;
		do
		:: l < next_lsn -> if :: written[l] && rec_seg[l] == fdseg -> synced[l] = 1 :: else -> skip fi; l++
		:: else -> break
		od;
		printf("@@ fdatasync of segment %d\n", fdseg);
		crash_check()
	};
	atomic {
#ifdef MUTANT_DURABLE_AFTER_WRITE
		upto = next_lsn - 1;   /* read after the write: counts appends made meanwhile */
#endif
		flushing = 0;
		durable_lsn = upto;
		printf("@@ round ends: durable_lsn = %d\n", upto);
#ifndef MUTANT_NO_BROADCAST
		l = 0;
		do :: l <= W -> waiting[l] = 0; l++ :: else -> break od   /* broadcast */
#endif
	};
	l = 0; lo = 0; hi = 0; upto = 0; fdseg = 0
}

/* wal_sync(me, target): return once target is durable. */
inline wal_sync(me, target) {
	atomic { if :: target > next_lsn - 1 -> target = next_lsn - 1 :: else -> skip fi };
	do
	:: atomic {
		if
		:: durable_lsn >= target -> act = 1
		:: else ->
			if
			:: flushing -> waiting[me] = 1; act = 2; printf("@@ thread %d waits for the round in flight\n", me)
			:: else -> take_batch(); act = 3
			fi
		fi
	   };
	   if
	   :: act == 1 -> act = 0; break
	   :: act == 2 -> act = 0;
		!waiting[me];  /* pthread_cond_wait returns; the mutex is retaken by the next atomic */
		printf("@@ thread %d wakes up\n", me)
#ifdef MUTANT_FOLLOWER_ANY_ROUND
		; break       /* takes "a round finished" for "my data is durable" */
#endif
	   :: act == 3 -> act = 0; do_round()
	   fi
	od
}

/* rotate (w->mu held, called from wal_append, which set rotating): the old segment is made
 * durable first. */
inline rotate(me, lsn) {
#ifndef MUTANT_ROTATE_NO_FLUSH
	do
	:: atomic {
		if
		:: flushing -> waiting[me] = 1; act = 2
		:: !flushing && durable_lsn == next_lsn - 1 -> act = 1
		:: !flushing && durable_lsn != next_lsn - 1 -> take_batch(); act = 3
		fi
	   };
	   if
	   :: act == 1 -> act = 0; break
	   :: act == 2 -> act = 0; !waiting[me]
	   :: act == 3 -> act = 0; do_round()
	   fi
	od;
#else
	/* writes out what is buffered for the old segment, but never fdatasyncs it */
	atomic {
		!flushing;
		l = pend_lo;
		do :: l < next_lsn -> written[l] = 1; printf("@@ LSN %d written (page cache), no fdatasync\n", l); l++ :: else -> break od;
		pend_lo = next_lsn;
		l = 0;
		crash_check()
	};
#endif
	atomic {
		/* seg_create: header written and synced, directory synced, before any record */
		cur++;
		seg_first[cur] = next_lsn;
		printf("@@ segment %d created for LSNs from %d\n", cur, next_lsn);
		rotating = 0;
		l = 0;
		do :: l <= W -> waiting[l] = 0; l++ :: else -> break od;
		crash_check();
		append_record(lsn)   /* still under the mutex that rotate ran under */
	}
}

/* The record goes to pend (w->mu held). Whether it fills the segment's reservation exactly
 * (or grows an empty segment to fit) is chosen freely; the last segment of the model never
 * fills, so that rotation stays bounded. */
inline append_record(lsn) {
	lsn = next_lsn;
	rec_seg[lsn] = cur;
	seg_n[cur]++;
	if
	:: seg_exact[cur] = 0
	:: cur < NSEG - 1 -> seg_exact[cur] = 1
	fi;
	next_lsn++;
	printf("@@ thread %d appends LSN %d to segment %d (fills it exactly: %d)\n", me, lsn, cur, seg_exact[cur])
}

/* wal_append: returns the record's LSN in lsn. */
inline wal_append(me, lsn) {
	atomic {
		!rotating;
		if
		:: seg_n[cur] == 0 -> append_record(lsn)                     /* fits, or grows */
		:: seg_n[cur] > 0 && !seg_exact[cur] -> append_record(lsn)   /* fits */
		:: seg_n[cur] > 0 && cur < NSEG - 1 -> rotating = 1; act = 4 /* does not fit */
		fi
	};
	if
	:: act == 4 -> act = 0; rotate(me, lsn)   /* appends once the new segment exists */
	:: else -> skip
	fi
}

proctype writer(byte me) {
	byte lsn, target, act, lo, hi, upto, fdseg, l, k;
	k = 0;
	do
	:: k < A ->
		wal_append(me, lsn);
		k++;
		if
		:: k < A -> skip
		:: else ->
			target = lsn;
			wal_sync(me, target);
			atomic {
				if :: lsn > acked -> acked = lsn :: else -> skip fi;
				ndone++;
				printf("@@ thread %d: flush up to LSN %d returns\n", me, lsn);
				crash_check()
			}
		fi
	:: else -> break
	od
}

/* flusher_main: flushes whatever is pending, at any time (its deadline is abstracted). */
proctype flusher() {
	byte me = FL, target, act, lo, hi, upto, fdseg, l;
end_idle:
	do
	:: atomic { durable_lsn < next_lsn - 1 && pend_lo < next_lsn -> target = next_lsn - 1 };
	   wal_sync(me, target);
	   target = 0
	od
}

init {
	byte i;
	atomic {
		seg_first[0] = 1;   /* wal_open created the first segment */
		do :: i < W -> run writer(i); i++ :: else -> break od;
		run flusher()
	}
}

#ifdef LIVENESS
ltl every_flush_returns { <> (ndone == W) }
#endif
