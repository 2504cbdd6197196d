/* wal.c — append, group commit, segment rotation (see wal.h).
 *
 * Group commit: appenders copy records into `pend` and return. wal_sync makes one caller the
 * leader: it takes `pend` (swapping in the spare buffer, so appends go on), writes it with one
 * pwrite and one fdatasync, and wakes everyone whose LSN that covered. Callers arriving while a
 * leader is busy wait on `cv` and one of them leads the next round with everything that piled up
 * meanwhile: N concurrent flushers share fdatasyncs instead of queueing N of them.
 *
 * Invariants (w->mu): durable_lsn <= written-to-file LSN <= last_lsn; pend holds exactly the
 * records after the leader's batch, destined for file offset pend_off of the current segment;
 * once err is set it never clears and nothing more is appended or reported durable. */
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

#include "crc32c.h"
#include "le.h"
#include "lsnname.h"

#define PEND_KEEP (8u << 20)    /* buffers above this are released after a flush */
#define DRAIN_BYTES (32u << 20) /* ask appenders to flush beyond this much buffered */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct seg_list {
	uint64_t *first_lsn; /* older, closed segments, ascending */
	size_t n, cap;
};

struct wal {
	const struct kvio *io;
	char dir[PATH_MAX - 64]; /* kv_open refuses longer directory names */
	uint64_t segment_bytes;

	pthread_mutex_t mu;
	pthread_cond_t cv;    /* a flush round finished */
	pthread_cond_t bg_cv; /* work for the background flusher, or stop */

	/* current segment */
	int fd;
	uint64_t seg_first_lsn;
	uint64_t seg_size;     /* logical end: header + records appended */
	uint64_t seg_reserved; /* preallocated end */
	struct seg_list older;

	struct buf pend, spare;
	uint64_t pend_off;     /* file offset of pend.p[0] */
	uint64_t next_lsn, durable_lsn;
	uint64_t pend_since_ns; /* when pend became non-empty (batch deadline) */
	int flushing;
	int rotating; /* appends wait: pend must stay empty while the segment changes */
	int err;

