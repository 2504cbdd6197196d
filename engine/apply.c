/* apply.c — the state machine over the index (see apply.h).
 * Model: tests/model/values_on_disk.pml stands for apply_relocate with kvindex_relocate (a
 * relocation moves only what is still where it was read). */
#include "apply.h"

#include <errno.h>

/* The extent for data bytes [from, from + len) of op's data, at file offset off. */
static struct kvext data_ext(const struct rec_op_view *op, const struct rec_loc *loc, uint64_t off,
			     uint64_t from, uint64_t len)
{
	uint64_t cbase = loc->pos + op->data_at;
	return (struct kvext){ .off = off, .seg = loc->seg, .pos = cbase + from, .cbase = cbase,
			       .len = (uint32_t)len, .dlen = (uint32_t)op->dlen };
}

static int apply_relocate(struct kvindex *ix, const struct rec_op_view *op, const struct rec_loc *loc)
{
	uint64_t from = 0;
	for (uint32_t i = 0; i < op->npieces; i++) {
		struct reloc_piece pc;
		reloc_piece_at(op, i, &pc);
		struct kvext e = data_ext(op, loc, pc.off, from, pc.len);
		int rc = kvindex_relocate(ix, op->key, op->klen, pc.src_seg, pc.src_pos, &e);
		if (rc == -ENOMEM)
			return rc;
		from += pc.len;
	}
	return 0;
}

static int apply_op(struct kvindex *ix, const struct rec_op_view *op, const struct rec_loc *loc)
{
	struct kvext e;

	switch (op->op) {
	case REC_OP_PUT:
		e = data_ext(op, loc, 0, 0, op->dlen);
		return kvindex_put(ix, op->key, op->klen, op->meta, op->mlen, op->dlen, op->dlen ? &e : NULL);
	case REC_OP_DEL:
		return kvindex_del(ix, op->key, op->klen);
	case REC_OP_WRITE:
		/* like pwrite(2), writing nothing changes nothing, not even the size */
		e = data_ext(op, loc, op->off, 0, op->dlen);
		return kvindex_write(ix, op->key, op->klen, op->dlen ? &e : NULL);
	case REC_OP_TRUNCATE:
		return kvindex_truncate(ix, op->key, op->klen, op->off);
	case REC_OP_PUNCH:
		return kvindex_punch(ix, op->key, op->klen, op->off, op->dlen);
	case REC_OP_SETMETA:
		return kvindex_setmeta(ix, op->key, op->klen, op->meta, op->mlen);
	case REC_OP_RENAME:
		return kvindex_rename(ix, op->key, op->klen, op->key2, op->klen2);
	case REC_OP_RENAME_PREFIX:
		return kvindex_rename_prefix(ix, op->key, op->klen, op->key2, op->klen2);
	case REC_OP_RELOCATE:
		return apply_relocate(ix, op, loc);
	}
	return -EBADMSG;
}

int apply_record(struct kvindex *ix, const struct rec_reader *r0, const struct rec_loc *loc)
{
	struct rec_reader r = *r0;
	struct rec_op_view op;
	int rc;

	/* validate the whole payload before touching the index */
	while ((rc = rec_reader_next(&r, &op)) == 1)
		;
	if (rc)
		return rc;
	r = *r0;
	while ((rc = rec_reader_next(&r, &op)) == 1) {
		rc = apply_op(ix, &op, loc);
		if (rc == -ENOMEM)
			return rc;
		/* any other failure is a deterministic no-op: see apply.h */
	}
	return rc;
}
