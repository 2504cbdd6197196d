/* values_on_disk.pml — checkpoint, cleaner, segment deletion, reads and recovery when value bytes
 * stay in the log segments, as the engine does them (issue 11).
 *
 * Stands for: engine/store.c checkpoint_locked, release_segments, remove_old_checkpoints,
 * read_value (and its retry); engine/ckpt.c ckpt_write, ckpt_load; engine/cleaner.c
 * pick_victims, collect, move_batch; engine/segtab.c segtab_read (pin, pread, unpin),
 * segtab_delete; engine/index.c kvindex_relocate and engine/apply.c apply_relocate (the source
 * check); engine/recover.c recovery_scan (load_checkpoint, check_references, assess_lost, the
 * replay) and recovery_commit (the directory fsync, then the covered segments and older
 * checkpoints deleted); engine/wal.c wal_sync, rotate, wal_append (their contract only:
 * group_commit.pml checks how they keep it).
 *
 * The store: K keys, each value one extent (the bytes of one record: a user PUT, or a RELOCATE
 * that carries a copy). Threads:
 *  - a writer: PUTs to any key, each followed by a flush (acknowledged when it returns);
 *  - the cleaner: one pass over a victim, a sealed segment the live index still has bytes in:
 *    collects the keys whose bytes lie there from a view (under the apply lock), then for each
 *    reads the bytes through segtab_read (pin the segment's shared descriptor, or ENOENT if the
 *    segment is gone: the piece is skipped), and appends RELOCATE(key, expected source, bytes)
 *    through the normal write path, applied only if the key's source is still the expected one;
 *  - the checkpointer: NCK checkpoints: view at L = the applied LSN (under the apply lock),
 *    wal_sync(L), write ckpt.tmp, fdatasync, rename, fsync the directory (only now durable),
 *    unlink older checkpoints, release_segments: unlink each segment that is sealed and not
 *    current, whose records all have LSN <= L, that the new checkpoint does not reference and
 *    that the live index has no bytes in (the unlink also drops the table's pin: the shared
 *    descriptor closes once no reader holds a pin); then fsync the directory;
 *  - a reader: looks a key up (its extent, under the index lock), reads it through segtab_read;
 *    a segment gone meanwhile (ENOENT) makes it look again, at most 4 times in all.
 * The disk: records are durable up to durable_lsn (wal_sync's contract); later ones survive a
 * power cut as any prefix (group_commit.pml: recovery cuts at the first hole in the unsynced
 * stretch). Directory entries: created segments are durable at once (seg_create fsyncs the
 * directory); every other name change (create, rename, unlink) is durable only after an fsync of
 * the directory, and a power cut keeps ANY SUBSET of the pending ones (POSIX promises no order).
 * A checkpoint whose data was never fdatasynced is garbage after a power cut: recovery finds the
 * newest checkpoint damaged and refuses to open.
 *
 * After every step that changes what a crash would leave:
 *  - power cut: recovery (the newest checkpoint named on disk; every segment it references with
 *    live bytes must be there, or it refuses; then replay of LSN > L: a missing record followed
 *    by a present one or by a later segment is damage, refused) must open, keep every
 *    acknowledged write, give exactly the state after some prefix of the history, and every
 *    key's bytes must be on disk (its record present in an existing segment):
 *    recovered_state_is_right;
 *  - process kill: the same from the page cache and the current names; then the new session's
 *    recovery_commit fsyncs the directory and deletes the segments the loaded checkpoint covers
 *    (wholly at or below its L, not referenced) and the older checkpoints; a power cut follows:
 *    kill_recover_delete_power_cut_is_right.
 * Live: every read preads a descriptor that is open (reads_use_an_open_descriptor), returns the
 * bytes of the last write to the key when it looked the key up (read_returns_the_last_write), and
 * a key that exists is read without an error (a_read_of_a_present_key_never_fails).
 *
 * Mutants (-D..., each must be rejected): MUTANT_DELETE_BEFORE_DIR_FSYNC,
 * MUTANT_DELETE_ABOVE_CKPT_LSN, MUTANT_DELETE_REFERENCED, MUTANT_UNCONDITIONAL_RELOCATE,
 * MUTANT_CKPT_WITHOUT_WAL_SYNC, MUTANT_RENAME_BEFORE_DATA_SYNC, MUTANT_CLEANER_NO_PIN,
 * MUTANT_READER_NO_PIN, MUTANT_READER_NO_RETRY, MUTANT_LOADED_CKPT_WITHOUT_DIR_FSYNC. */

