/* appendguard.h — a failed append of raft's own log never reaches libraft 0.15.
 *
 * libraft 0.15 does not recover from an append its backend reports failed (a write of the log
 * segment that fails with EIO, io_submit refused): a leader double-frees the entries' buffers
 * (a crash) or, after a transient failure, never commits again and never steps down, so the
 * whole group waits (canonical/raft #466/#470, fixed after 0.15; a15 FINDINGS 1b and 2). The
 * guard wraps a backend's append: a completion with an error other than RAFT_CANCELED (the
 * backend closing) goes to `failed` instead of raft. A node is crash-stop (REPLICATION.md 5):
 * repl.c's `failed` logs the failure and ends the process, and the group elects a leader whose
 * disk works; raft's log on disk holds only what was written, which the restart reads.
 *
 * Threads: the wrapped append runs on raft's loop thread, which appendguard_bind names (the
 * backend's verbs carry raft's own user data, so the guard is found per thread). */
#ifndef KVFS_REPL_APPENDGUARD_H
#define KVFS_REPL_APPENDGUARD_H

struct raft_io;
struct appendguard;

/* Wraps io->append. failed(arg, status) is called on the loop thread with raft's error code;
 * if it returns, raft gets the failure after all. 0 or -ENOMEM. */
int appendguard_new(struct appendguard **out, struct raft_io *io,
		    void (*failed)(void *arg, int status), void *arg);
/* This thread runs g's io (the loop thread, before raft starts). */
void appendguard_bind(struct appendguard *g);
/* After the io is closed. */
void appendguard_free(struct appendguard *g);
#endif
