/* logread.c — reading log segments back (see logread.h).
 * Model: tests/model/group_commit.pml stands for log_vouched_after and log_next_after (which
 * records vouch for a bad one before them). */
#include "logread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"

int log_read_file(const struct kvio *io, const char *path, uint8_t **out, uint64_t *size)
{
	uint8_t *buf = NULL;
	int fd = -1, rc;
	size_t got;

	rc = io->open(io, path, O_RDONLY, 0, &fd);
	if (rc)
		return rc;
	rc = io->fsize(io, fd, size);
	if (rc)
		goto out;
	buf = malloc(*size ? (size_t)*size : 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = io->pread(io, fd, buf, (size_t)*size, 0, &got);
	if (!rc && got != *size)
		*size = got; /* shrank while reading: read what is there */
out:
	kvio_close_quiet(io, fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	return 0;
}

static int all_zero(const uint8_t *p, uint64_t n)
{
	uint64_t i = 0, w;

	for (; i + 8 <= n; i += 8) { /* a word at a time: tails of preallocated zeros are long */
		memcpy(&w, p + i, 8);
		if (w)
			return 0;
	}
	for (; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int logseg_open(struct logseg *s, const struct kvio *io, const char *path, uint8_t **buf, size_t *cap,
		size_t chunk)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->io = io;
	s->buf = buf;
	s->cap = cap;
	s->chunk = chunk;
	s->fd = -1;
	rc = io->open(io, path, O_RDONLY, 0, &s->fd);
	if (rc)
		return rc;
	rc = io->fsize(io, s->fd, &s->size);
	if (rc)
		logseg_close(s);
	return rc;
}

void logseg_close(struct logseg *s)
{
	kvio_close_quiet(s->io, s->fd);
	s->fd = -1;
}

/* Makes the file's bytes [off, off + n) (fewer at its end) readable at *p; *avail says how many
 * are there. off must not be past the end. */
static int window_at(struct logseg *s, uint64_t off, size_t n, const uint8_t **p, size_t *avail)
{
	if (n > s->size - off)
		n = (size_t)(s->size - off);
	/* (no buffer yet, as for an empty file, counts as a miss: *p must point somewhere) */
	if (!*s->buf || off < s->start || off + n > s->start + s->len) {
		size_t keep = 0, want = n > s->chunk ? n : s->chunk, got = 0;
		int rc;

		if (want > s->size - off)
			want = (size_t)(s->size - off);
		if (want > *s->cap || !*s->buf) {
			uint8_t *nb = realloc(*s->buf, want ? want : 1);

			if (!nb)
				return -ENOMEM;
			*s->buf = nb;
			*s->cap = want ? want : 1;
		}
		if (off >= s->start && off < s->start + s->len) { /* keep what is already here */
			keep = (size_t)(s->start + s->len - off);
			memmove(*s->buf, *s->buf + (off - s->start), keep);
		}
		rc = s->io->pread(s->io, s->fd, *s->buf + keep, want - keep, off + keep, &got);
		if (rc)
			return rc;
		s->start = off;
		s->len = keep + got;
		if (s->len < want)
			s->size = off + s->len; /* shrank while being read: read what is there */
	}
	*p = *s->buf + (off - s->start);
	*avail = (size_t)(s->start + s->len - off) < n ? (size_t)(s->start + s->len - off) : n;
	return 0;
}

int logseg_header(struct logseg *s, struct seg_header *h)
{
	const uint8_t *p;
	size_t avail;
	int rc = window_at(s, 0, SEG_HDR_SIZE, &p, &avail);
	if (rc)
		return rc;
	return avail < SEG_HDR_SIZE ? -EBADMSG : seg_header_decode(p, h);
}

int logseg_zero_from(struct logseg *s, uint64_t off, int *zero)
{
	return logseg_zero_range(s, off, UINT64_MAX, zero);
}

int logseg_zero_range(struct logseg *s, uint64_t off, uint64_t end, int *zero)
{
	*zero = 1;
	while (off < s->size && off < end) {
		const uint8_t *p;
		size_t avail;
		int rc = window_at(s, off, end - off < s->chunk ? (size_t)(end - off) : s->chunk, &p, &avail);

		if (rc)
			return rc;
		if (avail == 0)
			break;
		if (!all_zero(p, avail)) {
			*zero = 0;
			break;
		}
		off += avail;
	}
	return 0;
}

int logseg_record(struct logseg *s, uint64_t off, uint32_t salt, struct rec_header *h,
		  const uint8_t **payload, uint64_t *crc_bytes)
{
	const uint8_t *p;
	size_t avail;
	int rc = window_at(s, off, REC_HDR_SIZE, &p, &avail);

	if (rc)
		return rc;
	if (avail < REC_HDR_SIZE)
		return LOGREC_NONE;
	*crc_bytes += REC_HDR_SIZE - REC_OFF_LEN;
	if (!rec_header_decode(p, salt, h) || h->len > REC_MAX_PAYLOAD ||
	    h->len > s->size - off - REC_HDR_SIZE)
		return LOGREC_NONE;
	rc = window_at(s, off, REC_HDR_SIZE + (size_t)h->len, &p, &avail);
	if (rc)
		return rc;
	if (avail < REC_HDR_SIZE + (size_t)h->len)
		return LOGREC_NONE;
	*crc_bytes += h->len;
	*payload = p + REC_HDR_SIZE;
	return crc32c(0, p + REC_HDR_SIZE, h->len) == h->body_crc ? LOGREC_OK : LOGREC_BODY_BAD;
}

/* A valid record at off whose LSN lies in [lo, hi]? The LSN and the length are looked at before
 * any checksum: a run of 0x01 bytes, or of a value's bytes, almost never carries an LSN in range,
 * so almost no offset costs more than a few compares. */
static int candidate(const struct logsearch *q, uint64_t off, uint64_t lo, uint64_t hi, uint64_t *lsn,
		     uint64_t *base)
{
	const uint8_t *p = q->buf + off;
	struct rec_header h;

	if (q->size - off < REC_HDR_SIZE)
		return 0;
	uint64_t l = le_get64(p + REC_OFF_LSN);
	uint32_t len = le_get32(p + REC_OFF_LEN);
	if (l < lo || l > hi || len > REC_MAX_PAYLOAD || len > q->size - off - REC_HDR_SIZE)
		return 0;
	if (q->salt_known) {
		*q->crc_bytes += REC_HDR_SIZE - REC_OFF_LEN;
		if (!rec_header_decode(p, q->salt, &h))
			return 0;
	} else {
		h.body_crc = le_get32(p + REC_OFF_BODY_CRC);
	}
	*q->crc_bytes += len;
	if (crc32c(0, p + REC_HDR_SIZE, len) != h.body_crc)
		return 0;
	*lsn = l;
	*base = le_get64(p + REC_OFF_BASE);
	return 1;
}

uint64_t log_find(const struct logsearch *q, uint64_t from, uint64_t lo, uint64_t hi, uint64_t *lsn)
{
	uint64_t base;
	for (uint64_t off = from; off + REC_HDR_SIZE <= q->size; off++)
		if (candidate(q, off, lo, hi, lsn, &base))
			return off;
	return q->size;
}

/* A valid record at or after from that could follow last_lsn (above it, and not further above
 * it than records could fit in the bytes before it). With vouch, only one whose base says the
 * record last_lsn + 1 was durable before it was written counts. */
static int any_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn, int vouch)
{
	uint64_t lsn, base;
	for (uint64_t off = from; off + REC_HDR_SIZE <= q->size; off++)
		if (candidate(q, off, last_lsn + 1, last_lsn + 1 + off / REC_HDR_SIZE, &lsn, &base) &&
		    (!vouch || base >= last_lsn + 1))
			return 1;
	return 0;
}

uint64_t log_next_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn)
{
	uint64_t lsn, base;
	for (uint64_t off = from; off + REC_HDR_SIZE <= q->size; off++)
		if (candidate(q, off, last_lsn + 1, last_lsn + 1 + off / REC_HDR_SIZE, &lsn, &base))
			return off;
	return q->size;
}

int log_any_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn)
{
	return any_after(q, from, last_lsn, 0);
}

int log_vouched_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn)
{
	return any_after(q, from, last_lsn, 1);
}

uint32_t log_salt_at(const struct logsearch *q, uint64_t off)
{
	const uint8_t *p = q->buf + off;
	return crc32c_solve_seed(p + REC_OFF_LEN, REC_HDR_SIZE - REC_OFF_LEN, le_get32(p + REC_OFF_HEAD_CRC));
}
