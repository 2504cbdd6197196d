/* record.c — encode a batch of operations (kv_batch) and decode a record payload. */
#include "record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "kv.h"
#include "le.h"
#include "logfmt.h"

/* Data an operation carries, kept by reference: it goes into the payload at offset `at` of the
 * batch's own bytes (right after its checksums). */
struct dref {
	size_t at;
	const uint8_t *p;
	uint64_t len;
	uint32_t crc; /* crc32c of the len bytes */
};

/* A batch is its own bytes (every field but the data) built in place, the count at offset 0 kept
 * current, plus the data references. */
struct kv_batch {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
	struct dref *data;
	size_t ndata, dcap;
	uint64_t data_bytes;
};

int kv_batch_new(struct kv_batch **out)
{
	struct kv_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->cap = 256;
	b->buf = malloc(b->cap);
	if (!b->buf) {
		free(b);
		return -ENOMEM;
	}
	b->len = 4;
	le_put32(b->buf, 0);
	*out = b;
	return 0;
}

void kv_batch_free(struct kv_batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->data);
	free(b);
}

/* Make room for need more bytes (and one more data reference); the batch is unchanged on
 * failure. The whole payload must stay within a record. */
static int batch_reserve(struct kv_batch *b, uint64_t need, uint64_t data)
{
	if (need + data > REC_MAX_PAYLOAD - b->len - b->data_bytes)
		return -EFBIG;
	if (b->ndata == b->dcap) {
		size_t cap = b->dcap ? b->dcap * 2 : 4;
		struct dref *d = realloc(b->data, cap * sizeof(*d));
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->dcap = cap;
	}
	if (b->len + need <= b->cap)
		return 0;
	size_t cap = b->cap * 2;
	if (cap < b->len + need)
		cap = b->len + (size_t)need;
	uint8_t *nb = realloc(b->buf, cap);
	if (!nb)
		return -ENOMEM;
	b->buf = nb;
	b->cap = cap;
	return 0;
}

static int check_key(size_t klen)
{
	return klen > KV_MAX_KEY ? -ENAMETOOLONG : 0;
}

/* Reserve room for op, key, a fixed part of `extra` bytes and data bytes of data, then append op
 * and key. Variable parts follow through the batch_* helpers. */
static int batch_begin(struct kv_batch *b, enum rec_op op, const void *key, size_t klen, uint64_t extra,
		       uint64_t data)
{
	int rc = check_key(klen);
	if (rc)
		return rc;
	rc = batch_reserve(b, 3 + (uint64_t)klen + extra + 4 * data_chunks(data), data);
	if (rc)
		return rc;
	b->buf[b->len] = (uint8_t)op;
	le_put16(b->buf + b->len + 1, (uint16_t)klen);
	if (klen)
		memcpy(b->buf + b->len + 3, key, klen);
	b->len += 3 + klen;
	return 0;
}

static void batch_bytes(struct kv_batch *b, const void *p, size_t n)
{
	if (n)
		memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void batch_u16(struct kv_batch *b, uint16_t v)
{
	le_put16(b->buf + b->len, v);
	b->len += 2;
}

static void batch_u32(struct kv_batch *b, uint32_t v)
{
	le_put32(b->buf + b->len, v);
	b->len += 4;
}

static void batch_u64(struct kv_batch *b, uint64_t v)
{
	le_put64(b->buf + b->len, v);
	b->len += 8;
}

/* DATA(len): the chunk checksums now, the bytes by reference. Room was reserved. */
static void batch_data(struct kv_batch *b, const void *p, uint64_t len)
{
	const uint8_t *d = p;
	uint32_t whole = 0;

	for (uint64_t at = 0; at < len; at += DATA_CHUNK) {
		uint64_t n = len - at < DATA_CHUNK ? len - at : DATA_CHUNK;
		uint32_t c = crc32c(0, d + at, (size_t)n);
		whole = at ? crc32c_combine(whole, c, n) : c;
		batch_u32(b, c);
	}
	b->data[b->ndata++] = (struct dref){ .at = b->len, .p = d, .len = len, .crc = whole };
	b->data_bytes += len;
}

static void batch_end(struct kv_batch *b)
{
	b->count++;
	le_put32(b->buf, b->count);
}

int kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *meta, size_t mlen,
		 const void *val, uint64_t vlen)
{
	if (mlen > KV_MAX_META)
		return -EINVAL;
	if (vlen > KV_MAX_WRITE)
		return -EFBIG;
	int rc = batch_begin(b, REC_OP_PUT, key, klen, 2 + mlen + 8, vlen);
	if (rc)
		return rc;
	batch_u16(b, (uint16_t)mlen);
	batch_bytes(b, meta, mlen);
	batch_u64(b, vlen);
	batch_data(b, val, vlen);
	batch_end(b);
	return 0;
}

