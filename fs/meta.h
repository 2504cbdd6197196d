/* meta.h — the blobs the mounted tree keeps in each entry's metadata (the engine's meta field).
 *
 * Two kinds, told apart by their first byte (byte tables in docs/FORMAT.md, "The tree"):
 *   a node (format 2, 81 bytes; format 1, the first 57 of them, is still read): type and
 *     permissions, owner, device number, the three times, the link count of a node kept under
 *     an inode key, flags, a directory's spill id, and the inode number stat shows; a file
 *     with preallocated bytes (fallocate) has 32 more: its preallocated range, the bytes of it
 *     not yet written and the log bytes still promised to them (113 bytes in all);
 *   a link (format 3, 9 bytes): a name of a file with several names; the file itself (its
 *     node blob and its bytes) lives under the inode key "/inode/<id>" the link names.
 * All little-endian. A blob longer than its format's size is read and its tail ignored, so a
 * later version can append fields that older daemons leave alone. */
#ifndef KVFS_FS_META_H
#define KVFS_FS_META_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define KVFS_BLOB_NODE_V1 1
#define KVFS_BLOB_NODE 2
#define KVFS_BLOB_LINK 3
#define KVFS_META_V1_LEN 57
#define KVFS_META_BASE_LEN 81
#define KVFS_META_LEN 113 /* the longest: with the preallocation fields */
#define KVFS_LINK_LEN 9

/* flags */
#define KVFS_META_XATTRS 0x1u /* extended attributes are stored beside the node (layout.h) */

struct kvfs_meta {
	uint32_t mode; /* S_IFMT type bits and permission bits, as in st_mode */
	uint32_t uid, gid;
	uint64_t rdev;
	struct timespec atime, mtime, ctime;
	uint32_t nlink; /* names of a node kept under an inode key; 1 for any other node */
	uint32_t flags;
	uint64_t spill; /* a directory whose entries live under "/dir/<spill>/"; 0: under its key */
	uint64_t ino;   /* st_ino, for the node's whole life; 0: none stored yet (format 1) */
	/* Preallocation (fallocate; docs/FILESYSTEM.md §4): the range [pa_lo, pa_hi) holds
	 * pa_unwritten bytes never written since they were preallocated, and pa_promised log
	 * bytes the store promises their first writes (kv_promise). Stored only when pa_hi >
	 * pa_lo; all 0 otherwise. */
	uint64_t pa_lo, pa_hi, pa_unwritten, pa_promised;
};

/* Encodes m as a node blob into out; returns its length (KVFS_META_BASE_LEN, or KVFS_META_LEN
 * with a preallocated range). */
size_t kvfs_meta_encode(const struct kvfs_meta *m, uint8_t out[KVFS_META_LEN]);
/* Encodes a link to the file kept under inode id; returns KVFS_LINK_LEN. */
size_t kvfs_link_encode(uint64_t id, uint8_t out[KVFS_LINK_LEN]);

enum kvfs_blob { KVFS_BLOB_IS_NODE, KVFS_BLOB_IS_LINK };
/* Decodes a blob: a node into *m (nlink 1, flags, spill, ino 0 for format 1), or a link's inode
 * id into *link_id. Returns the kind, or -EIO for a blob this version cannot read (too short,
 * an unknown format, a bad type, nanoseconds out of range, a link to id 0): such an entry is
 * reported as damaged, never guessed at. An empty blob is not decoded here: the caller supplies
 * the defaults for keys written without one. */
int kvfs_blob_decode(const void *buf, size_t len, struct kvfs_meta *m, uint64_t *link_id);
#endif
