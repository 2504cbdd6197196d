/* hugepages.c — see hugepages.h. */
#include "hugepages.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#define TUNABLE "glibc.malloc.hugetlb"

void hugepages_reexec(char **argv)
{
	const char *have = getenv("GLIBC_TUNABLES");
	char value[1024], self[PATH_MAX];
	ssize_t len;
	int n;

	if (have && strstr(have, TUNABLE))
		return; /* the caller's choice (and how a re-executed program knows it is one) */
	/* setuid or file capabilities: glibc drops this tunable from the environment, so the
	 * program would never see its own marker and exec itself again and again */
	if (getauxval(AT_SECURE))
		return;
	/* by its own path, not /proc/self/exe: that would name the process "exe" (pgrep,
	 * killall) */
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0 || (size_t)len >= sizeof(self) - 1)
		return; /* no /proc: run on with ordinary pages */
	self[len] = '\0';
	/* arena_max=1: glibc gives huge pages to its main heap only; the filesystem's worker
	 * threads would otherwise each allocate from an arena of their own, in 4 KiB pages.
	 * mmap_threshold, trim_threshold: a 1 MiB write's buffers come from that heap and its
	 * freed top is kept for the next one, instead of being returned to the kernel and
	 * faulted (and zeroed) in again on every write. */
	n = snprintf(value, sizeof(value),
		     "%s%s" TUNABLE "=1:glibc.malloc.arena_max=1"
		     ":glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864",
		     have ? have : "", have && have[0] ? ":" : "");
	if (n < 0 || (size_t)n >= sizeof(value) || setenv("GLIBC_TUNABLES", value, 1) != 0)
		return;
	execv(self, argv);
	/* exec refused (the file replaced meanwhile, say): run on as we are, with ordinary
	 * pages; the variable stays set only for our children, which is harmless */
}