#define K 2            /* keys (the writer and the reader choose between two) */
#ifndef NW
#define NW 4           /* user writes: the 4th can race with the cleaner (3 fill and rotate) */
#endif
#ifndef NCK
#define NCK 2          /* checkpoints */
#endif
#define NREC (NW + K)  /* records: user writes and at most K relocations */
#define SEGCAP 2       /* records per segment: segment s holds LSNs SEGCAP*s+1 .. SEGCAP*(s+1) */
#define NSEG 3         /* segments at most: ceil(NREC / SEGCAP) */
#define READ_TRIES 4   /* read_value: the first look and 3 more after ENOENT */

#define PUT 1
#define RELOC 2
#define NONE 0         /* checkpoint name states */
#define TMP 1
#define FINAL 2

/* ---- records (the log) ---- */
byte next_lsn = 1;
byte durable_lsn;      /* wal_sync's contract: every record <= it survives a power cut */
byte rtype[NREC + 1];
byte rkey[NREC + 1];
byte rval[NREC + 1];   /* the bytes it carries: the LSN of the PUT that wrote them */
byte rexp[NREC + 1];   /* RELOCATE: the expected source (LSN of the record holding the bytes) */
byte rseg[NREC + 1];
byte acked;            /* highest LSN a returned flush covered */

/* ---- the live index: the LSN whose record holds each key's bytes (0: absent) ---- */
byte src[K];

/* ---- segments ---- */
byte cur;              /* the segment being appended to; every older one is sealed */
byte seg_n;            /* records in it */
bool seg_cur[NSEG];    /* its name exists now (and it is in the segment table) */
bool seg_dur[NSEG];    /* its name exists on the platter */
byte pins[NSEG];       /* readers (and the cleaner) pinning its shared descriptor; the table holds
                        * one more while the segment is in it, so the descriptor is open while
                        * seg_cur || pins (it is opened on first use, by name) */

/* ---- checkpoints: slots 1..NCK; slot 0 is "none" (L = 0, empty) ---- */
byte ck_L[NCK + 1];
byte ck_src[(NCK + 1) * K];
byte ck_cur[NCK + 1];  /* NONE, TMP, FINAL: its name now */
byte ck_dur[NCK + 1];  /* its name on the platter */
bool ck_synced[NCK + 1];

/* ---- scratch of the checks (hidden: not part of the state) ---- */
hidden byte ns_seg[NSEG];
hidden byte ns_ck[NCK + 1];
hidden byte kns_seg[NSEG];     /* kill path: names after the new session's deletions */
hidden byte kdur_seg[NSEG];
hidden byte kns_ck[NCK + 1];
hidden byte kdur_ck[NCK + 1];
hidden byte rsrc[K];
hidden byte present[NREC + 1];
hidden byte pend[NSEG + NCK + 1];
hidden byte np, choice, pi, p, u, i, j, l, t, best, bestL, rk, need, kk, kb, cs, ok, ok2, lost, gap;
hidden byte refused;
hidden byte recovered_state_is_right;
hidden byte kill_recover_delete_power_cut_is_right;
hidden byte reads_use_an_open_descriptor;
hidden byte read_returns_the_last_write;
hidden byte a_read_of_a_present_key_never_fails;

