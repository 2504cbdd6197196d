/* segtab.c — the segments of an open store and reads of value bytes (see segtab.h).
 * Model: tests/model/values_on_disk.pml stands for segtab_read (a read pins its segment) and
 * segtab_delete (a pinned segment is deleted only when its last reader lets go). */
#include "segtab.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "crc32c.h"
#include "le.h"
#include "logfmt.h"
#include "record.h"

/* One open descriptor of a segment, shared by readers; freed by whoever drops the last pin.
 * Descriptors are a cache: at most fd_max are open, the least recently used idle one (no
 * reader) is closed to open another, so a store of any number of segments stays within the
 * process's descriptor limit. */
struct rfd {
	int fd;        /* -1 until needed (again) */
	unsigned pins; /* readers using fd, plus one while the segment is in the table */
	uint64_t used; /* when last pinned (segtab.tick) */
};

struct seg {
	struct seg_info info;
	struct rfd *rfd;
};

struct segtab {
	const struct kvio *io;
	char dir[PATH_MAX - 64];
	pthread_mutex_t mu;
	struct seg *s; /* ascending first_lsn */
	size_t n, cap;
	uint64_t bytes, live;
	unsigned nopen, fd_max; /* descriptors open, and the most kept open */
	uint64_t tick;
	uint64_t around_max; /* segment bytes up to which small reads read around (READ_AROUND) */
};

/* A small read whose bytes are not cached reads the READ_AROUND bytes around them (kvio.h
 * pread_around), as the kernel reads around a fault on a mapped file (its default window): a
 * cold store comes back into the cache in large reads, not one 4 KiB read per get. Only while
 * the segments fit in a quarter of memory: in a larger store the neighbours read would mostly
 * be evicted unused, and each get would pay for 32 times the bytes it needs. */
#define READ_AROUND (128u << 10)

#define FD_MIN 4
#define FD_MAX 256

int segtab_new(struct segtab **out, const struct kvio *io, const char *dir)
{
	struct segtab *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->io = io;
	snprintf(t->dir, sizeof(t->dir), "%s", dir);
	pthread_mutex_init(&t->mu, NULL);
	/* a quarter of the process's descriptors at most: the rest are the program's */
	struct rlimit rl;
	rlim_t quarter = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur / 4
											   : FD_MAX;
	t->fd_max = quarter < FD_MIN ? FD_MIN : quarter > FD_MAX ? FD_MAX : (unsigned)quarter;
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	t->around_max = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 4 : 0;
	*out = t;
	return 0;
}

/* Close r's descriptor (idle: no reader holds it). t->mu held. */
static void rfd_close(struct segtab *t, struct rfd *r)
{
	if (r->fd < 0)
		return;
	kvio_close_quiet(t->io, r->fd); /* read-only: a failed close loses nothing */
	r->fd = -1;
	t->nopen--;
}

/* Make room for one more descriptor: close the least recently used idle one, if any (when
 * every open one is being read, the cache goes over its size until a reader is done). */
static void rfd_evict(struct segtab *t)
{
	struct rfd *lru = NULL;
	if (t->nopen < t->fd_max)
		return;
	for (size_t i = 0; i < t->n; i++) {
		struct rfd *r = t->s[i].rfd;
		if (r->fd >= 0 && r->pins == 1 && (!lru || r->used < lru->used))
			lru = r;
	}
	if (lru)
		rfd_close(t, lru);
}

/* Drop one pin; the last one closes. t->mu held. A failed close of a read-only descriptor loses
 * nothing: there is nothing to report. */
static void rfd_unpin(struct segtab *t, struct rfd *r)
{
	if (--r->pins)
		return;
	rfd_close(t, r);
	free(r);
}

void segtab_free(struct segtab *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		rfd_unpin(t, t->s[i].rfd);
	free(t->s);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* Index of segment first_lsn, or t->n. t->mu held. */
static size_t find(const struct segtab *t, uint64_t first_lsn)
{
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->s[mid].info.first_lsn < first_lsn)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < t->n && t->s[lo].info.first_lsn == first_lsn ? lo : t->n;
}

