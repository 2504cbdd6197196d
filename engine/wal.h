/* wal.h — the log: append records, make them durable with group commit, rotate preallocated
 * segment files. Reading segments back is logread.c's job; the bytes are named in logfmt.h.
 *
 * A record is written to its segment (the page cache) before wal_append returns: readers find
 * value bytes in the file at once, and a flush only has to fdatasync. Group commit shares that
 * fdatasync among every caller waiting for it.
 *
 * Thread safety: every function but wal_close may be called from any thread. Appends must be
 * serialised by the caller when their order matters beyond LSN order (the store holds its apply
 * lock so that LSN order is index order). */
#ifndef KVFS_WAL_H
#define KVFS_WAL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "apply.h"
#include "kvio.h"
#include "segtab.h"

struct wal;

struct wal_stats {
	uint64_t last_lsn, durable_lsn;
	uint64_t appended_bytes; /* log bytes appended since open, padding included (monotonic) */
	uint64_t pad_bytes;      /* of which zeros that start a close mark on a new block */
	uint64_t flushes, fdatasyncs;
	uint64_t seg_first_lsn;  /* the segment being appended to */
	uint64_t seg_reserved;   /* its preallocated size */
	uint64_t seg_end;        /* the end of its last record */
	int error;
};

/* Where recovery left the log: continue segment first_lsn (whose header carries salt and
 * version) at byte end, already cut to its valid end. A version 2 segment holding records is
 * not continued: the log moves on to a new (version 3) segment at once. */
struct wal_resume {
	uint64_t first_lsn, end;
	uint32_t salt, version;
};

/* Called from the background flusher when a flush fails (the error is sticky anyway). */
typedef void (*wal_error_fn)(void *arg, int err);

/* Open the log for appending; next_lsn is the LSN the next record gets. With resume, continue
 * that segment; else start a new segment named next_lsn. New segments are added to segs. */
int wal_open(struct wal **out, const struct kvio *io, const char *dir, uint64_t segment_bytes,
	     uint64_t next_lsn, const struct wal_resume *resume, struct segtab *segs);
/* In batch mode: flush in the background at most commit_ms after the first unflushed append. */
int wal_start_flusher(struct wal *w, unsigned commit_ms, wal_error_fn on_error, void *arg);
/* Write one record (payload: iov, len bytes, crc32c body_crc) at the end of the log; returns
 * with it in the file, not yet durable, right after the record before it (no padding: only
 * wal_mark pads). *loc gets where its payload starts. -EROFS after a failed
 * write or sync, -ENOSPC or -EDQUOT when a new segment cannot be preallocated (nothing logged, not
 * sticky),
 * -EFBIG. */
int wal_append(struct wal *w, uint8_t type, const struct iovec *iov, int iovcnt, uint64_t len,
	       uint32_t body_crc, uint64_t *lsn_out, struct rec_loc *loc);
/* Make every record durable, then append a close mark (REC_TYPE_MARK) vouching for them and
 * make it durable too; in a version 3 segment the mark starts a new LOG_BLOCK and its payload
 * says where the records before it end (docs/FORMAT.md §3.3) — in the current segment, grown
 * by the mark's padding, header and payload when its
 * preallocation lacks them and the disk has the room (no segment is made for a mark: on a full
 * disk there may be no room for one; then there is no mark). */
int wal_mark(struct wal *w);
/* New segments no bigger than cap bytes (0: segment_bytes), still big enough for the record
 * that needs one: while the space reserve is lent, a segment must not swallow the room the
 * checkpoint that frees space needs. */
void wal_set_segment_cap(struct wal *w, uint64_t cap);
/* 1 when a record of len payload bytes fits the current segment's preallocated room (no new
 * disk space taken). */
int wal_fits(struct wal *w, uint64_t len);
/* Return once every record up to lsn is durable, sharing one fdatasync with every concurrent
 * caller; or the sticky error of a failed write or fdatasync. */
int wal_sync(struct wal *w, uint64_t lsn);
void wal_get_stats(struct wal *w, struct wal_stats *st);
/* Flush (unless the log failed), stop the flusher, trim the preallocation, close. Returns the
 * flush result. */
int wal_close(struct wal *w);
#endif
