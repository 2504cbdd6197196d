/* unmount.c — `kvfs --unmount MOUNTPOINT` (unmount.h). */
#include "unmount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlproto.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* The value of "name: " in the mount's control file into buf: 0, -ENOENT when the file has no
 * such line (not a kvfs mount, or one without a control socket), or -errno. */
static int control_field(const char *mnt, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX + 16], *line = NULL;
	size_t cap = 0, n = strlen(name);
	FILE *f;
	int rc = -ENOENT;

	snprintf(path, sizeof(path), "%s/.kvfs", mnt);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, name, n) == 0 && line[n] == ':' && line[n + 1] == ' ') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%s", line + n + 2);
			rc = 0;
			break;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* The unmount itself: umount2 as root, else fusermount3 -u (the setuid helper that lets a
 * user unmount what the user mounted). 0, or -errno with its reason. */
static int do_unmount(const char *mnt)
{
	int status;
	pid_t pid;

	if (geteuid() == 0)
		return umount2(mnt, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "--", mnt, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return -ENOENT;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBUSY;
}

/* Waits until process pid has ended (it is not our child: a pidfd tells). */
static void wait_process(long pid)
{
	struct pollfd p;
	int fd = (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);

	if (fd < 0) {
		/* gone already (ESRCH), or no pidfds: then poll its existence */
		while (errno != ESRCH && kill((pid_t)pid, 0) == 0)
			usleep(10000);
		return;
	}
	p.fd = fd;
	p.events = POLLIN;
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	close(fd);
}

int unmount_main(const char *prog, int argc, char **argv)
{
	struct ctl_hello hello;
	struct ctl_frame f = { 0 };
	char mnt[PATH_MAX], dir[PATH_MAX], why[512];
	struct stat st;
	int fd = -1, rc, status = EXIT_FAIL;

	if (argc != 3 || !argv[2][0]) {
		fprintf(stderr, "%s: usage: %s --unmount MOUNTPOINT\n", prog, prog);
		return EXIT_USAGE;
	}
	if (stat(argv[2], &st) < 0 && errno == ENOTCONN) {
		fprintf(stderr, "%s: %s: a stale mount whose daemon is gone; 'fusermount3 -uz %s' "
			"removes it (the store recovers at its next open)\n", prog, argv[2], argv[2]);
		return EXIT_FAIL;
	}
	if (!realpath(argv[2], mnt)) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[2], strerror(errno));
		return EXIT_FAIL;
	}
	rc = control_field(mnt, "datadir", dir, sizeof(dir));
	if (rc) {
		fprintf(stderr, "%s: %s: not a mounted kvfs store (%s)\n", prog, mnt,
			rc == -ENOENT ? "no control file naming its store" : strerror(-rc));
		return EXIT_FAIL;
	}
	rc = ctl_connect(dir, &fd, &hello, why, sizeof(why));
	if (rc) {
		fprintf(stderr, "%s: %s: cannot reach the daemon of %s: %s\n", prog, mnt, dir,
			why[0] ? why : strerror(-rc));
		return EXIT_FAIL;
	}
	rc = ctl_send(fd, CTL_WAIT, 0, NULL, NULL, 0, NULL, 0);
	if (!rc)
		rc = ctl_recv(fd, &f);
	if (!rc && f.type != CTL_WAITING)
		rc = -EPROTO;
	free(f.payload);
	f.payload = NULL;
	if (rc) {
		fprintf(stderr, "%s: %s: the daemon (pid %ld) did not take the request: %s\n", prog,
			mnt, hello.pid, strerror(-rc));
		goto out;
	}
	rc = do_unmount(mnt);
	if (rc) {
		if (rc == -EBUSY)
			fprintf(stderr, "%s: %s: busy (a process has a file open or its working "
				"directory there); nothing was unmounted\n", prog, mnt);
		else
			fprintf(stderr, "%s: %s: cannot unmount: %s\n", prog, mnt,
				rc == -ENOENT ? "fusermount3 not found" : strerror(-rc));
		goto out;
	}
	rc = ctl_recv(fd, &f);
	if (rc) {
		fprintf(stderr, "%s: %s: unmounted, but the daemon (pid %ld) ended without closing "
			"the store cleanly (killed?); it recovers at its next open\n", prog, mnt,
			hello.pid);
		goto out;
	}
	if (f.type != CTL_CLOSED || f.flags) {
		fprintf(stderr, "%s: %s: unmounted; %s\n", prog, mnt,
			f.type == CTL_CLOSED && f.payload ? f.payload : "the daemon answered nonsense");
		goto out;
	}
	/* the LOCK is released already (the close came before the word); the process ends next */
	wait_process(hello.pid);
	status = 0;
out:
	free(f.payload);
	close(fd);
	return status;
}
