/* recover.h — read a store directory back: newest valid snapshot, then log replay.
 * recovery_scan only reads; what it decides to change on disk (cut a torn tail, remove empty
 * trailing segments and leftover temporaries, set damaged files aside) is a plan that
 * recovery_commit carries out, so a refusal changes nothing. */
#ifndef KVFS_RECOVER_H
#define KVFS_RECOVER_H
#include <stdint.h>
#include "index.h"
#include "kv.h"
#include "kvio.h"

struct rplan;

enum recovery_mode {
	RECOVER_STRICT,   /* damage: -EUCLEAN */
	RECOVER_SALVAGE,  /* damage: keep what precedes it, plan to set the rest aside */
};

/* Scan dir. *ix (may be NULL to only verify) receives the recovered state; it may be replaced
 * when salvage falls back to an older snapshot. rep is filled in either case. Returns 0 (clean
 * or salvageable), -EUCLEAN (damage, strict), or an I/O error / -ENOMEM. */
int recovery_scan(const struct kvio *io, const char *dir, enum recovery_mode mode,
		  struct kvindex **ix, struct rplan **plan, struct kv_report *rep);
/* Carry out the plan: set damaged files aside (renamed, never deleted), cut the tail, remove
 * empty trailing segments and snapshot temporaries, sync what changed. */
int recovery_commit(const struct kvio *io, const char *dir, struct rplan *plan, struct kv_report *rep);
/* Where the log continues after recovery. */
void recovery_resume(const struct rplan *plan, uint64_t *next_lsn, uint64_t *resume_first_lsn,
		     uint64_t *resume_end, uint64_t *wal_bytes);
void recovery_free(struct rplan *plan);
#endif
