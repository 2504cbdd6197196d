/* ctlproto.c — frames on the daemon's control socket (ctlproto.h). */
#include "ctlproto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct wire_hdr {
	uint8_t type, flags;
	uint16_t nparts;
	uint32_t zero;
	uint64_t len;
};
_Static_assert(sizeof(struct wire_hdr) == 16, "a frame header is 16 bytes");

int ctl_socket_path(const char *dir, char *buf, size_t len)
{
	struct sockaddr_un sa;
	int n = snprintf(buf, len, "%s/" CTL_SOCKET_NAME, dir);

	if (n < 0 || (size_t)n >= len || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static int send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
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

/* 0, -ECONNRESET when the stream ends before the first byte (clean), -EPROTO when it ends
 * inside, or -errno. */
static int recv_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, p + got, len - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return got ? -EPROTO : -ECONNRESET;
		got += (size_t)n;
	}
	return 0;
}

int ctl_send(int fd, uint8_t type, uint8_t flags, const char *const *parts, const size_t *lens,
	     unsigned n, const char *text, size_t len)
{
	struct wire_hdr h = { .type = type, .flags = flags, .nparts = (uint16_t)n };
	int rc;

	if (parts) {
		h.len = 0;
		for (unsigned i = 0; i < n; i++)
			h.len += 4 + lens[i];
	} else {
		h.len = len;
	}
	rc = send_all(fd, &h, sizeof(h));
	for (unsigned i = 0; parts && !rc && i < n; i++) {
		uint32_t l = (uint32_t)lens[i];

		rc = send_all(fd, &l, sizeof(l));
		if (!rc)
			rc = send_all(fd, parts[i], lens[i]);
	}
	if (!parts && !rc && len)
		rc = send_all(fd, text, len);
	return rc;
}

int ctl_recv(int fd, struct ctl_frame *f)
{
	struct wire_hdr h;
	int rc;

	memset(f, 0, sizeof(*f));
	rc = recv_all(fd, &h, sizeof(h));
	if (rc)
		return rc;
	if (h.zero || h.len > CTL_MAX_PAYLOAD)
		return -EPROTO;
	f->type = h.type;
	f->flags = h.flags;
	f->nparts = h.nparts;
	f->len = h.len;
	if (!h.len)
		return 0;
	f->payload = malloc((size_t)h.len + 1);
	if (!f->payload)
		return -ENOMEM;
	rc = recv_all(fd, f->payload, (size_t)h.len);
	if (rc) {
		free(f->payload);
		f->payload = NULL;
		return rc == -ECONNRESET ? -EPROTO : rc;
	}
	f->payload[h.len] = '\0';
	return 0;
}

int ctl_part(const struct ctl_frame *f, unsigned i, char **p, size_t *len)
{
	uint64_t off = 0;

	if (i >= f->nparts)
		return -EPROTO;
	for (unsigned k = 0;; k++) {
		uint32_t l;

		if (f->len - off < 4)
			return -EPROTO;
		memcpy(&l, f->payload + off, 4);
		off += 4;
		if (f->len - off < l)
			return -EPROTO;
		if (k == i) {
			*p = f->payload + off;
			*len = l;
			return 0;
		}
		off += l;
	}
}

/* "name: value" of the hello's text into buf (empty when absent). */
static void hello_field(const char *text, const char *name, char *buf, size_t len)
{
	size_t n = strlen(name);

	buf[0] = '\0';
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, name, n) == 0 && l[n] == ':' && l[n + 1] == ' ') {
			size_t v = strcspn(l + n + 2, "\n");

			snprintf(buf, len, "%.*s", (int)v, l + n + 2);
			return;
		}
	}
}

int ctl_connect(const char *dir, int *fdp, struct ctl_hello *hello, char *why, size_t whylen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl_frame f = { 0 };
	char pid[32];
	int fd, dfd = -1, rc;

	*fdp = -1;
	why[0] = '\0';
	if (ctl_socket_path(dir, sa.sun_path, sizeof(sa.sun_path))) {
		/* a long DATADIR: the socket is reached through the directory's descriptor */
		dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0)
			return -errno;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/" CTL_SOCKET_NAME, dfd);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		if (rc == -EACCES || rc == -EPERM)
			snprintf(why, whylen, "%s/" CTL_SOCKET_NAME ": %s (it admits only the daemon's "
				 "user and root)", dir, strerror(-rc));
		goto out;
	}
	rc = ctl_recv(fd, &f);
	if (rc == -ECONNRESET) {
		rc = -ECONNREFUSED; /* a daemon shutting down */
		goto out;
	}
	if (rc)
		goto out;
	if (f.type == CTL_REFUSED) {
		snprintf(why, whylen, "%s", f.payload ? f.payload : "refused");
		rc = -EACCES;
		goto out;
	}
	if (f.type != CTL_HELLO || !f.payload ||
	    strncmp(f.payload, CTL_VERSION_LINE "\n", strlen(CTL_VERSION_LINE) + 1) != 0) {
		rc = -EPROTO;
		goto out;
	}
	memset(hello, 0, sizeof(*hello));
	hello_field(f.payload, "pid", pid, sizeof(pid));
	hello->pid = strtol(pid, NULL, 10);
	hello_field(f.payload, "mountpoint", hello->mountpoint, sizeof(hello->mountpoint));
	hello_field(f.payload, "datadir", hello->datadir, sizeof(hello->datadir));
	*fdp = fd;
	fd = -1;
	rc = 0;
out:
	free(f.payload);
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}