#define SEG_FIRST(s) ((s) * SEGCAP + 1)
#define SEG_LAST(s) (((s) + 1) * SEGCAP)          /* of a sealed segment */
/* K == 2 written out: the live index / checkpoint c has bytes in segment s */
#define LIVE_IN(s) ((src[0] && rseg[src[0]] == (s)) || (src[1] && rseg[src[1]] == (s)))
#define CK_REFS(c, s) ((ck_src[(c) * K] && rseg[ck_src[(c) * K]] == (s)) || \
                       (ck_src[(c) * K + 1] && rseg[ck_src[(c) * K + 1]] == (s)))
#define FD_OPEN(s) (seg_cur[s] || pins[s] > 0)

/* The bytes key k holds after the history prefix 1..upto: the LSN of its last PUT. */
inline history_value(k, upto, out) {
	out = 0;
	l = 1;
	do
	:: l <= upto -> if :: rtype[l] == PUT && rkey[l] == k -> out = l :: else -> skip fi; l++
	:: else -> break
	od
}

/* apply_record, live and on replay alike (written twice only because an inline cannot take
 * an array: the live index src[], the replayed rsrc[]). A RELOCATE moves the key only if its
 * bytes are still at the expected source (kvindex_relocate). */
#ifdef MUTANT_UNCONDITIONAL_RELOCATE
#define RELOCATE_APPLIES(idx, r) true
#else
#define RELOCATE_APPLIES(idx, r) (idx[rkey[r]] == rexp[r])
#endif
inline apply_live(r) {
	if
	:: rtype[r] == PUT -> src[rkey[r]] = r
	:: rtype[r] == RELOC && RELOCATE_APPLIES(src, r) -> src[rkey[r]] = r
	:: else -> skip   /* a relocation that lost the race with a user write: a no-op */
	fi
}
inline apply_replay(r) {
	if
	:: rtype[r] == PUT -> rsrc[rkey[r]] = r
	:: rtype[r] == RELOC && RELOCATE_APPLIES(rsrc, r) -> rsrc[rkey[r]] = r
	:: else -> skip
	fi
}

/* Recovery over names ns_seg/ns_ck (checkpoint data valid iff synced, or cs: "from the page
 * cache") and records present[] (set by the caller for the records' own survival; a record in
 * a segment without a name is absent). Result: rk, rsrc[], refused. Then the check: ok. */
inline recover_and_check(need_upto) {
	l = 1;
	do :: l < next_lsn -> present[l] = present[l] && ns_seg[rseg[l]]; l++ :: else -> break od;
	/* load_checkpoint: the newest named; damaged (never synced): strict refuses */
	best = 0;
	bestL = 0;
	j = 1;
	do
	:: j <= NCK -> if :: ns_ck[j] == FINAL && ck_L[j] >= bestL -> best = j; bestL = ck_L[j] :: else -> skip fi; j++
	:: else -> break
	od;
	refused = (best != 0 && !ck_synced[best] && !cs);
	i = 0;
	do :: i < K -> rsrc[i] = (best -> ck_src[best * K + i] : 0); i++ :: else -> break od;
	/* replay: LSNs after L in order, up to the first missing; one present after it is damage */
	l = bestL + 1;
	do
	:: l < next_lsn && present[l] -> apply_replay(l); l++
	:: else -> break
	od;
	rk = l - 1;
	gap = 0;
	l = rk + 2;
	do :: l < next_lsn -> if :: present[l] -> gap = 1 :: else -> skip fi; l++ :: else -> break od;
	/* a segment whose header names an LSN past where the log stopped: "gap in LSNs" (a segment
	 * naming exactly the next LSN with nothing valid in it was created just before the crash) */
	t = 0;
	do :: t < NSEG -> if :: ns_seg[t] && SEG_FIRST(t) > rk + 1 -> gap = 1 :: else -> skip fi; t++ :: else -> break od;
	refused = refused || gap;
	/* check_references + assess_lost: a value (after replay) has bytes where the log is lost
	 * (a segment the checkpoint references is gone, or shorter than the record): strict refuses */
	lost = 0;
	i = 0;
	do :: i < K -> if :: rsrc[i] && !present[rsrc[i]] -> lost = 1 :: else -> skip fi; i++ :: else -> break od;
	refused = refused || lost;
	ok = !refused && rk >= need_upto;
	i = 0;
	do
	:: i < K ->
		history_value(i, rk, j);
		/* the recovered source must hold the key's bytes of prefix rk, and be on disk */
		if
		:: rsrc[i] == 0 -> ok = ok && j == 0
		:: else -> ok = ok && rval[rsrc[i]] == j && present[rsrc[i]]
		fi;
		i++
	:: else -> break
	od
}

