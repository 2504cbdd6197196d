/* group_commit.pml — appends, group commit, segment rotation, and recovery after any crash, as
 * engine/wal.c and engine/recover.c do them (values-on-disk engine, record and segment format 2).
 *
 * Stands for (engine/wal.c): wal_append (the record written to the segment under w->mu, its
 * base = durable_lsn stamped, the flusher's clock started), wal_sync, lead_round, rotate (trim,
 * sync until durable, seg_create), grow_empty_segment, flusher_main; (engine/recover.c,
 * engine/logread.c): scan_segment's fdatasync before it reads a segment, on_bad_record's verdict
 * on a bad record (log_vouched_after, zero_hole, segment_has_content) and recovery_commit's cut.
 * docs/VERIFICATION.md says what is abstracted.
 *
 * Writers append records and flush (concurrently: wal.c allows it; the store serialises its
 * appends under apply_mu, which only removes interleavings). An append writes its record to the
 * current segment at once (the page cache) and stamps it with the durable LSN of that moment; a
 * flush makes one caller the leader, which notes the last LSN written, fdatasyncs without the
 * mutex and then declares that LSN durable, while the others wait on the condition. The
 * background flusher (thread W) flushes at any moment once its clock runs (the commit_ms deadline
 * is abstracted to "any time"). A record that does not fit (chosen freely: sizes are abstracted)
 * rotates: the old segment is trimmed, synced until durable, and a new one created.
 *
 * After every step that changes what a crash would leave, the model checks:
 *  - a power cut: every synced record survives, any subset of the others does (the page cache
 *    written back partly, in any order; records are the unit of loss, and a lost record reads
 *    back as the zeros its segment was preallocated with);
 *  - media damage under the same power cut: one synced record reads back as zeros (a lost or
 *    zeroed sector) or as garbage (flipped bits);
 *  - a process kill (the page cache survives) followed by recovery, a FLUSH in the new session
 *    (which returns at once: wal_open takes the replayed log as durable) and then a power cut.
 * Properties (asserts):
 *  - every_acked_write_survives_power_cut: recovery opens (never refuses) and keeps every record
 *    a returned flush covered; replay is of LSNs 1..k in order, so the state is a prefix;
 *  - durable_damage_is_found: a synced record that reads back as zeros is called damage (refused)
 *    when a record written after it was durable survives; one that reads back as garbage, when
 *    any valid record follows it. (Zeros with only records written before it was durable after
 *    them pass for a torn tail: the limit of the base field, docs/VERIFICATION.md.)
 *  - flush_after_kill_recovery_survives_power_cut: the records the new session took as durable
 *    after a kill survive a power cut;
 *  - no deadlock (invalid end states); with -DLIVENESS every writer's flush returns; with
 *    -DLIVENESS -DNO_FLUSH (writers never flush) every record becomes durable through the
 *    background flusher.
 *
 * The functions, as tests/model/names.py checks that they exist and name this model:
 * Code: engine/wal.c wal_append write_record wal_sync lead_round rotate seg_create grow_empty_segment flusher_main wal_open
 * Code: engine/logread.c log_vouched_after log_next_after
 * Code: engine/recover.c on_bad_record zero_hole segment_has_content scan_segment recovery_commit
 *
 * Switches: -DMUTANT_FOLLOWER_ANY_ROUND, -DMUTANT_DURABLE_AFTER_WRITE, -DMUTANT_ROTATE_NO_FLUSH,
 * -DMUTANT_NO_BROADCAST, -DMUTANT_BASE_LAST_WRITTEN, -DMUTANT_VOUCHED_HOLE_CUT,
 * -DMUTANT_GARBAGE_HOLE_CUT, and the two older recover.c rules: -DMUTANT_ANY_RECORD_AFTER_A_HOLE
 * (finding 1) and -DMUTANT_SYNC_ONLY_WHAT_IS_CUT (finding 2): known-wrong, each must be rejected.
 * -DMUTANT_CLOCK_ONLY_WHEN_ALL_DURABLE: finding 6 as the code had it (the flusher's clock started
 * only by an append made while everything was durable, not by any append while it is stopped). */

