/* recover.c — scan a store directory and plan what recovery changes (see recover.h).
 *
 * The rules (docs/FORMAT.md, "Reading the log back"):
 * - The newest snapshot must be whole; any damage in it is damage.
 * - Records must carry consecutive LSNs from the snapshot on; a segment must start where the
 *   one before it ended. A gap is damage.
 * - A bad record (short, bad length, bad CRC) with nothing valid after it in the log is a torn
 *   tail: cut off and reported. Zeros after the last record are unused preallocation: also cut,
 *   reported as zeros. A bad record with a valid record anywhere after it is damage.
 * - A CRC-valid record whose payload does not parse is damage. */
#include "recover.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "crc32c.h"
#include "le.h"
#include "record.h"
#include "snapshot.h"
#include "wal.h"

struct seg {
	uint64_t first_lsn;
	char name[32];
};

struct rplan {
	uint64_t next_lsn;
	uint64_t wal_bytes;
	/* the segment appends continue in, cut to its valid end */
	int have_resume;
	uint64_t resume_first, resume_end, resume_size;
	/* files removed on commit: empty trailing segments, snapshot temporaries */
	char **remove;
	size_t n_remove;
	/* files set aside on commit (salvage) */
	char **aside;
	size_t n_aside;
	/* segments whose records recovery replayed or skipped over: fdatasync'd on commit, since a
	 * killed process may have left their last records in the page cache only */
	char **sync;
	size_t n_sync;
	/* files only the newest snapshot's predecessors needed: removed on commit, once the
	 * directory fsync has made that snapshot's name durable */
	char **covered;
	size_t n_covered;
	/* a damaged segment whose valid prefix is kept: copied aside, then cut to the prefix */
	int rewrite;
	uint64_t rewrite_first;
	int salvage; /* planned in salvage mode */
};

static int name_push(char ***list, size_t *n, const char *name)
{
	char **a = realloc(*list, (*n + 1) * sizeof(**list));
	if (!a)
		return -ENOMEM;
	*list = a;
	a[*n] = strdup(name);
	if (!a[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct seg *)a)->first_lsn, y = ((const struct seg *)b)->first_lsn;
	return x < y ? -1 : x > y;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* Read a whole file into a new buffer (*out, freed by the caller). Only the rare paths use it
 * (a damaged or torn segment, salvage): replay reads through a window (below). */
static int read_file(const struct kvio *io, const char *path, uint8_t **out, uint64_t *size)
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
	if (fd >= 0) {
		int crc = io->close(io, fd);
		(void)crc; /* read-only: nothing to lose */
	}
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

/* A segment read through a window that slides forward. Replay reads each byte once, so one
 * reused buffer of a few MiB replaces reading 64 MiB segments whole: a fresh 64 MiB buffer
 * costs a page fault per 4 KiB, and its bytes fall out of the cache before they are applied. */
#define WINDOW_BYTES (4u << 20)

struct window {
	const struct kvio *io;
	int fd;
	uint64_t size;  /* the file's (lowered if it shrinks while being read) */
	uint8_t **buf;  /* the caller's, reused from file to file */
	size_t *cap;
	size_t chunk;   /* bytes to read ahead */
	uint64_t start; /* file offset of (*buf)[0] */
	size_t len;     /* bytes of the file in *buf */
};

static int window_open(struct window *w, const struct kvio *io, const char *path, uint8_t **buf,
		       size_t *cap, size_t chunk)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->io = io;
	w->buf = buf;
	w->cap = cap;
	w->chunk = chunk;
	w->fd = -1;
	rc = io->open(io, path, O_RDONLY, 0, &w->fd);
	if (rc)
		return rc;
	return io->fsize(io, w->fd, &w->size);
}

static void window_close(struct window *w)
{
	if (w->fd >= 0) {
		int crc = w->io->close(w->io, w->fd);
		(void)crc; /* read-only: nothing to lose */
	}
	w->fd = -1;
}

/* Makes the file's bytes [off, off + n) (fewer at its end) readable at *p; *avail says how
 * many are there. off must not be past the end. */