inline print_state() {
	printf("@@ CRASH:   recovery uses checkpoint %d (L=%d; 0: none); recovered up to LSN %d (needed %d); refuses: %d\n",
	       best, bestL, rk, need, refused);
	if
	:: best && !ck_synced[best] && !cs -> printf("@@ CRASH:   (checkpoint %d was never fdatasynced: it reads back as garbage, damage)\n", best)
	:: else -> skip
	fi;
	if
	:: lost -> printf("@@ CRASH:   (a value's bytes are in a segment the checkpoint references that is gone or short: lost keys)\n")
	:: else -> skip
	fi;
	if
	:: gap -> printf("@@ CRASH:   (LSN %d is missing and a later record or segment is there: damage)\n", rk + 1)
	:: else -> skip
	fi;
	i = 0;
	do
	:: i < K ->
		history_value(i, rk, j);
		if
		:: rsrc[i] ->
			printf("@@ CRASH:   key %d: recovered source LSN %d (in segment %d, on disk: %d) holds the bytes of PUT %d; history after LSN %d says PUT %d\n",
			       i, rsrc[i], rseg[rsrc[i]], present[rsrc[i]], rval[rsrc[i]], rk, j)
		:: else ->
			printf("@@ CRASH:   key %d: absent; history after LSN %d says PUT %d (0: absent)\n", i, rk, j)
		fi;
		i++
	:: else -> break
	od
}

