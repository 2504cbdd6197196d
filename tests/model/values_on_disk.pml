/* values_on_disk.pml — checkpoint, cleaner, segment deletion and recovery when value bytes stay
 * in the log segments (issue 11; the protocol is in docs/VERIFICATION.md and docs/DESIGN.md).
 *
 * Stands for (the names the engine will use): engine/ckpt.c ckpt_write, ckpt_load;
 * engine/cleaner.c cleaner_pass, cleaner_relocate; engine/apply.c apply_record (RELOCATE);
 * engine/store.c checkpoint_locked, release_segments, and the read path's segment pins;
 * engine/recover.c recovery_scan; engine/wal.c wal_sync, rotate, wal_append (their contract
 * only: group_commit.pml checks how they keep it).
 *
 * The store: K keys, each value one extent (the bytes of one record: a user PUT, or a RELOCATE
 * that carries a copy). Threads:
 *  - a writer: PUTs to any key, each followed by a flush (acknowledged when it returns);
 *  - the cleaner: one pass over a segment that is not the current one: for each key whose
 *    bytes lie there (read under the index lock), read the bytes without locks (holding a pin
 *    on the segment), then append RELOCATE(key, expected source, bytes), applied only if the
 *    key's source is still the expected one;
 *  - the checkpointer: NCK checkpoints: view at L (under the apply lock), wal_sync(L), write
 *    ckpt.tmp, fdatasync, rename, fsync the directory (only now durable), delete older
 *    checkpoints, then release_segments: unlink each segment that the newest durable
 *    checkpoint does not reference, whose records all have LSN <= its L, that is not the
 *    current segment and that nobody pins; fsync the directory;
 *  - a reader: looks a key up (pinning its segment), then reads its bytes.
 * The disk: records are durable up to durable_lsn (wal_sync's contract); later ones survive a
 * power cut as any prefix (recovery keeps the longest valid prefix, group_commit.pml).
 * Directory entries: created segments are durable at once (seg_create fsyncs the directory);
 * every other name change (create, rename, unlink) is durable only after an fsync of the
 * directory, and a power cut keeps ANY SUBSET of the pending ones (POSIX promises no order).
 * A checkpoint whose data was never fdatasynced is garbage after a power cut: recovery finds
 * the newest checkpoint damaged and refuses to open.
 *
 * After every step that changes what a crash would leave:
 *  - power cut: recovery (newest checkpoint named on disk, then replay of LSN > L; a missing
 *    record followed by a present one is damage: refuse) must open, keep every acknowledged
 *    write, give exactly the state after some prefix of the history, and every key's bytes
 *    must be on disk (its record present in an existing segment): recovered_state_is_right;
 *  - process kill: the same from the page cache and the current names; then the new session
 *    makes durable what it read (log fdatasync, directory fsync), deletes what the checkpoint
 *    it loaded allows, and a power cut follows: kill_recover_delete_power_cut_is_right.
 * Live: a read reaches a segment that still exists (reads_never_reach_a_deleted_segment) and
 * returns the bytes of the last write to the key (read_returns_the_last_write).
 *
 * Mutants (-D..., each must be rejected): MUTANT_DELETE_BEFORE_DIR_FSYNC,
 * MUTANT_DELETE_ABOVE_CKPT_LSN, MUTANT_UNCONDITIONAL_RELOCATE, MUTANT_CKPT_WITHOUT_WAL_SYNC,
 * MUTANT_RENAME_BEFORE_DATA_SYNC, MUTANT_CLEANER_NO_PIN, MUTANT_READER_NO_PIN,
 * MUTANT_LOADED_CKPT_WITHOUT_DIR_FSYNC. */

#define K 2            /* keys (the writer and the reader choose between two) */
#ifndef NW
#define NW 4           /* user writes: the 4th can race with the cleaner (3 fill and rotate) */
#endif
#ifndef NCK
#define NCK 2          /* checkpoints */
#endif
#define NREC (NW + K)  /* records: user writes and at most K relocations */
#define SEGCAP 2       /* records per segment */
#define NSEG 3         /* segments at most: ceil(NREC / SEGCAP) */

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

/* ---- the index: the LSN whose record holds each key's bytes (0: absent) ---- */
byte src[K];

