/* notify.c — telling the kernel to drop what it cached when the daemon changed it without the
 * kernel knowing.
 *
 * The kernel caches names, attributes and pages for as long as the timeouts allow (long by
 * default): correct because every change comes through this kernel, which updates its caches
 * as it sends each request. The exceptions go through here:
 *   - a namespace change whose record was applied but whose flush then failed (sync=always:
 *     the store just went read-only): the kernel was told the call failed, so it kept its old
 *     entries, while the store has the new state;
 *   - changes made by kv_cli through the daemon's control socket (kvfs_fs_key_changed);
 *   - on a node of a group, entries applied from the other nodes (kvfs_fs_store_changed).
 * The kernel takes the directory's lock to drop an entry, and the request that made the change
 * may still hold it, so the notifications are sent from a thread of their own, after the
 * request has been answered. Each item holds a reference on its nodes until it is sent.
 * kv_cli's reply must not overtake its notifications (what it changed shows through the mount
 * at once), so kvfs_fs_key_changed waits until they are sent: it runs on the control socket's
 * thread, which holds nothing a request waits for. Raft's apply thread does not wait: a
 * request holding a directory's lock may be waiting for that very apply. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_internal.h"

struct item {
	struct item *next;
	struct kvfs_node *parent; /* entry: parent and name; else an inode's attributes and pages */
	struct kvfs_node *node;
	size_t nlen;
	char name[];
};

struct kvfs_notify {
	struct kvfs_fs *fs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	struct item *head, **tail;
	uint64_t queued, sent; /* items ever queued, ever sent (mu) */
	pthread_cond_t sent_cv;
	int stop;
};

/* How long a waiter gives the kernel to take its notifications: a guard against a directory
 * lock held for long, never a promise about speed (past it, the cache may be stale until its
 * timeout, as when memory runs out). */
#define NOTIFY_WAIT_S 10

static void send_item(struct kvfs_fs *fs, struct item *it)
{
	int rc = 0;

	if (it->parent)
		rc = fuse_lowlevel_notify_inval_entry(fs->se, kvfs_ino_of(fs, it->parent), it->name,
						      it->nlen);
	if (it->node && (rc == 0 || rc == -ENOENT))
		rc = fuse_lowlevel_notify_inval_inode(fs->se, kvfs_ino_of(fs, it->node), 0, 0);
	/* ENOENT: the kernel no longer had it, which is what we wanted; ENOTCONN, ENODEV: the
	 * mount is gone */
	if (rc && rc != -ENOENT && rc != -ENOTCONN && rc != -ENODEV)
		fuse_log(FUSE_LOG_ERR, "telling the kernel of a change: %s; its cache may be stale "
			 "until the timeout\n", strerror(-rc));
	kvfs_node_unref(fs, it->parent);
	kvfs_node_unref(fs, it->node);
	free(it);
}

