/* logread.h — reading log segments back: a segment through a sliding window, its header, its
 * records one after another, and the searches recovery needs after a bad record (is there any
 * valid record further on? where does the log go on?). The bytes are named in logfmt.h; what a
 * finding means (torn tail, damage) is recover.c's business.
 *
 * Work is counted: *crc_bytes grows by every byte checksummed, so tests can bound what a torn
 * tail costs (docs/FORMAT.md §7). */
#ifndef KVFS_LOGREAD_H
#define KVFS_LOGREAD_H
#include <stddef.h>
#include <stdint.h>

#include "kvio.h"
#include "logfmt.h"

/* A segment file read through a window that slides forward: replay reads each byte once, so
 * one reused buffer of a few MiB replaces reading 64 MiB segments whole. */
struct logseg {
	const struct kvio *io;
	int fd;
	uint64_t size;  /* the file's (lowered if it shrinks while being read) */
	uint8_t **buf;  /* the caller's, reused from file to file */
	size_t *cap;
	size_t chunk;   /* bytes to read ahead */
	uint64_t start; /* file offset of (*buf)[0] */
	size_t len;     /* bytes of the file in *buf */
};

#define LOGSEG_WINDOW (4u << 20)

int logseg_open(struct logseg *s, const struct kvio *io, const char *path, uint8_t **buf, size_t *cap,
		size_t chunk);
void logseg_close(struct logseg *s);
/* The header: 0, -EBADMSG (short, bad magic or checksum), -EPROTONOSUPPORT, or an I/O error. */
int logseg_header(struct logseg *s, struct seg_header *h);
/* The record at off, under the segment's salt: LOGREC_OK (*h and *payload set; the payload
 * stays valid until the next call), LOGREC_BODY_BAD (the same, but the payload fails body_crc:
 * the head checksum vouches for the framing, the bytes inside are damaged, torn or never
 * written: record.h rec_locate_damage and recover.c decide), LOGREC_NONE when there is no framed
 * record there, or a negative errno. */
enum { LOGREC_NONE = 0, LOGREC_OK = 1, LOGREC_BODY_BAD = 2 };
int logseg_record(struct logseg *s, uint64_t off, uint32_t salt, struct rec_header *h,
		  const uint8_t **payload, uint64_t *crc_bytes);
/* Are the file's bytes from off to its end all zero? */
int logseg_zero_from(struct logseg *s, uint64_t off, int *zero);
/* Are the file's bytes [off, end) (those of them it has) all zero? */
int logseg_zero_range(struct logseg *s, uint64_t off, uint64_t end, int *zero);

/* Searches over a whole segment in memory (buf, size bytes). salt_known: the segment's header
 * was good, so a record must pass the salted head checksum; else (a damaged header) a candidate
 * is judged by its LSN, length and body checksum alone. */
struct logsearch {
	const uint8_t *buf;
	uint64_t size;
	uint32_t salt;
	int salt_known;
	uint64_t *crc_bytes;
};
/* The offset of the first valid record at or after from whose LSN lies in [lo, hi], or size. */
uint64_t log_find(const struct logsearch *q, uint64_t from, uint64_t lo, uint64_t hi, uint64_t *lsn);
/* Is there a valid record at or after from that a writer could have appended after last_lsn? Its
 * LSN must be above last_lsn, and not further above it than records could fit in the bytes
 * before it. */
int log_any_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn);
/* The offset of the first such record, or size. */
uint64_t log_next_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn);
/* The same, counting only records whose base is at least last_lsn + 1: proof that the record
 * last_lsn + 1 had been synced before they were written (logfmt.h). A bad record that no later
 * record vouches for is a hole in the last unsynced stretch of the log, not damage. */
int log_vouched_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn);

/* The salt a valid record at off was written under (its head checksum tells it): what a
 * segment with a damaged header is read with. */
uint32_t log_salt_at(const struct logsearch *q, uint64_t off);

/* Read a whole file into a new buffer (*out, freed by the caller). */
int log_read_file(const struct kvio *io, const char *path, uint8_t **out, uint64_t *size);
#endif
