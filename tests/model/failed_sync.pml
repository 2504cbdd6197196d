/* failed_sync.pml — a failed write or fdatasync of the log, and what may be said afterwards.
 *
 * Stands for (engine/wal.c): wal_append on a failed pwrite and lead_round on a failed fdatasync
 * (the sticky w->err), wal_sync (returns the sticky error), wal_append (-EROFS once err is set),
 * flusher_main; (engine/recover.c) scan_segment's fdatasync and drop_cache before it reads a
 * segment, and the replay and cut after a reopen in the same boot. docs/VERIFICATION.md says
 * what is abstracted.
 *
 * Writers append (each record written to the segment at once) and flush through group commit
 * (as in group_commit.pml, one segment). Once in a run, an append's pwrite may fail (part of the
 * record may be in the file: a torn tail, nothing valid), or a round's fdatasync may fail.
 * Linux's behaviour after a failed fdatasync is modelled as it is: the dirty pages are marked
 * clean, so no later fdatasync writes them; each such record may or may not have reached the
 * disk, and the page cache may still serve it to readers (kept, clean) or have dropped it (then
 * readers see the disk). A record in that limbo is one of:
 *   A: readers see it, the disk has it;  B: readers see it, the disk does not;
 *   C: readers do not see it, the disk does not.
 * Records appended after the failed fdatasync began stay dirty: a later fdatasync writes them.
 * After every step that changes what a crash would leave, two crashes are checked:
 *  - a power cut now: every record a returned flush covered is recovered
 *    (every_acked_write_survives_power_cut);
 *  - the process exits now and the store is reopened in the same boot (the page cache
 *    survives): recovery fdatasyncs the segment, drops its cached pages and reads what the disk
 *    holds, replays it and cuts the log after it; the new session's first FLUSH returns at once
 *    (wal_open takes the replayed log as durable); then a power cut: every replayed record must
 *    survive (flush_after_reopen_survives_power_cut).
 * Recovery's verdict on a missing record is group_commit.pml's (the base field; a record that
 * never reached the disk reads back as zeros).
 *
 * The functions, as tests/model/names.py checks that they exist and name this model (and
 * engine/kvio.h's drop_cache, a member of struct kvio, names it too):
 * Code: engine/wal.c wal_append lead_round wal_sync flusher_main
 * Code: engine/recover.c scan_segment
 *
 * Switches: -DMUTANT_RETRY_FSYNC (a failed fdatasync is retried and its success reported),
 * -DMUTANT_NOT_STICKY (the error goes to that flush only; later rounds go on) and
 * -DMUTANT_RECOVERY_READS_PAGE_CACHE (recovery reads through the page cache, as before format 2:
 * finding 3) must be rejected. */

#ifndef W
#define W 2
#endif
#ifndef A
#define A 2
#endif
#define N (W * A)
#define FL W

/* record states */
#define NONE 0    /* not in the file */
#define DIRTY 1   /* in the page cache, not yet written back */
#define SYNCED 2  /* a successful fdatasync covered it */
#define LIMBO 3   /* its fdatasync failed: clean in the cache or dropped; on disk or not */
#ifdef MUTANT_RECOVERY_READS_PAGE_CACHE
#define LIMBO_CASES 3   /* A, B, C */
#else
#define LIMBO_CASES 2   /* on disk or not: recovery reads the disk */
#endif

/* ---- the wal, guarded by w->mu ---- */
byte next_lsn = 1;
byte durable_lsn;
bool flushing;
bool waiting[W + 1];
bool clock;            /* the flusher's commit_ms clock runs (group_commit.pml) */
byte err;              /* sticky: 0, or the failure (1) */
bool failed_once;      /* the one injected failure has happened */

byte rec[N + 1];       /* record states */
byte stamp[N + 1];     /* its base field: durable_lsn when it was appended */

byte acked;
byte ndone;

hidden byte ondisk[N + 1];
hidden byte disk2[N + 1];
hidden byte u_lsn[N + 1];
hidden byte nu, subset, ui, rh, ri, rk, rk0, digit, combos, ci;
hidden byte refused;
hidden byte every_acked_write_survives_power_cut;
hidden byte flush_after_reopen_survives_power_cut;

/* group_commit.pml's recovery (one segment: no later segment to consult; no media damage). */
inline recover_view() {
	rh = 1;
	do
	:: rh < next_lsn && ondisk[rh] -> rh++
	:: else -> break
	od;
	refused = 0;
	ri = rh + 1;
	do
	:: ri < next_lsn -> if :: ondisk[ri] && stamp[ri] >= rh -> refused = 1 :: else -> skip fi; ri++
	:: else -> break
	od;
	rk = rh - 1
}

