/* faultio.c — the simulated disk: an in-memory namespace of inodes, each with a current and a
 * durable state, behind struct kvio. See faultio.h for the model it implements.
 *
 * Invariants (all under f->mu):
 * - Every inode alive in memory is on f->inodes. It stays alive while anything refers to it:
 *   a current entry (nlink), a durable entry (dlink), an fd (nopen) or a queued directory
 *   change (nops); the root is pinned. inode_release frees it when all four drop to zero.
 * - A file's current contents are its durable contents with its events (ino->ev) replayed in
 *   order, except where a write was lost to a failed fdatasync: its bytes are in the current
 *   contents only (replay turns it into a size change), until overwritten.
 * - Each directory's durable entries plus the queued changes touching it (f->ops, in order)
 *   give its current entries.
 * - In a struct buf every byte at or past len reads as zero, so growing is just setting len. */
#include "faultio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define WALK_DEPTH 256     /* directory levels a path may descend */
#define COMPARE_DEPTH 256  /* guards faultio_compare against a (durable) cycle */

/* ---- small helpers ---------------------------------------------------------------------- */

/* Room for need elements: the (possibly moved) array, or NULL with the old one untouched. */
static void *grow(void *v, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 8;

	if (need <= *cap)
		return v;
	while (ncap < need)
		ncap *= 2;
	v = realloc(v, ncap * elem);
	if (v)
		*cap = ncap;
	return v;
}

/* splitmix64: tiny, seedable, good enough to pick tear points and garbage. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* ---- struct buf: sparse file contents in pages; a missing page reads as zeros ----------- */

struct buf {
	uint8_t **pg;  /* page table; NULL entries and entries past npg are zeros */
	size_t npg;
	uint64_t len;
};

static const uint8_t zero_page[PAGE];

static void buf_free(struct buf *b)
{
	for (size_t i = 0; i < b->npg; i++)
		free(b->pg[i]);
	free(b->pg);
	memset(b, 0, sizeof(*b));
}

static const uint8_t *buf_page(const struct buf *b, size_t i)
{
	return i < b->npg && b->pg[i] ? b->pg[i] : zero_page;
}

/* Makes the pages under [off, off+n) real. A new page is zeros, so this never changes the
 * contents: callers prepare first and then change things with calls that cannot fail. */
static int buf_prepare(struct buf *b, uint64_t off, uint64_t n)
{
	size_t first, last;

	if (n == 0)
		return 0;
	first = (size_t)(off / PAGE);
	last = (size_t)((off + n - 1) / PAGE);
	if (last >= b->npg) {
		size_t nn = b->npg * 2 > last + 1 ? b->npg * 2 : last + 1;
		uint8_t **t = realloc(b->pg, nn * sizeof(*t));

		if (!t)
			return -ENOMEM;
		memset(t + b->npg, 0, (nn - b->npg) * sizeof(*t));
		b->pg = t;
		b->npg = nn;
	}
	for (size_t i = first; i <= last; i++) {
		if (!b->pg[i] && !(b->pg[i] = calloc(1, PAGE)))
			return -ENOMEM;
	}
	return 0;
}

/* Zeros [off, off+n) where pages exist (a missing page is zeros already); len unchanged. */
static void buf_zero(struct buf *b, uint64_t off, uint64_t n)
{
	uint64_t end = off + n;

	while (off < end) {
		size_t i = (size_t)(off / PAGE), in = (size_t)(off % PAGE);
		size_t k = (size_t)min_u64(PAGE - in, end - off);

		if (i < b->npg && b->pg[i])
			memset(b->pg[i] + in, 0, k);
		off += k;
	}
}

/* Writes src (zeros when NULL) at [off, off+n), growing len. Data needs prepared pages; zeros
 * do not. */
static void buf_write(struct buf *b, uint64_t off, const void *src, uint64_t n)
{
	const uint8_t *s = src;
	uint64_t end = off + n;

	if (n == 0)
		return; /* a write of nothing (a tear at its start) does not extend the file */
	if (!s)
		buf_zero(b, off, n);
	while (s && off < end) {
		size_t i = (size_t)(off / PAGE), in = (size_t)(off % PAGE);
		size_t k = (size_t)min_u64(PAGE - in, end - off);

		memcpy(b->pg[i] + in, s, k);
		s += k;
		off += k;
	}
	if (end > b->len)
		b->len = end;
}

/* Copies [off, off+n) out; the caller keeps it inside len. */
static void buf_read(const struct buf *b, uint64_t off, void *dst, uint64_t n)
{
	uint8_t *d = dst;
	uint64_t end = off + n;

	while (off < end) {
		size_t i = (size_t)(off / PAGE), in = (size_t)(off % PAGE);
		size_t k = (size_t)min_u64(PAGE - in, end - off);

		memcpy(d, buf_page(b, i) + in, k);
		d += k;
		off += k;
	}
}

/* Sets the length. Cut bytes are zeroed to keep the invariant; with release, pages wholly
 * past the end are freed (replay keeps them: they were prepared for later writes). */
static void buf_setlen(struct buf *b, uint64_t len, bool release)
{
	if (len < b->len) {
		buf_zero(b, len, b->len - len);
		for (size_t i = (size_t)((len + PAGE - 1) / PAGE); release && i < b->npg; i++) {
			free(b->pg[i]);
			b->pg[i] = NULL;
		}
	}
	b->len = len;
}

static int buf_copy(struct buf *dst, const struct buf *src)
{
	size_t used = (size_t)((src->len + PAGE - 1) / PAGE);

	memset(dst, 0, sizeof(*dst));
	if (used > src->npg)
		used = src->npg;
	if (used) {
		dst->pg = calloc(used, sizeof(*dst->pg));
		if (!dst->pg)
			return -ENOMEM;
		dst->npg = used;
	}
	for (size_t i = 0; i < used; i++) {
		if (!src->pg[i])
			continue;
		dst->pg[i] = malloc(PAGE);
		if (!dst->pg[i]) {
			buf_free(dst);
			return -ENOMEM;
		}
		memcpy(dst->pg[i], src->pg[i], PAGE);
	}
	dst->len = src->len;
	return 0;
}

/* Offset of the first byte that differs (a length difference counts at the shorter end), or
 * UINT64_MAX when equal. */
static uint64_t buf_diff(const struct buf *a, const struct buf *b)
{
	uint64_t n = min_u64(a->len, b->len);

	for (uint64_t off = 0; off < n; off += PAGE) {
		const uint8_t *pa = buf_page(a, (size_t)(off / PAGE));
		const uint8_t *pb = buf_page(b, (size_t)(off / PAGE));
		size_t k = (size_t)min_u64(PAGE, n - off);

		if (pa == pb || !memcmp(pa, pb, k))
			continue;
		for (size_t j = 0; j < k; j++) {
			if (pa[j] != pb[j])
				return off + j;
		}
	}
	return a->len == b->len ? UINT64_MAX : n;
}

/* ---- inodes, directory maps, unsynced events ------------------------------------------- */

/* One unsynced change of a file's data or size since its last successful fdatasync. */
struct event {
	uint64_t off;  /* a write's offset, or a size change's new length */
	uint64_t len;  /* a write's length */
	uint8_t *data; /* a write's bytes; NULL once lost */
	bool write;
	bool lost;     /* an fdatasync failed after it: its bytes may never become durable */
};

struct dent {
	char *name;
	struct inode *ino;
};

struct dirmap {        /* sorted by name */
	struct dent *v;
	size_t n, cap;
};

struct inode {
	struct inode *prev, *next;  /* f->inodes */
	uint64_t ino;               /* seeds per-file crash randomness; kept by clones */
	bool is_dir;
	unsigned nlink, dlink, nopen, nops;
	int lock_fd;                /* fd holding the exclusive flock, or -1 */
	unsigned nshared;           /* fds holding a shared flock */
	struct buf cur, dur;        /* files: current and durable contents */
	struct event *ev;           /* files: unsynced events, oldest first */
	size_t nev, cap_ev;
	struct dirmap ents, dents;  /* directories: current and durable entries */
	bool mark;                  /* scratch for crash, clone */
	bool blocked;               /* scratch for ops_commit */
	struct inode *copy;         /* scratch for clone */
};

/* A directory change waiting for fsync_dir. A rename names two directories (the same one
 * twice for a rename within one); it is durable only once both are synced. */
enum nsop_kind { NS_LINK, NS_UNLINK, NS_RENAME };

struct nsop {
	enum nsop_kind kind;
	struct inode *dir[2];  /* dir[1]: a rename's target directory, else NULL */
	char *name[2];
	struct inode *ino;     /* the inode linked or renamed; NULL for unlink */
	bool synced[2];        /* that directory was fsync'd since the change */
};

struct fdslot {
	struct inode *ino;     /* NULL: free */
	int flags;
	bool shared_lock;      /* holds one of ino->nshared */
};

struct rule {
	enum fio_op op;
	uint64_t nth;
	int err;
	bool persistent;
};

struct short_rule {
	uint64_t nth;
	size_t keep;
	int err;
};

