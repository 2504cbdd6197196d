/* logfmt.h — the bytes of a log segment, named once for the writer (wal.c) and the reader
 * (logread.c). Byte tables: docs/FORMAT.md §3.
 *
 * Segment file wal-<first LSN, 16 hex digits>.log, little-endian:
 *   header (32 bytes): magic "KVFSWAL\0" | version u32 | flags u32 | first_lsn u64 |
 *                      salt u32 | hdr_crc u32 over bytes 0..27
 *   records, back to back, each:
 *     head_crc u32  crc32c seeded with the segment's salt, over bytes 4..31 of the record
 *     len u32       payload bytes
 *     lsn u64
 *     base u64      the log's durable LSN when the record was written: every record up to it
 *                   had been fdatasync'd
 *     type u8 | flags u8 (0) | reserved u16 (0)
 *     body_crc u32  crc32c of the payload
 *     payload[len]
 *   (version 3: before a close mark, zeros up to the next LOG_BLOCK boundary of the file,
 *   unless the mark is the segment's first record; the mark's payload says where they start)
 *   then zeros (preallocated, unused) to the end of the file.
 *
 * Why two checksums: a reader that must find valid records after a bad one (to tell a torn tail
 * from damage) tries every byte offset. The head checksum rejects a candidate after its 32-byte head
 * instead of after its claimed length, and the salt, random per segment, makes a record image
 * inside a user's value (which never knows the salt) fail it: bytes a user wrote cannot pass
 * for a record.
 *
 * Why the base: records written but not yet synced may reach the disk in any order in a power
 * cut, so a bad record followed by a good one is not always damage. It is a hole in the last,
 * unsynced stretch unless a record after it says (by its base) that the bad one had been synced
 * before it was written; only then is it damage (model: tests/model/group_commit.pml). */
#ifndef KVFS_LOGFMT_H
#define KVFS_LOGFMT_H
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

#define SEG_MAGIC "KVFSWAL"       /* 7 characters and the terminating NUL: 8 bytes */
/* Version 3: the close mark starts on a new LOG_BLOCK (the bytes before it, up to the block's
 * start, are zeros) and carries records_end, so that it never shares a block with the records
 * it vouches for (docs/FORMAT.md §3.3, docs/DURABILITY.md 4.1b). Version 2 (an unpadded mark
 * without payload) is still read, and a version 2 segment holding records is never appended
 * to: the writer leaves it for a new segment at open. */
#define SEG_VERSION 3u
#define SEG_VERSION_UNPADDED 2u
#define LOG_BLOCK 4096u /* the unit of the padding: a page, the block a disk or cache loses whole */
#define MARK_PAYLOAD 8u /* a version 3 close mark's payload: records_end u64 */
#define SEG_HDR_SIZE 32u
#define SEG_OFF_MAGIC 0
#define SEG_OFF_VERSION 8
#define SEG_OFF_FLAGS 12
#define SEG_OFF_FIRST_LSN 16
#define SEG_OFF_SALT 24
#define SEG_OFF_CRC 28

#define REC_HDR_SIZE 32u
#define REC_OFF_HEAD_CRC 0
#define REC_OFF_LEN 4
#define REC_OFF_LSN 8
#define REC_OFF_BASE 16
#define REC_OFF_TYPE 24
#define REC_OFF_FLAGS 25
#define REC_OFF_RESERVED 26
#define REC_OFF_BODY_CRC 28

#define REC_TYPE_OPS 1u  /* payload: a batch of operations (record.h) */
#define REC_TYPE_MARK 2u /* written, and synced, when a store closes cleanly, so that its base
			  * vouches for every record before it (damage among them is then damage,
			  * never a torn tail). Payload: none in a version 2 segment; in version 3,
			  * records_end u64, the offset where the record before it ends (where the
			  * zeros that pad the mark to its block start; its own offset when none) */

/* A record's payload never exceeds this: one maximal write plus its chunk checksums, keys and
 * framing. It fits the u32 length field. */
#define REC_MAX_PAYLOAD (KV_MAX_WRITE + KV_MAX_WRITE / 1024 + (4u << 20))

struct seg_header {
	uint64_t first_lsn;
	uint32_t salt;
	uint32_t version; /* SEG_VERSION or SEG_VERSION_UNPADDED (decode); encode writes SEG_VERSION */
};

void seg_header_encode(uint8_t hdr[SEG_HDR_SIZE], const struct seg_header *h);
/* 0; -EBADMSG for a bad magic or checksum; -EPROTONOSUPPORT for a version other than 2 or 3, or
 * flags those versions do not know. The version is read only once the checksum is right: a flipped version
 * byte is damage, not another format. */
int seg_header_decode(const uint8_t hdr[SEG_HDR_SIZE], struct seg_header *h);

struct rec_header {
	uint32_t len;
	uint64_t lsn;
	uint64_t base;
	uint8_t type;
	uint32_t body_crc;
};

/* Fill in a record header (head checksum included) for a payload whose checksum is body_crc. */
void rec_header_encode(uint8_t hdr[REC_HDR_SIZE], uint32_t salt, const struct rec_header *h);
/* 1 when the head checksum (under salt) holds and flags and reserved are zero, else 0. Says
 * nothing of the payload. */
int rec_header_decode(const uint8_t hdr[REC_HDR_SIZE], uint32_t salt, struct rec_header *h);

void seg_name(char *buf, size_t len, uint64_t first_lsn);
int seg_parse_name(const char *name, uint64_t *first_lsn); /* 0 or -EINVAL */
#endif
