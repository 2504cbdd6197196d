/* record.h — the operations a log record carries, encoded and decoded.
 * A record's payload is a batch: a list of operations applied atomically under one LSN.
 * Encoding (little-endian; byte table in docs/FORMAT.md):
 *   count u32, then count operations, each
 *     op u8, klen u16, key[klen], then by op:
 *       PUT          mlen u16, meta[mlen], vlen u64, value[vlen]
 *       DEL          -
 *       WRITE        off u64, dlen u64, data[dlen]
 *       TRUNCATE     size u64
 *       SETMETA      mlen u16, meta[mlen]
 *       RENAME       tlen u16, to[tlen]
 *       RENAME_PREFIX tlen u16, to_prefix[tlen]
 * The log (wal.c) never looks inside a payload; the state machine (apply.c) never sees framing. */
#ifndef KVFS_RECORD_H
#define KVFS_RECORD_H
#include <stddef.h>
#include <stdint.h>

enum rec_op {
	REC_OP_PUT = 1,
	REC_OP_DEL = 2,
	REC_OP_WRITE = 3,
	REC_OP_TRUNCATE = 4,
	REC_OP_SETMETA = 5,
	REC_OP_RENAME = 6,
	REC_OP_RENAME_PREFIX = 7,
};

/* One decoded operation; pointers alias the payload. */
struct rec_op_view {
	enum rec_op op;
	const uint8_t *key, *key2; /* key2: RENAME target or RENAME_PREFIX new prefix */
	size_t klen, klen2;
	const uint8_t *meta;
	size_t mlen;
	const uint8_t *data;       /* PUT value or WRITE data */
	uint64_t dlen;
	uint64_t off;              /* WRITE offset, TRUNCATE size */
};

struct rec_reader {
	const uint8_t *p;
	size_t len, pos;
	uint32_t left;
};

/* Start reading a payload: -EBADMSG when too short for its count. */
int rec_reader_init(struct rec_reader *r, const void *payload, size_t len);
/* 1 and the next operation, 0 at the end (which must be the payload's end), -EBADMSG when
 * malformed (a field past the end, an unknown op, a length over its limit, trailing bytes). */
int rec_reader_next(struct rec_reader *r, struct rec_op_view *op);
struct kv_batch;
/* The encoded payload of a batch built with kv_batch_* (kv.h), and its operation count. */
const void *kv_batch_payload(const struct kv_batch *b, size_t *len, uint32_t *count);

/* Walk a whole payload: 0 when well-formed, -EBADMSG. */
int rec_validate(const void *payload, size_t len);
#endif