struct faultio {
	struct kvio io;
	pthread_mutex_t mu;
	struct inode *root;
	struct inode *inodes, *tail;
	uint64_t next_ino;
	struct nsop *ops;
	size_t nops, cap_ops;
	struct fdslot *fds;    /* fd = fd_base + index */
	size_t nfds, cap_fds;
	int fd_base;           /* raised past every old fd at a crash, so old fds stay invalid */
	uint64_t counts[FIO_OP_ANY];
	uint64_t calls;
	struct rule *rules;
	size_t nrules, cap_rules;
	struct short_rule *shorts;
	size_t nshorts, cap_shorts;
	uint64_t crash_at;     /* 0: alive */
	bool paused;           /* faultio_pause: calls are neither counted nor faulted */
	uint64_t capacity;     /* 0: unlimited */
	uint64_t list_seed;
};

static const struct dirmap *view_map(const struct inode *d, enum fio_view v)
{
	return v == FIO_VIEW_DURABLE ? &d->dents : &d->ents;
}

static const struct buf *view_buf(const struct inode *i, enum fio_view v)
{
	return v == FIO_VIEW_DURABLE ? &i->dur : &i->cur;
}

/* Index where name is or would go. */
static size_t dm_search(const struct dirmap *m, const char *name, bool *found)
{
	size_t lo = 0, hi = m->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(m->v[mid].name, name);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct inode *dm_get(const struct dirmap *m, const char *name)
{
	bool found;
	size_t i = dm_search(m, name, &found);

	return found ? m->v[i].ino : NULL;
}

/* Points name at ino; *old is the inode it pointed at before (NULL: new name). Fails only
 * before changing anything. Reference counts are the caller's. */
static int dm_set(struct dirmap *m, const char *name, struct inode *ino, struct inode **old)
{
	bool found;
	size_t i = dm_search(m, name, &found);
	struct dent *v;
	char *copy;

	*old = NULL;
	if (found) {
		*old = m->v[i].ino;
		m->v[i].ino = ino;
		return 0;
	}
	v = grow(m->v, &m->cap, m->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->v = v;
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*v));
	m->v[i].name = copy;
	m->v[i].ino = ino;
	m->n++;
	return 0;
}

/* Removes name; returns the inode it named, or NULL. */
static struct inode *dm_del(struct dirmap *m, const char *name)
{
	bool found;
	size_t i = dm_search(m, name, &found);
	struct inode *ino;

	if (!found)
		return NULL;
	ino = m->v[i].ino;
	free(m->v[i].name);
	memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
	m->n--;
	return ino;
}

static void dm_free(struct dirmap *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->v[i].name);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

/* A copy of src; with translate, each inode is replaced by its ->copy (for clones). */
static int dm_copy(struct dirmap *dst, const struct dirmap *src, bool translate)
{
	memset(dst, 0, sizeof(*dst));
	if (!src->n)
		return 0;
	dst->v = calloc(src->n, sizeof(*dst->v));
	if (!dst->v)
		return -ENOMEM;
	dst->cap = src->n;
	for (size_t i = 0; i < src->n; i++) {
		dst->v[i].name = strdup(src->v[i].name);
		if (!dst->v[i].name) {
			dm_free(dst);
			return -ENOMEM;
		}
		dst->v[i].ino = translate ? src->v[i].ino->copy : src->v[i].ino;
		dst->n++;
	}
	return 0;
}

static void events_clear(struct inode *ino)
{
	for (size_t i = 0; i < ino->nev; i++)
		free(ino->ev[i].data);
	ino->nev = 0;
}