inline crash_check() {
	d_step {
	/* ---- power cut now ---- */
	recovered_state_is_right = 1;
	np = 0;    /* pending name changes: segments, then checkpoints */
	i = 0;
	do :: i < NSEG -> if :: seg_cur[i] != seg_dur[i] -> pend[np] = i; np++ :: else -> skip fi; i++
	:: else -> break
	od;
	j = 1;
	do :: j <= NCK -> if :: ck_cur[j] != ck_dur[j] -> pend[np] = NSEG + j; np++ :: else -> skip fi; j++
	:: else -> break
	od;
	u = next_lsn - 1 - durable_lsn;   /* unsynced records: any prefix survives */
	choice = 0;
	do
	:: choice < (1 << np) && recovered_state_is_right ->   /* up to the first counterexample */
		p = 0;
		do
		:: p <= u && recovered_state_is_right ->
			i = 0;
			do :: i < NSEG -> ns_seg[i] = seg_dur[i]; i++ :: else -> break od;
			j = 1;
			do :: j <= NCK -> ns_ck[j] = ck_dur[j]; j++ :: else -> break od;
			pi = 0;
			do
			:: pi < np ->
				if
				:: (choice >> pi) & 1 ->
					if
					:: pend[pi] < NSEG -> ns_seg[pend[pi]] = seg_cur[pend[pi]]
					:: else -> ns_ck[pend[pi] - NSEG] = ck_cur[pend[pi] - NSEG]
					fi
				:: else -> skip
				fi;
				pi++
			:: else -> break
			od;
			l = 1;
			do :: l < next_lsn -> present[l] = (l <= durable_lsn + p); l++ :: else -> break od;
			cs = 0;
			need = acked;
			recover_and_check(need);
			if
			:: !ok ->
				printf("@@ CRASH: power cut; %d of %d unsynced records survive; names on disk: segments 0,1,2: %d%d%d; checkpoints 1,2: %d%d (0 none, 1 tmp, 2 final)\n",
				       p, u, ns_seg[0], ns_seg[1], ns_seg[2], ns_ck[1], ns_ck[NCK]);
				print_state();
				recovered_state_is_right = 0
			:: else -> skip
			fi;
			p++
		:: else -> break
		od;
		choice++
	:: else -> break
	od;
	assert(recovered_state_is_right);

	/* ---- process kill now: page cache and current names survive (checked once the power
	 * cut held: a counterexample tells one story) ---- */
	if
	:: recovered_state_is_right ->
	i = 0;
	do :: i < NSEG -> ns_seg[i] = seg_cur[i]; i++ :: else -> break od;
	j = 1;
	do :: j <= NCK -> ns_ck[j] = ck_cur[j]; j++ :: else -> break od;
	l = 1;
	do :: l < next_lsn -> present[l] = 1; l++ :: else -> break od;
	cs = 1;
	need = acked;
	recover_and_check(need);
	kill_recover_delete_power_cut_is_right = ok;
	if
	:: !ok -> printf("@@ CRASH: process kill\n"); print_state()
	:: else -> skip
	fi;
	kk = rk;
	kb = best;
	/* The new session's recovery_commit: scan_segment fdatasynced every segment it read (all
	 * replayed records durable); the directory fsync makes the names it loaded durable; then the
	 * segments the checkpoint covers (a later segment starts at or below L + 1) and that it does
	 * not reference are unlinked, and the older checkpoints. */
	i = 0;
	do
	:: i < NSEG ->
#ifdef MUTANT_LOADED_CKPT_WITHOUT_DIR_FSYNC
		kdur_seg[i] = seg_dur[i];
#else
		kdur_seg[i] = seg_cur[i];
#endif
		kns_seg[i] = seg_cur[i];
		if
		:: seg_cur[i] && best && !CK_REFS(best, i) ->
			ok2 = 0;
			t = i + 1;
			do
			:: t < NSEG -> if :: seg_cur[t] && SEG_FIRST(t) <= bestL + 1 -> ok2 = 1 :: else -> skip fi; t++
			:: else -> break
			od;
			if :: ok2 -> kns_seg[i] = 0 :: else -> skip fi
		:: else -> skip
		fi;
		i++
	:: else -> break
	od;
	j = 1;
	do
	:: j <= NCK ->
#ifdef MUTANT_LOADED_CKPT_WITHOUT_DIR_FSYNC
		kdur_ck[j] = ck_dur[j];
#else
		kdur_ck[j] = ck_cur[j];
#endif
		kns_ck[j] = ck_cur[j];
		if :: ck_cur[j] == FINAL && j != best && ck_L[j] < bestL -> kns_ck[j] = NONE :: else -> skip fi;
		j++
	:: else -> break
	od;
	/* ... and a power cut: any subset of the pending name changes */
	np = 0;
	i = 0;
	do :: i < NSEG -> if :: kns_seg[i] != kdur_seg[i] -> pend[np] = i; np++ :: else -> skip fi; i++
	:: else -> break
	od;
	j = 1;
	do :: j <= NCK -> if :: kns_ck[j] != kdur_ck[j] -> pend[np] = NSEG + j; np++ :: else -> skip fi; j++
	:: else -> break
	od;
	choice = 0;
	do
	:: choice < (1 << np) && kill_recover_delete_power_cut_is_right ->
		i = 0;
		do :: i < NSEG -> ns_seg[i] = kdur_seg[i]; i++ :: else -> break od;
		j = 1;
		do :: j <= NCK -> ns_ck[j] = kdur_ck[j]; j++ :: else -> break od;
		pi = 0;
		do
		:: pi < np ->
			if
			:: (choice >> pi) & 1 ->
				if
				:: pend[pi] < NSEG -> ns_seg[pend[pi]] = kns_seg[pend[pi]]
				:: else -> ns_ck[pend[pi] - NSEG] = kns_ck[pend[pi] - NSEG]
				fi
			:: else -> skip
			fi;
			pi++
		:: else -> break
		od;
		l = 1;
		do :: l < next_lsn -> present[l] = 1; l++ :: else -> break od;
		cs = 0;
		need = kk;
		recover_and_check(need);
		if
		:: !ok ->
			printf("@@ CRASH: process kill; the new session loads checkpoint %d, recovers up to LSN %d and unlinks segments: left 0,1,2: %d%d%d\n",
			       kb, kk, kns_seg[0], kns_seg[1], kns_seg[2]);
			printf("@@ CRASH: then a power cut; names on disk: segments 0,1,2: %d%d%d; checkpoints 1,2: %d%d\n",
			       ns_seg[0], ns_seg[1], ns_seg[2], ns_ck[1], ns_ck[NCK]);
			print_state();
			kill_recover_delete_power_cut_is_right = 0
		:: else -> skip
		fi;
		choice++
	:: else -> break
	od;
	assert(kill_recover_delete_power_cut_is_right)
	:: else -> skip
	fi
	}
}

