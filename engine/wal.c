/* wal.c — append, group commit, segment rotation (see wal.h).
 * Model: tests/model/group_commit.pml and tests/model/failed_sync.pml stand for wal_append,
 * write_record, wal_sync (lead_round), rotate, seg_create, grow_empty_segment, flusher_main and
 * wal_open (durable_lsn = next_lsn - 1); tests/model/values_on_disk.pml for seg_create (a crash
 * between creating a segment and writing its header) and wal_open (a new segment when recovery
 * leaves none to resume in).
 *
 * Appends write their record at the end of the current segment under w->mu, so records reach
 * the file in LSN order and a reader finds a record's bytes as soon as wal_append returns.
 * Group commit: wal_sync makes one caller the leader: it notes the last LSN written, drops the
 * mutex and fdatasyncs; callers arriving meanwhile wait on `cv`, and one of them leads the next
 * round with everything written since. N concurrent flushers share fdatasyncs instead of queueing
 * N of them.
 *
 * Invariants (w->mu): durable_lsn <= last written LSN = next_lsn - 1; a record in a segment is
 * never durable while an older segment is not (rotation syncs the old segment first); once err is
 * set it never clears and nothing more is appended or reported durable. */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "le.h"
#include "logfmt.h"

/* Pieces of a record at most this big are gathered into one buffer and written with the header
 * in one call; bigger ones (value data) are written from the caller's memory directly. */
#define GATHER_MAX (64u << 10)
/* the gather buffer: the close mark's padding, the header and the small pieces */
#define GATHER_SIZE (GATHER_MAX + REC_HDR_SIZE + LOG_BLOCK)

struct wal {
	const struct kvio *io;
	char dir[PATH_MAX - 64]; /* kv_open refuses longer directory names */
	uint64_t segment_bytes;
	uint64_t seg_cap;      /* mu: when not 0, new segments are no bigger (wal_set_segment_cap) */
	struct segtab *segs;

	pthread_mutex_t mu;
	pthread_cond_t cv;    /* a flush round finished */
	pthread_cond_t bg_cv; /* work for the background flusher, or stop */

	/* current segment */
	int fd;
	uint64_t seg_first_lsn;
	uint32_t salt;
	uint64_t seg_size;     /* logical end: header + records written */
	uint64_t seg_reserved; /* preallocated end */
	uint32_t seg_version;  /* SEG_VERSION: the close mark is padded to LOG_BLOCK; 2: a resumed
				* old one, holding no record yet */

	uint8_t *gather;       /* GATHER_SIZE bytes */
	uint64_t next_lsn, durable_lsn;
	uint64_t unsynced_since_ns; /* when the first record not yet durable was written */
	int flushing;
	int err;

	uint64_t appended_bytes, pad_bytes, flushes, fdatasyncs;

