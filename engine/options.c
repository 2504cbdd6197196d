/* options.c — the store's options as one table: defaults, parsing of "name=value,...", and the
 * rows kv_cli and kvfs show in --help. */
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
	o->checkpoint_bytes = 256ull << 20;
	o->segment_bytes = 64ull << 20;
	o->recovery = KV_RECOVERY_STRICT;
	o->cleaner = 1;
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

/* A whole decimal number with an optional K, M, G or T suffix in either case (powers of 1024:
 * nobody means 1000-byte segments, and 1g refused while 1G is taken only puzzles). */
static int parse_size(const char *v, uint64_t *out)
{
	static const char units[] = "kmgt";
	char *end;
	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno)
		return -EINVAL;
	int shift = 0;
	const char *u = *end ? strchr(units, *end | 0x20) : NULL;
	if (u) {
		shift = 10 * (int)(u - units + 1);
		end++;
	}
	if (*end || (shift && n > (UINT64_MAX >> shift)))
		return -EINVAL;
	*out = (uint64_t)n << shift;
	return 0;
}

/* A whole decimal number, no suffix. */
static int parse_number(const char *v, uint64_t *out)
{
	char *end;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = n;
	return 0;
}

/* n as the options are written: 4K, 64M, 1T when it is a whole number of those, else digits. */
static const char *human(uint64_t n, char *buf, size_t len)
{
	static const char units[] = "KMGT";
	int u = -1;

	while (u < 3 && n && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, n);
	else
		snprintf(buf, len, "%" PRIu64 "%c", n, units[u]);
	return buf;
}

/* One of words (separated by '|'): its index, or -1. */
static int pick(const char *v, const char *words)
{
	int i = 0;
	for (const char *w = words; *w; i++) {
		size_t n = strcspn(w, "|");
		if (strlen(v) == n && !strncmp(v, w, n))
			return i;
		w += n + (w[n] == '|');
	}
	return -1;
}

enum kind { K_WORDS, K_NUMBER, K_FLAG };

struct row {
	struct kv_option_desc d;
	enum kind kind;
	uint64_t min, max;                      /* K_NUMBER */
	void (*set)(struct kv_options *o, uint64_t v); /* the number, or the word's index */
	int bytes;                              /* K_NUMBER: a size, K/M/G/T suffixes allowed */
};

static void set_sync(struct kv_options *o, uint64_t v)
{
	static const enum kv_sync modes[] = { KV_SYNC_BATCH, KV_SYNC_ALWAYS, KV_SYNC_NONE };
	o->sync = modes[v];
}
static void set_commit_ms(struct kv_options *o, uint64_t v) { o->commit_ms = (unsigned)v; }
static void set_checkpoint(struct kv_options *o, uint64_t v) { o->checkpoint_bytes = v; }
static void set_segment(struct kv_options *o, uint64_t v) { o->segment_bytes = v; }
static void set_recovery(struct kv_options *o, uint64_t v)
{
	o->recovery = v ? KV_RECOVERY_POINT_IN_TIME : KV_RECOVERY_STRICT;
}
static void set_cleaner(struct kv_options *o, uint64_t v) { o->cleaner = v == 0; }
static void set_ro(struct kv_options *o, uint64_t v) { o->read_only = (int)v; }

/* The order of words in `values` is the index set_* receives. */
static const struct row rows[] = {
	{ { "sync", "batch|always|none",
	    "when writes become durable: by a background flush within commit_ms (batch), before each "
	    "write returns (always), or only at flushes, checkpoints and close (none)" },
	  K_WORDS, 0, 0, set_sync },
	{ { "commit_ms", "N", "batch mode's flush bound, 1..60000 ms (default 10)" },
	  K_NUMBER, 1, 60000, set_commit_ms },
	{ { "checkpoint_bytes", "N", "checkpoint once this much log was written since the last one "
	    "(or twice the last checkpoint's size, if more), 4K..1T (default 256M)" },
	  K_NUMBER, 4096, 1ull << 40, set_checkpoint, 1 },
	{ { "snapshot_wal_bytes", "N", "the old name of checkpoint_bytes" },
	  K_NUMBER, 4096, 1ull << 40, set_checkpoint, 1 },
	{ { "segment_bytes", "N", "size of a log segment, preallocated, 4K..1T (default 64M)" },
	  K_NUMBER, 4096, 1ull << 40, set_segment, 1 },
	{ { "recovery", "strict|point_in_time",
	    "on damage other than a torn tail: refuse to open (strict), or keep what kv_cli --salvage "
	    "keeps (a damaged value costs its key, damaged log framing the records after it) and set "
	    "damaged files aside (point_in_time)" },
	  K_WORDS, 0, 0, set_recovery },
	{ { "cleaner", "on|off", "reclaim the space of overwritten and deleted data in the background "
	    "(default on)" },
	  K_WORDS, 0, 0, set_cleaner },
	{ { "ro", "(no value)", "open read-only: nothing on disk changes (also on a read-only "
	    "filesystem); every write fails with EROFS" },
	  K_FLAG, 0, 0, set_ro },
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

const struct kv_option_desc *kv_option_table(size_t *n)
{
	static struct kv_option_desc descs[NROWS];
	for (size_t i = 0; i < NROWS; i++)
		descs[i] = rows[i].d; /* the same every time: racing callers write equal bytes */
	*n = NROWS;
	return descs;
}

static const struct row *find_row(const char *name, size_t len)
{
	for (size_t i = 0; i < NROWS; i++)
		if (strlen(rows[i].d.name) == len && !strncmp(rows[i].d.name, name, len))
			return &rows[i];
	return NULL;
}

int kv_option_known(const char *name, size_t len)
{
	return find_row(name, len) != NULL;
}

static int parse_one(struct kv_options *o, const char *name, const char *val, char *err, size_t errlen)
{
	const struct row *r = find_row(name, strlen(name));
	uint64_t n;

	if (!r) {
		size_t off = (size_t)snprintf(err, errlen, "unknown option '%s' (known:", name);
		for (size_t i = 0; i < NROWS && off < errlen; i++)
			off += (size_t)snprintf(err + off, errlen - off, " %s", rows[i].d.name);
		if (off < errlen)
			snprintf(err + off, errlen - off, ")");
		return -EINVAL;
	}
	if (r->kind == K_FLAG) {
		if (val) {
			snprintf(err, errlen, "option '%s' takes no value", name);
			return -EINVAL;
		}
		r->set(o, 1);
		return 0;
	}
	if (!val) {
		snprintf(err, errlen, "option '%s' needs a value (%s=%s)", name, name, r->d.values);
		return -EINVAL;
	}
	if (r->kind == K_WORDS) {
		int i = pick(val, r->d.values);
		if (i < 0) {
			snprintf(err, errlen, "bad value '%s' for option '%s' (one of %s)", val, name, r->d.values);
			return -EINVAL;
		}
		r->set(o, (uint64_t)i);
		return 0;
	}
	if ((r->bytes ? parse_size(val, &n) : parse_number(val, &n)) || n < r->min || n > r->max) {
		char lo[32], hi[32];

		if (r->bytes)
			snprintf(err, errlen, "bad value '%s' for option '%s' (a size in bytes from %s to "
				 "%s; a K, M, G or T suffix, either case, counts in 1024s)", val, name, human(r->min, lo, sizeof(lo)),
				 human(r->max, hi, sizeof(hi)));
		else
			snprintf(err, errlen, "bad value '%s' for option '%s' (a whole number from %" PRIu64
				 " to %" PRIu64 ")", val, name, r->min, r->max);
		return -EINVAL;
	}
	r->set(o, n);
	return 0;
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
