/* control.h — the control file MOUNTPOINT/.kvfs: reading it gives the store's statistics as
 * "name: value" lines; writing a command to it ("flush", "snapshot") runs the command before
 * the write returns, and a failed command is a failed write. */
#ifndef KVFS_FS_CONTROL_H
#define KVFS_FS_CONTROL_H
#include <stddef.h>
#include <sys/stat.h>
#include <time.h>

#include "kv.h"

/* Its attributes: a regular file 0644 of the daemon's user, dated at the mount. Size 0: it is
 * opened with direct I/O, so reads return what is generated, whatever the size says. */
void kvfs_control_stat(uid_t uid, gid_t gid, const struct timespec *mount_time, struct stat *st);
/* The statistics text, malloc'd (*len bytes, NUL-terminated): rendered once per open so that
 * a reader sees one consistent set of figures. */
int kvfs_control_render(struct kv *kv, char **text, size_t *len);
/* Lines a program adds after the store's (the daemon's pid, mount point, ...): fn returns 0
 * with malloc'd text of whole lines, or -errno. One per process; fn NULL removes it. It is
 * called from the threads that render, until it is removed. */
typedef int (*kvfs_control_extra_fn)(void *arg, char **text, size_t *len);
void kvfs_control_set_extra(kvfs_control_extra_fn fn, void *arg);
/* Runs the commands in buf: one per line, surrounding blanks ignored, at least one. 0 once each
 * has finished (a flush or snapshot is durable); -EINVAL for an unknown or missing command
 * (commands before it have run); else the engine's error of the command that failed. */
int kvfs_control_command(struct kv *kv, const char *buf, size_t len);
#endif
