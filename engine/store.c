/* store.c — the store: open/recover, the write path (validate, log, apply), reads, flush,
 * checkpoints and segment deletion, stats, close. The cleaner is cleaner.c.
 *
 * Locks, in the order they nest:
 *   clean_mu  one cleaner pass at a time
 *   ckpt_mu   one checkpoint (and the deletions it allows) at a time
 *   apply_mu  the write path: precondition checks, wal_append, index mutation — so LSN order
 *             is index order and replay rebuilds exactly the live state
 *   ix_lock   rwlock over the index: readers share it; a mutation takes it briefly. Readers
 *             copy what they need (a value's extents) under it and read the log without it.
 *   (the wal's and the segment table's own mutexes inside wal_* and segtab_*)
 * Durability comes only from wal_sync; nothing here reports a write durable on its own.
 *
 * Model: tests/model/values_on_disk.pml stands for checkpoint_locked and release_segments: a
 * segment is deleted only when the newest DURABLE checkpoint references none of its bytes and
 * every record in it is at or below that checkpoint's LSN. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "ckpt.h"
#include "crc32c.h"
#include "cleaner.h"
#include "kv.h"
#include "logfmt.h"
#include "progress.h"
#include "record.h"
#include "recover.h"
#include "segtab.h"
#include "space.h"
#include "store_internal.h"
#include "wal.h"

#define RESERVE_NAME "space.reserve"
#define RESERVE_MIN (4u << 20)
#define LOST_PER_RECORD 4096
#define RESERVE_SLACK (64u << 10) /* beside a checkpoint: a segment of deletions */
#define RESERVE_MAX (256u << 20)
#define SALVAGE_SEGMENT_BYTES (64u << 10) /* what salvage's own open preallocates, at most */
#define CLOSE_CKPT_FRACTION 64 /* of checkpoint_bytes: less log than this, no checkpoint at close */

void kv_log(const struct kv *s, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (s->opt.log)
		s->opt.log(s->opt.log_arg, line);
	else
		fprintf(stderr, "%s\n", line); /* the line names its file; a front end names itself */
}

static uint64_t wal_bytes_now(struct kv *s)
{
	struct wal_stats ws;
	if (!s->wal) /* read-only */
		return 0;
	wal_get_stats(s->wal, &ws);
	/* modular: base starts "below zero" by the bytes replayed at open */
	return ws.appended_bytes - __atomic_load_n(&s->wal_base, __ATOMIC_RELAXED);
}

/* ---- lock file ---- */

/* A writer holds LOCK exclusively; readers (a read-only open, a check) share it, so none of
 * them reads files a writer is changing. A reader finds no LOCK only in a directory no writer
 * ever opened (or a copy without it): nothing to exclude then. */
static int take_lock(struct kv *s, int shared)
{
	char path[PATH_MAX + 8];
	int rc;

	snprintf(path, sizeof(path), "%s/LOCK", s->dir);
	if (shared) {
		rc = s->io->open(s->io, path, O_RDONLY, 0, &s->lock_fd);
		if (rc == -ENOENT)
			return 0;
	} else {
		rc = s->io->open(s->io, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600, &s->lock_fd);
	}
	if (rc)
		return rc;
	return s->io->lock(s->io, s->lock_fd, shared);
}

/* Record who holds the lock, for the message a refused opener prints. Done only after
 * recovery succeeded, so a refused open leaves LOCK as it was. */
static int write_lock_pid(struct kv *s)
{
	char pid[32];
	int rc;
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	rc = s->io->ftruncate(s->io, s->lock_fd, 0);
	if (!rc)
		rc = s->io->pwrite(s->io, s->lock_fd, pid, (size_t)n, 0);
	return rc;
}

static void lock_holder(const struct kvio *io, const char *dir, char *buf, size_t len)
{
	char path[PATH_MAX + 8], pid[32] = "";
	size_t got = 0;
	int fd;

	buf[0] = '\0'; /* unknown */
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	if (io->open(io, path, O_RDONLY, 0, &fd))
		return;
	if (io->pread(io, fd, pid, sizeof(pid) - 1, 0, &got) == 0 && got) {
		pid[got] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(buf, len, "%s", pid);
	}
	kvio_close_quiet(io, fd);
}

/* What stopped an open, as data for the programs to put into words. */
static void report_problem(struct kv_report *rep, enum kv_problem p, const char *file, int err)
{
	rep->problem = p;
	rep->err = err;
	snprintf(rep->file, sizeof(rep->file), "%s", file ? file : "");
}

/* The directory dir's name is in. */
static void parent_of(const char *dir, char parent[PATH_MAX])
{
	snprintf(parent, PATH_MAX, "%s", dir);
	size_t n = strlen(parent);
	while (n > 1 && parent[n - 1] == '/') /* "a/b/" is "a/b" */
		parent[--n] = '\0';
	char *slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, PATH_MAX, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
}

/* Create the store directory when missing, and make its name durable in its parent: without
 * that a power cut could take the whole directory, acknowledged writes and all. Also when it
 * exists: a killed process may have created it and died before the parent's fsync. *made (may
 * be NULL) is 1 when this call created it. */
static int ensure_dir(const struct kvio *io, const char *dir, int *made)
{
	char parent[PATH_MAX];
	int rc = io->mkdir(io, dir, 0700);
	if (made)
		*made = rc == 0;
	if (rc && rc != -EEXIST)
		return rc;
	parent_of(dir, parent);
	return io->fsync_dir(io, parent);
}

int store_ensure_dir(const struct kvio *io, const char *dir)
{
	return ensure_dir(io, dir, NULL);
}

/* ---- the space reserve ---- */

/* A preallocated file kept so that a full disk can still free space: the records of deletions,
 * the cleaner's relocations and the checkpoint that then deletes dead segments need room of
 * their own. Its size follows the next checkpoint's, as far as it is known (the last one
 * written, or the one loaded at open): twice it plus RESERVE_MIN plus half the largest segment
 * (the room to empty a half-live segment on a full disk: without it a disk full of half-live segments, as
 * deleting every other file leaves it, frees nothing — FINDINGS.md 3), at least reserve_floor
 * (that checkpoint plus a segment of deletions) whatever RESERVE_MAX says; on a disk without
 * room for that, as much as there is down to the floor. It is taken at open and grown after every
 * checkpoint, held or not — a checkpoint that outgrew it would find no room on a full disk
 * (FINDINGS.md 2: a reserve taken at RESERVE_MIN below an 11 MB checkpoint wedged every DEL).
 *
 * Only work that frees space spends it (reserve_lend): a write of only deletions, the
 * cleaner's relocations, a checkpoint with dead segments to delete. While it is lent, writes
 * that would take new space fail with ENOSPC, and new segments are at most RESERVE_SLACK (what
 * the records need, if more), so that the checkpoint freeing space keeps its room; a
 * checkpoint that then frees enough takes it back (reserve_restore). ckpt_mu held. */
static uint64_t reserve_floor(const struct kv *s)
{
	return s->ckpt_file_bytes + RESERVE_SLACK;
}

static uint64_t reserve_want(const struct kv *s)
{
	uint64_t want = 2 * s->ckpt_file_bytes + RESERVE_MIN + segtab_largest(s->segs) / 2;
	if (want > RESERVE_MAX)
		want = RESERVE_MAX;
	return want < reserve_floor(s) ? reserve_floor(s) : want;
}

/* Whether a reserve of have bytes is more than twice what the store wants: one made when the
 * checkpoint or the largest segment was bigger, by a version with a larger RESERVE_MAX, or a
 * file someone made. It is cut back to want; between want and twice it, it stays. With growth
 * only when a quarter short, the size moves only when want has changed by a factor of two or
 * more over the way, so a checkpoint whose size wavers costs no calls. */
static int reserve_oversized(uint64_t have, uint64_t want)
{
	return have / 2 > want;
}

/* Cut the reserve back to want and sync that (fd open on it; ckpt_mu held, nothing probed). A
 * failure only leaves disk held that the store does not need: it is said, not returned, and the
 * next checkpoint and the next open try again. Either way the file is at least want. */
static void reserve_cut(struct kv *s, int fd, uint64_t want)
{
	uint64_t was = s->reserve_bytes;
	int rc = s->io->ftruncate(s->io, fd, want);

	if (!rc)
		s->reserve_bytes = want; /* its size now, whether the sync below holds it or not */
	if (!rc)
		rc = s->io->fdatasync(s->io, fd);
	if (rc)
		kv_log(s, "%s/" RESERVE_NAME ": cannot be cut back from %" PRIu64 " to %" PRIu64 " bytes: "
		       "%s (it holds the difference until the next checkpoint or open cuts it)", s->dir,
		       was, want, strerror(-rc));
}

