/* serve.c — the threads that serve the kernel's requests.
 *
 * A fixed pool of cfg.threads threads, each reading one request from /dev/fuse and answering
 * it. Most requests are the CPU's work for a moment (the store is in memory), so a couple of
 * threads per core keep both cores busy; a request that waits (an fsync, every write under
 * sync=always) holds its thread until the group commit it joined is durable, and the more of
 * those wait at once the more one fdatasync covers. The default (16) lets the benchmark's 8
 * concurrent fsyncing writers all wait in one group commit while other requests go on; idle
 * threads cost nothing but their stacks, since the kernel wakes one reader per request.
 *
 * The threads read requests themselves (fuse_session_receive_buf) so that device.c sees each
 * one first (what libfuse 3.14 does not pass on), then hand it to fuse_session_process_buf.
 *
 * Ending: an unmount makes every read fail with ENODEV (libfuse then marks the session
 * exited); a signal handled by fuse_set_signal_handlers marks it exited. The calling thread
 * waits for either, then cancels the threads still blocked in a read (they never hold a lock
 * there) and joins them all. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_internal.h"

struct server {
	struct kvfs_fs *fs;
	struct fuse_session *se;
	sem_t ended; /* a thread ended */
	pthread_mutex_t mu;
	int error;
};

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
		if (!kvfs_device_request(sv->fs, sv->se, &buf))
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
	rc = kvfs_device_attach(se);
	if (!rc)
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