int kv_batch_del(struct kv_batch *b, const void *key, size_t klen)
{
	int rc = batch_begin(b, REC_OP_DEL, key, klen, 0, 0);
	if (rc)
		return rc;
	batch_end(b);
	return 0;
}

int kv_batch_write(struct kv_batch *b, const void *key, size_t klen, uint64_t off, const void *data,
		   uint64_t len)
{
	if (len > KV_MAX_WRITE || off > KV_MAX_VALUE || len > KV_MAX_VALUE - off)
		return -EFBIG;
	int rc = batch_begin(b, REC_OP_WRITE, key, klen, 16, len);
	if (rc)
		return rc;
	batch_u64(b, off);
	batch_u64(b, len);
	batch_data(b, data, len);
	batch_end(b);
	return 0;
}

/* An operation of key and two u64 fields. */
static int batch_key_u64s(struct kv_batch *b, enum rec_op op, const void *key, size_t klen, int n,
			  uint64_t x, uint64_t y)
{
	int rc = batch_begin(b, op, key, klen, 8 * (uint64_t)n, 0);
	if (rc)
		return rc;
	batch_u64(b, x);
	if (n > 1)
		batch_u64(b, y);
	batch_end(b);
	return 0;
}

int kv_batch_truncate(struct kv_batch *b, const void *key, size_t klen, uint64_t size)
{
	if (size > KV_MAX_VALUE)
		return -EFBIG;
	return batch_key_u64s(b, REC_OP_TRUNCATE, key, klen, 1, size, 0);
}

int kv_batch_punch(struct kv_batch *b, const void *key, size_t klen, uint64_t off, uint64_t len)
{
	if (off > KV_MAX_VALUE || len > KV_MAX_VALUE - off)
		return -EFBIG;
	return batch_key_u64s(b, REC_OP_PUNCH, key, klen, 2, off, len);
}

int kv_batch_setmeta(struct kv_batch *b, const void *key, size_t klen, const void *meta, size_t mlen)
{
	if (mlen > KV_MAX_META)
		return -EINVAL;
	int rc = batch_begin(b, REC_OP_SETMETA, key, klen, 2 + mlen, 0);
	if (rc)
		return rc;
	batch_u16(b, (uint16_t)mlen);
	batch_bytes(b, meta, mlen);
	batch_end(b);
	return 0;
}

static int batch_two_keys(struct kv_batch *b, enum rec_op op, const void *from, size_t flen,
			  const void *to, size_t tlen)
{
	int rc = check_key(tlen);
	if (rc)
		return rc;
	rc = batch_begin(b, op, from, flen, 2 + tlen, 0);
	if (rc)
		return rc;
	batch_u16(b, (uint16_t)tlen);
	batch_bytes(b, to, tlen);
	batch_end(b);
	return 0;
}

int kv_batch_rename(struct kv_batch *b, const void *from, size_t flen, const void *to, size_t tlen)
{
	return batch_two_keys(b, REC_OP_RENAME, from, flen, to, tlen);
}

int kv_batch_rename_prefix(struct kv_batch *b, const void *from, size_t flen, const void *to, size_t tlen)
{
	return batch_two_keys(b, REC_OP_RENAME_PREFIX, from, flen, to, tlen);
}

