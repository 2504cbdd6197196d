/* entry.h — what replication puts into raft: log entries (one kv batch each) and the snapshot
 * manifest. Byte tables in docs/FORMAT.md section 12; all little-endian.
 *
 * A log entry (a RAFT_COMMAND's buffer), padded with zeros to a multiple of 8 bytes because
 * raft 0.15's uv backend gives entries back from disk rounded up to 8 and without their length.
 * Version 2 (written since the build term fence; version 1 is still read, as term 0):
 *   magic   u32  "KVRE"
 *   version u16  2
 *   flags   u16  ENTRY_REPORT_ABSENT
 *   len     u64  bytes of the batch
 *   term    u64  the build term: raft's term in which the proposer read the store it built the
 *                batch from (0: the batch depends on no read); applied only in an entry of
 *                that same term, else refused on every node (fsm.c)
 *   crc     u32  crc32c of bytes 0..23 and the batch
 *   zero    u32
 *   batch   len bytes: the batch as kv_batch_encode writes it (its record payload)
 *   zeros   to the next multiple of 8
 * Version 1 had no term: its crc (u32 at 16, crc32c of bytes 0..15 and the batch) and zero
 * (u32 at 20) came right after len and the batch at byte 24.
 *
 * The snapshot manifest (raft's snapshot data; the store itself travels out of band, xfer.h):
 *   magic   u32  "KVRS"
 *   version u16  1
 *   zero    u16
 *   holder  u64  the node that took it, whose store holds everything up to index
 *   index   u64  the raft index the store covered when it was taken (and was durable through)
 *   crc     u32  crc32c of bytes 0..23
 *   zero    u32                                                                  (32 bytes) */
#ifndef KVFS_REPL_ENTRY_H
#define KVFS_REPL_ENTRY_H
#include <stddef.h>
#include <stdint.h>

#define ENTRY_HEADER 32u
#define ENTRY_VERSION 2u
#define ENTRY_HEADER_V1 24u
#define MANIFEST_SIZE 32u
#define MANIFEST_VERSION 1u

/* The proposer wants to know whether the key of the batch's first operation existed when the
 * entry was applied (a DEL answers "(nil)" when it did not). */
#define ENTRY_REPORT_ABSENT 0x1u

struct kv_batch;

/* The entry for batch b built in raft term `term` (0: built from no read): malloc'd with
 * raft_malloc into *buf (length *len, a multiple of 8), ready to hand to raft_apply. -EFBIG when
 * the batch is longer than max_batch bytes. */
int entry_encode(const struct kv_batch *b, unsigned flags, uint64_t term, uint64_t max_batch,
		 void **buf, size_t *len);

struct entry_view {
	unsigned flags;
	uint64_t term;        /* the build term; 0 (also every version 1 entry): none */
	const uint8_t *batch;
	uint64_t len;
};
/* Read an entry's header: -EBADMSG when it is not one (magic, version, lengths, checksum, the
 * padding not zeros). The view points into buf. */
int entry_decode(const void *buf, size_t len, struct entry_view *v);

struct manifest {
	uint64_t holder;
	uint64_t index;
};
void manifest_encode(const struct manifest *m, uint8_t out[MANIFEST_SIZE]);
/* -EBADMSG when buf is not a manifest of this version. */
int manifest_decode(const void *buf, size_t len, struct manifest *m);
#endif