static int events_reserve(struct inode *ino)
{
	struct event *v = grow(ino->ev, &ino->cap_ev, ino->nev + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	ino->ev = v;
	return 0;
}

static struct inode *inode_new(struct faultio *f, bool is_dir)
{
	struct inode *ino = calloc(1, sizeof(*ino));

	if (!ino)
		return NULL;
	ino->ino = ++f->next_ino;
	ino->is_dir = is_dir;
	ino->lock_fd = -1;
	ino->prev = f->tail;
	if (f->tail)
		f->tail->next = ino;
	else
		f->inodes = ino;
	f->tail = ino;
	return ino;
}

/* Frees one inode without touching anything it refers to. */
static void inode_destroy(struct faultio *f, struct inode *ino)
{
	if (ino->prev)
		ino->prev->next = ino->next;
	else
		f->inodes = ino->next;
	if (ino->next)
		ino->next->prev = ino->prev;
	else
		f->tail = ino->prev;
	buf_free(&ino->cur);
	buf_free(&ino->dur);
	events_clear(ino);
	free(ino->ev);
	dm_free(&ino->ents);
	dm_free(&ino->dents);
	free(ino);
}

/* Frees ino once nothing refers to it, and then whatever only it kept alive. */
static void inode_release(struct faultio *f, struct inode *ino)
{
	struct dirmap ents, dents;

	if (ino == f->root || ino->nlink || ino->dlink || ino->nopen || ino->nops)
		return;
	ents = ino->ents;
	dents = ino->dents;
	memset(&ino->ents, 0, sizeof(ino->ents));
	memset(&ino->dents, 0, sizeof(ino->dents));
	inode_destroy(f, ino);
	for (size_t i = 0; i < ents.n; i++) {
		ents.v[i].ino->nlink--;
		inode_release(f, ents.v[i].ino);
	}
	for (size_t i = 0; i < dents.n; i++) {
		dents.v[i].ino->dlink--;
		inode_release(f, dents.v[i].ino);
	}
	dm_free(&ents);
	dm_free(&dents);
}

/* Sets every reference count from the structures that hold references. */
static void recount(struct faultio *f)
{
	for (struct inode *i = f->inodes; i; i = i->next) {
		i->nlink = i->dlink = i->nopen = i->nops = 0;
		i->blocked = false;
	}
	f->root->nlink = f->root->dlink = 1;
	for (struct inode *d = f->inodes; d; d = d->next) {
		for (size_t k = 0; k < d->ents.n; k++)
			d->ents.v[k].ino->nlink++;
		for (size_t k = 0; k < d->dents.n; k++)
			d->dents.v[k].ino->dlink++;
	}
	for (size_t k = 0; k < f->nops; k++) {
		struct nsop *op = &f->ops[k];

		op->dir[0]->nops++;
		if (op->dir[1])
			op->dir[1]->nops++;
		if (op->ino)
			op->ino->nops++;
	}
	for (size_t k = 0; k < f->nfds; k++) {
		if (f->fds[k].ino)
			f->fds[k].ino->nopen++;
	}
}

/* Bytes held by files that are named or open. */
static uint64_t space_used(const struct faultio *f)
{
	uint64_t used = 0;

	for (const struct inode *i = f->inodes; i; i = i->next) {
		if (!i->is_dir && (i->nlink || i->nopen))
			used += i->cur.len;
	}
	return used;
}

static int space_check(const struct faultio *f, const struct inode *ino, uint64_t newlen)
{
	if (!f->capacity || newlen <= ino->cur.len)
		return 0;
	return space_used(f) + (newlen - ino->cur.len) > f->capacity ? -ENOSPC : 0;
}

/* ---- file data: writes, size changes, fdatasync, replay --------------------------------- */

/* Records a write (prefix of a pwrite, maybe) as current data and an unsynced event. */
static int file_write(struct faultio *f, struct inode *ino, const void *src, uint64_t n,
		      uint64_t off)
{
	struct event *e;
	uint8_t *copy;
	int rc;

	if (n == 0)
		return 0;
	if (off > FIO_MAX_FILE || n > FIO_MAX_FILE - off)
		return -EFBIG;
	rc = space_check(f, ino, off + n);
	if (rc)
		return rc;
	rc = events_reserve(ino);
	if (rc)
		return rc;
	copy = malloc((size_t)n);
	if (!copy)
		return -ENOMEM;
	rc = buf_prepare(&ino->cur, off, n);
	if (rc) {
		free(copy);
		return rc;
	}
	memcpy(copy, src, (size_t)n);
	buf_write(&ino->cur, off, src, n);
	e = &ino->ev[ino->nev++];
	*e = (struct event){ .off = off, .len = n, .data = copy, .write = true };
	return 0;
}

/* ftruncate, O_TRUNC, and fallocate's extension. */
static int file_setlen(struct faultio *f, struct inode *ino, uint64_t len)
{
	int rc;

	if (len > FIO_MAX_FILE)
		return -EFBIG;
	rc = space_check(f, ino, len);
	if (rc)
		return rc;
	rc = events_reserve(ino);
	if (rc)
		return rc;
	buf_setlen(&ino->cur, len, true);
	ino->ev[ino->nev++] = (struct event){ .off = len };
	return 0;
}

enum fill { FILL_DATA, FILL_ZERO, FILL_RANDOM };

/* How to replay a file's events onto a copy of its durable contents. */
struct replay {
	enum fill fill;
	size_t upto;    /* events [0, upto) are replayed */
	bool torn;      /* then event upto, a write, keeps only its first keep bytes */
	uint64_t keep;
	uint64_t rng;   /* FILL_RANDOM's state */
};

/* Pages replay may write, made real in advance so that replay cannot fail. */
static int replay_prepare(struct buf *b, const struct inode *ino)
{
	for (size_t i = 0; i < ino->nev; i++) {
		const struct event *e = &ino->ev[i];
		int rc;

		if (!e->write || e->lost)
			continue;
		rc = buf_prepare(b, e->off, e->len);
		if (rc)
			return rc;
	}
	return 0;
}

static void replay_write(struct buf *b, const struct event *e, uint64_t n, struct replay *r)
{
	uint8_t chunk[512];

	if (e->lost) {
		/* Only the length it implied can reach the disk, never its bytes. */
		if (e->off + e->len > b->len)
			buf_setlen(b, e->off + e->len, false);
		return;
	}
	switch (r->fill) {
	case FILL_DATA:
		buf_write(b, e->off, e->data, n);
		break;
	case FILL_ZERO:
		buf_write(b, e->off, NULL, n);
		break;
	case FILL_RANDOM:
		for (uint64_t done = 0; done < n; done += sizeof(chunk)) {
			size_t k = (size_t)min_u64(sizeof(chunk), n - done);

			for (size_t j = 0; j < k; j += 8) {
				uint64_t x = rng_next(&r->rng);

				memcpy(chunk + j, &x, k - j < 8 ? k - j : 8);
			}
			buf_write(b, e->off + done, chunk, k);
		}
		break;
	}
}

/* Replays the events onto b; its pages must have been prepared with replay_prepare. */
static void replay(struct buf *b, const struct inode *ino, struct replay r)
{
	for (size_t i = 0; i < r.upto; i++) {
		const struct event *e = &ino->ev[i];

		if (e->write)
			replay_write(b, e, e->len, &r);
		else
			buf_setlen(b, e->off, false);
	}
	if (r.torn)
		replay_write(b, &ino->ev[r.upto], r.keep, &r);
}

/* A successful fdatasync: the current contents become durable (lost bytes excepted). */
static int file_sync(struct inode *ino)
{
	int rc = replay_prepare(&ino->dur, ino);

	if (rc)
		return rc;
	replay(&ino->dur, ino, (struct replay){ .fill = FILL_DATA, .upto = ino->nev });
	events_clear(ino);
	return 0;
}

/* A failed fdatasync, as on Linux: the dirty pages are marked clean without reaching the
 * disk, so no later fdatasync writes them. Size changes stay pending. */
static void file_sync_failed(struct inode *ino)
{
	for (size_t i = 0; i < ino->nev; i++) {
		struct event *e = &ino->ev[i];

		if (e->write && !e->lost) {
			e->lost = true;
			free(e->data);
			e->data = NULL;
		}
	}
}

/* What a crash in mode leaves of the file's unsynced events (see enum fio_crash). */
static struct replay crash_replay(const struct inode *ino, enum fio_crash mode, uint64_t seed)
{
	struct replay r = { .fill = FILL_DATA, .upto = ino->nev };

	r.rng = seed ^ (ino->ino * 0xd6e8feb86659fd93ull);
	rng_next(&r.rng);
	switch (mode) {
	case FIO_CRASH_DROP:
		r.upto = 0;
		break;
	case FIO_CRASH_TEAR:
		for (size_t i = ino->nev; i-- > 0;) {
			const struct event *e = &ino->ev[i];

			if (e->write && !e->lost) {
				/* Cut points: the write's start, or any sector boundary inside it. */
				uint64_t s = e->off / FIO_SECTOR, t = (e->off + e->len - 1) / FIO_SECTOR;
				uint64_t k = rng_next(&r.rng) % (1 + t - s);

				r.upto = i;
				r.torn = true;
				r.keep = k ? (s + k) * FIO_SECTOR - e->off : 0;
				break;
			}
		}
		break;
	case FIO_CRASH_ZERO:
		r.fill = FILL_ZERO;
		break;
	case FIO_CRASH_GARBAGE:
		r.fill = FILL_RANDOM;
		break;
	case FIO_CRASH_KEEP:
	case FIO_CRASH_KILL:
		break;
	}
	return r;
}

/* ---- paths ------------------------------------------------------------------------------ */

struct walk {
	struct inode *parent;     /* the directory the last name was looked up in; NULL for "/"
				   * and for paths ending in "." or ".." */
	struct inode *ino;        /* what the path names; NULL when only the last name is missing */
	char name[NAME_MAX + 1];  /* the last name */
	bool slash;               /* the path ends in '/' */
};

/* Resolves an absolute path through the current or the durable entries. */
static int walk(const struct faultio *f, const char *path, enum fio_view v, struct walk *w)
{
	struct inode *up[WALK_DEPTH]; /* the directories above cur, for ".." */
	size_t depth = 0, plen;
	struct inode *cur = f->root;
	const char *p = path;

	memset(w, 0, sizeof(*w));
	if (!path || path[0] != '/')
		return -EINVAL;
	plen = strlen(path);
	if (plen >= PATH_MAX)
		return -ENAMETOOLONG;
	w->slash = plen > 1 && path[plen - 1] == '/';
	for (;;) {
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		n = strcspn(p, "/");
		if (n > NAME_MAX)
			return -ENAMETOOLONG;
		if (!cur)
			return -ENOENT;
		if (!cur->is_dir)
			return -ENOTDIR;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			if (n == 2 && depth)
				cur = up[--depth];
			w->parent = NULL;
			w->name[0] = '\0';
		} else {
			if (depth == WALK_DEPTH)
				return -ENAMETOOLONG;
			up[depth++] = cur;
			memcpy(w->name, p, n);
			w->name[n] = '\0';
			w->parent = cur;
			cur = dm_get(view_map(cur, v), w->name);
		}
		p += n;
	}
	w->ino = cur;
	return 0;
}

/* ---- directory changes and their durability ------------------------------------------- */

/* Allocates what queueing a change needs, so that op_push cannot fail. */
static int op_prepare(struct faultio *f, struct nsop *op, enum nsop_kind kind, struct inode *d0,
		      const char *n0, struct inode *d1, const char *n1, struct inode *ino)
{
	struct nsop *v = grow(f->ops, &f->cap_ops, f->nops + 1, sizeof(*v));

	memset(op, 0, sizeof(*op));
	if (!v)
		return -ENOMEM;
	f->ops = v;
	*op = (struct nsop){ .kind = kind, .dir = { d0, d1 }, .ino = ino, .synced = { false, !d1 } };
	op->name[0] = strdup(n0);
	op->name[1] = n1 ? strdup(n1) : NULL;
	if (!op->name[0] || (n1 && !op->name[1])) {
		free(op->name[0]);
		free(op->name[1]);
		return -ENOMEM;
	}
	return 0;
}

static void op_discard(struct nsop *op)
{
	free(op->name[0]);
	free(op->name[1]);
}

static void op_push(struct faultio *f, const struct nsop *op)
{
	op->dir[0]->nops++;
	if (op->dir[1])
		op->dir[1]->nops++;
	if (op->ino)
		op->ino->nops++;
	f->ops[f->nops++] = *op;
}

/* Drops a queued change's references (it has been applied, or the process is gone). */
static void op_drop(struct faultio *f, struct nsop *op)
{
	struct inode *refs[3] = { op->dir[0], op->dir[1], op->ino };

	op_discard(op);
	for (int i = 0; i < 3; i++) {
		if (refs[i]) {
			refs[i]->nops--;
			inode_release(f, refs[i]);
		}
	}
}

static int cur_set(struct faultio *f, struct inode *dir, const char *name, struct inode *ino)
{
	struct inode *old;
	int rc = dm_set(&dir->ents, name, ino, &old);

	if (rc)
		return rc;
	ino->nlink++;
	if (old) {
		old->nlink--;
		inode_release(f, old);
	}
	return 0;
}

static void cur_del(struct faultio *f, struct inode *dir, const char *name)
{
	struct inode *old = dm_del(&dir->ents, name);

	if (old) {
		old->nlink--;
		inode_release(f, old);
	}
}

static int dur_set(struct faultio *f, struct inode *dir, const char *name, struct inode *ino)
{
	struct inode *old;
	int rc = dm_set(&dir->dents, name, ino, &old);

	if (rc)
		return rc;
	ino->dlink++;
	if (old) {
		old->dlink--;
		inode_release(f, old);
	}
	return 0;
}

static void dur_del(struct faultio *f, struct inode *dir, const char *name)
{
	struct inode *old = dm_del(&dir->dents, name);

	if (old) {
		old->dlink--;
		inode_release(f, old);
	}
}

/* Current entries change now; the durable ones when the directory is synced. The queued
 * change holds a reference to ino, so nothing here can free it early. */
static int ns_link(struct faultio *f, struct inode *dir, const char *name, struct inode *ino)
{
	struct nsop op;
	int rc = op_prepare(f, &op, NS_LINK, dir, name, NULL, NULL, ino);

	if (rc)
		return rc;
	rc = cur_set(f, dir, name, ino);
	if (rc) {
		op_discard(&op);
		return rc;
	}
	op_push(f, &op);
	return 0;
}