static int reserve_take(struct kv *s)
{
	char path[PATH_MAX + 32];
	uint64_t want = reserve_want(s), floor = reserve_floor(s), have;
	int fd, rc;

	/* held: grown only when a quarter short (and always below the floor), so that a
	 * checkpoint a little bigger than the last costs no calls; cut only when oversized. While
	 * probed it is bigger on purpose (reserve_probe): never cut then, still grown (a failed
	 * unprobe must not stop it following the checkpoint up). */
	have = s->reserve_bytes;
	if (have && (have >= want || (have >= floor && have >= want - want / 4)) &&
	    (s->reserve_probed || !reserve_oversized(have, want)))
		return 0;
	snprintf(path, sizeof(path), "%s/" RESERVE_NAME, s->dir);
	/* O_NOFOLLOW: its bytes mean nothing only if it is the store's own file; a symlink in its
	 * place would have the file it names cut (ELOOP refuses the open instead) */
	rc = s->io->open(s->io, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600, &fd);
	if (rc)
		return kvio_no_room(rc) ? 0 : rc;
	if (!s->reserve_probed) {
		/* its real size: at open a file an earlier process left (of any size), later the
		 * one this process keeps */
		rc = s->io->fsize(s->io, fd, &have);
		if (rc)
			goto out;
		s->reserve_bytes = have;
		if (reserve_oversized(have, want))
			reserve_cut(s, fd, want);
		/* all it keeps allocated, as fallocate at every open always made it: a copy of the
		 * store (cp, a backup tool) may have made it sparse, and the reserve's room is
		 * counted whole (reserve_room, the lent room). No room for all: cut to what is
		 * wanted and try that; no room for that either leaves it so. */
		if (s->reserve_bytes) {
			rc = s->io->fallocate(s->io, fd, 0, s->reserve_bytes);
			if (kvio_no_room(rc) && s->reserve_bytes > want) {
				reserve_cut(s, fd, want);
				rc = s->io->fallocate(s->io, fd, 0, s->reserve_bytes);
			}
			if (rc && !kvio_no_room(rc))
				goto out;
		}
		rc = 0;
		have = s->reserve_bytes;
		if (have >= want || (have >= floor && have >= want - want / 4))
			goto out;
	}
	/* a held reserve grows in place: the file is its size, and a failed try shrinks it back */
	for (uint64_t n = want; n > s->reserve_bytes; n = n / 2 > floor ? n / 2 : floor) {
		rc = s->io->fallocate(s->io, fd, 0, n);
		if (!rc) {
			s->reserve_bytes = n;
			break;
		}
		if (!kvio_no_room(rc))
			break;
		/* what the failed fallocate allocated (ext4 keeps it) goes back */
		int trc = s->io->ftruncate(s->io, fd, s->reserve_bytes);
		if (trc) {
			rc = trc;
			break;
		}
		if (n == floor)
			break;
		rc = 0; /* no room for it: a smaller one, or none */
	}
	if (kvio_no_room(rc))
		rc = 0;
out:
	kvio_close_quiet(s->io, fd); /* nothing in it matters */
	return rc;
}

void reserve_probe(struct kv *s, uint64_t more)
{
	char path[PATH_MAX + 32];
	int fd;
	if (s->reserve_lent || !s->reserve_bytes)
		return;
	snprintf(path, sizeof(path), "%s/" RESERVE_NAME, s->dir);
	if (s->io->open(s->io, path, O_RDWR | O_NOFOLLOW, 0600, &fd))
		return; /* no probe: the cleaner moves what the reserve holds */
	for (uint64_t n = more; n >= RESERVE_SLACK; n /= 2) {
		if (s->io->fallocate(s->io, fd, 0, s->reserve_bytes + n) == 0) {
			s->reserve_bytes += n;
			s->reserve_probed += n;
			break;
		}
		/* what the failed fallocate allocated (ext4 keeps it) goes back; if that fails,
		 * the file holds more than reserve_bytes says until it is next unlinked */
		if (s->io->ftruncate(s->io, fd, s->reserve_bytes))
			break;
	}
	kvio_close_quiet(s->io, fd); /* nothing in it matters */
}

void reserve_unprobe(struct kv *s)
{
	char path[PATH_MAX + 32];
	int fd;
	if (!s->reserve_probed || s->reserve_lent || !s->reserve_bytes)
		return;
	snprintf(path, sizeof(path), "%s/" RESERVE_NAME, s->dir);
	if (s->io->open(s->io, path, O_RDWR | O_NOFOLLOW, 0600, &fd))
		return; /* it stays bigger until it is next lent */
	if (s->io->ftruncate(s->io, fd, s->reserve_bytes - s->reserve_probed) == 0) {
		s->reserve_bytes -= s->reserve_probed;
		s->reserve_probed = 0;
	}
	kvio_close_quiet(s->io, fd); /* nothing in it matters */
}

static int reserve_release(struct kv *s)
{
	char path[PATH_MAX + 32];
	if (!s->reserve_bytes)
		return 0;
	snprintf(path, sizeof(path), "%s/" RESERVE_NAME, s->dir);
	int rc = s->io->unlink(s->io, path);
	if (rc && rc != -ENOENT)
		return rc;
	s->lent_bytes = s->reserve_bytes;
	s->reserve_bytes = 0;
	s->reserve_probed = 0;
	return 1;
}

static void set_lent(struct kv *s, int lent)
{
	uint64_t keep = reserve_floor(s) + RESERVE_SLACK;
	pthread_mutex_lock(&s->apply_mu);
	s->reserve_lent = lent;
	s->lent_room = lent && s->lent_bytes > keep ? s->lent_bytes - keep : 0;
	s->lent_used = 0;
	pthread_mutex_unlock(&s->apply_mu);
	wal_set_segment_cap(s->wal, lent ? RESERVE_SLACK : 0);
}

int reserve_lend(struct kv *s)
{
	int rc = reserve_release(s);
	if (rc > 0)
		set_lent(s, 1);
	return rc;
}

void reserve_restore(struct kv *s)
{
	int rc = reserve_take(s);
	if (rc)
		kv_log(s, "%s/" RESERVE_NAME ": cannot be made again: %s", s->dir, strerror(-rc));
	if (s->reserve_lent && s->reserve_bytes >= reserve_floor(s))
		set_lent(s, 0);
}

uint64_t reserve_room(const struct kv *s)
{
	uint64_t have = s->reserve_lent ? s->lent_bytes : s->reserve_bytes;
	return have > reserve_floor(s) ? have - reserve_floor(s) : 0;
}

/* The checkpoint at lsn would delete a segment: a sealed one with nothing live, all its
 * records at or below lsn (release_segments' test, less the old checkpoint's references,
 * which the new one replaces). Only such a checkpoint may spend the reserve. */
static int checkpoint_frees(struct kv *s, uint64_t lsn)
{
	struct seg_info *info;
	struct wal_stats ws;
	size_t n;
	int frees = 0;
	if (segtab_list(s->segs, &info, &n))
		return 0; /* out of memory: the reserve stays */
	wal_get_stats(s->wal, &ws);
	for (size_t i = 0; i < n && !frees; i++)
		frees = info[i].first_lsn != ws.seg_first_lsn && info[i].last_lsn && info[i].last_lsn <= lsn &&
			!info[i].live;
	free(info);
	return frees;
}

/* The size of the checkpoint at lsn (0 when there is none: a new store): the reserve at open
 * is sized from it. */
static int loaded_checkpoint_bytes(struct kv *s, uint64_t lsn, uint64_t *bytes)
{
	char name[64], path[PATH_MAX + 64];
	int fd, rc;
	*bytes = 0;
	ckpt_name(name, sizeof(name), lsn);
	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	rc = s->io->open(s->io, path, O_RDONLY, 0, &fd);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = s->io->fsize(s->io, fd, bytes);
	kvio_close_quiet(s->io, fd); /* read-only: nothing to lose */
	return rc;
}

/* ---- background work ---- */

static void *bg_main(void *arg)
{
	struct kv *s = arg;
	pthread_mutex_lock(&s->bg_mu);
	while (!s->bg_stop) {
		if (!s->bg_wanted) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1; /* also look at the cleaner's policy now and then */
			pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &ts);
			if (s->bg_stop)
				break;
		}
		s->bg_wanted = 0;
		pthread_mutex_unlock(&s->bg_mu);
		int rc = 0;
		if (wal_bytes_now(s) >= __atomic_load_n(&s->ckpt_next_at, __ATOMIC_RELAXED)) {
			pthread_mutex_lock(&s->ckpt_mu);
			rc = checkpoint_locked(s, NULL);
			pthread_mutex_unlock(&s->ckpt_mu);
			if (rc) {
				kv_log(s, "%s: automatic checkpoint failed: %s (the log keeps growing; retrying "
				       "after another %" PRIu64 " bytes)", s->dir, strerror(-rc), s->opt.checkpoint_bytes);
				__atomic_store_n(&s->ckpt_next_at, s->opt.checkpoint_bytes + wal_bytes_now(s),
						 __ATOMIC_RELAXED);
			}
		}
		if (s->opt.cleaner && !s->failed)
			cleaner_run(s, &s->bg_stop);
		pthread_mutex_lock(&s->bg_mu);
	}
	pthread_mutex_unlock(&s->bg_mu);
	return NULL;
}

static void wake_background(struct kv *s)
{
	pthread_mutex_lock(&s->bg_mu);
	if (!s->bg_wanted) {
		s->bg_wanted = 1;
		pthread_cond_signal(&s->bg_cv);
	}
	pthread_mutex_unlock(&s->bg_mu);
}

static void maybe_background(struct kv *s)
{
	if (wal_bytes_now(s) >= __atomic_load_n(&s->ckpt_next_at, __ATOMIC_RELAXED))
		wake_background(s);
}

static void on_flush_error(void *arg, int err)
{
	struct kv *s = arg;
	kv_log(s, "%s: log flush failed: %s; the store is now read-only (writes fail with EROFS "
	       "until it is reopened; writes since the last successful flush may be lost)",
	       s->dir, strerror(-err));
}

