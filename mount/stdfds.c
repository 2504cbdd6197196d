/* stdfds.c — see stdfds.h. */
#include "stdfds.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int stdfds_ensure(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int nfd;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* the lowest free descriptor is this one, since those below it are open */
		nfd = open("/dev/null", O_RDWR);
		if (nfd < 0)
			return -errno;
		if (nfd != fd) {
			close(nfd);
			return -EBADF;
		}
	}
	return 0;
}