int batch_relocate(struct kv_batch *b, const void *key, size_t klen, const struct reloc_piece *pieces,
		   uint32_t n, const void *data)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < n; i++) {
		if (pieces[i].len > KV_MAX_WRITE - total)
			return -EFBIG;
		total += pieces[i].len;
	}
	int rc = batch_begin(b, REC_OP_RELOCATE, key, klen, 4 + (uint64_t)n * RELOC_PIECE_SIZE, total);
	if (rc)
		return rc;
	batch_u32(b, n);
	for (uint32_t i = 0; i < n; i++) {
		batch_u64(b, pieces[i].off);
		batch_u64(b, pieces[i].len);
		batch_u64(b, pieces[i].src_seg);
		batch_u64(b, pieces[i].src_pos);
	}
	batch_data(b, data, total);
	batch_end(b);
	return 0;
}

void batch_reader(const struct kv_batch *b, struct rec_reader *r, uint32_t *count)
{
	int rc = rec_reader_init(r, b->buf, b->len);
	(void)rc; /* a batch always holds its count */
	r->meta_mode = 1;
	*count = b->count;
}

int batch_frees_space(const struct kv_batch *b)
{
	struct rec_reader r;
	struct rec_op_view op;
	uint32_t count;
	int frees = 0, relocates = 0;

	batch_reader(b, &r, &count);
	for (uint32_t i = 0; i < count && rec_reader_next(&r, &op) == 1; i++) {
		frees |= op.op == REC_OP_DEL || op.op == REC_OP_TRUNCATE || op.op == REC_OP_PUNCH;
		relocates |= op.op == REC_OP_RELOCATE;
	}
	return relocates || (frees && b->data_bytes == 0);
}

int batch_iov(const struct kv_batch *b, struct iovec **iov_out, int *iovcnt, uint64_t *len, uint32_t *crc)
{
	struct iovec *iov = malloc((2 * b->ndata + 1) * sizeof(*iov));
	size_t from = 0;
	uint32_t c = 0;
	int n = 0;

	if (!iov)
		return -ENOMEM;
	for (size_t i = 0; i <= b->ndata; i++) {
		size_t to = i < b->ndata ? b->data[i].at : b->len;
		iov[n++] = (struct iovec){ .iov_base = b->buf + from, .iov_len = to - from };
		c = crc32c(c, b->buf + from, to - from);
		if (i < b->ndata && b->data[i].len) {
			iov[n++] = (struct iovec){ .iov_base = (void *)b->data[i].p,
						   .iov_len = (size_t)b->data[i].len };
			c = crc32c_combine(c, b->data[i].crc, b->data[i].len);
		}
		from = to;
	}
	*iov_out = iov;
	*iovcnt = n;
	*len = b->len + b->data_bytes;
	*crc = c;
	return 0;
}

/* ---- a batch as bytes, for another store ---------------------------------------------------- */

/* 1 when the batch holds an operation that names this store's own segments (RELOCATE). */
static int batch_is_local(const struct kv_batch *b)
{
	struct rec_reader r;
	struct rec_op_view op;
	uint32_t count;
	int rc;

	batch_reader(b, &r, &count);
	while ((rc = rec_reader_next(&r, &op)) == 1)
		if (op.op == REC_OP_RELOCATE)
			return 1;
	return 0;
}

uint64_t kv_batch_encoded_len(const struct kv_batch *b)
{
	return b->len + b->data_bytes;
}

int kv_batch_encode(const struct kv_batch *b, void *dst, uint64_t len)
{
	uint8_t *d = dst;
	size_t from = 0;

	if (len != kv_batch_encoded_len(b) || batch_is_local(b))
		return -EINVAL;
	for (size_t i = 0; i <= b->ndata; i++) {
		size_t to = i < b->ndata ? b->data[i].at : b->len;
		memcpy(d, b->buf + from, to - from);
		d += to - from;
		if (i < b->ndata && b->data[i].len) {
			memcpy(d, b->data[i].p, (size_t)b->data[i].len);
			d += b->data[i].len;
		}
		from = to;
	}
	return 0;
}

