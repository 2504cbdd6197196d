/* futil.c — directory helpers (futil.h). */
#include "futil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int futil_rmtree(const char *path)
{
	int rc;

	if (access(path, F_OK) < 0)
		return errno == ENOENT ? 0 : -errno;
	rc = nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
	if (rc < 0)
		return -errno;
	return rc; /* remove_one's -errno, or 0 */
}

int futil_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

int futil_join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
