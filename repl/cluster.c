/* cluster.c — reading the cluster file (cluster.h). */
#include "cluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLUSTER_FILE_MAX (64u << 10) /* far more than CLUSTER_MAX_NODES lines need */

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* A decimal number of at most max, the whole of [s, s + n). */
static int parse_number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* One node line, without comment or surrounding blanks: "ID HOST:PORT". */
static int parse_node(struct cluster_node *nd, const char *s, size_t n, unsigned line, char *err,
		      size_t errlen)
{
	size_t i = 0, id_end, addr_at, addr_end;
	const char *colon;
	uint64_t port;

	while (i < n && !is_space(s[i]))
		i++;
	id_end = i;
	while (i < n && is_space(s[i]))
		i++;
	addr_at = i;
	while (i < n && !is_space(s[i]))
		i++;
	addr_end = i;
	while (i < n && is_space(s[i]))
		i++;
	if (addr_at == addr_end || i != n)
		return fail(err, errlen, "line %u: expected 'ID HOST:PORT', got '%.*s'", line,
			    (int)(n > 60 ? 60 : n), s);
	if (parse_number(s, id_end, UINT64_MAX >> 1, &nd->id) || nd->id == 0)
		return fail(err, errlen, "line %u: node ID '%.*s' is not a whole number from 1 to "
			    "2^63", line, (int)(id_end > 24 ? 24 : id_end), s);
	if (addr_end - addr_at >= CLUSTER_ADDR_MAX)
		return fail(err, errlen, "line %u: address '%.*s' is too long for IPV4:PORT", line,
			    (int)(addr_end - addr_at > 60 ? 60 : addr_end - addr_at), s + addr_at);
	memcpy(nd->addr, s + addr_at, addr_end - addr_at);
	nd->addr[addr_end - addr_at] = '\0';
	colon = strrchr(nd->addr, ':');
	if (!colon)
		return fail(err, errlen, "line %u: address '%s' has no ':PORT'", line, nd->addr);
	if ((size_t)(colon - nd->addr) >= sizeof(nd->host))
		return fail(err, errlen, "line %u: host in '%s' is not an IPv4 address (such as "
			    "127.0.0.1)", line, nd->addr);
	memcpy(nd->host, nd->addr, (size_t)(colon - nd->addr));
	nd->host[colon - nd->addr] = '\0';
	struct in_addr in;
	if (inet_pton(AF_INET, nd->host, &in) != 1)
		return fail(err, errlen, "line %u: host '%s' is not an IPv4 address (such as "
			    "127.0.0.1; names and IPv6 are not supported)", line, nd->host);
	if (parse_number(colon + 1, strlen(colon + 1), 65535, &port) || port == 0)
		return fail(err, errlen, "line %u: port '%s' is not a number from 1 to 65535", line,
			    colon + 1);
	nd->port = (unsigned)port;
	return 0;
}

int cluster_parse(struct cluster *c, const char *text, size_t len, char *err, size_t errlen)
{
	unsigned line = 0;
	size_t at = 0;

	memset(c, 0, sizeof(*c));
	while (at < len) {
		const char *s = text + at, *nl = memchr(s, '\n', len - at);
		size_t n = nl ? (size_t)(nl - s) : len - at;
		const char *hash = memchr(s, '#', n);
		struct cluster_node nd;
		int rc;

		line++;
		at += n + (nl != NULL);
		if (hash)
			n = (size_t)(hash - s);
		while (n && is_space(s[0]))
			s++, n--;
		while (n && is_space(s[n - 1]))
			n--;
		if (n == 0)
			continue;
		if (memchr(s, '\0', n))
			return fail(err, errlen, "line %u: a NUL byte (is this a cluster file?)", line);
		rc = parse_node(&nd, s, n, line, err, errlen);
		if (rc)
			return rc;
		for (unsigned i = 0; i < c->n; i++) {
			if (c->nodes[i].id == nd.id)
				return fail(err, errlen, "line %u: node ID %llu appears twice", line,
					    (unsigned long long)nd.id);
			if (!strcmp(c->nodes[i].addr, nd.addr))
				return fail(err, errlen, "line %u: address %s appears twice (nodes %llu "
					    "and %llu)", line, nd.addr,
					    (unsigned long long)c->nodes[i].id,
					    (unsigned long long)nd.id);
		}
		if (c->n == CLUSTER_MAX_NODES)
			return fail(err, errlen, "line %u: more than %u nodes", line,
				    CLUSTER_MAX_NODES);
		c->nodes[c->n++] = nd;
	}
	if (c->n == 0)
		return fail(err, errlen, "no nodes (one line 'ID HOST:PORT' per node)");
	return 0;
}

int cluster_load(struct cluster *c, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t have = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s", strerror(-rc));
		return rc;
	}
	buf = malloc(CLUSTER_FILE_MAX + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + have, CLUSTER_FILE_MAX + 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		if (have > CLUSTER_FILE_MAX) {
			rc = fail(err, errlen, "larger than %u KiB: not a cluster file",
				  CLUSTER_FILE_MAX >> 10);
			goto out;
		}
	}
	rc = cluster_parse(c, buf, have, err, errlen);
out:
	if (rc && rc != -EINVAL)
		snprintf(err, errlen, "%s", strerror(-rc));
	free(buf);
	close(fd);
	return rc;
}

const struct cluster_node *cluster_find(const struct cluster *c, uint64_t id)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->nodes[i].id == id)
			return &c->nodes[i];
	return NULL;
}
