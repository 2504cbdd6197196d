/* fsm.c — the replicated state machine over the node's store (fsm.h). */
#include "fsm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <raft.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "entry.h"
#include "futil.h"
#include "le.h"
#include "record.h"

#define RETRY_MS 1000 /* default time between attempts to fetch a copy the store needs */

struct rfsm {
	struct raft_fsm fsm;
	struct rfsm_options o;
	struct raft *raft;
	char dir[PATH_MAX], store_dir[PATH_MAX], incoming[PATH_MAX], old[PATH_MAX];
	/* The store. Swapped only by restore, on raft's thread, holding lock for writing; everyone
	 * else reads it holding lock for reading. Raft's thread reads it without the lock (it is
	 * the only writer). */
	struct kv *kv;
	pthread_rwlock_t lock;
	/* Guards the fields below, which other threads read (stats, copies). */
	pthread_mutex_t mu;
	pthread_cond_t wake; /* rfsm_interrupt */
	int stopping;
	uint64_t applied, skipped, snapshots, installs, refused;
	int error;
};

static char absent_marker;  /* the apply result of an entry whose first key was absent */
static char refused_marker; /* ... of an entry refused for its build term (fsm.h) */

static void note(struct rfsm *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct rfsm *f, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (f->o.log)
		f->o.log(f->o.log_arg, line);
	else
		fprintf(stderr, "%s\n", line);
}

/* The store's applied index: 0 when it has none (a new store). */
static int read_applied(struct kv *kv, uint64_t *applied)
{
	void *val = NULL;
	uint64_t vlen = 0;
	int rc = kv_get(kv, REPL_APPLIED_KEY, strlen(REPL_APPLIED_KEY), &val, &vlen);

	if (rc == -ENOENT) {
		*applied = 0;
		return 0;
	}
	if (rc)
		return rc;
	if (vlen != 8)
		rc = -EBADMSG;
	else
		*applied = le_get64(val);
	free(val);
	return rc;
}

static void set_error(struct rfsm *f, int rc)
{
	pthread_mutex_lock(&f->mu);
	if (!f->error)
		f->error = rc;
	pthread_mutex_unlock(&f->mu);
}

/* ---- apply ------------------------------------------------------------------------------------ */

/* 1 when the key of the batch's first operation is absent from the store. */
static int first_key_absent(struct kv *kv, const uint8_t *batch, uint64_t len)
{
	struct rec_reader r;
	struct rec_op_view op;

	if (rec_reader_init(&r, batch, (size_t)len) || rec_reader_next(&r, &op) != 1)
		return 0;
	return kv_stat(kv, op.key, op.klen, NULL, NULL, NULL) == -ENOENT;
}

/* The term of the entry at index, whose buffer raft hands to apply: raft 0.15 does not pass it,
 * but its log (struct raft_log, public in raft.h) holds the entry, and buf is that entry's own
 * buf (replicationApply passes &entry->buf). Found as raft's logGet finds it and checked to be
 * the very entry: -EFAULT when it is not there (a raft that works otherwise). */