/* One decoded operation added to b, its data by reference into the payload p. The reader has
 * checked every limit already, so a refusal here means the bytes are not what an encoder makes. */
static int decode_op(struct kv_batch *b, const uint8_t *p, const struct rec_op_view *op)
{
	int rc;

	switch (op->op) {
	case REC_OP_PUT:
		rc = kv_batch_put(b, op->key, op->klen, op->meta, op->mlen, p + op->data_at, op->dlen);
		break;
	case REC_OP_DEL:
		rc = kv_batch_del(b, op->key, op->klen);
		break;
	case REC_OP_WRITE:
		rc = kv_batch_write(b, op->key, op->klen, op->off, p + op->data_at, op->dlen);
		break;
	case REC_OP_TRUNCATE:
		rc = kv_batch_truncate(b, op->key, op->klen, op->off);
		break;
	case REC_OP_SETMETA:
		rc = kv_batch_setmeta(b, op->key, op->klen, op->meta, op->mlen);
		break;
	case REC_OP_RENAME:
		rc = kv_batch_rename(b, op->key, op->klen, op->key2, op->klen2);
		break;
	case REC_OP_RENAME_PREFIX:
		rc = kv_batch_rename_prefix(b, op->key, op->klen, op->key2, op->klen2);
		break;
	case REC_OP_PUNCH:
		rc = kv_batch_punch(b, op->key, op->klen, op->off, op->dlen);
		break;
	case REC_OP_RELOCATE:
		return -EINVAL;
	default:
		return -EBADMSG;
	}
	return rc == -ENOMEM ? rc : rc ? -EBADMSG : 0;
}

/* The rebuilt batch's own bytes (every field but the data, its chunk checksums computed again
 * from the data) must be the payload's, piece for piece: a damaged data byte shows as a checksum
 * that differs. */
static int batch_matches(const struct kv_batch *b, const uint8_t *p, uint64_t len)
{
	uint64_t at = 0;
	size_t from = 0;

	for (size_t i = 0; i <= b->ndata; i++) {
		size_t to = i < b->ndata ? b->data[i].at : b->len;
		if (to - from > len - at || memcmp(b->buf + from, p + at, to - from) != 0)
			return -EBADMSG;
		at += to - from;
		if (i < b->ndata)
			at += b->data[i].len; /* the data is the payload's own bytes */
		from = to;
	}
	return at == len ? 0 : -EBADMSG;
}

int kv_batch_decode(struct kv_batch **out, const void *buf, uint64_t len)
{
	struct kv_batch *b = NULL;
	struct rec_reader r;
	struct rec_op_view op;
	int rc;

	*out = NULL;
	if (len > REC_MAX_PAYLOAD)
		return -EBADMSG;
	rc = rec_reader_init(&r, buf, (size_t)len);
	if (rc)
		return rc;
	rc = kv_batch_new(&b);
	if (rc)
		return rc;
	while ((rc = rec_reader_next(&r, &op)) == 1) {
		rc = decode_op(b, buf, &op);
		if (rc)
			goto out;
	}
	if (rc == 0)
		rc = batch_matches(b, buf, len);
out:
	if (rc)
		kv_batch_free(b);
	else
		*out = b;
	return rc;
}

int rec_reader_init(struct rec_reader *r, const void *payload, size_t len)
{
	if (len < 4)
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->p = payload;
	r->len = len;
	r->pos = 4;
	r->left = le_get32(r->p);
	return 0;
}

/* Take n bytes at the read position, or fail when the payload is shorter. */
static const uint8_t *take(struct rec_reader *r, uint64_t n)
{
	if (n > r->len - r->pos)
		return NULL;
	const uint8_t *at = r->p + r->pos;
	r->pos += (size_t)n;
	return at;
}

