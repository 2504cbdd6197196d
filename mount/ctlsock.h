/* ctlsock.h — the daemon's control socket: kv_cli reaching a mounted store (ctlproto.h has the
 * wire). Each connection gets a thread that answers kv_cli's protocol (kvcmd.h) from the
 * daemon's struct kv, so a command through the daemon answers exactly as it would on a store
 * kv_cli opened itself; backups run here while the mount's writers go on.
 *
 * Who may connect: the socket file is mode 0600 and every peer's credentials (SO_PEERCRED) are
 * checked: the daemon's own user and root only. A refused peer gets one line saying why.
 *
 * The statistics: ctlsock adds the daemon's lines (pid, mount point, uptime, per-command counts
 * and latencies) to the control file's text and to STATS, after the store's.
 *
 * Thread safety: start, quiesce and free from one thread (the daemon's main). */
#ifndef KVFS_CTLSOCK_H
#define KVFS_CTLSOCK_H
#include <stddef.h>

#include "kv.h"

struct ctlsock; /* opaque */

/* Called from a connection's thread after a command changed key (PUT, DEL that found it), so
 * the filesystem can drop what the kernel cached of it. */
typedef void (*ctlsock_change_fn)(void *arg, const void *key, size_t klen);

/* Binds DIR/kvfs.sock (replacing a stale one: the caller holds the store's LOCK, so no other
 * daemon can be serving it) and starts answering. mountpoint is what hello and the statistics
 * name. 0, or -errno with a one-line reason in err. */
int ctlsock_start(struct ctlsock **out, struct kv *kv, const char *dir, const char *mountpoint,
		  ctlsock_change_fn on_change, void *arg, char *err, size_t errlen);
/* Stops taking connections and commands: removes the socket file, ends every connection but
 * those waiting for the close (CTL_WAIT), once its command in flight is answered. After it no
 * thread of ours touches the store, so it may be closed. NULL: nothing. */
void ctlsock_quiesce(struct ctlsock *cs);
/* Tells the waiters how closing the store went (close_rc: kv_close's result, 0 or -errno),
 * ends them and frees everything. NULL: nothing. */
void ctlsock_free(struct ctlsock *cs, int close_rc);
#endif
