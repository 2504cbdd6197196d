/* repl.c — a node of a replicated group (repl.h): raft on a libuv loop of its own, callers
 * handing it requests through a queue and waiting for them on a condition variable. */
#include "repl.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "appendguard.h"
#include "cluster.h"
#include "entry.h"
#include "fsm.h"
#include "futil.h"
#include "mux.h"
#include "rlogfix.h"
#include "xfer.h"

#define MAX_XFER_WORKERS 8

/* ---- options ---------------------------------------------------------------------------------- */

void repl_options_default(struct repl_options *o)
{
	memset(o, 0, sizeof(*o));
	o->election_ms = 1000;
	o->snapshot_entries = 1024;
	o->write_timeout_ms = 10000;
	o->max_write = 4u << 20;
	kv_options_default(&o->store);
}

static const struct kv_option_desc table[] = {
	{ "cluster", "FILE", "run as a node of the replicated group in FILE (lines 'ID HOST:PORT'); "
	  "needs node=" },
	{ "node", "ID", "this node's ID in the cluster file" },
	{ "election_ms", "N", "raft's election timeout, 50..60000 ms (default 1000; heartbeats every "
	  "tenth of it)" },
	{ "snapshot_entries", "N", "a raft snapshot every N log entries, 16..1000000 (default 1024)" },
	{ "write_timeout_ms", "N", "how long a write waits for its commit before it fails, "
	  "100..3600000 ms (default 10000)" },
};