static int entry_term(struct rfsm *f, const struct raft_buffer *buf, uint64_t index,
		      uint64_t *term)
{
	const struct raft_log *l = &f->raft->log;
	size_t n = l->front <= l->back ? l->back - l->front : l->size - l->front + l->back;
	const struct raft_entry *e;

	if (index <= l->offset || index - l->offset > n)
		return -EFAULT;
	e = &l->entries[(l->front + (size_t)(index - l->offset - 1)) % l->size];
	if (&e->buf != buf)
		return -EFAULT;
	*term = e->term;
	return 0;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct rfsm *f = fsm->data;
	uint64_t index = raft_last_applied(f->raft) + 1, applied;
	struct entry_view v;
	struct kv_batch *b = NULL;
	uint64_t term;
	uint8_t le[8];
	int rc, absent = 0, refused = 0;

	*result = NULL;
	pthread_mutex_lock(&f->mu);
	rc = f->error;
	applied = f->applied;
	pthread_mutex_unlock(&f->mu);
	if (rc)
		return RAFT_IOERR; /* stopped applying: nothing after the failure may land */
	if (index <= applied) {
		/* raft replays its log after a restart; the store already holds this one */
		pthread_mutex_lock(&f->mu);
		f->skipped++;
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	rc = entry_decode(buf->base, buf->len, &v);
	if (rc == 0)
		rc = kv_batch_decode(&b, v.batch, v.len);
	if (rc) {
		note(f, "raft entry %" PRIu64 " is not a kvfs batch (%s): applying stops here; the store "
		     "holds every entry before it", index, strerror(-rc));
		set_error(f, rc);
		return RAFT_MALFORMED;
	}
	if (v.term) {
		rc = entry_term(f, buf, index, &term);
		if (rc) {
			note(f, "raft entry %" PRIu64 " is not where raft keeps its log, so its term is "
			     "unknown: applying stops here; the store holds every entry before it",
			     index);
			kv_batch_free(b);
			set_error(f, rc);
			return RAFT_IOERR;
		}
		if (term != v.term) {
			/* built from what the store held in an earlier leadership of this node: another
			 * leader may have changed it since. Nothing of it is applied, on any node (each
			 * compares the same two terms); only the applied index moves on. */
			kv_batch_free(b);
			rc = kv_batch_new(&b);
			if (rc) {
				set_error(f, rc);
				return RAFT_NOMEM;
			}
			refused = 1;
		}
	}
	if (!refused && (v.flags & ENTRY_REPORT_ABSENT))
		absent = first_key_absent(f->kv, v.batch, v.len);
	le_put64(le, index);
	rc = kv_batch_put(b, REPL_APPLIED_KEY, strlen(REPL_APPLIED_KEY), NULL, 0, le, 8);
	if (rc == 0)
		rc = kv_apply(f->kv, b, NULL);
	kv_batch_free(b);
	if (rc) {
		note(f, "applying raft entry %" PRIu64 " to the store failed (%s): applying stops here "
		     "and the node leaves the group until it is restarted", index, strerror(-rc));
		set_error(f, rc);
		return RAFT_IOERR;
	}
	pthread_mutex_lock(&f->mu);
	f->applied = index;
	f->refused += (uint64_t)refused;
	pthread_mutex_unlock(&f->mu);
	if (refused) {
		*result = &refused_marker;
		return 0;
	}
	if (f->o.applied)
		f->o.applied(f->o.hook_arg, index, v.batch, v.len);
	if (absent)
		*result = &absent_marker;
	return 0;
}

int rfsm_batch_keys(const void *batch, uint64_t len,
		    void (*fn)(void *arg, const void *key, size_t klen), void *arg)
{
	struct rec_reader r;
	struct rec_op_view op;
	int rc = rec_reader_init(&r, batch, (size_t)len);

	while (rc == 0 && (rc = rec_reader_next(&r, &op)) == 1) {
		fn(arg, op.key, op.klen);
		if (op.key2)
			fn(arg, op.key2, op.klen2);
		rc = 0;
	}
	return rc;
}

int rfsm_result_absent(const void *result)
{
	return result == &absent_marker;
}

int rfsm_result_refused(const void *result)
{
	return result == &refused_marker;
}

/* ---- snapshot --------------------------------------------------------------------------------- */

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct rfsm *f = fsm->data;
	struct manifest m = { .holder = f->o.self };
	int rc;

	pthread_mutex_lock(&f->mu);
	m.index = f->applied;
	rc = f->error;
	pthread_mutex_unlock(&f->mu);
	/* Only at an index the store itself holds (the last entry raft applied was ours), so that
	 * whoever installs this snapshot can check a copy against it. RAFT_BUSY: raft tries again
	 * after the next entry. */
	if (rc || m.index != raft_last_applied(f->raft))
		return RAFT_BUSY;
	/* Raft drops its log up to the index once the snapshot is stored: the store must hold those
	 * entries durably first. */
	rc = kv_flush(f->kv);
	if (rc) {
		note(f, "making the store durable for a raft snapshot failed (%s)", strerror(-rc));
		set_error(f, rc);
		return RAFT_BUSY;
	}
	*bufs = raft_malloc(sizeof(**bufs));
	if (!*bufs)
		return RAFT_NOMEM;
	(*bufs)[0].len = MANIFEST_SIZE;
	(*bufs)[0].base = raft_malloc(MANIFEST_SIZE);
	if (!(*bufs)[0].base) {
		raft_free(*bufs);
		*bufs = NULL;
		return RAFT_NOMEM;
	}
	manifest_encode(&m, (*bufs)[0].base);
	*n_bufs = 1;
	pthread_mutex_lock(&f->mu);
	f->snapshots++;
	pthread_mutex_unlock(&f->mu);
	return 0;
}

