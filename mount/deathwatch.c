/* deathwatch.c — aborting the mount's connection when the daemon dies (deathwatch.h). */
#include "deathwatch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* The daemon ends the watch with this; its death reaches the watch as DIED. Neither is a signal a
 * terminal or a service manager sends to stop a daemon, so the watch outlives those (the daemon
 * then stops it on its way out) and SIGKILL of the whole group is all that ends it early. */
#define STOP SIGUSR2
#define DIED SIGUSR1

/* Undoes mountinfo's octal escapes (space, tab, newline, backslash) in place. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* fusectl names a connection by its superblock's minor device number: the newest FUSE mount at
 * mountpoint, from /proc/self/mountinfo (a stat of the mount would ask this very daemon, which
 * is not serving yet). 0 and *minor, or -ENOENT. */
static int connection_of(const char *mountpoint, unsigned *minor)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int rc = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		char point[PATH_MAX + 1], type[64];
		unsigned maj, min;
		const char *dash;

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTS */
		dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*u %*u %u:%u %*s %4096s", &maj, &min, point) != 3 ||
		    sscanf(dash, " - %63s", type) != 1)
			continue;
		unescape(point);
		if (strcmp(point, mountpoint) == 0 &&
		    (strcmp(type, "fuse") == 0 || strncmp(type, "fuse.", 5) == 0)) {
			*minor = min;
			rc = 0; /* go on: a later line is a mount on top */
		}
	}
	free(line);
	fclose(f);
	return rc;
}

static int abort_connection(const char *abort_path)
{
	int fd = open(abort_path, O_WRONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "1", 1) != 1)
		rc = -EIO;
	close(fd);
	return rc;
}

/* The watch itself, in the child: async-signal-safe calls only (the daemon has threads). */
static void watch(pid_t daemon, const char *abort_path, const char *mountpoint)
{
	sigset_t set;
	siginfo_t si;
	int sig;

	/* nothing of the daemon's stays open here: not /dev/fuse (which would keep the connection
	 * alive), not the store's LOCK, not the starting process's status pipe */
	if (close_range(0, ~0U, 0) < 0)
		_exit(1);
	sigemptyset(&set);
	sigaddset(&set, STOP);
	sigaddset(&set, DIED);
	if (prctl(PR_SET_PDEATHSIG, DIED) < 0)
		_exit(1);
	if (getppid() == daemon) { /* else it died before the line above */
		do
			sig = sigwaitinfo(&set, &si);
		while (sig < 0 && errno == EINTR);
		if (sig == STOP)
			_exit(0);
	}
	if (abort_path[0] && abort_connection(abort_path) == 0)
		_exit(0);
	/* fusectl is not mounted (systemd mounts it at boot; a container may not have): root
	 * mounts it, as systemd would, rather than unmount the mount under its users' feet */
	if (abort_path[0] && mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0 &&
	    abort_connection(abort_path) == 0)
		_exit(0);
	/* the last way: FUSE aborts the connection on a forced unmount (root); a mount in use
	 * stays, stale, and one nobody uses goes */
	_exit(umount2(mountpoint, MNT_FORCE) == 0 || errno == EBUSY ? 0 : 1);
}

int deathwatch_start(const char *mountpoint, pid_t *child)
{
	char abort_path[64] = "";
	sigset_t set, old;
	unsigned minor;
	pid_t daemon = getpid(), pid;
	int rc;

	if (connection_of(mountpoint, &minor) == 0)
		snprintf(abort_path, sizeof(abort_path), "/sys/fs/fuse/connections/%u/abort", minor);
	/* blocked before the fork, so neither signal can reach the child before it waits */
	sigemptyset(&set);
	sigaddset(&set, STOP);
	sigaddset(&set, DIED);
	rc = -pthread_sigmask(SIG_BLOCK, &set, &old);
	if (rc)
		return rc;
	pid = fork();
	if (pid == 0)
		watch(daemon, abort_path, mountpoint);
	rc = pid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		*child = pid;
	return rc;
}

int deathwatch_stop(pid_t child)
{
	int status;

	if (kill(child, STOP) < 0)
		return -errno;
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}
