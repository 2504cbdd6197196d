/* space.h — promised space: the room posix_fallocate through the mount promises a file's
 * unwritten bytes (docs/FILESYSTEM.md §4, docs/DESIGN.md §6).
 *
 * The store keeps a count of promised log bytes and holds them on the disk in a preallocated
 * file, "space.promise", beside the space reserve: what it holds no other write can take, and
 * statfs of the data disk no longer counts it free. A write that consumes a promise
 * (kv_apply_promised) may, when the disk has no room for its segment, take back from that file
 * what its record needs, up to the bytes it consumes; every other write meets a disk already
 * without those bytes and fails with ENOSPC as before. The count is not stored by the engine:
 * its owner (the mounted tree keeps it per file, in the file's metadata) sets it at mount with
 * kv_promise_set; the file keeps the room held across a restart or a crash meanwhile.
 *
 * Lock order: apply_mu, then the module's own mutex (space_yield runs under apply_mu). */
#ifndef KVFS_SPACE_H
#define KVFS_SPACE_H
#include <stdint.h>

struct kv;
struct space;

#define PROMISE_NAME "space.promise"

/* Under apply_mu, after wal_append found no room for a record of len payload bytes: when the
 * calling thread is applying a write that consumes a promise, give the disk back as much of the
 * promise file as the record and its segment need (no more than the write consumes) and return
 * 1 (try again); else 0. */
int space_yield(struct kv *s, uint64_t len);
/* At kv_close; the file stays, holding its room for the next open. */
void space_free(struct space *sp);
#endif
