/* recover.h — read a store directory back: the newest valid checkpoint, then log replay.
 * recovery_scan only reads; what it decides to change on disk (cut a torn tail, remove empty
 * trailing segments and leftover temporaries, set damaged files aside, delete what the
 * checkpoint made unneeded) is a plan that recovery_commit carries out, so a refusal changes
 * nothing. Model: tests/model/values_on_disk.pml (recovery_scan's choice of checkpoint and log). */
#ifndef KVFS_RECOVER_H
#define KVFS_RECOVER_H
#include <stdint.h>

#include "index.h"
#include "kv.h"
#include "kvio.h"
#include "segtab.h"
#include "ckpt.h"
#include "wal.h"

struct rplan;

enum recovery_mode {
	RECOVER_STRICT,   /* damage: -EUCLEAN */
	RECOVER_SALVAGE,  /* damage: keep what precedes it, plan to set the rest aside */
};

/* What to scan and how. */
struct recovery_in {
	const struct kvio *io;
	const char *dir;
	enum recovery_mode mode;
	int readonly; /* sync nothing (the filesystem may be read-only); the plan is not committed */
	const struct kv_progress *progress; /* may be NULL */
};

/* Scan in->dir. *ix (may be NULL to only verify the log and checkpoint) receives the recovered
 * state; it may be replaced when salvage falls back to an older checkpoint. segs (may be NULL)
 * gets every segment found, so that the index's accounting lands there. rep is filled in
 * either case. Returns 0 (clean or salvageable), -EUCLEAN (damage, strict), or an I/O error /
 * -ENOMEM. */
int recovery_scan(const struct recovery_in *in, struct kvindex **ix, struct segtab *segs,
		  struct rplan **plan, struct kv_report *rep);
/* Carry out the plan: set damaged files aside (renamed, never deleted), cut the tail, remove
 * empty trailing segments and temporaries, make everything replayed durable, then delete the
 * segments and checkpoints the newest checkpoint made unneeded. segs (may be NULL) forgets every
 * segment file that is deleted or set aside. */
int recovery_commit(const struct kvio *io, const char *dir, struct rplan *plan, struct segtab *segs,
		    struct kv_report *rep);
/* The bytes the plan's copies aside need free (salvage copies damaged files before changing
 * anything): what a salvage on a full disk must free first, e.g. from the space reserve. A
 * recovery_commit that fails while copying removes what it copied and says so in rep
 * (aside_unchanged, aside_bytes). */
int recovery_aside_bytes(const struct kvio *io, const char *dir, const struct rplan *plan, uint64_t *bytes);
/* Where the log continues after recovery: the next LSN, and the segment to resume (or none,
 * *resume_out 0: start a new one). */
void recovery_resume(const struct rplan *plan, uint64_t *next_lsn, struct wal_resume *resume,
		     int *resume_out, uint64_t *wal_bytes);
/* 0 when the records replayed end without a close mark: nothing on disk says they were all
 * synced (a crash, not a clean close, ended the last run); a close mark then should say so. */
int recovery_tail_vouched(const struct rplan *plan);
/* 1 when salvage loaded the checkpoint past damaged entries: once the store is open, a new
 * checkpoint must replace it (the damaged one was copied aside). */
int recovery_rewrites_checkpoint(const struct rplan *plan);
/* The segments the loaded checkpoint references (the plan keeps ownership). */
const struct ckpt_refs *recovery_refs(const struct rplan *plan);
/* Salvage: the number of keys whose values lost bytes; key i of them (when i is below it). */
size_t recovery_lost_keys(const struct rplan *plan, size_t i, const void **key, size_t *klen);
void recovery_free(struct rplan *plan);
#endif
