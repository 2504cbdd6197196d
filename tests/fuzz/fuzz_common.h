/* fuzz_common.h — shared by the libFuzzer targets: a store on a fresh simulated disk, opened,
 * read back in full and closed; helpers that fix up checksums so mutations get past them. */
#ifndef KVFS_FUZZ_COMMON_H
#define KVFS_FUZZ_COMMON_H
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "faultio.h"
#include "kv.h"
#include "le.h"
#include "snapshot.h"
#include "wal.h"

#define FZ_DIR "/sim/store"

static inline void fz_quiet(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

static inline struct kv_options fz_options(struct faultio *f, enum kv_recovery rec)
{
	struct kv_options o;
	kv_options_default(&o);
	o.io = faultio_kvio(f);
	o.sync = KV_SYNC_NONE; /* no background thread */
	o.segment_bytes = 16 * 1024;
	o.snapshot_wal_bytes = 1ull << 40;
	o.recovery = rec;
	o.log = fz_quiet;
	return o;
}

static inline struct faultio *fz_disk(void)
{
	struct faultio *f;
	if (faultio_create(&f) || faultio_mkdirs(f, FZ_DIR))
		abort();
	return f;
}

struct fz_keys {
	char **k;
	size_t *len;
	size_t n, cap;
};

static inline int fz_collect(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		      size_t mlen)
{
	struct fz_keys *ks = arg;
	(void)size;
	(void)meta;
	(void)mlen;
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? ks->cap * 2 : 16;
		char **k = realloc(ks->k, cap * sizeof(*k));
		size_t *len;
		if (!k)
			return -ENOMEM;
		ks->k = k;
		len = realloc(ks->len, cap * sizeof(*len));
		if (!len)
			return -ENOMEM;
		ks->len = len;
		ks->cap = cap;
	}
	ks->k[ks->n] = malloc(klen ? klen : 1);
	if (!ks->k[ks->n])
		return -ENOMEM;
	memcpy(ks->k[ks->n], key, klen);
	ks->len[ks->n++] = klen;
	return 0;
}

/* Read every key's value and stat it: whatever recovery built must be readable. Values can be
 * sparse and up to KV_MAX_VALUE long (a TRUNCATE record is tiny): read large ones only at both
 * ends, so one input costs milliseconds, not a gigabyte memset. */
static inline void fz_read_all(struct kv *s)
{
	struct fz_keys ks = { 0 };
	size_t i;

	kv_scan(s, NULL, 0, fz_collect, &ks);
	for (i = 0; i < ks.n; i++) {
		void *val = NULL;
		uint64_t vlen = 0, size = 0;
		char meta[KV_MAX_META], buf[4096];
		size_t mlen = sizeof(meta), got = 0;
		if (kv_stat(s, ks.k[i], ks.len[i], &size, meta, &mlen) != 0 || size > KV_MAX_VALUE)
			abort(); /* a key the scan listed must be there */
		if (size <= (1u << 16)) {
			if (kv_get(s, ks.k[i], ks.len[i], &val, &vlen) != 0 || vlen != size)
				abort();
			free(val);
		} else {
			if (kv_read(s, ks.k[i], ks.len[i], 0, buf, sizeof(buf), &got) != 0 ||
			    got != sizeof(buf))
				abort();
			if (kv_read(s, ks.k[i], ks.len[i], size - 10, buf, sizeof(buf), &got) != 0 ||
			    got != 10)
				abort();
		}
		free(ks.k[i]);
	}
	free(ks.k);
	free(ks.len);
}

/* check, strict open (+ read all, a write, close, reopen), salvage, open: never a crash, and
 * check agrees with strict open. */
static inline void fz_exercise(struct faultio *f)
{
	struct kv_report rep;
	struct kv_options o = fz_options(f, KV_RECOVERY_STRICT);
	struct kv *s = NULL;
	int crc, orc;

	memset(&rep, 0, sizeof(rep));
	crc = kv_check(FZ_DIR, faultio_kvio(f), &rep);
	memset(&rep, 0, sizeof(rep));
	orc = kv_open(&s, FZ_DIR, &o, &rep);
	if (orc == 0) {
		fz_read_all(s);
		kv_put(s, "fz", 2, "x", 1);
		kv_close(s);
		s = NULL;
		/* What open left must open again. */
		memset(&rep, 0, sizeof(rep));
		if (kv_open(&s, FZ_DIR, &o, &rep) != 0)
			abort();
		fz_read_all(s);
		kv_close(s);
		s = NULL;
	}
	/* kv_check must agree with a strict open on clean/damaged. */
	if ((crc == 0) != (orc == 0) && (crc == -EUCLEAN || orc == -EUCLEAN))
		abort();
	memset(&rep, 0, sizeof(rep));
	if (kv_salvage(FZ_DIR, faultio_kvio(f), &rep) == 0) {
		memset(&rep, 0, sizeof(rep));
		if (kv_open(&s, FZ_DIR, &o, &rep) != 0)
			abort(); /* salvage must leave a store that opens */
		fz_read_all(s);
		kv_close(s);
	}
}

/* Recompute every record's crc in a segment body (after the header) as long as the framing
 * stays in bounds. */
static inline void fz_fix_wal_records(uint8_t *p, size_t len)
{
	size_t off = WAL_HDR_SIZE;
	while (off + REC_HDR_SIZE <= len) {
		uint32_t plen = le_get32(p + off + 4);
		if (plen == 0 && le_get64(p + off + 8) == 0)
			break; /* zeros: preallocated end */
		if (plen > len - off - REC_HDR_SIZE)
			break;
		le_put32(p + off, crc32c(0, p + off + 4, REC_HDR_SIZE - 4 + plen));
		off += REC_HDR_SIZE + plen;
	}
}

/* Recompute header, entry and footer crcs of a snapshot image as far as its framing goes. */
static inline void fz_fix_snapshot(uint8_t *p, size_t len)
{
	size_t off = SNAP_HDR_SIZE;
	uint64_t count, i;

	if (len < SNAP_HDR_SIZE)
		return;
	le_put32(p + 36, crc32c(0, p, 36));
	count = le_get64(p + 24);
	for (i = 0; i < count && off + SNAP_ENTRY_HDR_SIZE <= len; i++) {
		uint64_t klen = le_get32(p + off + 4), mlen = le_get32(p + off + 8);
		uint64_t vlen = le_get64(p + off + 12);
		uint64_t body = klen + mlen + vlen;
		if (vlen > len || body > len - off - SNAP_ENTRY_HDR_SIZE)
			return;
		le_put32(p + off, crc32c(0, p + off + 4, SNAP_ENTRY_HDR_SIZE - 4 + body));
		off += SNAP_ENTRY_HDR_SIZE + body;
	}
	if (off + SNAP_FOOTER_SIZE <= len) {
		le_put32(p + off + 8, crc32c(0, p, off));
		le_put32(p + off + 12, crc32c(0, p + off, 12));
	}
}
#endif