inline crash_check() {
#ifndef LIVENESS
	d_step {
	/* 1. power cut now: DIRTY and LIMBO records may or may not be on disk */
	nu = 0;
	ri = 1;
	do
	:: ri < next_lsn ->
		if
		:: rec[ri] == DIRTY || rec[ri] == LIMBO -> u_lsn[nu] = ri; nu++
		:: else -> skip
		fi;
		ri++
	:: else -> break
	od;
	every_acked_write_survives_power_cut = 1;
	subset = 0;
	do
	:: subset < (1 << nu) && every_acked_write_survives_power_cut ->   /* up to the first counterexample */
		ri = 1;
		do :: ri < next_lsn -> ondisk[ri] = (rec[ri] == SYNCED); ri++ :: else -> break od;
		ui = 0;
		do
		:: ui < nu -> if :: (subset >> ui) & 1 -> ondisk[u_lsn[ui]] = 1 :: else -> skip fi; ui++
		:: else -> break
		od;
		recover_view();
		if
		:: refused || rk < acked ->
			ui = 0;
			do
			:: ui < nu ->
				if
				:: (subset >> ui) & 1 && rec[u_lsn[ui]] == DIRTY -> printf("@@ CRASH: unsynced LSN %d reaches the disk\n", u_lsn[ui])
				:: (subset >> ui) & 1 && rec[u_lsn[ui]] == LIMBO -> printf("@@ CRASH: LSN %d, whose fdatasync failed, reached the disk\n", u_lsn[ui])
				:: !((subset >> ui) & 1) && rec[u_lsn[ui]] == DIRTY -> printf("@@ CRASH: unsynced LSN %d is lost\n", u_lsn[ui])
				:: else -> printf("@@ CRASH: LSN %d, whose fdatasync failed, is lost\n", u_lsn[ui])
				fi;
				ui++
			:: else -> break
			od;
			if
			:: refused -> printf("@@ CRASH: power cut: recovery REFUSES to open, though LSNs up to %d were acknowledged\n", acked)
			:: else -> printf("@@ CRASH: power cut: recovered up to LSN %d, though LSNs up to %d were acknowledged\n", rk, acked)
			fi;
			every_acked_write_survives_power_cut = 0
		:: else -> skip
		fi;
		subset++
	:: else -> break
	od;
	assert(every_acked_write_survives_power_cut);

	/* 2. exit now, reopen in the same boot, FLUSH, power cut. Each LIMBO record is on the disk
	 * or not, and recovery reads the disk (fdatasync, then drop_cache); the mutant reads the
	 * page cache, where a LIMBO record is A, B or C. */
	nu = 0;
	ri = 1;
	do :: ri < next_lsn -> if :: rec[ri] == LIMBO -> u_lsn[nu] = ri; nu++ :: else -> skip fi; ri++
	:: else -> break
	od;
	combos = 1;
	ui = 0;
	do :: ui < nu -> combos = combos * LIMBO_CASES; ui++ :: else -> break od;
	flush_after_reopen_survives_power_cut = 1;
	ci = 0;
	do
	:: ci < combos && flush_after_reopen_survives_power_cut ->
		/* what recovery reads (ondisk) and what the disk holds once it has synced (disk2):
		 * its fdatasync writes the dirty records; LIMBO ones are clean, it does not */
		ri = 1;
		do
		:: ri < next_lsn ->
			ondisk[ri] = (rec[ri] == SYNCED || rec[ri] == DIRTY);
			disk2[ri] = ondisk[ri];
			ri++
		:: else -> break
		od;
		subset = ci;
		ui = 0;
		do
		:: ui < nu ->
			digit = subset % LIMBO_CASES;
			subset = subset / LIMBO_CASES;
#ifdef MUTANT_RECOVERY_READS_PAGE_CACHE
			ondisk[u_lsn[ui]] = (digit != 2);   /* A and B: the page cache serves it */
#else
			ondisk[u_lsn[ui]] = (digit == 0);   /* read from the disk after the sync */
#endif
			disk2[u_lsn[ui]] = (digit == 0);
			ui++
		:: else -> break
		od;
		recover_view();
		rk0 = rk;
		/* it cuts the log after rk0 (ftruncate + fdatasync) */
		ri = rk0 + 1;
		do :: ri < next_lsn -> disk2[ri] = 0; ri++ :: else -> break od;
		ri = 1;
		do :: ri < next_lsn -> ondisk[ri] = disk2[ri]; ri++ :: else -> break od;
		recover_view();
		if
		:: refused || rk < rk0 ->
			ui = 0;
			subset = ci;
			do
			:: ui < nu ->
				digit = subset % LIMBO_CASES;
				subset = subset / LIMBO_CASES;
				printf("@@ CRASH: LSN %d, whose fdatasync failed: the page cache still serves it: %d, the disk has it: %d\n",
				       u_lsn[ui], digit != 2, digit == 0);
				ui++
			:: else -> break
			od;
			printf("@@ CRASH: reopened in the same boot: recovery replays LSNs 1..%d; its FLUSH returns at once; then a power cut\n", rk0);
			if
			:: refused -> printf("@@ CRASH: power cut: recovery REFUSES to open, though the new session's FLUSH covered LSNs up to %d\n", rk0)
			:: else -> printf("@@ CRASH: power cut: recovered up to LSN %d, though the new session's FLUSH covered LSNs up to %d\n", rk, rk0)
			fi;
			flush_after_reopen_survives_power_cut = 0
		:: else -> skip
		fi;
		ci++
	:: else -> break
	od;
	assert(flush_after_reopen_survives_power_cut)
	}
#else
	skip
#endif
}