/* wal_append + apply under the apply lock; a full segment is rotated after it is made durable. */
inline append(type, key, val, exp, lsn) {
	if
	:: seg_n == SEGCAP ->
		durable_lsn = next_lsn - 1;   /* rotate: the old segment is flushed first */
		cur++;
		seg_cur[cur] = 1;
		seg_dur[cur] = 1;             /* seg_create fsyncs the directory */
		seg_n = 0;
		printf("@@ segment %d created\n", cur)
	:: else -> skip
	fi;
	lsn = next_lsn;
	rtype[lsn] = type;
	rkey[lsn] = key;
	rval[lsn] = val;
	rexp[lsn] = exp;
	rseg[lsn] = cur;
	seg_n++;
	next_lsn++;
	apply_live(lsn)
}

/* wal_sync(x): everything up to x is durable (the least the contract promises). */
inline wal_sync(x) {
	if :: durable_lsn < x -> durable_lsn = x :: else -> skip fi
}

#ifdef MUTANT_CLEANER_NO_PIN
#define CLEANER_PINS 0
#else
#define CLEANER_PINS 1
#endif
#ifdef MUTANT_READER_NO_PIN
#define READER_PINS 0
#else
#define READER_PINS 1
#endif
#define CLEANER 0
#define READER 1

/* segtab_read, first step: pin the segment's shared descriptor (opened by name on first use),
 * or ENOENT when the segment has left the table. The mutants take the descriptor unpinned. */
inline seg_pin(s, got, pin, who) {
	if
	:: seg_cur[s] ->
		got = 1;
		if :: pin -> pins[s]++ :: else -> skip fi;
		if
		:: who == CLEANER && pin -> printf("@@ cleaner: pins segment %d's descriptor\n", s)
		:: who == CLEANER && !pin -> printf("@@ cleaner: takes segment %d's descriptor without a pin\n", s)
		:: who == READER && pin -> printf("@@ reader: pins segment %d's descriptor\n", s)
		:: else -> printf("@@ reader: takes segment %d's descriptor without a pin\n", s)
		fi
	:: else -> got = 0
	fi
}

/* segtab_read, second step: pread the descriptor, then unpin (the last pin of a segment that
 * left the table closes the descriptor). */
