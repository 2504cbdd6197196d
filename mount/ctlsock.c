/* ctlsock.c — the daemon's control socket (ctlsock.h).
 *
 * Threads: one acceptor, one per connection (at most CTL_MAX_CONNS at once). mu guards the
 * connection list, the quiesce and close state and the per-command statistics. A connection
 * thread runs its commands without mu: the store is thread-safe. */
#include "ctlsock.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "ctlproto.h"
#include "kvcmd.h"

#define CTL_MAX_CONNS 64
#define CTL_MAX_ARGS 64

/* Per-command counts and latencies, indexed by enum kvcmd_op, then backup. */
#define OPSTAT_BACKUP KVCMD_NOPS
#define OPSTAT_N (KVCMD_NOPS + 1)
struct opstat {
	uint64_t count, ns_total, ns_max;
};

struct conn {
	struct ctlsock *cs;
	int fd;
	pthread_t th;
	int waiter; /* waits for the close: quiesce leaves it be */
	int done;   /* its thread has finished (join it) */
	struct conn *next;
};

struct ctlsock {
	struct kv *kv;
	char *dir, *mountpoint;
	ctlsock_change_fn on_change;
	void *arg;
	int dfd;     /* the store directory (O_PATH): the socket is bound and removed through it */
	int lfd;     /* listening */
	int bound;   /* the socket file is ours: removed at quiesce */
	int wake[2]; /* the acceptor's stop pipe */
	pthread_t acceptor;
	int acceptor_running;
	struct timespec started; /* CLOCK_MONOTONIC */
	pthread_mutex_t mu;
	pthread_cond_t cv; /* a connection finished, or the store closed */
	struct conn *conns;
	unsigned nconns;
	int quiescing;
	int closed, close_rc;
	struct opstat ops[OPSTAT_N];
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void opstat_add(struct ctlsock *cs, unsigned op, uint64_t ns)
{
	pthread_mutex_lock(&cs->mu);
	cs->ops[op].count++;
	cs->ops[op].ns_total += ns;
	if (ns > cs->ops[op].ns_max)
		cs->ops[op].ns_max = ns;
	pthread_mutex_unlock(&cs->mu);
}

/* ---- the statistics lines ------------------------------------------------------------------- */

static const char *opstat_name(unsigned op)
{
	return op == OPSTAT_BACKUP ? "backup" : kvcmd_op_word((enum kvcmd_op)op);
}

/* The daemon's "name: value" lines, after the store's (control.h's hook). */
static int render_extra(void *arg, char **text, size_t *len)
{
	struct ctlsock *cs = arg;
	char *buf = NULL;
	size_t cap = 0;
	FILE *f = open_memstream(&buf, &cap);
	struct opstat ops[OPSTAT_N];
	unsigned nconns;
	uint64_t up;

	if (!f)
		return -errno;
	pthread_mutex_lock(&cs->mu);
	memcpy(ops, cs->ops, sizeof(ops));
	nconns = cs->nconns;
	pthread_mutex_unlock(&cs->mu);
	up = (now_ns() - ((uint64_t)cs->started.tv_sec * 1000000000u +
			  (uint64_t)cs->started.tv_nsec)) / 1000000000u;
	fprintf(f, "pid: %ld\n", (long)getpid());
	fprintf(f, "mountpoint: %s\n", cs->mountpoint);
	fprintf(f, "datadir: %s\n", cs->dir);
	fprintf(f, "uptime_s: %" PRIu64 "\n", up);
	fprintf(f, "socket: %s/" CTL_SOCKET_NAME "\n", cs->dir);
	fprintf(f, "socket_clients: %u\n", nconns);
	/* per command through the socket: how many, and their latency (mean, worst) */
	for (unsigned i = 0; i < OPSTAT_N; i++) {
		char name[16];
		size_t k;

		snprintf(name, sizeof(name), "%s", opstat_name(i));
		for (k = 0; name[k]; k++)
			name[k] = (char)(name[k] >= 'A' && name[k] <= 'Z' ? name[k] - 'A' + 'a' : name[k]);
		fprintf(f, "op_%s_count: %" PRIu64 "\n", name, ops[i].count);
		fprintf(f, "op_%s_avg_us: %" PRIu64 "\n", name,
			ops[i].count ? ops[i].ns_total / ops[i].count / 1000 : 0);
		fprintf(f, "op_%s_max_us: %" PRIu64 "\n", name, ops[i].ns_max / 1000);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	*text = buf;
	*len = cap;
	return 0;
}

/* ---- one connection ------------------------------------------------------------------------- */

static int send_text(int fd, uint8_t type, uint8_t flags, const char *text)
{
	return ctl_send(fd, type, flags, NULL, NULL, 0, text, strlen(text));
}

/* Whether the peer may use the store: the daemon's user or root. 0, or -EACCES with the reason
 * in why. */
static int peer_allowed(int fd, char *why, size_t whylen)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) < 0) {
		snprintf(why, whylen, "cannot tell who is connecting: %s", strerror(errno));
		return -EACCES;
	}
	if (cr.uid == 0 || cr.uid == geteuid())
		return 0;
	snprintf(why, whylen, "uid %ld may not use this store: the daemon (pid %ld) admits only its "
		 "own user (uid %ld) and root", (long)cr.uid, (long)getpid(), (long)geteuid());
	return -EACCES;
}

