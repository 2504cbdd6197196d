/* options.c — store options: defaults and the "name=value,..." form shared by kv_cli and kvfs. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

void kv_options_default(struct kv_options *o)
{
	memset(o, 0, sizeof(*o));
	o->sync = KV_SYNC_BATCH;
	o->commit_ms = 10;
	o->snapshot_wal_bytes = 256ull << 20;
	o->segment_bytes = 64ull << 20;
	o->recovery = KV_RECOVERY_STRICT;
}

const char *kv_sync_name(enum kv_sync s)
{
	switch (s) {
	case KV_SYNC_BATCH:
		return "batch";
	case KV_SYNC_ALWAYS:
		return "always";
	case KV_SYNC_NONE:
		return "none";
	}
	return "?";
}

/* A whole decimal number with an optional k/M/G suffix (powers of 1024) in [min, max]. */
static int parse_size(const char *v, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno)
		return -EINVAL;
	int shift = 0;
	if (*end == 'k' || *end == 'K')
		shift = 10, end++;
	else if (*end == 'M')
		shift = 20, end++;
	else if (*end == 'G')
		shift = 30, end++;
	if (*end || (shift && n > (UINT64_MAX >> shift)))
		return -EINVAL;
	n <<= shift;
	if (n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

static int parse_one(struct kv_options *o, const char *name, const char *val, char *err, size_t errlen)
{
	uint64_t n;
	if (!val) {
		snprintf(err, errlen, "option '%s' needs a value (%s=...)", name, name);
		return -EINVAL;
	}
	if (!strcmp(name, "sync")) {
		if (!strcmp(val, "batch"))
			o->sync = KV_SYNC_BATCH;
		else if (!strcmp(val, "always"))
			o->sync = KV_SYNC_ALWAYS;
		else if (!strcmp(val, "none"))
			o->sync = KV_SYNC_NONE;
		else
			goto bad;
		return 0;
	}
	if (!strcmp(name, "recovery")) {
		if (!strcmp(val, "strict"))
			o->recovery = KV_RECOVERY_STRICT;
		else if (!strcmp(val, "point_in_time"))
			o->recovery = KV_RECOVERY_POINT_IN_TIME;
		else
			goto bad;
		return 0;
	}
	if (!strcmp(name, "commit_ms")) {
		if (parse_size(val, 1, 60000, &n))
			goto bad;
		o->commit_ms = (unsigned)n;
		return 0;
	}
	if (!strcmp(name, "snapshot_wal_bytes")) {
		if (parse_size(val, 4096, UINT64_MAX >> 1, &n))
			goto bad;
		o->snapshot_wal_bytes = n;
		return 0;
	}
	if (!strcmp(name, "segment_bytes")) {
		if (parse_size(val, 4096, 1ull << 40, &n))
			goto bad;
		o->segment_bytes = n;
		return 0;
	}
	snprintf(err, errlen, "unknown option '%s' (known: sync, commit_ms, snapshot_wal_bytes, "
		 "segment_bytes, recovery)", name);
	return -EINVAL;
bad:
	snprintf(err, errlen, "bad value '%s' for option '%s'", val, name);
	return -EINVAL;
}

int kv_options_parse(struct kv_options *o, const char *opts, char *err, size_t errlen)
{
	char *copy = strdup(opts), *save = NULL, *tok;
	int rc = 0;
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq)
			*eq++ = '\0';
		rc = parse_one(o, tok, eq, err, errlen);
		if (rc)
			break;
	}
	free(copy);
	return rc;
}
