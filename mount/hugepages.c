/* hugepages.c — see hugepages.h. */
#include "hugepages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TUNABLE "glibc.malloc.hugetlb"

void hugepages_reexec(char **argv)
{
	const char *have = getenv("GLIBC_TUNABLES");
	char value[1024];
	int n;

	if (have && strstr(have, TUNABLE))
		return; /* the caller's choice (and how a re-executed program knows it is one) */
	n = snprintf(value, sizeof(value), "%s%s" TUNABLE "=1", have ? have : "",
		     have && have[0] ? ":" : "");
	if (n < 0 || (size_t)n >= sizeof(value) || setenv("GLIBC_TUNABLES", value, 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* no /proc, or exec refused: run on as we are, with ordinary pages; the variable stays
	 * set only for our children, which is harmless */
}