#ifndef W
#define W 2            /* writer threads */
#endif
#ifndef A
#define A 2            /* appends per writer */
#endif
#define N (W * A)      /* records in a run: LSNs 1..N */
#ifndef NSEG
#define NSEG 3         /* segment files at most: up to two rotations */
#endif
#define FL W           /* the flusher's thread number (writers are 0..W-1) */

/* what a record reads back as after a crash */
#define ZEROS 0        /* never reached the disk: the segment's preallocated zeros */
#define VALID 1
#define GARBAGE 2      /* media damage: bytes that are neither the record nor zeros */

/* ---- the wal, guarded by w->mu: every access is inside one atomic block ---- */
byte next_lsn = 1;
byte durable_lsn;
bool flushing;
bool waiting[W + 1];   /* blocked in pthread_cond_wait(&w->cv); a broadcast clears them all */
bool clock;            /* w->unsynced_since_ns != 0: the flusher's commit_ms clock runs */
byte cur;              /* current segment */
byte nrot;             /* rotations begun (bounded by NSEG - 1) */

/* ---- segments and records: a record is in the file (page cache) once appended ---- */
byte seg_first[NSEG];  /* first LSN its header names (header + directory entry synced at creation) */
byte seg_n[NSEG];      /* records appended to it */
bool seg_full[NSEG];   /* no room left: a record filled its reservation exactly, or rotate trimmed it */
byte rec_seg[N + 1];   /* segment of each record */
byte stamp[N + 1];     /* durable_lsn when it was appended: the base field wal_append writes */
bool synced[N + 1];    /* covered by a successful fdatasync: on the platter */

byte acked;            /* highest LSN a returned flush covered */
byte ndone;            /* writers whose flush returned */

/* The base field as written: the durable LSN of the append; the mutant writes the last LSN
 * written instead (what a careless "the log up to here" would say). */
#ifdef MUTANT_BASE_LAST_WRITTEN
#define BASE(r) ((r) - 1)
#else
#define BASE(r) stamp[r]
#endif

/* ---- scratch of the crash checks: hidden, so not part of the state ---- */
hidden byte ondisk[N + 1];
hidden byte syncd2[N + 1];
hidden byte u_lsn[N + 1];
hidden byte nu, subset, ui, rh, ri, rk, rk0, rs, dd, kind, expect;
hidden byte refused, rsync;
hidden byte every_acked_write_survives_power_cut;
hidden byte durable_damage_is_found;
hidden byte flush_after_kill_recovery_survives_power_cut;

/* Recovery (recover.c) over the view ondisk[]: rh is the first record that is not valid. Bytes
 * follow it that make it damage (refused): a valid record after it whose base says rh was durable
 * when it was written (log_vouched_after); a valid record after it when the bad bytes are not a
 * zero hole (zero_hole); a later segment (segment_has_content: rotation made every older segment
 * durable first). Otherwise it is a hole in the unsynced stretch: the log is cut at rh. */
