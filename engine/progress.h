/* progress.h — long work (recovery, a checkpoint, the cleaner, a check, a backup) telling the
 * caller's hook how far it got: about a hundred reports per job, never per byte or key. */
#ifndef KVFS_PROGRESS_H
#define KVFS_PROGRESS_H
#include <stdint.h>

#include "kv.h"

struct progress {
	const struct kv_progress *hook; /* NULL or no fn: silent */
	enum kv_work what;
	uint64_t total, done, next;
};

void progress_start(struct progress *p, const struct kv_progress *hook, enum kv_work what,
		    uint64_t total);
void progress_add(struct progress *p, uint64_t n);
/* The last report: done as it stands (total when the work is complete). */
void progress_end(struct progress *p);
#endif