static int ns_unlink(struct faultio *f, struct inode *dir, const char *name)
{
	struct nsop op;
	int rc = op_prepare(f, &op, NS_UNLINK, dir, name, NULL, NULL, NULL);

	if (rc)
		return rc;
	op_push(f, &op);
	cur_del(f, dir, name);
	return 0;
}

static int ns_rename(struct faultio *f, struct inode *sd, const char *sn, struct inode *td,
		     const char *tn)
{
	struct inode *ino = dm_get(&sd->ents, sn);
	struct nsop op;
	int rc = op_prepare(f, &op, NS_RENAME, sd, sn, td, tn, ino);

	if (rc)
		return rc;
	op_push(f, &op);  /* pins ino while it is briefly named twice or not at all */
	rc = cur_set(f, td, tn, ino);
	if (rc) {
		f->nops--;
		op_drop(f, &f->ops[f->nops]);
		return rc;
	}
	cur_del(f, sd, sn);
	return 0;
}

static int op_apply(struct faultio *f, const struct nsop *op)
{
	int rc = 0;

	switch (op->kind) {
	case NS_LINK:
		rc = dur_set(f, op->dir[0], op->name[0], op->ino);
		break;
	case NS_UNLINK:
		dur_del(f, op->dir[0], op->name[0]);
		break;
	case NS_RENAME:
		rc = dur_set(f, op->dir[1], op->name[1], op->ino);
		if (!rc)
			dur_del(f, op->dir[0], op->name[0]);
		break;
	}
	return rc;
}

/* Makes queued changes durable: each one once every directory it touches has been synced
 * since, and only after all earlier queued changes of those directories (a directory's
 * changes reach the disk in order). */
static int ops_commit(struct faultio *f)
{
	size_t keep = 0;
	int rc = 0;

	for (size_t i = 0; i < f->nops; i++) {
		struct nsop op = f->ops[i];
		bool ready = !rc && op.synced[0] && op.synced[1] && !op.dir[0]->blocked &&
			     !(op.dir[1] && op.dir[1]->blocked);

		if (ready) {
			rc = op_apply(f, &op);
			if (!rc) {
				op_drop(f, &op);
				continue;
			}
		}
		op.dir[0]->blocked = true;
		if (op.dir[1])
			op.dir[1]->blocked = true;
		f->ops[keep++] = op;
	}
	f->nops = keep;
	for (size_t i = 0; i < f->nops; i++) {
		f->ops[i].dir[0]->blocked = false;
		if (f->ops[i].dir[1])
			f->ops[i].dir[1]->blocked = false;
	}
	return rc;
}

static int dir_sync(struct faultio *f, struct inode *dir)
{
	for (size_t i = 0; i < f->nops; i++) {
		for (int k = 0; k < 2; k++) {
			if (f->ops[i].dir[k] == dir)
				f->ops[i].synced[k] = true;
		}
	}
	return ops_commit(f);
}

static bool dir_has_queued(const struct faultio *f, const struct inode *dir)
{
	for (size_t i = 0; i < f->nops; i++) {
		if (f->ops[i].dir[0] == dir || f->ops[i].dir[1] == dir)
			return true;
	}
	return false;
}

/* Whether d is dir or below it (for renaming a directory into itself). */
static bool dir_contains(const struct inode *dir, const struct inode *d)
{
	if (dir == d)
		return true;
	for (size_t i = 0; i < dir->ents.n; i++) {
		const struct inode *c = dir->ents.v[i].ino;

		if (c->is_dir && dir_contains(c, d))
			return true;
	}
	return false;
}

/* ---- fds -------------------------------------------------------------------------------- */

static int fd_reserve(struct faultio *f)
{
	struct fdslot *v;

	for (size_t i = 0; i < f->nfds; i++) {
		if (!f->fds[i].ino)
			return 0;
	}
	v = grow(f->fds, &f->cap_fds, f->nfds + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	f->fds = v;
	return 0;
}

/* The lowest free number, as POSIX does; fd_reserve made room. */
static int fd_alloc(struct faultio *f, struct inode *ino, int flags)
{
	size_t i = 0;

	while (i < f->nfds && f->fds[i].ino)
		i++;
	if (i == f->nfds)
		f->nfds++;
	f->fds[i] = (struct fdslot){ .ino = ino, .flags = flags };
	ino->nopen++;
	return f->fd_base + (int)i;
}

static struct fdslot *fd_get(struct faultio *f, int fd)
{
	if (fd < f->fd_base || (size_t)(fd - f->fd_base) >= f->nfds)
		return NULL;
	return f->fds[fd - f->fd_base].ino ? &f->fds[fd - f->fd_base] : NULL;
}

static void fd_release(struct faultio *f, int fd)
{
	struct fdslot *s = fd_get(f, fd);
	struct inode *ino = s->ino;

	s->ino = NULL;
	while (f->nfds && !f->fds[f->nfds - 1].ino)
		f->nfds--;
	if (ino->lock_fd == fd)
		ino->lock_fd = -1;
	if (s->shared_lock) {
		s->shared_lock = false;
		ino->nshared--;
	}
	ino->nopen--;
	inode_release(f, ino);
}

/* ---- the seam ----------------------------------------------------------------------------- */

struct fault {
	int err;      /* to return instead of doing the call (0: none) */
	bool dead;    /* past faultio_crash_at: change nothing at all */
	bool cut;     /* a short write: store keep bytes, then return err */
	size_t keep;
};

/* Counts the call and decides its fault. Called with f->mu held. */
static struct fault call_begin(struct faultio *f, enum fio_op op)
{
	struct fault ft = { 0 };

	if (f->paused)
		return ft;
	f->counts[op]++;
	f->calls++;
	if (f->crash_at && f->calls >= f->crash_at) {
		ft.dead = true;
		ft.err = -EIO;
		return ft;
	}
	for (size_t i = 0; i < f->nrules; i++) {
		const struct rule *r = &f->rules[i];
		uint64_t n = r->op == FIO_OP_ANY ? f->calls : f->counts[op];

		if (r->op != FIO_OP_ANY && r->op != op)
			continue;
		if (n == r->nth || (r->persistent && n > r->nth)) {
			ft.err = r->err;
			return ft;
		}
	}
	for (size_t i = 0; op == FIO_OP_PWRITE && i < f->nshorts; i++) {
		if (f->shorts[i].nth == f->counts[op]) {
			ft.cut = true;
			ft.keep = f->shorts[i].keep;
			ft.err = f->shorts[i].err;
			return ft;
		}
	}
	return ft;
}

static int do_open(struct faultio *f, const char *path, int flags, int *fd_out)
{
	int acc = flags & O_ACCMODE;
	struct inode *ino;
	struct walk w;
	int rc;

	if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR)
		return -EINVAL;
	rc = walk(f, path, FIO_VIEW_CURRENT, &w);
	if (rc)
		return rc;
	ino = w.ino;
	if (!ino) {
		if (!(flags & O_CREAT))
			return -ENOENT;
		if (w.slash || (flags & O_DIRECTORY))
			return -EISDIR;
	} else if ((flags & O_CREAT) && (flags & O_EXCL)) {
		return -EEXIST;
	} else if (ino->is_dir) {
		if (acc != O_RDONLY || (flags & (O_CREAT | O_TRUNC)))
			return -EISDIR;
	} else if (w.slash || (flags & O_DIRECTORY)) {
		return -ENOTDIR;
	}
	rc = fd_reserve(f);
	if (rc)
		return rc;
	if (!ino) {
		ino = inode_new(f, false);
		if (!ino)
			return -ENOMEM;
		rc = ns_link(f, w.parent, w.name, ino);
		if (rc) {
			inode_destroy(f, ino);
			return rc;
		}
	} else if ((flags & O_TRUNC) && !ino->is_dir && ino->cur.len) {
		rc = file_setlen(f, ino, 0);
		if (rc)
			return rc;
	}
	*fd_out = fd_alloc(f, ino, flags);
	return 0;
}

