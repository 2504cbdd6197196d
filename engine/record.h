/* record.h — the operations a log record carries, encoded and decoded.
 * A record's payload is a batch: a list of operations applied atomically under one LSN.
 * Encoding (little-endian; byte table in docs/FORMAT.md §4):
 *   count u32, then count operations, each
 *     op u8, klen u16, key[klen], then by op:
 *       PUT           mlen u16, meta[mlen], vlen u64, DATA(vlen)
 *       DEL           -
 *       WRITE         off u64, dlen u64, DATA(dlen)
 *       TRUNCATE      size u64
 *       SETMETA       mlen u16, meta[mlen]
 *       RENAME        tlen u16, to[tlen]
 *       RENAME_PREFIX tlen u16, to_prefix[tlen]
 *       PUNCH         off u64, len u64
 *       RELOCATE      n u32, n pieces of (off u64, len u64, src_seg u64, src_pos u64), DATA(sum of lens)
 *   DATA(n): a checksum per DATA_CHUNK bytes (u32 crc32c each, ceil(n / DATA_CHUNK) of them), then
 *   the n bytes. The bytes stay in the log for good (the log is the value store); the index
 *   points at them, and a reader checks every chunk it touches against its checksum.
 * The log (wal.c) never looks inside a payload; the state machine (apply.c) never sees framing.
 *
 * A batch under construction keeps its operations' data by reference: the bytes passed to
 * kv_batch_put, kv_batch_write and batch_relocate must stay valid and unchanged until the batch is
 * applied or freed. The payload is then the batch's own bytes with each operation's data spliced
 * in after its checksums (batch_iov). */
#ifndef KVFS_RECORD_H
#define KVFS_RECORD_H
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define DATA_CHUNK 4096u

static inline uint64_t data_chunks(uint64_t n)
{
	return (n + DATA_CHUNK - 1) / DATA_CHUNK;
}

enum rec_op {
	REC_OP_PUT = 1,
	REC_OP_DEL = 2,
	REC_OP_WRITE = 3,
	REC_OP_TRUNCATE = 4,
	REC_OP_SETMETA = 5,
	REC_OP_RENAME = 6,
	REC_OP_RENAME_PREFIX = 7,
	REC_OP_PUNCH = 8,
	REC_OP_RELOCATE = 9,
};

#define RELOC_PIECE_SIZE 32u

/* The bytes a RELOCATE operation of n pieces holding data bytes takes in a payload. */
static inline uint64_t relocate_op_size(size_t klen, uint32_t n, uint64_t data)
{
	return 3 + (uint64_t)klen + 4 + (uint64_t)n * RELOC_PIECE_SIZE + 4 * data_chunks(data) + data;
}

/* One decoded operation; pointers alias the payload. */
struct rec_op_view {
	enum rec_op op;
	const uint8_t *key, *key2; /* key2: RENAME target or RENAME_PREFIX new prefix */
	size_t klen, klen2;
	const uint8_t *meta;
	size_t mlen;
	uint64_t off;              /* WRITE and PUNCH offset, TRUNCATE size */
	uint64_t dlen;             /* data bytes (PUT value, WRITE, RELOCATE total); PUNCH length */
	uint64_t data_at;          /* the data's offset in the payload */
	const uint8_t *crcs;       /* its chunk checksums */
	uint32_t npieces;          /* RELOCATE */
	const uint8_t *pieces;     /* npieces * RELOC_PIECE_SIZE bytes */
};

struct reloc_piece {
	uint64_t off, len, src_seg, src_pos;
};
void reloc_piece_at(const struct rec_op_view *op, uint32_t i, struct reloc_piece *p);

/* A reader over a whole payload, or over a batch's own bytes (meta mode: the operations' data is
 * not there; positions are still those of the payload it stands for). */
struct rec_reader {
	const uint8_t *p;
	size_t len, pos;
	uint64_t skipped; /* meta mode: data bytes not present before pos */
	int meta_mode;
	uint32_t left;
};

/* Start reading a payload: -EBADMSG when too short for its count. */
int rec_reader_init(struct rec_reader *r, const void *payload, size_t len);
/* 1 and the next operation, 0 at the end (which must be the payload's end), -EBADMSG when
 * malformed (a field past the end, an unknown op, a length over its limit, trailing bytes). */
int rec_reader_next(struct rec_reader *r, struct rec_op_view *op);
/* Walk a whole payload: 0 when well-formed, -EBADMSG. With check_data, also every data chunk
 * against its checksum (-EBADMSG when one differs). */
int rec_validate(const void *payload, size_t len, int check_data);

/* A payload whose crc32c is not body_crc (its record's head checksum vouches for body_crc and
 * the length): is the damage only inside value bytes? The operations must parse; every data
 * chunk is checked against its own checksum; then the payload's checksum is recomputed from the
 * bytes outside the failing chunks with each failing chunk counted by its stored checksum (CRCs
 * combine: crc32c_combine). Equal to body_crc: every byte outside the failing chunks (op codes,
 * keys, lengths, metadata, the chunk checksums themselves) is as written, bar a 2^-32 chance,
 * and only the failing chunks' bytes are lost. Returns the number of failing chunks (>= 1),
 * having called bad(arg, at, n) for each (at: its offset in the payload; a non-zero return
 * stops and is returned); -EBADMSG when the operations do not parse, no chunk fails, or the sum
 * does not come out (damage outside the values: nothing in the record is provable). */
int rec_locate_damage(const void *payload, size_t len, uint32_t body_crc,
		      int (*bad)(void *arg, uint64_t at, uint64_t n), void *arg);

struct kv_batch;
/* A reader over the batch's operations (meta mode), and its operation count. */
void batch_reader(const struct kv_batch *b, struct rec_reader *r, uint32_t *count);
/* The payload as an I/O vector (*iov malloc'd, the caller frees it; it points into the batch and
 * its data), its length and its crc32c, computed without reading the data again. */
int batch_iov(const struct kv_batch *b, struct iovec **iov, int *iovcnt, uint64_t *len, uint32_t *crc);
/* 1 for a batch that makes room rather than taking it: the cleaner's relocations, or deletions,
 * truncations and punches carrying no data (with the metadata edits that go with them). Such a
 * batch may use the space reserve of a full disk. */
int batch_frees_space(const struct kv_batch *b);
/* The cleaner's operation: move the pieces (ascending, disjoint file ranges of key) whose bytes
 * are data, the pieces' bytes back to back. */
int batch_relocate(struct kv_batch *b, const void *key, size_t klen, const struct reloc_piece *pieces,
		   uint32_t n, const void *data);
#endif
