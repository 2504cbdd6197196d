/* ctlproto.h — the wire between a running kvfs daemon and the programs that reach its store:
 * kv_cli (commands, backup) and `kvfs --unmount` (wait for the close).
 *
 * The socket is DATADIR/kvfs.sock, a unix stream socket of mode 0600 that the daemon binds once
 * it holds the store's LOCK (so a socket file found by a daemon holding the LOCK is stale and is
 * replaced). Every message is a frame:
 *   type   u8    enum ctl_type
 *   flags  u8    per type (below)
 *   nparts u16   requests: the number of parts in the payload; replies: 0
 *   zero   u32
 *   len    u64   payload bytes that follow
 * A request's payload is nparts parts, each a u32 length then its bytes; a reply's payload is
 * text. Integers are in the host's byte order: both ends are on one machine.
 * On connect the daemon speaks first: CTL_HELLO ("kvfs-ctl 1" then "name: value" lines: pid,
 * mountpoint, datadir), or CTL_REFUSED with the reason, then it closes. */
#ifndef KVFS_CTLPROTO_H
#define KVFS_CTLPROTO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_SOCKET_NAME "kvfs.sock"
#define CTL_VERSION_LINE "kvfs-ctl 1"
/* The largest payload either end accepts: the longest valid command line and some slack. */
#define CTL_MAX_PAYLOAD ((uint64_t)(1ull << 30) + 8192)

enum ctl_type {
	/* requests */
	CTL_LINE = 'L',    /* one shell line (1 part); flags: CTL_F_RAW, CTL_F_OVERLONG */
	CTL_ARGS = 'A',    /* one-shot arguments, the command word first (n parts); CTL_F_RAW */
	CTL_BACKUP = 'B',  /* kv_backup into the absolute directory of part 1 */
	CTL_WAIT = 'W',    /* answer CTL_CLOSED once the daemon has closed the store */
	/* replies */
	CTL_HELLO = 'H',
	CTL_REFUSED = 'X',
	CTL_REPLY = 'R',   /* the reply's bytes, as the local shell would write them; flags: an
			    * enum kvcmd_result (for CTL_BACKUP: 0 done, 1 failed) */
	CTL_WAITING = 'w', /* CTL_WAIT registered: the close will be reported */
	CTL_CLOSED = 'C',  /* flags 0: the store closed cleanly; 1: the close failed (the reason) */
};

#define CTL_F_RAW 1
#define CTL_F_OVERLONG 2

struct ctl_frame {
	uint8_t type, flags;
	uint16_t nparts;
	uint64_t len;
	char *payload; /* malloc'd, len bytes and a NUL; NULL when len is 0 */
};

/* The socket's path for dir into buf: 0, or -ENAMETOOLONG when it does not fit a sockaddr_un
 * (then ctl_connect and the server reach it through /proc/self/fd; see ctlproto.c). */
int ctl_socket_path(const char *dir, char *buf, size_t len);

/* Sends one frame; parts (n of them) make a request's payload, or text (len bytes) a reply's
 * when parts is NULL. 0 or -errno (never SIGPIPE). */
int ctl_send(int fd, uint8_t type, uint8_t flags, const char *const *parts, const size_t *lens,
	     unsigned n, const char *text, size_t len);
/* Receives one frame into f (free f->payload). 0, -ECONNRESET at a clean end of the stream
 * before a frame, -EPROTO for a malformed one, or -errno. */
int ctl_recv(int fd, struct ctl_frame *f);
/* A request's part i (0-based) of f: 0 with *p, *len pointing into the payload, or -EPROTO. */
int ctl_part(const struct ctl_frame *f, unsigned i, char **p, size_t *len);

/* What the daemon said on connect. */
struct ctl_hello {
	long pid;
	char mountpoint[4096];
	char datadir[4096];
};

/* Connects to the daemon serving dir: 0 with *fd and hello; -ENOENT or -ECONNREFUSED when no
 * daemon answers there (none, or a stale socket); -EACCES when the socket refuses us, with the
 * daemon's reason (or the system's) in why; -EPROTO for something that is no kvfs daemon;
 * else -errno. */
int ctl_connect(const char *dir, int *fd, struct ctl_hello *hello, char *why, size_t whylen);
#endif
