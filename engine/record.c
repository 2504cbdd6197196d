/* record.c — encode a batch of operations (kv_batch) and decode a record payload. */
#include "record.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "le.h"
#include "kv.h"

/* A batch is its encoded payload, built in place: the count at offset 0 is kept current. */
struct kv_batch {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
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
	free(b);
}

/* Make room for need more bytes; the batch is unchanged on failure. */
static int batch_reserve(struct kv_batch *b, uint64_t need)
{
	if (need > SIZE_MAX - b->len)
		return -EFBIG;
	if (b->len + need <= b->cap)
		return 0;
	/* double, but never past what is needed by more than that: a 1 GiB value must not
	 * allocate 2 GiB */
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

/* Append op, key and a fixed tail, then bump the count. Variable parts follow via append_raw. */
static int batch_begin(struct kv_batch *b, enum rec_op op, const void *key, size_t klen, uint64_t extra)
{
	int rc = check_key(klen);
	if (rc)
		return rc;
	rc = batch_reserve(b, 3 + (uint64_t)klen + extra);
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

static void batch_u64(struct kv_batch *b, uint64_t v)
{
	le_put64(b->buf + b->len, v);
	b->len += 8;
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
	if (vlen > KV_MAX_VALUE)
		return -EFBIG;
	int rc = batch_begin(b, REC_OP_PUT, key, klen, 2 + mlen + 8 + vlen);
	if (rc)
		return rc;
	batch_u16(b, (uint16_t)mlen);
	batch_bytes(b, meta, mlen);
	batch_u64(b, vlen);
	batch_bytes(b, val, (size_t)vlen);
	batch_end(b);
	return 0;
}

int kv_batch_del(struct kv_batch *b, const void *key, size_t klen)
{
	int rc = batch_begin(b, REC_OP_DEL, key, klen, 0);
	if (rc)
		return rc;
	batch_end(b);
	return 0;
}

int kv_batch_write(struct kv_batch *b, const void *key, size_t klen, uint64_t off, const void *data,
		   uint64_t len)
{
	if (off > KV_MAX_VALUE || len > KV_MAX_VALUE - off)
		return -EFBIG;
	int rc = batch_begin(b, REC_OP_WRITE, key, klen, 16 + len);
	if (rc)
		return rc;
	batch_u64(b, off);
	batch_u64(b, len);
	batch_bytes(b, data, (size_t)len);
	batch_end(b);
	return 0;
}

int kv_batch_truncate(struct kv_batch *b, const void *key, size_t klen, uint64_t size)
{
	if (size > KV_MAX_VALUE)
		return -EFBIG;
	int rc = batch_begin(b, REC_OP_TRUNCATE, key, klen, 8);
	if (rc)
		return rc;
	batch_u64(b, size);
	batch_end(b);
	return 0;
}

int kv_batch_setmeta(struct kv_batch *b, const void *key, size_t klen, const void *meta, size_t mlen)
{
	if (mlen > KV_MAX_META)
		return -EINVAL;
	int rc = batch_begin(b, REC_OP_SETMETA, key, klen, 2 + mlen);
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
	rc = batch_begin(b, op, from, flen, 2 + tlen);
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

const void *kv_batch_payload(const struct kv_batch *b, size_t *len, uint32_t *count)
{
	*len = b->len;
	*count = b->count;
	return b->buf;
}

int rec_reader_init(struct rec_reader *r, const void *payload, size_t len)
{
	if (len < 4)
		return -EBADMSG;
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
		if (take_meta(r, op) || take_u64(r, &op->dlen) || op->dlen > KV_MAX_VALUE)
			return -EBADMSG;
		op->data = take(r, op->dlen);
		if (!op->data)
			return -EBADMSG;
		break;
	case REC_OP_DEL:
		break;
	case REC_OP_WRITE:
		if (take_u64(r, &op->off) || take_u64(r, &op->dlen))
			return -EBADMSG;
		if (op->off > KV_MAX_VALUE || op->dlen > KV_MAX_VALUE - op->off)
			return -EBADMSG;
		op->data = take(r, op->dlen);
		if (!op->data)
			return -EBADMSG;
		break;
	case REC_OP_TRUNCATE:
		if (take_u64(r, &op->off) || op->off > KV_MAX_VALUE)
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
	default:
		return -EBADMSG;
	}
	r->left--;
	return 1;
}

int rec_validate(const void *payload, size_t len)
{
	struct rec_reader r;
	struct rec_op_view op;
	int rc = rec_reader_init(&r, payload, len);
	if (rc)
		return rc;
	while ((rc = rec_reader_next(&r, &op)) == 1)
		;
	return rc;
}