static void *notify_main(void *arg)
{
	struct kvfs_notify *q = arg; /* not fs->notify: kvfs_notify_stop clears that first */
	struct kvfs_fs *fs = q->fs;

	/* a name to find it by: tests stop the other threads around it (test_live) */
	pthread_setname_np(pthread_self(), "kvfs-notify");
	pthread_mutex_lock(&q->mu);
	for (;;) {
		struct item *it = q->head;

		if (!it) {
			if (q->stop)
				break;
			pthread_cond_wait(&q->cv, &q->mu);
			continue;
		}
		q->head = it->next;
		if (!q->head)
			q->tail = &q->head;
		pthread_mutex_unlock(&q->mu);
		send_item(fs, it);
		pthread_mutex_lock(&q->mu);
		q->sent++;
		pthread_cond_broadcast(&q->sent_cv);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

int kvfs_notify_start(struct kvfs_fs *fs)
{
	struct kvfs_notify *q = calloc(1, sizeof(*q));
	int rc;

	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	pthread_cond_init(&q->sent_cv, NULL);
	q->tail = &q->head;
	pthread_rwlock_wrlock(&fs->notify_lock);
	fs->notify = q;
	pthread_rwlock_unlock(&fs->notify_lock);
	q->fs = fs;
	rc = pthread_create(&q->thread, NULL, notify_main, q);
	if (rc) {
		pthread_rwlock_wrlock(&fs->notify_lock);
		fs->notify = NULL;
		pthread_rwlock_unlock(&fs->notify_lock);
		pthread_cond_destroy(&q->sent_cv);
		pthread_cond_destroy(&q->cv);
		pthread_mutex_destroy(&q->mu);
		free(q);
		return -rc;
	}
	return 0;
}

void kvfs_notify_stop(struct kvfs_fs *fs)
{
	struct kvfs_notify *q;

	pthread_rwlock_wrlock(&fs->notify_lock); /* no key_changed enqueues after this */
	q = fs->notify;
	fs->notify = NULL;
	pthread_rwlock_unlock(&fs->notify_lock);
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	pthread_cond_destroy(&q->sent_cv);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static void enqueue(struct kvfs_fs *fs, struct kvfs_node *parent, const char *name, size_t nlen,
		    struct kvfs_node *node)
{
	struct kvfs_notify *q = fs->notify;
	struct item *it;

	if (!q)
		return;
	it = calloc(1, sizeof(*it) + nlen + 1);
	if (!it) {
		/* the kernel keeps its entry until the timeout: stale, never lost data */
		fuse_log(FUSE_LOG_ERR, "no memory to tell the kernel of a change; its cache may be "
			 "stale until the timeout\n");
		return;
	}
	if (parent)
		kvfs_node_ref(fs, parent);
	if (node)
		kvfs_node_ref(fs, node);
	it->parent = parent;
	it->node = node;
	it->nlen = nlen;
	if (nlen)
		memcpy(it->name, name, nlen);
	pthread_mutex_lock(&q->mu);
	*q->tail = it;
	q->tail = &it->next;
	q->queued++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* Waits until every item queued so far was sent (bounded: NOTIFY_WAIT_S). notify_lock held
 * for reading, so the queue stays. */
static void wait_sent(struct kvfs_fs *fs)
{
	struct kvfs_notify *q = fs->notify;
	struct timespec until;

	if (!q)
		return;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += NOTIFY_WAIT_S;
	pthread_mutex_lock(&q->mu);
	uint64_t ticket = q->queued;
	while (q->sent < ticket && !q->stop)
		if (pthread_cond_timedwait(&q->sent_cv, &q->mu, &until) == ETIMEDOUT) {
			fuse_log(FUSE_LOG_ERR, "the kernel did not take a change within %d s; its "
				 "cache may be stale until the timeout\n", NOTIFY_WAIT_S);
			break;
		}
	pthread_mutex_unlock(&q->mu);
}

void kvfs_notify_entry(struct kvfs_fs *fs, fuse_ino_t parent, const char *name, size_t nlen)
{
	enqueue(fs, kvfs_node_of(fs, parent), name, nlen, NULL);
}

void kvfs_notify_inode(struct kvfs_fs *fs, fuse_ino_t ino)
{
	enqueue(fs, NULL, NULL, 0, kvfs_node_of(fs, ino));
}

static void key_changed(struct kvfs_fs *fs, const void *key, size_t klen, int wait)
{
	const char *k = key;
	struct kvfs_node *dir, *n;
	size_t at = 0;

	/* keys the tree keeps for itself ("/..."): the kernel knows them by no name */
	if (!klen || k[0] == '/')
		return;
	pthread_rwlock_rdlock(&fs->notify_lock);
	if (!fs->notify)
		goto out; /* not serving: the kernel has nothing cached */
	dir = fs->root;
	kvfs_node_ref(fs, dir);
	for (;;) {
		const char *slash = memchr(k + at, '/', klen - at);
		size_t nlen = slash ? (size_t)(slash - (k + at)) : klen - at;
		if (!nlen || nlen > 255)
			break; /* no name the kernel could have looked up */
		n = kvfs_node_find(fs, dir, k + at, nlen);
		if (!n || !slash) {
			/* the first name the kernel does not know (it may hold it as missing), or the
			 * key's own name (it may be gone now); the key's node: its size and pages;
			 * its directory: its size and times */
			enqueue(fs, dir, k + at, nlen, NULL);
			if (n)
				enqueue(fs, NULL, NULL, 0, n);
			enqueue(fs, NULL, NULL, 0, dir);
			if (n)
				kvfs_node_unref(fs, n);
			break;
		}
		kvfs_node_unref(fs, dir);
		dir = n;
		at += nlen + 1;
	}
	kvfs_node_unref(fs, dir);
	if (wait)
		wait_sent(fs);
out:
	pthread_rwlock_unlock(&fs->notify_lock);
}

void kvfs_fs_key_changed(struct kvfs_fs *fs, const void *key, size_t klen)
{
	key_changed(fs, key, klen, 1);
}

void kvfs_notify_key(struct kvfs_fs *fs, const void *key, size_t klen)
{
	key_changed(fs, key, klen, 0);
}