/* ---- segments ---- */
byte cur;              /* the segment being appended to */
byte seg_n;            /* records in it */
bool seg_cur[NSEG];    /* its name exists now */
bool seg_dur[NSEG];    /* its name exists on the platter */
byte pins[NSEG];       /* readers (and the cleaner) holding it */

/* ---- checkpoints: slots 1..NCK; slot 0 is "none" (L = 0, empty) ---- */
byte ck_L[NCK + 1];
byte ck_src[(NCK + 1) * K];
byte ck_cur[NCK + 1];  /* NONE, TMP, FINAL: its name now */
byte ck_dur[NCK + 1];  /* its name on the platter */
bool ck_synced[NCK + 1];
byte dck;              /* the newest checkpoint the store knows to be durable */

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
hidden byte np, choice, pi, p, u, i, j, l, best, bestL, rk, need, kk, ksynced, cs, ok, ok2, rdck;
hidden byte refused;
hidden byte recovered_state_is_right;
hidden byte kill_recover_delete_power_cut_is_right;
hidden byte reads_never_reach_a_deleted_segment;
hidden byte read_returns_the_last_write;

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
 * an array: the live index src[], the replayed rsrc[]). */
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
	best = 0;
	bestL = 0;
	j = 1;
	do
	:: j <= NCK -> if :: ns_ck[j] == FINAL && ck_L[j] >= bestL -> best = j; bestL = ck_L[j] :: else -> skip fi; j++
	:: else -> break
	od;
	refused = (best != 0 && !ck_synced[best] && !cs);   /* the newest checkpoint is garbage */
	i = 0;
	do :: i < K -> rsrc[i] = (best -> ck_src[best * K + i] : 0); i++ :: else -> break od;
	l = bestL + 1;
	do
	:: l < next_lsn && present[l] -> apply_replay(l); l++
	:: else -> break
	od;
	rk = l - 1;
	l = rk + 2;
	do :: l < next_lsn -> if :: present[l] -> refused = 1 :: else -> skip fi; l++ :: else -> break od;
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
	i = 0;
	do
	:: i < K ->
		history_value(i, rk, j);
		printf("@@ CRASH:   key %d: recovered source LSN %d (bytes of PUT %d, on disk: %d); history says bytes of PUT %d\n",
		       i, rsrc[i], (rsrc[i] -> rval[rsrc[i]] : 0), (rsrc[i] -> present[rsrc[i]] : 1), j);
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
	rdck = best;
	/* The new session: recovery fdatasyncs the log (all replayed records durable) and fsyncs
	 * the directory; then release_segments trusts the checkpoint it loaded. */
	i = 0;
	do
	:: i < NSEG ->
#ifdef MUTANT_LOADED_CKPT_WITHOUT_DIR_FSYNC
		kdur_seg[i] = seg_dur[i];
#else
		kdur_seg[i] = seg_cur[i];
#endif
		kns_seg[i] = seg_cur[i];
		/* release_segments in the new session: the loaded checkpoint's L and references;
		 * its current segment is the last one */
		if
		:: seg_cur[i] && i != cur ->
			ok2 = 1;
			l = 1;
			do
			:: l < next_lsn -> if :: rseg[l] == i && l > ck_L[rdck] -> ok2 = 0 :: else -> skip fi; l++
			:: else -> break
			od;
			j = 0;
			do
			:: j < K -> if :: rdck && ck_src[rdck * K + j] && rseg[ck_src[rdck * K + j]] == i -> ok2 = 0 :: else -> skip fi; j++
			:: else -> break
			od;
			if :: ok2 && rdck -> kns_seg[i] = 0 :: else -> skip fi
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
			       rdck, kk, kns_seg[0], kns_seg[1], kns_seg[2]);
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
	byte s, key, e, v, lsn;
	atomic {
		/* choose a segment that is not the current one and pin it */
		if
		:: seg_cur[0] && cur != 0 -> s = 0
		:: seg_cur[1] && cur != 1 -> s = 1
		:: else -> s = NSEG   /* nothing to clean yet: the pass ends */
		fi;
#ifndef MUTANT_CLEANER_NO_PIN
		if :: s < NSEG -> pins[s]++ :: else -> skip fi;
#endif
		if :: s < NSEG -> printf("@@ cleaner: cleans segment %d\n", s) :: else -> skip fi
	};
	key = 0;
	do
	:: key < K && s < NSEG ->
		atomic { e = src[key]; if :: e && rseg[e] == s -> skip :: else -> e = 0 fi };
		if
		:: e ->
			atomic {
				/* read the bytes from s, without locks */
				reads_never_reach_a_deleted_segment = seg_cur[s];
				if
				:: !seg_cur[s] -> printf("@@ cleaner: reads key %d's bytes from segment %d: it was unlinked\n", key, s)
				:: else -> skip
				fi;
				assert(reads_never_reach_a_deleted_segment);
				v = rval[e]
			};
			atomic {
				append(RELOC, key, v, e, lsn);
				printf("@@ cleaner: RELOCATE key %d from LSN %d at LSN %d (segment %d): source now LSN %d\n",
				       key, e, lsn, cur, src[key]);
				crash_check()
			}
		:: else -> skip
		fi;
		e = 0; v = 0; lsn = 0;
		key++
	:: else -> break
	od;
