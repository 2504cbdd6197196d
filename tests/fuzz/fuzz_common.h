/* fuzz_common.h — shared by the libFuzzer targets: a store on a fresh simulated disk; the
 * properties every store-level target asserts on what it put there (fz_exercise); helpers that
 * fix up checksums so mutations get past them. Format 2: salted log segments (logfmt.h) and
 * checkpoints (ckpt.h). */
#ifndef KVFS_FUZZ_COMMON_H
#define KVFS_FUZZ_COMMON_H
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "crc32c.h"
#include "faultio.h"
#include "kv.h"
#include "le.h"
#include "logfmt.h"

#define FZ_DIR "/sim/store"

/* A failed property: say which, so a crash file's stack and message tell what broke. */
#define fz_require(cond, what)                                                       \
	do {                                                                             \
		if (!(cond)) {                                                               \
			fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", what, __FILE__, \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

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
	o.sync = KV_SYNC_NONE;            /* no background flusher */
	o.cleaner = 0;                    /* no background cleaner */
	o.segment_bytes = 16 * 1024;
	o.checkpoint_bytes = 1ull << 40;  /* no automatic checkpoint */
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

/* What a store holds, as far as the properties compare it: per key (in order) its size, its
 * metadata and a digest of its value (crc32c of the bytes read, or the read's error). */
struct fz_entry {
	char *key;
	size_t klen, mlen;
	uint64_t size;
	char meta[KV_MAX_META];
	uint32_t digest;
	int read_rc;
};

struct fz_state {
	struct fz_entry *e;
	size_t n, cap;
};

static inline void fz_state_free(struct fz_state *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->e[i].key);
	free(st->e);
	memset(st, 0, sizeof(*st));
}

static inline int fz_collect(void *arg, const void *key, size_t klen, uint64_t size,
			     const void *meta, size_t mlen)
{
	struct fz_state *st = arg;
	struct fz_entry *e;

	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 16;
		struct fz_entry *ne = realloc(st->e, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		st->e = ne;
		st->cap = cap;
	}
	e = &st->e[st->n];
	memset(e, 0, sizeof(*e));
	e->key = malloc(klen ? klen : 1);
	if (!e->key)
		return -ENOMEM;
	memcpy(e->key, key, klen);
	e->klen = klen;
	e->size = size;
	e->mlen = mlen;
	if (mlen > KV_MAX_META)
		abort();
	memcpy(e->meta, meta, mlen);
	st->n++;
	return 0;
}

/* Read a value: whole when small, else 4 KiB at both ends (a TRUNCATE record makes a value of up
 * to KV_MAX_VALUE bytes in a few bytes of log: one input must cost milliseconds). */
static inline int fz_digest(struct kv *s, const struct fz_entry *e, uint32_t *digest)
{
	char buf[4096];
	size_t got = 0;
	int rc;

	if (e->size <= (1u << 16)) {
		void *val = NULL;
		uint64_t vlen = 0;
		rc = kv_get(s, e->key, e->klen, &val, &vlen);
		if (rc)
			return rc;
		fz_require(vlen == e->size, "kv_get returns the size kv_scan listed");
		*digest = crc32c(0, val, (size_t)vlen);
		free(val);
		return 0;
	}
	rc = kv_read(s, e->key, e->klen, 0, buf, sizeof(buf), &got);
	if (rc)
		return rc;
	fz_require(got == sizeof(buf), "a read inside a value is not short");
	*digest = crc32c(0, buf, got);
	rc = kv_read(s, e->key, e->klen, e->size - 10, buf, sizeof(buf), &got);
	if (rc)
		return rc;
	fz_require(got == 10, "a read at a value's end stops there");
	*digest = crc32c(*digest, buf, got);
	return 0;
}

/* Every key kv_scan lists, statted and read. A key listed must stat with the same size and
 * metadata; a read may fail only with -EIO (value bytes whose checksum fails, or lost). */
static inline void fz_state_read(struct kv *s, struct fz_state *st)
{
	memset(st, 0, sizeof(*st));
	fz_require(kv_scan(s, NULL, 0, fz_collect, st) == 0, "kv_scan of a recovered store");
	for (size_t i = 0; i < st->n; i++) {
		struct fz_entry *e = &st->e[i];
		char meta[KV_MAX_META];
		size_t mlen = sizeof(meta);
		uint64_t size = 0;

		fz_require(kv_stat(s, e->key, e->klen, &size, meta, &mlen) == 0,
			   "a key kv_scan listed can be statted");
		fz_require(size == e->size && size <= KV_MAX_VALUE, "kv_stat's size is kv_scan's");
		fz_require(mlen == e->mlen && !memcmp(meta, e->meta, mlen),
			   "kv_stat's metadata is kv_scan's");
		e->read_rc = fz_digest(s, e, &e->digest);
		fz_require(e->read_rc == 0 || e->read_rc == -EIO, "a read fails with EIO or not at all");
	}
}

static inline int fz_state_equal(const struct fz_state *a, const struct fz_state *b)
{
	if (a->n != b->n)
		return 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct fz_entry *x = &a->e[i], *y = &b->e[i];
		if (x->klen != y->klen || memcmp(x->key, y->key, x->klen) || x->size != y->size ||
		    x->mlen != y->mlen || memcmp(x->meta, y->meta, x->mlen) ||
		    x->read_rc != y->read_rc || (!x->read_rc && x->digest != y->digest))
			return 0;
	}
	return 1;
}