static int fio_open(const struct kvio *io, const char *path, int flags, mode_t mode, int *fd_out)
{
	struct faultio *f = io->ctx;
	struct fault ft;
	int rc;

	(void)mode;
	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_OPEN);
	rc = ft.err ? ft.err : do_open(f, path, flags, fd_out);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_close(const struct kvio *io, int fd)
{
	struct faultio *f = io->ctx;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_CLOSE);
	if (ft.dead) {
		rc = ft.err;
	} else if (!fd_get(f, fd)) {
		rc = -EBADF;
	} else {
		/* Linux frees the descriptor even when close reports an error. */
		fd_release(f, fd);
		rc = ft.err;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_pread(const struct kvio *io, int fd, void *buf, size_t len, uint64_t off,
		     size_t *got)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_PREAD);
	s = fd_get(f, fd);
	if (ft.err)
		rc = ft.err;
	else if (!s || (s->flags & O_ACCMODE) == O_WRONLY)
		rc = -EBADF;
	else if (s->ino->is_dir)
		rc = -EISDIR;
	else {
		uint64_t n = off >= s->ino->cur.len ? 0 : min_u64(len, s->ino->cur.len - off);

		buf_read(&s->ino->cur, off, buf, n);
		*got = (size_t)n;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_pwrite(const struct kvio *io, int fd, const void *buf, size_t len, uint64_t off)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_PWRITE);
	s = fd_get(f, fd);
	if (ft.err && !ft.cut)
		rc = ft.err;
	else if (!s || (s->flags & O_ACCMODE) == O_RDONLY)
		rc = -EBADF;
	else {
		rc = file_write(f, s->ino, buf, ft.cut ? min_u64(ft.keep, len) : len, off);
		if (!rc && ft.cut)
			rc = ft.err;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_fdatasync(const struct kvio *io, int fd)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_FDATASYNC);
	s = fd_get(f, fd);
	if (ft.dead) {
		rc = ft.err;
	} else if (!s) {
		rc = ft.err ? ft.err : -EBADF;
	} else if (ft.err) {
		if (!s->ino->is_dir)
			file_sync_failed(s->ino);
		rc = ft.err;
	} else if (s->ino->is_dir) {
		rc = dir_sync(f, s->ino);
	} else {
		rc = file_sync(s->ino);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_ftruncate(const struct kvio *io, int fd, uint64_t len)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_FTRUNCATE);
	s = fd_get(f, fd);
	if (ft.err)
		rc = ft.err;
	else if (!s)
		rc = -EBADF;
	else if ((s->flags & O_ACCMODE) == O_RDONLY || s->ino->is_dir)
		rc = -EINVAL;
	else
		rc = file_setlen(f, s->ino, len);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_fallocate(const struct kvio *io, int fd, uint64_t off, uint64_t len)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_FALLOCATE);
	s = fd_get(f, fd);
	if (ft.err)
		rc = ft.err;
	else if (!s || (s->flags & O_ACCMODE) == O_RDONLY)
		rc = -EBADF;
	else if (s->ino->is_dir)
		rc = -ENODEV;
	else if (len == 0)
		rc = -EINVAL;
	else if (off > FIO_MAX_FILE || len > FIO_MAX_FILE - off)
		rc = -EFBIG;
	else if (off + len > s->ino->cur.len)
		rc = file_setlen(f, s->ino, off + len);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_fsize(const struct kvio *io, int fd, uint64_t *size)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_FSIZE);
	s = fd_get(f, fd);
	if (ft.err)
		rc = ft.err;
	else if (!s)
		rc = -EBADF;
	else
		*size = s->ino->is_dir ? 0 : s->ino->cur.len;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int do_rename(struct faultio *f, const char *from, const char *to)
{
	struct walk ws, wt;
	struct inode *src, *dst;
	int rc;

	rc = walk(f, from, FIO_VIEW_CURRENT, &ws);
	if (rc)
		return rc;
	rc = walk(f, to, FIO_VIEW_CURRENT, &wt);
	if (rc)
		return rc;
	src = ws.ino;
	dst = wt.ino;
	if (!src)
		return -ENOENT;
	if (!ws.parent || !wt.parent)
		return -EBUSY;
	if ((ws.slash || wt.slash) && !src->is_dir)
		return -ENOTDIR;
	if (src == dst)
		return 0;
	if (src->is_dir) {
		if (dst && !dst->is_dir)
			return -ENOTDIR;
		if (dst && dst->ents.n)
			return -ENOTEMPTY;
		if (dir_contains(src, wt.parent))
			return -EINVAL;
	} else if (dst && dst->is_dir) {
		return -EISDIR;
	}
	return ns_rename(f, ws.parent, ws.name, wt.parent, wt.name);
}

static int fio_rename(const struct kvio *io, const char *from, const char *to)
{
	struct faultio *f = io->ctx;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_RENAME);
	rc = ft.err ? ft.err : do_rename(f, from, to);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* unlink (dir false) or rmdir (dir true): the errors POSIX gives, in its order. */
static int do_remove(struct faultio *f, const char *path, bool dir)
{
	struct walk w;
	int rc = walk(f, path, FIO_VIEW_CURRENT, &w);

	if (rc)
		return rc;
	if (!w.ino)
		return -ENOENT;
	if (w.ino->is_dir != dir)
		return dir ? -ENOTDIR : -EISDIR;
	if (!dir && w.slash)
		return -ENOTDIR;
	if (dir && !w.parent)
		return -EBUSY;
	if (dir && w.ino->ents.n)
		return -ENOTEMPTY;
	return ns_unlink(f, w.parent, w.name);
}

static int do_unlink(struct faultio *f, const char *path)
{
	return do_remove(f, path, false);
}

/*
 * The calls that take one path and touch only the namespace share their
 * frame: under the lock, an injected fault stands in for the body.
 */
static int path_call(const struct kvio *io, enum fio_op op,
		     int (*body)(struct faultio *, const char *), const char *path)
{
	struct faultio *f = io->ctx;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, op);
	rc = ft.err ? ft.err : body(f, path);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_unlink(const struct kvio *io, const char *path)
{
	return path_call(io, FIO_OP_UNLINK, do_unlink, path);
}

static int do_mkdir(struct faultio *f, const char *path)
{
	struct inode *dir;
	struct walk w;
	int rc = walk(f, path, FIO_VIEW_CURRENT, &w);

	if (rc)
		return rc;
	if (w.ino)
		return -EEXIST;
	dir = inode_new(f, true);
	if (!dir)
		return -ENOMEM;
	rc = ns_link(f, w.parent, w.name, dir);
	if (rc)
		inode_destroy(f, dir);
	return rc;
}

static int fio_mkdir(const struct kvio *io, const char *path, mode_t mode)
{
	(void)mode;
	return path_call(io, FIO_OP_MKDIR, do_mkdir, path);
}

static int do_rmdir(struct faultio *f, const char *path)
{
	return do_remove(f, path, true);
}

static int fio_rmdir(const struct kvio *io, const char *path)
{
	return path_call(io, FIO_OP_RMDIR, do_rmdir, path);
}

/* Resolves a path that must name a directory. */
static int walk_dir(const struct faultio *f, const char *path, enum fio_view v,
		    struct inode **dir)
{
	struct walk w;
	int rc = walk(f, path, v, &w);

	if (rc)
		return rc;
	if (!w.ino)
		return -ENOENT;
	if (!w.ino->is_dir)
		return -ENOTDIR;
	*dir = w.ino;
	return 0;
}

static int fio_fsync_dir(const struct kvio *io, const char *path)
{
	struct faultio *f = io->ctx;
	struct inode *dir;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_FSYNC_DIR);
	rc = ft.err;
	if (!rc)
		rc = walk_dir(f, path, FIO_VIEW_CURRENT, &dir);
	if (!rc)
		rc = dir_sync(f, dir);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* The names of dir, malloc'd each; sorted, or shuffled when seed is not 0. */
static int names_of(const struct inode *dir, uint64_t seed, char ***out, size_t *count)
{
	size_t n = dir->ents.n;
	char **names = NULL;

	if (n) {
		names = calloc(n, sizeof(*names));
		if (!names)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		names[i] = strdup(dir->ents.v[i].name);
		if (!names[i]) {
			faultio_free_names(names, i);
			return -ENOMEM;
		}
	}
	for (size_t i = n; seed && i > 1; i--) {
		size_t j = (size_t)(rng_next(&seed) % i);
		char *t = names[i - 1];

		names[i - 1] = names[j];
		names[j] = t;
	}
	*out = names;
	*count = n;
	return 0;
}