inline recover_view() {
	rh = 1;
	do
	:: rh < next_lsn && ondisk[rh] == VALID -> rh++
	:: else -> break
	od;
	refused = 0;
	ri = rh + 1;
	do
	:: ri < next_lsn ->
		if
		:: ondisk[ri] == VALID ->
#if defined(MUTANT_ANY_RECORD_AFTER_A_HOLE)
			refused = 1       /* recover.c before format 2: any valid record after it */
#elif defined(MUTANT_VOUCHED_HOLE_CUT)
			if :: ondisk[rh] == GARBAGE -> refused = 1 :: else -> skip fi   /* the base ignored */
#elif defined(MUTANT_GARBAGE_HOLE_CUT)
			if :: BASE(ri) >= rh -> refused = 1 :: else -> skip fi          /* zero_hole skipped */
#else
			if :: BASE(ri) >= rh || ondisk[rh] == GARBAGE -> refused = 1 :: else -> skip fi
#endif
		:: else -> skip
		fi;
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

/* Power cut over syncd2[]: every subset of the other records may be lost (zeros); recovery must
 * open and keep LSNs 1..need. With damage, also each synced record as zeros and as garbage:
 * recovery must refuse where durable_damage_is_found says so. */
inline power_cut(need, ok, after_kill, damage) {
	nu = 0;
	ri = 1;
	do
	:: ri < next_lsn ->
		if :: !syncd2[ri] -> u_lsn[nu] = ri; nu++ :: else -> skip fi;
		ri++
	:: else -> break
	od;
	subset = 0;
	do
	:: subset < (1 << nu) && ok && durable_damage_is_found ->   /* up to the first counterexample */
		dd = 0;   /* 0: no damage; else the damaged synced record */
		do
		:: dd < next_lsn && ok && durable_damage_is_found ->
			kind = ZEROS;
			do
			:: kind <= GARBAGE && ok && durable_damage_is_found ->
				ri = 1;
				do :: ri < next_lsn -> ondisk[ri] = (syncd2[ri] -> VALID : ZEROS); ri++ :: else -> break od;
				ui = 0;
				do
				:: ui < nu -> if :: (subset >> ui) & 1 -> ondisk[u_lsn[ui]] = VALID :: else -> skip fi; ui++
				:: else -> break
				od;
				if :: dd -> ondisk[dd] = kind :: else -> skip fi;
				recover_view();
				if
				:: dd == 0 && (refused || rk < need) ->
					ui = 0;
					do
					:: ui < nu ->
						if
						:: (subset >> ui) & 1 -> printf("@@ CRASH: unsynced LSN %d reaches the disk\n", u_lsn[ui])
						:: else -> printf("@@ CRASH: unsynced LSN %d is lost (zeros)\n", u_lsn[ui])
						fi;
						ui++
					:: else -> break
					od;
					if
					:: after_kill ->
						printf("@@ CRASH: (after a process kill; recovery replayed LSNs 1..%d from the page cache, fdatasyncing the segment it resumes in: %d; the new session's FLUSH returned at once)\n",
						       rk0, rsync)
					:: else -> skip
					fi;
					if
					:: refused ->
						printf("@@ CRASH: power cut: recovery REFUSES to open (damage after LSN %d), though LSNs up to %d were acknowledged\n",
						       rk, need)
					:: else ->
						printf("@@ CRASH: power cut: recovered up to LSN %d, though LSNs up to %d were acknowledged\n",
						       rk, need)
					fi;
					ok = 0
				:: dd != 0 ->
					/* what the damage rules promise: history, not the bytes, says which */
					expect = 0;
					ri = dd + 1;
					do
					:: ri < next_lsn ->
						if
						:: ondisk[ri] == VALID && (stamp[ri] >= dd || kind == GARBAGE) -> expect = 1
						:: else -> skip
						fi;
						ri++
					:: else -> break
					od;
					if
					:: expect && !refused ->
						if
						:: kind == ZEROS -> printf("@@ CRASH: power cut; synced LSN %d reads back as zeros (a lost sector); after it on disk:\n", dd)
						:: else -> printf("@@ CRASH: power cut; synced LSN %d reads back as garbage (flipped bits); after it on disk:\n", dd)
						fi;
						ri = dd + 1;
						do
						:: ri < next_lsn ->
							if
							:: ondisk[ri] == VALID -> printf("@@ CRASH:   LSN %d, appended when LSNs up to %d were durable (its base field says %d)\n", ri, stamp[ri], BASE(ri))
							:: else -> skip
							fi;
							ri++
						:: else -> break
						od;
						printf("@@ CRASH: recovery takes it for a torn tail and cuts the log at LSN %d: synced records lost, no damage reported\n", rk + 1);
						durable_damage_is_found = 0
					:: else -> skip
					fi
				:: else -> skip
				fi;
				if   /* no damage: one pass; damage: zeros, then garbage */
				:: dd == 0 || kind == GARBAGE -> kind = GARBAGE + 1
				:: else -> kind = GARBAGE
				fi
			:: else -> break
			od;
			/* the next synced record to damage (none when damage is not checked) */
			dd++;
			do :: dd < next_lsn && !(damage && syncd2[dd]) -> dd++ :: else -> break od
		:: else -> break
		od;
		subset++
	:: else -> break
	od
}

inline crash_check() {
#ifndef LIVENESS    /* the liveness runs check progress only: the safety run checks crashes */
	d_step {
	/* 1. power cut now (and media damage under it) */
	ri = 0;
	do :: ri <= N -> syncd2[ri] = synced[ri]; ri++ :: else -> break od;
	every_acked_write_survives_power_cut = 1;
	durable_damage_is_found = 1;
	power_cut(acked, every_acked_write_survives_power_cut, 0, 1);
	assert(every_acked_write_survives_power_cut);
	assert(durable_damage_is_found);

	/* 2. process kill now: recovery reads the page cache, which holds every record appended
	 * (each was written whole under w->mu): it replays them all. scan_segment fdatasyncs each
	 * segment before reading it; the older rule synced only a segment it cut something from,
	 * and a segment that ends exactly at its last record has nothing to cut. Every segment but
	 * the current one is durable already (rotation). */
	rk0 = next_lsn - 1;
#ifdef MUTANT_SYNC_ONLY_WHAT_IS_CUT
	rsync = !(seg_full[cur] && seg_n[cur] > 0);
#else
	rsync = 1;
#endif
	ri = 0;
	do
	:: ri <= N -> syncd2[ri] = synced[ri] || (rsync && ri > 0 && ri < next_lsn); ri++
	:: else -> break
	od;
	/* the new session's durable_lsn is rk0: its first FLUSH returns at once; then power cut */
	flush_after_kill_recovery_survives_power_cut = 1;
	power_cut(rk0, flush_after_kill_recovery_survives_power_cut, 1, 0);
	assert(flush_after_kill_recovery_survives_power_cut)
	}
#else
	skip
#endif
}

/* ---- wal.c ---- */

/* lead_round, first half (w->mu held, !flushing): note the last LSN written, stop the clock. */
inline take_round() {
#ifndef MUTANT_DURABLE_AFTER_WRITE
	upto = next_lsn - 1;
#endif
	fdseg = cur;
	clock = 0;
	flushing = 1;
	if
	:: me == FL -> printf("@@ the flusher leads a round: LSNs up to %d are written; fdatasync of segment %d\n", next_lsn - 1, fdseg)
	:: else -> printf("@@ thread %d leads a round: LSNs up to %d are written; fdatasync of segment %d\n", me, next_lsn - 1, fdseg)
	fi
}

/* lead_round, second half: fdatasync without the mutex, then (mutex again) end the round. */
inline do_round() {
	atomic {
		/* fdatasync(fd): every record written to that file so far is durable */
		l = 1;
		do
		:: l < next_lsn -> if :: rec_seg[l] == fdseg -> synced[l] = 1 :: else -> skip fi; l++
		:: else -> break
		od;
		printf("@@ fdatasync of segment %d done (records up to LSN %d in it)\n", fdseg, next_lsn - 1);
		crash_check()
	};
	atomic {
#ifdef MUTANT_DURABLE_AFTER_WRITE
		upto = next_lsn - 1;   /* read after the fdatasync: counts appends made meanwhile */
#endif
		flushing = 0;
		if :: upto > durable_lsn -> durable_lsn = upto :: else -> skip fi;
		printf("@@ round ends: durable_lsn = %d\n", durable_lsn);
#ifndef MUTANT_NO_BROADCAST
		l = 0;
		do :: l <= W -> waiting[l] = 0; l++ :: else -> break od   /* broadcast */
#endif
	};
	l = 0; upto = 0; fdseg = 0
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
			:: else -> take_round(); act = 3
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

/* The record is written at the end of the current segment (w->mu held). Whether it fills the
 * reservation exactly (or grows an empty segment to fit) is chosen freely while rotations
 * remain; after that every record fits, so that rotation stays bounded. */
inline append_record(lsn) {
	lsn = next_lsn;
	rec_seg[lsn] = cur;
	stamp[lsn] = durable_lsn;
#ifdef MUTANT_CLOCK_ONLY_WHEN_ALL_DURABLE
	if :: durable_lsn == next_lsn - 1 -> clock = 1 :: else -> skip fi;   /* and signal bg_cv */
#else
	if :: !clock -> clock = 1 :: else -> skip fi;   /* and signal bg_cv */
#endif
	seg_n[cur]++;
	if
	:: skip
	:: nrot < NSEG - 1 -> seg_full[cur] = 1
	fi;
	next_lsn++;
	printf("@@ thread %d appends LSN %d to segment %d, base %d (fills it: %d)\n", me, lsn, cur, BASE(lsn), seg_full[cur]);
	crash_check()
}

/* seg_create, then the record that did not fit (w->mu held throughout). */
inline new_segment(me, lsn) {
	/* header written and synced, directory synced, before any record */
	cur++;
	seg_first[cur] = next_lsn;
	printf("@@ thread %d: segment %d created for LSNs from %d\n", me, cur, next_lsn);
	append_record(lsn)
}

/* rotate (called from wal_append, w->mu held): trim the old segment and sync until it is
 * durable, then create the next; the last check and the creation are one hold of the mutex. */
inline rotate(me, lsn) {
#ifndef MUTANT_ROTATE_NO_FLUSH
	trimmed = 0;
	do
	:: atomic {
		if
		:: flushing -> waiting[me] = 1; act = 2
		:: !flushing && !trimmed && !seg_full[cur] ->
			/* ftruncate to the last record: no room left for anyone; a round of its own */
			trimmed = 1;
			seg_full[cur] = 1;
			printf("@@ thread %d rotates: trims segment %d\n", me, cur);
			take_round();
			act = 3
		:: !flushing && (trimmed || seg_full[cur]) && durable_lsn == next_lsn - 1 ->
			new_segment(me, lsn);
			act = 1
		:: !flushing && (trimmed || seg_full[cur]) && durable_lsn != next_lsn - 1 -> take_round(); act = 3
		fi
	   };
	   if
	   :: act == 1 -> act = 0; break
	   :: act == 2 -> act = 0; !waiting[me]
	   :: act == 3 -> act = 0; do_round()
	   fi
	od;
	trimmed = 0
#else
	/* the old segment is neither trimmed nor synced */
	atomic { !flushing -> new_segment(me, lsn) }
#endif
}

/* wal_append: returns the record's LSN in lsn. */
inline wal_append(me, lsn) {
	atomic {
		if
		:: seg_n[cur] == 0 -> append_record(lsn)                      /* fits, or grows */
		:: seg_n[cur] > 0 && !seg_full[cur] -> append_record(lsn)     /* fits */
		:: seg_n[cur] > 0 && nrot < NSEG - 1 -> nrot++; act = 4       /* does not fit */
		fi
	};
	if
	:: act == 4 -> act = 0; rotate(me, lsn)   /* appends once the new segment exists */
	:: else -> skip
	fi
}

proctype writer(byte me) {
	byte lsn, target, act, upto, fdseg, l, k;
	bool trimmed;
	k = 0;
	do
	:: k < A ->
		wal_append(me, lsn);
		k++;
		if
		:: k < A -> skip
		:: else ->
#ifndef NO_FLUSH
			target = lsn;
			wal_sync(me, target);
			atomic {
				if :: lsn > acked -> acked = lsn :: else -> skip fi;
				ndone++;
				printf("@@ thread %d: flush up to LSN %d returns\n", me, lsn);
				crash_check()
			}
#else
			ndone++
#endif
		fi
	:: else -> break
	od
}

/* flusher_main: once its clock runs and something is not durable, flushes everything written
 * (the wait for the deadline is abstracted: at any time). */
proctype flusher() {
	byte me = FL, target, act, upto, fdseg, l;
end_idle:
	do
	:: atomic { clock && durable_lsn < next_lsn - 1 -> target = next_lsn - 1 };
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
#ifdef NO_FLUSH
ltl every_record_becomes_durable { <> (ndone == W && durable_lsn == N) }
#else
ltl every_flush_returns { <> (ndone == W) }
#endif
#endif
