/* xfer.c — a copy of the store from one node to another (xfer.h). */
#include "xfer.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "fsm.h"
#include "futil.h"
#include "le.h"
#include "mux.h"

#define XFER_VERSION 1u
#define XFER_END 0x4558564bu /* "KVXE" */
#define XFER_WAIT 0xffffffffu /* answer status: still copying, another answer follows */
#define XFER_WAIT_MS 5000     /* how often the sender says so; well within XFER_IO_TIMEOUT_MS */
#define NAME_MAX_LEN 255u

/* Wait until fd is ready for events, at most XFER_IO_TIMEOUT_MS: 0, -ETIMEDOUT, -errno. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, XFER_IO_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		int rc = wait_fd(fd, POLLIN);
		if (rc)
			return rc;
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECONNRESET; /* the other side went away in the middle */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		int rc = wait_fd(fd, POLLOUT);
		if (rc)
			return rc;
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- the sender ------------------------------------------------------------------------------ */

static int send_answer(int fd, uint32_t status, uint32_t files, uint64_t index)
{
	uint8_t a[16];
	le_put32(a, status);
	le_put32(a + 4, files);
	le_put64(a + 8, index);
	return write_full(fd, a, sizeof(a));
}

/* One file of the copy: its header, then its bytes in checksummed chunks. */
static int send_file(int fd, const char *dir, const char *name, uint8_t *buf)
{
	char path[PATH_MAX];
	uint8_t head[2 + NAME_MAX_LEN + 8], ch[8];
	size_t nlen = strlen(name);
	struct stat st;
	uint64_t off = 0;
	int ffd, rc;

	if (nlen == 0 || nlen > NAME_MAX_LEN)
		return -ENAMETOOLONG;
	rc = futil_join(path, sizeof(path), dir, name);
	if (rc)
		return rc;
	ffd = open(path, O_RDONLY | O_CLOEXEC);
	if (ffd < 0)
		return -errno;
	if (fstat(ffd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	le_put16(head, (uint16_t)nlen);
	memcpy(head + 2, name, nlen);
	le_put64(head + 2 + nlen, (uint64_t)st.st_size);
	rc = write_full(fd, head, 2 + nlen + 8);
	while (rc == 0 && off < (uint64_t)st.st_size) {
		uint64_t left = (uint64_t)st.st_size - off;
		size_t n = left < XFER_CHUNK ? (size_t)left : XFER_CHUNK;
		ssize_t got = pread(ffd, buf, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = got < 0 ? -errno : -EIO; /* the copy shrank under us: it is ours alone */
			break;
		}
		le_put32(ch, (uint32_t)got);
		le_put32(ch + 4, crc32c(0, buf, (size_t)got));
		rc = write_full(fd, ch, sizeof(ch));
		if (rc == 0)
			rc = write_full(fd, buf, (size_t)got);
		off += (uint64_t)got;
	}
out:
	close(ffd);
	return rc;
}

static int send_copy(int fd, const char *dir, uint64_t index)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	uint8_t *buf = NULL, end[4];
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				rc = -ENOMEM;
				goto out;
			}
			names = nn;
		}
		names[n] = strdup(e->d_name);
		if (!names[n]) {
			rc = -ENOMEM;
			goto out;
		}
		n++;
	}
	buf = malloc(XFER_CHUNK);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = send_answer(fd, 0, (uint32_t)n, index);
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = send_file(fd, dir, names[i], buf);
	if (rc == 0) {
		le_put32(end, XFER_END);
		rc = write_full(fd, end, sizeof(end));
	}
out:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(buf);
	return rc;
}

/* kv_backup of a large store takes longer than the receiver waits without hearing anything:
 * the copy is made on a thread of its own while the sender tells the receiver to wait. */