	/* background flusher */
	pthread_t flusher;
	int flusher_running, stop;
	unsigned commit_ms;
	wal_error_fn on_error;
	void *on_error_arg;
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void seg_path(const struct wal *w, char *buf, size_t len, uint64_t first_lsn)
{
	char name[32];
	seg_name(name, sizeof(name), first_lsn);
	snprintf(buf, len, "%s/%s", w->dir, name);
}

/* Create a segment for records from first_lsn with room for at least `need` record bytes:
 * preallocate, write and sync its header, sync the directory — all before any record in it
 * can be acknowledged, so a durable record is always found by recovery. */
static int seg_create(struct wal *w, uint64_t first_lsn, uint64_t need, int *fd_out, uint64_t *reserved,
		      uint32_t *salt_out)
{
	char path[PATH_MAX];
	uint8_t hdr[SEG_HDR_SIZE];
	struct seg_header h = { .first_lsn = first_lsn, .salt = crc32c_new_salt() };
	uint64_t size = w->seg_cap && w->seg_cap < w->segment_bytes ? w->seg_cap : w->segment_bytes;
	int fd = -1, rc, squeezed = 0;

	if (size < SEG_HDR_SIZE + need)
		size = SEG_HDR_SIZE + need;
	seg_path(w, path, sizeof(path), first_lsn);
	/* O_TRUNC, not O_EXCL: a file of this name can only be the leftover of an earlier failed
	 * attempt (its cleanup failed too), since no record with this LSN was ever written; taking
	 * it over keeps one double fault from failing every later rotation. */
	rc = w->io->open(w->io, path, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600, &fd);
	if (rc)
		return rc;
	rc = w->io->fallocate(w->io, fd, 0, size);
	while (kvio_no_room(rc) && size > SEG_HDR_SIZE + need) {
		/* No room for a whole segment: a smaller one, down to one just big enough for this
		 * record, still lets the write through (a disk smaller than segment_bytes stays
		 * usable). Give back what the failed attempt may have reserved first. */
		squeezed = 1;
		size = size / 2 > SEG_HDR_SIZE + need ? size / 2 : SEG_HDR_SIZE + need;
		rc = w->io->ftruncate(w->io, fd, 0);
		if (!rc)
			rc = w->io->fallocate(w->io, fd, 0, size);
	}
	if (!rc && squeezed && size / 2 >= SEG_HDR_SIZE + need) {
		/* The one that fits is more than half the free space: take half of it, so that a
		 * segment never holds most of a small disk — the cleaner can then empty one into the
		 * room the others leave (a segment is freed only when every value in it is gone or
		 * moved; FINDINGS.md 3). */
		size /= 2;
		rc = w->io->ftruncate(w->io, fd, size);
	}
	if (rc)
		goto out;
	seg_header_encode(hdr, &h);
	rc = w->io->pwrite(w->io, fd, hdr, sizeof(hdr), 0);
	if (rc)
		goto out;
	rc = w->io->fdatasync(w->io, fd);
	if (rc)
		goto out;
	w->fdatasyncs++;
	rc = w->io->fsync_dir(w->io, w->dir);
	if (!rc)
		rc = segtab_add(w->segs, first_lsn, size);
out:
	if (rc) {
		/* the create failed already; that error is the one to report, and a leftover file is
		 * taken over by the next attempt (O_TRUNC above) */
		kvio_close_quiet(w->io, fd);
		int urc = w->io->unlink(w->io, path);
		(void)urc;
		return rc;
	}
	*fd_out = fd;
	*reserved = size;
	*salt_out = h.salt;
	return 0;
}

/* Lead one flush round. Called with w->mu held and !w->flushing; returns with it held. */
static void lead_round(struct wal *w)
{
	uint64_t upto = w->next_lsn - 1;
	int fd = w->fd, rc;

	w->unsynced_since_ns = 0;
	w->flushing = 1;
	pthread_mutex_unlock(&w->mu);

	rc = w->io->fdatasync(w->io, fd);

	pthread_mutex_lock(&w->mu);
	w->flushing = 0;
	w->flushes++;
	w->fdatasyncs++;
	if (rc) {
		/* Sticky: the kernel may have dropped the dirty pages, so no later fdatasync can
		 * vouch for them. Nothing after durable_lsn is ever reported durable again. */
		if (!w->err)
			w->err = rc;
	} else if (upto > w->durable_lsn) {
		w->durable_lsn = upto;
	}
	pthread_cond_broadcast(&w->cv);
}

int wal_sync(struct wal *w, uint64_t lsn)
{
	int rc;
	pthread_mutex_lock(&w->mu);
	if (lsn > w->next_lsn - 1)
		lsn = w->next_lsn - 1;
	for (;;) {
		if (w->err) {
			rc = w->err;
			break;
		}
		if (w->durable_lsn >= lsn) {
			rc = 0;
			break;
		}
		if (w->flushing) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		lead_round(w);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/* Move to a new segment because `need` bytes do not fit. w->mu held. The old segment is made
 * durable first, so a record in a newer segment is never durable while an older one is not:
 * recovery then never sees a gap between segments that no acknowledged write explains. */
static int rotate(struct wal *w, uint64_t need)
{
	int fd, rc, trimmed = 0;
	uint64_t reserved;
	uint32_t salt;

	for (;;) {
		if (w->err)
			return -EROFS;
		if (w->flushing) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		/* Give back the unused preallocation first, so that the sync below makes the size
		 * durable too (a failure to trim costs space, not data). */
		if (!trimmed && w->seg_reserved > w->seg_size) {
			trimmed = 1;
			if (w->io->ftruncate(w->io, w->fd, w->seg_size) == 0)
				w->seg_reserved = w->seg_size;
			else
				trimmed = 0, w->seg_reserved = w->seg_size; /* don't try again */
			if (trimmed) {
				lead_round(w); /* the size change needs a sync of its own */
				continue;
			}
		}
		if (w->durable_lsn == w->next_lsn - 1)
			break;
		lead_round(w);
	}
	rc = seg_create(w, w->next_lsn, need, &fd, &reserved, &salt);
	if (rc)
		return rc;
	kvio_close_quiet(w->io, w->fd); /* durable through its last record: a failed close loses nothing */
	segtab_seal(w->segs, w->seg_first_lsn, w->seg_size, w->next_lsn - 1);
	w->fd = fd;
	w->seg_first_lsn = w->next_lsn;
	w->salt = salt;
	w->seg_size = SEG_HDR_SIZE;
	w->seg_reserved = reserved;
	w->seg_version = SEG_VERSION;
	return 0;
}

/* Zeros before the close mark so that it starts on a new LOG_BLOCK: the mark is the only record
 * that vouches for the last records of a cleanly closed log, so it must not share a block with
 * them — one lost block (zeroed, unreadable) of them then leaves the mark readable, and it makes
 * the loss damage instead of a torn tail (docs/DURABILITY.md 4.1b). Flush rounds are not padded:
 * a block already holding synced records is rewritten with the same bytes in front, which a
 * torn write keeps (the device model, DURABILITY.md Known limits). None at a segment's start (the
 * rotation made the segment before durable, and the mark's segment vouches for it), nor in a
 * version 2 segment. w->mu held. */
static uint64_t mark_pad(const struct wal *w)
{
	if (w->seg_version != SEG_VERSION || w->seg_size == SEG_HDR_SIZE)
		return 0;
	return (LOG_BLOCK - w->seg_size % LOG_BLOCK) % LOG_BLOCK;
}

/* Reserve room for one record larger than the empty current segment. w->mu held. */
static int grow_empty_segment(struct wal *w, uint64_t need)
{
	int rc = w->io->fallocate(w->io, w->fd, 0, SEG_HDR_SIZE + need);
	if (rc) {
		/* what a failed fallocate allocated (ext4 keeps it) goes back */
		int trc = w->io->ftruncate(w->io, w->fd, w->seg_reserved);
		return trc ? trc : rc;
	}
	w->seg_reserved = SEG_HDR_SIZE + need;
	return 0;
}

/* Write pad zeros, header and payload at off: the zeros, the header and small pieces gathered
 * into one call, big pieces written where they are. */
static int write_record(struct wal *w, size_t pad, const uint8_t hdr[REC_HDR_SIZE], const struct iovec *iov,
			int iovcnt, uint64_t off)
{
	size_t have = pad + REC_HDR_SIZE;
	int rc = 0;

	memset(w->gather, 0, pad);
	memcpy(w->gather + pad, hdr, REC_HDR_SIZE);
	for (int i = 0; i <= iovcnt && !rc; i++) {
		size_t n = i < iovcnt ? iov[i].iov_len : 0;
		if (i < iovcnt && n <= GATHER_MAX / 4 && have + n <= GATHER_SIZE) {
			memcpy(w->gather + have, iov[i].iov_base, n);
			have += n;
			continue;
		}
		if (have) {
			rc = w->io->pwrite(w->io, w->fd, w->gather, have, off);
			off += have;
			have = 0;
		}
		if (!rc && n) {
			rc = w->io->pwrite(w->io, w->fd, iov[i].iov_base, n, off);
			off += n;
		}
	}
	return rc;
}

/* Write the record at the segment's end after pad zeros; the room is there. w->mu held. */
static int append_locked(struct wal *w, uint64_t pad, uint8_t type, const struct iovec *iov, int iovcnt,
			 uint64_t len, uint32_t body_crc, uint64_t *lsn_out, struct rec_loc *loc)
{
	uint64_t need = REC_HDR_SIZE + len;
	uint8_t hdr[REC_HDR_SIZE];
	int rc;

	uint64_t lsn = w->next_lsn;
	struct rec_header h = { .len = (uint32_t)len, .lsn = lsn, .base = w->durable_lsn, .type = type,
				.body_crc = body_crc };
	rec_header_encode(hdr, w->salt, &h);
	rc = write_record(w, (size_t)pad, hdr, iov, iovcnt, w->seg_size);
	if (rc) {
		/* Part of the record may be in the file: nothing may follow it. */
		w->err = rc;
		pthread_cond_broadcast(&w->cv);
		return rc;
	}
	loc->seg = w->seg_first_lsn;
	loc->pos = w->seg_size + pad + REC_HDR_SIZE;
	/* Start the flusher's clock for the first record not yet covered by a round: also one
	 * appended while a round's fdatasync runs (that round reset the clock and will not make
	 * this record durable). Model: tests/model/group_commit.pml (the flusher's clock). */
	if (w->unsynced_since_ns == 0) {
		w->unsynced_since_ns = now_ns();
		pthread_cond_signal(&w->bg_cv);
	}
	w->seg_size += pad + need;
	w->appended_bytes += pad + need;
	w->pad_bytes += pad;
	w->next_lsn = lsn + 1;
	*lsn_out = lsn;
	return 0;
}

int wal_append(struct wal *w, uint8_t type, const struct iovec *iov, int iovcnt, uint64_t len,
	       uint32_t body_crc, uint64_t *lsn_out, struct rec_loc *loc)
{
	uint64_t need = REC_HDR_SIZE + len;
	int rc = 0;

	if (len > REC_MAX_PAYLOAD)
		return -EFBIG;
	pthread_mutex_lock(&w->mu);
	if (w->err) {
		rc = -EROFS;
		goto out;
	}
	if (w->seg_size + need > w->seg_reserved) {
		/* An empty segment already carries the next LSN's name: grow it instead. */
		if (w->seg_size == SEG_HDR_SIZE)
			rc = grow_empty_segment(w, need);
		else
			rc = rotate(w, need);
		if (rc)
			goto out;
	}
	rc = append_locked(w, 0, type, iov, iovcnt, len, body_crc, lsn_out, loc);
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

static void *flusher_main(void *arg)
{
	struct wal *w = arg;
	int reported = 0;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		if (w->err || w->durable_lsn >= w->next_lsn - 1 || w->unsynced_since_ns == 0) {
			if (w->err && !reported && w->on_error) {
				reported = 1;
				int err = w->err;
				pthread_mutex_unlock(&w->mu);
				w->on_error(w->on_error_arg, err);
				pthread_mutex_lock(&w->mu);
				continue;
			}
			pthread_cond_wait(&w->bg_cv, &w->mu);
			continue;
		}
		uint64_t deadline = w->unsynced_since_ns + (uint64_t)w->commit_ms * 1000000u;
		uint64_t now = now_ns();
		if (now < deadline) {
			struct timespec ts = { .tv_sec = (time_t)(deadline / 1000000000u),
					       .tv_nsec = (long)(deadline % 1000000000u) };
			pthread_cond_timedwait(&w->bg_cv, &w->mu, &ts);
			continue;
		}
		uint64_t target = w->next_lsn - 1;
		pthread_mutex_unlock(&w->mu);
		int rc = wal_sync(w, target);
		(void)rc; /* sticky in w->err; reported above on the next turn */
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int wal_start_flusher(struct wal *w, unsigned commit_ms, wal_error_fn on_error, void *arg)
{
	w->commit_ms = commit_ms;
	w->on_error = on_error;
	w->on_error_arg = arg;
	int rc = pthread_create(&w->flusher, NULL, flusher_main, w);
	if (rc)
		return -rc;
	w->flusher_running = 1;
	return 0;
}

static int resume_segment(struct wal *w, const struct wal_resume *r)
{
	char path[PATH_MAX];
	int rc;

	seg_path(w, path, sizeof(path), r->first_lsn);
	rc = w->io->open(w->io, path, O_RDWR | O_NOFOLLOW, 0600, &w->fd);
	if (rc)
		return rc;
	w->seg_first_lsn = r->first_lsn;
	w->salt = r->salt;
	w->seg_version = r->version;
	w->seg_size = r->end;
	w->seg_reserved = r->end;
	if (r->version != SEG_VERSION && r->end > SEG_HDR_SIZE)
		return 0; /* left at once (wal_open): no preallocation */
	if (r->end < w->segment_bytes) {
		/* Without the reservation the next append rotates, and a full disk then fails that
		 * append cleanly instead of a later flush. */
		if (w->io->fallocate(w->io, w->fd, 0, w->segment_bytes) == 0) {
			w->seg_reserved = w->segment_bytes;
		} else {
			/* ext4 keeps what a failed fallocate allocated: given back, or the file would
			 * hold the disk's free space, every open growing it again */
			rc = w->io->ftruncate(w->io, w->fd, r->end);
		}
	}
	return rc;
}

int wal_open(struct wal **out, const struct kvio *io, const char *dir, uint64_t segment_bytes,
	     uint64_t next_lsn, const struct wal_resume *resume, struct segtab *segs)
{
	struct wal *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int rc;

	if (!w)
		return -ENOMEM;
	w->gather = malloc(GATHER_SIZE);
	if (!w->gather) {
		free(w);
		return -ENOMEM;
	}
	w->io = io;
	w->fd = -1;
	w->segs = segs;
	w->segment_bytes = segment_bytes;
	w->next_lsn = next_lsn;
	w->durable_lsn = next_lsn - 1; /* recovery made everything it replayed durable */
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->bg_cv, &ca);
	pthread_condattr_destroy(&ca);

	if (resume) {
		rc = resume_segment(w, resume);
		if (!rc && resume->version != SEG_VERSION && resume->end > SEG_HDR_SIZE) {
			/* A version 2 segment's close mark has no padding and no records_end, and this
			 * writer writes only version 3 records after version 3 rules: the log goes on
			 * in a new segment (a version 2 one holding no record is kept: its name is the
			 * next LSN's; a mark written into it is a version 2 mark). */
			pthread_mutex_lock(&w->mu);
			rc = rotate(w, 0);
			pthread_mutex_unlock(&w->mu);
		}
	} else {
		rc = seg_create(w, next_lsn, 0, &w->fd, &w->seg_reserved, &w->salt);
		w->seg_first_lsn = next_lsn;
		w->seg_size = SEG_HDR_SIZE;
		w->seg_version = SEG_VERSION;
	}
	if (rc) {
		kvio_close_quiet(w->io, w->fd); /* the resumed segment's: the open failed already */
		free(w->gather);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

/* The close mark: in a version 3 segment it starts a new LOG_BLOCK (mark_pad) and its payload
 * is records_end, the offset where the record before it ends — where the padding starts — so
 * that a reader tells the padding from a lost block of records (docs/FORMAT.md 3.3). The room
 * it needs past the segment's preallocated end is taken if the disk has it: none is no mark (0);
 * any other failure of that fallocate is the close's to report. *lsn gets the mark's LSN, 0 for
 * no mark. */
static int append_mark(struct wal *w, uint64_t *lsn)
{
	uint8_t end[MARK_PAYLOAD];
	struct iovec iov = { end, sizeof(end) };
	struct rec_loc loc;
	int rc = 0;

	*lsn = 0;
	pthread_mutex_lock(&w->mu);
	if (w->err) {
		rc = -EROFS;
		goto out;
	}
	uint64_t pad = mark_pad(w);
	uint64_t len = w->seg_version == SEG_VERSION ? MARK_PAYLOAD : 0;
	uint64_t want = w->seg_size + pad + REC_HDR_SIZE + len;
	if (want > w->seg_reserved) {
		/* not a new segment (room on a full disk) for a mark: everything is durable
		 * already, only the vouching would be missing */
		rc = w->io->fallocate(w->io, w->fd, 0, want);
		if (rc) {
			/* what a failed fallocate allocated (ext4 keeps it) goes back */
			int trc = w->io->ftruncate(w->io, w->fd, w->seg_reserved);
			rc = trc ? trc : kvio_no_room(rc) ? 0 : rc;
			goto out;
		}
		w->seg_reserved = want;
	}
	le_put64(end, w->seg_size);
	rc = append_locked(w, pad, REC_TYPE_MARK, &iov, len ? 1 : 0, len, crc32c(0, end, len), lsn, &loc);
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int wal_mark(struct wal *w)
{
	struct wal_stats st;
	uint64_t lsn;
	wal_get_stats(w, &st);
	/* synced first, so that the mark's base is the last LSN before it */
	int rc = wal_sync(w, st.last_lsn);
	if (!rc)
		rc = append_mark(w, &lsn);
	if (!rc && lsn)
		rc = wal_sync(w, lsn);
	return rc;
}

void wal_set_segment_cap(struct wal *w, uint64_t cap)
{
	pthread_mutex_lock(&w->mu);
	w->seg_cap = cap;
	pthread_mutex_unlock(&w->mu);
}

int wal_fits(struct wal *w, uint64_t len)
{
	pthread_mutex_lock(&w->mu);
	int fits = w->seg_size + REC_HDR_SIZE + len <= w->seg_reserved;
	pthread_mutex_unlock(&w->mu);
	return fits;
}

void wal_get_stats(struct wal *w, struct wal_stats *st)
{
	pthread_mutex_lock(&w->mu);
	st->last_lsn = w->next_lsn - 1;
	st->durable_lsn = w->durable_lsn;
	st->appended_bytes = w->appended_bytes;
	st->pad_bytes = w->pad_bytes;
	st->flushes = w->flushes;
	st->fdatasyncs = w->fdatasyncs;
	st->seg_first_lsn = w->seg_first_lsn;
	st->seg_reserved = w->seg_reserved;
	st->seg_end = w->seg_size;
	st->error = w->err;
	pthread_mutex_unlock(&w->mu);
}

int wal_close(struct wal *w)
{
	int rc = 0;

	if (!w)
		return 0;
	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_broadcast(&w->bg_cv);
	pthread_mutex_unlock(&w->mu);
	if (w->flusher_running)
		pthread_join(w->flusher, NULL);

	rc = wal_sync(w, UINT64_MAX);
	if (!rc && w->seg_reserved > w->seg_size) {
		/* Give back the unused preallocation. If this size change is lost in a crash the
		 * zeros come back as a quietly cut tail. */
		rc = w->io->ftruncate(w->io, w->fd, w->seg_size);
		if (!rc)
			rc = w->io->fdatasync(w->io, w->fd);
	}
	rc = kvio_close_after(w->io, w->fd, rc);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->bg_cv);
	free(w->gather);
	free(w);
	return rc;
}
