/* apply.c — the state machine over the index (see apply.h). */
#include "apply.h"

#include <errno.h>

#include "record.h"

static int apply_op(struct kvindex *ix, const struct rec_op_view *op)
{
	switch (op->op) {
	case REC_OP_PUT:
		return kvindex_put(ix, op->key, op->klen, op->meta, op->mlen, op->data, op->dlen);
	case REC_OP_DEL:
		return kvindex_del(ix, op->key, op->klen);
	case REC_OP_WRITE:
		return kvindex_write(ix, op->key, op->klen, op->off, op->data, op->dlen);
	case REC_OP_TRUNCATE:
		return kvindex_truncate(ix, op->key, op->klen, op->off);
	case REC_OP_SETMETA:
		return kvindex_setmeta(ix, op->key, op->klen, op->meta, op->mlen);
	case REC_OP_RENAME:
		return kvindex_rename(ix, op->key, op->klen, op->key2, op->klen2);
	case REC_OP_RENAME_PREFIX:
		return kvindex_rename_prefix(ix, op->key, op->klen, op->key2, op->klen2);
	}
	return -EBADMSG;
}

int apply_record(struct kvindex *ix, const void *payload, size_t len)
{
	struct rec_reader r;
	struct rec_op_view op;
	int rc = rec_validate(payload, len);
	if (rc)
		return rc;
	rc = rec_reader_init(&r, payload, len);
	if (rc)
		return rc;
	while ((rc = rec_reader_next(&r, &op)) == 1) {
		rc = apply_op(ix, &op);
		if (rc == -ENOMEM)
			return rc;
		/* any other failure is a deterministic no-op: see apply.h */
	}
	return rc;
}