/* A command run against the store; the reply's bytes gathered so they go as one frame. */
static int run_command(struct conn *c, const struct kvcmd *cmd, int raw)
{
	struct ctlsock *cs = c->cs;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t t0 = now_ns();
	int res, rc;

	if (!f)
		return -errno;
	res = kvcmd_run(cs->kv, cmd, f, raw);
	if (fclose(f) != 0 && res >= 0)
		res = -ENOMEM;
	if (res < 0) {
		free(buf);
		return res;
	}
	opstat_add(cs, cmd->op, now_ns() - t0);
	if (res == KVCMD_DO_EXIT) {
		free(buf);
		rc = send_text(c->fd, CTL_REPLY, KVCMD_DO_EXIT, "OK\n");
		return rc ? rc : 1; /* EXIT ends the connection (not the store) */
	}
	if ((cmd->op == KVCMD_PUT || cmd->op == KVCMD_DEL) && len == 3 && !memcmp(buf, "OK\n", 3) &&
	    cs->on_change)
		cs->on_change(cs->arg, cmd->key, cmd->klen);
	rc = ctl_send(c->fd, CTL_REPLY, (uint8_t)res, NULL, NULL, 0, buf, len);
	free(buf);
	return rc;
}

static int do_line(struct conn *c, struct ctl_frame *f)
{
	struct kvcmd cmd;
	char err[256], reply[300], *p;
	size_t len;

	if (ctl_part(f, 0, &p, &len))
		return -EPROTO;
	if (kvcmd_parse_line(&cmd, p, len, !!(f->flags & CTL_F_OVERLONG), err, sizeof(err))) {
		snprintf(reply, sizeof(reply), "ERR %s\n", err);
		return send_text(c->fd, CTL_REPLY, KVCMD_REPLIED_ERR, reply);
	}
	return run_command(c, &cmd, !!(f->flags & CTL_F_RAW));
}

static int do_args(struct conn *c, struct ctl_frame *f)
{
	char *argv[CTL_MAX_ARGS], err[256], reply[300], *scratch = NULL, *p;
	struct kvcmd cmd;
	unsigned n = f->nparts, i;
	size_t len;
	int rc = 0;

	if (n == 0 || n > CTL_MAX_ARGS)
		return -EPROTO;
	for (i = 0; i < n; i++) {
		if (ctl_part(f, i, &p, &len) || memchr(p, '\0', len)) {
			rc = -EPROTO;
			break;
		}
		argv[i] = strndup(p, len);
		if (!argv[i]) {
			rc = -ENOMEM;
			break;
		}
	}
	n = i;
	if (!rc) {
		if (kvcmd_parse_args(&cmd, (int)n, argv, &scratch, err, sizeof(err))) {
			snprintf(reply, sizeof(reply), "ERR %s\n", err);
			rc = send_text(c->fd, CTL_REPLY, KVCMD_REPLIED_ERR, reply);
		} else {
			rc = run_command(c, &cmd, !!(f->flags & CTL_F_RAW));
		}
	}
	free(scratch);
	for (i = 0; i < n; i++)
		free(argv[i]);
	return rc;
}