/* ---- restore: install a copy ------------------------------------------------------------------ */

/* Exchange the store and the checked copy in incoming/: afterwards store/ is the copy and
 * incoming/ the old store. At every moment one of them is a whole store in store/ (or, on a
 * filesystem without RENAME_EXCHANGE, the copy is still in incoming/, which rfsm_open finishes). */
static int swap_in(struct rfsm *f)
{
	if (renameat2(AT_FDCWD, f->incoming, AT_FDCWD, f->store_dir, RENAME_EXCHANGE) == 0)
		return futil_sync_dir(f->dir);
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	if (rename(f->store_dir, f->old) < 0)
		return -errno;
	if (rename(f->incoming, f->store_dir) < 0)
		return -errno;
	if (rename(f->old, f->incoming) < 0)
		return -errno;
	return futil_sync_dir(f->dir);
}

/* The applied index of the store in dir (a copy), opened on its own. */
static int copy_applied(const char *dir, uint64_t *applied)
{
	struct kv_options o;
	struct kv *kv;
	int rc;

	kv_options_default(&o);
	o.sync = KV_SYNC_NONE;
	o.cleaner = 0;
	rc = kv_open(&kv, dir, &o, NULL);
	if (rc)
		return rc;
	rc = read_applied(kv, applied);
	int crc = kv_close(kv);
	return rc ? rc : crc;
}

/* Fetch a copy holding index, check it, swap it in. */
static int install(struct rfsm *f, const struct manifest *m, char *err, size_t errlen)
{
	uint64_t got = 0;
	int rc;

	err[0] = '\0';
	rc = futil_rmtree(f->incoming);
	if (rc == 0 && mkdir(f->incoming, 0700) < 0)
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "preparing the directory for the copy: %s", strerror(-rc));
		return rc;
	}
	rc = f->o.fetch ? f->o.fetch(f->o.fetch_arg, m->holder, m->index, f->incoming, err, errlen)
			: -ENOTSUP;
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "%s", strerror(-rc));
		return rc;
	}
	rc = copy_applied(f->incoming, &got);
	if (rc) {
		snprintf(err, errlen, "the copy does not open: %s", strerror(-rc));
		return rc;
	}
	if (got < m->index) {
		snprintf(err, errlen, "the copy holds entries up to %" PRIu64 " only", got);
		return -ESTALE;
	}

	if (f->o.swap)
		f->o.swap(f->o.hook_arg, NULL);
	pthread_rwlock_wrlock(&f->lock);
	rc = kv_close(f->kv); /* its contents are superseded; a failed close loses nothing needed */
	if (rc)
		note(f, "closing the store to replace it: %s", strerror(-rc));
	f->kv = NULL;
	rc = swap_in(f);
	if (rc)
		snprintf(err, errlen, "swapping the copy in: %s", strerror(-rc));
	int orc = kv_open(&f->kv, f->store_dir, &f->o.store, NULL);
	if (orc) {
		f->kv = NULL;
		note(f, "reopening the store after installing a copy failed (%s): the node stops "
		     "applying until it is restarted", strerror(-orc));
		set_error(f, orc);
		rc = rc ? rc : orc;
	} else {
		uint64_t applied = 0;
		int arc = read_applied(f->kv, &applied);
		pthread_mutex_lock(&f->mu);
		if (arc == 0)
			f->applied = applied;
		if (rc == 0)
			f->installs++;
		pthread_mutex_unlock(&f->mu);
		if (arc)
			rc = arc;
	}
	pthread_rwlock_unlock(&f->lock);
	if (f->o.swap)
		f->o.swap(f->o.hook_arg, f->kv); /* raft's thread is the only one to change it */
	if (rc == 0) {
		int rrc = futil_rmtree(f->incoming); /* the old store now */
		if (rrc)
			note(f, "removing the replaced store in %s: %s", f->incoming, strerror(-rrc));
	}
	return rc;
}

