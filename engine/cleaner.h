/* cleaner.h — reclaiming space: copy the live bytes out of mostly dead log segments (as
 * ordinary RELOCATE records), then checkpoint, which lets the emptied segments be deleted.
 * A relocation that lost a race with a user write is a no-op, the same live and on replay
 * (kvindex_relocate). Model: tests/model/values_on_disk.pml (the cleaner process).
 *
 * Policy (docs/DESIGN.md §5): clean when the segments hold more than twice the live bytes plus
 * one segment; victims are sealed segments less than half live, emptiest first. */
#ifndef KVFS_CLEANER_H
#define KVFS_CLEANER_H
#include <stdint.h>

struct kv;

/* One background round if the policy asks for it; gives up early when *stop is set. */
void cleaner_run(struct kv *s, const int *stop);
/* The disk is full: one pass over the emptiest sealed segments under half live, whatever the
 * policy says, unthrottled, moving at most about budget live bytes (the room its records may
 * take: the space reserve's); no merging of fragmented values. clean_mu held. */
int cleaner_make_room(struct kv *s, uint64_t budget);
#endif
