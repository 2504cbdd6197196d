/* values_on_disk.pml — checkpoint, cleaner, segment deletion, reads and recovery when value bytes
 * stay in the log segments, as the engine does them (issue 11).
 *
 * Stands for: engine/store.c checkpoint_locked, release_segments, remove_old_checkpoints,
 * read_value (and its retry); engine/ckpt.c ckpt_write, ckpt_load; engine/cleaner.c
 * pick_victims, collect, move_batch; engine/segtab.c segtab_read (pin, pread, unpin),
 * segtab_delete; engine/index.c kvindex_relocate and engine/apply.c apply_relocate (the source
 * check); engine/recover.c recovery_scan (load_checkpoint, check_references, assess_lost, the
 * replay, the log reaching the checkpoint) and recovery_commit (the directory fsync, then the
 * covered segments and older checkpoints deleted); recovery's segment removal: which segments
 * the plan removes (on_bad_record: a segment without a header), deletes as covered or, in a
 * salvage that rewrites a damaged checkpoint (checkpoint_partial, copy_aside), sets aside,
 * decided once the scan has found where the log continues; engine/wal.c wal_sync, rotate,
 * seg_create (the file created, its header written and fdatasynced, the directory fsynced),
 * wal_open (a new segment when there is none to resume in), wal_append (their contract only:
 * group_commit.pml checks how they keep it).
 *
 * The functions, as tests/model/names.py checks that they exist and name this model:
 * Code: engine/store.c checkpoint_locked release_segments remove_old_checkpoints read_value
 * Code: engine/ckpt.c ckpt_write ckpt_load
 * Code: engine/cleaner.c pick_victims collect move_batch clean_pass
 * Code: engine/segtab.c segtab_read segtab_delete
 * Code: engine/index.c kvindex_relocate
 * Code: engine/apply.c apply_relocate
 * Code: engine/recover.c recovery_scan load_checkpoint check_references assess_lost recovery_commit
 * Code: engine/wal.c seg_create wal_open
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
 *    The log must also reach the checkpoint's LSN ("the log ends before the checkpoint's last
 *    record" is refused), and a segment named but without a header holds nothing (removed);
 *  - process kill: the same from the page cache and the current names (a segment created just
 *    before the kill may have no header yet); then the new session: recovery_commit (the
 *    headerless segment unlinked and, in a salvage, segments set aside; the directory fsync; the
 *    covered segments and older checkpoints deleted; the directory fsync), wal_open (seg_create
 *    when the log continues in a segment the scan did not read) and, after a salvage, the
 *    checkpoint replacing the damaged one; a power cut in any of these stretches, the next open
 *    strict, or a salvage again while the damaged checkpoint is the newest:
 *    kill_recover_delete_power_cut_is_right. The rule: the segment the log continues in is
 *    never deleted or set aside. With -DSALVAGE each kill is also followed by a salvage of the
 *    newest checkpoint, found damaged (every entry still proven) and rewritten.
 * Live: every read preads a descriptor that is open (reads_use_an_open_descriptor), returns the
 * bytes of the last write to the key when it looked the key up (read_returns_the_last_write), and
 * a key that exists is read without an error (a_read_of_a_present_key_never_fails).
 *
 * Mutants (-D..., each must be rejected): MUTANT_DELETE_BEFORE_DIR_FSYNC,
 * MUTANT_DELETE_ABOVE_CKPT_LSN, MUTANT_DELETE_REFERENCED, MUTANT_UNCONDITIONAL_RELOCATE,
 * MUTANT_CKPT_WITHOUT_WAL_SYNC, MUTANT_RENAME_BEFORE_DATA_SYNC, MUTANT_CLEANER_NO_PIN,
 * MUTANT_READER_NO_PIN, MUTANT_READER_NO_RETRY, MUTANT_LOADED_CKPT_WITHOUT_DIR_FSYNC,
 * MUTANT_RECOVERY_DELETES_THE_SEGMENT_IT_CONTINUES_IN (stop 20's bug; rejected with the switches
 * of the removal run). MUTANT_SALVAGE_SETS_ASIDE_THE_SEGMENT_IT_CONTINUES_IN (the aside list as
 * it was) is NOT rejected: docs/VERIFICATION.md says why. MUTANT_SALVAGE_ASIDE_BEFORE_DIR_FSYNC
 * (a salvage renames segments aside before the directory fsync that copy_aside does) is.
 * Other switches: -DDELETES (the writer may delete a key), -DNO_CLEANER, -DNO_READER, -DSALVAGE,
 * -DNW=n, -DNCK=n; the removal run is -DDELETES -DNW=4 -DNO_CLEANER -DNO_READER -DSALVAGE. */

