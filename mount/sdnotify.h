/* sdnotify.h — telling systemd how the daemon is doing (sd_notify(3)), for a unit of
 * Type=notify: READY=1 once the mount is live, STOPPING=1 when it ends, STATUS= lines for the
 * recovery's progress. Without $NOTIFY_SOCKET (not run by systemd) each call does nothing and
 * returns 0. Each returns 0, or -errno when systemd could not be told. */
#ifndef KVFS_SDNOTIFY_H
#define KVFS_SDNOTIFY_H
#include <stdint.h>

#include "kv.h"

int sdn_ready(const char *mountpoint);
int sdn_stopping(void);
/* A kv_progress for kv_options: STATUS= lines ("recovery: 120 of 512 MiB"). The engine's
 * thread calls it, so a failure to tell systemd is dropped: a status line is a courtesy. */
extern const struct kv_progress sdn_progress;
#endif