inline seg_pread_unpin(s, who, pin) {
	reads_use_an_open_descriptor = FD_OPEN(s);
	if
	:: !reads_use_an_open_descriptor && who == CLEANER ->
		printf("@@ cleaner: preads segment %d's descriptor: the segment was deleted and its descriptor closed\n", s)
	:: !reads_use_an_open_descriptor && who == READER ->
		printf("@@ reader: preads segment %d's descriptor: the segment was deleted and its descriptor closed\n", s)
	:: else -> skip
	fi;
	assert(reads_use_an_open_descriptor);
	if :: pin -> pins[s]-- :: else -> skip fi
}

proctype writer() {
	byte n, key, lsn;
	do
	:: n < NW ->
		atomic {
			if :: key = 0 :: key = 1 fi;
			append(PUT, key, next_lsn, 0, lsn);
			printf("@@ writer: PUT key %d at LSN %d (segment %d)\n", key, lsn, cur);
			crash_check()
		};
		atomic {
			wal_sync(lsn);
			if :: lsn > acked -> acked = lsn :: else -> skip fi;
			printf("@@ writer: flush of LSN %d returns\n", lsn);
			crash_check()
		};
		n++;
		key = 0;
		lsn = 0
	:: else -> break
	od
}

proctype cleaner() {
	byte s, key, e, v, lsn, got;
	byte ce[K];   /* the pass's plan: each key's source in s, from a view */
	atomic {
		/* pick_victims: a sealed segment the live index has bytes in; collect: from a view */
		if
		:: seg_cur[0] && cur > 0 && LIVE_IN(0) -> s = 0
		:: seg_cur[1] && cur > 1 && LIVE_IN(1) -> s = 1
		:: else -> s = NSEG   /* nothing to clean: the pass ends */
		fi;
		if
		:: s < NSEG ->
			key = 0;
			do
			:: key < K -> if :: src[key] && rseg[src[key]] == s -> ce[key] = src[key] :: else -> skip fi; key++
			:: else -> break
			od;
			key = 0;
			printf("@@ cleaner: cleans segment %d: key 0 at LSN %d, key 1 at LSN %d\n", s, ce[0], ce[1])
		:: else -> skip
		fi
	};
	key = 0;
	do
	:: key < K && s < NSEG ->
		e = ce[key];
		if
		:: e ->
			atomic { seg_pin(s, got, CLEANER_PINS, CLEANER) };
			if
			:: got ->
				atomic { seg_pread_unpin(s, CLEANER, CLEANER_PINS); v = rval[e] };
				atomic {
					append(RELOC, key, v, e, lsn);
					printf("@@ cleaner: RELOCATE key %d from LSN %d at LSN %d (segment %d): source now LSN %d\n",
					       key, e, lsn, cur, src[key]);
					crash_check()
				}
			:: else ->
				printf("@@ cleaner: segment %d is gone (ENOENT): key %d's piece is skipped\n", s, key)
			fi
		:: else -> skip
		fi;
		e = 0; v = 0; lsn = 0; got = 0;
		key++
	:: else -> break
	od
}

/* release_segments: unlink what the new durable checkpoint c and the log after it no longer
 * need. Each segment is decided and deleted (unlink, segtab_forget) as one step: the table's
 * lock makes a pin see it either present or gone. */
inline release_segments() {
	s = 0;
	do
	:: s < NSEG ->
		atomic {
			ok2 = seg_cur[s] && s < cur && !LIVE_IN(s);
#ifndef MUTANT_DELETE_ABOVE_CKPT_LSN
			ok2 = ok2 && SEG_LAST(s) <= ck_L[c];
#endif
#ifndef MUTANT_DELETE_REFERENCED
			ok2 = ok2 && !CK_REFS(c, s);
#endif
			if
			:: ok2 -> seg_cur[s] = 0; printf("@@ checkpointer: unlinks segment %d\n", s); crash_check()
			:: else -> skip
			fi
		};
		s++
	:: else -> break
	od;
	s = 0
}

inline fsync_dir() {
	i = 0;
	do :: i < NSEG -> seg_dur[i] = seg_cur[i]; i++ :: else -> break od;
	j = 1;
	do :: j <= NCK -> ck_dur[j] = ck_cur[j]; j++ :: else -> break od
}