static int window_at(struct window *w, uint64_t off, size_t n, const uint8_t **p, size_t *avail)
{
	if (n > w->size - off)
		n = (size_t)(w->size - off);
	/* (no buffer yet, as for an empty file, counts as a miss: *p must point somewhere) */
	if (!*w->buf || off < w->start || off + n > w->start + w->len) {
		size_t keep = 0, want = n > w->chunk ? n : w->chunk, got = 0;
		int rc;

		if (want > w->size - off)
			want = (size_t)(w->size - off);
		if (want > *w->cap || !*w->buf) {
			uint8_t *nb = realloc(*w->buf, want ? want : 1);

			if (!nb)
				return -ENOMEM;
			*w->buf = nb;
			*w->cap = want ? want : 1;
		}
		if (off >= w->start && off < w->start + w->len) { /* keep what is already here */
			keep = (size_t)(w->start + w->len - off);
			memmove(*w->buf, *w->buf + (off - w->start), keep);
		}
		rc = w->io->pread(w->io, w->fd, *w->buf + keep, want - keep, off + keep, &got);
		if (rc)
			return rc;
		w->start = off;
		w->len = keep + got;
		if (w->len < want)
			w->size = off + w->len; /* shrank while being read: read what is there */
	}
	*p = *w->buf + (off - w->start);
	*avail = (size_t)(w->start + w->len - off) < n ? (size_t)(w->start + w->len - off) : n;
	return 0;
}