inline broadcast() {
	l = 0;
	do :: l <= W -> waiting[l] = 0; l++ :: else -> break od
}

/* lead_round, first half (w->mu held, !flushing): note the last LSN written. */
inline take_round() {
	upto = next_lsn - 1;
	clock = 0;
	flushing = 1;
	if
	:: me == FL -> printf("@@ the flusher leads a round: LSNs up to %d\n", upto)
	:: else -> printf("@@ thread %d leads a round: LSNs up to %d\n", me, upto)
	fi
}

/* lead_round, second half: fdatasync without the mutex, finish under it. */
inline lead_round() {
	rc = 0;
	atomic {
		if
		:: true ->
			l = 1;
			do :: l < next_lsn -> if :: rec[l] == DIRTY -> rec[l] = SYNCED :: else -> skip fi; l++
			:: else -> break
			od;
			printf("@@ fdatasync succeeds\n")
		:: !failed_once ->
			/* Linux: the dirty pages are marked clean, their fate unknown */
			l = 1;
			do :: l < next_lsn -> if :: rec[l] == DIRTY -> rec[l] = LIMBO :: else -> skip fi; l++
			:: else -> break
			od;
			failed_once = 1;
			rc = 1;
			printf("@@ fdatasync FAILS\n")
		fi;
		crash_check()
	};
#ifdef MUTANT_RETRY_FSYNC
	if
	:: rc == 1 ->
		atomic {
			/* the retry writes what was dirtied since; the LIMBO pages are clean: it succeeds */
			l = 1;
			do :: l < next_lsn -> if :: rec[l] == DIRTY -> rec[l] = SYNCED :: else -> skip fi; l++
			:: else -> break
			od;
			rc = 0;
			printf("@@ fdatasync retried: succeeds\n");
			crash_check()
		}
	:: else -> skip
	fi;
#endif
	atomic {
		flushing = 0;
		if
		:: rc == 0 -> if :: upto > durable_lsn -> durable_lsn = upto :: else -> skip fi
		:: else ->
#ifndef MUTANT_NOT_STICKY
			err = 1
#else
			skip
#endif
		fi;
		broadcast()
	};
	upto = 0; l = 0
}

/* wal_sync: 0 once target is durable, or the sticky error (in res). */
inline wal_sync(target, res) {
	atomic { if :: target > next_lsn - 1 -> target = next_lsn - 1 :: else -> skip fi };
	do
	:: atomic {
		if
		:: err -> res = err; act = 1
		:: !err && durable_lsn >= target -> res = 0; act = 1
		:: !err && durable_lsn < target && flushing -> waiting[me] = 1; act = 2; printf("@@ thread %d waits for the round in flight\n", me)
		:: !err && durable_lsn < target && !flushing -> take_round(); act = 3
		fi
	   };
	   if
	   :: act == 1 -> act = 0; break
	   :: act == 2 -> act = 0; !waiting[me]
	   :: act == 3 -> act = 0; lead_round();
#ifdef MUTANT_NOT_STICKY
		if :: rc -> res = rc; rc = 0; break :: else -> skip fi
#else
		skip
#endif
	   fi
	od
}

proctype writer(byte me) {
	byte lsn, target, act, upto, l, k, rc, res;
	do
	:: k < A ->
		/* wal_append */
		atomic {
			if
			:: err -> res = 1; printf("@@ thread %d: append refused (EROFS)\n", me)
			:: !err ->
				lsn = next_lsn;
				rec[lsn] = DIRTY;
				stamp[lsn] = durable_lsn;
				if :: durable_lsn == next_lsn - 1 -> clock = 1 :: else -> skip fi;
				next_lsn++;
				printf("@@ thread %d appends LSN %d (base %d)\n", me, lsn, stamp[lsn]);
				crash_check()
			:: !err && !failed_once ->
				/* the pwrite fails: whatever of the record is in the file is a torn tail */
				failed_once = 1;
				err = 1;
				res = 1;
				broadcast();
				printf("@@ thread %d: the pwrite of LSN %d FAILS\n", me, next_lsn)
			fi
		};
		k++;
		if
		:: res -> break
		:: !res && k < A -> skip
		:: !res && k == A ->
			target = lsn;
			wal_sync(target, res);
			atomic {
				if
				:: res == 0 && lsn > acked -> acked = lsn
				:: else -> skip
				fi;
				printf("@@ thread %d: flush up to LSN %d returns %d\n", me, lsn, res);
				crash_check()
			}
		fi
	:: else -> break
	od;
	ndone++
}

proctype flusher() {
	byte me = FL, target, act, upto, l, rc, res;
end_idle:
	do
	:: atomic { !err && clock && durable_lsn < next_lsn - 1 -> target = next_lsn - 1 };
	   wal_sync(target, res);
	   target = 0; res = 0
	od
}

init {
	byte i;
	atomic {
		do :: i < W -> run writer(i); i++ :: else -> break od;
		run flusher()
	}
}

#ifdef LIVENESS
ltl every_flush_returns { <> (ndone == W) }
#endif