/* ---- open / close ---- */

static void stop_background(struct kv *s)
{
	pthread_mutex_lock(&s->bg_mu);
	__atomic_store_n(&s->bg_stop, 1, __ATOMIC_RELAXED); /* the cleaner reads it without bg_mu */
	pthread_cond_signal(&s->bg_cv);
	pthread_mutex_unlock(&s->bg_mu);
	pthread_join(s->bg_thread, NULL);
	s->bg_running = 0;
}

static struct kv *kv_alloc(const char *dir, const struct kv_options *o)
{
	struct kv *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->opt = *o;
	s->io = o->io ? o->io : &kvio_posix;
	s->lock_fd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	pthread_mutex_init(&s->apply_mu, NULL);
	pthread_rwlock_init(&s->ix_lock, NULL);
	pthread_mutex_init(&s->clean_mu, NULL);
	pthread_mutex_init(&s->ckpt_mu, NULL);
	pthread_mutex_init(&s->bg_mu, NULL);
	pthread_cond_init(&s->bg_cv, NULL);
	return s;
}

static void kv_free(struct kv *s)
{
	if (s->ix)
		kvindex_destroy(s->ix);
	segtab_free(s->segs);
	ckpt_refs_free(&s->refs);
	kvio_close_quiet(s->io, s->lock_fd); /* releases the lock either way */
	pthread_mutex_destroy(&s->apply_mu);
	pthread_rwlock_destroy(&s->ix_lock);
	pthread_mutex_destroy(&s->clean_mu);
	pthread_mutex_destroy(&s->ckpt_mu);
	pthread_mutex_destroy(&s->bg_mu);
	pthread_cond_destroy(&s->bg_cv);
	free(s);
}

/* The due point of the next automatic checkpoint. */
/* The next automatic checkpoint: after checkpoint_bytes of log, or twice the last checkpoint's
 * size if that is more, so that writing checkpoints of a big index never costs more than half
 * the log's bytes (and replay after it stays within about twice loading it). */
static uint64_t checkpoint_due(const struct kv *s, uint64_t now)
{
	uint64_t every = s->opt.checkpoint_bytes;
	if (2 * s->ckpt_file_bytes > every)
		every = 2 * s->ckpt_file_bytes;
	return now + every;
}

/* Index and segment table, with the index's accounting landing in the table. */
static int make_state(struct kv *s)
{
	int rc = kvindex_create(&s->ix);
	if (!rc)
		rc = segtab_new(&s->segs, s->io, s->dir);
	if (!rc)
		kvindex_set_account(s->ix, segtab_account, s->segs);
	return rc;
}

/* A file only a store makes: its lock, log segments, checkpoints (and their temporaries),
 * the space reserve and the promise file, a format-1 snapshot. */
static int store_file(const char *name)
{
	uint64_t v;
	size_t n = strlen(name);
	return !strcmp(name, "LOCK") || !strcmp(name, RESERVE_NAME) || !strcmp(name, PROMISE_NAME) ||
	       seg_parse_name(name, &v) == 0 ||
	       ckpt_parse_name(name, &v) == 0 || (n > 8 && !strcmp(name + n - 8, ".kvc.tmp")) ||
	       (!strncmp(name, "snap-", 5) && n > 4 && !strcmp(name + n - 4, ".kvs"));
}

/* A file holding a store's history: a log segment, a checkpoint, a format-1 snapshot. */
static int history_file(const char *name)
{
	uint64_t v;
	size_t n = strlen(name);
	return seg_parse_name(name, &v) == 0 || ckpt_parse_name(name, &v) == 0 ||
	       (!strncmp(name, "snap-", 5) && n > 4 && !strcmp(name + n - 4, ".kvs"));
}

/* Whether a writable open (LOCK held) is creating the store: the directory holds no history
 * yet — nothing, or only what an earlier creating open killed or failed left (LOCK, the
 * reserve, a checkpoint's temporary). 1 or 0 in *creating, or -errno. */
static int store_is_new(const struct kvio *io, const char *dir, int *creating)
{
	char **names = NULL;
	size_t n = 0, k;
	int rc = io->list_dir(io, dir, &names, &n);
	if (rc)
		return rc;
	for (k = 0; k < n && !history_file(names[k]); k++)
		;
	*creating = k == n;
	kvio_free_names(names, n);
	return 0;
}

/* A creating open that fails removes what it made, so that a refused open leaves the disk as
 * it found it (design.md §2) and the next open, on a disk with room, makes the store afresh.
 * Every store file in the directory is one this open made or one an earlier failed creation
 * left: it found no history there, and holds LOCK. The history goes first and LOCK last, then
 * the directory is synced. A power cut before that sync leaves a prefix of these removals; in
 * each the directory holds either what this open had made (as if the power had failed while
 * it was still creating, a state every creating open can leave) or no segment at all, which
 * the next open takes for an empty store and creates again — rightly: this open accepted no
 * write, so there is nothing in it to lose. The directory goes too when this open made it
 * (unmake_dir). Failures here are told to the operator; the open's own error is what the
 * caller gets. */
static void unmake_store(struct kv *s)
{
	char path[PATH_MAX + 64], **names = NULL;
	size_t n = 0;
	int rc = s->io->list_dir(s->io, s->dir, &names, &n);

	for (int pass = 0; pass < 3 && !rc; pass++) {
		for (size_t k = 0; k < n && !rc; k++) {
			int lock = !strcmp(names[k], "LOCK"), hist = history_file(names[k]);
			if (!store_file(names[k]) || (pass == 0) != hist || (pass == 2) != lock)
				continue;
			snprintf(path, sizeof(path), "%s/%s", s->dir, names[k]);
			rc = s->io->unlink(s->io, path);
			if (rc == -ENOENT)
				rc = 0;
		}
	}
	kvio_free_names(names, n);
	if (!rc)
		rc = s->io->fsync_dir(s->io, s->dir);
	if (rc)
		kv_log(s, "%s: removing the files of the store this open was creating failed: %s (they "
		       "hold no data; the next open uses or removes them)", s->dir, strerror(-rc));
}

/* After the store's files went (unmake_store, unmake_lock): the directory, when this open made
 * it, and its name in the parent, so that a refused open — or a program that gives up on the
 * store it just created (kv_abandon) — leaves no empty directory behind. A directory someone
 * filled meanwhile stays (rmdir refuses it), and so does one that was there before the open.
 * A power cut before the parent's sync leaves the directory, empty or with what unmake_store
 * had not removed yet: a state the next open makes a store in afresh. */
static void unmake_dir(struct kv *s)
{
	char parent[PATH_MAX];
	int rc;

	if (!s->made_dir || !s->io->rmdir)
		return;
	rc = s->io->rmdir(s->io, s->dir);
	if (rc == -ENOTEMPTY || rc == -EEXIST || rc == -ENOENT)
		return;
	if (!rc) {
		parent_of(s->dir, parent);
		rc = s->io->fsync_dir(s->io, parent);
	}
	if (rc)
		kv_log(s, "%s: removing the store directory this open made failed: %s (it holds no data; "
		       "remove it, or the next open uses it)", s->dir, strerror(-rc));
}

/* The open made LOCK in a directory holding none of a store's files, and failed before it
 * knew whether it is creating the store (a lock or a listing that failed; another holder is
 * -EWOULDBLOCK, and its LOCK stays): LOCK goes again, all the open may have made. */
static void unmake_lock(struct kv *s)
{
	char path[PATH_MAX + 8];
	int rc;

	snprintf(path, sizeof(path), "%s/LOCK", s->dir);
	rc = s->io->unlink(s->io, path);
	if (!rc || rc == -ENOENT)
		rc = s->io->fsync_dir(s->io, s->dir);
	if (rc)
		kv_log(s, "%s: removing the LOCK this open made failed: %s (it holds no data; the next "
		       "open uses it)", path, strerror(-rc));
}

/* A directory that holds files but none of a store's is someone else's: a mistyped path (the
 * mount point for the data directory, say) must not become a store on top of what is there.
 * -ENOTEMPTY with rep naming one of its files. */
static int refuse_foreign_dir(const struct kvio *io, const char *dir, struct kv_report *rep, int *bare)
{
	char **names = NULL;
	size_t n = 0, k;
	int rc = io->list_dir(io, dir, &names, &n);
	if (rc)
		return rc;
	for (k = 0; k < n && !store_file(names[k]); k++)
		;
	*bare = k == n; /* none of a store's files: a LOCK here now is this open's */
	if (n && k == n) {
		report_problem(rep, KV_PROBLEM_NOT_A_STORE, names[0], -ENOTEMPTY);
		rc = -ENOTEMPTY;
	}
	kvio_free_names(names, n);
	return rc;
}

/* Salvage of damage (a point-in-time open that found some) may copy a damaged segment aside,
 * up to a whole segment_bytes, and on a full disk — where a store used hard is, and where the
 * close checkpoint failed, so the damage is in the log replayed — the store's own reserve holds
 * the only room there is (attack5 finding 1). So the reserve goes first: the copy may take its
 * room, and the open takes it again after the plan (reserve_take below; as much as is left, and
 * the next open again). No reserve file (a first open, one deleted): nothing to give. */
