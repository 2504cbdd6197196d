/* entry.c — raft log entries and the snapshot manifest (entry.h). */
#include "entry.h"

#include <errno.h>
#include <raft.h>
#include <string.h>

#include "crc32c.h"
#include "kv.h"
#include "le.h"

#define ENTRY_MAGIC 0x4552564bu    /* "KVRE" */
#define MANIFEST_MAGIC 0x5352564bu /* "KVRS" */

static uint64_t pad8(uint64_t n)
{
	return (n + 7) & ~(uint64_t)7;
}

int entry_encode(const struct kv_batch *b, unsigned flags, uint64_t term, uint64_t max_batch,
		 void **buf, size_t *len)
{
	uint64_t blen = kv_batch_encoded_len(b), total;
	uint8_t *p;
	int rc;

	if (blen > max_batch)
		return -EFBIG;
	total = pad8(ENTRY_HEADER + blen);
	p = raft_malloc((size_t)total);
	if (!p)
		return -ENOMEM;
	le_put32(p, ENTRY_MAGIC);
	le_put16(p + 4, ENTRY_VERSION);
	le_put16(p + 6, (uint16_t)flags);
	le_put64(p + 8, blen);
	le_put64(p + 16, term);
	le_put32(p + 28, 0);
	rc = kv_batch_encode(b, p + ENTRY_HEADER, blen);
	if (rc) {
		raft_free(p);
		return rc;
	}
	memset(p + ENTRY_HEADER + blen, 0, (size_t)(total - ENTRY_HEADER - blen));
	le_put32(p + 24, crc32c(crc32c(0, p, 24), p + ENTRY_HEADER, (size_t)blen));
	*buf = p;
	*len = (size_t)total;
	return 0;
}

int entry_decode(const void *buf, size_t len, struct entry_view *v)
{
	const uint8_t *p = buf;
	size_t header, at; /* the header's length, and where its crc is */
	uint64_t blen;

	if (len < ENTRY_HEADER_V1 || le_get32(p) != ENTRY_MAGIC)
		return -EBADMSG;
	switch (le_get16(p + 4)) {
	case 1: /* written before the build term: read as term 0 (raft's log may still hold it) */
		header = ENTRY_HEADER_V1;
		at = 16;
		break;
	case ENTRY_VERSION:
		header = ENTRY_HEADER;
		at = 24;
		break;
	default:
		return -EBADMSG;
	}
	if (len < header || le_get32(p + at + 4) != 0)
		return -EBADMSG;
	blen = le_get64(p + 8);
	/* the length raft gives back is the padded one; it must be exactly that */
	if (blen > len - header || pad8(header + blen) != len)
		return -EBADMSG;
	for (size_t i = header + (size_t)blen; i < len; i++)
		if (p[i])
			return -EBADMSG;
	if (crc32c(crc32c(0, p, at), p + header, (size_t)blen) != le_get32(p + at))
		return -EBADMSG;
	v->flags = le_get16(p + 6);
	v->term = header == ENTRY_HEADER ? le_get64(p + 16) : 0;
	v->batch = p + header;
	v->len = blen;
	return 0;
}

void manifest_encode(const struct manifest *m, uint8_t out[MANIFEST_SIZE])
{
	memset(out, 0, MANIFEST_SIZE);
	le_put32(out, MANIFEST_MAGIC);
	le_put16(out + 4, MANIFEST_VERSION);
	le_put64(out + 8, m->holder);
	le_put64(out + 16, m->index);
	le_put32(out + 24, crc32c(0, out, 24));
}

int manifest_decode(const void *buf, size_t len, struct manifest *m)
{
	const uint8_t *p = buf;

	/* raft may hand the buffer back padded; only the first MANIFEST_SIZE bytes count */
	if (len < MANIFEST_SIZE || le_get32(p) != MANIFEST_MAGIC ||
	    le_get16(p + 4) != MANIFEST_VERSION || le_get16(p + 6) != 0 ||
	    le_get32(p + 24) != crc32c(0, p, 24) || le_get32(p + 28) != 0)
		return -EBADMSG;
	m->holder = le_get64(p + 8);
	m->index = le_get64(p + 16);
	return 0;
}
