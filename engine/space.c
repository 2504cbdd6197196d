/* space.c — promised space (space.h): a count of promised log bytes and the file that holds
 * them on the disk.
 *
 * The file's size is `held`; the deficit is promised − held when positive. Invariant (mu and
 * apply_mu): the deficit is held by the current log segment's room and by free disk space that
 * only the writes consuming promises may take (space_admit keeps the others out of both), except
 * after kv_promise_set found the disk full at a mount (the mount says so; the deficit is then
 * held as room comes back). Consuming writes shrink the deficit by what they consume, which is
 * at least their record (kv_promise_cost); a rotation loses less than a block of the old room
 * (wal.c trims it to its last record, the disk frees the whole blocks) and a segment header,
 * which kv_promise_cost counts per chunk. */
#include "space.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "kv.h"
#include "logfmt.h"
#include "record.h"
#include "store_internal.h"
#include "wal.h"

/* A promise file more than this above the count is cut down after a consuming write; below it
 * the file is left alone, so that a stream of writes into a preallocated file costs one
 * ftruncate per MiB rather than one per write. */
#define GIVE_BACK_SLACK (1u << 20)

/* Disks allocate in blocks: a segment made for one record takes whole blocks, and cutting the
 * promise file frees whole blocks. The promise file's size and what it gives up are multiples
 * of this (4 KiB: ext4's, xfs's and tmpfs's block on x86-64; a disk of larger blocks needs a
 * wider margin than kv_promise_cost gives). */
#define BLOCK 4096u

/* What space_yield gives at least: consuming writes of less share the segment made from it. */
#define CHUNK (1u << 20)

static uint64_t blocks_up(uint64_t n)
{
	return (n + BLOCK - 1) / BLOCK * BLOCK;
}

struct space {
	pthread_mutex_t mu;
	uint64_t promised; /* mu: log bytes promised */
	uint64_t held;     /* mu: the promise file's size */
	int known;         /* mu: held was read from the file (it may predate this open) */
	int exists;        /* mu, once known: the file exists (kv_promise_ever) */
};

/* The write this thread is applying through kv_apply_promised: the promised bytes it may use,
 * and what space_yield gave it so far. */
static __thread struct {
	struct kv *s;
	uint64_t avail, yielded;
} consuming;

static struct space *space_of(struct kv *s)
{
	struct space *sp = __atomic_load_n(&s->space, __ATOMIC_ACQUIRE), *fresh;

