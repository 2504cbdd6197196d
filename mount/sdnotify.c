/* sdnotify.c — sd_notify for the daemon (sdnotify.h). */
#include "sdnotify.h"

#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "report.h"

int sdn_ready(const char *mountpoint)
{
	int rc = sd_notifyf(0, "READY=1\nSTATUS=mounted at %s", mountpoint);

	return rc < 0 ? rc : 0;
}

int sdn_stopping(void)
{
	int rc = sd_notify(0, "STOPPING=1\nSTATUS=unmounting: flushing and closing the store");

	return rc < 0 ? rc : 0;
}

static void progress(void *arg, enum kv_work what, uint64_t done, uint64_t total, int end)
{
	char line[160];

	(void)arg; /* no state: each report stands alone */
	report_progress(what, done, total, line, sizeof(line));
	if (sd_notifyf(0, "STATUS=%s%s", line, end ? " (done)" : "") < 0) {
		/* dropped: see sdnotify.h */
	}
}

const struct kv_progress sdn_progress = { progress, NULL };
