/* kvdump.h — a store as one portable stream: every key with its metadata and value, in key
 * order, checksummed entry by entry (kv_cli --dump and --load; bytes in docs/FORMAT.md §11).
 *
 * Both directions stream with constant memory: values move in chunks of KVDUMP_CHUNK bytes
 * (kv_read out of the store, kv_write into it), whatever their size. Neither function prints:
 * what went wrong, and where in the stream, comes back in struct kvdump_report. */
#ifndef KVFS_KVDUMP_H
#define KVFS_KVDUMP_H
#include <stdint.h>

#include "kv.h"

/* The stream, little-endian:
 *   header  magic "KVFSDMP\0" u8[8], version u32 (1), flags u32 (0), crc32c u32 of bytes 0..15
 *   entry   type u8 'E', klen u32, mlen u32, vlen u64, key, meta, hcrc u32, value, vcrc u32
 *           hcrc: crc32c of type..meta; vcrc: crc32c of type..meta followed by the value
 *   end     type u8 'T', count u64, stream_crc u32 (every byte before this record), crc32c u32
 *           of the end record's bytes 0..12
 * Entries come in strictly ascending key order; nothing follows the end record. */
#define KVDUMP_MAGIC "KVFSDMP"
#define KVDUMP_VERSION 1u
#define KVDUMP_HEADER_SIZE 20
#define KVDUMP_ENTRY 'E'
#define KVDUMP_END 'T'
#define KVDUMP_ENTRY_FIXED 17 /* type, klen, mlen, vlen */
#define KVDUMP_END_SIZE 17
#define KVDUMP_CHUNK ((size_t)1 << 20)

enum kvdump_fault {
	KVDUMP_OK,
	KVDUMP_IO,          /* reading or writing the stream failed (err) */
	KVDUMP_STORE,       /* the store refused a read or write (err) */
	KVDUMP_NOT_A_DUMP,  /* the first bytes are not the magic */
	KVDUMP_VERSION_UNKNOWN, /* a version or flags this reader does not know */
	KVDUMP_DAMAGED,     /* a checksum or a field is wrong (what says which) */
	KVDUMP_TRUNCATED,   /* the stream ends before its end record */
	KVDUMP_TRAILING,    /* bytes follow the end record */
	KVDUMP_TOO_BIG,     /* a value larger than this store takes */
	KVDUMP_CHANGED,     /* the store changed while it was being dumped */
};

struct kvdump_report {
	enum kvdump_fault fault;
	int err;             /* KVDUMP_IO, KVDUMP_STORE: the negative errno */
	uint64_t offset;     /* where in the stream: the record (or field) at fault, or the end */
	const char *what;    /* KVDUMP_DAMAGED: which check failed, a static string */
	uint64_t entries;    /* entries written or loaded so far */
	uint64_t bytes;      /* stream bytes so far */
	uint64_t value_bytes; /* value bytes in those entries */
	uint64_t size;       /* KVDUMP_TOO_BIG: the value's size */
};

/* Called now and then (about every KVDUMP_CHUNK bytes) with the report so far. */
typedef void (*kvdump_progress_fn)(void *arg, const struct kvdump_report *rep);

/* Writes every entry of kv to fd. 0, or -EIO/-errno with rep saying what and where. */
int kvdump_write(struct kv *kv, int fd, struct kvdump_report *rep, kvdump_progress_fn progress,
		 void *arg);
/* Reads a dump from fd into kv (which should be empty: entries are put, replacing any), up to
 * and including its end record and the end of input after it. On an error the store holds part
 * of the dump: the caller throws it away. 0, or -EINVAL (a bad stream) / -errno with rep. */
int kvdump_read(struct kv *kv, int fd, struct kvdump_report *rep, kvdump_progress_fn progress,
		void *arg);
#endif