#define K 2            /* keys (the writer and the reader choose between two) */
#ifndef NW
#define NW 4           /* user writes: the 4th can race with the cleaner (3 fill and rotate) */
#endif
#ifndef NCK
#define NCK 2          /* checkpoints */
#endif
#ifdef NO_CLEANER
#define NREC NW        /* records: user writes */
#else
#define NREC (NW + K)  /* records: user writes and at most K relocations */
#endif
#define SEGCAP 2       /* records per segment: segment s holds LSNs SEGCAP*s+1 .. SEGCAP*(s+1) */
#define NSEG 3         /* segments at most: ceil(NREC / SEGCAP) */
#define READ_TRIES 4   /* read_value: the first look and 3 more after ENOENT */

#define PUT 1
#define RELOC 2
#define DEL 3          /* with -DDELETES: a delete, the key's bytes gone (its record has none) */
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
bool seg_hdr[NSEG];    /* its header is written and fdatasynced (seg_create: before the directory
                        * fsync; a segment named but without it is one a crash cut short) */
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
hidden byte ns_hdr[NSEG];
hidden byte ns_ck[NCK + 1];
hidden byte rsrc[K];
hidden byte present[NREC + 1];
hidden byte pend[2 * NSEG + NCK + 2];
hidden byte np, choice, pi, p, u, i, j, l, t, best, bestL, rk, need, kk, kb, kL, cs, ok, ok2, lost, gap;
hidden byte refused, st, log_end, endlost, ckdmg;
/* The kill path (recovery's segment removal): the names, headers and checkpoints on disk before
 * (b_) and after (e_) each stretch of recovery_commit and the new session between two directory
 * fsyncs; a power cut keeps any subset of the changes of the stretch it falls in. */
hidden byte b_seg[NSEG], b_hdr[NSEG], b_ck[NCK + 1], b_x;
hidden byte e_seg[NSEG], e_hdr[NSEG], e_ck[NCK + 1], e_x;
hidden byte gone[NSEG];        /* recovery's plan: covered (strict) or set aside (salvage) */
hidden byte hl, cont, salvhyp, dmg_ck, sv, xck, xL, epoch, fresh;
hidden byte xsrc[K];           /* the checkpoint a salvage's new session writes (ckpt_rewrite) */
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
	:: l <= upto ->
		if
		:: rtype[l] == PUT && rkey[l] == k -> out = l
		:: rtype[l] == DEL && rkey[l] == k -> out = 0
		:: else -> skip
		fi;
		l++
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
	:: rtype[r] == DEL -> src[rkey[r]] = 0
	:: rtype[r] == RELOC && RELOCATE_APPLIES(src, r) -> src[rkey[r]] = r
	:: else -> skip   /* a relocation that lost the race with a user write: a no-op */
	fi
}
inline apply_replay(r) {
	if
	:: rtype[r] == PUT -> rsrc[rkey[r]] = r
	:: rtype[r] == DEL -> rsrc[rkey[r]] = 0
	:: rtype[r] == RELOC && RELOCATE_APPLIES(rsrc, r) -> rsrc[rkey[r]] = r
	:: else -> skip
	fi
}

#define XCK (NCK + 1)   /* best: the checkpoint a salvage's new session wrote (xck, xL, xsrc) */

