/* fuzz_record — libFuzzer target for the record payload decoder (record.c), the encoder it must
 * mirror, and the state machine (apply.c).
 *
 * Input: a record payload (format 2: chunk checksums before each operation's data; record.h).
 * - rec_validate (without the data checks) and a rec_reader walk agree; rec_validate with the
 *   data checks refuses whatever the structural check refuses, and maybe more.
 * - A payload whose data checksums hold round-trips: its operations, put back into a batch with
 *   the kv_batch_* calls, give exactly the input's bytes and checksum (batch_iov), and the
 *   batch's own reader (meta mode, no data) sees the same operations at the same data offsets.
 * - apply_record refuses (-EBADMSG, nothing applied) exactly what the walk refuses. A payload it
 *   takes is applied twice over; every entry's extents stay valid (kvindex_check_extents) and
 *   point into this record's data; and applying the batch's meta-mode reader instead (what a
 *   live write does) gives the same index as replaying the payload (what recovery does). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "crc32c.h"
#include "index.h"
#include "kv.h"
#include "record.h"

#define fz_require(cond, what)                                                       \
	do {                                                                             \
		if (!(cond)) {                                                               \
			fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", what, __FILE__, \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOC_SEG 7
#define LOC_POS 4096

/* Every entry sane; extents inside the record's data when fresh (from applies of this record
 * only). */
static void check_index(struct kvindex *ix, size_t size)
{
	struct kvcursor *c;
	const void *key;
	size_t klen, mlen;
	const struct kvval *v;
	uint64_t n = 0;

	if (kvcursor_open_live(ix, NULL, 0, &c))
		abort();
	while (kvcursor_next(c, &key, &klen, &v) == 1) {
		uint32_t next = 0;
		const struct kvext *e = kvval_extents(v, &next);
		uint64_t sz = kvval_size(v);

		fz_require(klen <= KV_MAX_KEY && sz <= KV_MAX_VALUE, "an entry within the limits");
		kvval_meta(v, &mlen);
		fz_require(mlen <= KV_MAX_META, "metadata within its limit");
		fz_require(kvindex_check_extents(sz, e, next) == 0, "an entry's extents are valid");
		for (uint32_t i = 0; i < next; i++)
			fz_require(e[i].seg == LOC_SEG && e[i].pos >= LOC_POS &&
				   e[i].pos - LOC_POS <= size && e[i].len <= size - (e[i].pos - LOC_POS),
				   "an extent points into the record's data");
		n++;
	}
	kvcursor_close(c);
	fz_require(n == kvindex_count(ix), "the cursor walks kvindex_count entries");
}

static int same_index(struct kvindex *a, struct kvindex *b)
{
	struct kvcursor *ca, *cb;
	const void *ka, *kb;
	size_t kla, klb;
	const struct kvval *va, *vb;
	int same = 1, ra, rb;

	if (kvcursor_open_live(a, NULL, 0, &ca) || kvcursor_open_live(b, NULL, 0, &cb))
		abort();
	for (;;) {
		ra = kvcursor_next(ca, &ka, &kla, &va);
		rb = kvcursor_next(cb, &kb, &klb, &vb);
		if (ra != rb) {
			same = 0;
			break;
		}
		if (ra != 1)
			break;
		size_t ma, mb;
		const void *pa = kvval_meta(va, &ma), *pb = kvval_meta(vb, &mb);
		uint32_t na, nb;
		const struct kvext *ea = kvval_extents(va, &na), *eb = kvval_extents(vb, &nb);
		if (kla != klb || memcmp(ka, kb, kla) || kvval_size(va) != kvval_size(vb) || ma != mb ||
		    (ma && memcmp(pa, pb, ma)) || na != nb || (na && memcmp(ea, eb, na * sizeof(*ea)))) {
			same = 0;
			break;
		}
	}
	kvcursor_close(ca);
	kvcursor_close(cb);
	return same;
}

/* Put op back into b: what the store's callers do. 0, or the encoder's refusal. */
static int reencode(struct kv_batch *b, const uint8_t *payload, const struct rec_op_view *op)
{
	const uint8_t *d = payload + op->data_at;

	switch (op->op) {
	case REC_OP_PUT:
		return kv_batch_put(b, op->key, op->klen, op->meta, op->mlen, d, op->dlen);
	case REC_OP_DEL:
		return kv_batch_del(b, op->key, op->klen);
	case REC_OP_WRITE:
		return kv_batch_write(b, op->key, op->klen, op->off, d, op->dlen);
	case REC_OP_TRUNCATE:
		return kv_batch_truncate(b, op->key, op->klen, op->off);
	case REC_OP_SETMETA:
		return kv_batch_setmeta(b, op->key, op->klen, op->meta, op->mlen);
	case REC_OP_RENAME:
		return kv_batch_rename(b, op->key, op->klen, op->key2, op->klen2);
	case REC_OP_RENAME_PREFIX:
		return kv_batch_rename_prefix(b, op->key, op->klen, op->key2, op->klen2);
	case REC_OP_PUNCH:
		return kv_batch_punch(b, op->key, op->klen, op->off, op->dlen);
	case REC_OP_RELOCATE: {
		struct reloc_piece *pc = malloc((op->npieces + 1) * sizeof(*pc));
		int rc;
		if (!pc)
			abort();
		for (uint32_t i = 0; i < op->npieces; i++)
			reloc_piece_at(op, i, &pc[i]);
		rc = batch_relocate(b, op->key, op->klen, pc, op->npieces, d);
		free(pc);
		return rc;
	}
	}
	abort();
}