struct copy_job {
	struct rfsm *f;
	uint64_t min_index, index;
	const char *dest;
	int rc, done;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static void *copy_main(void *arg)
{
	struct copy_job *j = arg;
	uint64_t index = 0;
	int rc = rfsm_copy(j->f, j->min_index, j->dest, &index);

	pthread_mutex_lock(&j->mu);
	j->index = index;
	j->rc = rc;
	j->done = 1;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* The copy, answering XFER_WAIT every XFER_WAIT_MS until it is made. A receiver that goes
 * away meanwhile does not stop the copy (it is joined), only the answers. */
static int make_copy(int fd, struct rfsm *f, uint64_t min_index, const char *dest,
		     uint64_t *index)
{
	struct copy_job j = { .f = f, .min_index = min_index, .dest = dest };
	pthread_condattr_t attr;
	pthread_t t;
	int rc = 0;

	pthread_mutex_init(&j.mu, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&j.cv, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&t, NULL, copy_main, &j) != 0) {
		rc = -EAGAIN;
		goto out;
	}
	pthread_mutex_lock(&j.mu);
	while (!j.done) {
		struct timespec at;
		clock_gettime(CLOCK_MONOTONIC, &at);
		at.tv_sec += XFER_WAIT_MS / 1000;
		if (pthread_cond_timedwait(&j.cv, &j.mu, &at) == ETIMEDOUT && !j.done && rc == 0) {
			pthread_mutex_unlock(&j.mu);
			rc = send_answer(fd, XFER_WAIT, 0, 0);
			pthread_mutex_lock(&j.mu);
		}
	}
	pthread_mutex_unlock(&j.mu);
	pthread_join(t, NULL);
	*index = j.index;
	if (rc == 0)
		rc = j.rc; /* else the receiver is gone: that is the error (the caller removes the copy) */
out:
	pthread_cond_destroy(&j.cv);
	pthread_mutex_destroy(&j.mu);
	return rc;
}

int xfer_serve(int fd, struct rfsm *f, const char *scratch_parent)
{
	char scratch[PATH_MAX];
	uint8_t req[24];
	uint64_t index = 0;
	int rc, arc;

	rc = read_full(fd, req, sizeof(req));
	if (rc)
		goto out;
	if (le_get32(req + 16) != XFER_VERSION) {
		rc = send_answer(fd, EPROTONOSUPPORT, 0, 0);
		goto out;
	}
	rc = futil_join(scratch, sizeof(scratch), scratch_parent, "xfer-XXXXXX");
	if (rc == 0 && !mkdtemp(scratch))
		rc = -errno;
	if (rc) {
		arc = send_answer(fd, (uint32_t)-rc, 0, 0);
		rc = rc ? rc : arc;
		goto out;
	}
	rc = make_copy(fd, f, le_get64(req + 8), scratch, &index);
	if (rc == -ESTALE || (rc && rc != -EPIPE && rc != -ECONNRESET && rc != -ETIMEDOUT)) {
		arc = send_answer(fd, (uint32_t)-rc, 0, index);
		if (arc == 0 && rc == -ESTALE)
			rc = 0; /* answered: it asked for more than this store holds */
	} else if (rc == 0) {
		rc = send_copy(fd, scratch, index);
	}
	arc = futil_rmtree(scratch);
	rc = rc ? rc : arc;
out:
	close(fd);
	return rc;
}

/* ---- the receiver ---------------------------------------------------------------------------- */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static int connect_to(const char *host, unsigned port, int *out)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd, rc = 0, one = 1;

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			goto out;
		}
		socklen_t len = sizeof(rc);
		rc = wait_fd(fd, POLLOUT);
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &len) < 0)
			rc = errno;
		if (rc > 0)
			rc = -rc;
		if (rc)
			goto out;
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
		rc = -errno;
		goto out;
	}
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		rc = -errno;
		goto out;
	}
out:
	if (rc)
		close(fd);
	else
		*out = fd;
	return rc;
}

/* A name a sender may give: one plain component. */
static int name_ok(const char *name, size_t len)
{
	if (len == 0 || (len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2)))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (name[i] == '/' || name[i] == '\0')
			return 0;
	return 1;
}

