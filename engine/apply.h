/* apply.h — the state machine: apply one log record's payload to the index.
 * A pure function of (index, payload): replay and live writes go through here alike, so the
 * same log always gives the same state. An operation whose precondition does not hold (a
 * delete of an absent key, a rename from nowhere, a limit exceeded) is a no-op, the same way
 * every time; the store checks preconditions before logging so callers get the error. */
#ifndef KVFS_APPLY_H
#define KVFS_APPLY_H
#include <stddef.h>
#include "index.h"

/* 0; -EBADMSG for a malformed payload (nothing applied); -ENOMEM with the record partly applied
 * (the caller must stop: memory no longer matches the log). */
int apply_record(struct kvindex *ix, const void *payload, size_t len);
#endif
