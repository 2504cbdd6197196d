/* lsnname.c — see lsnname.h. */
#include "lsnname.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void lsnname_format(char *buf, size_t len, const char *prefix, uint64_t lsn, const char *suffix)
{
	snprintf(buf, len, "%s%016" PRIx64 "%s", prefix, lsn, suffix);
}

int lsnname_parse(const char *name, const char *prefix, const char *suffix, uint64_t *lsn)
{
	size_t plen = strlen(prefix), slen = strlen(suffix);
	uint64_t v = 0;

	if (strlen(name) != plen + 16 + slen || strncmp(name, prefix, plen) ||
	    strcmp(name + plen + 16, suffix))
		return -EINVAL;
	for (size_t i = plen; i < plen + 16; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint64_t)d;
	}
	/* LSNs count records from 1 and never come near 2^63; a name beyond is not ours (trusting it
	 * would wrap the next LSN to 0: a salvage that took a damaged checkpoint's LSN from such a
	 * name made wal-0000000000000000.log, found by fuzz_checkpoint) */
	if (v > LSNNAME_MAX)
		return -EINVAL;
	*lsn = v;
	return 0;
}