const struct kv_option_desc *repl_option_table(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

static int number(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

int repl_options_parse(struct repl_options *o, const char *opts, char *err, size_t errlen)
{
	char *copy = strdup(opts), *rest = NULL, *save = NULL;
	size_t restlen = 0;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	rest = calloc(1, strlen(opts) + 1);
	if (!rest) {
		free(copy);
		return -ENOMEM;
	}
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		const char *v = eq ? eq + 1 : "";
		size_t nlen = eq ? (size_t)(eq - tok) : strlen(tok);
		uint64_t n;

#define IS(name) (nlen == strlen(name) && !strncmp(tok, name, nlen))
		if (IS("cluster")) {
			if (!*v) {
				snprintf(err, errlen, "cluster= needs a FILE");
				rc = -EINVAL;
				break;
			}
			/* lives as long as the caller's string: keep our own */
			free((char *)o->cluster_file);
			o->cluster_file = strdup(v);
			if (!o->cluster_file) {
				rc = -ENOMEM;
				break;
			}
		} else if (IS("node")) {
			if (number(v, 1, UINT64_MAX >> 1, &n)) {
				snprintf(err, errlen, "node=%s: a node ID is a whole number from 1", v);
				rc = -EINVAL;
				break;
			}
			o->node = n;
		} else if (IS("election_ms")) {
			if (number(v, 50, 60000, &n)) {
				snprintf(err, errlen, "election_ms=%s: not a number of ms in 50..60000", v);
				rc = -EINVAL;
				break;
			}
			o->election_ms = (unsigned)n;
		} else if (IS("snapshot_entries")) {
			if (number(v, 16, 1000000, &n)) {
				snprintf(err, errlen, "snapshot_entries=%s: not a number in 16..1000000", v);
				rc = -EINVAL;
				break;
			}
			o->snapshot_entries = (unsigned)n;
		} else if (IS("write_timeout_ms")) {
			if (number(v, 100, 3600000, &n)) {
				snprintf(err, errlen, "write_timeout_ms=%s: not a number of ms in "
					 "100..3600000", v);
				rc = -EINVAL;
				break;
			}
			o->write_timeout_ms = (unsigned)n;
		} else {
			if (IS("sync"))
				o->store_sync_set = 1;
			if (restlen)
				rest[restlen++] = ',';
			memcpy(rest + restlen, tok, strlen(tok));
			restlen += strlen(tok);
		}
#undef IS
	}
	if (rc == 0 && restlen)
		rc = kv_options_parse(&o->store, rest, err, errlen);
	free(rest);
	free(copy);
	return rc;
}

void repl_options_release(struct repl_options *o)
{
	free((char *)o->cluster_file);
	o->cluster_file = NULL;
}

/* ---- the node --------------------------------------------------------------------------------- */

struct req {
	struct raft_apply apply; /* apply.data = this */
	struct repl *r;
	struct req *next;
	struct raft_buffer buf;  /* the entry, until raft takes it */
	pthread_cond_t cv;
	int refs;                /* the waiter's and the loop's; under r->mu */
	int done, status, absent;
	int abandoned;           /* its waiter timed out before the loop took it (under r->mu) */
	unsigned flags;          /* repl_propose's */
	uint64_t build_term;     /* repl_propose's term: 0, or the only term it may be appended in */
	/* handed to raft (the loop's): where raft put it, on r->quiet */
	uint64_t index, term;
	struct req *quiet_next;
};

struct repl {
	struct cluster cluster;
	const struct cluster_node *me;
	struct repl_options o;
	char dir[PATH_MAX], raft_dir[PATH_MAX];
	struct rfsm *fsm;

	/* raft's thread and what lives on it */
	pthread_t thread;
	uv_loop_t loop;
	uv_async_t wake;
	uv_check_t check;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft raft;
	struct raft_transfer transfer;
	/* a leader whose store failed hands leadership over (check_cb): raft 0.15 ignores a
	 * failed apply on a leader, which would lead on, unable to apply, and the group wait */
	struct raft_transfer handover;
	int handing_over, store_failed_noted;
	int handles_open, closing, last_state;
	int raft_inited;          /* raft_init went through: raft_close releases io and transport */
	/* libraft 0.15's install answer (see held_tick): the backend's verbs we wrap, raft's own */
	int (*uv_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
	int (*uv_snapshot_put)(struct raft_io *, unsigned, struct raft_io_snapshot_put *,
			       const struct raft_snapshot *, raft_io_snapshot_put_cb);
	raft_io_tick_cb raft_tick;
	raft_io_snapshot_put_cb raft_put_cb;
	int installing;           /* the backend is writing a snapshot raft installs */
	struct appendguard *guard; /* raft 0.15 never sees a failed append (appendguard.h) */
	uint64_t ticks_held;

	pthread_mutex_t mu;
	pthread_cond_t cv;        /* start, workers */
	int started, start_rc;    /* start: raft_start's outcome */
	char start_err[RAFT_ERRMSG_BUF_SIZE];
	int stopping, stopped;
	struct req *queue, *queue_tail;
	struct repl_stats view;   /* raft's state as of the loop's last turn */
	int writable;             /* leader, and its store holds every entry before its term's */
	uint64_t lead_from;       /* the loop's: the first entry of this node's leadership */
	uint64_t lead_term;       /* the loop's: the term of that leadership */
	struct req *quiet;        /* the loop's: entries in raft's hands (REPL_QUIET or not) */
	int worker_fds[MAX_XFER_WORKERS];
	unsigned workers;
};

static void note(struct repl *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct repl *r, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (r->o.log)
		r->o.log(r->o.log_arg, line);
	else
		fprintf(stderr, "%s\n", line);
}

static int raft_errno(int rv)
{
	switch (rv) {
	case 0:
		return 0;
	case RAFT_NOTLEADER:
		return -EROFS;
	case RAFT_LEADERSHIPLOST:
		return -ECONNABORTED;
	case RAFT_SHUTDOWN:
	case RAFT_CANCELED:
		return -ESHUTDOWN;
	case RAFT_NOMEM:
		return -ENOMEM;
	case RAFT_TOOBIG:
		return -EFBIG;
	case RAFT_NOSPACE:
		return -ENOSPC;
	case RAFT_MALFORMED:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

/* ---- requests: callers' side and the loop's ----------------------------------------------------- */

static void req_put(struct repl *r, struct req *q)
{
	int last;
	pthread_mutex_lock(&r->mu);
	last = --q->refs == 0;
	pthread_mutex_unlock(&r->mu);
	if (last) {
		if (q->buf.base)
			raft_free(q->buf.base);
		pthread_cond_destroy(&q->cv);
		free(q);
	}
}

/* On the loop (or at stop): the outcome is known; wake the waiter. */
static void req_complete(struct repl *r, struct req *q, int status, int absent)
{
	pthread_mutex_lock(&r->mu);
	q->done = 1;
	q->status = status;
	q->absent = absent;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&r->mu);
	req_put(r, q);
}

/* On the loop: q is no longer in raft's hands. */
static void quiet_remove(struct repl *r, struct req *q)
{
	for (struct req **p = &r->quiet; *p; p = &(*p)->quiet_next)
		if (*p == q) {
			*p = q->quiet_next;
			return;
		}
}

static void apply_cb(struct raft_apply *a, int status, void *result)
{
	struct req *q = a->data;
	int rc = raft_errno(status);

	if (rc == 0 && rfsm_result_refused(result))
		rc = -ESTALE; /* built in an earlier term: every node refused it */
	quiet_remove(q->r, q);
	req_complete(q->r, q, rc, rc == 0 && rfsm_result_absent(result));
}

/* On the loop: hand q to raft, or fail it. */
static void req_submit(struct repl *r, struct req *q)
{
	struct raft_buffer buf;
	int rv;

	if (r->closing || raft_state(&r->raft) != RAFT_LEADER) {
		req_complete(r, q, r->closing ? -ESHUTDOWN : -EROFS, 0);
		return;
	}
	pthread_mutex_lock(&r->mu);
	rv = q->abandoned;
	pthread_mutex_unlock(&r->mu);
	if (rv) {
		/* its caller was told ETIMEDOUT ("unknown") and went on, maybe to write elsewhere:
		 * proposed now it could land after the caller's later, acknowledged writes */
		req_complete(r, q, -ETIMEDOUT, 0);
		return;
	}
	if (q->build_term && q->build_term != r->raft.current_term) {
		/* read in another leadership: it would be appended in this term and refused by
		 * every node's apply (fsm.h); no need to make an entry of it */
		req_complete(r, q, -ESTALE, 0);
		return;
	}
	q->apply.data = q;
	/* raft_apply copies the array of buffers (one, here) and takes its memory: a copy on the
	 * stack, so that the array raft reads is visibly one whole raft_buffer (gcc 12 at -O3
	 * otherwise warns it reads 16 bytes from 8, -Wstringop-overread) */
	buf = q->buf;
	rv = raft_apply(&r->raft, &q->apply, &buf, 1, apply_cb);
	if (rv) {
		req_complete(r, q, raft_errno(rv), 0);
		return;
	}
	q->buf.base = NULL; /* raft's now */
	/* raft appended it at once: while this node leads in this term, the entry at this index
	 * is this one (apply_cb takes it off the list before anything else can be there). Every
	 * entry is listed: whether it is quiet is read when it is applied (flags, under mu). */
	q->index = raft_last_index(&r->raft);
	q->term = r->raft.current_term;
	q->quiet_next = r->quiet;
	r->quiet = q;
}

/* rfsm's applied: tell the caller which keys changed, unless it made the change itself. */
static void changed_key(void *arg, const void *key, size_t klen)
{
	struct repl *r = arg;
	r->o.changed(r->o.changed_arg, key, klen);
}

static void entry_applied(void *arg, uint64_t index, const void *batch, uint64_t len)
{
	struct repl *r = arg;

	if (!r->o.changed)
		return;
	if (raft_state(&r->raft) == RAFT_LEADER) {
		int quiet = 0;

		pthread_mutex_lock(&r->mu); /* flags: a waiter that timed out clears REPL_QUIET */
		for (struct req *q = r->quiet; q; q = q->quiet_next)
			if (q->index == index && q->term == r->raft.current_term)
				quiet = (q->flags & REPL_QUIET) != 0;
		pthread_mutex_unlock(&r->mu);
		if (quiet)
			return;
	}
	if (rfsm_batch_keys(batch, len, changed_key, r))
		note(r, "raft entry %" PRIu64 " was applied but its keys cannot be read back; what "
		     "this node's mount cached of them may stay stale until it times out", index);
}

static void store_swap(void *arg, struct kv *kv)
{
	struct repl *r = arg;
	if (r->o.swap)
		r->o.swap(r->o.swap_arg, kv);
}

static struct req *req_new(struct repl *r, int refs)
{
	struct req *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	pthread_condattr_t attr;
	q->r = r;
	q->refs = refs;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* deadline() is on this clock */
	pthread_cond_init(&q->cv, &attr);
	pthread_condattr_destroy(&attr);
	return q;
}

/* A no-op entry from the loop itself: a new leader commits one of its own term, which commits
 * (and so applies) everything before it that the old leader had not (raft 0.15 appends nothing
 * on its own when elected). */
static void propose_noop(struct repl *r)
{
	struct kv_batch *b;
	struct req *q;

	if (kv_batch_new(&b))
		return;
	q = req_new(r, 1);
	if (q && entry_encode(b, 0, 0, r->o.max_write, &q->buf.base, &q->buf.len) == 0)
		req_submit(r, q);
	else if (q)
		req_put(r, q);
	kv_batch_free(b);
}

static void deadline(struct timespec *at, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, at);
	at->tv_sec += ms / 1000;
	at->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (at->tv_nsec >= 1000000000L) {
		at->tv_sec++;
		at->tv_nsec -= 1000000000L;
	}
}

int repl_propose(struct repl *r, const struct kv_batch *b, unsigned flags, uint64_t term,
		 int *absent)
{
	struct timespec at;
	struct req *q;
	int rc;

	if (absent)
		*absent = 0;
	q = req_new(r, 2);
	if (!q)
		return -ENOMEM;
	q->flags = flags;
	q->build_term = term;
	rc = entry_encode(b, flags & REPL_REPORT_ABSENT ? ENTRY_REPORT_ABSENT : 0, term,
			  r->o.max_write, &q->buf.base, &q->buf.len);
	if (rc) {
		q->refs = 1;
		req_put(r, q);
		return rc;
	}
	deadline(&at, r->o.write_timeout_ms);
	pthread_mutex_lock(&r->mu);
	if (r->stopping) {
		pthread_mutex_unlock(&r->mu);
		q->refs = 1;
		req_put(r, q);
		return -ESHUTDOWN;
	}
	if (r->queue_tail)
		r->queue_tail->next = q;
	else
		r->queue = q;
	r->queue_tail = q;
	pthread_mutex_unlock(&r->mu);
	uv_async_send(&r->wake);

	pthread_mutex_lock(&r->mu);
	rc = 0;
	while (!q->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&q->cv, &r->mu, &at);
	if (q->done) {
		rc = q->status;
		if (absent)
			*absent = q->absent;
	} else {
		rc = -ETIMEDOUT; /* the loop still holds it: raft may yet commit it */
		/* its caller tells whom it answers that it failed: if it lands, say so */
		q->flags &= ~REPL_QUIET;
		q->abandoned = 1; /* not yet handed to raft: it never will be (req_submit) */
	}
	pthread_mutex_unlock(&r->mu);
	req_put(r, q);
	if (rc == -ETIMEDOUT || rc == -ECONNABORTED) {
		/* the majority may well have it: this node's store is what failed (say so, not "no
		 * majority acknowledged" or "leadership lost": both send the operator elsewhere) */
		struct rfsm_stats fs;
		rfsm_stats(r->fsm, &fs);
		if (fs.error)
			rc = -EIO; /* not the store's own errno: -EROFS would say "not written" */
	}
	return rc;
}

int repl_flush(struct repl *r)
{
	struct kv_batch *b;
	int rc = kv_batch_new(&b);

	if (rc)
		return rc;
	/* an empty entry: once it commits, every entry before it in the log has */
	rc = repl_propose(r, b, 0, 0, NULL);
	kv_batch_free(b);
	return rc;
}

/* ---- the loop --------------------------------------------------------------------------------- */

static void handover_cb(struct raft_transfer *t)
{
	struct repl *r = t->data;
	r->handing_over = 0; /* done, or timed out: check_cb tries again while this node leads */
}

/* raft's view for other threads, after every turn of the loop */
static void check_cb(uv_check_t *h)
{
	struct repl *r = h->data;
	struct raft *rf = &r->raft;
	struct repl_stats v;
	raft_id lid = 0;
	const char *laddr = NULL;
	int state = raft_state(rf);

	memset(&v, 0, sizeof(v));
	v.node = r->me->id;
	v.role = state == RAFT_LEADER ? REPL_LEADER : state == RAFT_CANDIDATE ? REPL_CANDIDATE :
		 state == RAFT_FOLLOWER ? REPL_FOLLOWER : REPL_UNAVAILABLE;
	v.term = rf->current_term;
	raft_leader(rf, &lid, &laddr);
	v.leader = lid;
	v.last_index = raft_last_index(rf);
	v.commit_index = rf->commit_index;
	v.applied_index = raft_last_applied(rf);
	v.snapshot_index = rf->log.snapshot.last_index;
	if (state == RAFT_LEADER)
		for (unsigned i = 0; i < rf->configuration.n && v.npeers < 9; i++) {
			v.peers[v.npeers].id = rf->configuration.servers[i].id;
			v.peers[v.npeers].match_index = rf->leader_state.progress[i].match_index;
			v.npeers++;
		}
	/* a new leadership: also one that follows another of this node's within one turn of the
	 * loop (lost and won again, a new term), which the state alone would not show */
	if (state == RAFT_LEADER && (r->last_state != RAFT_LEADER || r->lead_term != v.term) &&
	    !r->closing) {
		propose_noop(r);
		r->lead_from = raft_last_index(rf);
		r->lead_term = v.term;
	}
	struct rfsm_stats fs;
	rfsm_stats(r->fsm, &fs);
	if (fs.error && state == RAFT_LEADER && !r->closing && !r->handing_over) {
		/* On a follower raft stops when apply fails (it becomes unavailable: 3.7); a leader
		 * in raft 0.15 ignores it and would lead on without applying, so that no write
		 * commits anywhere. Hand leadership to an up-to-date follower: as a follower this
		 * node then stops at its next apply, and the others go on. */
		if (!r->store_failed_noted)
			note(r, "this node's store failed (%s) while it leads: handing leadership to "
			     "another node", strerror(-fs.error));
		r->store_failed_noted = 1;
		r->handover.data = r;
		if (raft_transfer(rf, &r->handover, 0, handover_cb) == 0)
			r->handing_over = 1;
	}
	pthread_mutex_lock(&r->mu);
	r->view = v;
	/* a new leader's store may not hold every committed entry yet: what a caller reads from
	 * it to build a write (a name is free, an id unused) is only true once it does; a failed
	 * store never will */
	r->writable = state == RAFT_LEADER && v.applied_index >= r->lead_from && !fs.error;
	pthread_mutex_unlock(&r->mu);

	if (state == RAFT_UNAVAILABLE && r->last_state != RAFT_UNAVAILABLE && !r->closing)
		note(r, "raft stopped on this node (%s): it takes no part in the group until it is "
		     "restarted", raft_errmsg(rf)[0] ? raft_errmsg(rf) :
		     fs.error ? strerror(-fs.error) : "no reason given");
	r->last_state = state;
}

static void handle_closed(uv_handle_t *h)
{
	struct repl *r = h->data;
	r->handles_open--;
}

static void raft_closed(struct raft *rf)
{
	struct repl *r = rf->data;
	raft_uv_close(&r->io);
	mux_free(&r->transport);
	uv_close((uv_handle_t *)&r->wake, handle_closed);
	uv_close((uv_handle_t *)&r->check, handle_closed);
}

static void begin_close(struct repl *r)
{
	r->closing = 1;
	raft_close(&r->raft, raft_closed);
}

static void transfer_cb(struct raft_transfer *t)
{
	begin_close(t->data);
}

static void wake_cb(uv_async_t *h)
{
	struct repl *r = h->data;
	struct req *q;
	int stopping;

	pthread_mutex_lock(&r->mu);
	q = r->queue;
	r->queue = r->queue_tail = NULL;
	stopping = r->stopping;
	pthread_mutex_unlock(&r->mu);
	while (q) {
		struct req *next = q->next;
		q->next = NULL;
		req_submit(r, q);
		q = next;
	}
	if (stopping && !r->closing && !r->transfer.data) {
		/* a leader hands over first, so the group need not wait out an election */
		r->transfer.data = r;
		if (raft_state(&r->raft) != RAFT_LEADER ||
		    raft_transfer(&r->raft, &r->transfer, 0, transfer_cb) != 0)
			begin_close(r);
	}
}

/* ---- store transfers (the sender's side) -------------------------------------------------------- */

struct worker {
	struct repl *r;
	int fd, slot;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct repl *r = w->r;
	int rc = xfer_serve(w->fd, r->fsm, r->dir);

	if (rc)
		note(r, "sending a copy of the store to another node failed: %s", strerror(-rc));
	pthread_mutex_lock(&r->mu);
	r->worker_fds[w->slot] = -1;
	r->workers--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	free(w);
	return NULL;
}

/* On the loop: a node wants a copy. Served on a thread of its own (copying takes long). */
static void on_xfer(void *arg, int fd)
{
	struct repl *r = arg;
	struct worker *w = calloc(1, sizeof(*w));
	pthread_attr_t attr;
	pthread_t t;
	int slot = -1;

	pthread_mutex_lock(&r->mu);
	if (w && !r->stopping && r->workers < MAX_XFER_WORKERS) {
		for (slot = 0; r->worker_fds[slot] >= 0; slot++)
			;
		r->worker_fds[slot] = fd;
		r->workers++;
	}
	pthread_mutex_unlock(&r->mu);
	if (slot < 0) {
		close(fd); /* busy or stopping: the asker tries again */
		free(w);
		return;
	}
	w->r = r;
	w->fd = fd;
	w->slot = slot;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, worker_main, w) != 0) {
		pthread_mutex_lock(&r->mu);
		r->worker_fds[slot] = -1;
		r->workers--;
		pthread_mutex_unlock(&r->mu);
		close(fd);
		free(w);
	}
	pthread_attr_destroy(&attr);
}