int segtab_add(struct segtab *t, uint64_t first_lsn, uint64_t size)
{
	struct rfd *r = malloc(sizeof(*r));
	int rc = 0;
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	r->pins = 1;
	pthread_mutex_lock(&t->mu);
	if (t->n && t->s[t->n - 1].info.first_lsn >= first_lsn) {
		rc = -EINVAL; /* out of order: a caller's bug */
		goto out;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct seg *s = realloc(t->s, cap * sizeof(*s));
		if (!s) {
			rc = -ENOMEM;
			goto out;
		}
		t->s = s;
		t->cap = cap;
	}
	t->s[t->n++] = (struct seg){ .info = { .first_lsn = first_lsn, .size = size }, .rfd = r };
	t->bytes += size;
	r = NULL;
out:
	pthread_mutex_unlock(&t->mu);
	free(r);
	return rc;
}

void segtab_seal(struct segtab *t, uint64_t first_lsn, uint64_t size, uint64_t last_lsn)
{
	pthread_mutex_lock(&t->mu);
	size_t i = find(t, first_lsn);
	if (i < t->n) {
		t->bytes = t->bytes - t->s[i].info.size + size;
		t->s[i].info.size = size;
		t->s[i].info.last_lsn = last_lsn;
	}
	pthread_mutex_unlock(&t->mu);
}

void segtab_account(void *arg, uint64_t seg, int64_t delta)
{
	struct segtab *t = arg;
	pthread_mutex_lock(&t->mu);
	size_t i = find(t, seg);
	if (i < t->n) {
		t->s[i].info.live += (uint64_t)delta;
		t->live += (uint64_t)delta;
	}
	pthread_mutex_unlock(&t->mu);
}

/* Pin segment seg's descriptor, opening it on first use; *around: small reads may read around
 * (READ_AROUND). */
