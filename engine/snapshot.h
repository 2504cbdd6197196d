/* snapshot.h — the whole state in one file, written from a frozen view while writers go on.
 *
 * File snap-<LSN, 16 hex digits>.kvs: the state after applying every record up to LSN.
 * Little-endian (byte table in docs/FORMAT.md):
 *   header (40 bytes): magic "KVFSSNP\0" | version u32 | flags u32 | lsn u64 | count u64 |
 *                      reserved u32 | crc32c u32 over bytes 0..35
 *   count entries, keys strictly ascending:
 *     crc32c u32 over the rest of the entry | klen u32 | mlen u32 | vlen u64 | key | meta | value
 *   footer (16 bytes): magic "KVFSEND\0" | crc32c u32 of every byte before the footer |
 *                      crc32c u32 over footer bytes 0..11
 * Written as snap-….kvs.tmp, fdatasync'd, renamed, directory fsync'd: a crash at any point
 * leaves the previous snapshot and the log intact. */
#ifndef KVFS_SNAPSHOT_H
#define KVFS_SNAPSHOT_H
#include <stddef.h>
#include <stdint.h>
#include "index.h"
#include "kvio.h"

#define SNAP_MAGIC "KVFSSNP"
#define SNAP_END_MAGIC "KVFSEND"
#define SNAP_VERSION 1u
#define SNAP_HDR_SIZE 40u
#define SNAP_ENTRY_HDR_SIZE 20u
#define SNAP_FOOTER_SIZE 16u

void snapshot_name(char *buf, size_t len, uint64_t lsn);
/* 0 for snap-<16 hex>.kvs, setting lsn; -EINVAL for anything else (temporaries included). */
int snapshot_parse_name(const char *name, uint64_t *lsn);

/* Write the view as the snapshot for lsn into dir, durably. bytes_out: the file's size. */
int snapshot_write(const struct kvio *io, const char *dir, const struct kvview *v, uint64_t lsn,
		   uint64_t *bytes_out);

/* Load path into the empty index ix. 0, or -EBADMSG with *bad_off the offset of the first
 * damaged byte range (header, entry or footer); -EPROTONOSUPPORT for another version; other
 * errors from the I/O layer or -ENOMEM. ix may be NULL to only verify. */
int snapshot_load(const struct kvio *io, const char *path, struct kvindex *ix, uint64_t *lsn,
		  uint64_t *count, uint64_t *bad_off);
#endif