static void on_client(void *arg, int fd)
{
	struct repl *r = arg;
	if (r->o.client && !r->closing)
		r->o.client(r->o.client_arg, fd);
	else
		close(fd);
}

/* rfsm's fetch: the holder first, then every other node, until one sends a copy. */
static int fetch(void *arg, uint64_t holder, uint64_t min_index, const char *dest, char *err,
		 size_t errlen)
{
	struct repl *r = arg;
	const struct cluster_node *order[CLUSTER_MAX_NODES];
	unsigned n = 0;
	size_t at = 0;
	int rc = -ENOENT;

	err[0] = '\0';
	if (holder != r->me->id && cluster_find(&r->cluster, holder))
		order[n++] = cluster_find(&r->cluster, holder);
	for (unsigned i = 0; i < r->cluster.n; i++)
		if (r->cluster.nodes[i].id != holder && r->cluster.nodes[i].id != r->me->id)
			order[n++] = &r->cluster.nodes[i];
	for (unsigned i = 0; i < n; i++) {
		char e[256];
		uint64_t index;
		rc = xfer_fetch(order[i]->host, order[i]->port, r->me->id, min_index, dest, &index, e,
				sizeof(e));
		if (rc == 0)
			return 0;
		if (at < errlen)
			at += (size_t)snprintf(err + at, errlen - at, "%snode %" PRIu64 ": %s",
					       at ? "; " : "", order[i]->id, e);
		int crc = futil_rmtree(dest);
		if (crc == 0 && mkdir(dest, 0700) < 0)
			crc = -errno;
		if (crc)
			return crc;
	}
	if (!n)
		snprintf(err, errlen, "no other node to ask");
	return rc;
}

