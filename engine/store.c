/* store.c — the store: open/recover, the write path (validate, log, apply), reads, flush,
 * snapshots, stats, close.
 *
 * Locks, in the order they nest:
 *   snap_mu   one snapshot at a time
 *   apply_mu  the write path: precondition checks, wal_append, index mutation — so LSN order
 *             is index order and replay rebuilds exactly the live state
 *   ix_lock   rwlock over the index: readers share it; a mutation takes it briefly, so readers
 *             wait for memory, never for the disk
 *   (wal's own mutex inside wal_*)
 * Durability comes only from wal_sync; nothing here reports a write durable on its own. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apply.h"
#include "kv.h"
#include "record.h"
#include "recover.h"
#include "snapshot.h"
#include "wal.h"

struct kv {
	const struct kvio *io;
	struct kv_options opt;
	char dir[PATH_MAX];
	int lock_fd;

	pthread_mutex_t apply_mu;
	pthread_rwlock_t ix_lock;
	struct kvindex *ix;
	struct wal *wal;
	uint64_t applied_lsn; /* apply_mu */
	int failed;           /* apply_mu: memory no longer matches the log (ENOMEM mid-record) */

	pthread_mutex_t snap_mu;
	uint64_t snapshot_lsn;     /* snap_mu to change; read atomically */
	uint64_t wal_base;         /* appended_bytes at the last snapshot, plus replayed bytes */
	uint64_t snapshots;

	/* automatic snapshots */
	pthread_mutex_t auto_mu;
	pthread_cond_t auto_cv;
	pthread_t auto_thread;
	int auto_running, auto_stop, auto_wanted;
	uint64_t auto_next_at;     /* wal bytes at which the next automatic snapshot is due */

	uint64_t flush_requests;   /* atomic */
};

