/* opstats.h — how many of each FUSE operation the mount served and how long they took, for the
 * statistics (control.h renders them). Counted on the request path without a lock: each
 * operation adds to atomic counters of its own (relaxed: a render may see one operation's count
 * before its time, never a torn number).
 *
 * One set per process, like the daemon it describes (a process serves one mount); the lines are
 * shown once a mount has started (kvfs_opstats_start), so a kv_cli that opened the store itself
 * shows none. Thread safety: every function from any thread. */
#ifndef KVFS_FS_OPSTATS_H
#define KVFS_FS_OPSTATS_H
#include <stdint.h>

/* The operations counted; their names (kvfs_opstats_name) are the statistics' line names. */
enum kvfs_op {
	KVFS_OP_LOOKUP,
	KVFS_OP_FORGET,
	KVFS_OP_GETATTR,
	KVFS_OP_SETATTR,
	KVFS_OP_READLINK,
	KVFS_OP_MKNOD,
	KVFS_OP_MKDIR,
	KVFS_OP_UNLINK,
	KVFS_OP_RMDIR,
	KVFS_OP_SYMLINK,
	KVFS_OP_RENAME,
	KVFS_OP_LINK,
	KVFS_OP_OPEN,
	KVFS_OP_READ,
	KVFS_OP_WRITE,
	KVFS_OP_RELEASE,
	KVFS_OP_FSYNC,
	KVFS_OP_OPENDIR,
	KVFS_OP_READDIR,
	KVFS_OP_READDIRPLUS,
	KVFS_OP_RELEASEDIR,
	KVFS_OP_FSYNCDIR,
	KVFS_OP_STATFS,
	KVFS_OP_SETXATTR,
	KVFS_OP_GETXATTR,
	KVFS_OP_LISTXATTR,
	KVFS_OP_REMOVEXATTR,
	KVFS_OP_CREATE,
	KVFS_OP_FALLOCATE,
	KVFS_OP_N
};

/* What one operation's counters said at a moment. Latencies are the time the operation's
 * handler ran (every handler replies before it returns), in nanoseconds, of the operations
 * that have finished. */
struct kvfs_opstat {
	uint64_t count;
	uint64_t mean_ns;
	uint64_t p99_ns; /* upper bound of the power-of-two bucket the 99th percentile falls in */
	uint64_t max_ns;
};

/* A mount starts serving: from now on the statistics show the operations' lines. */
void kvfs_opstats_start(void);
/* 1 once a mount of this process has started serving. */
int kvfs_opstats_active(void);
/* Operation op starts: it is counted now, before it replies, so a program that saw the reply
 * finds it counted. Returns the clock reading for kvfs_opstats_done. */
uint64_t kvfs_opstats_begin(enum kvfs_op op);
/* Operation op, begun at t0 (kvfs_opstats_begin), has replied: its latency. */
void kvfs_opstats_done(enum kvfs_op op, uint64_t t0);
/* op's counters as of now. */
void kvfs_opstats_get(enum kvfs_op op, struct kvfs_opstat *out);
/* "lookup", "getattr", ...: the operation's name in the statistics (fuse_<name>_count, ...). */
const char *kvfs_opstats_name(enum kvfs_op op);
#endif
