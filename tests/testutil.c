/* testutil.c — helpers every test suite uses. */
#include "testutil.h"

#include <check.h>

#include "kv.h"
#include "report.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t seed_value;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	const char *env = getenv("KV_SEED");
	struct timespec ts;
	char *end;

	if (env && *env) {
		errno = 0;
		seed_value = strtoull(env, &end, 0);
		if (!errno && !*end)
			goto out;
		fprintf(stderr, "KV_SEED=%s is not a number; using the clock\n", env);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	seed_value = (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec ^
		     ((uint64_t)getpid() << 32);
	seed_value &= 0xffffffffffffull; /* short enough to retype */
out:
	fprintf(stderr, "seed: %" PRIu64 "\n", seed_value);
}

uint64_t tu_seed(void)
{
	pthread_once(&seed_once, seed_init);
	return seed_value;
}

uint64_t tu_rand(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

int tu_tmpdir(char *buf, size_t len)
{
	const char *base = getenv("TMPDIR");
	int n;

	if (!base || !*base)
		base = "/tmp";
	n = snprintf(buf, len, "%s/kvfs-test.XXXXXX", base);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return mkdtemp(buf) ? 0 : -errno;
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		return rmdir(path) ? -1 : 0;
	return unlink(path) ? -1 : 0;
}

int tu_rmrf(const char *path)
{
	/* FTW_DEPTH: children before their directory; FTW_PHYS: never follow a symlink out. */
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) == 0)
		return 0;
	return errno == ENOENT ? 0 : -errno;
}

int tu_read_file(const char *path, char **data, size_t *len)
{
	size_t n = 0, cap = 4096;
	char *buf = malloc(cap);
	int fd = -1, rc = 0;

	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t got;

		if (cap - n < 2) {
			char *b = realloc(buf, cap * 2);

			if (!b) {
				rc = -ENOMEM;
				goto out;
			}
			buf = b;
			cap *= 2;
		}
		got = read(fd, buf + n, cap - n - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	*data = buf;
	buf = NULL;
	if (len)
		*len = n;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int tu_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc;

	if (fd < 0)
		return -errno;
	rc = tu_write_all(fd, data, len);
	if (close(fd) && !rc)
		rc = -errno;
	return rc;
}

/* ---- child processes --------------------------------------------------------------------- */

/* SIGPIPE raised by our writes to a pipe whose reader is gone is thread-directed: blocking it
 * in this thread turns it into EPIPE; a pending one is consumed before unblocking. */
struct nopipe {
	sigset_t old;
	bool was_pending;
};

static void nopipe_begin(struct nopipe *np)
{
	sigset_t set, pending;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	np->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &np->old);
}

static void nopipe_end(struct nopipe *np)
{
	sigset_t set, pending;
	struct timespec zero = { 0, 0 };

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	if (!np->was_pending && sigismember(&pending, SIGPIPE)) {
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &np->old, NULL);
}

int tu_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	struct nopipe np;
	int rc = 0;

	nopipe_begin(&np);
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	nopipe_end(&np);
	return rc;
}

/* In the child: move fd onto target (dup2 clears O_CLOEXEC on the copy). */
static void child_dup(int fd, int target)
{
	if (fd != target && dup2(fd, target) < 0)
		_exit(127);
}

/* Forks argv with its stdin, stdout, stderr on the given fds (-1: inherit ours). An exec
 * failure comes back through a close-on-exec pipe as -errno instead of as exit status 127. */