/* ---- libraft 0.15: no election while an installed snapshot is being written ---------------
 * 0.15 answers the leader once an installed snapshot is written and restored
 * (installSnapshotCb) from follower_state, whatever the node has become meanwhile. If its
 * election timeout fired while the backend wrote the snapshot, it is a candidate, whose state
 * overlays follower_state, and raft sends to an "address" made of two booleans (a SEGV in
 * libraft, seen under ThreadSanitizer in test_replication). Upstream fixed it after 0.15 by not
 * starting an election while an install is pending ("tick: Don't convert to candidate while a
 * snapshot is installing"); the same is done here from outside raft: its ticks are held back
 * while the backend writes a snapshot with trailing 0, which only an install asks for. The
 * write is one small file (the manifest, 3.4 of REPLICATION.md); the copy itself is fetched in
 * restore, inside the callback, so no tick is lost to it. The callbacks run on the loop's
 * thread, which knows its node. */
static _Thread_local struct repl *loop_node;

static void held_tick(struct raft_io *io)
{
	struct repl *r = loop_node;

	if (r->installing) {
		r->ticks_held++;
		return;
	}
	r->raft_tick(io);
}

static int start_held(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
		      raft_io_recv_cb recv)
{
	struct repl *r = loop_node;

	r->raft_tick = tick;
	return r->uv_start(io, msecs, held_tick, recv);
}