static int salvage_spends_reserve(struct kv *s, struct kv_report *rep, int *spent)
{
	char path[PATH_MAX + 32];
	int rc;

	*spent = 0;
	if (s->opt.recovery != KV_RECOVERY_POINT_IN_TIME || !rep->damaged)
		return 0;
	snprintf(path, sizeof(path), "%s/" RESERVE_NAME, s->dir);
	rc = s->io->unlink(s->io, path);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		report_problem(rep, KV_PROBLEM_FILE, RESERVE_NAME, rc);
	*spent = !rc;
	return rc;
}

/* The plan failed after the reserve was spent for it (a copy that found no room even so): the
 * room its failure left is taken back, so that a refused salvage leaves the store as it found
 * it. A failure here only leaves the reserve to the next writable open. */
static void salvage_gives_back_reserve(struct kv *s)
{
	int rc = loaded_checkpoint_bytes(s, s->ckpt_lsn, &s->ckpt_file_bytes);

	if (!rc)
		rc = reserve_take(s);
	if (rc)
		kv_log(s, "%s/" RESERVE_NAME ": cannot be made again: %s (the next open makes it)",
		       s->dir, strerror(-rc));
}

/* Everything a writable open adds after recovery: the plan carried out, the log, the space
 * reserve, the flusher and the background thread. */
static int open_for_writing(struct kv *s, struct rplan *plan, struct kv_report *rep)
{
	const struct kv_options *o = &s->opt;
	struct wal_resume resume;
	uint64_t next_lsn, replayed_bytes;
	int rc, have_resume, spent;

	rc = salvage_spends_reserve(s, rep, &spent);
	if (!rc)
		rc = recovery_commit(s->io, s->dir, plan, s->segs, rep); /* names the file on failure */
	if (rc && spent)
		salvage_gives_back_reserve(s);
	if (rc)
		goto out;
	rc = write_lock_pid(s);
	if (rc) {
		report_problem(rep, KV_PROBLEM_FILE, "LOCK", rc);
		goto out;
	}
	recovery_resume(plan, &next_lsn, &resume, &have_resume, &replayed_bytes);
	rc = wal_open(&s->wal, s->io, s->dir, o->segment_bytes, next_lsn, have_resume ? &resume : NULL,
		      s->segs);
	if (rc) {
		/* the segment it was creating or resuming: a new store's first one, or the last */
		char name[64];
		seg_name(name, sizeof(name), have_resume ? resume.first_lsn : next_lsn);
		report_problem(rep, KV_PROBLEM_FILE, name, rc);
		goto out;
	}
	/* wal bytes count from the checkpoint: the replayed ones are already there */
	s->wal_base = 0;
	s->wal_base -= replayed_bytes;
	rc = loaded_checkpoint_bytes(s, s->ckpt_lsn, &s->ckpt_file_bytes);
	if (rc) {
		char name[64];
		ckpt_name(name, sizeof(name), s->ckpt_lsn);
		report_problem(rep, KV_PROBLEM_FILE, name, rc);
		goto out;
	}
	s->ckpt_next_at = checkpoint_due(s, 0);
	rc = reserve_take(s);
	if (rc) {
		report_problem(rep, KV_PROBLEM_FILE, RESERVE_NAME, rc);
		goto out;
	}
	if (o->sync == KV_SYNC_BATCH) {
		rc = wal_start_flusher(s->wal, o->commit_ms, on_flush_error, s);
		if (rc)
			goto out;
	}
	rc = -pthread_create(&s->bg_thread, NULL, bg_main, s);
	if (!rc)
		s->bg_running = 1;
out:
	return rc;
}

/* Salvage: a key whose value lost bytes to damage is deleted (its bytes stay in the copy of
 * the damaged segment set aside), in records of their own, then a checkpoint: the store is
 * whole again, and a strict open finds no live value on the damage. The checkpoint is also
 * written when the one loaded had damaged entries (a copy of it is aside), so that a strict
 * open finds a whole one. */
static int forget_lost_values(struct kv *s, const struct rplan *plan)
{
	const void *key;
	size_t klen, n = recovery_lost_keys(plan, 0, &key, &klen);
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i += LOST_PER_RECORD) {
		struct kv_batch *b;
		rc = kv_batch_new(&b);
		for (size_t j = i; !rc && j < n && j < i + LOST_PER_RECORD; j++) {
			recovery_lost_keys(plan, j, &key, &klen);
			rc = kv_batch_del(b, key, klen);
		}
		if (!rc)
			rc = store_apply(s, b, NULL);
		kv_batch_free(b);
	}
	if (!rc && (n || recovery_rewrites_checkpoint(plan)))
		rc = kv_snapshot(s);
	return rc;
}

int kv_open(struct kv **out, const char *dir, const struct kv_options *o, struct kv_report *rep_out)
{
	struct kv_report local, *rep = rep_out ? rep_out : &local;
	struct rplan *plan = NULL;
	struct wal_resume resume;
	struct kv *s;
	uint64_t next_lsn, replayed_bytes;
	int rc, have_resume, bare = 0, made_lock = 0;
	enum recovery_mode mode = o->recovery == KV_RECOVERY_POINT_IN_TIME ? RECOVER_SALVAGE : RECOVER_STRICT;

	memset(rep, 0, sizeof(*rep));
	if (strlen(dir) >= PATH_MAX - 64)
		return -ENAMETOOLONG;
	s = kv_alloc(dir, o);
	if (!s)
		return -ENOMEM;
	/* read-only: the directory must exist; nothing is created */
	rc = o->read_only ? 0 : ensure_dir(s->io, dir, &s->made_dir);
	if (!rc)
		rc = refuse_foreign_dir(s->io, dir, rep, &bare);
	if (rc) {
		if (rc != -ENOTEMPTY)
			report_problem(rep, KV_PROBLEM_DIR, NULL, rc);
		goto fail;
	}
	rc = take_lock(s, o->read_only);
	if (rc == -EWOULDBLOCK) {
		report_problem(rep, KV_PROBLEM_LOCKED, NULL, rc);
		lock_holder(s->io, dir, rep->holder, sizeof(rep->holder));
		goto fail;
	}
	made_lock = bare && !o->read_only && s->lock_fd >= 0;
	if (rc) {
		report_problem(rep, KV_PROBLEM_FILE, "LOCK", rc);
		goto fail;
	}
	if (!o->read_only) {
		rc = store_is_new(s->io, dir, &s->creating);
		if (rc) {
			report_problem(rep, KV_PROBLEM_DIR, NULL, rc);
			goto fail;
		}
		made_lock = 0; /* a creating open removes it with the rest; another, never */
	}
	rc = make_state(s);
	if (rc)
		goto fail;
	struct recovery_in in = { s->io, dir, mode, o->read_only, &o->progress };
	rc = recovery_scan(&in, &s->ix, s->segs, &plan, rep);
	if (rc) {
		if (rc != -EUCLEAN && !rep->problem) /* recovery names the file it was reading */
			report_problem(rep, KV_PROBLEM_FILE, NULL, rc);
		goto fail;
	}
	recovery_resume(plan, &next_lsn, &resume, &have_resume, &replayed_bytes);
	s->applied_lsn = next_lsn - 1;
	s->tail_unvouched = !recovery_tail_vouched(plan);
	s->ckpt_lsn = rep->snapshot_lsn;
	s->refs = *recovery_refs(plan);
	memset((struct ckpt_refs *)recovery_refs(plan), 0, sizeof(struct ckpt_refs)); /* moved to s */
	if (!o->read_only) {
		rc = open_for_writing(s, plan, rep);
		if (!rc)
			rc = forget_lost_values(s, plan);
		if (rc)
			goto fail;
	}
	recovery_free(plan);
	*out = s;
	return 0;
fail:
	recovery_free(plan);
	if (s->bg_running)
		stop_background(s);
	if (s->wal) {
		int wrc = wal_close(s->wal);
		(void)wrc; /* nothing was written through it */
	}
	if (s->creating)
		unmake_store(s);
	else if (made_lock)
		unmake_lock(s);
	unmake_dir(s);
	kv_free(s);
	return rc;
}

/* A checkpoint at a clean close pays when the next open would replay more log than the checkpoint
 * holds: replaying a byte of log (parse, check, apply) costs more than writing and loading a byte
 * of checkpoint, and the new checkpoint is loaded instead of the old one, not beside it. Below
 * 1/CLOSE_CKPT_FRACTION of checkpoint_bytes (4 MiB by default) replay takes a few tens of
 * milliseconds and the checkpoint would cost more than it saves; it is an automatic checkpoint
 * brought forward, so a store that asks for none (a huge checkpoint_bytes) gets none at close. */
static int close_checkpoint_pays(struct kv *s)
{
	uint64_t log = wal_bytes_now(s);
	return log >= s->opt.checkpoint_bytes / CLOSE_CKPT_FRACTION && log >= s->ckpt_file_bytes;
}

int kv_close(struct kv *s)
{
	int rc = 0;
	if (!s)
		return 0;
	if (s->bg_running)
		stop_background(s);
	if (s->wal) {
		struct wal_stats ws;
		wal_get_stats(s->wal, &ws);
		/* not after a failed write or sync: the store refuses writes then, and a checkpoint
		 * would stand for what the log may not hold */
		if (!ws.error && !s->failed && close_checkpoint_pays(s)) {
			/* its failure costs the next open time, not data: reported in words, and the
			 * close returns the flush result as ever (a failed log sync inside it is
			 * sticky and comes back from wal_close below) */
			pthread_mutex_lock(&s->ckpt_mu);
			int ckrc = checkpoint_locked(s, NULL);
			pthread_mutex_unlock(&s->ckpt_mu);
			if (ckrc)
				kv_log(s, "%s: the checkpoint at close failed: %s (nothing is lost: the next open "
				       "replays the log)", s->dir, strerror(-ckrc));
			wal_get_stats(s->wal, &ws);
		}
		/* a clean close says so in the log: damage in its last records is then damage */
		if (!ws.error && !s->failed && (ws.appended_bytes || s->tail_unvouched))
			rc = wal_mark(s->wal);
		int crc = wal_close(s->wal);
		if (!rc)
			rc = crc;
		if (rc)
			kv_log(s, "%s: final flush failed: %s", s->dir, strerror(-rc));
	}
	space_free(s->space);
	kv_free(s);
	return rc;
}