static int do_backup(struct conn *c, struct ctl_frame *f)
{
	struct kv_backup_info info;
	char reply[512], *p, *dest;
	size_t len;
	uint64_t t0 = now_ns();
	int rc;

	if (ctl_part(f, 0, &p, &len) || len == 0 || p[0] != '/' || memchr(p, '\0', len))
		return -EPROTO;
	dest = strndup(p, len);
	if (!dest)
		return -ENOMEM;
	rc = kv_backup(c->cs->kv, dest, &info);
	free(dest);
	opstat_add(c->cs, OPSTAT_BACKUP, now_ns() - t0);
	if (rc)
		return send_text(c->fd, CTL_REPLY, 1, strerror(-rc));
	snprintf(reply, sizeof(reply), "lsn: %" PRIu64 "\nfiles: %" PRIu64 "\nbytes: %" PRIu64 "\n",
		 info.lsn, info.files, info.bytes);
	return send_text(c->fd, CTL_REPLY, 0, reply);
}

/* CTL_WAIT: say it is registered, then wait for ctlsock_free to report the close. */
static int do_wait(struct conn *c)
{
	struct ctlsock *cs = c->cs;
	char reply[256];
	int rc, crc;

	pthread_mutex_lock(&cs->mu);
	c->waiter = 1;
	pthread_cond_broadcast(&cs->cv); /* a quiesce waiting for this connection need not */
	pthread_mutex_unlock(&cs->mu);
	rc = send_text(c->fd, CTL_WAITING, 0, "");
	if (rc)
		return rc;
	pthread_mutex_lock(&cs->mu);
	while (!cs->closed)
		pthread_cond_wait(&cs->cv, &cs->mu);
	crc = cs->close_rc;
	pthread_mutex_unlock(&cs->mu);
	if (crc)
		snprintf(reply, sizeof(reply), "closing the store failed: %s; writes since the last "
			 "flush may be lost", strerror(-crc));
	else
		snprintf(reply, sizeof(reply), "the store is flushed and closed");
	return send_text(c->fd, CTL_CLOSED, crc ? 1 : 0, reply);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct ctlsock *cs = c->cs;
	char why[256], hello[8192 + 128];
	int rc = 0, fd;

	if (peer_allowed(c->fd, why, sizeof(why))) {
		rc = send_text(c->fd, CTL_REFUSED, 0, why);
		goto out;
	}
	snprintf(hello, sizeof(hello), CTL_VERSION_LINE "\npid: %ld\nmountpoint: %s\ndatadir: %s\n",
		 (long)getpid(), cs->mountpoint, cs->dir);
	rc = send_text(c->fd, CTL_HELLO, 0, hello);
	while (!rc) {
		struct ctl_frame f;

		rc = ctl_recv(c->fd, &f);
		if (rc)
			break;
		switch (f.type) {
		case CTL_LINE:
			rc = do_line(c, &f);
			break;
		case CTL_ARGS:
			rc = do_args(c, &f);
			break;
		case CTL_BACKUP:
			rc = do_backup(c, &f);
			break;
		case CTL_WAIT:
			rc = do_wait(c);
			if (!rc)
				rc = 1; /* the last frame of this connection */
			break;
		default:
			rc = -EPROTO;
		}
		free(f.payload);
	}
out:
	/* A connection's errors (a peer gone, a malformed frame) end only that connection: the
	 * client sees its end; rc > 0 is a connection that ended by design (EXIT, a close told). */
	pthread_mutex_lock(&cs->mu);
	fd = c->fd;
	c->fd = -1;
	c->done = 1;
	cs->nconns--;
	pthread_cond_broadcast(&cs->cv);
	pthread_mutex_unlock(&cs->mu);
	close(fd);
	return NULL;
}

/* ---- accepting ------------------------------------------------------------------------------ */

