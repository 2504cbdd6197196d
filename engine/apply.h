/* apply.h — the state machine: apply one log record's operations to the index.
 * A pure function of (index, payload, where the payload sits in the log): replay and live writes
 * go through here alike, so the same log always gives the same state. An operation whose
 * precondition does not hold (a delete of an absent key, a rename from nowhere, a limit exceeded,
 * a relocation of bytes rewritten since) is a no-op, the same way every time; the store checks
 * the preconditions callers must hear about before logging. */
#ifndef KVFS_APPLY_H
#define KVFS_APPLY_H
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "record.h"

/* The payload's place in the log: segment (first LSN) and the offset of its first byte. */
struct rec_loc {
	uint64_t seg;
	uint64_t pos;
};

/* Apply the operations r reads (a whole payload, or a batch in meta mode). 0; -EBADMSG for a
 * malformed payload (nothing applied); -ENOMEM with the record partly applied (the caller must
 * stop: memory no longer matches the log). */
int apply_record(struct kvindex *ix, const struct rec_reader *r, const struct rec_loc *loc);
#endif