/* Are the file's bytes from off to its end all zero? */
static int window_zero_from(struct window *w, uint64_t off, int *zero)
{
	*zero = 1;
	while (off < w->size) {
		const uint8_t *p;
		size_t avail;
		int rc = window_at(w, off, w->chunk, &p, &avail);

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

/* The header at off fits: enough bytes for it, a non-zero type, a length within the file. */
static int header_fits(const uint8_t *buf, uint64_t size, uint64_t off)
{
	if (size - off < REC_HDR_SIZE || buf[off + 16] == 0)
		return 0;
	uint32_t l = le_get32(buf + off + 4);
	return l <= REC_MAX_PAYLOAD && l <= size - off - REC_HDR_SIZE;
}

/* Cheap checks of a candidate record at off, before any CRC: it fits, its type is one a writer
 * could use, its LSN lies in [lo, hi]. Checking the LSN before the CRC is what keeps a search
 * over every byte offset of a torn region linear: a run of 0x01 bytes, or of a value's bytes,
 * almost never carries an LSN in range, so almost no offset costs a CRC over its claimed length. */
static int header_plausible(const uint8_t *buf, uint64_t size, uint64_t off, uint64_t lo, uint64_t hi)
{
	if (size - off < REC_HDR_SIZE || buf[off + 16] > 15)
		return 0;
	uint64_t lsn = le_get64(buf + off + 8);
	return lsn >= lo && lsn <= hi && header_fits(buf, size, off);
}

/* A record at off that passes every check but the LSN: length fits, type known, CRC right.
 * *crc_bytes counts the bytes checksummed (recovery's work, bounded in the tests). */
static int record_at(const uint8_t *buf, uint64_t size, uint64_t off, uint64_t *lsn, uint32_t *len,
		     uint64_t *crc_bytes)
{
	if (!header_fits(buf, size, off))
		return 0;
	uint32_t l = le_get32(buf + off + 4);
	*crc_bytes += REC_HDR_SIZE - 4 + (uint64_t)l;
	if (crc32c(0, buf + off + 4, REC_HDR_SIZE - 4 + (size_t)l) != le_get32(buf + off))
		return 0;
	*lsn = le_get64(buf + off + 8);
	*len = l;
	return 1;
}

/* record_at for the record at off of a window's file. */
static int window_record(struct window *w, uint64_t off, uint64_t *lsn, uint32_t *len, const uint8_t **rec,
			 uint64_t *crc_bytes)
{
	const uint8_t *p;
	size_t avail;
	int rc = window_at(w, off, REC_HDR_SIZE, &p, &avail);

	if (rc)
		return rc;
	if (avail < REC_HDR_SIZE)
		return 0;
	uint32_t l = le_get32(p + 4);
	if (l > REC_MAX_PAYLOAD || l > w->size - off - REC_HDR_SIZE)
		return 0;
	rc = window_at(w, off, REC_HDR_SIZE + (size_t)l, &p, &avail);
	if (rc)
		return rc;
	*rec = p;
	return record_at(p, avail, 0, lsn, len, crc_bytes);
}

/* The offset of the first record in buf[from..) whose LSN lies in [lo, hi] and that passes
 * every check, or size when there is none. */
static uint64_t find_record(const uint8_t *buf, uint64_t size, uint64_t from, uint64_t lo, uint64_t hi,
			    uint64_t *lsn_out, uint64_t *crc_bytes)
{
	for (uint64_t off = from; off + REC_HDR_SIZE <= size; off++) {
		uint64_t lsn;
		uint32_t len;
		if (header_plausible(buf, size, off, lo, hi) &&
		    record_at(buf, size, off, &lsn, &len, crc_bytes)) {
			*lsn_out = lsn;
			return off;
		}
	}
	return size;
}

/* Is there any record in buf[from..) that a writer could have appended after last_lsn? Its
 * LSN must be one that could follow: above last_lsn, and not further above it than records
 * could fit in the bytes before it. (A torn value that happens to contain an image of a log
 * record in that LSN range would still count; see docs/FORMAT.md.) */
static int valid_record_after(const uint8_t *buf, uint64_t size, uint64_t from, uint64_t last_lsn,
			      uint64_t *crc_bytes)
{
	for (uint64_t off = from; off + REC_HDR_SIZE <= size; off++) {
		uint64_t lsn;
		uint32_t len;
		if (header_plausible(buf, size, off, last_lsn + 1, last_lsn + 1 + off / REC_HDR_SIZE) &&
		    record_at(buf, size, off, &lsn, &len, crc_bytes))
			return 1;
	}
	return 0;
}

struct scan {
	const struct kvio *io;
	const char *dir;
	enum recovery_mode mode;
	struct kvindex *ix;
	struct rplan *plan;
	struct kv_report *rep;
	struct seg *segs;
	size_t nsegs;
	uint8_t *buf;       /* segment contents, reused from segment to segment */
	size_t cap;
	uint64_t last_lsn;  /* LSN of the last record seen (applied or covered) */
	uint64_t expected;  /* next LSN to apply */
};

/* Is the next record in sequence one the snapshot already holds? */
static int in_covered(const struct scan *sc)
{
	return sc->last_lsn + 1 < sc->expected;
}

/* Does segment sg hold anything valid at all (a good header or a valid record)? */
static int segment_has_content(struct scan *sc, const struct seg *sg, uint64_t last_lsn, int *has)
{
	char path[PATH_MAX];
	uint8_t *buf = NULL;
	size_t cap = 0;
	uint64_t size, first;
	snprintf(path, sizeof(path), "%s/%s", sc->dir, sg->name);

	/* The usual case, the next segment of a healthy log, is told by its first record alone
	 * instead of reading all of it. */
	struct window w;
	const uint8_t *p, *rec;
	size_t avail;
	uint64_t lsn;
	uint32_t len;
	int next = 0, rc = window_open(&w, sc->io, path, &buf, &cap, 64u << 10);
	if (!rc)
		rc = window_at(&w, 0, WAL_HDR_SIZE, &p, &avail);
	if (!rc && avail == WAL_HDR_SIZE && wal_decode_header(p, &first) == 0 &&
	    first == last_lsn + 1) {
		rc = window_record(&w, WAL_HDR_SIZE, &lsn, &len, &rec, &sc->rep->bytes_checksummed);
		next = rc == 1 && lsn == first;
	}
	window_close(&w);
	free(buf);
	if (rc < 0)
		return rc;
	if (next) {
		*has = 1;
		return 0;
	}
	rc = read_file(sc->io, path, &buf, &size);
	if (rc)
		return rc;
	*has = 0;
	if (size >= WAL_HDR_SIZE && wal_decode_header(buf, &first) == 0) {
		/* a header alone, naming exactly the next LSN, is a segment created just before the
		 * crash: nothing in it was ever acknowledged */
		*has = valid_record_after(buf, size, WAL_HDR_SIZE, last_lsn, &sc->rep->bytes_checksummed) ||
		       first != last_lsn + 1;
	} else {
		*has = valid_record_after(buf, size, 0, last_lsn, &sc->rep->bytes_checksummed);
	}
	free(buf);
	return 0;
}

/* Does anything after segs[i] (from segment i + 1 on) hold a record after last_lsn? */
static int later_segments_have_content(struct scan *sc, size_t i, uint64_t last_lsn, int *has)
{
	*has = 0;
	for (size_t j = i + 1; !*has && j < sc->nsegs; j++) {
		int rc = segment_has_content(sc, &sc->segs[j], last_lsn, has);
		if (rc)
			return rc;
	}
	return 0;
}

static void report_damage(struct kv_report *rep, enum recovery_mode mode, const char *dir,
			  const char *file, uint64_t off, const char *why)
{
	rep->damaged = 1;
	snprintf(rep->damage_file, sizeof(rep->damage_file), "%s", file);
	rep->damage_offset = off;
	if (mode == RECOVER_STRICT)
		snprintf(rep->message, sizeof(rep->message),
			 "%s/%s: damaged at offset %" PRIu64 " (%s); the store refuses to open: run "
			 "'kv_cli --salvage %s' to keep everything before the damage and set the rest aside",
			 dir, file, off, why, dir);
	else
		snprintf(rep->message, sizeof(rep->message), "%s/%s: damaged at offset %" PRIu64 " (%s)",
			 dir, file, off, why);
}

/* Damage in records the snapshot already holds: reported, never needed, so it neither blocks
 * the open nor costs a record after it. The first such place is the one reported. */
static void report_covered_damage(struct scan *sc, size_t i, uint64_t off)
{
	if (sc->rep->covered_damage++)
		return;
	snprintf(sc->rep->covered_file, sizeof(sc->rep->covered_file), "%s", sc->segs[i].name);
	sc->rep->covered_offset = off;
}

/* Damage at segs[i] offset off: strict refuses; salvage keeps the prefix and sets aside
 * segment i (rewriting its valid prefix when there is one) and everything after it. */
static int on_damage(struct scan *sc, size_t i, uint64_t off, uint64_t valid_end, const char *why)
{
	int rc;
	report_damage(sc->rep, sc->mode, sc->dir, sc->segs[i].name, off, why);
	if (sc->mode == RECOVER_STRICT)
		return -EUCLEAN;
	for (size_t j = i; j < sc->nsegs; j++) {
		rc = name_push(&sc->plan->aside, &sc->plan->n_aside, sc->segs[j].name);
		if (rc)
			return rc;
	}
	if (valid_end > WAL_HDR_SIZE) {
		sc->plan->rewrite = 1;
		sc->plan->rewrite_first = sc->segs[i].first_lsn;
		sc->plan->have_resume = 1;
		sc->plan->resume_first = sc->segs[i].first_lsn;
		sc->plan->resume_end = valid_end;
		sc->plan->resume_size = UINT64_MAX; /* cut to valid_end once the copy is aside */
	}
	return 0;
}

/* The offset and length of the non-zero bytes in buf[off, size): where a torn tail really ends
 * (the preallocated zeros after it are not part of it). */
static uint64_t nonzero_extent(const uint8_t *buf, uint64_t size, uint64_t off)
{
	uint64_t end = size;
	while (end > off && buf[end - 1] == 0)
		end--;
	return end - off;
}

/* Bytes from off on in segs[i] (size bytes, buf; NULL when they are all zeros) are not a
 * valid record. Decide: torn tail (plan the cut), unused preallocation before the next segment
 * (continue), or damage. */
static int on_bad_record(struct scan *sc, size_t i, const uint8_t *buf, uint64_t size, uint64_t off,
			 int *stop)
{
	int later = 0, rc;
	int zeros = !buf || all_zero(buf + off, size - off); /* no buf: the caller found zeros */

	*stop = 1;
	if (!zeros)
		later = valid_record_after(buf, size, off + 1, sc->last_lsn, &sc->rep->bytes_checksummed);
	for (size_t j = i + 1; !later && j < sc->nsegs; j++) {
		rc = segment_has_content(sc, &sc->segs[j], sc->last_lsn, &later);
		if (rc)
			return rc;
		if (later && zeros && j == i + 1 && off >= WAL_HDR_SIZE) {
			/* zeros then a following segment: the preallocated end of a full segment */
			*stop = 0;
			sc->plan->have_resume = 1;
			sc->plan->resume_first = sc->segs[i].first_lsn;
			sc->plan->resume_end = off;
			sc->plan->resume_size = size;
			return 0;
		}
	}
	if (later)
		return on_damage(sc, i, off, off, "a bad record followed by valid records");

	/* A tail: cut here, drop later segments (they hold nothing). */
	if (size > off) {
		sc->rep->tail_bytes_cut += size - off;
		sc->rep->tail_offset = off;
		snprintf(sc->rep->tail_file, sizeof(sc->rep->tail_file), "%s", sc->segs[i].name);
		if (!zeros) {
			sc->rep->tail_torn = 1;
			sc->rep->tail_torn_bytes = nonzero_extent(buf, size, off);
			snprintf(sc->rep->message, sizeof(sc->rep->message),
				 "%s/%s: torn tail of %" PRIu64 " bytes at offset %" PRIu64
				 " cut off (a write in progress at the crash, or damage to the last record)",
				 sc->dir, sc->segs[i].name, sc->rep->tail_torn_bytes, off);
		}
	}
	for (size_t j = i + 1; j < sc->nsegs; j++) {
		rc = name_push(&sc->plan->remove, &sc->plan->n_remove, sc->segs[j].name);
		if (rc)
			return rc;
	}
	if (off < WAL_HDR_SIZE) {
		/* not even a header survived: the segment goes, the previous one continues */
		return name_push(&sc->plan->remove, &sc->plan->n_remove, sc->segs[i].name);
	}
	sc->plan->have_resume = 1;
	sc->plan->resume_first = sc->segs[i].first_lsn;
	sc->plan->resume_end = off;
	sc->plan->resume_size = size;
	return 0;
}

/* The bytes from off on in segs[i] are not a valid record: on_bad_record decides, reading the
 * segment whole only when they are not all zeros (a torn tail or damage, both rare). */
static int bad_record_in(struct scan *sc, size_t i, struct window *w, const char *path, uint64_t off,
			 int *stop)
{
	uint8_t *whole = NULL;
	uint64_t size;
	int zero, rc = window_zero_from(w, off, &zero);

	if (rc)
		return rc;
	if (zero)
		return on_bad_record(sc, i, NULL, w->size, off, stop);
	rc = read_file(sc->io, path, &whole, &size);
	if (rc)
		return rc;
	rc = on_bad_record(sc, i, whole, size, off < size ? off : size, stop);
	free(whole);
	return rc;
}

/* Damage at off of segs[i] (the segment header, or a record) where the records in sequence are
 * ones the snapshot holds. Find where the log goes on: the first valid record at or after from
 * whose LSN is above the last one seen and at most the first one the snapshot lacks. *next_off
 * gets its offset (then scanning resumes there), or 0 with *stop set when there is none: then
 * either nothing after the snapshot was ever logged (the log ends here), or records the
 * snapshot lacks are missing, which is damage. */
static int resync_covered(struct scan *sc, size_t i, const char *path, uint64_t damage_off, uint64_t from,
			  uint64_t *next_off, int *stop)
{
	uint8_t *whole = NULL;
	uint64_t size, lsn = 0;
	int later = 0, rc;

	report_covered_damage(sc, i, damage_off);
	*next_off = 0;
	*stop = 0;
	rc = read_file(sc->io, path, &whole, &size);
	if (rc)
		return rc;
	uint64_t at = from < size ? find_record(whole, size, from, sc->last_lsn + 1, sc->expected, &lsn,
						&sc->rep->bytes_checksummed)
				  : size;
	if (at < size) {
		sc->last_lsn = lsn - 1;
		*next_off = at;
		goto out;
	}
	*stop = 1;
	later = from < size && valid_record_after(whole, size, from, sc->expected - 1,
						  &sc->rep->bytes_checksummed);
	if (!later) {
		rc = later_segments_have_content(sc, i, sc->expected - 1, &later);
		if (rc)
			goto out;
	}
	if (later) {
		rc = on_damage(sc, i, damage_off, 0, "records after the snapshot are missing");
		goto out;
	}
	/* The log ends before anything the snapshot lacks: appends go to a new segment. */
	for (size_t j = i + 1; j < sc->nsegs; j++) {
		rc = name_push(&sc->plan->remove, &sc->plan->n_remove, sc->segs[j].name);
		if (rc)
			goto out;
	}
out:
	free(whole);
	return rc;
}

/* Replay one segment. *stop set when the log ends (tail or damage) inside it. */
static int scan_segment(struct scan *sc, size_t i, int *stop)
{
	char path[PATH_MAX];
	struct window w;
	const uint8_t *p;
	size_t avail;
	uint64_t first, off;
	int rc;

	*stop = 0;
	snprintf(path, sizeof(path), "%s/%s", sc->dir, sc->segs[i].name);
	rc = name_push(&sc->plan->sync, &sc->plan->n_sync, sc->segs[i].name);
	if (!rc)
		rc = window_open(&w, sc->io, path, &sc->buf, &sc->cap, WINDOW_BYTES);
	if (!rc)
		rc = window_at(&w, 0, WAL_HDR_SIZE, &p, &avail);
	if (rc)
		goto out;
	int hrc = avail < WAL_HDR_SIZE ? -EBADMSG : wal_decode_header(p, &first);
	if (hrc == -EPROTONOSUPPORT) {
		/* written by another version: never mistake it for a torn tail */
		rc = on_damage(sc, i, 0, 0, "unknown log format version");
		*stop = 1;
		goto out;
	}
	off = WAL_HDR_SIZE;
	if ((hrc || first != sc->segs[i].first_lsn) && sc->segs[i].first_lsn < sc->expected) {
		/* a damaged header of a segment that starts among records the snapshot holds */
		first = sc->segs[i].first_lsn;
		sc->last_lsn = first - 1;
		rc = resync_covered(sc, i, path, 0, WAL_HDR_SIZE, &off, stop);
		if (rc || *stop)
			goto out;
	} else if (hrc || first != sc->segs[i].first_lsn) {
		rc = bad_record_in(sc, i, &w, path, 0, stop);
		if (!rc && !*stop)
			rc = on_damage(sc, i, 0, 0, "bad segment header"), *stop = 1;
		goto out;
	} else if (first != sc->last_lsn + 1) {
		rc = on_damage(sc, i, 0, 0, "gap in LSNs before this segment");
		*stop = 1;
		goto out;
	} else {
		sc->last_lsn = first - 1;
	}
	while (off < w.size) {
		uint64_t lsn;
		uint32_t len;
		const uint8_t *rec;
		rc = window_record(&w, off, &lsn, &len, &rec, &sc->rep->bytes_checksummed);
		if (rc < 0)
			goto out;
		if (rc == 0 && in_covered(sc)) {
			rc = resync_covered(sc, i, path, off, off + 1, &off, stop);
			if (rc || *stop)
				goto out;
			continue;
		}
		if (rc == 0) {
			rc = bad_record_in(sc, i, &w, path, off, stop);
			goto out;
		}
		rc = 0;
		const uint8_t *payload = rec + REC_HDR_SIZE;
		int covered = lsn < sc->expected;
		if (lsn != sc->last_lsn + 1 && !(covered && lsn > sc->last_lsn)) {
			/* (a jump forward among covered records skips only what the snapshot holds) */
			rc = on_damage(sc, i, off, off, "gap in LSNs");
			*stop = 1;
			goto out;
		}
		/* apply_record validates the whole payload before touching the index */
		int vrc = rec[16] != REC_TYPE_OPS ? -EPROTO
			  : sc->ix && !covered    ? apply_record(sc->ix, payload, len)
						  : rec_validate(payload, len);
		if ((vrc == -EBADMSG || vrc == -EPROTO) && covered) {
			report_covered_damage(sc, i, off);
			vrc = 0;
		}
		if (vrc == -EBADMSG || vrc == -EPROTO) {
			rc = on_damage(sc, i, off, off, vrc == -EPROTO ? "unknown record type" : "malformed record");
			*stop = 1;
			goto out;
		}
		if (vrc) {
			rc = vrc;
			goto out;
		}
		if (!covered) {
			sc->rep->records_replayed++;
			sc->plan->wal_bytes += REC_HDR_SIZE + len;
			sc->expected = lsn + 1;
		}
		sc->last_lsn = lsn;
		off += REC_HDR_SIZE + len;
	}
	/* a segment that ends exactly at its last record */
	sc->plan->have_resume = 1;
	sc->plan->resume_first = first;
	sc->plan->resume_end = w.size;
	sc->plan->resume_size = w.size;
out:
	window_close(&w);
	return rc;
}

/* Load the newest snapshot; in salvage mode fall back to older ones, setting damaged ones aside. */
static int load_snapshot(struct scan *sc, struct kvindex **ix, uint64_t *snaps, size_t nsnaps, uint64_t *snap_lsn)
{
	char name[64], path[PATH_MAX];
	int rc;

	*snap_lsn = 0;
	for (size_t k = 0; k < nsnaps; k++) {
		uint64_t lsn, count, bad;
		snapshot_name(name, sizeof(name), snaps[k]);
		snprintf(path, sizeof(path), "%s/%s", sc->dir, name);
		rc = snapshot_load(sc->io, path, ix ? *ix : NULL, &lsn, &count, &bad);
		if (rc == 0 && lsn == snaps[k]) {
			*snap_lsn = lsn;
			sc->rep->snapshot_lsn = lsn;
			sc->rep->snapshot_keys = count;
			return 0;
		}
		if (rc != -EBADMSG && rc != -EPROTONOSUPPORT && rc != 0)
			return rc;
		report_damage(sc->rep, sc->mode, sc->dir, name, bad,
			      rc == -EPROTONOSUPPORT ? "unknown snapshot version" : "damaged snapshot");
		if (sc->mode == RECOVER_STRICT)
			return -EUCLEAN;
		rc = name_push(&sc->plan->aside, &sc->plan->n_aside, name);
		if (rc)
			return rc;
		if (ix) {
			/* start over from an empty index for the next candidate */
			kvindex_destroy(*ix);
			*ix = NULL;
			rc = kvindex_create(ix);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int recovery_scan(const struct kvio *io, const char *dir, enum recovery_mode mode,
		  struct kvindex **ix, struct rplan **plan_out, struct kv_report *rep)
{
	struct scan sc = { .io = io, .dir = dir, .mode = mode, .rep = rep };
	char **names = NULL;
	size_t n = 0, nsnaps = 0;
	uint64_t *snaps = NULL, snap_lsn = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	sc.plan = calloc(1, sizeof(*sc.plan));
	if (!sc.plan)
		return -ENOMEM;
	sc.plan->salvage = mode == RECOVER_SALVAGE;
	rc = io->list_dir(io, dir, &names, &n);
	if (rc)
		goto out;
	sc.segs = calloc(n ? n : 1, sizeof(*sc.segs));
	snaps = calloc(n ? n : 1, sizeof(*snaps));
	if (!sc.segs || !snaps) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t k = 0; k < n; k++) {
		uint64_t v;
		if (wal_parse_segment_name(names[k], &v) == 0) {
			sc.segs[sc.nsegs].first_lsn = v;
			snprintf(sc.segs[sc.nsegs++].name, sizeof(sc.segs[0].name), "%s", names[k]);
		} else if (snapshot_parse_name(names[k], &v) == 0) {
			snaps[nsnaps++] = v;
		} else if (ends_with(names[k], ".kvs.tmp")) {
			rc = name_push(&sc.plan->remove, &sc.plan->n_remove, names[k]);
			if (rc)
				goto out;
		}
	}
	qsort(sc.segs, sc.nsegs, sizeof(*sc.segs), cmp_seg);
	qsort(snaps, nsnaps, sizeof(*snaps), cmp_u64_desc);
	rep->segments = sc.nsegs;

	rc = load_snapshot(&sc, ix, snaps, nsnaps, &snap_lsn);
	if (rc)
		goto out;
	sc.ix = ix ? *ix : NULL;
	sc.expected = snap_lsn + 1;

	/* Segments wholly before the snapshot are not read; once the snapshot's name is durable
	 * they are removed, with any older snapshot (recovery_commit). */
	size_t start = 0;
	while (start + 1 < sc.nsegs && sc.segs[start + 1].first_lsn <= sc.expected)
		start++;
	for (size_t j = 0; j < start; j++) {
		rc = name_push(&sc.plan->covered, &sc.plan->n_covered, sc.segs[j].name);
		if (rc)
			goto out;
	}
	for (size_t k = 0; k < nsnaps; k++) {
		char name[64];
		if (snaps[k] >= snap_lsn)
			continue;
		snapshot_name(name, sizeof(name), snaps[k]);
		rc = name_push(&sc.plan->covered, &sc.plan->n_covered, name);
		if (rc)
			goto out;
	}
	if (start < sc.nsegs && sc.segs[start].first_lsn > sc.expected) {
		struct seg *sg = &sc.segs[start];
		report_damage(rep, mode, dir, sg->name, 0, "gap in LSNs after the snapshot");
		if (mode == RECOVER_STRICT) {
			rc = -EUCLEAN;
			goto out;
		}
		for (size_t j = start; j < sc.nsegs; j++) {
			rc = name_push(&sc.plan->aside, &sc.plan->n_aside, sc.segs[j].name);
			if (rc)
				goto out;
		}
		sc.nsegs = start; /* nothing after the gap is replayed */
	}
	sc.last_lsn = start < sc.nsegs ? sc.segs[start].first_lsn - 1 : snap_lsn;
	for (size_t i = start; i < sc.nsegs; i++) {
		int stop;
		rc = scan_segment(&sc, i, &stop);
		if (rc)
			goto out;
		if (stop)
			break;
	}
	rep->last_lsn = sc.expected - 1;
	sc.plan->next_lsn = sc.expected;
	if (rep->covered_damage && !rep->message[0])
		snprintf(rep->message, sizeof(rep->message),
			 "%s/%s: damaged at offset %" PRIu64 " in records the snapshot (LSN %" PRIu64
			 ") already holds: not needed, nothing lost", dir, rep->covered_file,
			 rep->covered_offset, snap_lsn);
	/* Continue in the last segment only if the log is contiguous up to the next LSN there. */
	if (sc.plan->have_resume && sc.last_lsn != sc.expected - 1)
		sc.plan->have_resume = 0;
out:
	if (rc == -EUCLEAN)
		rep->last_lsn = sc.expected ? sc.expected - 1 : 0; /* what the log holds before the damage */
	kvio_free_names(names, n);
	free(sc.buf);
	free(sc.segs);
	free(snaps);
	if (rc) {
		recovery_free(sc.plan);
		return rc;
	}
	*plan_out = sc.plan;
	return 0;
}

/* A name for a damaged file set aside: NAME.damaged, or NAME.damaged-2, -3... if taken. */
static int aside_path(const struct kvio *io, const char *dir, const char *name, char *out, size_t len)
{
	for (int k = 1; k < 1000; k++) {
		int fd;
		if (k == 1)
			snprintf(out, len, "%s/%s.damaged", dir, name);
		else
			snprintf(out, len, "%s/%s.damaged-%d", dir, name, k);
		int rc = io->open(io, out, O_RDONLY, 0, &fd);
		if (rc == -ENOENT)
			return 0;
		if (rc)
			return rc;
		rc = io->close(io, fd);
		if (rc)
			return rc;
	}
	return -EEXIST;
}

/* Copy a file whole to `to` and make the copy durable: the damaged segment is kept aside
 * this way (not renamed) so that a crash at any point leaves either the original untouched or
 * a durable copy beside it before the original is cut to its valid prefix. */
static int copy_aside(const struct kvio *io, const char *dir, const char *from, const char *to)
{
	uint8_t *buf = NULL;
	uint64_t size;
	int fd = -1, rc;

	rc = read_file(io, from, &buf, &size);
	if (rc)
		return rc;
	rc = io->open(io, to, O_RDWR | O_CREAT | O_EXCL, 0600, &fd);
	if (rc)
		goto out;
	rc = io->pwrite(io, fd, buf, (size_t)size, 0);
	if (!rc)
		rc = io->fdatasync(io, fd);
out:
	if (fd >= 0) {
		int crc = io->close(io, fd);
		if (!rc)
			rc = crc;
	}
	if (!rc)
		rc = io->fsync_dir(io, dir);
	free(buf);
	return rc;
}

static int listed(char *const *list, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (!strcmp(list[k], name))
			return 1;
	return 0;
}

static int sync_file(const struct kvio *io, const char *path)
{
	int fd, rc = io->open(io, path, O_RDWR, 0, &fd);
	if (rc)
		return rc;
	rc = io->fdatasync(io, fd);
	int crc = io->close(io, fd);
	return rc ? rc : crc;
}

int recovery_commit(const struct kvio *io, const char *dir, struct rplan *plan, struct kv_report *rep)
{
	char path[PATH_MAX], to[PATH_MAX];
	int rc = 0;

	for (size_t k = 0; k < plan->n_aside; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, plan->aside[k]);
		rc = aside_path(io, dir, plan->aside[k], to, sizeof(to));
		if (rc)
			return rc;
		uint64_t first;
		if (plan->rewrite && wal_parse_segment_name(plan->aside[k], &first) == 0 &&
		    first == plan->rewrite_first)
			rc = copy_aside(io, dir, path, to); /* then cut below, as the resume segment */
		else
			rc = io->rename(io, path, to);
		if (rc)
			return rc;
		rep->set_aside++;
	}
	if (plan->n_aside) {
		size_t off = strlen(rep->message);
		snprintf(rep->message + off, sizeof(rep->message) - off,
			 "%sSALVAGED: kept the state up to LSN %" PRIu64 "; %u damaged file(s) set aside as "
			 "*.damaged in %s (nothing deleted)", off ? "\n" : "", plan->next_lsn - 1,
			 rep->set_aside, dir);
	}
	for (size_t k = 0; k < plan->n_remove; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, plan->remove[k]);
		rc = io->unlink(io, path);
		if (rc && rc != -ENOENT)
			return rc;
	}
	if (plan->have_resume && plan->resume_size > plan->resume_end) {
		char name[32];
		int fd;
		wal_segment_name(name, sizeof(name), plan->resume_first);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		rc = io->open(io, path, O_RDWR, 0600, &fd);
		if (rc)
			return rc;
		rc = io->ftruncate(io, fd, plan->resume_end);
		if (!rc)
			rc = io->fdatasync(io, fd);
		int crc = io->close(io, fd);
		if (!rc)
			rc = crc;
		if (rc)
			return rc;
		plan->resume_size = plan->resume_end;
	}
	/* Everything replayed is about to be called durable: the new process answers flushes from
	 * a durable LSN that starts at the last record replayed. A killed process may have left
	 * those records in the page cache only (written, never fdatasync'd), so sync them now, and
	 * the directory, which also makes the snapshot's and the segments' names durable. */
	for (size_t k = 0; k < plan->n_sync; k++) {
		if (listed(plan->aside, plan->n_aside, plan->sync[k]) ||
		    listed(plan->remove, plan->n_remove, plan->sync[k]))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, plan->sync[k]);
		rc = sync_file(io, path);
		if (rc)
			return rc;
	}
	rc = io->fsync_dir(io, dir);
	if (rc)
		return rc;
	/* Only now that the snapshot's name is durable may what it replaces go. Salvage deletes
	 * nothing (the covered segments may hold the damage it reports), nor does an open that
	 * found damage. */
	if (rep->damaged || plan->salvage || !plan->n_covered)
		return 0;
	for (size_t k = 0; k < plan->n_covered; k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, plan->covered[k]);
		rc = io->unlink(io, path);
		if (rc && rc != -ENOENT)
			return rc;
	}
	return io->fsync_dir(io, dir);
}

void recovery_resume(const struct rplan *plan, uint64_t *next_lsn, uint64_t *resume_first_lsn,
		     uint64_t *resume_end, uint64_t *wal_bytes)
{
	*next_lsn = plan->next_lsn;
	*resume_first_lsn = plan->have_resume ? plan->resume_first : 0;
	*resume_end = plan->have_resume ? plan->resume_end : 0;
	*wal_bytes = plan->wal_bytes;
}

void recovery_free(struct rplan *plan)
{
	if (!plan)
		return;
	for (size_t k = 0; k < plan->n_remove; k++)
		free(plan->remove[k]);
	for (size_t k = 0; k < plan->n_aside; k++)
		free(plan->aside[k]);
	for (size_t k = 0; k < plan->n_sync; k++)
		free(plan->sync[k]);
	for (size_t k = 0; k < plan->n_covered; k++)
		free(plan->covered[k]);
	free(plan->remove);
	free(plan->aside);
	free(plan->sync);
	free(plan->covered);
	free(plan);
}
