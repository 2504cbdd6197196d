/* kvio_posix.c — the I/O seam over the real OS. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "kvio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static int os_open(const struct kvio *io, const char *path, int flags, mode_t mode, int *fd_out)
{
	(void)io;
	int fd;
	do
		fd = open(path, flags | O_CLOEXEC, mode);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	*fd_out = fd;
	return 0;
}

static int os_close(const struct kvio *io, int fd)
{
	(void)io;
	/* Linux closes the descriptor even when close reports EINTR: never retry. */
	if (close(fd) < 0 && errno != EINTR)
		return -errno;
	return 0;
}

static int os_pread(const struct kvio *io, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
	(void)io;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static int os_pread_around(const struct kvio *io, int fd, void *buf, size_t len, uint64_t off,
			   size_t around, size_t *got)
{
	struct iovec v = { buf, len };
	ssize_t n;

	do /* RWF_NOWAIT: served from the page cache or not at all (EAGAIN) */
		n = preadv2(fd, &v, 1, (off_t)off, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len) {
		*got = len;
		return 0;
	}
	if (around && (n >= 0 || errno == EAGAIN)) {
		/* A hint: if the kernel declines, the read below fetches just what it needs. */
		ssize_t rc = readahead(fd, (off_t)(off / around * around), around);
		(void)rc;
	}
	/* a miss, a short read (part cached, or the end of the file), or no RWF_NOWAIT here */
	return os_pread(io, fd, buf, len, off, got);
}

static int os_pwrite(const struct kvio *io, int fd, const void *buf, size_t len, uint64_t off)
{
	(void)io;
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(off + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int os_fdatasync(const struct kvio *io, int fd)
{
	(void)io;
	/* No retry on EINTR or anything else: after a failed sync the page cache may have
	 * dropped the dirty pages, so a second call could report success for lost data. */
	return fdatasync(fd) < 0 ? -errno : 0;
}

static int os_ftruncate(const struct kvio *io, int fd, uint64_t len)
{
	(void)io;
	int rc;
	do
		rc = ftruncate(fd, (off_t)len);
	while (rc < 0 && errno == EINTR);
	return rc < 0 ? -errno : 0;
}

static int os_fallocate(const struct kvio *io, int fd, uint64_t off, uint64_t len)
{
	(void)io;
	int rc;
	do
		rc = posix_fallocate(fd, (off_t)off, (off_t)len);
	while (rc == EINTR);
	return -rc;
}

static int os_fsize(const struct kvio *io, int fd, uint64_t *size)
{
	(void)io;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int os_rename(const struct kvio *io, const char *from, const char *to)
{
	(void)io;
	return rename(from, to) < 0 ? -errno : 0;
}

static int os_unlink(const struct kvio *io, const char *path)
{
	(void)io;
	return unlink(path) < 0 ? -errno : 0;
}

static int os_mkdir(const struct kvio *io, const char *path, mode_t mode)
{
	(void)io;
	return mkdir(path, mode) < 0 ? -errno : 0;
}

static int os_rmdir(const struct kvio *io, const char *path)
{
	(void)io;
	return rmdir(path) < 0 ? -errno : 0;
}

static int os_fsync_dir(const struct kvio *io, const char *dir)
{
	(void)io;
	int fd;
	do
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	/* like fdatasync: a failed fsync is never retried */
	int rc = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int os_list_dir(const struct kvio *io, const char *dir, char ***names_out, size_t *count_out)
{
	(void)io;
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	struct dirent *de;

	if (!d)
		return -errno;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **n = realloc(names, ncap * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				goto out;
			}
			names = n;
			cap = ncap;
		}
		names[count] = strdup(de->d_name);
		if (!names[count]) {
			rc = -ENOMEM;
			goto out;
		}
		count++;
	}
	if (errno)
		rc = -errno;
out:
	closedir(d);
	if (rc) {
		kvio_free_names(names, count);
		return rc;
	}
	*names_out = names;
	*count_out = count;
	return 0;
}

static int os_lock(const struct kvio *io, int fd, int shared)
{
	(void)io;
	/* flock, not fcntl: the lock belongs to the open file, so a second open of the same
	 * store inside one process is refused too. */
	if (flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
	return 0;
}

static int os_drop_cache(const struct kvio *io, int fd)
{
	(void)io;
	int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	return rc ? -rc : 0;
}

void kvio_free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

const struct kvio kvio_posix = {
	.open = os_open,
	.close = os_close,
	.pread = os_pread,
	.pwrite = os_pwrite,
	.fdatasync = os_fdatasync,
	.ftruncate = os_ftruncate,
	.fallocate = os_fallocate,
	.fsize = os_fsize,
	.rename = os_rename,
	.unlink = os_unlink,
	.mkdir = os_mkdir,
	.rmdir = os_rmdir,
	.fsync_dir = os_fsync_dir,
	.list_dir = os_list_dir,
	.lock = os_lock,
	.drop_cache = os_drop_cache,
	.pread_around = os_pread_around,
	.ctx = NULL,
};

void kvio_close_quiet(const struct kvio *io, int fd)
{
	if (fd < 0)
		return;
	int rc = io->close(io, fd);
	(void)rc; /* see kvio.h: nothing to lose, nothing to retry */
}

int kvio_close_after(const struct kvio *io, int fd, int rc)
{
	if (fd < 0)
		return rc;
	int crc = io->close(io, fd);
	return rc ? rc : crc;
}