/* Recovery over names ns_seg/ns_ck, headers ns_hdr (checkpoint data valid iff synced, or cs:
 * "from the page cache") and records present[] (set by the caller for the records' own
 * survival; a record in a segment without a name is absent). The open is strict, or a salvage
 * when salvhyp is set and the newest checkpoint is dmg_ck, the one found damaged and loaded past
 * its damage. Result: rk, rsrc[], refused, st (the segment the scan starts in). Then the check:
 * ok. */
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
	/* the salvage's new checkpoint is ckpt-<xL>: renamed over the damaged one when the LSNs are
	 * the same */
	if :: xck && xL >= bestL -> best = XCK; bestL = xL :: else -> skip fi;
	ckdmg = (best != 0 && best == dmg_ck);
	sv = salvhyp && ckdmg;   /* a salvage while the damaged checkpoint is the newest */
	refused = (best != 0 && best != XCK && !ck_synced[best] && !cs) || (ckdmg && !sv);
	i = 0;
	do
	:: i < K ->
		if
		:: best == XCK -> rsrc[i] = xsrc[i]
		:: best && best != XCK -> rsrc[i] = ck_src[best * K + i]
		:: else -> rsrc[i] = 0
		fi;
		i++
	:: else -> break
	od;
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
	 * naming exactly the next LSN with nothing valid in it was created just before the crash; one
	 * without a header holds nothing and is removed: on_bad_record) */
	t = 0;
	do :: t < NSEG -> if :: ns_seg[t] && ns_hdr[t] && SEG_FIRST(t) > rk + 1 -> gap = 1 :: else -> skip fi; t++ :: else -> break od;
	/* The scan starts in the last segment named at or below L + 1 (else the first); the log
	 * reaches the end of the records there and after it. It must reach the checkpoint's LSN (the
	 * segment holding it, or one named right after it, is there: "the log ends before the
	 * checkpoint's last record"), unless that checkpoint is damaged (salvage) */
	st = NSEG;
	t = 0;
	do
	:: t < NSEG -> if :: ns_seg[t] && (st == NSEG || SEG_FIRST(t) <= bestL + 1) -> st = t :: else -> skip fi; t++
	:: else -> break
	od;
	log_end = 0;
	if
	:: st < NSEG ->
		log_end = SEG_FIRST(st) - 1;
		l = SEG_FIRST(st);
		do :: l < next_lsn && present[l] -> log_end = l; l++ :: else -> break od
	:: else -> skip
	fi;
	endlost = (bestL > 0 && log_end < bestL && !ckdmg);
	/* (a salvage sets aside what follows a gap and opens with the prefix: checked below) */
	refused = refused || (gap && !sv) || endlost;
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
	:: best && best != XCK && !ck_synced[best] && !cs -> printf("@@ CRASH:   (checkpoint %d was never fdatasynced: it reads back as garbage, damage)\n", best)
	:: else -> skip
	fi;
	if
	:: ckdmg && !sv -> printf("@@ CRASH:   (checkpoint %d is the damaged one: a strict open refuses)\n", best)
	:: ckdmg && sv -> printf("@@ CRASH:   (checkpoint %d is the damaged one: the open is a salvage)\n", best)
	:: else -> skip
	fi;
	if
	:: endlost -> printf("@@ CRASH:   (the log ends at LSN %d, before the checkpoint's LSN %d: its end is lost, refused)\n", log_end, bestL)
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

/* A power cut in the kill path's stretch `epoch`: the names (and headers) on disk are b_, and
 * any subset of the stretch's changes to e_; recovery (strict, or the salvage again while the
 * damaged checkpoint is the newest) must open with every record the new session took as durable
 * (kk), as the state after a prefix of the history. */