static int same_op(const struct rec_op_view *x, const struct rec_op_view *y)
{
	return x->op == y->op && x->klen == y->klen && !memcmp(x->key, y->key, x->klen) &&
	       x->klen2 == y->klen2 && (!x->klen2 || !memcmp(x->key2, y->key2, x->klen2)) &&
	       x->mlen == y->mlen && (!x->mlen || !memcmp(x->meta, y->meta, x->mlen)) &&
	       x->off == y->off && x->dlen == y->dlen && x->data_at == y->data_at &&
	       x->npieces == y->npieces &&
	       (!x->npieces || !memcmp(x->pieces, y->pieces, (size_t)x->npieces * RELOC_PIECE_SIZE));
}

/* The round trip of a payload whose checksums hold; returns the batch (for the live apply). */
static struct kv_batch *round_trip(const uint8_t *data, size_t size)
{
	struct rec_reader r, m;
	struct rec_op_view op, mop;
	struct kv_batch *b;
	struct iovec *iov;
	int iovcnt, rc;
	uint64_t len, at = 0;
	uint32_t crc, count;
	uint8_t *flat;

	if (kv_batch_new(&b) || rec_reader_init(&r, data, size))
		abort();
	while ((rc = rec_reader_next(&r, &op)) == 1)
		fz_require(reencode(b, data, &op) == 0, "the encoder takes what the decoder read");
	fz_require(rc == 0, "a valid payload reads to its end");
	if (batch_iov(b, &iov, &iovcnt, &len, &crc))
		abort();
	fz_require(len == size, "re-encoded, the payload has its length");
	flat = malloc(size + 1);
	if (!flat)
		abort();
	for (int i = 0; i < iovcnt; i++) {
		fz_require(iov[i].iov_len <= size - at, "the vector fits the length");
		memcpy(flat + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	fz_require(at == size && !memcmp(flat, data, size), "re-encoded, the payload has its bytes");
	fz_require(crc == crc32c(0, data, size), "batch_iov's checksum is the payload's");
	free(flat);
	free(iov);

	/* the batch's own reader: the same operations at the same places, without the data */
	batch_reader(b, &m, &count);
	if (rec_reader_init(&r, data, size))
		abort();
	for (uint32_t i = 0; i < count; i++) {
		fz_require(rec_reader_next(&m, &mop) == 1 && rec_reader_next(&r, &op) == 1,
			   "the batch's reader reads its count of operations");
		fz_require(same_op(&op, &mop), "meta mode decodes the operations the payload holds");
	}
	fz_require(rec_reader_next(&m, &mop) == 0 && rec_reader_next(&r, &op) == 0,
		   "both readers end together");
	(void)batch_frees_space(b); /* a predicate: any answer is right, it must only not crash */
	return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec_reader r;
	struct rec_op_view op;
	struct rec_loc loc = { LOC_SEG, LOC_POS };
	struct kvindex *ix;
	struct kv_batch *b = NULL;
	int valid, checked, walk, rc;

	if (size > (1u << 20))
		return 0;
	valid = rec_validate(data, size, 0);
	checked = rec_validate(data, size, 1);
	fz_require(valid == 0 || valid == -EBADMSG, "rec_validate: 0 or -EBADMSG");
	fz_require(valid == 0 || checked != 0, "the data checks refuse what the structure does");
	walk = rec_reader_init(&r, data, size);
	while (walk == 0 && (rc = rec_reader_next(&r, &op)) != 0)
		if (rc < 0)
			walk = rc;
	fz_require((valid == 0) == (walk == 0), "rec_validate agrees with a reader walk");
	if (checked == 0)
		b = round_trip(data, size);

	if (kvindex_create(&ix))
		abort();
	if (rec_reader_init(&r, data, size) != 0) {
		fz_require(valid != 0, "a payload too short for its count is invalid");
	} else {
		rc = apply_record(ix, &r, &loc);
		if (valid != 0) {
			fz_require(rc == -EBADMSG && kvindex_count(ix) == 0,
				   "a malformed payload: -EBADMSG, nothing applied");
		} else {
			fz_require(rc == 0, "a well-formed payload applies");
			check_index(ix, size);
			if (b) {
				/* a live write applies the batch in meta mode: the same state */
				struct kvindex *live;
				struct rec_reader m;
				uint32_t count;
				if (kvindex_create(&live))
					abort();
				batch_reader(b, &m, &count);
				fz_require(apply_record(live, &m, &loc) == 0, "the batch applies live");
				fz_require(same_index(ix, live), "live apply and replay give the same index");
				kvindex_destroy(live);
			}
			fz_require(apply_record(ix, &r, &loc) == 0, "applies again on top of itself");
			check_index(ix, size);
		}
	}
	kv_batch_free(b);
	kvindex_destroy(ix);
	return 0;
}