static int take_key(struct rec_reader *r, const uint8_t **key, size_t *klen)
{
	const uint8_t *p = take(r, 2);
	if (!p)
		return -EBADMSG;
	*klen = le_get16(p);
	if (*klen > KV_MAX_KEY)
		return -EBADMSG;
	*key = take(r, *klen);
	return *key ? 0 : -EBADMSG;
}

static int take_u64(struct rec_reader *r, uint64_t *v)
{
	const uint8_t *p = take(r, 8);
	if (!p)
		return -EBADMSG;
	*v = le_get64(p);
	return 0;
}

static int take_meta(struct rec_reader *r, struct rec_op_view *op)
{
	const uint8_t *p = take(r, 2);
	if (!p)
		return -EBADMSG;
	op->mlen = le_get16(p);
	if (op->mlen > KV_MAX_META)
		return -EBADMSG;
	op->meta = take(r, op->mlen);
	return op->meta ? 0 : -EBADMSG;
}

/* DATA(op->dlen): its checksums, then (unless in meta mode) the bytes. */
static int take_data(struct rec_reader *r, struct rec_op_view *op)
{
	if (op->dlen > KV_MAX_WRITE)
		return -EBADMSG;
	op->crcs = take(r, 4 * data_chunks(op->dlen));
	if (!op->crcs)
		return -EBADMSG;
	op->data_at = r->pos + r->skipped;
	if (r->meta_mode)
		r->skipped += op->dlen;
	else if (!take(r, op->dlen))
		return -EBADMSG;
	return 0;
}

void reloc_piece_at(const struct rec_op_view *op, uint32_t i, struct reloc_piece *p)
{
	const uint8_t *q = op->pieces + (size_t)i * RELOC_PIECE_SIZE;
	p->off = le_get64(q);
	p->len = le_get64(q + 8);
	p->src_seg = le_get64(q + 16);
	p->src_pos = le_get64(q + 24);
}

/* RELOCATE's pieces: ascending, disjoint, non-empty file ranges whose lengths add up to dlen. */
static int take_pieces(struct rec_reader *r, struct rec_op_view *op)
{
	const uint8_t *p = take(r, 4);
	uint64_t total = 0, end = 0;
	if (!p)
		return -EBADMSG;
	op->npieces = le_get32(p);
	if (op->npieces > KV_MAX_WRITE / DATA_CHUNK + 1)
		return -EBADMSG;
	op->pieces = take(r, (uint64_t)op->npieces * RELOC_PIECE_SIZE);
	if (!op->pieces)
		return -EBADMSG;
	for (uint32_t i = 0; i < op->npieces; i++) {
		struct reloc_piece pc;
		reloc_piece_at(op, i, &pc);
		if (!pc.len || pc.len > KV_MAX_WRITE || pc.off < end || pc.off > KV_MAX_VALUE - pc.len)
			return -EBADMSG;
		end = pc.off + pc.len;
		total += pc.len;
		if (total > KV_MAX_WRITE)
			return -EBADMSG;
	}
	op->dlen = total;
	return 0;
}