/* Joins the threads of finished connections; with mu held. */
static void reap(struct ctlsock *cs)
{
	for (struct conn **pp = &cs->conns; *pp;) {
		struct conn *c = *pp;

		if (!c->done) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		pthread_mutex_unlock(&cs->mu);
		pthread_join(c->th, NULL);
		free(c);
		pthread_mutex_lock(&cs->mu);
		pp = &cs->conns; /* the list may have changed meanwhile */
	}
}

/* Tells a peer why it is not served and hangs up. A peer that went away first needs no answer,
 * so a failed send changes nothing. */
static void refuse(int fd, const char *why)
{
	if (send_text(fd, CTL_REFUSED, 0, why) == 0)
		shutdown(fd, SHUT_WR);
	close(fd);
}

static void take_connection(struct ctlsock *cs, int fd)
{
	struct timeval tmo = { .tv_sec = 10 };
	struct conn *c;
	int rc;

	pthread_mutex_lock(&cs->mu);
	reap(cs);
	if (cs->nconns >= CTL_MAX_CONNS) {
		pthread_mutex_unlock(&cs->mu);
		refuse(fd, "too many connections to the daemon; try again");
		return;
	}
	/* a client that stops reading its replies cannot hold a command's thread, and so the
	 * daemon's shutdown, for longer than this; it then loses its connection */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof(tmo)) < 0) {
		pthread_mutex_unlock(&cs->mu);
		refuse(fd, "the daemon cannot set up the connection");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c) {
		c->cs = cs;
		c->fd = fd;
		rc = pthread_create(&c->th, NULL, conn_main, c);
		if (rc == 0) {
			c->next = cs->conns;
			cs->conns = c;
			cs->nconns++;
			pthread_mutex_unlock(&cs->mu);
			return;
		}
		free(c);
	}
	pthread_mutex_unlock(&cs->mu);
	refuse(fd, "the daemon is out of memory or threads");
}

static void *acceptor_main(void *arg)
{
	struct ctlsock *cs = arg;
	struct pollfd p[2] = { { .fd = cs->lfd, .events = POLLIN }, { .fd = cs->wake[0], .events = POLLIN } };

	for (;;) {
		int fd;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents || (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)))
			break;
		fd = accept4(cs->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue; /* the peer gave up (ECONNABORTED), or no fds for now: next one */
		take_connection(cs, fd);
	}
	return NULL;
}

/* ---- start, quiesce, free ------------------------------------------------------------------- */

/* The socket's address: DIR/kvfs.sock, or through /proc/self/fd when DIR is too long. */
static void socket_addr(const struct ctlsock *cs, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (ctl_socket_path(cs->dir, sa->sun_path, sizeof(sa->sun_path)))
		snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/" CTL_SOCKET_NAME,
			 cs->dfd);
}

/* A file left at the socket's name. The caller holds the store's LOCK, so a socket there
 * belongs to a daemon that is gone: removed. Anything else is not ours to remove. */
static int clear_stale(struct ctlsock *cs, char *err, size_t errlen)
{
	struct stat st;

	if (fstatat(cs->dfd, CTL_SOCKET_NAME, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s/" CTL_SOCKET_NAME ": exists and is not a socket; move it "
			 "away", cs->dir);
		return -EEXIST;
	}
	if (unlinkat(cs->dfd, CTL_SOCKET_NAME, 0) < 0)
		return -errno;
	return 0;
}

static int listen_on(struct ctlsock *cs, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	mode_t old;
	int rc;

	rc = clear_stale(cs, err, errlen);
	if (rc)
		return rc;
	cs->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cs->lfd < 0)
		return -errno;
	socket_addr(cs, &sa);
	/* made 0600 from the start: no moment where another user could connect (umask is the
	 * process's, but this runs before the mount starts any thread that creates files) */
	old = umask(0177);
	rc = bind(cs->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	umask(old);
	cs->bound = rc == 0;
	if (!rc && listen(cs->lfd, 16) < 0)
		rc = -errno;
	return rc;
}

