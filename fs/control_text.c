/* control_text.c — the control file's text (see control.h). */
#include "control.h"
#include "opstats.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct text {
	char *buf;
	size_t len, cap;
	int err;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->err = -EINVAL;
			return;
		}
		if ((size_t)n < t->cap - t->len)
			break;
		size_t cap = t->cap * 2 + (size_t)n;
		char *nb = realloc(t->buf, cap);

		if (!nb) {
			t->err = -ENOMEM;
			return;
		}
		t->buf = nb;
		t->cap = cap;
	}
	t->len += (size_t)n;
}

/* The daemon is one per process, so is its hook; the lock keeps a render from calling a hook
 * that is being removed. */
static pthread_rwlock_t extra_lock = PTHREAD_RWLOCK_INITIALIZER;
static kvfs_control_extra_fn extra_fn;
static void *extra_arg;

void kvfs_control_set_extra(kvfs_control_extra_fn fn, void *arg)
{
	pthread_rwlock_wrlock(&extra_lock);
	extra_fn = fn;
	extra_arg = arg;
	pthread_rwlock_unlock(&extra_lock);
}

static void add_extra(struct text *t)
{
	char *more = NULL;
	size_t n = 0;

	pthread_rwlock_rdlock(&extra_lock);
	if (extra_fn && !t->err)
		t->err = extra_fn(extra_arg, &more, &n);
	pthread_rwlock_unlock(&extra_lock);
	if (more)
		add(t, "%.*s", (int)n, more);
	free(more);
}

/* Once this process serves a mount: each FUSE operation's count and latencies (opstats.h), every
 * operation always, so a program reading them finds the same names each time. */
static void add_ops(struct text *t)
{
	if (!kvfs_opstats_active())
		return;
	for (unsigned op = 0; op < KVFS_OP_N; op++) {
		const char *name = kvfs_opstats_name((enum kvfs_op)op);
		struct kvfs_opstat s;

		kvfs_opstats_get((enum kvfs_op)op, &s);
		add(t, "fuse_%s_count: %" PRIu64 "\n", name, s.count);
		add(t, "fuse_%s_mean_ns: %" PRIu64 "\n", name, s.mean_ns);
		add(t, "fuse_%s_p99_ns: %" PRIu64 "\n", name, s.p99_ns);
		add(t, "fuse_%s_max_ns: %" PRIu64 "\n", name, s.max_ns);
	}
}

int kvfs_control_render(struct kv *kv, char **text, size_t *len)
{
	struct text t = { malloc(1024), 0, 1024, 0 };
	struct kv_stats st;

	if (!t.buf)
		return -ENOMEM;
	t.buf[0] = '\0';
	kv_stats(kv, &st);
	add(&t, "version: %s\n", KV_VERSION);
	add(&t, "keys: %" PRIu64 "\n", st.keys);
	add(&t, "bytes: %" PRIu64 "\n", st.bytes);
	add(&t, "mem_bytes: %" PRIu64 "\n", st.mem_bytes);
	add(&t, "mem_per_key: %" PRIu64 "\n", st.keys ? st.mem_bytes / st.keys : 0);
	add(&t, "wal_bytes: %" PRIu64 "\n", st.wal_bytes);
	add(&t, "last_lsn: %" PRIu64 "\n", st.last_lsn);
	add(&t, "durable_lsn: %" PRIu64 "\n", st.durable_lsn);
	add(&t, "snapshot_lsn: %" PRIu64 "\n", st.snapshot_lsn);
	add(&t, "sync: %s\n", kv_sync_name(st.sync));
	add(&t, "commit_ms: %u\n", st.commit_ms);
	add(&t, "read_only: %s\n", st.read_only ? "yes" : "no");
	add(&t, "error: %s\n", st.error ? strerror(-st.error) : "none");
	add(&t, "flushes: %" PRIu64 "\n", st.flushes);
	add(&t, "flush_requests: %" PRIu64 "\n", st.flush_requests);
	add(&t, "fdatasyncs: %" PRIu64 "\n", st.fdatasyncs);
	add(&t, "snapshots: %" PRIu64 "\n", st.snapshots);
	add(&t, "snapshot_due: %" PRIu64 "\n", st.snapshot_due);
	add(&t, "segments: %" PRIu64 "\n", st.segments);
	add(&t, "disk_bytes: %" PRIu64 "\n", st.disk_bytes);
	add(&t, "live_bytes: %" PRIu64 "\n", st.live_bytes);
	add(&t, "written_bytes: %" PRIu64 "\n", st.written_bytes);
	add(&t, "cleaner_passes: %" PRIu64 "\n", st.cleaner_passes);
	add(&t, "cleaner_moved_bytes: %" PRIu64 "\n", st.cleaner_moved_bytes);
	add(&t, "segments_deleted: %" PRIu64 "\n", st.segments_deleted);
	add(&t, "read_errors: %" PRIu64 "\n", st.read_errors);
	add_extra(&t); /* after the lines above, which stay as they are */
	add_ops(&t);
	if (t.err) {
		free(t.buf);
		return t.err;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}