static void install_written(struct raft_io_snapshot_put *req, int status)
{
	struct repl *r = loop_node;

	r->installing = 0;
	r->raft_put_cb(req, status);
}

static int snapshot_put_held(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
			     const struct raft_snapshot *snap, raft_io_snapshot_put_cb cb)
{
	struct repl *r = loop_node;
	int rv;

	if (trailing != 0) /* raft's own snapshot, not an install */
		return r->uv_snapshot_put(io, trailing, req, snap, cb);
	r->raft_put_cb = cb;
	r->installing = 1;
	rv = r->uv_snapshot_put(io, trailing, req, snap, install_written);
	if (rv)
		r->installing = 0;
	return rv;
}

/* The backend failed to write raft's log: a crash-stop (appendguard.h), said once. */
static void append_failed(void *arg, int status)
{
	struct repl *r = arg;

	note(r, "writing raft's log in %s failed (%s): this node stops now, as a crash would stop "
	     "it (libraft 0.15 cannot go on after a failed append; the group elects a leader "
	     "whose disk works). Start it again once its disk works", r->raft_dir,
	     raft_strerror(status));
	_exit(1);
}

/* Everything raft needs, made and started on the loop's thread. */
static int raft_up(struct repl *r)
{
	struct mux_handlers h = { .xfer = on_xfer, .client = on_client, .arg = r };
	struct raft_configuration conf;
	int rv;

	rv = mux_init(&r->transport, &r->loop, &h);
	if (rv) {
		snprintf(r->start_err, sizeof(r->start_err), "%s", raft_strerror(rv));
		return rv;
	}
	rv = raft_uv_init(&r->io, &r->loop, r->raft_dir, &r->transport);
	if (rv) {
		snprintf(r->start_err, sizeof(r->start_err), "%s", r->io.errmsg);
		mux_free(&r->transport);
		return rv;
	}
	raft_uv_set_snapshot_compression(&r->io, false); /* a 32-byte manifest */
	rv = appendguard_new(&r->guard, &r->io, append_failed, r);
	if (rv) {
		snprintf(r->start_err, sizeof(r->start_err), "%s", strerror(-rv));
		raft_uv_close(&r->io);
		mux_free(&r->transport);
		return RAFT_NOMEM;
	}
	appendguard_bind(r->guard);
	loop_node = r;
	r->uv_start = r->io.start;
	r->io.start = start_held;
	r->uv_snapshot_put = r->io.snapshot_put;
	r->io.snapshot_put = snapshot_put_held;
	raft_uv_set_connect_retry_delay(&r->io, r->o.election_ms / 10 ? r->o.election_ms / 10 : 1);
	rv = raft_init(&r->raft, &r->io, rfsm_fsm(r->fsm), r->me->id, r->me->addr);
	if (rv) {
		snprintf(r->start_err, sizeof(r->start_err), "%s", raft_errmsg(&r->raft));
		raft_uv_close(&r->io);
		mux_free(&r->transport);
		return rv;
	}
	r->raft.data = r;
	r->raft_inited = 1;
	rfsm_bind(r->fsm, &r->raft);
	raft_set_election_timeout(&r->raft, r->o.election_ms);
	raft_set_heartbeat_timeout(&r->raft, r->o.election_ms / 10 ? r->o.election_ms / 10 : 1);
	raft_set_snapshot_threshold(&r->raft, r->o.snapshot_entries);
	raft_set_snapshot_trailing(&r->raft, r->o.snapshot_entries / 8 + 1);
	raft_set_pre_vote(&r->raft, true);

	raft_configuration_init(&conf);
	for (unsigned i = 0; i < r->cluster.n && rv == 0; i++)
		rv = raft_configuration_add(&conf, r->cluster.nodes[i].id, r->cluster.nodes[i].addr,
					    RAFT_VOTER);
	if (rv == 0) {
		rv = raft_bootstrap(&r->raft, &conf);
		if (rv == RAFT_CANTBOOTSTRAP)
			rv = 0; /* not the first start: raft has its state */
	}
	raft_configuration_close(&conf);
	if (rv == 0)
		rv = raft_start(&r->raft);
	if (rv) {
		/* the most specific message: the transport's (the port), the backend's, raft's */
		const char *m = r->transport.errmsg[0] ? r->transport.errmsg :
				r->io.errmsg[0] ? r->io.errmsg : raft_errmsg(&r->raft);
		snprintf(r->start_err, sizeof(r->start_err), "%s", m[0] ? m : raft_strerror(rv));
		return rv; /* raft_close, on the way out of the thread, releases the rest */
	}
	return 0;
}

