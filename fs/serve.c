/* serve.c — the threads that serve the kernel's requests, and O_TMPFILE.
 *
 * A fixed pool of cfg.threads threads, each reading one request from /dev/fuse and answering
 * it. Most requests are the CPU's work for a moment (the store is in memory), so a couple of
 * threads per core keep both cores busy; a request that waits (an fsync, every write under
 * sync=always) holds its thread until the group commit it joined is durable, and the more of
 * those wait at once the more one fdatasync covers. The default (16) lets the benchmark's 8
 * concurrent fsyncing writers all wait in one group commit while other requests go on; idle
 * threads cost nothing but their stacks, since the kernel wakes one reader per request.
 *
 * libfuse 3.14 does not know FUSE_TMPFILE (Linux 6.1+, O_TMPFILE): it would answer ENOSYS.
 * The threads read requests themselves (fuse_session_receive_buf), so they answer that one
 * themselves: a CREATE-like reply (entry + open) written to the device, the rest handed to
 * fuse_session_process_buf.
 *
 * Ending: an unmount makes every read fail with ENODEV (libfuse then marks the session
 * exited); a signal handled by fuse_set_signal_handlers marks it exited. The calling thread
 * waits for either, then cancels the threads still blocked in a read (they never hold a lock
 * there) and joins them all. */
#include <errno.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "fs_internal.h"

struct server {
	struct kvfs_fs *fs;
	struct fuse_session *se;
	sem_t ended; /* a thread ended */
	pthread_mutex_t mu;
	int error;
};

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

static void timeout_split(double t, uint64_t *sec, uint32_t *nsec)
{
	if (t <= 0) {
		*sec = 0;
		*nsec = 0;
		return;
	}
	*sec = (uint64_t)t;
	*nsec = (uint32_t)((t - (double)*sec) * 1e9);
}

/* Answers a FUSE_TMPFILE request (in the buffer as read from the device). */
static void do_tmpfile(struct server *sv, const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;
	const struct fuse_create_in *arg = (const void *)(in + 1);
	struct fuse_out_header out;
	struct fuse_entry_out eo;
	struct fuse_open_out oo;
	struct fuse_entry_param e;
	struct iovec iov[3];
	int rc = -EINVAL, n = 1;

	if (buf->size >= sizeof(*in) + sizeof(*arg))
		rc = kvfs_tmpfile(sv->fs, in->nodeid, arg->mode, arg->umask, in->uid, in->gid, &e);
	memset(&out, 0, sizeof(out));
	out.unique = in->unique;
	out.error = rc;
	if (rc == 0) {
		memset(&eo, 0, sizeof(eo));
		eo.nodeid = e.ino;
		eo.generation = e.generation;
		timeout_split(e.entry_timeout, &eo.entry_valid, &eo.entry_valid_nsec);
		timeout_split(e.attr_timeout, &eo.attr_valid, &eo.attr_valid_nsec);
		fill_attr(&eo.attr, &e.attr);
		memset(&oo, 0, sizeof(oo));
		oo.open_flags = FOPEN_KEEP_CACHE;
		iov[1] = (struct iovec){ &eo, sizeof(eo) };
		iov[2] = (struct iovec){ &oo, sizeof(oo) };
		n = 3;
	}
	iov[0] = (struct iovec){ &out, sizeof(out) };
	out.len = (uint32_t)(sizeof(out) + (n == 3 ? sizeof(eo) + sizeof(oo) : 0));
	if (writev(fuse_session_fd(sv->se), iov, n) != (ssize_t)out.len && rc == 0)
		kvfs_node_forget(sv->fs, kvfs_node_of(sv->fs, e.ino), 1); /* never delivered */
}

static int is_tmpfile(const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;

	return !(buf->flags & FUSE_BUF_IS_FD) && buf->size >= sizeof(*in) &&
	       in->opcode == FUSE_TMPFILE;
}

static void free_buf(void *p)
{
	struct fuse_buf *buf = p;

	free(buf->mem);
	buf->mem = NULL;
	kvfs_thread_buffers_free();
}

static void *worker(void *arg)
{
	struct server *sv = arg;
	struct fuse_buf buf;

	memset(&buf, 0, sizeof(buf));
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
	pthread_cleanup_push(free_buf, &buf);
	while (!fuse_session_exited(sv->se)) {
		int res;

		/* cancellable only here, waiting for a request, where no lock is held */
		pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, NULL);
		res = fuse_session_receive_buf(sv->se, &buf);
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, NULL);
		if (res == -EINTR)
			continue;
		if (res <= 0) {
			if (res < 0) {
				pthread_mutex_lock(&sv->mu);
				sv->error = res;
				pthread_mutex_unlock(&sv->mu);
				fuse_session_exit(sv->se);
			}
			break;
		}
		if (is_tmpfile(&buf))
			do_tmpfile(sv, &buf);
		else
			fuse_session_process_buf(sv->se, &buf);
	}
	pthread_cleanup_pop(1);
	sem_post(&sv->ended);
	return NULL;
}

int kvfs_fs_serve(struct kvfs_fs *fs, struct fuse_session *se)
{
	struct server sv = { .fs = fs, .se = se };
	unsigned n = fs->cfg.threads ? fs->cfg.threads : 1, started = 0;
	pthread_t *threads = calloc(n, sizeof(*threads));
	sigset_t all, old;
	int rc = 0;

	if (!threads)
		return -ENOMEM;
	fs->se = se;
	sem_init(&sv.ended, 0, 0);
	pthread_mutex_init(&sv.mu, NULL);
	rc = kvfs_notify_start(fs);
	if (rc)
		goto out;
	/* signals go to this thread, not to one busy with a request */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; started < n; started++) {
		rc = -pthread_create(&threads[started], NULL, worker, &sv);
		if (rc)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		fuse_session_exit(se);
	while (!fuse_session_exited(se)) {
		struct timespec until;

		/* a signal between the check and the wait is seen within a second */
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (sem_timedwait(&sv.ended, &until) == 0)
			break; /* a thread ended: the session is over (unmounted, or an error) */
	}
	fuse_session_exit(se);
	for (unsigned i = 0; i < started; i++)
		pthread_cancel(threads[i]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	kvfs_notify_stop(fs);
	if (!rc)
		rc = sv.error;
out:
	pthread_mutex_destroy(&sv.mu);
	sem_destroy(&sv.ended);
	free(threads);
	fs->se = NULL;
	return rc;
}
