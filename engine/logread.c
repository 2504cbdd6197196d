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

/* What a search wants: a record whose LSN lies in [lo, hi] (hi + off / REC_HDR_SIZE when
 * hi_grows: no further above lo than records could fit in the bytes before it), and with vouch,
 * one whose base is at least lo (proof that the record lo was durable before it was written). */
struct want {
	uint64_t lo, hi;
	int hi_grows, vouch;
};

/* Could a record start at off, by its LSN and length alone? Only compares: a run of 0x01 bytes,
 * or of a value's bytes, almost never carries an LSN in range, so almost no offset costs more. */
static int plausible(const struct logsearch *q, uint64_t off, const struct want *w)
{
	const uint8_t *p = q->buf + off;

	if (q->size - off < REC_HDR_SIZE)
		return 0;
	uint64_t l = le_get64(p + REC_OFF_LSN);
	uint32_t len = le_get32(p + REC_OFF_LEN);
	uint64_t hi = w->hi_grows ? w->hi + off / REC_HDR_SIZE : w->hi;
	return l >= w->lo && l <= hi && len <= REC_MAX_PAYLOAD && len <= q->size - off - REC_HDR_SIZE;
}

/* The salt a record image at off implies: the seed its head checksum solves for. */
static uint32_t implied_salt(const struct logsearch *q, uint64_t off)
{
	const uint8_t *p = q->buf + off;

	*q->crc_bytes += REC_HDR_SIZE - REC_OFF_LEN;
	return crc32c_solve_seed(p + REC_OFF_LEN, REC_HDR_SIZE - REC_OFF_LEN, le_get32(p + REC_OFF_HEAD_CRC));
}

/* Is the plausible image at off a valid record under salt (head, then body checksum) that the
 * search wants? */
static int valid_under(const struct logsearch *q, uint64_t off, uint32_t salt, const struct want *w)
{
	struct rec_header h;

	*q->crc_bytes += REC_HDR_SIZE - REC_OFF_LEN;
	if (!rec_header_decode(q->buf + off, salt, &h))
		return 0;
	*q->crc_bytes += h.len;
	if (crc32c(0, q->buf + off + REC_HDR_SIZE, h.len) != h.body_crc)
		return 0;
	return !w->vouch || h.base >= w->lo;
}

/* With the salt unknown (a damaged segment header) the head checksum cannot reject an image,
 * and judging each plausible one by its body checksum alone costs the length it claims: a value
 * written as a run of record images made that quadratic in the segment's size (hours at 64 MiB).
 * The first record, whose place is fixed, gives the salt when it is whole. Else: the segment's
 * own records share one salt, which no user learns; each image implies a salt of
 * its own choosing. So a first pass finds the salts most images imply (Misra-Gries: any salt
 * implied by more than 1/(SALTS+1) of them is among the SALTS kept), and the second checks
 * heads and bodies only under those, each salt's checksummed bytes capped at the segment's size — more
 * than its genuine records can take, since they do not overlap. Work: two head checksums per
 * plausible offset (three) and at most SALTS segments of bodies. */
#define SALTS 8

struct salt_tally {
	uint32_t salt[SALTS];
	uint64_t count[SALTS], spent[SALTS];
	int n;
};

static void tally(struct salt_tally *t, uint32_t s)
{
	int i;

	for (i = 0; i < t->n; i++)
		if (t->salt[i] == s) {
			t->count[i]++;
			return;
		}
	if (t->n < SALTS) {
		t->salt[t->n] = s;
		t->count[t->n++] = 1;
		return;
	}
	for (i = 0; i < t->n; i++)
		t->count[i]--;
	for (i = 0; i < t->n;)
		if (t->count[i] == 0) {
			t->n--;
			t->salt[i] = t->salt[t->n];
			t->count[i] = t->count[t->n];
		} else {
			i++;
		}
}

/* The salt of the segment's first record, when that record is whole (a header damaged on its
 * own): 1 and *salt, or 0. Its place is fixed, right after the segment header. */