static void *loop_main(void *arg)
{
	struct repl *r = arg;
	int rv;

	rv = raft_up(r);
	if (rv == 0) {
		uv_async_init(&r->loop, &r->wake, wake_cb);
		r->wake.data = r;
		uv_check_init(&r->loop, &r->check);
		r->check.data = r;
		uv_check_start(&r->check, check_cb);
		r->handles_open = 2;
	}
	pthread_mutex_lock(&r->mu);
	r->started = 1;
	r->start_rc = rv;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (rv) {
		if (r->raft_inited) {
			r->closing = 1;
			raft_close(&r->raft, NULL);
			uv_run(&r->loop, UV_RUN_DEFAULT);
			raft_uv_close(&r->io);
			mux_free(&r->transport);
		}
		rv = uv_loop_close(&r->loop);
		if (rv)
			note(r, "closing raft's loop after a failed start: %s", uv_strerror(rv));
		return NULL;
	}
	uv_run(&r->loop, UV_RUN_DEFAULT);
	/* every handle is closed: the loop ended */
	rv = uv_loop_close(&r->loop);
	if (rv)
		note(r, "closing raft's loop: %s", uv_strerror(rv));
	return NULL;
}

/* ---- start, stop, and the rest ------------------------------------------------------------------ */

/* The node directory holds only what a node puts there. */
static int check_dir(const char *dir, char *bad, size_t badlen)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (!strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "store") || !strcmp(n, "raft") ||
		    !strcmp(n, "incoming") || !strcmp(n, "store.old") || !strncmp(n, "xfer-", 5))
			continue;
		snprintf(bad, badlen, "%s", n);
		rc = -ENOTEMPTY;
		break;
	}
	closedir(d);
	return rc;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0700) == 0)
		return 0;
	return errno == EEXIST ? 0 : -errno;
}

/* Raft's uv backend takes a start without metadata1/2 (its term and vote) for the first one and
 * bootstraps. A node whose raft/ still holds a log or a snapshot, or whose store applied
 * entries, is no new node: bootstrapping it would forget the vote it cast in its current term
 * (a second vote in one term can elect two leaders). -EEXIST then, what was found in why. */
static int check_not_forgotten(const char *raft_dir, uint64_t applied, char *why, size_t whylen)
{
	struct dirent *e;
	DIR *d = opendir(raft_dir);
	char found[256] = "";
	int meta = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (!strcmp(n, "metadata1") || !strcmp(n, "metadata2"))
			meta = 1;
		else if (!found[0] && (!strncmp(n, "open-", 5) || !strncmp(n, "snapshot-", 9) ||
				       (n[0] >= '0' && n[0] <= '9')))
			snprintf(found, sizeof(found), "raft's file %.100s", n);
	}
	closedir(d);
	if (meta || (!found[0] && applied == 0))
		return 0;
	if (!found[0])
		snprintf(found, sizeof(found), "a store that applied raft entries up to %" PRIu64,
			 applied);
	snprintf(why, whylen, "raft/ has no metadata1 or metadata2 (raft's term and vote) but holds "
		 "%.120s: a start would bootstrap again and forget this node's vote; restore them, or "
		 "wipe the whole node directory (while the group has a leader) to rejoin as a new node",
		 found);
	return -EEXIST;
}

/* Scratch copies a sender left behind when it was killed. */
static void remove_stale_scratch(struct repl *r)
{
	struct dirent *e;
	DIR *d = opendir(r->dir);
	char path[PATH_MAX];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL)
		if (!strncmp(e->d_name, "xfer-", 5) &&
		    futil_join(path, sizeof(path), r->dir, e->d_name) == 0) {
			int rc = futil_rmtree(path);
			if (rc)
				note(r, "removing %s: %s", path, strerror(-rc));
		}
	closedir(d);
}