static void kv_log(const struct kv_options *o, const char *fmt, ...)
{
	char line[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (o->log)
		o->log(o->log_arg, line);
	else
		fprintf(stderr, "kvfs: %s\n", line);
}

static uint64_t wal_bytes_now(struct kv *s)
{
	struct wal_stats ws;
	wal_get_stats(s->wal, &ws);
	/* modular: base starts "below zero" by the bytes replayed at open */
	return ws.appended_bytes - __atomic_load_n(&s->wal_base, __ATOMIC_RELAXED);
}

/* ---- lock file ---- */

static int take_lock(struct kv *s)
{
	char path[PATH_MAX + 8];
	int rc;

	snprintf(path, sizeof(path), "%s/LOCK", s->dir);
	rc = s->io->open(s->io, path, O_RDWR | O_CREAT, 0600, &s->lock_fd);
	if (rc)
		return rc;
	return s->io->lock(s->io, s->lock_fd);
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

	snprintf(buf, len, "another process");
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	if (io->open(io, path, O_RDONLY, 0, &fd))
		return;
	if (io->pread(io, fd, pid, sizeof(pid) - 1, 0, &got) == 0 && got) {
		pid[got] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		snprintf(buf, len, "process %s", pid);
	}
	int rc = io->close(io, fd);
	(void)rc; /* read-only */
}

/* Create the store directory when missing, and make its name durable in its parent: without
 * that a power cut could take the whole directory, acknowledged writes and all. Also when it
 * exists: a killed process may have created it and died before the parent's fsync. */
static int ensure_dir(const struct kvio *io, const char *dir)
{
	char parent[PATH_MAX];
	int rc = io->mkdir(io, dir, 0700);
	if (rc && rc != -EEXIST)
		return rc;
	snprintf(parent, sizeof(parent), "%s", dir);
	size_t n = strlen(parent);
	while (n > 1 && parent[n - 1] == '/') /* "a/b/" is "a/b" */
		parent[--n] = '\0';
	char *slash = strrchr(parent, '/');
	if (!slash)
		snprintf(parent, sizeof(parent), ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	return io->fsync_dir(io, parent);
}

/* ---- automatic snapshots ---- */

static int snapshot_locked(struct kv *s);

static void *auto_main(void *arg)
{
	struct kv *s = arg;
	pthread_mutex_lock(&s->auto_mu);
	while (!s->auto_stop) {
		if (!s->auto_wanted) {
			pthread_cond_wait(&s->auto_cv, &s->auto_mu);
			continue;
		}
		s->auto_wanted = 0;
		pthread_mutex_unlock(&s->auto_mu);
		pthread_mutex_lock(&s->snap_mu);
		int rc = snapshot_locked(s);
		pthread_mutex_unlock(&s->snap_mu);
		if (rc) {
			kv_log(&s->opt, "%s: automatic snapshot failed: %s (the log keeps growing; retrying "
			       "after another %" PRIu64 " bytes)", s->dir, strerror(-rc), s->opt.snapshot_wal_bytes);
		}
		pthread_mutex_lock(&s->auto_mu);
		/* after a failure, wait for another threshold's worth before trying again (a
		 * success has set the next one) */
		if (rc)
			__atomic_store_n(&s->auto_next_at, s->opt.snapshot_wal_bytes + wal_bytes_now(s),
					 __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&s->auto_mu);
	return NULL;
}

/* A snapshot rewrites all the data, so the next one waits until the log since it is as big as
 * that data (and at least snapshot_wal_bytes): snapshots then never write more than the log
 * did, however large the store, and replay never reads more log than the data's size. */
static uint64_t snapshot_due(const struct kv *s, uint64_t data_bytes)
{
	return data_bytes > s->opt.snapshot_wal_bytes ? data_bytes : s->opt.snapshot_wal_bytes;
}

static void maybe_auto_snapshot(struct kv *s)
{
	if (wal_bytes_now(s) < __atomic_load_n(&s->auto_next_at, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&s->auto_mu);
	if (!s->auto_wanted) {
		s->auto_wanted = 1;
		pthread_cond_signal(&s->auto_cv);
	}
	pthread_mutex_unlock(&s->auto_mu);
}

static void on_flush_error(void *arg, int err)
{
	struct kv *s = arg;
	kv_log(&s->opt, "%s: log flush failed: %s; the store is now read-only (writes fail with EROFS "
	       "until it is reopened; writes since the last successful flush may be lost)",
	       s->dir, strerror(-err));
}

/* ---- open / close ---- */

static void kv_free(struct kv *s)
{
	if (s->ix)
		kvindex_destroy(s->ix);
	if (s->lock_fd >= 0) {
		int rc = s->io->close(s->io, s->lock_fd);
		(void)rc; /* releases the lock either way */
	}
	pthread_mutex_destroy(&s->apply_mu);
	pthread_rwlock_destroy(&s->ix_lock);
	pthread_mutex_destroy(&s->snap_mu);
	pthread_mutex_destroy(&s->auto_mu);
	pthread_cond_destroy(&s->auto_cv);
	free(s);
}

int kv_open(struct kv **out, const char *dir, const struct kv_options *o, struct kv_report *rep_out)
{
	struct kv_report local, *rep = rep_out ? rep_out : &local;
	struct rplan *plan = NULL;
	struct kv *s;
	uint64_t next_lsn, resume_first, resume_end, replayed_bytes;
	int rc;

	memset(rep, 0, sizeof(*rep));
	if (strlen(dir) >= PATH_MAX - 64)
		return -ENAMETOOLONG;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opt = *o;
	s->io = o->io ? o->io : &kvio_posix;
	s->lock_fd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	pthread_mutex_init(&s->apply_mu, NULL);
	pthread_rwlock_init(&s->ix_lock, NULL);
	pthread_mutex_init(&s->snap_mu, NULL);
	pthread_mutex_init(&s->auto_mu, NULL);
	pthread_cond_init(&s->auto_cv, NULL);

	rc = ensure_dir(s->io, dir);
	if (rc) {
		snprintf(rep->message, sizeof(rep->message), "%s: cannot create the store directory: %s",
			 dir, strerror(-rc));
		goto fail;
	}
	rc = take_lock(s);
	if (rc) {
		char who[64];
		if (rc == -EWOULDBLOCK) {
			lock_holder(s->io, dir, who, sizeof(who));
			snprintf(rep->message, sizeof(rep->message),
				 "%s: store is locked by %s (%s/LOCK); only one process may open it", dir, who, dir);
		} else {
			snprintf(rep->message, sizeof(rep->message), "%s/LOCK: %s", dir, strerror(-rc));
		}
		goto fail;
	}
	rc = kvindex_create(&s->ix);
	if (rc)
		goto fail;
	rc = recovery_scan(s->io, dir, o->recovery == KV_RECOVERY_POINT_IN_TIME ? RECOVER_SALVAGE : RECOVER_STRICT,
			   &s->ix, &plan, rep);
	if (rc) {
		if (rc != -EUCLEAN && !rep->message[0])
			snprintf(rep->message, sizeof(rep->message), "%s: recovery failed: %s", dir, strerror(-rc));
		goto fail;
	}
	rc = recovery_commit(s->io, dir, plan, rep);
	if (rc) {
		snprintf(rep->message, sizeof(rep->message), "%s: cannot finish recovery: %s", dir, strerror(-rc));
		goto fail;
	}
	rc = write_lock_pid(s);
	if (rc) {
		snprintf(rep->message, sizeof(rep->message), "%s/LOCK: %s", dir, strerror(-rc));
		goto fail;
	}
	recovery_resume(plan, &next_lsn, &resume_first, &resume_end, &replayed_bytes);
	rc = wal_open(&s->wal, s->io, dir, o->segment_bytes, next_lsn, resume_first, resume_end);
	if (rc) {
		snprintf(rep->message, sizeof(rep->message), "%s: cannot open the log for writing: %s", dir,
			 strerror(-rc));
		goto fail;
	}
	s->applied_lsn = next_lsn - 1;
	s->snapshot_lsn = rep->snapshot_lsn;
	/* wal bytes count from the snapshot: the replayed ones are already there */
	s->wal_base = 0;
	s->wal_base -= replayed_bytes;
	s->auto_next_at = snapshot_due(s, kvindex_bytes(s->ix));
	if (o->sync == KV_SYNC_BATCH) {
		rc = wal_start_flusher(s->wal, o->commit_ms, on_flush_error, s);
		if (rc)
			goto fail;
	}
	rc = -pthread_create(&s->auto_thread, NULL, auto_main, s);
	if (rc)
		goto fail;
	s->auto_running = 1;
	recovery_free(plan);
	*out = s;
	return 0;
fail:
	recovery_free(plan);
	if (s->wal) {
		int wrc = wal_close(s->wal);
		(void)wrc; /* nothing was written through it */
	}
	kv_free(s);
	return rc;
}

int kv_close(struct kv *s)
{
	if (!s)
		return 0;
	if (s->auto_running) {
		pthread_mutex_lock(&s->auto_mu);
		s->auto_stop = 1;
		pthread_cond_signal(&s->auto_cv);
		pthread_mutex_unlock(&s->auto_mu);
		pthread_join(s->auto_thread, NULL);
	}
	int rc = wal_close(s->wal);
	if (rc)
		kv_log(&s->opt, "%s: final flush failed: %s", s->dir, strerror(-rc));
	kv_free(s);
	return rc;
}

int kv_check(const char *dir, const struct kvio *io, struct kv_report *rep)
{
	struct kv_options o;
	struct kv *s;
	struct rplan *plan = NULL;
	int rc;

	memset(rep, 0, sizeof(*rep));
	kv_options_default(&o);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->io = io ? io : &kvio_posix;
	s->lock_fd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	pthread_mutex_init(&s->apply_mu, NULL);
	pthread_rwlock_init(&s->ix_lock, NULL);
	pthread_mutex_init(&s->snap_mu, NULL);
	pthread_mutex_init(&s->auto_mu, NULL);
	pthread_cond_init(&s->auto_cv, NULL);
	/* The lock only keeps a live writer from changing files under the check; it writes
	 * nothing (take_lock's pid write happens only after the lock is ours). */
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/LOCK", dir);
	rc = s->io->open(s->io, path, O_RDONLY, 0, &s->lock_fd);
	if (rc == 0) {
		rc = s->io->lock(s->io, s->lock_fd);
		if (rc == -EWOULDBLOCK) {
			char who[64];
			lock_holder(s->io, dir, who, sizeof(who));
			snprintf(rep->message, sizeof(rep->message), "%s: store is in use by %s; stop it first", dir, who);
		}
	} else if (rc == -ENOENT) {
		rc = 0;
	}
	if (!rc)
		rc = recovery_scan(s->io, dir, RECOVER_STRICT, NULL, &plan, rep);
	recovery_free(plan);
	kv_free(s);
	return rc;
}

int kv_salvage(const char *dir, const struct kvio *io, struct kv_report *rep)
{
	struct kv_options o;
	struct kv *s = NULL;
	struct kv_report r;
	int rc;

	kv_options_default(&o);
	o.io = io;
	o.recovery = KV_RECOVERY_POINT_IN_TIME;
	o.sync = KV_SYNC_NONE;
	o.log = NULL;
	/* Salvage is an open in point-in-time mode followed by a clean close. */
	rc = kv_open(&s, dir, &o, &r);
	*rep = r;
	if (rc)
		return rc;
	return kv_close(s);
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

/* The longest key under prefix p once the operations of the batch (payload) before the one
 * whose key is at `stop` have run: the index's keys, and what those operations create or move
 * there. An upper bound: a key the batch creates and then deletes still counts. SIZE_MAX:
 * no memory. */
static size_t longest_after(struct kv *s, const void *payload, size_t len, const uint8_t *p, size_t plen,
			    const uint8_t *stop)
{
	struct rec_reader r;
	struct rec_op_view op;
	size_t longest = longest_key_under(s, p, plen);
	int rc = rec_reader_init(&r, payload, len);

	while (longest != SIZE_MAX && !rc && (rc = rec_reader_next(&r, &op)) == 1 && op.key != stop) {
		/* made[0..mk): the key it creates, or the prefix it moves keys under;
		 * mlen: the longest key that can result */
		const uint8_t *made = op.key;
		size_t mk = op.klen, mlen = op.klen;
		int moved = 0;
		rc = 0;
		if (op.op == REC_OP_DEL || op.op == REC_OP_SETMETA)
			continue;
		if (op.op == REC_OP_RENAME) {
			made = op.key2, mk = mlen = op.klen2;
		} else if (op.op == REC_OP_RENAME_PREFIX) {
			size_t under = longest_after(s, payload, len, op.key, op.klen, op.key);
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
static int validate_locked(struct kv *s, const void *payload, size_t len)
{
	struct rec_reader r;
	struct rec_op_view op;
	int rc = rec_reader_init(&r, payload, len);
	while (!rc && (rc = rec_reader_next(&r, &op)) == 1) {
		rc = 0;
		if (op.op != REC_OP_RENAME_PREFIX || op.klen2 <= op.klen)
			continue;
		size_t longest = longest_after(s, payload, len, op.key, op.klen, op.key);
		if (longest == SIZE_MAX)
			return -ENOMEM;
		if (longest && longest - op.klen + op.klen2 > KV_MAX_KEY)
			return -ENAMETOOLONG;
	}
	return rc;
}

enum precond { PRE_NONE, PRE_EXISTS };

static int apply_payload(struct kv *s, const void *payload, size_t len, enum precond pre,
			 const void *key, size_t klen, uint64_t *lsn_out)
{
	uint64_t lsn = 0;
	int rc;

	if (len > REC_MAX_PAYLOAD)
		return -EFBIG;
	pthread_mutex_lock(&s->apply_mu);
	if (s->failed) {
		rc = -EROFS;
		goto unlock;
	}
	if (pre == PRE_EXISTS && !kvindex_find(s->ix, key, klen)) {
		rc = -ENOENT;
		goto unlock;
	}
	rc = validate_locked(s, payload, len);
	if (rc)
		goto unlock;
	rc = wal_append(s->wal, REC_TYPE_OPS, payload, len, &lsn);
	if (rc)
		goto unlock;
	pthread_rwlock_wrlock(&s->ix_lock);
	rc = apply_record(s->ix, payload, len);
	pthread_rwlock_unlock(&s->ix_lock);
	if (rc) {
		/* The record is logged but memory could not take it: from here memory and log
		 * disagree, so no more writes; a reopen replays the log and agrees again. */
		s->failed = rc;
		kv_log(&s->opt, "%s: cannot apply record %" PRIu64 ": %s; the store is now read-only",
		       s->dir, lsn, strerror(-rc));
		goto unlock;
	}
	s->applied_lsn = lsn;
unlock:
	pthread_mutex_unlock(&s->apply_mu);
	if (rc)
		return rc;
	if (lsn_out)
		*lsn_out = lsn;
	if (s->opt.sync == KV_SYNC_ALWAYS) {
		__atomic_add_fetch(&s->flush_requests, 1, __ATOMIC_RELAXED);
		rc = wal_sync(s->wal, lsn);
	} else if (wal_should_drain(s->wal)) {
		rc = wal_sync(s->wal, lsn);
	}
	maybe_auto_snapshot(s);
	return rc;
}

int kv_apply(struct kv *s, const struct kv_batch *b, uint64_t *lsn_out)
{
	size_t len;
	uint32_t count;
	const void *payload = kv_batch_payload(b, &len, &count);
	if (!count)
		return -EINVAL;
	return apply_payload(s, payload, len, PRE_NONE, NULL, 0, lsn_out);
}

static int apply_one(struct kv *s, struct kv_batch *b, int rc, enum precond pre, const void *key, size_t klen)
{
	if (!rc) {
		size_t len;
		uint32_t count;
		const void *payload = kv_batch_payload(b, &len, &count);
		rc = apply_payload(s, payload, len, pre, key, klen, NULL);
	}
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

int kv_get(struct kv *s, const void *key, size_t klen, void **val, uint64_t *vlen)
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
	uint64_t n = kvval_size(v);
	char *buf = malloc((size_t)n + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	kvval_read(v, 0, buf, (size_t)n);
	buf[n] = '\0';
	*val = buf;
	*vlen = n;
out:
	pthread_rwlock_unlock(&s->ix_lock);
	return rc;
}

int kv_read(struct kv *s, const void *key, size_t klen, uint64_t off, void *buf, size_t len, size_t *got)
{
	int rc = 0;
	if (klen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	pthread_rwlock_rdlock(&s->ix_lock);
	const struct kvval *v = kvindex_find(s->ix, key, klen);
	if (v)
		*got = kvval_read(v, off, buf, len);
	else
		rc = -ENOENT;
	pthread_rwlock_unlock(&s->ix_lock);
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

/* ---- flush, snapshot, stats ---- */

int kv_flush(struct kv *s)
{
	struct wal_stats ws;
	__atomic_add_fetch(&s->flush_requests, 1, __ATOMIC_RELAXED);
	wal_get_stats(s->wal, &ws);
	return wal_sync(s->wal, ws.last_lsn);
}

/* Remove snapshots older than lsn; they are superseded by a durable newer one. */
static int remove_old_snapshots(struct kv *s, uint64_t lsn)
{
	char **names;
	size_t n;
	int rc = s->io->list_dir(s->io, s->dir, &names, &n);
	if (rc)
		return rc;
	for (size_t k = 0; k < n && !rc; k++) {
		uint64_t v;
		if (snapshot_parse_name(names[k], &v) == 0 && v < lsn) {
			char path[PATH_MAX + 32];
			snprintf(path, sizeof(path), "%s/%s", s->dir, names[k]);
			rc = s->io->unlink(s->io, path);
		}
	}
	kvio_free_names(names, n);
	return rc;
}

/* snap_mu held. */
static int snapshot_locked(struct kv *s)
{
	struct kvview *view = NULL;
	struct wal_stats ws;
	uint64_t lsn, mark, data_bytes;
	int rc;

	pthread_mutex_lock(&s->apply_mu);
	lsn = s->applied_lsn;
	wal_get_stats(s->wal, &ws);
	mark = ws.appended_bytes;
	data_bytes = kvindex_bytes(s->ix);
	rc = s->failed ? -EROFS : kvindex_view(s->ix, &view);
	pthread_mutex_unlock(&s->apply_mu);
	if (rc)
		return rc;
	/* The log must hold everything up to lsn durably before the snapshot replaces it: then
	 * the log on disk is always contiguous up to where the snapshot takes over. */
	rc = wal_sync(s->wal, lsn);
	if (!rc)
		rc = snapshot_write(s->io, s->dir, view, lsn, NULL);
	kvview_release(view);
	if (rc)
		return rc;
	__atomic_store_n(&s->snapshot_lsn, lsn, __ATOMIC_RELAXED);
	__atomic_store_n(&s->wal_base, mark, __ATOMIC_RELAXED);
	__atomic_store_n(&s->auto_next_at, snapshot_due(s, data_bytes), __ATOMIC_RELAXED);
	__atomic_add_fetch(&s->snapshots, 1, __ATOMIC_RELAXED);
	/* Only now, with the new snapshot durable, may what it replaces go. Failing to remove
	 * old files costs space, not data. */
	rc = remove_old_snapshots(s, lsn);
	int wrc = wal_remove_covered(s->wal, lsn);
	if (!rc)
		rc = wrc;
	if (!rc)
		rc = s->io->fsync_dir(s->io, s->dir);
	if (rc)
		kv_log(&s->opt, "%s: snapshot %" PRIu64 " is durable but removing older files failed: %s",
		       s->dir, lsn, strerror(-rc));
	return 0;
}

int kv_snapshot(struct kv *s)
{
	pthread_mutex_lock(&s->snap_mu);
	int rc = snapshot_locked(s);
	pthread_mutex_unlock(&s->snap_mu);
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
	wal_get_stats(s->wal, &ws);
	st->wal_bytes = wal_bytes_now(s);
	st->last_lsn = ws.last_lsn;
	st->durable_lsn = ws.durable_lsn;
	st->snapshot_lsn = __atomic_load_n(&s->snapshot_lsn, __ATOMIC_RELAXED);
	st->flush_requests = __atomic_load_n(&s->flush_requests, __ATOMIC_RELAXED);
	st->flushes = ws.flushes;
	st->fdatasyncs = ws.fdatasyncs;
	st->snapshots = __atomic_load_n(&s->snapshots, __ATOMIC_RELAXED);
	st->snapshot_due = __atomic_load_n(&s->auto_next_at, __ATOMIC_RELAXED);
	st->sync = s->opt.sync;
	st->commit_ms = s->opt.commit_ms;
	pthread_mutex_lock(&s->apply_mu);
	st->error = ws.error ? ws.error : s->failed;
	pthread_mutex_unlock(&s->apply_mu);
	st->read_only = st->error != 0;
}