inline cut_epoch() {
	np = 0;
	i = 0;
	do
	:: i < NSEG ->
		if :: b_seg[i] != e_seg[i] -> pend[np] = i; np++ :: else -> skip fi;
		if :: b_hdr[i] != e_hdr[i] -> pend[np] = NSEG + i; np++ :: else -> skip fi;
		i++
	:: else -> break
	od;
	j = 1;
	do :: j <= NCK -> if :: b_ck[j] != e_ck[j] -> pend[np] = 2 * NSEG + j; np++ :: else -> skip fi; j++
	:: else -> break
	od;
	if :: b_x != e_x -> pend[np] = 2 * NSEG + NCK + 1; np++ :: else -> skip fi;
	/* a stretch that changes nothing leaves what the end of the one before it left: checked */
	choice = (np == 0 && epoch > 1 -> 1 : 0);
	do
	:: choice < (1 << np) && kill_recover_delete_power_cut_is_right ->
		i = 0;
		do :: i < NSEG -> ns_seg[i] = b_seg[i]; ns_hdr[i] = b_hdr[i]; i++ :: else -> break od;
		j = 1;
		do :: j <= NCK -> ns_ck[j] = b_ck[j]; j++ :: else -> break od;
		xck = b_x;
		pi = 0;
		do
		:: pi < np ->
			if
			:: (choice >> pi) & 1 ->
				if
				:: pend[pi] < NSEG -> ns_seg[pend[pi]] = e_seg[pend[pi]]
				:: pend[pi] >= NSEG && pend[pi] < 2 * NSEG -> ns_hdr[pend[pi] - NSEG] = e_hdr[pend[pi] - NSEG]
				:: pend[pi] > 2 * NSEG && pend[pi] <= 2 * NSEG + NCK -> ns_ck[pend[pi] - 2 * NSEG] = e_ck[pend[pi] - 2 * NSEG]
				:: else -> xck = e_x
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
			printf("@@ CRASH: process kill; the new session (0: strict, 1: a salvage of damaged checkpoint %d: %d) loads checkpoint %d (L=%d), recovers up to LSN %d\n",
			       dmg_ck, salvhyp, kb, kL, kk);
			printf("@@ CRASH: its plan: remove headerless segment %d (3: none); the log continues in segment %d; segments 0,1,2 deleted as covered (strict) or set aside (salvage): %d%d%d\n",
			       hl, cont, gone[0], gone[1], gone[2]);
			printf("@@ CRASH: power cut in stretch %d (0: salvage's copy of the checkpoint, 1: recovery_commit to its directory fsync, 2: its deletions, 3: the new session's seg_create, 4: its new checkpoint)\n", epoch);
			printf("@@ CRASH: names on disk: segments 0,1,2: %d%d%d (headers %d%d%d); checkpoints 1,2: %d%d; new checkpoint: %d\n",
			       ns_seg[0], ns_seg[1], ns_seg[2], ns_hdr[0], ns_hdr[1], ns_hdr[2], ns_ck[1], ns_ck[NCK], xck);
			print_state();
			kill_recover_delete_power_cut_is_right = 0
		:: else -> skip
		fi;
		choice++
	:: else -> break
	od
}

inline epoch_done() {
	i = 0;
	do :: i < NSEG -> b_seg[i] = e_seg[i]; b_hdr[i] = e_hdr[i]; i++ :: else -> break od;
	j = 1;
	do :: j <= NCK -> b_ck[j] = e_ck[j]; j++ :: else -> break od;
	b_x = e_x
}

#ifdef SALVAGE
#define SALVAGE_TOO 1
#else
#define SALVAGE_TOO 0
#endif
#ifdef MUTANT_RECOVERY_DELETES_THE_SEGMENT_IT_CONTINUES_IN
#define COVERED_SPARES_CONT 0
#else
#define COVERED_SPARES_CONT 1
#endif
#ifdef MUTANT_SALVAGE_SETS_ASIDE_THE_SEGMENT_IT_CONTINUES_IN
#define ASIDE_SPARES_CONT 0
#else
#define ASIDE_SPARES_CONT 1
#endif

/* A process kill now, then the new session: recovery (strict, or with salvhyp a salvage of the
 * newest checkpoint found damaged, which rewrites it), recovery_commit (stretch 1: segments set
 * aside, the headerless segment unlinked; the directory fsync; stretch 2: the covered segments
 * and older checkpoints unlinked; the directory fsync), wal_open (stretch 3: a new segment when
 * the log continues in one the scan did not read) and, after a salvage, its new checkpoint
 * (stretch 4); a power cut in any stretch (kill_recover_delete_power_cut_is_right). Recovery's
 * segment removal (the rule R12 gives recover.c): which earlier segments go is decided once the
 * scan has found where the log continues, and the segment it continues in never goes. */