	if (sp)
		return sp;
	fresh = calloc(1, sizeof(*fresh));
	if (!fresh)
		return NULL;
	pthread_mutex_init(&fresh->mu, NULL);
	if (__atomic_compare_exchange_n(&s->space, &sp, fresh, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return fresh;
	pthread_mutex_destroy(&fresh->mu);
	free(fresh);
	return sp; /* another thread made it first */
}

void space_free(struct space *sp)
{
	if (!sp)
		return;
	pthread_mutex_destroy(&sp->mu);
	free(sp);
}

static void promise_path(const struct kv *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" PROMISE_NAME, s->dir);
}

/* The file's size, once per open: a file left by an earlier process still holds its room. */
static int learn_held(struct kv *s, struct space *sp)
{
	char path[PATH_MAX + 32];
	int fd, rc;

	if (sp->known)
		return 0;
	promise_path(s, path, sizeof(path));
	rc = s->io->open(s->io, path, O_RDWR | O_NOFOLLOW, 0600, &fd);
	if (rc == -ENOENT) {
		sp->held = 0;
		sp->known = 1;
		sp->exists = 0;
		return 0;
	}
	if (rc)
		return rc;
	rc = s->io->fsize(s->io, fd, &sp->held);
	kvio_close_quiet(s->io, fd); /* nothing was written */
	if (!rc)
		sp->known = 1, sp->exists = 1;
	return rc;
}

/* Make the file `want` bytes, all of them allocated; mu held. -ENOSPC (or -EDQUOT) when the disk
 * has no room: the file is then back at its old size (ext4 keeps what a failed fallocate
 * allocated, so it is cut back). Once made the file stays, empty when nothing is promised: it
 * marks a store whose owner must sum its promises at open (kv_promise_ever) — a release whose
 * record a crash lost must find its promise again. */
static int hold(struct kv *s, struct space *sp, uint64_t want)
{
	char path[PATH_MAX + 32];
	int fd, rc;

	rc = learn_held(s, sp);
	want = blocks_up(want);
	if (rc || want == sp->held)
		return rc;
	promise_path(s, path, sizeof(path));
	rc = s->io->open(s->io, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600, &fd);
	if (rc)
		return rc;
	if (!sp->exists) {
		/* its name durable before any promise counts on it being found at open */
		rc = s->io->fsync_dir(s->io, s->dir);
		if (rc) {
			kvio_close_quiet(s->io, fd);
			return rc;
		}
		sp->exists = 1;
	}
	if (want < sp->held) {
		rc = s->io->ftruncate(s->io, fd, want);
	} else {
		rc = s->io->fallocate(s->io, fd, 0, want);
		if (rc) {
			int trc = s->io->ftruncate(s->io, fd, sp->held);

			if (trc)
				sp->known = 0; /* its size is unknown now: read again next time */
		}
	}
	if (!rc)
		sp->held = want;
	kvio_close_quiet(s->io, fd); /* nothing in it matters but its allocation */
	return rc;
}

/* After the count changed: hold all of it again if some was given up, and give back what is
 * held beyond it (beyond slack). A failure leaves the file as it was, logged: the promises then
 * hold less (growth) or the disk has less free (shrink) until the next change. mu held. */
static void settle(struct kv *s, struct space *sp, uint64_t slack)
{
	int rc = 0;

	if (sp->held < sp->promised || sp->held > sp->promised + slack || (sp->promised == 0 && sp->held))
		rc = hold(s, sp, sp->promised);
	if (rc && !kvio_no_room(rc))
		kv_log(s, "%s/" PROMISE_NAME ": cannot be resized to %" PRIu64 " bytes: %s", s->dir,
		       sp->promised, strerror(-rc));
}

uint64_t kv_promise_cost(uint64_t bytes, size_t klen, size_t mlen)
{
	/* The bytes; one record per page at worst — a record header, the batch's count, a WRITE
	 * (op, key length, key, offset, length, a chunk checksum) and a SETMETA (op, key length,
	 * key, metadata length, metadata): the record a write through the mount makes —; and, in
	 * proportion, what a rotation loses per chunk (space_yield makes segments of a chunk, or of
	 * one write of more): a block of the old segment's room and the new one's header. A
	 * promise adds KV_PROMISE_SLACK once for the first of them. Linear in bytes (but for the
	 * page count), so that writes consume a range's promise in proportion. */
	uint64_t per_page = REC_HDR_SIZE + 4 + (3 + klen + 16 + 4) + (3 + klen + 2 + mlen);
	uint64_t rotations = (bytes * (BLOCK + SEG_HDR_SIZE) + CHUNK - 1) / CHUNK;

	return bytes + data_chunks(bytes) * per_page + rotations;
}

int kv_promise(struct kv *s, uint64_t bytes)
{
	struct space *sp = space_of(s);
	uint64_t surplus;
	int rc;

	if (!sp)
		return -ENOMEM;
	if (s->opt.read_only)
		return -EROFS;
	if (bytes == 0)
		return 0;
	pthread_mutex_lock(&sp->mu);
	if (bytes > UINT64_MAX - sp->promised) {
		rc = -ENOSPC;
		goto out;
	}
	/* new room for what the file holds beyond the count falls short of; a deficit stays
	 * where it is (the segment's room) */
	surplus = sp->held > sp->promised ? sp->held - sp->promised : 0;
	rc = hold(s, sp, sp->held + (bytes > surplus ? bytes - surplus : 0));
	if (!rc)
		sp->promised += bytes;
	else if (!kvio_no_room(rc))
		kv_log(s, "%s/" PROMISE_NAME ": cannot be grown: %s", s->dir, strerror(-rc));
out:
	pthread_mutex_unlock(&sp->mu);
	return rc;
}

void kv_promise_release(struct kv *s, uint64_t bytes)
{
	struct space *sp = space_of(s);

	if (!sp || bytes == 0)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->promised -= bytes < sp->promised ? bytes : sp->promised;
	settle(s, sp, 0); /* released room shows as free at once (statfs) */
	pthread_mutex_unlock(&sp->mu);
}

int kv_promise_set(struct kv *s, uint64_t bytes)
{
	struct space *sp = space_of(s);
	int rc;

	if (!sp)
		return -ENOMEM;
	if (s->opt.read_only)
		return 0; /* nothing will be written: the file stays as it is */
	pthread_mutex_lock(&sp->mu);
	sp->promised = bytes;
	rc = learn_held(s, sp);
	if (!rc && !sp->exists && bytes)
		/* deleted while the store was closed (its owner's records say what is promised):
		 * made again below, and said, since what it held may be gone to other files */
		kv_log(s, "%s/" PROMISE_NAME " was missing, though %" PRIu64 " bytes are promised: "
		       "made again", s->dir, bytes);
	if (!rc) {
		/* a file above the count (released promises whose cut a crash undid, a count
		 * lowered while closed) gives the rest back here: the only place an open does */
		uint64_t was = sp->held;
		int cut = blocks_up(bytes) < was;

		rc = hold(s, sp, bytes);
		if (rc && cut) {
			/* every promise is still held, only more besides: said, not fatal */
			kv_log(s, "%s/" PROMISE_NAME ": cannot be cut back from %" PRIu64 " to %" PRIu64
			       " bytes: %s (it holds the difference until the count next changes or the "
			       "next mount)", s->dir, was, blocks_up(bytes), strerror(-rc));
			rc = 0;
		}
	}
	if (rc && !kvio_no_room(rc))
		kv_log(s, "%s/" PROMISE_NAME ": cannot be resized to %" PRIu64 " bytes: %s", s->dir,
		       bytes, strerror(-rc));
	pthread_mutex_unlock(&sp->mu);
	return rc;
}

int kv_promise_ever(struct kv *s)
{
	struct space *sp = space_of(s);
	int ever = 0;

	if (!sp)
		return 1; /* out of memory: the owner sums, as if */
	pthread_mutex_lock(&sp->mu);
	ever = learn_held(s, sp) ? 1 : sp->exists;
	pthread_mutex_unlock(&sp->mu);
	return ever;
}

void kv_promise_stats(struct kv *s, uint64_t *promised, uint64_t *held)
{
	struct space *sp = space_of(s);

	*promised = *held = 0;
	if (!sp)
		return;
	pthread_mutex_lock(&sp->mu);
	*promised = sp->promised;
	*held = sp->held < sp->promised ? sp->held : sp->promised;
	pthread_mutex_unlock(&sp->mu);
}

int space_admit(struct kv *s, uint64_t len)
{
	struct space *sp = __atomic_load_n(&s->space, __ATOMIC_ACQUIRE);
	uint64_t own = consuming.s == s ? consuming.avail : 0, deficit;
	int rc = 0;

	if (!sp)
		return 0;
	pthread_mutex_lock(&sp->mu);
	deficit = sp->promised > sp->held ? sp->promised - sp->held : 0;
	if (deficit <= own || wal_fits(s->wal, len + (deficit - own)))
		goto out;
	/* the room is the promise's: hold it in the file again if the disk has it (space came
	 * back), which leaves the segment's room to everyone */
	rc = hold(s, sp, sp->promised);
	if (rc && !kvio_no_room(rc))
		kv_log(s, "%s/" PROMISE_NAME ": cannot be grown: %s", s->dir, strerror(-rc));
	if (rc)
		rc = -ENOSPC;
out:
	pthread_mutex_unlock(&sp->mu);
	return rc;
}

int space_yield(struct kv *s, uint64_t len)
{
	struct space *sp = __atomic_load_n(&s->space, __ATOMIC_ACQUIRE);
	uint64_t give = blocks_up(SEG_HDR_SIZE + REC_HDR_SIZE + len);
	int rc;

	if (!sp || consuming.s != s || consuming.yielded >= consuming.avail)
		return 0;
	pthread_mutex_lock(&sp->mu);
	if (give < CHUNK)
		give = CHUNK;
	if (give > sp->held)
		give = sp->held / BLOCK * BLOCK; /* the file stays whole blocks: what it gives up is freed */
	rc = give ? hold(s, sp, sp->held - give) : -ENOSPC;
	if (!rc) {
		consuming.yielded += give;
		/* the new segment takes exactly what was given (not half of it, as a squeezed one
		 * would): one segment a chunk, one rotation's loss a chunk. The lent reserve's cap
		 * is left alone; kv_apply_promised lifts this one. */
		if (!s->reserve_lent)
			wal_set_segment_cap(s->wal, give);
	}
	pthread_mutex_unlock(&sp->mu);
	return rc == 0;
}

int kv_apply_promised(struct kv *s, const struct kv_batch *b, uint64_t promised, uint64_t *lsn_out)
{
	struct space *sp;
	int rc;

	if (promised == 0)
		return kv_apply(s, b, lsn_out);
	sp = space_of(s);
	if (!sp)
		return -ENOMEM;
	pthread_mutex_lock(&sp->mu);
	if (promised > sp->promised)
		promised = sp->promised; /* never more than the store promised */
	pthread_mutex_unlock(&sp->mu);
	consuming.s = s;
	consuming.avail = promised;
	consuming.yielded = 0;
	rc = kv_apply(s, b, lsn_out);
	if (consuming.yielded) {
		pthread_mutex_lock(&s->apply_mu); /* set_lent changes the flag under it */
		if (!s->reserve_lent)
			wal_set_segment_cap(s->wal, 0);
		pthread_mutex_unlock(&s->apply_mu);
	}
	consuming.s = NULL;
	/* The count drops by what the write consumed; a file now more than a slack above it gives
	 * the rest back. A deficit stays where space_yield put it, in the segment's room (a
	 * regrowth would fail on the full disk that made it; space_admit tries when a write needs
	 * the room). */
	pthread_mutex_lock(&sp->mu);
	if (rc == 0)
		sp->promised -= promised;
	if (sp->held > sp->promised + GIVE_BACK_SLACK || (sp->promised == 0 && sp->held))
		settle(s, sp, GIVE_BACK_SLACK);
	pthread_mutex_unlock(&sp->mu);
	return rc;
}

int kv_allocated_range(struct kv *s, const void *key, size_t klen, uint64_t off, uint64_t len,
		       uint64_t *bytes)
{
	uint64_t end = len > UINT64_MAX - off ? UINT64_MAX : off + len;
	int rc = 0;

	if (klen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	*bytes = 0;
	pthread_rwlock_rdlock(&s->ix_lock);
	const struct kvval *v = kvindex_find(s->ix, key, klen);
	if (v) {
		uint32_t n;
		const struct kvext *e = kvval_extents(v, &n);

		for (uint32_t i = 0; i < n; i++) { /* ascending and disjoint */
			uint64_t lo = e[i].off, hi = e[i].off + e[i].len;

			if (hi <= off)
				continue;
			if (lo >= end)
				break;
			*bytes += (hi < end ? hi : end) - (lo > off ? lo : off);
		}
	} else {
		rc = -ENOENT;
	}
	pthread_rwlock_unlock(&s->ix_lock);
	return rc;
}