static int recv_file(int fd, const char *dest, uint8_t *buf, char *err, size_t errlen)
{
	char name[NAME_MAX_LEN + 1], path[PATH_MAX];
	uint8_t h[8];
	uint64_t size, off = 0;
	uint16_t nlen;
	int ffd, rc;

	rc = read_full(fd, h, 2);
	if (rc)
		return fail(err, errlen, rc, "reading a file header: %s", strerror(-rc));
	nlen = le_get16(h);
	if (nlen == 0 || nlen > NAME_MAX_LEN)
		return fail(err, errlen, -EPROTO, "a file name of %u bytes", nlen);
	rc = read_full(fd, name, nlen);
	if (rc == 0)
		rc = read_full(fd, h, 8);
	if (rc)
		return fail(err, errlen, rc, "reading a file header: %s", strerror(-rc));
	name[nlen] = '\0';
	if (!name_ok(name, nlen))
		return fail(err, errlen, -EPROTO, "a file name that is no plain name");
	size = le_get64(h);
	rc = futil_join(path, sizeof(path), dest, name);
	if (rc)
		return fail(err, errlen, rc, "%s: %s", name, strerror(-rc));
	ffd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (ffd < 0)
		return fail(err, errlen, -errno, "creating %s on this node: %s", path, strerror(errno));
	while (off < size) {
		uint32_t n, crc;
		rc = read_full(fd, h, 8);
		if (rc) {
			fail(err, errlen, rc, "receiving %s: %s", name, strerror(-rc));
			goto out;
		}
		n = le_get32(h);
		crc = le_get32(h + 4);
		if (n == 0 || n > XFER_CHUNK || n > size - off) {
			rc = fail(err, errlen, -EPROTO, "receiving %s: a chunk of %" PRIu32 " bytes at "
				  "offset %" PRIu64 " of %" PRIu64, name, n, off, size);
			goto out;
		}
		rc = read_full(fd, buf, n);
		if (rc) {
			fail(err, errlen, rc, "receiving %s: %s", name, strerror(-rc));
			goto out;
		}
		if (crc32c(0, buf, n) != crc) {
			rc = fail(err, errlen, -EBADMSG, "receiving %s: the chunk at offset %" PRIu64
				  " fails its checksum", name, off);
			goto out;
		}
		for (size_t done = 0; done < n;) {
			ssize_t w = pwrite(ffd, buf + done, n - done, (off_t)(off + done));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = fail(err, errlen, -errno, "writing %s on this node: %s", path,
					  strerror(errno));
				goto out;
			}
			done += (size_t)w;
		}
		off += n;
	}
	if (fsync(ffd) < 0)
		rc = fail(err, errlen, -errno, "syncing %s on this node: %s", path, strerror(errno));
out:
	if (close(ffd) < 0 && !rc)
		rc = fail(err, errlen, -errno, "closing %s on this node: %s", path, strerror(errno));
	return rc;
}

int xfer_fetch(const char *host, unsigned port, uint64_t self, uint64_t min_index,
	       const char *dest, uint64_t *index, char *err, size_t errlen)
{
	uint8_t req[MUX_MAGIC_LEN + 24], ans[16];
	uint8_t *buf = NULL;
	uint32_t status, files;
	int fd = -1, rc;

	err[0] = '\0';
	rc = connect_to(host, port, &fd);
	if (rc)
		return fail(err, errlen, rc, "connecting: %s", strerror(-rc));
	memcpy(req, MUX_MAGIC_XFER, MUX_MAGIC_LEN);
	le_put64(req + MUX_MAGIC_LEN, self);
	le_put64(req + MUX_MAGIC_LEN + 8, min_index);
	le_put32(req + MUX_MAGIC_LEN + 16, XFER_VERSION);
	le_put32(req + MUX_MAGIC_LEN + 20, 0);
	rc = write_full(fd, req, sizeof(req));
	do
		if (rc == 0)
			rc = read_full(fd, ans, sizeof(ans));
	while (rc == 0 && le_get32(ans) == XFER_WAIT); /* the sender is still copying */
	if (rc) {
		fail(err, errlen, rc, "asking for a copy: %s", strerror(-rc));
		goto out;
	}
	status = le_get32(ans);
	files = le_get32(ans + 4);
	*index = le_get64(ans + 8);
	if (status == ESTALE) {
		rc = fail(err, errlen, -ESTALE, "its store holds entries up to %" PRIu64 " only",
			  *index);
		goto out;
	}
	if (status) {
		rc = fail(err, errlen, status < 4096 ? -(int)status : -EPROTO,
			  "it could not make a copy: %s", strerror((int)status));
		goto out;
	}
	buf = malloc(XFER_CHUNK);
	if (!buf) {
		rc = fail(err, errlen, -ENOMEM, "%s", strerror(ENOMEM));
		goto out;
	}
	for (uint32_t i = 0; i < files && rc == 0; i++)
		rc = recv_file(fd, dest, buf, err, errlen);
	if (rc)
		goto out;
	rc = read_full(fd, ans, 4);
	if (rc == 0 && le_get32(ans) != XFER_END)
		rc = -EPROTO;
	if (rc) {
		fail(err, errlen, rc, "the end of the copy: %s", strerror(-rc));
		goto out;
	}
	rc = futil_sync_dir(dest);
	if (rc)
		fail(err, errlen, rc, "syncing %s on this node: %s", dest, strerror(-rc));
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}
