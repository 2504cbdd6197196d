/* failed_sync.pml — a failed write or fdatasync of the log, and what may be said afterwards.
 *
 * Stands for (engine/wal.c): lead_round and write_and_sync on failure (the sticky w->err),
 * wal_sync (returns the sticky error), wal_append (-EROFS once err is set), flusher_main; and
 * (engine/recover.c) the replay after a reopen in the same boot. docs/VERIFICATION.md says what
 * is abstracted.
 *
 * Writers append and flush through group commit (as in group_commit.pml, one segment). Once in
 * a run, the leader's pwrite may fail after writing part of its batch into the page cache, or
 * its fdatasync may fail. Linux's behaviour after a failed fdatasync is modelled as it is: the
 * dirty pages are marked clean, so no later fdatasync writes them; each such record may or may
 * not have reached the disk, and the page cache may still serve it to readers (kept, clean) or
 * have dropped it (then readers see the disk). A record in that limbo is one of:
 *   A: readers see it, the disk has it;  B: readers see it, the disk does not;
 *   C: readers do not see it, the disk does not.
 * After every step that changes what a crash would leave, two crashes are checked:
 *  - a power cut now: every record a returned flush covered is recovered;
 *  - the process exits now and the store is reopened in the same boot (the page cache
 *    survives): recovery fdatasyncs the log and replays what it reads, the new session's first
 *    FLUSH returns at once (wal_open takes the replayed log as durable), then a power cut:
 *    every replayed record must survive. The corrected rule: recovery reads what is durable
 *    (fdatasync, then read past the page cache: O_DIRECT, or POSIX_FADV_DONTNEED first), so a
 *    clean-but-lost page is not replayed.
 *
 * Switches: -DMUTANT_RETRY_FSYNC (a failed fdatasync is retried and its success reported),
 * -DMUTANT_NOT_STICKY (the error goes to that flush only; later rounds go on) must be rejected;
 * -DTODAY_RECOVERY_READS_CACHE (recover.c today: it reads through the page cache) is rejected
 * too, see docs/VERIFICATION.md "Findings". */

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
#ifdef TODAY_RECOVERY_READS_CACHE
#define LIMBO_CASES 3   /* A, B, C */
#else
#define LIMBO_CASES 2   /* on disk or not: recovery reads the disk */
#endif

/* ---- the wal, guarded by w->mu ---- */
byte next_lsn = 1;
byte durable_lsn;
byte pend_lo = 1;
bool flushing;
bool waiting[W + 1];
byte err;              /* sticky: 0, or the failure (1) */
bool failed_once;      /* the one injected failure has happened */

byte rec[N + 1];       /* record states */
byte hint[N + 1];      /* durable_lsn when its round was taken (group_commit.pml's recovery rule) */

byte acked;
byte ndone;

hidden byte ondisk[N + 1];
hidden byte disk2[N + 1];
hidden byte u_lsn[N + 1];
hidden byte nu, subset, ui, rh, ri, rk, rk0, digit, combos, ci;
hidden byte refused;
hidden byte every_acked_write_survives_power_cut;
hidden byte flush_after_reopen_survives_power_cut;

/* group_commit.pml's recovery with the hint rule (one segment: no headers to consult). */
inline recover_view() {
	rh = 1;
	do
	:: rh < next_lsn && ondisk[rh] -> rh++
	:: else -> break
	od;
	refused = 0;
	ri = rh + 1;
	do
	:: ri < next_lsn -> if :: ondisk[ri] && hint[ri] >= rh -> refused = 1 :: else -> skip fi; ri++
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

	/* 2. exit now, reopen in the same boot, FLUSH, power cut. Each LIMBO record is A, B or C
	 * (today: recovery reads the page cache) or, as recovery reads the disk, on it or not. */
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
#ifdef TODAY_RECOVERY_READS_CACHE
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

/* lead_round, first half (w->mu held, !flushing): take pend. */
inline take_batch() {
	lo = pend_lo;
	hi = next_lsn - 1;
	l = lo;
	do :: l <= hi -> hint[l] = durable_lsn; l++ :: else -> break od;
	pend_lo = next_lsn;
	flushing = 1;
	if
	:: lo <= hi -> printf("@@ thread %d leads a round: LSNs %d..%d\n", me, lo, hi)
	:: else -> printf("@@ thread %d leads a round with nothing new to write\n", me)
	fi
}

/* lead_round, second half: write and fdatasync without the mutex, finish under it. */
inline lead_round() {
	rc = 0;
	l = lo;
	do
	:: l <= hi -> atomic { rec[l] = DIRTY; printf("@@ LSN %d written\n", l); crash_check() }; l++
	:: l <= hi && !failed_once ->
		atomic { failed_once = 1; rc = 1; printf("@@ pwrite FAILS before LSN %d\n", l) };
		break
	:: l > hi -> break
	od;
	if
	:: rc == 0 ->
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
		}
	:: else -> skip
	fi;
#ifdef MUTANT_RETRY_FSYNC
	if
	:: rc == 1 ->
		atomic {
			/* the retry finds nothing dirty: it succeeds */
			l = 1;
			do :: l < next_lsn -> if :: rec[l] == DIRTY -> rec[l] = SYNCED :: else -> skip fi; l++
			:: else -> break
			od;
			rc = 0;
			printf("@@ fdatasync retried: succeeds\n")
		}
	:: else -> skip
	fi;
#endif
	atomic {
		flushing = 0;
		if
		:: rc == 0 -> durable_lsn = hi
		:: else ->
#ifndef MUTANT_NOT_STICKY
			err = 1
#else
			skip
#endif
		fi;
		broadcast()
	};
	lo = 0; hi = 0; l = 0
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
		:: !err && durable_lsn < target && !flushing -> take_batch(); act = 3
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
	byte lsn, target, act, lo, hi, l, k, rc, res;
	do
	:: k < A ->
		atomic {
			if
			:: err -> res = 1   /* -EROFS: nothing logged */
			:: else ->
				lsn = next_lsn;
				next_lsn++;
				printf("@@ thread %d appends LSN %d\n", me, lsn)
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
	byte me = FL, target, act, lo, hi, l, rc, res;
end_idle:
	do
	:: atomic { !err && durable_lsn < next_lsn - 1 && pend_lo < next_lsn -> target = next_lsn - 1 };
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