static int first_record_salt(const struct logsearch *q, uint32_t *salt)
{
	const struct want any = { .lo = 1, .hi = UINT64_MAX };

	if (q->size < SEG_HDR_SIZE + REC_HDR_SIZE || !plausible(q, SEG_HDR_SIZE, &any))
		return 0;
	*salt = implied_salt(q, SEG_HDR_SIZE);
	return valid_under(q, SEG_HDR_SIZE, *salt, &any);
}

static uint64_t search_salted(const struct logsearch *q, uint32_t salt, uint64_t from,
			      const struct want *w, uint64_t *lsn)
{
	for (uint64_t off = from; off + REC_HDR_SIZE <= q->size; off++)
		if (plausible(q, off, w) && valid_under(q, off, salt, w)) {
			*lsn = le_get64(q->buf + off + REC_OFF_LSN);
			return off;
		}
	return q->size;
}

static uint64_t search_unsalted(const struct logsearch *q, uint64_t from, const struct want *w,
				uint64_t *lsn)
{
	struct salt_tally t = { .n = 0 };
	uint32_t first;
	uint64_t off;

	if (first_record_salt(q, &first))
		return search_salted(q, first, from, w, lsn);
	/* The salts are tallied over every image that could be a record after w->lo, not only
	 * over the wanted window: a search for the few LSNs before a checkpoint's next would tally
	 * as many false images (a record's base read as an LSN) as genuine ones, and the later
	 * records, which share the salt, outvote them. */
	const struct want later = { .lo = w->lo, .hi = w->lo, .hi_grows = 1 };
	for (off = from; off + REC_HDR_SIZE <= q->size; off++)
		if (plausible(q, off, w) || plausible(q, off, &later))
			tally(&t, implied_salt(q, off));
	memset(t.spent, 0, sizeof(t.spent));
	for (off = from; off + REC_HDR_SIZE <= q->size; off++) {
		if (!plausible(q, off, w))
			continue;
		uint32_t s = implied_salt(q, off);
		uint64_t len = le_get32(q->buf + off + REC_OFF_LEN);
		for (int i = 0; i < t.n; i++) {
			if (t.salt[i] != s || t.spent[i] + len > q->size)
				continue;
			t.spent[i] += len;
			if (valid_under(q, off, s, w)) {
				*lsn = le_get64(q->buf + off + REC_OFF_LSN);
				return off;
			}
		}
	}
	return q->size;
}

/* The first valid record at or after from that the search wants, or size. */
static uint64_t search(const struct logsearch *q, uint64_t from, const struct want *w, uint64_t *lsn)
{
	return q->salt_known ? search_salted(q, q->salt, from, w, lsn) : search_unsalted(q, from, w, lsn);
}

uint64_t log_find(const struct logsearch *q, uint64_t from, uint64_t lo, uint64_t hi, uint64_t *lsn)
{
	const struct want w = { .lo = lo, .hi = hi };
	return search(q, from, &w, lsn);
}

uint64_t log_next_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn)
{
	const struct want w = { .lo = last_lsn + 1, .hi = last_lsn + 1, .hi_grows = 1 };
	uint64_t lsn;
	return search(q, from, &w, &lsn);
}

int log_any_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn)
{
	return log_next_after(q, from, last_lsn) < q->size;
}

int log_vouched_after(const struct logsearch *q, uint64_t from, uint64_t last_lsn)
{
	const struct want w = { .lo = last_lsn + 1, .hi = last_lsn + 1, .hi_grows = 1, .vouch = 1 };
	uint64_t lsn;
	return search(q, from, &w, &lsn) < q->size;
}

uint32_t log_salt_at(const struct logsearch *q, uint64_t off)
{
	const uint8_t *p = q->buf + off;
	return crc32c_solve_seed(p + REC_OFF_LEN, REC_HDR_SIZE - REC_OFF_LEN, le_get32(p + REC_OFF_HEAD_CRC));
}