int rec_reader_next(struct rec_reader *r, struct rec_op_view *op)
{
	if (r->left == 0)
		return r->pos == r->len ? 0 : -EBADMSG;
	const uint8_t *p = take(r, 1);
	if (!p)
		return -EBADMSG;
	memset(op, 0, sizeof(*op));
	op->op = (enum rec_op)*p;
	if (take_key(r, &op->key, &op->klen))
		return -EBADMSG;
	switch (op->op) {
	case REC_OP_PUT:
		if (take_meta(r, op) || take_u64(r, &op->dlen) || take_data(r, op))
			return -EBADMSG;
		break;
	case REC_OP_DEL:
		break;
	case REC_OP_WRITE:
		if (take_u64(r, &op->off) || take_u64(r, &op->dlen))
			return -EBADMSG;
		if (op->off > KV_MAX_VALUE || op->dlen > KV_MAX_VALUE - op->off || take_data(r, op))
			return -EBADMSG;
		break;
	case REC_OP_TRUNCATE:
		if (take_u64(r, &op->off) || op->off > KV_MAX_VALUE)
			return -EBADMSG;
		break;
	case REC_OP_PUNCH:
		if (take_u64(r, &op->off) || take_u64(r, &op->dlen) || op->off > KV_MAX_VALUE ||
		    op->dlen > KV_MAX_VALUE - op->off)
			return -EBADMSG;
		break;
	case REC_OP_SETMETA:
		if (take_meta(r, op))
			return -EBADMSG;
		break;
	case REC_OP_RENAME:
	case REC_OP_RENAME_PREFIX:
		if (take_key(r, &op->key2, &op->klen2))
			return -EBADMSG;
		break;
	case REC_OP_RELOCATE:
		if (take_pieces(r, op) || take_data(r, op))
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	r->left--;
	return 1;
}

/* Every chunk of an operation's data against its checksum. */
static int check_chunks(const uint8_t *payload, const struct rec_op_view *op)
{
	const uint8_t *d = payload + op->data_at;
	for (uint64_t at = 0, k = 0; at < op->dlen; at += DATA_CHUNK, k++) {
		uint64_t n = op->dlen - at < DATA_CHUNK ? op->dlen - at : DATA_CHUNK;
		if (crc32c(0, d + at, (size_t)n) != le_get32(op->crcs + 4 * k))
			return -EBADMSG;
	}
	return 0;
}

int rec_validate(const void *payload, size_t len, int check_data)
{
	struct rec_reader r;
	struct rec_op_view op;
	int rc = rec_reader_init(&r, payload, len);
	if (rc)
		return rc;
	while ((rc = rec_reader_next(&r, &op)) == 1)
		if (check_data && op.dlen && op.op != REC_OP_PUNCH && check_chunks(payload, &op))
			return -EBADMSG;
	return rc;
}

/* One pass over the payload's data chunks: with bad NULL, the payload's checksum with every
 * failing chunk counted by its stored checksum (*crc) and their number (*n); with bad, the
 * failing chunks reported. */
static int damage_pass(const uint8_t *payload, size_t len, uint32_t *crc, uint64_t *n,
		       int (*bad)(void *arg, uint64_t at, uint64_t n), void *arg)
{
	struct rec_reader r;
	struct rec_op_view op;
	uint64_t done = 0; /* payload bytes folded into acc */
	uint32_t acc = 0;
	int rc = rec_reader_init(&r, payload, len);

	*n = 0;
	while (!rc && (rc = rec_reader_next(&r, &op)) == 1) {
		rc = 0;
		if (!op.dlen || op.op == REC_OP_PUNCH) /* a punch's length is not data */
			continue;
		for (uint64_t at = 0, k = 0; !rc && at < op.dlen; at += DATA_CHUNK, k++) {
			uint64_t c = op.data_at + at, cn = op.dlen - at < DATA_CHUNK ? op.dlen - at : DATA_CHUNK;
			uint32_t stored = le_get32(op.crcs + 4 * k);
			if (crc32c(0, payload + c, (size_t)cn) == stored)
				continue;
			(*n)++;
			if (bad) {
				rc = bad(arg, c, cn);
				continue;
			}
			acc = crc32c(acc, payload + done, (size_t)(c - done));
			acc = crc32c_combine(acc, stored, cn);
			done = c + cn;
		}
	}
	if (rc)
		return rc;
	*crc = crc32c(acc, payload + done, len - (size_t)done);
	return 0;
}

int rec_locate_damage(const void *payload, size_t len, uint32_t body_crc,
		      int (*bad)(void *arg, uint64_t at, uint64_t n), void *arg)
{
	uint32_t crc;
	uint64_t n;
	int rc = damage_pass(payload, len, &crc, &n, NULL, NULL);

	if (rc)
		return rc;
	if (!n || crc != body_crc)
		return -EBADMSG;
	rc = damage_pass(payload, len, &crc, &n, bad, arg);
	return rc ? rc : (int)(n > INT32_MAX ? INT32_MAX : n);
}
