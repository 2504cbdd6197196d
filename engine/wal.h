/* wal.h — the write-ahead log: append records to an in-memory buffer, make them durable with
 * group commit, rotate preallocated segment files, drop segments a snapshot covers.
 * Reading segments back is recover.c's job; the format is shared through the definitions here.
 *
 * Thread safety: every function but wal_close may be called from any thread. Appends must be
 * serialised by the caller when their order matters beyond LSN order (the store holds its apply
 * lock so that LSN order is index order).
 *
 * Segment file wal-<first LSN, 16 hex digits>.log, little-endian (docs/FORMAT.md):
 *   header (32 bytes): magic "KVFSWAL\0" | version u32 | flags u32 | first_lsn u64 |
 *                      reserved u32 | crc32c u32 over bytes 0..27
 *   records: crc32c u32 over the rest of the record | len u32 payload bytes | lsn u64 |
 *            type u8 | payload[len]
 *   then zeros (preallocated, unused) to the end of the file. */
#ifndef KVFS_WAL_H
#define KVFS_WAL_H
#include <stddef.h>
#include <stdint.h>
#include "index.h"
#include "kvio.h"

#define WAL_MAGIC "KVFSWAL"        /* 7 characters and the terminating NUL: 8 bytes */
#define WAL_VERSION 1u
#define WAL_HDR_SIZE 32u
#define REC_HDR_SIZE 17u
#define REC_TYPE_OPS 1u            /* payload: a batch of operations (record.h) */
/* A record payload never exceeds this: one maximal value plus keys and framing. */
#define REC_MAX_PAYLOAD (KV_MAX_VALUE + (1u << 20))

struct wal;

struct wal_stats {
	uint64_t last_lsn, durable_lsn;
	uint64_t appended_bytes; /* record bytes appended since open (monotonic) */
	uint64_t flushes, fdatasyncs;
	uint64_t segments;
	int error;
};

/* Called from the background flusher when a flush fails (the error is sticky anyway). */
typedef void (*wal_error_fn)(void *arg, int err);

/* Open the log for appending; next_lsn is the LSN the next record gets. Continue the segment
 * resume_first_lsn at byte resume_end (already cut to its valid end by recovery), or with
 * resume_end 0 start a new segment named next_lsn. Older segments in dir are adopted for
 * wal_remove_covered. */
int wal_open(struct wal **out, const struct kvio *io, const char *dir, uint64_t segment_bytes,
	     uint64_t next_lsn, uint64_t resume_first_lsn, uint64_t resume_end);
/* In batch mode: flush in the background at most commit_ms after the first unflushed append. */
int wal_start_flusher(struct wal *w, unsigned commit_ms, wal_error_fn on_error, void *arg);
/* Buffer one record; returns before anything is written. -EROFS after a failed flush,
 * -ENOSPC when a new segment cannot be preallocated (nothing logged, not sticky), -EFBIG. */
int wal_append(struct wal *w, uint8_t type, const void *payload, size_t len, uint64_t *lsn_out);
/* Return once every record up to lsn is durable, sharing one write+fdatasync with every
 * concurrent caller; or the sticky error of a failed write or fdatasync. */
int wal_sync(struct wal *w, uint64_t lsn);
/* True when so much is buffered that the appender should flush (bounds memory in none mode). */
int wal_should_drain(struct wal *w);
/* Delete segments whose every record has an LSN <= lsn (the snapshot covers them). */
int wal_remove_covered(struct wal *w, uint64_t lsn);
void wal_get_stats(struct wal *w, struct wal_stats *st);
/* Flush (unless the log failed), stop the flusher, trim the preallocation, close. Returns the
 * flush result. */
int wal_close(struct wal *w);

/* Naming and headers, shared with recovery. */
void wal_segment_name(char *buf, size_t len, uint64_t first_lsn);
int wal_parse_segment_name(const char *name, uint64_t *first_lsn); /* 0 or -EINVAL */
void wal_encode_header(uint8_t hdr[WAL_HDR_SIZE], uint64_t first_lsn);
/* 0, or -EBADMSG for a bad magic/crc, -EPROTONOSUPPORT for an unknown version. */
int wal_decode_header(const uint8_t hdr[WAL_HDR_SIZE], uint64_t *first_lsn);
#endif