static inline int fz_state_has_eio(const struct fz_state *st)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->e[i].read_rc)
			return 1;
	return 0;
}

/* The disk as it is now, to compare with later (faultio_compare, the current view). */
static inline struct faultio *fz_clone(struct faultio *f)
{
	struct faultio *c;
	if (faultio_clone(f, &c))
		abort();
	return c;
}

/* The store's files are as they were: names and contents. The LOCK file does not count (an open
 * creates it before it reads anything; it holds no data). */
static inline void fz_require_unchanged(struct faultio *before, struct faultio *now, const char *what)
{
	struct faultio *a = fz_clone(before), *b = fz_clone(now);
	char why[256];
	int rc;

	if (faultio_exists(a, FZ_DIR "/LOCK") && faultio_remove(a, FZ_DIR "/LOCK"))
		abort();
	if (faultio_exists(b, FZ_DIR "/LOCK") && faultio_remove(b, FZ_DIR "/LOCK"))
		abort();
	rc = faultio_compare(a, b, FIO_VIEW_CURRENT, why, sizeof(why));
	faultio_destroy(a);
	faultio_destroy(b);
	if (rc) {
		fprintf(stderr, "fuzz: %s changed the disk: %s\n", what, rc > 0 ? why : "compare failed");
		abort();
	}
}

/* A store opened with o: the state it holds (fz_state_read), which a forced cleaner pass must
 * not change; then a write, a close, and a strict reopen that must give exactly that state plus
 * the write. */
static inline void fz_reopen_holds(struct faultio *f, struct kv *s, const char *what)
{
	struct kv_options o = fz_options(f, KV_RECOVERY_STRICT);
	struct kv_report rep;
	struct fz_state before, after;
	int rc;

	char key[16] = "\xff" "fz";
	size_t klen = 3;
	uint64_t size;

	fz_state_read(s, &before);
	/* a forced cleaner pass moves every live byte and checkpoints: nothing a reader sees
	 * changes (the empty key's value too: test_values:
	 * the_cleaner_moves_the_value_of_the_empty_key) */
	{
		struct fz_state cleaned;
		uint64_t moved = 0;
		rc = kv_clean(s, 1, &moved);
		if (rc) {
			fprintf(stderr, "fuzz: kv_clean after %s: %s\n", what, strerror(-rc));
			abort();
		}
		fz_state_read(s, &cleaned);
		fz_require(fz_state_equal(&before, &cleaned), "a cleaner pass changes no value");
		fz_state_free(&cleaned);
	}
	/* a key the store does not hold (an input may hold any key) */
	while (kv_stat(s, key, klen, &size, NULL, NULL) != -ENOENT) {
		fz_require(klen < sizeof(key), "a free key among a few");
		key[klen++] = 'z';
	}
	rc = kv_put(s, key, klen, "x", 1);
	fz_require(rc == 0, "a recovered store takes a write");
	fz_require(kv_close(s) == 0, "a recovered store closes cleanly");
	s = NULL;
	rc = kv_open(&s, FZ_DIR, &o, &rep);
	if (rc) {
		fprintf(stderr, "fuzz: reopen after %s: %s (damage %d in %s at %llu)\n", what,
			strerror(-rc), (int)rep.damage, rep.damage_file,
			(unsigned long long)rep.damage_offset);
		abort();
	}
	fz_require(kv_del(s, key, klen) == 0, "the write made before close is there");
	fz_state_read(s, &after);
	fz_require(fz_state_equal(&before, &after), "a close and a reopen keep the state exactly");
	fz_state_free(&before);
	fz_state_free(&after);
	fz_require(kv_close(s) == 0, "closes");
}

/* The properties of any store directory, whatever its bytes:
 * - kv_check and a read-only open change nothing; a strict open that refuses changes nothing
 *   either; read-only and strict opens agree on damage, and see the same state;
 * - check and strict open agree: a store check passes opens, and one strict open refuses for
 *   damage check refuses too (check may refuse more: it also reads every value byte);
 * - a read fails (-EIO) only where check found damaged value bytes;
 * - what a strict open recovers survives a cleaner pass, a write, a close and a reopen exactly;
 * - salvage, when it succeeds, leaves a store that opens strictly, checks clean of everything
 *   but damaged value bytes, and again survives a close and reopen exactly. */