int ctlsock_start(struct ctlsock **out, struct kv *kv, const char *dir, const char *mountpoint,
		  ctlsock_change_fn on_change, void *arg, char *err, size_t errlen)
{
	struct ctlsock *cs = calloc(1, sizeof(*cs));
	int rc;

	*out = NULL;
	err[0] = '\0';
	if (!cs)
		return -ENOMEM;
	cs->kv = kv;
	cs->on_change = on_change;
	cs->arg = arg;
	cs->lfd = cs->dfd = cs->wake[0] = cs->wake[1] = -1;
	clock_gettime(CLOCK_MONOTONIC, &cs->started);
	pthread_mutex_init(&cs->mu, NULL);
	pthread_cond_init(&cs->cv, NULL);
	cs->dir = strdup(dir);
	cs->mountpoint = strdup(mountpoint);
	if (!cs->dir || !cs->mountpoint) {
		rc = -ENOMEM;
		goto out;
	}
	cs->dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cs->dfd < 0) {
		rc = -errno;
		goto out;
	}
	rc = listen_on(cs, err, errlen);
	if (rc)
		goto out;
	if (pipe2(cs->wake, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	rc = -pthread_create(&cs->acceptor, NULL, acceptor_main, cs);
	if (rc)
		goto out;
	cs->acceptor_running = 1;
	kvfs_control_set_extra(render_extra, cs);
	*out = cs;
	cs = NULL;
out:
	if (rc && !err[0])
		snprintf(err, errlen, "%s/" CTL_SOCKET_NAME ": %s", dir, strerror(-rc));
	ctlsock_free(cs, 0);
	return rc;
}

void ctlsock_quiesce(struct ctlsock *cs)
{
	if (!cs || cs->quiescing)
		return;
	cs->quiescing = 1;
	kvfs_control_set_extra(NULL, NULL);
	if (cs->acceptor_running) {
		/* the acceptor's pipe is ours and empty: a byte always fits; shutting the listening
		 * socket down wakes it too, should the write fail all the same */
		if (write(cs->wake[1], "q", 1) != 1)
			shutdown(cs->lfd, SHUT_RDWR);
		pthread_join(cs->acceptor, NULL);
		cs->acceptor_running = 0;
	}
	if (cs->lfd >= 0) {
		close(cs->lfd);
		cs->lfd = -1;
	}
	if (cs->bound) {
		/* A socket file that cannot be removed is stale from now on; kv_cli finds nobody
		 * answering there, and the next daemon replaces it. */
		unlinkat(cs->dfd, CTL_SOCKET_NAME, 0);
		cs->bound = 0;
	}
	pthread_mutex_lock(&cs->mu);
	/* the command in flight finishes and is answered; the next read sees the end */
	for (struct conn *c = cs->conns; c; c = c->next)
		if (!c->waiter && c->fd >= 0)
			shutdown(c->fd, SHUT_RD);
	for (;;) {
		int busy = 0;

		for (struct conn *c = cs->conns; c; c = c->next)
			busy |= !c->waiter && !c->done;
		if (!busy)
			break;
		pthread_cond_wait(&cs->cv, &cs->mu);
	}
	pthread_mutex_unlock(&cs->mu);
}

void ctlsock_free(struct ctlsock *cs, int close_rc)
{
	if (!cs)
		return;
	ctlsock_quiesce(cs);
	pthread_mutex_lock(&cs->mu);
	cs->closed = 1;
	cs->close_rc = close_rc;
	pthread_cond_broadcast(&cs->cv);
	while (cs->conns) {
		struct conn *c = cs->conns;

		cs->conns = c->next;
		pthread_mutex_unlock(&cs->mu);
		pthread_join(c->th, NULL);
		free(c);
		pthread_mutex_lock(&cs->mu);
	}
	pthread_mutex_unlock(&cs->mu);
	if (cs->wake[0] >= 0)
		close(cs->wake[0]);
	if (cs->wake[1] >= 0)
		close(cs->wake[1]);
	if (cs->dfd >= 0)
		close(cs->dfd);
	pthread_cond_destroy(&cs->cv);
	pthread_mutex_destroy(&cs->mu);
	free(cs->dir);
	free(cs->mountpoint);
	free(cs);
}
