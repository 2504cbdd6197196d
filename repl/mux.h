/* mux.h — raft's TCP transport with more than one kind of caller on the node's one port.
 *
 * The cluster file gives each node one HOST:PORT. Raft's peers connect there, and so do nodes
 * fetching a copy of the store (xfer.h) and client sessions (kv_cli's line protocol). Every
 * connection starts by sending 8 bytes: raft's handshake starts with its protocol version 1 as a
 * little-endian u64; ours are the magics below. The listener reads exactly those 8 bytes (never
 * more), then hands a raft connection to raft with the rest of raft's handshake read, and any
 * other to a handler as a blocking descriptor positioned right after the magic.
 *
 * Outgoing raft connections are raft's own TCP transport (raft_uv_tcp), with TCP_NODELAY set
 * on them (raft writes small messages and waits for their answers). */
#ifndef KVFS_REPL_MUX_H
#define KVFS_REPL_MUX_H
#include <raft.h>
#include <raft/uv.h>

#define MUX_MAGIC_LEN 8
#define MUX_MAGIC_XFER "KVXFR01\n"   /* a node fetching a copy of the store */
#define MUX_MAGIC_CLIENT "KVCLI01\n" /* a client session: kv_cli's protocol, one line per command */

/* A connection of ours: fd is blocking, close-on-exec, and the handler's to close. Called on
 * the loop's thread: hand the work to another thread. */
typedef void (*mux_conn_fn)(void *arg, int fd);

struct mux_handlers {
	mux_conn_fn xfer;   /* NULL: such connections are closed */
	mux_conn_fn client; /* NULL: such connections are closed */
	void *arg;
};

/* Makes t a transport for raft_uv_init on loop. */
int mux_init(struct raft_uv_transport *t, uv_loop_t *loop, const struct mux_handlers *h);
/* Releases it, once raft has closed it (after raft_close's callback). */
void mux_free(struct raft_uv_transport *t);
#endif
