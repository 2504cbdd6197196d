/* meta.h — the metadata a mounted tree keeps in each entry's meta blob: type, permissions,
 * owner, times, device number. The value holds the file's bytes (a symlink's target; nothing
 * for directories and special files).
 *
 * On disk (version 1, 57 bytes, little-endian; docs/FILESYSTEM.md section 3 has the byte table):
 *   version u8 = 1, mode u32, uid u32, gid u32, rdev u64,
 *   atime_sec i64, atime_nsec u32, mtime_sec i64, mtime_nsec u32, ctime_sec i64, ctime_nsec u32
 * A blob longer than 57 bytes with version 1 is accepted and its tail ignored, so a later
 * version can append fields that older daemons leave alone. */
#ifndef KVFS_FS_META_H
#define KVFS_FS_META_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KVFS_META_VERSION 1
#define KVFS_META_LEN 57

struct kvfs_meta {
	uint32_t mode; /* S_IFMT type bits and permission bits, as in st_mode */
	uint32_t uid, gid;
	uint64_t rdev;
	struct timespec atime, mtime, ctime;
};

/* Encodes m into out; returns KVFS_META_LEN. */
size_t kvfs_meta_encode(const struct kvfs_meta *m, uint8_t out[KVFS_META_LEN]);
/* 0, or -EIO for a blob this version cannot read (too short, another version, a bad type or
 * nanoseconds out of range): such an entry is reported as damaged, never guessed at. An empty
 * blob is not decoded here: the caller supplies the defaults for keys written without one. */
int kvfs_meta_decode(const void *buf, size_t len, struct kvfs_meta *m);
#endif