	uint64_t appended_bytes, flushes, fdatasyncs;

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

void wal_segment_name(char *buf, size_t len, uint64_t first_lsn)
{
	lsnname_format(buf, len, "wal-", first_lsn, ".log");
}

int wal_parse_segment_name(const char *name, uint64_t *first_lsn)
{
	return lsnname_parse(name, "wal-", ".log", first_lsn);
}

void wal_encode_header(uint8_t hdr[WAL_HDR_SIZE], uint64_t first_lsn)
{
	memset(hdr, 0, WAL_HDR_SIZE);
	memcpy(hdr, WAL_MAGIC, 8);
	le_put32(hdr + 8, WAL_VERSION);
	le_put32(hdr + 12, 0);
	le_put64(hdr + 16, first_lsn);
	le_put32(hdr + 24, 0);
	le_put32(hdr + 28, crc32c(0, hdr, 28));
}

int wal_decode_header(const uint8_t hdr[WAL_HDR_SIZE], uint64_t *first_lsn)
{
	if (memcmp(hdr, WAL_MAGIC, 8) || le_get32(hdr + 28) != crc32c(0, hdr, 28))
		return -EBADMSG;
	/* flags and reserved must be zero in version 1: a later writer may use them for
	 * something this reader must not ignore */
	if (le_get32(hdr + 8) != WAL_VERSION || le_get32(hdr + 12) || le_get32(hdr + 24))
		return -EPROTONOSUPPORT;
	*first_lsn = le_get64(hdr + 16);
	return 0;
}

static void seg_path(const struct wal *w, char *buf, size_t len, uint64_t first_lsn)
{
	char name[32];
	wal_segment_name(name, sizeof(name), first_lsn);
	snprintf(buf, len, "%s/%s", w->dir, name);
}

static int buf_reserve(struct buf *b, size_t more)
{
	if (b->len + more <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap * 2 : 16 * 1024;
	if (cap < b->len + more) /* one huge record: exactly what it needs */
		cap = b->len + more;
	uint8_t *p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static int seg_list_push(struct seg_list *l, uint64_t first_lsn)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *a = realloc(l->first_lsn, cap * sizeof(*a));
		if (!a)
			return -ENOMEM;
		l->first_lsn = a;
		l->cap = cap;
	}
	l->first_lsn[l->n++] = first_lsn;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Create a segment for records from first_lsn with room for at least `need` record bytes:
 * preallocate, write and sync its header, sync the directory — all before any record in it
 * can be acknowledged, so a durable record is always found by recovery. */
static int seg_create(struct wal *w, uint64_t first_lsn, uint64_t need, int *fd_out, uint64_t *reserved)
{
	char path[PATH_MAX];
	uint8_t hdr[WAL_HDR_SIZE];
	uint64_t size = w->segment_bytes;
	int fd = -1, rc;

	if (size < WAL_HDR_SIZE + need)
		size = WAL_HDR_SIZE + need;
	seg_path(w, path, sizeof(path), first_lsn);
	/* O_TRUNC, not O_EXCL: a file of this name can only be the leftover of an earlier failed
	 * attempt (its cleanup failed too), since no record with this LSN was ever written; taking
	 * it over keeps one double fault from failing every later rotation. */
	rc = w->io->open(w->io, path, O_RDWR | O_CREAT | O_TRUNC, 0600, &fd);
	if (rc)
		return rc;
	rc = w->io->fallocate(w->io, fd, 0, size);
	while (rc == -ENOSPC && size > WAL_HDR_SIZE + need) {
		/* No room for a whole segment: a smaller one, down to one just big enough for this
		 * record, still lets the write through (a disk smaller than segment_bytes stays
		 * usable). Give back what the failed attempt may have reserved first. */
		size = size / 2 > WAL_HDR_SIZE + need ? size / 2 : WAL_HDR_SIZE + need;
		rc = w->io->ftruncate(w->io, fd, 0);
		if (!rc)
			rc = w->io->fallocate(w->io, fd, 0, size);
	}
	if (rc)
		goto out;
	wal_encode_header(hdr, first_lsn);
	rc = w->io->pwrite(w->io, fd, hdr, sizeof(hdr), 0);
	if (rc)
		goto out;
	rc = w->io->fdatasync(w->io, fd);
	if (rc)
		goto out;
	w->fdatasyncs++;
	rc = w->io->fsync_dir(w->io, w->dir);
out:
	if (rc) {
		int crc = w->io->close(w->io, fd);
		int urc = w->io->unlink(w->io, path);
		(void)crc; /* the create failed already; that error is the one to report */
		(void)urc;
		return rc;
	}
	*fd_out = fd;
	*reserved = size;
	return 0;
}

/* Write and sync `b` at off of the current segment. Called by a leader without w->mu.
 * *synced is set when an fdatasync was issued (whatever it returned). */
static int write_and_sync(struct wal *w, int fd, const struct buf *b, uint64_t off, int *synced)
{
	int rc = 0;
	*synced = 0;
	if (b->len)
		rc = w->io->pwrite(w->io, fd, b->p, b->len, off);
	if (rc)
		return rc;
	*synced = 1;
	return w->io->fdatasync(w->io, fd);
}

/* Lead one flush round. Called with w->mu held and !w->flushing; returns with it held. */
static void lead_round(struct wal *w)
{
	struct buf batch = w->pend;
	uint64_t off = w->pend_off, upto = w->next_lsn - 1;
	int fd = w->fd, synced, rc;

	w->pend = w->spare;
	w->pend.len = 0;
	w->spare = (struct buf){ 0 };
	w->pend_off = off + batch.len;
	w->pend_since_ns = 0;
	w->flushing = 1;
	pthread_mutex_unlock(&w->mu);

	rc = write_and_sync(w, fd, &batch, off, &synced);

	pthread_mutex_lock(&w->mu);
	w->flushing = 0;
	w->flushes++;
	w->fdatasyncs += (uint64_t)synced;
	if (rc) {
		/* Sticky: the kernel may have dropped the dirty pages, so no later fdatasync can
		 * vouch for them. Nothing after durable_lsn is ever reported durable again. */
		if (!w->err)
			w->err = rc;
	} else {
		w->durable_lsn = upto;
	}
	batch.len = 0;
	if (batch.cap > PEND_KEEP) {
		free(batch.p);
		batch = (struct buf){ 0 };
	}
	w->spare = batch;
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

/* Move to a new segment because `need` bytes do not fit. w->mu held. The old segment is
 * flushed first, so a record in a newer segment is never durable while an older one is not:
 * recovery then never sees a gap between segments that no acknowledged write explains. */
static int rotate(struct wal *w, uint64_t need)
{
	int fd, rc;
	uint64_t reserved;

	w->rotating = 1;
	for (;;) {
		if (w->err) {
			rc = -EROFS;
			goto out;
		}
		if (w->flushing) {
			pthread_cond_wait(&w->cv, &w->mu);
			continue;
		}
		if (w->durable_lsn == w->next_lsn - 1)
			break;
		lead_round(w);
	}
	rc = seg_create(w, w->next_lsn, need, &fd, &reserved);
	if (rc)
		goto out;
	rc = seg_list_push(&w->older, w->seg_first_lsn);
	if (rc) {
		char path[PATH_MAX];
		seg_path(w, path, sizeof(path), w->next_lsn);
		int crc = w->io->close(w->io, fd);
		int urc = w->io->unlink(w->io, path);
		(void)crc; /* ENOMEM is what the caller needs to hear */
		(void)urc;
		goto out;
	}
	/* The old segment is durable through its last record: a failed close loses nothing. */
	int old_close = w->io->close(w->io, w->fd);
	(void)old_close;
	w->fd = fd;
	w->seg_first_lsn = w->next_lsn;
	w->seg_size = WAL_HDR_SIZE;
	w->seg_reserved = reserved;
	w->pend_off = WAL_HDR_SIZE;
out:
	w->rotating = 0;
	pthread_cond_broadcast(&w->cv);
	return rc;
}

/* Reserve room for one record larger than the empty current segment. w->mu held. */
static int grow_empty_segment(struct wal *w, uint64_t need)
{
	int rc = w->io->fallocate(w->io, w->fd, 0, WAL_HDR_SIZE + need);
	if (rc)
		return rc;
	w->seg_reserved = WAL_HDR_SIZE + need;
	return 0;
}

int wal_append(struct wal *w, uint8_t type, const void *payload, size_t len, uint64_t *lsn_out)
{
	uint64_t need = REC_HDR_SIZE + (uint64_t)len;
	int rc;

	if (len > REC_MAX_PAYLOAD)
		return -EFBIG;
	pthread_mutex_lock(&w->mu);
	while (w->rotating)
		pthread_cond_wait(&w->cv, &w->mu);
	if (w->err) {
		rc = -EROFS;
		goto out;
	}
	if (w->seg_size + need > w->seg_reserved) {
		/* An empty segment already carries the next LSN's name: grow it instead. */
		if (w->seg_size == WAL_HDR_SIZE)
			rc = grow_empty_segment(w, need);
		else
			rc = rotate(w, need);
		if (rc)
			goto out;
	}
	rc = buf_reserve(&w->pend, need);
	if (rc)
		goto out;

	uint64_t lsn = w->next_lsn;
	uint8_t *r = w->pend.p + w->pend.len;
	le_put32(r + 4, (uint32_t)len);
	le_put64(r + 8, lsn);
	r[16] = type;
	memcpy(r + REC_HDR_SIZE, payload, len);
	le_put32(r, crc32c(0, r + 4, need - 4));

	if (w->pend.len == 0 && w->pend_since_ns == 0) {
		w->pend_since_ns = now_ns();
		pthread_cond_signal(&w->bg_cv);
	}
	w->pend.len += need;
	w->seg_size += need;
	w->appended_bytes += need;
	w->next_lsn = lsn + 1;
	if (lsn_out)
		*lsn_out = lsn;
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

int wal_should_drain(struct wal *w)
{
	pthread_mutex_lock(&w->mu);
	int drain = w->pend.len > DRAIN_BYTES;
	pthread_mutex_unlock(&w->mu);
	return drain;
}

static void *flusher_main(void *arg)
{
	struct wal *w = arg;
	int reported = 0;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		if (w->err || w->durable_lsn >= w->next_lsn - 1 || w->pend_since_ns == 0) {
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
		uint64_t deadline = w->pend_since_ns + (uint64_t)w->commit_ms * 1000000u;
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

static int adopt_older_segments(struct wal *w)
{
	char **names = NULL;
	size_t n = 0;
	int rc = w->io->list_dir(w->io, w->dir, &names, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		uint64_t first;
		if (wal_parse_segment_name(names[i], &first) == 0 && first < w->seg_first_lsn) {
			rc = seg_list_push(&w->older, first);
			if (rc)
				break;
		}
	}
	kvio_free_names(names, n);
	if (!rc && w->older.n)
		qsort(w->older.first_lsn, w->older.n, sizeof(uint64_t), cmp_u64);
	return rc;
}

static int resume_segment(struct wal *w, uint64_t first_lsn, uint64_t end)
{
	char path[PATH_MAX];
	int rc;

	seg_path(w, path, sizeof(path), first_lsn);
	rc = w->io->open(w->io, path, O_RDWR, 0600, &w->fd);
	if (rc)
		return rc;
	w->seg_first_lsn = first_lsn;
	w->seg_size = end;
	w->seg_reserved = end;
	if (end < w->segment_bytes) {
		/* Without the reservation the next append rotates, and a full disk then fails that
		 * append cleanly instead of a later flush. */
		if (w->io->fallocate(w->io, w->fd, 0, w->segment_bytes) == 0)
			w->seg_reserved = w->segment_bytes;
	}
	w->pend_off = end;
	return 0;
}

int wal_open(struct wal **out, const struct kvio *io, const char *dir, uint64_t segment_bytes,
	     uint64_t next_lsn, uint64_t resume_first_lsn, uint64_t resume_end)
{
	struct wal *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int rc;

	if (!w)
		return -ENOMEM;
	w->io = io;
	w->fd = -1;
	w->segment_bytes = segment_bytes;
	w->next_lsn = next_lsn;
	w->durable_lsn = next_lsn - 1;
	snprintf(w->dir, sizeof(w->dir), "%s", dir);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->bg_cv, &ca);
	pthread_condattr_destroy(&ca);

	if (resume_end) {
		rc = resume_segment(w, resume_first_lsn, resume_end);
	} else {
		rc = seg_create(w, next_lsn, 0, &w->fd, &w->seg_reserved);
		w->seg_first_lsn = next_lsn;
		w->seg_size = WAL_HDR_SIZE;
		w->pend_off = WAL_HDR_SIZE;
	}
	if (!rc)
		rc = adopt_older_segments(w);
	if (rc) {
		if (w->fd >= 0) {
			int crc = w->io->close(w->io, w->fd);
			(void)crc; /* nothing was written through it; the open error is the one to report */
			w->fd = -1;
		}
		free(w->older.first_lsn);
		free(w);
		return rc;
	}
	*out = w;
	return 0;
}

int wal_remove_covered(struct wal *w, uint64_t lsn)
{
	char path[PATH_MAX];
	size_t keep_from, i;
	int rc = 0, removed = 0;

	pthread_mutex_lock(&w->mu);
	/* older[i] holds LSNs [older[i], next segment's first) */
	for (keep_from = 0; keep_from < w->older.n; keep_from++) {
		uint64_t next_first = keep_from + 1 < w->older.n ? w->older.first_lsn[keep_from + 1]
								   : w->seg_first_lsn;
		if (next_first > lsn + 1)
			break;
	}
	for (i = 0; i < keep_from; i++) {
		seg_path(w, path, sizeof(path), w->older.first_lsn[i]);
		int urc = w->io->unlink(w->io, path);
		if (urc && urc != -ENOENT) {
			rc = urc;
			break;
		}
		removed++;
	}
	if (i) {
		memmove(w->older.first_lsn, w->older.first_lsn + i, (w->older.n - i) * sizeof(uint64_t));
		w->older.n -= i;
	}
	pthread_mutex_unlock(&w->mu);
	/* Not required for correctness (recovery skips covered segments) but keeps the space
	 * freed across a crash. */
	if (removed && !rc)
		rc = w->io->fsync_dir(w->io, w->dir);
	return rc;
}

void wal_get_stats(struct wal *w, struct wal_stats *st)
{
	pthread_mutex_lock(&w->mu);
	st->last_lsn = w->next_lsn - 1;
	st->durable_lsn = w->durable_lsn;
	st->appended_bytes = w->appended_bytes;
	st->flushes = w->flushes;
	st->fdatasyncs = w->fdatasyncs;
	st->segments = w->older.n + 1;
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
	if (w->fd >= 0) {
		int crc = w->io->close(w->io, w->fd);
		if (!rc)
			rc = crc;
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->bg_cv);
	free(w->pend.p);
	free(w->spare.p);
	free(w->older.first_lsn);
	free(w);
	return rc;
}