inline kill_path() {
	i = 0;
	do :: i < NSEG -> ns_seg[i] = seg_cur[i]; ns_hdr[i] = seg_hdr[i]; i++ :: else -> break od;
	j = 1;
	do :: j <= NCK -> ns_ck[j] = ck_cur[j]; j++ :: else -> break od;
	xck = 0;
	dmg_ck = 0;
	if
	:: salvhyp ->
		/* the newest checkpoint named is the one found damaged (every entry still proven) */
		bestL = 0;
		j = 1;
		do
		:: j <= NCK -> if :: ns_ck[j] == FINAL && ck_L[j] >= bestL -> dmg_ck = j; bestL = ck_L[j] :: else -> skip fi; j++
		:: else -> break
		od
	:: else -> skip
	fi;
	if
	:: salvhyp && dmg_ck == 0 -> skip   /* no checkpoint: nothing to salvage */
	:: else ->
	l = 1;
	do :: l < next_lsn -> present[l] = 1; l++ :: else -> break od;
	cs = 1;
	need = acked;
	recover_and_check(need);
	kill_recover_delete_power_cut_is_right = ok;
	if
	:: !ok -> printf("@@ CRASH: process kill (%d: strict, 1: salvage)\n", salvhyp); print_state()
	:: else -> skip
	fi;
	kk = rk;
	kb = best;
	kL = bestL;
	i = 0;
	do :: i < K -> xsrc[i] = rsrc[i]; i++ :: else -> break od;
	/* the plan: a segment named but without a header is removed; the log continues where the
	 * scan started, or, when that one is the headerless one, in the segment before it */
	hl = NSEG;
	t = 0;
	do :: t < NSEG -> if :: ns_seg[t] && !ns_hdr[t] -> hl = t :: else -> skip fi; t++ :: else -> break od;
	cont = st;
	fresh = (st < NSEG && st == hl);
	if
	:: fresh ->
		cont = NSEG;
		t = 0;
		do :: t < st -> if :: ns_seg[t] -> cont = t :: else -> skip fi; t++ :: else -> break od
	:: else -> skip
	fi;
	/* the segments named before the one the scan started in that the checkpoint does not
	 * reference are covered (strict: deleted once its name is durable) or, in a salvage that
	 * rewrites the checkpoint, set aside (renamed before the directory fsync) */
	i = 0;
	do
	:: i < NSEG ->
		gone[i] = (kb != 0 && st < NSEG && i < st && ns_seg[i] && !CK_REFS(kb, i));
		if
		:: i == cont && (salvhyp -> ASIDE_SPARES_CONT : COVERED_SPARES_CONT) -> gone[i] = 0
		:: else -> skip
		fi;
		i++
	:: else -> break
	od;
	if
	:: kill_recover_delete_power_cut_is_right ->
		/* stretch 1: from what is durable at the kill: recovery_commit renames aside and
		 * unlinks the headerless segment, then fsyncs the directory; stretch 2 (strict): the
		 * covered segments and the older checkpoints unlinked, the directory fsynced; stretch 3:
		 * wal_open: when the log continues in a segment the scan did not read (the headerless
		 * one was where it started) there is no resume, and seg_create(kk + 1) makes the segment
		 * of that name again: created, header written and fdatasynced, the directory fsynced;
		 * stretch 4 (salvage): the checkpoint that replaces the damaged one, at the applied LSN:
		 * written, fdatasynced, renamed, the directory fsynced. */
		i = 0;
		do :: i < NSEG -> b_seg[i] = seg_dur[i]; b_hdr[i] = seg_hdr[i]; e_seg[i] = seg_cur[i]; e_hdr[i] = seg_hdr[i]; i++
		:: else -> break
		od;
		j = 1;
		do :: j <= NCK -> b_ck[j] = ck_dur[j]; e_ck[j] = ck_cur[j]; j++ :: else -> break od;
		b_x = 0;
		e_x = 0;
		xL = kk;
		/* stretch 0 (salvage): the damaged checkpoint is copied aside first (copy_aside: the
		 * copy fdatasynced, the directory fsynced), which makes the names it loaded durable */
		epoch = (salvhyp -> 0 : 1);
		do
		:: epoch <= 4 && kill_recover_delete_power_cut_is_right ->
			if
			:: epoch == 1 ->
				i = 0;
				do :: i < NSEG -> e_seg[i] = e_seg[i] && i != hl && !(salvhyp && gone[i]); i++ :: else -> break od;
				j = 1;
				do
				:: j <= NCK -> if :: salvhyp && ck_cur[j] == FINAL && j != kb && ck_L[j] < kL -> e_ck[j] = NONE :: else -> skip fi; j++
				:: else -> break
				od
			:: epoch == 2 && !salvhyp ->
				i = 0;
				do :: i < NSEG -> e_seg[i] = e_seg[i] && !gone[i]; i++ :: else -> break od;
				j = 1;
				do
				:: j <= NCK -> if :: ck_cur[j] == FINAL && j != kb && ck_L[j] < kL -> e_ck[j] = NONE :: else -> skip fi; j++
				:: else -> break
				od
			:: epoch == 3 && fresh -> e_seg[hl] = 1; e_hdr[hl] = 1
			:: epoch == 4 && salvhyp -> e_x = 1
			:: else -> skip
			fi;
			cut_epoch();
#if defined(MUTANT_LOADED_CKPT_WITHOUT_DIR_FSYNC)
			if :: epoch != 1 || salvhyp -> epoch_done() :: else -> skip fi;   /* no fsync before the deletions */
#elif defined(MUTANT_SALVAGE_ASIDE_BEFORE_DIR_FSYNC)
			if :: epoch != 0 -> epoch_done() :: else -> skip fi;   /* no copy's fsync before the renames */
#else
			epoch_done();
#endif
			epoch++
		:: else -> break
		od
	:: else -> skip
	fi
	fi;
	xck = 0
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
			do :: i < NSEG -> ns_seg[i] = seg_dur[i]; ns_hdr[i] = seg_hdr[i]; i++ :: else -> break od;
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
	 * cut held: a counterexample tells one story); the new session opens strict, or (salvage)
	 * finds the newest checkpoint damaged and loads it past the damage ---- */
	if
	:: recovered_state_is_right ->
		kill_recover_delete_power_cut_is_right = 1;
		salvhyp = 0;
		do
		:: salvhyp < SALVAGE_TOO + 1 && kill_recover_delete_power_cut_is_right -> kill_path(); salvhyp++
		:: else -> break
		od;
		assert(kill_recover_delete_power_cut_is_right);
		salvhyp = 0;
		dmg_ck = 0;
		xck = 0
	:: else -> skip
	fi
	}
}

