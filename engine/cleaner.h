/* cleaner.h — reclaiming space: copy the live bytes out of mostly dead log segments (as
 * ordinary RELOCATE records), then checkpoint, which lets the emptied segments be deleted.
 * A relocation that lost a race with a user write is a no-op, the same live and on replay
 * (kvindex_relocate). Model: tests/model/values_on_disk.pml (the cleaner process).
 *
 * Policy (docs/DESIGN.md §5): clean when the segments hold more than twice the live bytes plus
 * one segment; victims are sealed segments less than half live, emptiest first. A full disk
 * (cleaner_make_room) takes any segment with dead bytes whose live ones fit the room there is. */
#ifndef KVFS_CLEANER_H
#define KVFS_CLEANER_H
#include <stdint.h>

struct kv;

/* One background round if the policy asks for it; gives up early when *stop is set. */
void cleaner_run(struct kv *s, const int *stop);
/* The disk is full: passes over the sealed segments holding dead bytes, emptiest first, whatever
 * the policy says, unthrottled, each moving what fits in the space reserve's room (the reserve
 * less what the next checkpoint needs) and checkpointing (which deletes the emptied segments and
 * takes the reserve back), until a pass frees nothing; no merging of fragmented values.
 * clean_mu held. */
int cleaner_make_room(struct kv *s);
#endif
