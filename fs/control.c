/* control.c — the control file's statistics and commands (control.h). */
#include "control.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kvfs_control_stat(uid_t uid, gid_t gid, const struct timespec *mount_time, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0644;
	st->st_nlink = 1;
	st->st_uid = uid;
	st->st_gid = gid;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = *mount_time;
}

struct text {
	char *buf;
	size_t len, cap;
	int err;
};

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
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
		text_add(t, "%.*s", (int)n, more);
	free(more);
}

int kvfs_control_render(struct kv *kv, char **text, size_t *len)
{
	struct text t = { malloc(1024), 0, 1024, 0 };
	struct kv_stats st;

	if (!t.buf)
		return -ENOMEM;
	t.buf[0] = '\0';
	kv_stats(kv, &st);
	text_add(&t, "version: %s\n", KV_VERSION);
	text_add(&t, "keys: %" PRIu64 "\n", st.keys);
	text_add(&t, "bytes: %" PRIu64 "\n", st.bytes);
	text_add(&t, "mem_bytes: %" PRIu64 "\n", st.mem_bytes);
	text_add(&t, "mem_per_key: %" PRIu64 "\n", st.keys ? st.mem_bytes / st.keys : 0);
	text_add(&t, "wal_bytes: %" PRIu64 "\n", st.wal_bytes);
	text_add(&t, "last_lsn: %" PRIu64 "\n", st.last_lsn);
	text_add(&t, "durable_lsn: %" PRIu64 "\n", st.durable_lsn);
	text_add(&t, "snapshot_lsn: %" PRIu64 "\n", st.snapshot_lsn);
	text_add(&t, "sync: %s\n", kv_sync_name(st.sync));
	text_add(&t, "commit_ms: %u\n", st.commit_ms);
	text_add(&t, "read_only: %s\n", st.read_only ? "yes" : "no");
	text_add(&t, "error: %s\n", st.error ? strerror(-st.error) : "none");
	text_add(&t, "flushes: %" PRIu64 "\n", st.flushes);
	text_add(&t, "flush_requests: %" PRIu64 "\n", st.flush_requests);
	text_add(&t, "fdatasyncs: %" PRIu64 "\n", st.fdatasyncs);
	text_add(&t, "snapshots: %" PRIu64 "\n", st.snapshots);
	text_add(&t, "snapshot_due: %" PRIu64 "\n", st.snapshot_due);
	add_extra(&t); /* after the lines above, which stay as they are */
	if (t.err) {
		free(t.buf);
		return t.err;
	}
	*text = t.buf;
	*len = t.len;
	return 0;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int word_is(const char *w, size_t n, const char *name)
{
	return n == strlen(name) && memcmp(w, name, n) == 0;
}

int kvfs_control_command(struct kv *kv, const char *buf, size_t len)
{
	size_t pos = 0;
	int ran = 0, rc;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - buf) : len, s = pos, e = end;

		pos = end + 1;
		while (s < e && is_blank(buf[s]))
			s++;
		while (e > s && is_blank(buf[e - 1]))
			e--;
		if (s == e)
			continue;
		if (word_is(buf + s, e - s, "flush"))
			rc = kv_flush(kv);
		else if (word_is(buf + s, e - s, "snapshot"))
			rc = kv_snapshot(kv);
		else
			return -EINVAL;
		if (rc)
			return rc;
		ran++;
	}
	return ran ? 0 : -EINVAL;
}