/* Wait ms for rfsm_interrupt: 1 when it came. */
static int wait_interrupt(struct rfsm *f, unsigned ms)
{
	struct timespec at;
	int stop;

	clock_gettime(CLOCK_REALTIME, &at);
	at.tv_sec += ms / 1000;
	at.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->mu);
	while (!f->stopping && pthread_cond_timedwait(&f->wake, &f->mu, &at) == 0)
		;
	stop = f->stopping;
	pthread_mutex_unlock(&f->mu);
	return stop;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct rfsm *f = fsm->data;
	struct manifest m;
	char err[512];
	uint64_t applied;
	int rc, tries = 0;

	if (manifest_decode(buf->base, buf->len, &m)) {
		note(f, "a raft snapshot that is no kvfs manifest: refused");
		return RAFT_MALFORMED; /* raft frees buf */
	}
	for (;;) {
		pthread_mutex_lock(&f->mu);
		applied = f->applied;
		pthread_mutex_unlock(&f->mu);
		if (applied >= m.index)
			break; /* the store holds it already (a restart, or a copy that came earlier) */
		rc = install(f, &m, err, sizeof(err));
		if (rc == 0) {
			note(f, "installed a copy of the store from the group, holding raft entries up "
			     "to %" PRIu64, m.index);
			break;
		}
		if (tries++ == 0 || tries % 30 == 0)
			note(f, "this node needs a copy of the store up to raft entry %" PRIu64 " (node %"
			     PRIu64 " has one): %s; trying again every %u ms", m.index, m.holder, err,
			     f->o.retry_ms);
		if (wait_interrupt(f, f->o.retry_ms))
			return RAFT_CANCELED;
	}
	raft_free(buf->base);
	return 0;
}

/* ---- the rest --------------------------------------------------------------------------------- */

/* Finish or undo an install a crash cut short (see swap_in): a whole store is in store/, or, on
 * the rename path, in incoming/ once store/ is gone; anything else in incoming/ is a partial
 * copy or the replaced store. */
static int settle_dirs(struct rfsm *f)
{
	struct stat st;
	int rc;

	if (stat(f->store_dir, &st) < 0 && errno == ENOENT) {
		if (rename(f->incoming, f->store_dir) < 0 && errno != ENOENT)
			return -errno;
		if (stat(f->store_dir, &st) < 0 && rename(f->old, f->store_dir) < 0 && errno != ENOENT)
			return -errno;
		rc = futil_sync_dir(f->dir);
		if (rc)
			return rc;
	}
	rc = futil_rmtree(f->incoming);
	if (rc == 0)
		rc = futil_rmtree(f->old);
	return rc;
}

int rfsm_open(struct rfsm **out, const char *node_dir, const struct rfsm_options *o,
	      struct kv_report *rep)
{
	pthread_rwlockattr_t attr;
	struct rfsm *f;
	int rc;

