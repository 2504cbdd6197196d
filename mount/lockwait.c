/* lockwait.c — waiting for a closing daemon's LOCK (lockwait.h).
 *
 * The LOCK is a flock the kernel drops when the holder closes it or exits, and nothing tells a
 * waiter when: so the open is retried, every 20 ms at first and at most every 200 ms, until the
 * holder lets go, turns out not to be a closing daemon, or the bound passes. Who holds it is
 * told by the pid the engine writes into LOCK once its open succeeded and by that process's
 * name (/proc/PID/comm). */
#include "lockwait.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctlproto.h"

int lockwait_bound(unsigned *seconds, char *err, size_t errlen)
{
	const char *v = getenv(LOCKWAIT_ENV);
	char *end;
	unsigned long n;

	*seconds = LOCKWAIT_DEFAULT_S;
	if (!v)
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end || errno || n > LOCKWAIT_MAX_S) {
		snprintf(err, errlen, LOCKWAIT_ENV "='%s': seconds to wait for a closing daemon's "
			 "lock, a number from 0 to %u (default %u)", v, LOCKWAIT_MAX_S,
			 LOCKWAIT_DEFAULT_S);
		return -EINVAL;
	}
	*seconds = (unsigned)n;
	return 0;
}

enum holder {
	HOLDER_OTHER,   /* a live process that is no kvfs daemon: it will not let go soon */
	HOLDER_DAEMON,  /* a kvfs daemon: closing, or starting */
	HOLDER_OPENING, /* LOCK names nobody alive: a process still opening the store */
};

static enum holder holder_of(const char *pid)
{
	char path[64], comm[32] = "";
	FILE *f;
	char *end;
	long n;

	errno = 0;
	n = strtol(pid, &end, 10);
	if (!pid[0] || *end || n <= 0 || errno)
		return HOLDER_OPENING;
	snprintf(path, sizeof(path), "/proc/%ld/comm", n);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? HOLDER_OPENING : HOLDER_OTHER;
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "kvfs") == 0 ? HOLDER_DAEMON : HOLDER_OTHER;
}

static int daemon_answers(const char *dir)
{
	struct ctl_hello hello;
	char why[256];
	int fd, rc = ctl_connect(dir, &fd, &hello, why, sizeof(why));

	if (rc == 0)
		close(fd);
	/* a refusal is an answer too: the caller's own connect will say why */
	return rc == 0 || rc == -EACCES || rc == -EPROTO;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static void say(struct lockwait *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct lockwait *w, const char *fmt, ...)
{
	char line[2 * PATH_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (w->say)
		w->say(w->arg, line);
}

int lockwait_open(struct lockwait *w, struct kv **out, const char *dir, const struct kv_options *o,
		  struct kv_report *rep)
{
	uint64_t start = now_ms(), pause_ms = 20;
	int said = 0, rc;

	w->answering = w->gave_up = 0;
	for (;;) {
		memset(rep, 0, sizeof(*rep));
		rc = kv_open(out, dir, o, rep);
		if (rc != -EWOULDBLOCK || rep->problem != KV_PROBLEM_LOCKED)
			return rc;
		if (daemon_answers(dir)) {
			w->answering = 1;
			return rc;
		}
		if (holder_of(rep->holder) == HOLDER_OTHER)
			return rc;
		if (now_ms() - start >= (uint64_t)w->seconds * 1000u) {
			w->gave_up = 1;
			say(w, "%s: store is still locked by %s%s (%s/LOCK) after waiting %u s for it "
			    "to be closed; " LOCKWAIT_ENV "=SECONDS waits longer", dir,
			    rep->holder[0] ? "process " : "another process", rep->holder, dir,
			    w->seconds);
			return rc;
		}
		if (!said) {
			say(w, "%s: waiting for %s%s to finish closing the store (at most %u s)", dir,
			    rep->holder[0] ? "process " : "the process that holds its LOCK",
			    rep->holder, w->seconds);
			said = 1;
		}
		usleep((useconds_t)pause_ms * 1000u);
		if (pause_ms < 200)
			pause_ms *= 2;
	}
}