int kv_abandon(struct kv *s)
{
	int untouched;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->apply_mu);
	/* nothing logged since the open: a new store's first LSN is 1 */
	untouched = s->creating && s->applied_lsn == 0 && !s->failed;
	pthread_mutex_unlock(&s->apply_mu);
	if (!untouched)
		return kv_close(s);
	if (s->bg_running)
		stop_background(s);
	if (s->wal) {
		int wrc = wal_close(s->wal);
		(void)wrc; /* nothing was written through it, and its file goes below */
	}
	unmake_store(s);
	unmake_dir(s);
	space_free(s->space);
	kv_free(s);
	return 0;
}

/* Read every byte the index references, checking its checksums: what --check adds to the
 * recovery scan. The first damaged key is reported. */
/* Keys found with damaged value bytes (salvage deletes them). */
struct keylist {
	char **key;
	size_t *len;
	size_t n, cap;
};

static int keylist_push(struct keylist *l, const void *key, size_t klen)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **k = realloc(l->key, cap * sizeof(*k));
		if (k)
			l->key = k;
		size_t *n = k ? realloc(l->len, cap * sizeof(*n)) : NULL;
		if (!n)
			return -ENOMEM;
		l->len = n;
		l->cap = cap;
	}
	l->key[l->n] = malloc(klen ? klen : 1);
	if (!l->key[l->n])
		return -ENOMEM;
	if (klen)
		memcpy(l->key[l->n], key, klen);
	l->len[l->n++] = klen;
	return 0;
}

static void keylist_free(struct keylist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->key[i]);
	free(l->key);
	free(l->len);
}

/* Read every value byte the index references, checking it; bad (may be NULL) gets each key
 * whose bytes fail. -EUCLEAN (the report says where) when any does. */
static int verify_data(struct kv *s, enum kv_work what, const struct kv_progress *progress,
		       struct kv_report *rep,
		       struct keylist *bad_keys)
{
	struct progress meter;
	struct kvcursor *c = NULL;
	const void *key;
	size_t klen;
	const struct kvval *v;
	uint8_t *buf = malloc(1u << 20);
	int rc;

	if (!buf)
		return -ENOMEM;
	/* the bytes to read: a first pass over the index (memory only) */
	uint64_t total = 0;
	rc = kvcursor_open_live(s->ix, NULL, 0, &c);
	while (!rc && kvcursor_next(c, &key, &klen, &v) == 1) {
		uint32_t n;
		const struct kvext *e = kvval_extents(v, &n);
		for (uint32_t i = 0; i < n; i++)
			total += e[i].len;
	}
	if (c)
		kvcursor_close(c);
	c = NULL;
	progress_start(&meter, progress, what, total);
	if (!rc)
		rc = kvcursor_open_live(s->ix, NULL, 0, &c);
	while (!rc && kvcursor_next(c, &key, &klen, &v) == 1) {
		uint32_t n;
		const struct kvext *e = kvval_extents(v, &n);
		int bad = 0;
		for (uint32_t i = 0; !bad && i < n; i++) {
			for (uint64_t at = 0; at < e[i].len; at += 1u << 20) {
				uint64_t len = e[i].len - at < (1u << 20) ? e[i].len - at : 1u << 20, bseg = 0, boff = 0;
				int rrc = segtab_read(s->segs, &e[i], at, buf, (size_t)len, &bseg, &boff);
				if (rrc == -EIO || rrc == -ENOENT) {
					bad = 1;
					if (!rep->data_damaged_keys) {
						snprintf(rep->damage_file, sizeof(rep->damage_file), "wal-%016" PRIx64 ".log", rrc == -EIO ? bseg : e[i].seg);
						rep->damage_offset = boff;
					}
					break;
				}
				if (rrc) {
					rc = rrc;
					break;
				}
				progress_add(&meter, len);
			}
		}
		if (bad && bad_keys && !rc)
			rc = keylist_push(bad_keys, key, klen);
		if (bad && !rep->data_damaged_keys++)
			snprintf(rep->data_damage_key, sizeof(rep->data_damage_key), "%.*s",
				 (int)(klen < sizeof(rep->data_damage_key) - 1 ? klen : sizeof(rep->data_damage_key) - 1),
				 (const char *)key);
	}
	if (c)
		kvcursor_close(c);
	free(buf);
	progress_end(&meter);
	if (!rc && rep->data_damaged_keys) {
		rep->damaged = 1;
		rep->problem = KV_PROBLEM_DAMAGE;
		rep->damage = KV_DAMAGE_VALUE_BYTES;
		rc = -EUCLEAN;
	}
	return rc;
}

int kv_check(const char *dir, const struct kvio *io, const struct kv_progress *progress,
	     struct kv_report *rep)
{
	struct recovery_in in = { io ? io : &kvio_posix, dir, RECOVER_STRICT, 0, progress };
	struct kv_options o;
	struct kv *s;
	struct rplan *plan = NULL;
	int rc, bare;

	memset(rep, 0, sizeof(*rep));
	kv_options_default(&o);
	o.io = io;
	s = kv_alloc(dir, &o);
	if (!s)
		return -ENOMEM;
	rc = refuse_foreign_dir(s->io, dir, rep, &bare);
	if (rc) {
		if (rc != -ENOTEMPTY)
			report_problem(rep, KV_PROBLEM_DIR, NULL, rc);
		goto out;
	}
	/* The lock only keeps a live writer from changing files under the check. */
	rc = take_lock(s, 1);
	if (rc == -EWOULDBLOCK) {
		report_problem(rep, KV_PROBLEM_LOCKED, NULL, rc);
		lock_holder(s->io, dir, rep->holder, sizeof(rep->holder));
	}
	if (!rc)
		rc = make_state(s);
	if (!rc)
		rc = recovery_scan(&in, &s->ix, s->segs, &plan, rep);
	if (!rc)
		rc = verify_data(s, KV_WORK_CHECK, progress, rep, NULL);
out:
	recovery_free(plan);
	kv_free(s);
	return rc;
}

/* Value bytes that fail their checksum (in segments recovery never reads, below the
 * checkpoint): their keys are deleted, one logged batch per LOST_PER_RECORD, then a checkpoint,
 * and named in the report as lost keys. The segment stays (its other values live) until the
 * cleaner empties it. */
static int salvage_values(struct kv *s, const struct kv_progress *progress, struct kv_report *rep)
{
	struct kv_report scan;
	struct keylist bad = { 0 };
	int rc;

	memset(&scan, 0, sizeof(scan));
	rc = verify_data(s, KV_WORK_SALVAGE, progress, &scan, &bad);
	if (rc == -EUCLEAN)
		rc = 0;
	for (size_t i = 0; i < bad.n && !rc; i += LOST_PER_RECORD) {
		struct kv_batch *b;
		rc = kv_batch_new(&b);
		for (size_t j = i; !rc && j < bad.n && j < i + LOST_PER_RECORD; j++)
			rc = kv_batch_del(b, bad.key[j], bad.len[j]);
		if (!rc)
			rc = store_apply(s, b, NULL);
		kv_batch_free(b);
	}
	if (!rc && bad.n) {
		rc = kv_snapshot(s);
		if (!rep->lost_keys)
			snprintf(rep->lost_key, sizeof(rep->lost_key), "%s", scan.data_damage_key);
		rep->lost_keys += bad.n;
		if (!rep->damaged) {
			rep->damaged = 1;
			rep->problem = KV_PROBLEM_DAMAGE;
			rep->damage = KV_DAMAGE_VALUE_BYTES;
			snprintf(rep->damage_file, sizeof(rep->damage_file), "%s", scan.damage_file);
			rep->damage_offset = scan.damage_offset;
			rep->data_damaged_keys = scan.data_damaged_keys;
			snprintf(rep->data_damage_key, sizeof(rep->data_damage_key), "%s", scan.data_damage_key);
		}
		rep->salvaged = 1;
	}
	keylist_free(&bad);
	return rc;
}

int kv_salvage(const char *dir, const struct kvio *io, const struct kv_progress *progress,
	       struct kv_report *rep)
{
	struct kv_options o;
	struct kv *s = NULL;
	struct kv_report r;
	int rc;

	kv_options_default(&o);
	o.io = io;
	o.recovery = KV_RECOVERY_POINT_IN_TIME;
	o.sync = KV_SYNC_NONE;
	o.cleaner = 0;
	o.log = NULL;
	/* Salvage writes little (deletions of damaged keys, the checkpoint at close); with the
	 * default segment size its open would preallocate the store's last segment to 64 MiB
	 * whatever size the store uses, and every later recovery that reads that segment whole
	 * would read megabytes of zeros (the crash sweep's salvage cases: seconds each). */
	o.segment_bytes = SALVAGE_SEGMENT_BYTES;
	if (progress)
		o.progress = *progress;
	/* Salvage is an open in point-in-time mode, then a read of every value byte (as check
	 * does): keys whose bytes fail their checksum are deleted, so that what salvage leaves
	 * checks clean; then a clean close. */
	rc = kv_open(&s, dir, &o, &r);
	*rep = r;
	if (rc)
		return rc;
	rc = salvage_values(s, progress, rep);
	int crc = kv_close(s);
	return rc ? rc : crc;
}