	*out = NULL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->o = *o;
	if (!f->o.retry_ms)
		f->o.retry_ms = RETRY_MS;
	if (snprintf(f->dir, sizeof(f->dir), "%s", node_dir) >= (int)sizeof(f->dir) ||
	    futil_join(f->store_dir, sizeof(f->store_dir), node_dir, "store") ||
	    futil_join(f->incoming, sizeof(f->incoming), node_dir, "incoming") ||
	    futil_join(f->old, sizeof(f->old), node_dir, "store.old")) {
		free(f);
		return -ENAMETOOLONG;
	}
	pthread_rwlockattr_init(&attr);
	/* an install must not wait behind an endless stream of readers */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&f->lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->wake, NULL);
	f->fsm.version = 1;
	f->fsm.data = f;
	f->fsm.apply = fsm_apply;
	f->fsm.snapshot = fsm_snapshot;
	f->fsm.restore = fsm_restore;
	rc = settle_dirs(f);
	if (rc) {
		if (rep) {
			memset(rep, 0, sizeof(*rep));
			rep->problem = KV_PROBLEM_FILE;
			rep->err = rc;
			snprintf(rep->file, sizeof(rep->file), "incoming");
		}
		goto fail;
	}
	rc = kv_open(&f->kv, f->store_dir, &f->o.store, rep);
	if (rc)
		goto fail;
	rc = read_applied(f->kv, &f->applied);
	if (rc) {
		int crc = kv_close(f->kv);
		if (crc)
			note(f, "closing the store after failing to read %s: %s", REPL_APPLIED_KEY,
			     strerror(-crc));
		goto fail;
	}
	*out = f;
	return 0;
fail:
	pthread_rwlock_destroy(&f->lock);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->wake);
	free(f);
	return rc;
}

void rfsm_bind(struct rfsm *f, struct raft *r)
{
	f->raft = r;
}

struct raft_fsm *rfsm_fsm(struct rfsm *f)
{
	return &f->fsm;
}

struct kv *rfsm_pin(struct rfsm *f)
{
	pthread_rwlock_rdlock(&f->lock);
	return f->kv;
}

void rfsm_unpin(struct rfsm *f)
{
	pthread_rwlock_unlock(&f->lock);
}

int rfsm_copy(struct rfsm *f, uint64_t min_index, const char *dest, uint64_t *index)
{
	struct kv_backup_info info;
	uint64_t applied;
	int rc;

	pthread_rwlock_rdlock(&f->lock);
	pthread_mutex_lock(&f->mu);
	applied = f->applied; /* the copy, taken after this, holds at least this much */
	pthread_mutex_unlock(&f->mu);
	if (!f->kv)
		rc = -EIO;
	else if (applied < min_index)
		rc = -ESTALE;
	else
		rc = kv_backup(f->kv, dest, &info);
	pthread_rwlock_unlock(&f->lock);
	*index = applied;
	return rc;
}

void rfsm_interrupt(struct rfsm *f)
{
	pthread_mutex_lock(&f->mu);
	f->stopping = 1;
	pthread_cond_broadcast(&f->wake);
	pthread_mutex_unlock(&f->mu);
}

void rfsm_stats(struct rfsm *f, struct rfsm_stats *st)
{
	pthread_mutex_lock(&f->mu);
	st->applied = f->applied;
	st->skipped = f->skipped;
	st->snapshots = f->snapshots;
	st->installs = f->installs;
	st->refused = f->refused;
	st->error = f->error;
	pthread_mutex_unlock(&f->mu);
}

int rfsm_close(struct rfsm *f)
{
	int rc = 0;

	if (!f)
		return 0;
	if (f->kv)
		rc = kv_close(f->kv);
	pthread_rwlock_destroy(&f->lock);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->wake);
	free(f);
	return rc;
}