#ifndef MUTANT_CLEANER_NO_PIN
	if :: s < NSEG -> pins[s]-- :: else -> skip fi
#else
	skip
#endif
}

/* release_segments: unlink what the newest durable checkpoint and the log after it no longer
 * need. Each segment is decided and unlinked under the lock that pins take. */
inline release_segments() {
	s = 0;
	do
	:: s < NSEG ->
		atomic {
			ok2 = seg_cur[s] && s != cur && pins[s] == 0 && dck != 0;
			l = 1;
			do
			:: l < next_lsn ->
#ifndef MUTANT_DELETE_ABOVE_CKPT_LSN
				if :: rseg[l] == s && l > ck_L[dck] -> ok2 = 0 :: else -> skip fi;
#endif
				l++
			:: else -> break
			od;
			k = 0;
			do
			:: k < K -> if :: ck_src[dck * K + k] && rseg[ck_src[dck * K + k]] == s -> ok2 = 0 :: else -> skip fi; k++
			:: else -> break
			od;
			if
			:: ok2 -> seg_cur[s] = 0; printf("@@ checkpointer: unlinks segment %d\n", s); crash_check()
			:: else -> skip
			fi
		};
		s++
	:: else -> break
	od;
	s = 0; k = 0
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
			/* the view at L, under the apply lock */
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
		dck = c;
		release_segments();
#endif
		atomic { fsync_dir(); dck = c; printf("@@ checkpointer: directory fsync: checkpoint %d durable\n", c); crash_check() };
#ifdef MUTANT_RENAME_BEFORE_DATA_SYNC
		atomic { ck_synced[c] = 1; crash_check() };
#endif
		/* older checkpoints go */
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

proctype reader() {
	byte key, e, want, s;
	atomic {
		if :: key = 0 :: key = 1 fi;
		e = src[key];
		history_value(key, next_lsn - 1, want);
		if :: e -> printf("@@ reader: looks key %d up: bytes of LSN %d in segment %d\n", key, e, rseg[e]) :: else -> skip fi;
#ifndef MUTANT_READER_NO_PIN
		if :: e -> pins[rseg[e]]++ :: else -> skip fi
#else
		skip
#endif
	};
	atomic {
		if
		:: e ->
			reads_never_reach_a_deleted_segment = seg_cur[rseg[e]];
			if
			:: !seg_cur[rseg[e]] -> printf("@@ reader: reads key %d's bytes from segment %d: it was unlinked\n", key, rseg[e])
			:: else -> skip
			fi;
			assert(reads_never_reach_a_deleted_segment);
			read_returns_the_last_write = (rval[e] == want);
			if
			:: !read_returns_the_last_write -> printf("@@ reader: key %d reads the bytes of PUT %d, the last write was PUT %d\n", key, rval[e], want)
			:: else -> skip
			fi;
			assert(read_returns_the_last_write)
#ifndef MUTANT_READER_NO_PIN
			; pins[rseg[e]]--
#endif
		:: else -> skip
		fi
	}
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
