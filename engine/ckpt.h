/* ckpt.h — checkpoints: the index written down (keys, metadata, sizes, and where each value's
 * bytes are in the log), so that recovery replays only the log after it. Value bytes are not in
 * it: they stay in the log segments the extents name. Its cost grows with keys and extents,
 * not with bytes stored.
 *
 * File ckpt-<LSN, 16 hex digits>.kvc: the state after applying every record up to LSN.
 * Little-endian (byte table in docs/FORMAT.md §6):
 *   header (48 bytes): magic "KVFSCKP\0" | version u32 | flags u32 | lsn u64 | count u64 |
 *                      extents u64 | salt u32 | crc32c u32 over bytes 0..43
 *   count entries, keys strictly ascending:
 *     crc32c u32 seeded with the salt, over the rest of the entry | klen u16 | mlen u16 |
 *     next u32 | size u64 | key | meta | next extents of (off u64, seg u64, pos u64, cbase u64,
 *     len u32, dlen u32)
 *   footer (16 bytes): magic "KVFSEND\0" | crc32c u32 of every byte before the footer |
 *                      crc32c u32 over footer bytes 0..11
 * Written as ckpt-….kvc.tmp, fdatasync'd, renamed, directory fsync'd: a crash at any point
 * leaves the previous checkpoint and the log intact.
 *
 * Why each entry has its own checksum, under a salt: one damaged entry must cost that entry's
 * key, not the store. Normally the checkpoint is the only map to the values below its LSN (the
 * segments of overwritten values are gone), so salvage loads every entry it can prove: after a
 * bad one it tries every later byte offset for the next entry whose checksum holds and whose
 * key sorts after the last good one. The salt, random per checkpoint, makes an entry image
 * inside a user's key or metadata fail there (as a log record's salt does, logfmt.h). Version
 * 1 (salt field 0, refused otherwise) is still read: its entries are checked unsalted. Model: tests/model/values_on_disk.pml
 * (ckpt_write, ckpt_load, and the deletions that wait for it in store.c). */
#ifndef KVFS_CKPT_H
#define KVFS_CKPT_H
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "kv.h"
#include "kvio.h"

#define CKPT_MAGIC "KVFSCKP"
#define CKPT_END_MAGIC "KVFSEND"
#define CKPT_VERSION 2u /* 1: the same without the salt (still read) */
#define CKPT_HDR_SIZE 48u
#define CKPT_ENTRY_HDR_SIZE 20u
#define CKPT_EXT_SIZE 40u
#define CKPT_FOOTER_SIZE 16u

/* The segments a checkpoint's extents name, ascending, each with the end of the last byte any
 * extent uses in it (a segment shorter than that has lost referenced bytes). */
struct ckpt_refs {
	uint64_t *seg, *end;
	size_t n;
};
void ckpt_refs_free(struct ckpt_refs *r);
/* 1 when r names seg. */
int ckpt_refs_has(const struct ckpt_refs *r, uint64_t seg);

void ckpt_name(char *buf, size_t len, uint64_t lsn);
/* 0 for ckpt-<16 hex>.kvc, setting lsn; -EINVAL for anything else (temporaries included). */
int ckpt_parse_name(const char *name, uint64_t *lsn);

/* Write the view as the checkpoint for lsn into dir, durably (its name too), its entries'
 * checksums under salt (crc32c_new_salt() for each new checkpoint), telling progress (may be
 * NULL) keys written. refs (may be NULL) gets the segments it references; bytes_out (may be
 * NULL) its size. */
int ckpt_write(const struct kvio *io, const char *dir, const struct kvview *v, uint64_t lsn,
	       uint32_t salt, const struct kv_progress *progress, struct ckpt_refs *refs,
	       uint64_t *bytes_out);

/* What a salvaging load skipped: damaged places in the entries (each resynced past), the
 * entries that were there by the header's count (which its checksum vouches for), and the
 * keys the first such place lies between. */
struct ckpt_loss {
	uint64_t places;       /* damaged places; 0: every entry loaded */
	uint64_t entries;      /* entries lost: the header's count less those loaded */
	uint64_t first_off;    /* where the first place starts */
	int footer;            /* the footer (or what follows the entries) is damaged */
	/* the header is damaged (or cut short): the LSN is taken from the file's name, the salt
	 * from the entries (ckpt.c header_salt); its count is unknown, so `entries` is 0 and
	 * `unknown` says whether entries may be lost (any damaged place, a damaged footer, or
	 * no salt proven) or none can be (every byte from the header to a good footer is an
	 * entry that checks) */
	int header, unknown;
	/* the first place lies after key `after` (none: before the first key) and before key
	 * `before` (none: to the end); lengths up to KV_MAX_KEY */
	uint8_t *after, *before;
	size_t after_len, before_len;
	int has_after, has_before;
};
void ckpt_loss_free(struct ckpt_loss *l);

/* Load path into the empty index ix (NULL: only verify). 0, or -EBADMSG with *bad_off the offset
 * of the first damaged header, entry or footer; -EPROTONOSUPPORT for another version; other
 * errors from the I/O layer or -ENOMEM. refs (may be NULL) gets the segments it references.
 * loss NULL: any damage fails the load. loss given (salvage): damage in entries or the footer
 * is skipped over and described there, and the load succeeds with every entry whose checksum
 * holds; so does a damaged header (loss->header; *lsn then comes from path's name). Another
 * version (-EPROTONOSUPPORT) still fails it. */
int ckpt_load(const struct kvio *io, const char *path, struct kvindex *ix, uint64_t *lsn,
	      uint64_t *count, uint64_t *bad_off, struct ckpt_refs *refs, struct ckpt_loss *loss);
#endif