static int start(const char *const argv[], int in, int out, int err, pid_t *pid_out)
{
	int report[2], child_errno = 0, rc = 0;
	ssize_t n;
	pid_t pid;

	if (!argv || !argv[0])
		return -EINVAL;
	if (pipe2(report, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		close(report[0]);
		close(report[1]);
		return rc;
	}
	if (pid == 0) {
		if (in >= 0)
			child_dup(in, 0);
		if (out >= 0)
			child_dup(out, 1);
		if (err >= 0)
			child_dup(err, 2);
		execvp(argv[0], (char *const *)argv);
		child_errno = errno;
		n = write(report[1], &child_errno, sizeof(child_errno));
		(void)n;
		_exit(127);
	}
	close(report[1]);
	do
		n = read(report[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return -child_errno;
	}
	*pid_out = pid;
	return 0;
}

static void close_fds(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

struct sink {
	char *buf;
	size_t len, cap;
};

/* Reads what is available from fd into s; 1 at end of file, 0 for more later, -errno. */
static int sink_read(int fd, struct sink *s)
{
	ssize_t n;

	if (s->cap - s->len < 4096) {
		size_t ncap = s->cap ? s->cap * 2 : 8192;
		char *b = realloc(s->buf, ncap);

		if (!b)
			return -ENOMEM;
		s->buf = b;
		s->cap = ncap;
	}
	n = read(fd, s->buf + s->len, s->cap - s->len - 1);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	s->len += (size_t)n;
	s->buf[s->len] = '\0';
	return n == 0;
}

/* Feeds the child's stdin and drains its stdout and stderr together, so that neither side
 * blocks on a full pipe. */
static int pump(int *in, int out, int err, const char *text, struct sink *so, struct sink *se)
{
	size_t left = text ? strlen(text) : 0;
	bool out_open = true, err_open = true;
	struct nopipe np;
	int rc = 0;

	nopipe_begin(&np);
	if (!left)
		close_fds(in, 1);
	while (!rc && (out_open || err_open || *in >= 0)) {
		struct pollfd p[3] = {
			{ .fd = out_open ? out : -1, .events = POLLIN },
			{ .fd = err_open ? err : -1, .events = POLLIN },
			{ .fd = *in, .events = POLLOUT },
		};

		if (poll(p, 3, -1) < 0) {
			rc = errno == EINTR ? 0 : -errno;
			continue;
		}
		if (p[0].revents) {
			rc = sink_read(out, so);
			out_open = rc == 0;
			rc = rc < 0 ? rc : 0;
		}
		if (!rc && p[1].revents) {
			rc = sink_read(err, se);
			err_open = rc == 0;
			rc = rc < 0 ? rc : 0;
		}
		if (!rc && p[2].revents) {
			ssize_t n = write(*in, text, left);

			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				/* The child stopped reading (EPIPE): not our error. */
				close_fds(in, 1);
			} else if (n > 0) {
				text += n;
				left -= (size_t)n;
				if (!left)
					close_fds(in, 1);
			}
		}
	}
	nopipe_end(&np);
	return rc;
}

int tu_run(const char *const argv[], const char *stdin_text, char **out, char **err,
	   int *status)
{
	/* [0] child's stdin, [1] ours; [2] ours, [3] child's stdout; [4] ours, [5] child's stderr */
	int p[6] = { -1, -1, -1, -1, -1, -1 };
	struct sink so = { 0 }, se = { 0 };
	pid_t pid = -1;
	int st = 0, rc;

	if (pipe2(p, O_CLOEXEC) < 0 || pipe2(p + 2, O_CLOEXEC) < 0 || pipe2(p + 4, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	rc = start(argv, p[0], p[3], p[5], &pid);
	close_fds(&p[0], 1);
	close_fds(&p[3], 1);
	close_fds(&p[5], 1);
	if (rc)
		goto out;
	fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
	rc = pump(&p[1], p[2], p[4], stdin_text, &so, &se);
	close_fds(p, 6);
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			rc = rc ? rc : -errno;
			break;
		}
	}
	if (rc)
		goto out;
	if (status)
		*status = st;
	if (out) {
		*out = so.buf ? so.buf : strdup("");
		so.buf = NULL;
	}
	if (err) {
		*err = se.buf ? se.buf : strdup("");
		se.buf = NULL;
	}
	if ((out && !*out) || (err && !*err))
		rc = -ENOMEM;
out:
	close_fds(p, 6);
	free(so.buf);
	free(se.buf);
	return rc;
}

int tu_spawn(const char *const argv[], int *in_fd, int *out_fd, pid_t *pid)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	int rc;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	rc = start(argv, in[0], out[1], -1, pid);
	if (rc)
		goto fail;
	close(in[0]);
	close(out[1]);
	*in_fd = in[1];
	*out_fd = out[0];
	return 0;
fail:
	close_fds(in, 2);
	close_fds(out, 2);
	return rc;
}

uint64_t tu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The kernel's range for the local ports of outgoing connections: a port in it, free when
 * picked, can be taken by any process's connect() before the test's node binds it. */
static void ephemeral_range(unsigned *low, unsigned *high)
{
	char *text = NULL;
	*low = 32768;
	*high = 60999;
	if (tu_read_file("/proc/sys/net/ipv4/ip_local_port_range", &text, NULL) == 0 &&
	    sscanf(text, "%u %u", low, high) != 2) {
		*low = 32768;
		*high = 60999;
	}
	free(text);
}

int tu_free_port(unsigned *port)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static unsigned next; /* this process's next candidate: no port is handed out twice */
	unsigned low, high, from = 10000, to;
	int rc = -EADDRINUSE;

	ephemeral_range(&low, &high);
	/* below the ephemeral range where it leaves room (the default: 10000..32767), else above */
	if (low >= from + 1024) {
		to = low;
	} else {
		from = high + 1;
		to = 65536;
	}
	if (to <= from + 64)
		return -EADDRNOTAVAIL;
	pthread_mutex_lock(&mu);
	if (!next) /* processes running side by side start far apart */
		next = from + (unsigned)(((uint64_t)getpid() * 7919u) % (to - from));
	for (unsigned tries = 0; tries < to - from && rc; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		unsigned p = next;
		int fd;

		next = next + 1 < to ? next + 1 : from;
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sa.sin_port = htons((uint16_t)p);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			rc = -errno;
			break;
		}
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			*port = p;
			rc = 0;
		} else if (errno != EADDRINUSE && errno != EACCES) {
			rc = -errno;
			close(fd);
			break;
		}
		close(fd);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