static inline void fz_exercise(struct faultio *f)
{
	struct kv_report crep, orep, srep;
	struct kv_options o = fz_options(f, KV_RECOVERY_STRICT), ro = o;
	struct faultio *before = fz_clone(f);
	struct kv *s = NULL;
	struct fz_state rost = { 0 };
	int crc, orc, rorc, src;

	memset(&crep, 0, sizeof(crep));
	crc = kv_check(FZ_DIR, faultio_kvio(f), NULL, &crep);
	fz_require_unchanged(before, f, "kv_check");
	/* a read-only open changes nothing, whatever it finds */
	ro.read_only = 1;
	memset(&orep, 0, sizeof(orep));
	rorc = kv_open(&s, FZ_DIR, &ro, &orep);
	if (rorc == 0) {
		fz_state_read(s, &rost);
		fz_require(kv_close(s) == 0, "a read-only store closes");
		s = NULL;
	}
	fz_require_unchanged(before, f, "a read-only open");
	memset(&orep, 0, sizeof(orep));
	orc = kv_open(&s, FZ_DIR, &o, &orep);
	if (orc == 0) {
		struct fz_state st;
		fz_state_read(s, &st);
		if (fz_state_has_eio(&st))
			fz_require(crc == -EUCLEAN && crep.data_damaged_keys > 0,
				   "a read fails only where kv_check found damaged value bytes");
		if (rorc == 0)
			fz_require(fz_state_equal(&st, &rost), "read-only and strict opens see the same");
		fz_state_free(&st);
		fz_reopen_holds(f, s, "a strict open");
		s = NULL;
	} else {
		fz_require_unchanged(before, f, "a refused strict open");
	}
	if (crc == 0)
		fz_require(orc == 0, "a store kv_check passes opens");
	if (orc == -EUCLEAN)
		fz_require(crc == -EUCLEAN, "damage that refuses an open fails kv_check too");
	fz_require((rorc == -EUCLEAN) == (orc == -EUCLEAN),
		   "read-only and strict opens agree on damage");
	fz_state_free(&rost);
	faultio_destroy(before);

	memset(&srep, 0, sizeof(srep));
	src = kv_salvage(FZ_DIR, faultio_kvio(f), NULL, &srep);
	if (src == 0) {
		memset(&crep, 0, sizeof(crep));
		crc = kv_check(FZ_DIR, faultio_kvio(f), NULL, &crep);
		fz_require(crc == 0 || (crc == -EUCLEAN && crep.damage == KV_DAMAGE_VALUE_BYTES),
			   "after salvage only damaged value bytes remain for kv_check");
		memset(&orep, 0, sizeof(orep));
		orc = kv_open(&s, FZ_DIR, &o, &orep);
		fz_require(orc == 0, "salvage leaves a store that opens strictly");
		fz_reopen_holds(f, s, "salvage");
	}
}

/* Recompute the salted head checksum and the body checksum of every record in a segment image
 * (header included, whose salt is used) as long as the framing stays in bounds. */
static inline void fz_fix_segment(uint8_t *p, size_t len)
{
	size_t off = SEG_HDR_SIZE;
	uint32_t salt;

	if (len < SEG_HDR_SIZE)
		return;
	salt = le_get32(p + SEG_OFF_SALT);
	while (off + REC_HDR_SIZE <= len) {
		uint32_t plen = le_get32(p + off + REC_OFF_LEN);
		if (plen == 0 && le_get64(p + off + REC_OFF_LSN) == 0)
			break; /* zeros: the preallocated end */
		if (plen > len - off - REC_HDR_SIZE)
			break;
		le_put32(p + off + REC_OFF_BODY_CRC, crc32c(0, p + off + REC_HDR_SIZE, plen));
		le_put32(p + off + REC_OFF_HEAD_CRC,
			 crc32c(salt, p + off + REC_OFF_LEN, REC_HDR_SIZE - REC_OFF_LEN));
		off += REC_HDR_SIZE + plen;
	}
}

/* Recompute the header, entry and footer checksums of a checkpoint image as far as its framing
 * goes (ckpt.h). */
static inline void fz_fix_checkpoint(uint8_t *p, size_t len)
{
	size_t off = CKPT_HDR_SIZE;
	uint64_t count, i;

	if (len < CKPT_HDR_SIZE)
		return;
	le_put32(p + 44, crc32c(0, p, 44));
	count = le_get64(p + 24);
	for (i = 0; i < count && off + CKPT_ENTRY_HDR_SIZE <= len; i++) {
		uint64_t klen = le_get16(p + off + 4), mlen = le_get16(p + off + 6);
		uint64_t next = le_get32(p + off + 8);
		uint64_t body = klen + mlen + next * CKPT_EXT_SIZE;
		if (body > len - off - CKPT_ENTRY_HDR_SIZE)
			return;
		le_put32(p + off, crc32c(le_get32(p + 8) == 1 ? 0 : le_get32(p + 40), p + off + 4,
					 CKPT_ENTRY_HDR_SIZE - 4 + body));
		off += CKPT_ENTRY_HDR_SIZE + body;
	}
	if (off + CKPT_FOOTER_SIZE <= len) {
		le_put32(p + off + 8, crc32c(0, p, off));
		le_put32(p + off + 12, crc32c(0, p + off, 12));
	}
}
#endif
