/* space.h — promised space: the room posix_fallocate through the mount promises a file's
 * unwritten bytes (docs/FILESYSTEM.md §4, docs/DESIGN.md §6).
 *
 * The store keeps a count of promised log bytes and holds them on the disk in a preallocated
 * file, "space.promise", beside the space reserve: what it holds no other write can take, and
 * statfs of the data disk no longer counts it free. A write that consumes a promise
 * (kv_apply_promised) may, when the disk has no room for its segment, take room back from that
 * file (space_yield: up to a chunk, so that the next consuming writes share the segment made
 * from it); from then on the part of the promise the file no longer holds (the deficit) lies in
 * the current segment's room, and a write that does not consume a promise may append there
 * only what leaves the deficit its room (space_admit) — else ENOSPC, as on a disk without it.
 * A rotation gives the old segment's unused room back to the disk (wal.c trims it), where the
 * next segment finds it. The count is not stored by the engine: its owner (the mounted tree
 * keeps it per file, in the file's metadata) sets it at mount with kv_promise_set; the file
 * keeps the room held across a restart or a crash meanwhile.
 *
 * Lock order: apply_mu, then the module's own mutex (space_admit and space_yield run under
 * apply_mu). */
#ifndef KVFS_SPACE_H
#define KVFS_SPACE_H
#include <stdint.h>

struct kv;
struct space;

#define PROMISE_NAME "space.promise"

/* Under apply_mu, before appending a record of len payload bytes that grows the data: 0 when it
 * may (it consumes a promise at least as large as the deficit, or the current segment holds it
 * and the deficit both, or the disk gave the file its deficit back); -ENOSPC otherwise. */
int space_admit(struct kv *s, uint64_t len);
/* Under apply_mu, after wal_append found no room for a record of len payload bytes: when the
 * calling thread is applying a write that consumes a promise, give the disk back a chunk of
 * the promise file (at least what the record and its segment need) and return 1 (try again);
 * else 0. */
int space_yield(struct kv *s, uint64_t len);
/* At kv_close; the file stays, holding its room for the next open. */
void space_free(struct space *sp);
#endif