/* ---- writes ---- */

/* Longest key under prefix in the live index (apply_mu held: no mutation can run). */
static size_t longest_key_under(struct kv *s, const uint8_t *prefix, size_t plen)
{
	struct kvcursor *c;
	const void *key;
	size_t klen, longest = 0;
	const struct kvval *v;

	if (kvcursor_open_live(s->ix, prefix, plen, &c))
		return SIZE_MAX;
	while (kvcursor_next(c, &key, &klen, &v) == 1) {
		if (klen < plen || memcmp(key, prefix, plen))
			break;
		if (klen > longest)
			longest = klen;
	}
	kvcursor_close(c);
	return longest;
}

/* The longest key under prefix p once the operations r0 reads before the one whose key is at
 * `stop` have run: the index's keys, and what those operations create or move there. An upper
 * bound: a key the batch creates and then deletes still counts. SIZE_MAX: no memory. */
static size_t longest_after(struct kv *s, const struct rec_reader *r0, const uint8_t *p, size_t plen,
			    const uint8_t *stop)
{
	struct rec_reader r = *r0;
	struct rec_op_view op;
	size_t longest = longest_key_under(s, p, plen);
	int rc = 0;

	while (longest != SIZE_MAX && (rc = rec_reader_next(&r, &op)) == 1 && op.key != stop) {
		/* made[0..mk): the key it creates, or the prefix it moves keys under;
		 * mlen: the longest key that can result */
		const uint8_t *made = op.key;
		size_t mk = op.klen, mlen = op.klen;
		int moved = 0;
		if (op.op == REC_OP_DEL || op.op == REC_OP_SETMETA || op.op == REC_OP_PUNCH ||
		    op.op == REC_OP_RELOCATE)
			continue;
		if (op.op == REC_OP_RENAME) {
			made = op.key2, mk = mlen = op.klen2;
		} else if (op.op == REC_OP_RENAME_PREFIX) {
			size_t under = longest_after(s, r0, op.key, op.klen, op.key);
			if (under == SIZE_MAX)
				return SIZE_MAX;
			if (!under)
				continue;
			made = op.key2, mk = op.klen2, moved = 1;
			mlen = under - op.klen + op.klen2;
		}
		/* a key must start with p; keys under a new prefix may when either starts with the other */
		size_t common = mk < plen ? mk : plen;
		if (mlen > longest && (moved || mk >= plen) && !memcmp(made, p, common))
			longest = mlen;
	}
	return rc < 0 ? SIZE_MAX : longest;
}

/* Checks a record cannot express: a prefix rename must not make any key too long, counting
 * the keys earlier operations of the same batch create or move (they are not in the index yet,
 * and a rename that fails on apply is a silent no-op, not an error). */
static int validate_locked(struct kv *s, const struct rec_reader *r0)
{
	struct rec_reader r = *r0;
	struct rec_op_view op;
	int rc;
	while ((rc = rec_reader_next(&r, &op)) == 1) {
		if (op.op != REC_OP_RENAME_PREFIX || op.klen2 <= op.klen)
			continue;
		size_t longest = longest_after(s, r0, op.key, op.klen, op.key);
		if (longest == SIZE_MAX)
			return -ENOMEM;
		if (longest && longest - op.klen + op.klen2 > KV_MAX_KEY)
			return -ENAMETOOLONG;
	}
	return rc;
}

enum precond { PRE_NONE, PRE_EXISTS };

/* What a write does to the disk's space, for the reserve: it frees space (deletions,
 * truncations, holes, the cleaner's relocations: batch_frees_space), it carries no value bytes
 * (a rename, metadata, a DEL beside a rename: through the mount an unlink of an open file is a
 * rename to an orphan name, deleted at its last close), or it grows the data. */
enum room_use { ROOM_GROWS, ROOM_SMALL, ROOM_FREES };

static enum room_use batch_room(const struct kv_batch *b, const struct rec_reader *r0)
{
	struct rec_reader r = *r0;
	struct rec_op_view op;
	if (batch_frees_space(b))
		return ROOM_FREES;
	while (rec_reader_next(&r, &op) == 1)
		if ((op.op == REC_OP_PUT || op.op == REC_OP_WRITE) && op.dlen)
			return ROOM_GROWS;
	return ROOM_SMALL;
}

/* One attempt at logging and applying b. */
static int apply_once(struct kv *s, const struct rec_reader *r, const struct iovec *iov, int iovcnt,
		      uint64_t len, uint32_t crc, enum precond pre, const void *key, size_t klen,
		      enum room_use use, uint64_t *lsn)
{
	struct rec_loc loc;
	struct wal_stats ws;
	int rc;

	pthread_mutex_lock(&s->apply_mu);
	if (s->failed) {
		rc = -EROFS;
		goto unlock;
	}
	if (pre == PRE_EXISTS && !kvindex_find(s->ix, key, klen)) {
		rc = -ENOENT;
		goto unlock;
	}
	rc = validate_locked(s, r);
	if (rc)
		goto unlock;
	if (s->reserve_lent) {
		/* the reserve's room is for writes that free space; writes carrying no value bytes
		 * may have what the checkpoint and a segment of deletions do not need; writes that
		 * grow the data get none of it */
		wal_get_stats(s->wal, &ws);
		int fits = wal_fits(s->wal, len);
		if ((use == ROOM_GROWS && (ws.seg_first_lsn == s->lent_seg || !fits)) ||
		    (use == ROOM_SMALL && !fits && s->lent_used + RESERVE_SLACK + REC_HDR_SIZE + len > s->lent_room)) {
			rc = -ENOSPC;
			goto unlock;
		}
	}
	/* promised room (space.h) is for the writes consuming it; work that frees space may pass */
	rc = use == ROOM_FREES || s->reserve_lent ? 0 : space_admit(s, len);
	if (!rc)
		rc = wal_append(s->wal, REC_TYPE_OPS, iov, iovcnt, len, crc, lsn, &loc);
	if (kvio_no_room(rc) && space_yield(s, len))
		rc = wal_append(s->wal, REC_TYPE_OPS, iov, iovcnt, len, crc, lsn, &loc);
	if (rc)
		goto unlock;
	if (s->reserve_lent && loc.seg != ws.seg_first_lsn) {
		struct wal_stats now;
		wal_get_stats(s->wal, &now);
		s->lent_seg = loc.seg;
		s->lent_used += now.seg_reserved;
	}
	pthread_rwlock_wrlock(&s->ix_lock);
	rc = apply_record(s->ix, r, &loc);
	pthread_rwlock_unlock(&s->ix_lock);
	if (rc) {
		/* The record is logged but memory could not take it: from here memory and log
		 * disagree, so no more writes; a reopen replays the log and agrees again. */
		s->failed = rc;
		kv_log(s, "%s: cannot apply record %" PRIu64 ": %s; the store is now read-only",
		       s->dir, *lsn, strerror(-rc));
		goto unlock;
	}
	s->applied_lsn = *lsn;
unlock:
	pthread_mutex_unlock(&s->apply_mu);
	return rc;
}

/* No room for a new log segment. A checkpoint deletes the segments nothing needs any more (when
 * anything changed since the last try) and takes the reserve back if that made room; for
 * growing data, full-disk cleaner passes then move the live bytes out of segments holding dead
 * ones into the reserve's room (their checkpoints delete them); a write that frees space gets
 * the reserve. A cleaner pass already running (its own writes found no room) does not start
 * another. */
static void make_room(struct kv *s, enum room_use use)
{
	int rc = 0;
	pthread_mutex_lock(&s->ckpt_mu);
	pthread_mutex_lock(&s->apply_mu);
	uint64_t applied = s->applied_lsn;
	pthread_mutex_unlock(&s->apply_mu);
	if (applied != s->room_lsn) {
		s->room_lsn = applied;
		rc = checkpoint_locked(s, NULL); /* it takes the reserve back when it can */
		if (rc && !kvio_no_room(rc))
			kv_log(s, "%s: out of space, and the checkpoint that would free some failed: %s",
			       s->dir, strerror(-rc));
	} else if (s->reserve_lent) {
		reserve_restore(s); /* space may have come back from elsewhere */
	}
	pthread_mutex_unlock(&s->ckpt_mu);
	if (use == ROOM_GROWS && (!rc || kvio_no_room(rc)) && pthread_mutex_trylock(&s->clean_mu) == 0) {
		rc = cleaner_make_room(s);
		pthread_mutex_unlock(&s->clean_mu);
		if (rc && !kvio_no_room(rc))
			kv_log(s, "%s: out of space, and the cleaner pass that would free some failed: %s",
			       s->dir, strerror(-rc));
	}
	if (use != ROOM_GROWS) {
		pthread_mutex_lock(&s->ckpt_mu);
		rc = reserve_lend(s);
		pthread_mutex_unlock(&s->ckpt_mu);
		if (rc < 0)
			kv_log(s, "%s/" RESERVE_NAME ": cannot be given up: %s", s->dir, strerror(-rc));
	}
}