static int start_fail(struct repl_report *rep, enum repl_problem p, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int start_fail(struct repl_report *rep, enum repl_problem p, int err, const char *fmt, ...)
{
	va_list ap;

	rep->problem = p;
	rep->err = err;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(rep->detail, sizeof(rep->detail), fmt, ap);
		va_end(ap);
	}
	return err ? err : -EINVAL;
}

int repl_start(struct repl **out, const char *dir, const struct repl_options *o,
	       struct repl_report *rep_arg)
{
	struct repl_report scratch_rep, *rep = rep_arg ? rep_arg : &scratch_rep;
	struct rfsm_options fo;
	struct repl *r;
	char err[256], bad[256];
	int rc;

	*out = NULL;
	memset(rep, 0, sizeof(*rep));
	/* raft writes to sockets peers may have closed: EPIPE, not death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	if (!o->cluster_file || !o->node)
		return start_fail(rep, REPL_PROBLEM_OPTIONS, -EINVAL, "%s",
				  o->cluster_file ? "cluster= needs node=ID" :
						    "node= needs cluster=FILE");
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->o = *o;
	r->o.cluster_file = NULL; /* the caller's; not needed after loading */
	if (!r->o.store_sync_set)
		r->o.store.sync = KV_SYNC_NONE; /* raft's log is the durable copy (fsm.h) */
	for (int i = 0; i < MAX_XFER_WORKERS; i++)
		r->worker_fds[i] = -1;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);

	rc = cluster_load(&r->cluster, o->cluster_file, err, sizeof(err));
	if (rc) {
		rc = start_fail(rep, REPL_PROBLEM_CLUSTER, rc, "%s", err);
		goto fail;
	}
	r->me = cluster_find(&r->cluster, o->node);
	if (!r->me) {
		rc = start_fail(rep, REPL_PROBLEM_NODE, -ENOENT, NULL);
		goto fail;
	}
	if (snprintf(r->dir, sizeof(r->dir), "%s", dir) >= (int)sizeof(r->dir) ||
	    futil_join(r->raft_dir, sizeof(r->raft_dir), dir, "raft")) {
		rc = start_fail(rep, REPL_PROBLEM_DIR, -ENAMETOOLONG, NULL);
		goto fail;
	}
	rc = make_dir(r->dir);
	if (rc == 0)
		rc = check_dir(r->dir, bad, sizeof(bad));
	if (rc == -ENOTEMPTY) {
		rc = start_fail(rep, REPL_PROBLEM_DIR, rc, "%s", bad);
		goto fail;
	}
	if (rc == 0)
		rc = make_dir(r->raft_dir);
	if (rc == 0)
		rc = futil_sync_dir(r->dir);
	if (rc) {
		rc = start_fail(rep, REPL_PROBLEM_DIR, rc, NULL);
		goto fail;
	}
	remove_stale_scratch(r);
	{
		/* libraft 0.15 can leave a truncation undone on disk (rlogfix.h) */
		struct rlogfix_report fix;
		rc = rlogfix_repair(r->raft_dir, &fix);
		if (fix.cut)
			note(r, "raft's log in %s: %u segment(s) repaired, the last: %s", r->raft_dir,
			     fix.cut, fix.detail);
		if (rc == -EPROTO) {
			note(r, "raft's log in %s: %s", r->raft_dir, fix.detail); /* raft judges */
			rc = 0;
		}
		if (rc == 0)
			rc = rlogfix_check_open(r->raft_dir, &fix); /* what would crash raft's loader */
		if (rc) {
			rc = start_fail(rep, REPL_PROBLEM_RAFT, rc, "%s", fix.detail);
			goto fail;
		}
	}

	memset(&fo, 0, sizeof(fo));
	fo.self = r->me->id;
	fo.store = r->o.store;
	fo.fetch = fetch;
	fo.fetch_arg = r;
	fo.log = r->o.log;
	fo.log_arg = r->o.log_arg;
	fo.applied = entry_applied;
	fo.swap = store_swap;
	fo.hook_arg = r;
	rc = rfsm_open(&r->fsm, r->dir, &fo, &rep->store);
	if (rc) {
		rep->problem = REPL_PROBLEM_STORE;
		rep->err = rc;
		goto fail;
	}
	{
		struct rfsm_stats fst;
		char why[sizeof(rep->detail)];

		rfsm_stats(r->fsm, &fst);
		rc = check_not_forgotten(r->raft_dir, fst.applied, why, sizeof(why));
		if (rc) {
			rc = start_fail(rep, REPL_PROBLEM_RAFT, rc, "%s", why);
			goto fail_fsm;
		}
	}

	rc = uv_loop_init(&r->loop);
	if (rc) {
		rc = start_fail(rep, REPL_PROBLEM_RAFT, -EIO, "%s", uv_strerror(rc));
		goto fail_fsm;
	}
	r->last_state = RAFT_UNAVAILABLE;
	if (pthread_create(&r->thread, NULL, loop_main, r) != 0) {
		uv_loop_close(&r->loop);
		rc = start_fail(rep, REPL_PROBLEM_RAFT, -EAGAIN, "no thread for raft");
		goto fail_fsm;
	}
	pthread_mutex_lock(&r->mu);
	while (!r->started)
		pthread_cond_wait(&r->cv, &r->mu);
	rc = r->start_rc;
	pthread_mutex_unlock(&r->mu);
	if (rc) {
		pthread_join(r->thread, NULL);
		appendguard_free(r->guard);
		rc = start_fail(rep, REPL_PROBLEM_RAFT, raft_errno(rc), "%s", r->start_err);
		goto fail_fsm;
	}
	*out = r;
	return 0;