static int pin(struct segtab *t, uint64_t seg, struct rfd **out, int *around)
{
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	size_t i = find(t, seg);
	if (i == t->n) {
		rc = -ENOENT;
		goto out;
	}
	struct rfd *r = t->s[i].rfd;
	if (r->fd < 0) {
		char path[PATH_MAX], name[32];
		rfd_evict(t);
		seg_name(name, sizeof(name), seg);
		snprintf(path, sizeof(path), "%s/%s", t->dir, name);
		rc = t->io->open(t->io, path, O_RDONLY, 0, &r->fd);
		if (rc) {
			r->fd = -1;
			goto out;
		}
		t->nopen++;
	}
	r->pins++;
	r->used = ++t->tick;
	*out = r;
	*around = t->bytes <= t->around_max;
out:
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static void unpin(struct segtab *t, struct rfd *r)
{
	pthread_mutex_lock(&t->mu);
	rfd_unpin(t, r);
	pthread_mutex_unlock(&t->mu);
}

/* The data of one operation is laid out as a table of chunk checksums (u32 each, one per
 * DATA_CHUNK bytes) right before the bytes themselves (record.h). To hand out bytes
 * [at, at + len) of it, read every chunk they touch whole and its checksum, and check. */
/* The checksum table and the data it covers lie apart in a record by the rest of the table and
 * the chunks before the range: up to this gap they are read with one pread (a small value's
 * checksum sits right before its bytes). */
#define ONE_READ_GAP 4096u

int segtab_read(struct segtab *t, const struct kvext *e, uint64_t from, void *buf, size_t len,
		uint64_t *bad_seg, uint64_t *bad_off)
{
	uint64_t at = e->pos + from - e->cbase; /* offset in the operation's data */
	uint64_t c0 = at / DATA_CHUNK, c1 = (at + len - 1) / DATA_CHUNK;
	uint64_t nchunks = data_chunks(e->dlen);
	uint64_t span_lo = c0 * DATA_CHUNK, span_hi = (c1 + 1) * DATA_CHUNK;
	uint8_t *whole = NULL, *span = NULL, stack[8192], *crcs;
	struct rfd *r = NULL;
	size_t got;
	int rc;

	if (!len)
		return 0;
	if (span_hi > e->dlen)
		span_hi = e->dlen;
	size_t ncrc = (size_t)(c1 - c0 + 1), span_len = (size_t)(span_hi - span_lo);
	uint64_t tab = e->cbase - 4 * nchunks + 4 * c0, data_at = e->cbase + span_lo;
	uint64_t gap = data_at - (tab + 4 * ncrc);
	int one = gap <= ONE_READ_GAP;
	/* one read: table, gap and span in one buffer; else the table apart, the span straight
	 * into the caller's buffer when the range is whole chunks */
	size_t first_len = one ? (size_t)(4 * ncrc + gap + span_len) : 4 * ncrc;
	int around;
	rc = pin(t, e->seg, &r, &around);
	if (rc)
		return rc;
	whole = first_len <= sizeof(stack) ? stack : malloc(first_len);
	if (!whole) {
		rc = -ENOMEM;
		goto out;
	}
	crcs = whole;
	if (one)
		span = whole + 4 * ncrc + gap;
	else
		span = (span_lo == at && span_len == len) ? buf : malloc(span_len);
	if (!span) {
		rc = -ENOMEM;
		goto out;
	}
	if (around && t->io->pread_around && first_len <= READ_AROUND)
		rc = t->io->pread_around(t->io, r->fd, whole, first_len, tab, READ_AROUND, &got);
	else
		rc = t->io->pread(t->io, r->fd, whole, first_len, tab, &got);
	if (!rc && got != first_len)
		rc = -EIO, *bad_off = tab + got;
	if (!rc && !one) {
		rc = t->io->pread(t->io, r->fd, span, span_len, data_at, &got);
		if (!rc && got != span_len)
			rc = -EIO, *bad_off = data_at + got;
	}
	for (size_t k = 0; !rc && k < ncrc; k++) {
		size_t lo = k * DATA_CHUNK, n = span_len - lo < DATA_CHUNK ? span_len - lo : DATA_CHUNK;
		if (crc32c(0, span + lo, n) != le_get32(crcs + 4 * k))
			rc = -EIO, *bad_off = data_at + lo;
	}
	if (rc == -EIO)
		*bad_seg = e->seg;
	if (!rc && span != buf)
		memcpy(buf, span + (at - span_lo), len);
out:
	if (!one && span != buf)
		free(span);
	if (whole != stack)
		free(whole);
	unpin(t, r);
	return rc;
}

int segtab_list(struct segtab *t, struct seg_info **out, size_t *n)
{
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	*out = malloc((t->n ? t->n : 1) * sizeof(**out));
	if (!*out) {
		rc = -ENOMEM;
	} else {
		for (size_t i = 0; i < t->n; i++)
			(*out)[i] = t->s[i].info;
		*n = t->n;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

uint64_t segtab_count(struct segtab *t)
{
	pthread_mutex_lock(&t->mu);
	uint64_t n = t->n;
	pthread_mutex_unlock(&t->mu);
	return n;
}

void segtab_totals(struct segtab *t, uint64_t *bytes, uint64_t *live)
{
	pthread_mutex_lock(&t->mu);
	*bytes = t->bytes;
	*live = t->live;
	pthread_mutex_unlock(&t->mu);
}

uint64_t segtab_largest(struct segtab *t)
{
	uint64_t max = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n; i++)
		if (t->s[i].info.size > max)
			max = t->s[i].info.size;
	pthread_mutex_unlock(&t->mu);
	return max;
}

void segtab_forget(struct segtab *t, uint64_t first_lsn)
{
	pthread_mutex_lock(&t->mu);
	size_t i = find(t, first_lsn);
	if (i < t->n) {
		t->bytes -= t->s[i].info.size;
		t->live -= t->s[i].info.live;
		rfd_unpin(t, t->s[i].rfd);
		memmove(t->s + i, t->s + i + 1, (t->n - i - 1) * sizeof(*t->s));
		t->n--;
	}
	pthread_mutex_unlock(&t->mu);
}

void segtab_reset_live(struct segtab *t)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n; i++)
		t->s[i].info.live = 0;
	t->live = 0;
	pthread_mutex_unlock(&t->mu);
}

int segtab_delete(struct segtab *t, uint64_t first_lsn)
{
	char path[PATH_MAX], name[32];
	int rc;

	seg_name(name, sizeof(name), first_lsn);
	snprintf(path, sizeof(path), "%s/%s", t->dir, name);
	rc = t->io->unlink(t->io, path);
	if (rc && rc != -ENOENT)
		return rc;
	segtab_forget(t, first_lsn);
	return 0;
}