static int apply_batch(struct kv *s, const struct kv_batch *b, enum precond pre, const void *key, size_t klen,
		       uint64_t *lsn_out)
{
	struct rec_reader r;
	struct iovec *iov = NULL;
	int iovcnt;
	uint64_t len, lsn = 0;
	uint32_t crc, count;
	int rc;

	if (s->opt.read_only)
		return -EROFS;
	batch_reader(b, &r, &count);
	if (!count)
		return -EINVAL;
	rc = batch_iov(b, &iov, &iovcnt, &len, &crc);
	if (rc)
		return rc;
	enum room_use use = batch_room(b, &r);
	rc = apply_once(s, &r, iov, iovcnt, len, crc, pre, key, klen, use, &lsn);
	struct wal_stats ws;
	wal_get_stats(s->wal, &ws);
	if (kvio_no_room(rc) && !ws.error) { /* no room for a new segment (not a failed write) */
		make_room(s, use);
		rc = apply_once(s, &r, iov, iovcnt, len, crc, pre, key, klen, use, &lsn);
	}
	free(iov);
	if (rc)
		return rc;
	__atomic_add_fetch(&s->written_bytes, len, __ATOMIC_RELAXED);
	if (lsn_out)
		*lsn_out = lsn;
	if (s->opt.sync == KV_SYNC_ALWAYS) {
		__atomic_add_fetch(&s->flush_requests, 1, __ATOMIC_RELAXED);
		rc = wal_sync(s->wal, lsn);
	}
	maybe_background(s);
	return rc;
}

int store_apply(struct kv *s, const struct kv_batch *b, uint64_t *lsn_out)
{
	return apply_batch(s, b, PRE_NONE, NULL, 0, lsn_out);
}

int kv_apply(struct kv *s, const struct kv_batch *b, uint64_t *lsn_out)
{
	return apply_batch(s, b, PRE_NONE, NULL, 0, lsn_out);
}

static int apply_one(struct kv *s, struct kv_batch *b, int rc, enum precond pre, const void *key, size_t klen)
{
	if (!rc)
		rc = apply_batch(s, b, pre, key, klen, NULL);
	kv_batch_free(b);
	return rc;
}

int kv_put(struct kv *s, const void *key, size_t klen, const void *val, uint64_t vlen)
{
	struct kv_batch *b;
	int rc = kv_batch_new(&b);
	if (rc)
		return rc;
	return apply_one(s, b, kv_batch_put(b, key, klen, NULL, 0, val, vlen), PRE_NONE, key, klen);
}

int kv_del(struct kv *s, const void *key, size_t klen)
{
	struct kv_batch *b;
	int rc = kv_batch_new(&b);
	if (rc)
		return rc;
	return apply_one(s, b, kv_batch_del(b, key, klen), PRE_EXISTS, key, klen);
}

int kv_write(struct kv *s, const void *key, size_t klen, uint64_t off, const void *data, uint64_t len)
{
	struct kv_batch *b;
	int rc = kv_batch_new(&b);
	if (rc)
		return rc;
	return apply_one(s, b, kv_batch_write(b, key, klen, off, data, len), PRE_EXISTS, key, klen);
}

int kv_truncate(struct kv *s, const void *key, size_t klen, uint64_t size)
{
	struct kv_batch *b;
	int rc = kv_batch_new(&b);
	if (rc)
		return rc;
	return apply_one(s, b, kv_batch_truncate(b, key, klen, size), PRE_EXISTS, key, klen);
}

int kv_setmeta(struct kv *s, const void *key, size_t klen, const void *meta, size_t mlen)
{
	struct kv_batch *b;
	int rc = kv_batch_new(&b);
	if (rc)
		return rc;
	return apply_one(s, b, kv_batch_setmeta(b, key, klen, meta, mlen), PRE_EXISTS, key, klen);
}

/* ---- reads ---- */

/* What a read needs from the index, copied under its lock: the size and the extents that
 * overlap the range. */
struct snap {
	uint64_t size;
	struct kvext stack[8], *e;
	uint32_t n;
};

static void snap_free(struct snap *sn)
{
	if (sn->e != sn->stack)
		free(sn->e);
}

/* Under ix_lock (read). [off, off + len) with len UINT64_MAX: to the end. */
static int snap_take(struct kv *s, const void *key, size_t klen, uint64_t off, uint64_t len, struct snap *sn)
{
	const struct kvval *v = kvindex_find(s->ix, key, klen);
	uint32_t n, first = 0, count = 0;
	const struct kvext *e;

	sn->e = sn->stack;
	sn->n = 0;
	if (!v)
		return -ENOENT;
	sn->size = kvval_size(v);
	e = kvval_extents(v, &n);
	uint64_t hi = len > sn->size - (off < sn->size ? off : sn->size) ? sn->size : off + len;
	while (first < n && e[first].off + e[first].len <= off)
		first++;
	while (first + count < n && e[first + count].off < hi)
		count++;
	if (count > sizeof(sn->stack) / sizeof(sn->stack[0])) {
		sn->e = malloc(count * sizeof(*sn->e));
		if (!sn->e) {
			sn->e = sn->stack;
			return -ENOMEM;
		}
	}
	if (count) /* an empty value has no extent table at all */
		memcpy(sn->e, e + first, count * sizeof(*e));
	sn->n = count;
	return 0;
}

/* Fill buf with value bytes [off, off + n) from the extents in sn (holes as zeros). */
static int read_extents(struct kv *s, const struct snap *sn, uint64_t off, uint8_t *buf, uint64_t n)
{
	uint64_t at = off, end = off + n;
	for (uint32_t i = 0; i <= sn->n && at < end; i++) {
		uint64_t lo = i < sn->n ? sn->e[i].off : end, hi = i < sn->n ? sn->e[i].off + sn->e[i].len : end;
		if (lo > end)
			lo = end;
		if (hi > end)
			hi = end;
		if (lo > at) {
			memset(buf + (at - off), 0, (size_t)(lo - at));
			at = lo;
		}
		if (i == sn->n || hi <= at)
			continue;
		uint64_t bseg = 0, boff = 0;
		int rc = segtab_read(s->segs, &sn->e[i], at - sn->e[i].off, buf + (at - off), (size_t)(hi - at),
				     &bseg, &boff);
		if (rc == -EIO) {
			__atomic_add_fetch(&s->read_errors, 1, __ATOMIC_RELAXED);
			kv_log(s, "%s/wal-%016" PRIx64 ".log: read of value bytes failed at offset %" PRIu64
			       " (checksum or short file); the reader gets EIO", s->dir, bseg, boff);
		}
		if (rc)
			return rc;
		at = hi;
	}
	return 0;
}

/* Read [off, off + len) of key's value (len UINT64_MAX: all of it; *buf NULL: allocate, with a
 * NUL after it). A segment deleted between the lookup and the read (the cleaner moved the
 * bytes meanwhile) makes it look again. Model: tests/model/values_on_disk.pml (the reader). */
