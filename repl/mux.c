/* mux.c — one port for raft's peers, store transfers and client sessions (mux.h).
 *
 * Raft's handshake (its uv_tcp transport, a wire format every raft 0.x peer speaks):
 *   protocol u64 = 1, server id u64, address length u64 (a multiple of 8), the address
 *   NUL-terminated and padded to that length; all little-endian. */
#include "mux.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "le.h"

#define RAFT_HANDSHAKE_PROTOCOL 1
#define MAX_ADDRESS 256 /* longer than any HOST:PORT; a bigger one is no peer of ours */

struct incoming;

struct mux {
	struct raft_uv_transport inner; /* raft's TCP transport, for connecting out */
	struct raft_uv_transport *outer;
	uv_loop_t *loop;
	uv_tcp_t listener;
	int listener_open;
	raft_uv_accept_cb accept_cb;
	struct mux_handlers h;
	raft_id id;
	const char *address;
	struct incoming *pending; /* connections still sending their first bytes */
	unsigned aborting;        /* handles of dropped connections not closed yet */
	int closing, inner_closed;
	raft_uv_transport_close_cb close_cb;
};

/* A connection whose first bytes are being read. */
struct incoming {
	struct mux *m;
	uv_tcp_t *tcp; /* malloc'd with raft_malloc: raft frees it once it owns the stream */
	uint8_t pre[24];
	char *address;
	size_t want, got; /* bytes of the current stage */
	int stage;        /* 0 magic, 1 rest of raft's preamble, 2 raft's address */
	int linked;       /* on m->pending */
	struct incoming *prev, *next;
};

static void unlink_incoming(struct incoming *in)
{
	struct mux *m = in->m;
	if (!in->linked)
		return;
	in->linked = 0;
	if (in->prev)
		in->prev->next = in->next;
	else
		m->pending = in->next;
	if (in->next)
		in->next->prev = in->prev;
	in->prev = in->next = NULL;
}

static void maybe_closed(struct mux *m)
{
	if (m->closing && m->inner_closed && !m->listener_open && !m->pending && !m->aborting &&
	    m->close_cb) {
		raft_uv_transport_close_cb cb = m->close_cb;
		m->close_cb = NULL;
		cb(m->outer);
	}
}

static void incoming_closed(uv_handle_t *h)
{
	struct incoming *in = h->data;
	struct mux *m = in->m;
	raft_free(in->tcp);
	free(in->address);
	free(in);
	m->aborting--;
	maybe_closed(m);
}

/* Drop a connection that has not said who it is (or said something else). */
static void incoming_abort(struct incoming *in)
{
	unlink_incoming(in);
	uv_read_stop((uv_stream_t *)in->tcp);
	in->m->aborting++;
	uv_close((uv_handle_t *)in->tcp, incoming_closed); /* which frees in */
}

/* Hand a connection of ours to its handler as a blocking descriptor of its own. */
static void incoming_handoff(struct incoming *in, mux_conn_fn fn)
{
	struct mux *m = in->m;
	uv_os_fd_t fd;
	int dup_fd = -1;

	if (fn && uv_fileno((uv_handle_t *)in->tcp, &fd) == 0) {
		dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (dup_fd >= 0) {
			int fl = fcntl(dup_fd, F_GETFL);
			if (fl < 0 || fcntl(dup_fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
				close(dup_fd);
				dup_fd = -1;
			}
		}
	}
	incoming_abort(in); /* our handle goes; the duplicate keeps the connection */
	if (dup_fd >= 0)
		fn(m->h.arg, dup_fd);
}

static void alloc_exact(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct incoming *in = h->data;
	(void)suggested;
	/* exactly what this stage still needs: libuv must not read past the handshake */
	uint8_t *base = in->stage == 2 ? (uint8_t *)in->address : in->pre;
	buf->base = (char *)base + (in->stage == 1 ? MUX_MAGIC_LEN : 0) + in->got;
	buf->len = in->want - in->got;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct incoming *in = s->data;
	struct mux *m = in->m;
	(void)buf;

	if (n == 0)
		return;
	if (n < 0) {
		incoming_abort(in);
		return;
	}
	in->got += (size_t)n;
	if (in->got < in->want)
		return;
	switch (in->stage) {
	case 0:
		if (le_get64(in->pre) == RAFT_HANDSHAKE_PROTOCOL) {
			in->stage = 1;
			in->got = 0;
			in->want = 16;
			return;
		}
		uv_read_stop(s);
		if (!memcmp(in->pre, MUX_MAGIC_XFER, MUX_MAGIC_LEN))
			incoming_handoff(in, m->h.xfer);
		else if (!memcmp(in->pre, MUX_MAGIC_CLIENT, MUX_MAGIC_LEN))
			incoming_handoff(in, m->h.client);
		else
			incoming_abort(in);
		return;
	case 1: {
		uint64_t alen = le_get64(in->pre + 16);
		if (alen == 0 || alen > MAX_ADDRESS) {
			incoming_abort(in);
			return;
		}
		in->address = calloc(1, (size_t)alen + 1);
		if (!in->address) {
			incoming_abort(in);
			return;
		}
		in->stage = 2;
		in->got = 0;
		in->want = (size_t)alen;
		return;
	}
	default: {
		raft_id id = le_get64(in->pre + 8);
		uv_stream_t *stream = (uv_stream_t *)in->tcp;
		uv_read_stop(s);
		unlink_incoming(in);
		if (m->closing) {
			incoming_abort(in);
			return;
		}
		uv_tcp_nodelay(in->tcp, 1);
		m->accept_cb(m->outer, id, in->address, stream); /* raft owns the stream now */
		free(in->address);
		free(in);
		return;
	}
	}
}

static void listen_cb(uv_stream_t *server, int status)
{
	struct mux *m = server->data;
	struct incoming *in;

	if (status < 0 || m->closing)
		return;
	in = calloc(1, sizeof(*in));
	if (!in)
		return;
	in->tcp = raft_malloc(sizeof(*in->tcp));
	if (!in->tcp) {
		free(in);
		return;
	}
	in->m = m;
	in->want = MUX_MAGIC_LEN;
	uv_tcp_init(m->loop, in->tcp);
	in->tcp->data = in;
	in->next = m->pending;
	if (m->pending)
		m->pending->prev = in;
	m->pending = in;
	in->linked = 1;
	if (uv_accept(server, (uv_stream_t *)in->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)in->tcp, alloc_exact, read_cb) != 0)
		incoming_abort(in);
}