/* wal_append + apply under the apply lock; a full segment is rotated after it is made durable. */
inline append(type, key, val, exp, lsn) {
	if
	:: seg_n == SEGCAP ->
		durable_lsn = next_lsn - 1;   /* rotate: the old segment is flushed first */
		/* seg_create: the file is created (its name not yet durable), its header not yet
		 * written: a crash here leaves a segment without a header (the state is checked, not
		 * stored: nothing else of the store can run in between, rotate holds w->mu and the
		 * store apply_mu) */
		seg_cur[cur + 1] = 1;
		printf("@@ segment %d created, no header yet\n", cur + 1);
		crash_check();
		/* the header written and fdatasynced, the directory fsynced (this model makes only the
		 * new name durable: fewer names durable, more outcomes of a power cut) */
		cur++;
		seg_hdr[cur] = 1;
		seg_dur[cur] = 1;
		seg_n = 0;
		printf("@@ segment %d has its header\n", cur)
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
	byte n, key, lsn, op, val;
	do
	:: n < NW ->
		atomic {
			if :: key = 0 :: key = 1 fi;
#ifdef DELETES
			if :: op = PUT :: op = DEL fi;
#else
			op = PUT;
#endif
			if :: op == PUT -> val = next_lsn :: else -> val = 0 fi;
			append(op, key, val, 0, lsn);
			if
			:: op == PUT -> printf("@@ writer: PUT key %d at LSN %d (segment %d)\n", key, lsn, cur)
			:: else -> printf("@@ writer: DEL key %d at LSN %d (segment %d)\n", key, lsn, cur)
			fi;
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
		lsn = 0;
		op = 0;
		val = 0
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
		seg_hdr[0] = 1;
		run writer();
#ifndef NO_CLEANER
		run cleaner();
#endif
		run checkpointer();
#ifndef NO_READER
		run reader()
#endif
	}
}