unsigned tu_port(void)
{
	unsigned port = 0;
	int rc = tu_free_port(&port);

	ck_assert_msg(rc == 0, "no free port: %s", strerror(-rc));
	return port;
}

int tu_read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	int64_t deadline = (int64_t)tu_now_ms() + timeout_ms;
	size_t n = 0;

	if (len == 0)
		return -EOVERFLOW;
	/* A byte at a time: nothing past the line is consumed, so the next call starts clean. */
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int64_t left = deadline - (int64_t)tu_now_ms();
		ssize_t got;
		char c;
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		got = read(fd, &c, 1);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			return -errno;
		if (got == 0 || c == '\n') {
			if (got == 0 && n == 0)
				return -ENODATA;
			buf[n] = '\0';
			return n > INT_MAX ? -EOVERFLOW : (int)n;
		}
		if (n + 1 >= len)
			return -EOVERFLOW;
		buf[n++] = c;
	}
}

int tu_kill(pid_t pid, int *status)
{
	int st;

	if (kill(pid, SIGKILL) < 0 && errno != ESRCH)
		return -errno;
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (status)
		*status = st;
	return 0;
}

static _Thread_local char report_text[8192];

int tu_run_suite(struct Suite *su)
{
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

static void report_append(void *arg, const char *text)
{
	size_t n = strlen(report_text);
	(void)arg;
	snprintf(report_text + n, sizeof(report_text) - n, "%s%s", n ? "\n" : "", text);
}

const char *tu_report(const struct kv_report *r)
{
	report_text[0] = '\0';
	if (r->problem != KV_PROBLEM_NONE)
		report_failure(r, "DIR", 0, NULL, report_text, sizeof(report_text));
	report_notes(r, "DIR", report_append, NULL);
	return report_text;
}