proctype checkpointer() {
	byte c, s, k, L;
	c = 1;
	do
	:: c <= NCK ->
		atomic {
			/* the view at the applied LSN, under the apply lock */
			L = next_lsn - 1;
			ck_L[c] = L;
			k = 0;
			do :: k < K -> ck_src[c * K + k] = src[k]; k++ :: else -> break od;
			k = 0;
			printf("@@ checkpointer: checkpoint %d takes its view at LSN %d\n", c, L)
		};
#ifndef MUTANT_CKPT_WITHOUT_WAL_SYNC
		atomic { wal_sync(L); crash_check() };
#endif
		atomic { ck_cur[c] = TMP; crash_check() };                  /* ckpt-L.tmp written */
#ifndef MUTANT_RENAME_BEFORE_DATA_SYNC
		atomic { ck_synced[c] = 1; crash_check() };                 /* fdatasync */
#endif
		atomic { ck_cur[c] = FINAL; printf("@@ checkpointer: rename to ckpt-%d\n", L); crash_check() };
#ifdef MUTANT_DELETE_BEFORE_DIR_FSYNC
		release_segments();
#endif
		atomic { fsync_dir(); printf("@@ checkpointer: directory fsync: checkpoint %d durable\n", c); crash_check() };
#ifdef MUTANT_RENAME_BEFORE_DATA_SYNC
		atomic { ck_synced[c] = 1; crash_check() };
#endif
		/* remove_old_checkpoints */
		atomic {
			j = 1;
			do :: j < c -> if :: ck_cur[j] == FINAL -> ck_cur[j] = NONE :: else -> skip fi; j++ :: else -> break od;
			crash_check()
		};
		release_segments();
		atomic { fsync_dir(); crash_check() };
		c++;
		L = 0
	:: else -> break
	od
}

/* read_value: look the key up, read its extent; ENOENT (the segment went away after the lookup:
 * the bytes moved) makes it look again. */
proctype reader() {
	byte key, e, want, tries, got;
	do
	:: atomic {
		if :: tries == 0 -> if :: key = 0 :: key = 1 fi :: else -> skip fi;
		/* snap_take, under the index lock */
		e = src[key];
		history_value(key, next_lsn - 1, want);
		tries++;
		if :: e -> printf("@@ reader: looks key %d up: bytes of LSN %d in segment %d\n", key, e, rseg[e]) :: else -> skip fi
	   };
	   if
	   :: !e -> break   /* no such key: nothing to read */
	   :: else -> skip
	   fi;
	   atomic { seg_pin(rseg[e], got, READER_PINS, READER) };
	   if
	   :: got ->
		atomic {
			seg_pread_unpin(rseg[e], READER, READER_PINS);
			read_returns_the_last_write = (rval[e] == want);
			if
			:: !read_returns_the_last_write -> printf("@@ reader: key %d reads the bytes of PUT %d, the last write was PUT %d\n", key, rval[e], want)
			:: else -> skip
			fi;
			assert(read_returns_the_last_write)
		};
		break
	   :: else ->
		printf("@@ reader: segment %d is gone (ENOENT)\n", rseg[e]);
#ifdef MUTANT_READER_NO_RETRY
		a_read_of_a_present_key_never_fails = 0;
#else
		a_read_of_a_present_key_never_fails = (tries < READ_TRIES);
#endif
		if
		:: !a_read_of_a_present_key_never_fails -> printf("@@ reader: gives up: the read of key %d fails with EIO\n", key)
		:: else -> skip
		fi;
		assert(a_read_of_a_present_key_never_fails)
	   fi
	od
}

init {
	atomic {
		seg_cur[0] = 1;
		seg_dur[0] = 1;
		run writer();
		run cleaner();
		run checkpointer();
		run reader()
	}
}