/* ---- the transport interface ------------------------------------------------------------------ */

static int mux_t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct mux *m = t->impl;
	int rc;

	m->id = id;
	m->address = address;
	rc = m->inner.init(&m->inner, id, address);
	if (rc) {
		snprintf(t->errmsg, sizeof(t->errmsg), "%s", m->inner.errmsg);
		return rc;
	}
	rc = uv_tcp_init(m->loop, &m->listener);
	if (rc)
		return RAFT_IOERR;
	m->listener.data = m;
	m->listener_open = 1;
	return 0;
}

static int mux_t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct mux *m = t->impl;
	struct sockaddr_in sa;
	char host[64];
	const char *colon = strrchr(m->address, ':');
	int rc;

	m->accept_cb = cb;
	if (!colon || (size_t)(colon - m->address) >= sizeof(host)) {
		snprintf(t->errmsg, sizeof(t->errmsg), "address %s is not HOST:PORT", m->address);
		return RAFT_INVALID;
	}
	memcpy(host, m->address, (size_t)(colon - m->address));
	host[colon - m->address] = '\0';
	rc = uv_ip4_addr(host, atoi(colon + 1), &sa);
	if (rc == 0)
		rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&m->listener, 128, listen_cb);
	if (rc) {
		snprintf(t->errmsg, sizeof(t->errmsg), "listening on %s: %s", m->address,
			 uv_strerror(rc));
		return RAFT_IOERR;
	}
	return 0;
}

/* An outgoing connection raft asked for, through raft's own transport. */
struct connect_wrap {
	struct raft_uv_connect req;    /* ours, to the inner transport */
	struct raft_uv_connect *outer; /* raft's */
};

static void connect_cb(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
	struct connect_wrap *w = req->data;
	struct raft_uv_connect *outer = w->outer;
	free(w);
	if (status == 0)
		uv_tcp_nodelay((uv_tcp_t *)stream, 1);
	outer->cb(outer, stream, status);
}

static int mux_t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
			 const char *address, raft_uv_connect_cb cb)
{
	struct mux *m = t->impl;
	struct connect_wrap *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return RAFT_NOMEM;
	req->cb = cb;
	w->outer = req;
	w->req.data = w;
	rc = m->inner.connect(&m->inner, &w->req, id, address, connect_cb);
	if (rc) {
		snprintf(t->errmsg, sizeof(t->errmsg), "%s", m->inner.errmsg);
		free(w);
	}
	return rc;
}

static void inner_closed(struct raft_uv_transport *inner)
{
	struct mux *m = inner->data;
	m->inner_closed = 1;
	maybe_closed(m);
}

static void listener_closed(uv_handle_t *h)
{
	struct mux *m = h->data;
	m->listener_open = 0;
	maybe_closed(m);
}

static void mux_t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct mux *m = t->impl;

	m->closing = 1;
	m->close_cb = cb;
	while (m->pending)
		incoming_abort(m->pending);
	if (m->listener_open)
		uv_close((uv_handle_t *)&m->listener, listener_closed);
	m->inner.close(&m->inner, inner_closed);
}

int mux_init(struct raft_uv_transport *t, uv_loop_t *loop, const struct mux_handlers *h)
{
	struct mux *m = calloc(1, sizeof(*m));
	int rc;

	if (!m)
		return RAFT_NOMEM;
	m->loop = loop;
	m->outer = t;
	m->h = *h;
	rc = raft_uv_tcp_init(&m->inner, loop);
	if (rc) {
		free(m);
		return rc;
	}
	m->inner.data = m;
	memset(t, 0, sizeof(*t));
	t->impl = m;
	t->init = mux_t_init;
	t->listen = mux_t_listen;
	t->connect = mux_t_connect;
	t->close = mux_t_close;
	return 0;
}

void mux_free(struct raft_uv_transport *t)
{
	struct mux *m = t->impl;
	if (!m)
		return;
	raft_uv_tcp_close(&m->inner);
	free(m);
	t->impl = NULL;
}
