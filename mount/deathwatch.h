/* deathwatch.h — a dying daemon must not leave its mount hung.
 *
 * When the daemon dies (SIGKILL, a crash, the OOM killer) the kernel ends its FUSE connection
 * once the last thread has closed /dev/fuse. A thread stuck in the kernel on the mount itself
 * never closes it: the notifier waiting for a directory's lock (fs/notify.c) that a request,
 * waiting for an answer that will never come, holds. The process then stays a zombie for good,
 * holding the store's LOCK, and every process using the mount hangs unkillably.
 *
 * The watch is a small child process that does nothing until the daemon's main thread dies
 * (PR_SET_PDEATHSIG), then aborts the mount's connection — fusectl's abort file when fusectl is
 * mounted (any user who owns the mount), else a forced unmount (root: FUSE aborts the connection
 * on MNT_FORCE) — which ends every request, so the stuck thread returns and the daemon exits.
 * The mount then answers ENOTCONN, as after any daemon death, until it is unmounted. */
#ifndef KVFS_DEATHWATCH_H
#define KVFS_DEATHWATCH_H

#include <sys/types.h>

/* Starts the watch over the FUSE mount at mountpoint (already mounted). Call it from the main
 * thread (the death watched is that thread's). *child is the watch's pid. 0 or -errno. */
int deathwatch_start(const char *mountpoint, pid_t *child);
/* The daemon is exiting on purpose: ends the watch and reaps it. 0 or -errno. */
int deathwatch_stop(pid_t child);
#endif