static int fio_list_dir(const struct kvio *io, const char *path, char ***names, size_t *count)
{
	struct faultio *f = io->ctx;
	struct inode *dir;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_LIST_DIR);
	rc = ft.err;
	if (!rc)
		rc = walk_dir(f, path, FIO_VIEW_CURRENT, &dir);
	if (!rc) {
		uint64_t seed = f->list_seed;

		if (seed)
			seed ^= f->counts[FIO_OP_LIST_DIR] * 0x9e3779b97f4a7c15ull;
		rc = names_of(dir, seed, names, count);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* The file as a reader sees it once the cache is gone: the durable contents with the unsynced
 * events replayed, lost writes showing the old bytes. */
static int file_drop_cache(struct inode *ino)
{
	struct buf b = { 0 };
	int rc = buf_copy(&b, &ino->dur);
	if (!rc)
		rc = replay_prepare(&b, ino);
	if (rc) {
		buf_free(&b);
		return rc;
	}
	replay(&b, ino, (struct replay){ .fill = FILL_DATA, .upto = ino->nev });
	buf_free(&ino->cur);
	ino->cur = b;
	return 0;
}

static int fio_drop_cache(const struct kvio *io, int fd)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_DROP_CACHE);
	s = fd_get(f, fd);
	if (ft.dead || ft.err)
		rc = ft.err;
	else if (!s)
		rc = -EBADF;
	else if (s->ino->is_dir)
		rc = 0;
	else
		rc = file_drop_cache(s->ino);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static int fio_lock(const struct kvio *io, int fd, int shared)
{
	struct faultio *f = io->ctx;
	struct fdslot *s;
	struct fault ft;
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	ft = call_begin(f, FIO_OP_LOCK);
	s = fd_get(f, fd);
	if (ft.err)
		rc = ft.err;
	else if (!s)
		rc = -EBADF;
	else if (shared) {
		if (s->ino->lock_fd != -1 && s->ino->lock_fd != fd)
			rc = -EWOULDBLOCK;
		else if (!s->shared_lock) {
			if (s->ino->lock_fd == fd) /* flock converts the lock */
				s->ino->lock_fd = -1;
			s->shared_lock = true;
			s->ino->nshared++;
		}
	} else if ((s->ino->lock_fd != -1 && s->ino->lock_fd != fd) ||
		   s->ino->nshared > (s->shared_lock ? 1u : 0u))
		rc = -EWOULDBLOCK;
	else {
		if (s->shared_lock) {
			s->shared_lock = false;
			s->ino->nshared--;
		}
		s->ino->lock_fd = fd;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* ---- lifecycle ------------------------------------------------------------------------- */

int faultio_create(struct faultio **out)
{
	struct faultio *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	if (pthread_mutex_init(&f->mu, NULL)) {
		free(f);
		return -ENOMEM;
	}
	f->root = inode_new(f, true);
	if (!f->root) {
		pthread_mutex_destroy(&f->mu);
		free(f);
		return -ENOMEM;
	}
	f->root->nlink = f->root->dlink = 1;
	f->fd_base = FIO_FD_BASE;
	f->io = (struct kvio){
		.open = fio_open,
		.close = fio_close,
		.pread = fio_pread,
		.pwrite = fio_pwrite,
		.fdatasync = fio_fdatasync,
		.ftruncate = fio_ftruncate,
		.fallocate = fio_fallocate,
		.fsize = fio_fsize,
		.rename = fio_rename,
		.unlink = fio_unlink,
		.mkdir = fio_mkdir,
		.rmdir = fio_rmdir,
		.fsync_dir = fio_fsync_dir,
		.list_dir = fio_list_dir,
		.lock = fio_lock,
		.drop_cache = fio_drop_cache,
		.ctx = f,
	};
	*out = f;
	return 0;
}

static void faults_clear(struct faultio *f)
{
	free(f->rules);
	free(f->shorts);
	f->rules = NULL;
	f->shorts = NULL;
	f->nrules = f->cap_rules = f->nshorts = f->cap_shorts = 0;
	f->crash_at = 0;
}

void faultio_destroy(struct faultio *f)
{
	if (!f)
		return;
	while (f->inodes)
		inode_destroy(f, f->inodes);
	for (size_t i = 0; i < f->nops; i++)
		op_discard(&f->ops[i]);
	free(f->ops);
	free(f->fds);
	faults_clear(f);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

const struct kvio *faultio_kvio(struct faultio *f)
{
	return &f->io;
}

/* ---- crash ------------------------------------------------------------------------------- */

static void marks_clear(struct faultio *f)
{
	for (struct inode *i = f->inodes; i; i = i->next)
		i->mark = false;
}

/* Marks ino and everything below it through the current and/or durable entries; counts the
 * inodes newly marked. */
static size_t mark(struct inode *ino, bool cur, bool dur)
{
	size_t n = 1;

	if (ino->mark)
		return 0;
	ino->mark = true;
	for (size_t i = 0; cur && i < ino->ents.n; i++)
		n += mark(ino->ents.v[i].ino, cur, dur);
	for (size_t i = 0; dur && i < ino->dents.n; i++)
		n += mark(ino->dents.v[i].ino, cur, dur);
	return n;
}

/* One surviving inode's state after a power loss, built before anything is changed. */
struct plan {
	struct inode *ino;
	struct dirmap ents;  /* a directory's new current entries: a copy of its durable ones */
	struct buf cur, dur; /* a file's new contents, twice (each replays into its own copy) */
	struct replay r;
};

static void plan_free(struct plan *p)
{
	dm_free(&p->ents);
	buf_free(&p->cur);
	buf_free(&p->dur);
}

static int plan_prepare(struct plan *p, struct inode *ino, enum fio_crash mode, uint64_t seed)
{
	int rc;

	p->ino = ino;
	if (ino->is_dir)
		return dm_copy(&p->ents, &ino->dents, false);
	p->r = crash_replay(ino, mode, seed);
	rc = buf_copy(&p->cur, &ino->dur);
	if (!rc)
		rc = buf_copy(&p->dur, &ino->dur);
	if (!rc)
		rc = replay_prepare(&p->cur, ino);
	if (!rc)
		rc = replay_prepare(&p->dur, ino);
	return rc;
}

/* Cannot fail: everything it needs was allocated by plan_prepare. */
static void plan_install(struct plan *p)
{
	struct inode *ino = p->ino;

	if (ino->is_dir) {
		dm_free(&ino->ents);
		ino->ents = p->ents;
	} else {
		/* Both copies replay from the same random state, so they come out equal. */
		replay(&p->cur, ino, p->r);
		replay(&p->dur, ino, p->r);
		buf_free(&ino->cur);
		buf_free(&ino->dur);
		ino->cur = p->cur;
		ino->dur = p->dur;
	}
	events_clear(ino);
	memset(p, 0, sizeof(*p));
}

/* The process is gone: its fds (for good: new numbers start past them), locks and faults. */
static void process_gone(struct faultio *f)
{
	size_t n = f->nfds;

	for (size_t i = 0; i < n; i++) {
		struct inode *ino = f->fds[i].ino;

		if (!ino)
			continue;
		f->fds[i].ino = NULL;
		if (ino->lock_fd == f->fd_base + (int)i)
			ino->lock_fd = -1;
		if (f->fds[i].shared_lock) {
			f->fds[i].shared_lock = false;
			ino->nshared--;
		}
		ino->nopen--;
		inode_release(f, ino);
	}
	f->nfds = 0;
	f->fd_base += (int)f->cap_fds;
	faults_clear(f);
}

/* The disk keeps what is reachable from "/" through durable entries, each file with its
 * durable contents plus what mode keeps of its unsynced events; queued changes are gone. */
static int power_loss(struct faultio *f, enum fio_crash mode, uint64_t seed)
{
	struct plan *plan;
	struct inode *ino, *next;
	size_t n, i = 0;
	int rc = 0;

	marks_clear(f);
	n = mark(f->root, false, true);
	plan = calloc(n, sizeof(*plan));
	if (!plan)
		return -ENOMEM;
	for (ino = f->inodes; ino; ino = ino->next) {
		if (!ino->mark)
			continue;
		rc = plan_prepare(&plan[i++], ino, mode, seed);
		if (rc)
			goto out;
	}
	/* Nothing fails from here on. Releasing fds frees only unmarked inodes: a marked one has
	 * a durable name. */
	process_gone(f);
	for (size_t k = 0; k < f->nops; k++)
		op_discard(&f->ops[k]);
	f->nops = 0;
	for (size_t k = 0; k < n; k++)
		plan_install(&plan[k]);
	for (ino = f->inodes; ino; ino = next) {
		next = ino->next;
		if (!ino->mark)
			inode_destroy(f, ino);
	}
	recount(f);
out:
	for (size_t k = 0; k < n; k++)
		plan_free(&plan[k]);
	free(plan);
	return rc;
}

int faultio_crash(struct faultio *f, enum fio_crash mode, uint64_t seed)
{
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	if (mode == FIO_CRASH_KILL)
		process_gone(f);
	else
		rc = power_loss(f, mode, seed);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* ---- faults and counters --------------------------------------------------------------- */

int faultio_fail(struct faultio *f, enum fio_op op, uint64_t nth, int err, bool persistent)
{
	struct rule *v;
	int rc = 0;

	if ((unsigned)op > FIO_OP_ANY || nth == 0 || err >= 0)
		return -EINVAL;
	pthread_mutex_lock(&f->mu);
	v = grow(f->rules, &f->cap_rules, f->nrules + 1, sizeof(*v));
	if (v) {
		f->rules = v;
		f->rules[f->nrules++] = (struct rule){ op, nth, err, persistent };
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int faultio_short_write(struct faultio *f, uint64_t nth_pwrite, size_t keep_bytes, int err)
{
	struct short_rule *v;
	int rc = 0;

	if (nth_pwrite == 0 || err >= 0)
		return -EINVAL;
	pthread_mutex_lock(&f->mu);
	v = grow(f->shorts, &f->cap_shorts, f->nshorts + 1, sizeof(*v));
	if (v) {
		f->shorts = v;
		f->shorts[f->nshorts++] = (struct short_rule){ nth_pwrite, keep_bytes, err };
	} else {
		rc = -ENOMEM;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void faultio_pause(struct faultio *f, bool paused)
{
	pthread_mutex_lock(&f->mu);
	f->paused = paused;
	pthread_mutex_unlock(&f->mu);
}

void faultio_crash_at(struct faultio *f, uint64_t call_no)
{
	pthread_mutex_lock(&f->mu);
	f->crash_at = call_no;
	pthread_mutex_unlock(&f->mu);
}

void faultio_clear_faults(struct faultio *f)
{
	pthread_mutex_lock(&f->mu);
	faults_clear(f);
	pthread_mutex_unlock(&f->mu);
}

void faultio_set_capacity(struct faultio *f, uint64_t bytes)
{
	pthread_mutex_lock(&f->mu);
	f->capacity = bytes;
	pthread_mutex_unlock(&f->mu);
}

void faultio_set_list_seed(struct faultio *f, uint64_t seed)
{
	pthread_mutex_lock(&f->mu);
	f->list_seed = seed;
	pthread_mutex_unlock(&f->mu);
}

uint64_t faultio_count(struct faultio *f, enum fio_op op)
{
	uint64_t n = 0;

	pthread_mutex_lock(&f->mu);
	if (op == FIO_OP_ANY)
		n = f->calls;
	else if ((unsigned)op < FIO_OP_ANY)
		n = f->counts[op];
	pthread_mutex_unlock(&f->mu);
	return n;
}

uint64_t faultio_calls(struct faultio *f)
{
	return faultio_count(f, FIO_OP_ANY);
}

void faultio_reset_counts(struct faultio *f)
{
	pthread_mutex_lock(&f->mu);
	memset(f->counts, 0, sizeof(f->counts));
	f->calls = 0;
	pthread_mutex_unlock(&f->mu);
}

const char *faultio_op_name(enum fio_op op)
{
	static const char *const names[] = {
		[FIO_OP_OPEN] = "open",           [FIO_OP_CLOSE] = "close",
		[FIO_OP_PREAD] = "pread",         [FIO_OP_PWRITE] = "pwrite",
		[FIO_OP_FDATASYNC] = "fdatasync", [FIO_OP_FTRUNCATE] = "ftruncate",
		[FIO_OP_FALLOCATE] = "fallocate", [FIO_OP_FSIZE] = "fsize",
		[FIO_OP_RENAME] = "rename",       [FIO_OP_UNLINK] = "unlink",
		[FIO_OP_MKDIR] = "mkdir",         [FIO_OP_FSYNC_DIR] = "fsync_dir",
		[FIO_OP_LIST_DIR] = "list_dir",   [FIO_OP_LOCK] = "lock",
		[FIO_OP_DROP_CACHE] = "drop_cache", [FIO_OP_RMDIR] = "rmdir",
		[FIO_OP_ANY] = "any",
	};

	return (unsigned)op <= FIO_OP_ANY ? names[op] : "?";
}

/* ---- direct access for tests ------------------------------------------------------------ */

static int walk_file(const struct faultio *f, const char *path, enum fio_view v,
		     struct inode **file)
{
	struct walk w;
	int rc = walk(f, path, v, &w);

	if (rc)
		return rc;
	if (!w.ino)
		return -ENOENT;
	if (w.ino->is_dir)
		return -EISDIR;
	*file = w.ino;
	return 0;
}

static int read_view(struct faultio *f, const char *path, enum fio_view v, void **data,
		     size_t *len)
{
	struct inode *ino;
	const struct buf *b;
	uint8_t *out;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = walk_file(f, path, v, &ino);
	if (rc)
		goto out;
	b = view_buf(ino, v);
	out = malloc((size_t)b->len + 1);
	if (!out) {
		rc = -ENOMEM;
		goto out;
	}
	buf_read(b, 0, out, b->len);
	out[b->len] = '\0';
	*data = out;
	*len = (size_t)b->len;
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int faultio_read_file(struct faultio *f, const char *path, void **data, size_t *len)
{
	return read_view(f, path, FIO_VIEW_CURRENT, data, len);
}

int faultio_read_durable(struct faultio *f, const char *path, void **data, size_t *len)
{
	return read_view(f, path, FIO_VIEW_DURABLE, data, len);
}

int faultio_write_file(struct faultio *f, const char *path, const void *data, size_t len)
{
	struct buf a = { 0 }, b = { 0 };
	struct inode *ino;
	struct walk w;
	int rc;

	if (len > FIO_MAX_FILE)
		return -EFBIG;
	pthread_mutex_lock(&f->mu);
	rc = walk(f, path, FIO_VIEW_CURRENT, &w);
	if (rc)
		goto out;
	if ((w.ino && w.ino->is_dir) || (!w.ino && w.slash)) {
		rc = -EISDIR;
		goto out;
	}
	rc = buf_prepare(&a, 0, len);
	if (!rc)
		rc = buf_prepare(&b, 0, len);
	if (rc)
		goto out;
	buf_write(&a, 0, data, len);
	buf_write(&b, 0, data, len);
	ino = w.ino;
	if (!ino) {
		ino = inode_new(f, false);
		if (!ino) {
			rc = -ENOMEM;
			goto out;
		}
		rc = ns_link(f, w.parent, w.name, ino);
		if (rc) {
			inode_destroy(f, ino);
			goto out;
		}
	}
	buf_free(&ino->cur);
	buf_free(&ino->dur);
	ino->cur = a;
	ino->dur = b;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	events_clear(ino);
	rc = dir_sync(f, w.parent);
out:
	buf_free(&a);
	buf_free(&b);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* Writes [off, off+n) in both copies, as far as each reaches. */
static int overwrite_both(struct inode *ino, uint64_t off, const void *data, uint64_t n)
{
	struct buf *bufs[2] = { &ino->cur, &ino->dur };
	int rc;

	for (int i = 0; i < 2; i++) {
		if (off < bufs[i]->len) {
			rc = buf_prepare(bufs[i], off, min_u64(n, bufs[i]->len - off));
			if (rc)
				return rc;
		}
	}
	for (int i = 0; i < 2; i++) {
		if (off < bufs[i]->len)
			buf_write(bufs[i], off, data, min_u64(n, bufs[i]->len - off));
	}
	return 0;
}

int faultio_overwrite(struct faultio *f, const char *path, uint64_t off, const void *data,
		      size_t len)
{
	struct inode *ino;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = walk_file(f, path, FIO_VIEW_CURRENT, &ino);
	if (!rc && (off > ino->cur.len || len > ino->cur.len - off))
		rc = -EINVAL;
	if (!rc)
		rc = overwrite_both(ino, off, data, len);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int faultio_flip(struct faultio *f, const char *path, uint64_t off, uint8_t xor_mask)
{
	struct buf *bufs[2];
	struct inode *ino;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = walk_file(f, path, FIO_VIEW_CURRENT, &ino);
	if (!rc && off >= ino->cur.len)
		rc = -EINVAL;
	if (rc)
		goto out;
	bufs[0] = &ino->cur;
	bufs[1] = &ino->dur;
	for (int i = 0; i < 2; i++) {
		if (off < bufs[i]->len && (rc = buf_prepare(bufs[i], off, 1)))
			goto out;
	}
	for (int i = 0; i < 2; i++) {
		if (off < bufs[i]->len)
			bufs[i]->pg[off / PAGE][off % PAGE] ^= xor_mask;
	}
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int faultio_truncate(struct faultio *f, const char *path, uint64_t len)
{
	struct inode *ino;
	int rc;

	if (len > FIO_MAX_FILE)
		return -EFBIG;
	pthread_mutex_lock(&f->mu);
	rc = walk_file(f, path, FIO_VIEW_CURRENT, &ino);
	if (!rc) {
		buf_setlen(&ino->cur, len, true);
		buf_setlen(&ino->dur, len, true);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int faultio_remove(struct faultio *f, const char *path)
{
	struct inode *parent;
	struct walk w;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = walk(f, path, FIO_VIEW_CURRENT, &w);
	if (rc)
		goto out;
	if (!w.ino) {
		rc = -ENOENT;
		goto out;
	}
	if (!w.parent) {
		rc = -EBUSY;
		goto out;
	}
	if (w.ino->is_dir && w.ino->ents.n) {
		rc = -ENOTEMPTY;
		goto out;
	}
	parent = w.parent;
	rc = ns_unlink(f, parent, w.name);
	if (!rc)
		rc = dir_sync(f, parent);
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

/* One level of faultio_mkdirs: path exists as a directory afterwards, durably named. */
static int mkdir_durable(struct faultio *f, const char *path)
{
	struct inode *dir;
	struct walk w;
	int rc = walk(f, path, FIO_VIEW_CURRENT, &w);

	if (rc)
		return rc;
	if (w.ino)
		return w.ino->is_dir ? 0 : -ENOTDIR;
	dir = inode_new(f, true);
	if (!dir)
		return -ENOMEM;
	rc = ns_link(f, w.parent, w.name, dir);
	if (rc) {
		inode_destroy(f, dir);
		return rc;
	}
	return dir_sync(f, w.parent);
}

int faultio_mkdirs(struct faultio *f, const char *path)
{
	char p[PATH_MAX];
	size_t len;
	int rc = 0;

	if (!path || path[0] != '/')
		return -EINVAL;
	len = strlen(path);
	if (len >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, path, len + 1);
	pthread_mutex_lock(&f->mu);
	for (size_t i = 1; i <= len && !rc; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		p[i] = '\0';
		rc = mkdir_durable(f, p);
		p[i] = path[i];
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int faultio_stat(struct faultio *f, const char *path, bool *is_dir, uint64_t *size)
{
	struct walk w;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = walk(f, path, FIO_VIEW_CURRENT, &w);
	if (!rc && !w.ino)
		rc = -ENOENT;
	if (!rc && w.slash && !w.ino->is_dir)
		rc = -ENOTDIR;
	if (!rc) {
		if (is_dir)
			*is_dir = w.ino->is_dir;
		if (size)
			*size = w.ino->is_dir ? 0 : w.ino->cur.len;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

bool faultio_exists(struct faultio *f, const char *path)
{
	return faultio_stat(f, path, NULL, NULL) == 0;
}

int faultio_is_durable(struct faultio *f, const char *path)
{
	struct walk wc, wd;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = walk(f, path, FIO_VIEW_CURRENT, &wc);
	if (!rc && !wc.ino)
		rc = -ENOENT;
	if (rc)
		goto out;
	/* The name is durable when the durable entries lead to the same inode. */
	rc = walk(f, path, FIO_VIEW_DURABLE, &wd) == 0 && wd.ino == wc.ino;
	if (rc && wc.ino->is_dir)
		rc = !dir_has_queued(f, wc.ino);
	else if (rc)
		rc = wc.ino->nev == 0 && buf_diff(&wc.ino->cur, &wc.ino->dur) == UINT64_MAX;
out:
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int faultio_list(struct faultio *f, const char *dir, char ***names, size_t *count)
{
	struct inode *d;
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = walk_dir(f, dir, FIO_VIEW_CURRENT, &d);
	if (!rc)
		rc = names_of(d, 0, names, count);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

void faultio_free_names(char **names, size_t count)
{
	for (size_t i = 0; names && i < count; i++)
		free(names[i]);
	free(names);
}

/* ---- clone and compare ----------------------------------------------------------------- */

static int inode_clone(const struct inode *src, struct inode *dst)
{
	int rc;

	dst->ino = src->ino;
	rc = buf_copy(&dst->cur, &src->cur);
	if (!rc)
		rc = buf_copy(&dst->dur, &src->dur);
	if (!rc && src->nev) {
		dst->ev = calloc(src->nev, sizeof(*dst->ev));
		rc = dst->ev ? 0 : -ENOMEM;
		dst->cap_ev = src->nev;
	}
	for (size_t i = 0; !rc && i < src->nev; i++) {
		dst->ev[i] = src->ev[i];
		dst->ev[i].data = NULL;
		dst->nev++;
		if (src->ev[i].data) {
			dst->ev[i].data = malloc((size_t)src->ev[i].len);
			if (!dst->ev[i].data)
				rc = -ENOMEM;
			else
				memcpy(dst->ev[i].data, src->ev[i].data, (size_t)src->ev[i].len);
		}
	}
	return rc;
}

/* Copies the marked inodes of f into c (whose root exists), then their entries and the
 * queued changes, pointing everything at the copies. */
static int clone_into(struct faultio *c, struct faultio *f)
{
	struct inode *ino;
	int rc = 0;

	for (ino = f->inodes; ino && !rc; ino = ino->next) {
		if (!ino->mark)
			continue;
		ino->copy = ino == f->root ? c->root : inode_new(c, ino->is_dir);
		rc = ino->copy ? inode_clone(ino, ino->copy) : -ENOMEM;
	}
	for (ino = f->inodes; ino && !rc; ino = ino->next) {
		if (!ino->mark || !ino->is_dir)
			continue;
		rc = dm_copy(&ino->copy->ents, &ino->ents, true);
		if (!rc)
			rc = dm_copy(&ino->copy->dents, &ino->dents, true);
	}
	if (!rc && f->nops) {
		c->ops = calloc(f->nops, sizeof(*c->ops));
		rc = c->ops ? 0 : -ENOMEM;
		c->cap_ops = f->nops;
	}
	for (size_t i = 0; !rc && i < f->nops; i++) {
		const struct nsop *op = &f->ops[i];
		struct nsop *n = &c->ops[i];

		*n = *op;
		n->dir[0] = op->dir[0]->copy;
		n->dir[1] = op->dir[1] ? op->dir[1]->copy : NULL;
		n->ino = op->ino ? op->ino->copy : NULL;
		n->name[0] = strdup(op->name[0]);
		n->name[1] = op->name[1] ? strdup(op->name[1]) : NULL;
		c->nops++;
		if (!n->name[0] || (op->name[1] && !n->name[1]))
			rc = -ENOMEM;
	}
	c->next_ino = f->next_ino;
	c->capacity = f->capacity;
	c->list_seed = f->list_seed;
	return rc;
}

int faultio_clone(struct faultio *f, struct faultio **out)
{
	struct faultio *c;
	int rc = faultio_create(&c);

	if (rc)
		return rc;
	pthread_mutex_lock(&f->mu);
	/* The disk is what is named (now or durably) or referred to by a queued change; an inode
	 * only an fd keeps alive belongs to the process and is left behind. */
	marks_clear(f);
	mark(f->root, true, true);
	for (size_t i = 0; i < f->nops; i++) {
		mark(f->ops[i].dir[0], true, true);
		if (f->ops[i].dir[1])
			mark(f->ops[i].dir[1], true, true);
		if (f->ops[i].ino)
			mark(f->ops[i].ino, true, true);
	}
	rc = clone_into(c, f);
	pthread_mutex_unlock(&f->mu);
	if (rc) {
		faultio_destroy(c);
		return rc;
	}
	recount(c);
	*out = c;
	return 0;
}

/* Returns 1 after naming the first difference in why. */
static int differ(char *why, size_t whylen, const char *path, const char *detail)
{
	if (why && whylen)
		snprintf(why, whylen, "%s: %s", path, detail);
	return 1;
}

static int file_compare(const struct buf *bx, const struct buf *by, const char *path, char *why,
			size_t whylen)
{
	uint64_t at = buf_diff(bx, by);
	char detail[96];

	if (at == UINT64_MAX)
		return 0;
	if (bx->len != by->len)
		snprintf(detail, sizeof(detail), "sizes differ, %" PRIu64 " vs %" PRIu64 " bytes",
			 bx->len, by->len);
	else
		snprintf(detail, sizeof(detail), "contents differ from byte %" PRIu64, at);
	return differ(why, whylen, path, detail);
}

/* 0 when the trees under x and y are equal, 1 (with why) when not. path[0, plen) is x's path;
 * the buffer is PATH_MAX long. */
static int tree_compare(const struct inode *x, const struct inode *y, enum fio_view v,
			char *path, size_t plen, unsigned depth, char *why, size_t whylen)
{
	const struct dirmap *mx = view_map(x, v), *my = view_map(y, v);
	size_t i = 0, j = 0;
	int rc = 0;

	if (depth > COMPARE_DEPTH)
		return differ(why, whylen, path, "directories nested too deep (a cycle?)");
	while (!rc && (i < mx->n || j < my->n)) {
		int c = i == mx->n ? 1 : j == my->n ? -1 : strcmp(mx->v[i].name, my->v[j].name);
		const char *name = c <= 0 ? mx->v[i].name : my->v[j].name;
		size_t nlen = strlen(name), sep = plen > 1;
		const struct inode *cx, *cy;

		if (plen + sep + nlen >= PATH_MAX)
			return differ(why, whylen, path, "path too long to compare");
		path[plen] = '/';
		memcpy(path + plen + sep, name, nlen + 1);
		if (c) {
			rc = differ(why, whylen, path, c < 0 ? "only on the first disk" :
				    "only on the second disk");
			break;
		}
		cx = mx->v[i++].ino;
		cy = my->v[j++].ino;
		if (cx->is_dir != cy->is_dir)
			rc = differ(why, whylen, path, "a directory on one disk, a file on the other");
		else if (cx->is_dir)
			rc = tree_compare(cx, cy, v, path, plen + sep + nlen, depth + 1, why, whylen);
		else
			rc = file_compare(view_buf(cx, v), view_buf(cy, v), path, why, whylen);
		path[plen] = '\0';
	}
	path[plen] = '\0';
	return rc;
}

int faultio_compare(struct faultio *a, struct faultio *b, enum fio_view view, char *why,
		    size_t whylen)
{
	char path[PATH_MAX] = "/";
	struct faultio *first = a < b ? a : b, *second = a < b ? b : a;
	int rc;

	if (why && whylen)
		why[0] = '\0';
	if (a == b)
		return 0;
	pthread_mutex_lock(&first->mu);
	pthread_mutex_lock(&second->mu);
	rc = tree_compare(a->root, b->root, view, path, 1, 0, why, whylen);
	pthread_mutex_unlock(&second->mu);
	pthread_mutex_unlock(&first->mu);
	return rc;
}