static int read_value(struct kv *s, const void *key, size_t klen, uint64_t off, uint64_t len, uint8_t **buf,
		      uint64_t *got)
{
	struct snap sn;
	int rc;

	if (klen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	for (int attempt = 0;; attempt++) {
		pthread_rwlock_rdlock(&s->ix_lock);
		rc = snap_take(s, key, klen, off, len, &sn);
		pthread_rwlock_unlock(&s->ix_lock);
		if (rc)
			return rc;
		uint64_t n = off >= sn.size ? 0 : (sn.size - off < len ? sn.size - off : len);
		int allocated = 0;
		if (!*buf) {
			if (n > SIZE_MAX - 1) {
				snap_free(&sn);
				return -EFBIG;
			}
			*buf = malloc((size_t)n + 1);
			if (!*buf) {
				snap_free(&sn);
				return -ENOMEM;
			}
			(*buf)[n] = 0;
			allocated = 1;
		}
		rc = read_extents(s, &sn, off, *buf, n);
		snap_free(&sn);
		if (rc == -ENOENT && attempt < 3) {
			if (allocated) {
				free(*buf);
				*buf = NULL;
			}
			continue;
		}
		if (rc == -ENOENT)
			rc = -EIO;
		if (rc && allocated) {
			free(*buf);
			*buf = NULL;
		}
		*got = n;
		return rc;
	}
}

int kv_get(struct kv *s, const void *key, size_t klen, void **val, uint64_t *vlen)
{
	uint8_t *buf = NULL;
	int rc = read_value(s, key, klen, 0, UINT64_MAX, &buf, vlen);
	if (!rc)
		*val = buf;
	return rc;
}

int kv_read(struct kv *s, const void *key, size_t klen, uint64_t off, void *buf, size_t len, size_t *got)
{
	uint8_t *b = buf;
	uint64_t n = 0;
	int rc = read_value(s, key, klen, off, len, &b, &n);
	if (!rc)
		*got = (size_t)n;
	return rc;
}

int kv_stat(struct kv *s, const void *key, size_t klen, uint64_t *size, void *meta, size_t *mlen)
{
	int rc = 0;
	if (klen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	pthread_rwlock_rdlock(&s->ix_lock);
	const struct kvval *v = kvindex_find(s->ix, key, klen);
	if (!v) {
		rc = -ENOENT;
		goto out;
	}
	if (size)
		*size = kvval_size(v);
	if (mlen) {
		size_t have;
		const void *m = kvval_meta(v, &have);
		if (meta)
			memcpy(meta, m, have < *mlen ? have : *mlen);
		*mlen = have;
	}
out:
	pthread_rwlock_unlock(&s->ix_lock);
	return rc;
}

int kv_allocated(struct kv *s, const void *key, size_t klen, uint64_t *bytes)
{
	int rc = 0;
	if (klen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	pthread_rwlock_rdlock(&s->ix_lock);
	const struct kvval *v = kvindex_find(s->ix, key, klen);
	if (v)
		*bytes = kvval_allocated(v);
	else
		rc = -ENOENT;
	pthread_rwlock_unlock(&s->ix_lock);
	return rc;
}

int kv_scan(struct kv *s, const void *start, size_t slen, kv_scan_fn fn, void *arg)
{
	struct kvcursor *c;
	const void *key;
	size_t klen;
	const struct kvval *v;
	int rc;

	pthread_rwlock_rdlock(&s->ix_lock);
	rc = kvcursor_open_live(s->ix, start, slen, &c);
	if (rc)
		goto out;
	while (kvcursor_next(c, &key, &klen, &v) == 1) {
		size_t mlen;
		const void *meta = kvval_meta(v, &mlen);
		rc = fn(arg, key, klen, kvval_size(v), meta, mlen);
		if (rc)
			break;
	}
	kvcursor_close(c);
out:
	pthread_rwlock_unlock(&s->ix_lock);
	return rc;
}

/* ---- flush, checkpoints, segment deletion, stats ---- */

int kv_flush(struct kv *s)
{
	struct wal_stats ws;
	if (s->opt.read_only) /* nothing written, nothing to make durable */
		return 0;
	__atomic_add_fetch(&s->flush_requests, 1, __ATOMIC_RELAXED);
	wal_get_stats(s->wal, &ws);
	return wal_sync(s->wal, ws.last_lsn);
}

/* Remove checkpoints older than lsn; they are superseded by a durable newer one.
 * Model: tests/model/values_on_disk.pml. */
static int remove_old_checkpoints(struct kv *s, uint64_t lsn, int *removed)
{
	char **names;
	size_t n;
	int rc = s->io->list_dir(s->io, s->dir, &names, &n);
	if (rc)
		return rc;
	for (size_t k = 0; k < n && !rc; k++) {
		uint64_t v;
		if (ckpt_parse_name(names[k], &v) == 0 && v < lsn) {
			char path[PATH_MAX + 32];
			snprintf(path, sizeof(path), "%s/%s", s->dir, names[k]);
			rc = s->io->unlink(s->io, path);
			*removed += !rc;
		}
	}
	kvio_free_names(names, n);
	return rc;
}

/* Delete every segment the newest durable checkpoint (LSN lsn, references s->refs) makes
 * unneeded: sealed, all its records at or below lsn, none of its bytes referenced by that
 * checkpoint, and (so it must be) none by the live index. The segment being appended to stays.
 * ckpt_mu held. Model: tests/model/values_on_disk.pml. */
static int release_segments(struct kv *s, uint64_t lsn, int *removed)
{
	struct seg_info *info;
	struct wal_stats ws;
	size_t n;
	int rc = segtab_list(s->segs, &info, &n);
	if (rc)
		return rc;
	wal_get_stats(s->wal, &ws);
	for (size_t i = 0; i < n && !rc; i++) {
		const struct seg_info *g = &info[i];
		if (g->first_lsn == ws.seg_first_lsn || !g->last_lsn || g->last_lsn > lsn ||
		    ckpt_refs_has(&s->refs, g->first_lsn) || g->live)
			continue;
		rc = segtab_delete(s->segs, g->first_lsn);
		if (!rc) {
			(*removed)++;
			__atomic_add_fetch(&s->segments_deleted, 1, __ATOMIC_RELAXED);
		}
	}
	free(info);
	return rc;
}

/* ckpt_mu held. */
int checkpoint_locked(struct kv *s, struct ckpt_point *at)
{
	struct kvview *view = NULL;
	struct wal_stats ws;
	struct ckpt_refs refs = { NULL, NULL, 0 };
	uint64_t lsn, mark, bytes = 0;
	int rc, removed = 0;

	pthread_mutex_lock(&s->apply_mu);
	lsn = s->applied_lsn;
	wal_get_stats(s->wal, &ws); /* appending happens under apply_mu: the log ends at lsn */
	mark = ws.appended_bytes;
	rc = s->failed ? -EROFS : kvindex_view(s->ix, &view);
	pthread_mutex_unlock(&s->apply_mu);
	if (rc)
		return rc;
	if (at)
		*at = (struct ckpt_point){ lsn, ws.seg_first_lsn, ws.seg_end };
	/* The log must hold everything up to lsn durably before the checkpoint stands for it:
	 * the checkpoint's extents point into those records. */
	rc = wal_sync(s->wal, lsn);
	if (!rc) {
		uint32_t salt = crc32c_new_salt();
		rc = ckpt_write(s->io, s->dir, view, lsn, salt, &s->opt.progress, &refs, &bytes);
		/* no room: the reserve, if this checkpoint frees space; if it still fails, the
		 * reserve is taken back at once (its temporary file is gone) — a checkpoint that
		 * cannot be written must not leave the deletions after it without room */
		if (kvio_no_room(rc) && checkpoint_frees(s, lsn) && reserve_lend(s) > 0) {
			rc = ckpt_write(s->io, s->dir, view, lsn, salt, &s->opt.progress, &refs, &bytes);
			if (rc)
				reserve_restore(s);
		}
	}
	kvview_release(view);
	if (rc)
		return rc;
	ckpt_refs_free(&s->refs);
	s->refs = refs;
	s->ckpt_file_bytes = bytes;
	__atomic_store_n(&s->ckpt_lsn, lsn, __ATOMIC_RELAXED);
	__atomic_store_n(&s->wal_base, mark, __ATOMIC_RELAXED);
	__atomic_store_n(&s->ckpt_next_at, checkpoint_due(s, 0), __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->checkpoints, 1, __ATOMIC_RELAXED);
	/* Only now, with the new checkpoint durable, may what it replaces go (and not while a
	 * backup copies files: a later checkpoint does it). Failing to remove old files costs
	 * space, not data. */
	if (s->holds)
		goto reserve;
	rc = remove_old_checkpoints(s, lsn, &removed);
	int drc = release_segments(s, lsn, &removed);
	if (!rc)
		rc = drc;
	if (!rc && removed)
		rc = s->io->fsync_dir(s->io, s->dir);
	if (rc)
		kv_log(s, "%s: checkpoint %" PRIu64 " is durable but removing what it replaces failed: %s",
		       s->dir, lsn, strerror(-rc));
reserve:
	reserve_restore(s); /* when lent, or not held */
	return 0;
}

int kv_snapshot(struct kv *s)
{
	if (s->opt.read_only)
		return -EROFS;
	pthread_mutex_lock(&s->ckpt_mu);
	int rc = checkpoint_locked(s, NULL);
	pthread_mutex_unlock(&s->ckpt_mu);
	return rc;
}

void kv_stats(struct kv *s, struct kv_stats *st)
{
	struct wal_stats ws;
	memset(st, 0, sizeof(*st));
	pthread_rwlock_rdlock(&s->ix_lock);
	st->keys = kvindex_count(s->ix);
	st->bytes = kvindex_bytes(s->ix);
	st->mem_bytes = kvindex_mem(s->ix);
	pthread_rwlock_unlock(&s->ix_lock);
	if (s->wal) {
		wal_get_stats(s->wal, &ws);
	} else { /* read-only: what recovery found */
		memset(&ws, 0, sizeof(ws));
		ws.last_lsn = ws.durable_lsn = s->applied_lsn;
	}
	st->wal_bytes = wal_bytes_now(s);
	st->last_lsn = ws.last_lsn;
	st->durable_lsn = ws.durable_lsn;
	st->snapshot_lsn = __atomic_load_n(&s->ckpt_lsn, __ATOMIC_RELAXED);
	st->flush_requests = __atomic_load_n(&s->flush_requests, __ATOMIC_RELAXED);
	st->flushes = ws.flushes;
	st->fdatasyncs = ws.fdatasyncs;
	st->snapshots = __atomic_load_n(&s->checkpoints, __ATOMIC_RELAXED);
	st->snapshot_due = __atomic_load_n(&s->ckpt_next_at, __ATOMIC_RELAXED);
	st->segments = segtab_count(s->segs);
	segtab_totals(s->segs, &st->disk_bytes, &st->live_bytes);
	st->written_bytes = __atomic_load_n(&s->written_bytes, __ATOMIC_RELAXED);
	st->cleaner_passes = __atomic_load_n(&s->cleaner_passes, __ATOMIC_RELAXED);
	st->cleaner_moved_bytes = __atomic_load_n(&s->cleaner_moved, __ATOMIC_RELAXED);
	st->segments_deleted = __atomic_load_n(&s->segments_deleted, __ATOMIC_RELAXED);
	st->read_errors = __atomic_load_n(&s->read_errors, __ATOMIC_RELAXED);
	st->sync = s->opt.sync;
	st->commit_ms = s->opt.commit_ms;
	pthread_mutex_lock(&s->apply_mu);
	st->error = ws.error ? ws.error : s->failed;
	pthread_mutex_unlock(&s->apply_mu);
	st->read_only = st->error != 0 || s->opt.read_only;
}