fail_fsm:
	{
		int crc = rfsm_close(r->fsm);
		if (crc)
			note(r, "closing the store after a failed start: %s", strerror(-crc));
	}
fail:
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
	return rc;
}

struct kv *repl_pin(struct repl *r)
{
	return rfsm_pin(r->fsm);
}

void repl_unpin(struct repl *r)
{
	rfsm_unpin(r->fsm);
}

int repl_writable(struct repl *r, uint64_t *term)
{
	int w;

	pthread_mutex_lock(&r->mu);
	w = r->writable;
	if (term)
		*term = r->view.term;
	pthread_mutex_unlock(&r->mu);
	return w;
}

int repl_leader(struct repl *r, uint64_t *id, char *addr, size_t addrlen)
{
	const struct cluster_node *n;
	uint64_t lid;

	pthread_mutex_lock(&r->mu);
	lid = r->view.leader;
	pthread_mutex_unlock(&r->mu);
	n = lid ? cluster_find(&r->cluster, lid) : NULL;
	if (!n)
		return -ENOENT;
	*id = lid;
	if (addr)
		snprintf(addr, addrlen, "%s", n->addr);
	return 0;
}

const char *repl_role_name(enum repl_role role)
{
	switch (role) {
	case REPL_LEADER:
		return "leader";
	case REPL_FOLLOWER:
		return "follower";
	case REPL_CANDIDATE:
		return "candidate";
	case REPL_UNAVAILABLE:
		break;
	}
	return "unavailable";
}

void repl_stats(struct repl *r, struct repl_stats *st)
{
	struct rfsm_stats fs;

	pthread_mutex_lock(&r->mu);
	*st = r->view;
	pthread_mutex_unlock(&r->mu);
	st->node = r->me->id;
	rfsm_stats(r->fsm, &fs);
	st->store_applied = fs.applied;
	st->snapshots = fs.snapshots;
	st->installs = fs.installs;
	st->skipped = fs.skipped;
	st->refused = fs.refused;
	st->store_error = fs.error;
}

int repl_stats_text(struct repl *r, char **text, size_t *len)
{
	struct repl_stats rs;
	char addr[64], *buf;
	size_t cap = 1024 + 48 * 9, n = 0;
	uint64_t lid;

	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
#define LINE(...) (n += (size_t)snprintf(buf + n, cap - n, __VA_ARGS__))
	repl_stats(r, &rs);
	LINE("node: %" PRIu64 "\n", rs.node);
	LINE("role: %s\n", repl_role_name(rs.role));
	LINE("writable: %s\n", repl_writable(r, NULL) ? "yes" : "no");
	LINE("term: %" PRIu64 "\n", rs.term);
	if (repl_leader(r, &lid, addr, sizeof(addr)) == 0)
		LINE("leader: %" PRIu64 " %s\n", lid, addr);
	else
		LINE("leader: (none)\n");
	LINE("last_index: %" PRIu64 "\n", rs.last_index);
	LINE("commit_index: %" PRIu64 "\n", rs.commit_index);
	LINE("applied_index: %" PRIu64 "\n", rs.applied_index);
	LINE("store_applied_index: %" PRIu64 "\n", rs.store_applied);
	LINE("snapshot_index: %" PRIu64 "\n", rs.snapshot_index);
	LINE("raft_snapshots: %" PRIu64 "\n", rs.snapshots);
	LINE("installs: %" PRIu64 "\n", rs.installs);
	LINE("replayed_skipped: %" PRIu64 "\n", rs.skipped);
	LINE("stale_refused: %" PRIu64 "\n", rs.refused);
	LINE("store_error: %s\n", rs.store_error ? strerror(-rs.store_error) : "none");
	for (unsigned i = 0; i < rs.npeers; i++)
		LINE("match_index[%" PRIu64 "]: %" PRIu64 "\n", rs.peers[i].id,
		     rs.peers[i].match_index);
#undef LINE
	if (n >= cap) { /* cannot happen with these widths; never hand out a cut line */
		free(buf);
		return -EOVERFLOW;
	}
	*text = buf;
	*len = n;
	return 0;
}

int repl_stop(struct repl *r)
{
	struct req *q;
	int rc;

	if (!r)
		return 0;
	pthread_mutex_lock(&r->mu);
	r->stopping = 1;
	for (int i = 0; i < MAX_XFER_WORKERS; i++)
		if (r->worker_fds[i] >= 0)
			shutdown(r->worker_fds[i], SHUT_RDWR); /* a copy in flight ends now */
	pthread_mutex_unlock(&r->mu);
	rfsm_interrupt(r->fsm); /* a restore waiting for a copy gives up */
	uv_async_send(&r->wake);
	pthread_join(r->thread, NULL);
	appendguard_free(r->guard); /* the loop ended: raft's io is closed */

	pthread_mutex_lock(&r->mu);
	q = r->queue; /* proposed after the loop's last turn */
	r->queue = r->queue_tail = NULL;
	while (r->workers)
		pthread_cond_wait(&r->cv, &r->mu);
	pthread_mutex_unlock(&r->mu);
	while (q) {
		struct req *next = q->next;
		req_complete(r, q, -ESHUTDOWN, 0);
		q = next;
	}
	rc = rfsm_close(r->fsm);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r);
	return rc;
}
