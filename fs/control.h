/* control.h — the control file's text: the store's statistics as "name: value" lines, and the
 * lines a program adds after them. The mount shows it as MOUNTPOINT/.kvfs (control.c) and kv_cli
 * answers STATS with it, so the two never disagree. No FUSE here: kv_cli links it alone. */
#ifndef KVFS_FS_CONTROL_H
#define KVFS_FS_CONTROL_H
#include <stddef.h>

#include "kv.h"

/* The statistics text, malloc'd (*len bytes, NUL-terminated): the store's lines (their names and
 * order are an interface: docs/CONTROL.md), then the extra ones. 0 or -errno. */
int kvfs_control_render(struct kv *kv, char **text, size_t *len);
/* Lines a program adds after the store's (the daemon's pid, mount point, ...): fn returns 0
 * with malloc'd text of whole lines, or -errno. One per process; fn NULL removes it. It is
 * called from the threads that render, until it is removed. */
typedef int (*kvfs_control_extra_fn)(void *arg, char **text, size_t *len);
void kvfs_control_set_extra(kvfs_control_extra_fn fn, void *arg);
#endif
