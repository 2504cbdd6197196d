/* snapshot.c — write a view to a snapshot file and load one back (see snapshot.h). */
#include "snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"
#include "lsnname.h"

/* Writes go out in chunks of this size; reads come in chunks of at most this size. Big enough
 * that syscalls are a rounding error, small enough to stay in cache. */
#define IO_CHUNK (64u << 10)

void snapshot_name(char *buf, size_t len, uint64_t lsn)
{
	lsnname_format(buf, len, "snap-", lsn, ".kvs");
}

int snapshot_parse_name(const char *name, uint64_t *lsn)
{
	return lsnname_parse(name, "snap-", ".kvs", lsn);
}

/* Buffered sequential writer keeping a running CRC of everything written. */
struct writer {
	const struct kvio *io;
	int fd;
	uint64_t off;
	uint8_t *buf;
	size_t len;
	uint32_t file_crc;
};

static int writer_flush(struct writer *wr)
{
	if (!wr->len)
		return 0;
	int rc = wr->io->pwrite(wr->io, wr->fd, wr->buf, wr->len, wr->off);
	if (rc)
		return rc;
	wr->off += wr->len;
	wr->len = 0;
	return 0;
}

static int writer_put(struct writer *wr, const void *p, size_t n)
{
	const uint8_t *src = p;
	wr->file_crc = crc32c(wr->file_crc, p, n);
	while (n) {
		size_t room = IO_CHUNK - wr->len, take = n < room ? n : room;
		memcpy(wr->buf + wr->len, src, take);
		wr->len += take;
		src += take;
		n -= take;
		if (wr->len == IO_CHUNK) {
			int rc = writer_flush(wr);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* One entry: its CRC covers the header fields after it and every byte of key, meta, value,
 * so the value is read twice (once for the CRC, once to write); both reads are memory. */
static int write_entry(struct writer *wr, const void *key, size_t klen, const struct kvval *v, uint8_t *chunk)
{
	uint8_t hdr[SNAP_ENTRY_HDR_SIZE];
	size_t mlen;
	const void *meta = kvval_meta(v, &mlen);
	uint64_t vlen = kvval_size(v), off;
	uint32_t crc;
	int rc;

	le_put32(hdr + 4, (uint32_t)klen);
	le_put32(hdr + 8, (uint32_t)mlen);
	le_put64(hdr + 12, vlen);
	crc = crc32c(0, hdr + 4, SNAP_ENTRY_HDR_SIZE - 4);
	crc = crc32c(crc, key, klen);
	crc = crc32c(crc, meta, mlen);
	for (off = 0; off < vlen;) {
		size_t n = kvval_read(v, off, chunk, IO_CHUNK);
		crc = crc32c(crc, chunk, n);
		off += n;
	}
	le_put32(hdr, crc);
	rc = writer_put(wr, hdr, sizeof(hdr));
	if (!rc)
		rc = writer_put(wr, key, klen);
	if (!rc)
		rc = writer_put(wr, meta, mlen);
	for (off = 0; !rc && off < vlen;) {
		size_t n = kvval_read(v, off, chunk, IO_CHUNK);
		rc = writer_put(wr, chunk, n);
		off += n;
	}
	return rc;
}

static int write_body(struct writer *wr, const struct kvview *v, uint64_t lsn)
{
	uint8_t hdr[SNAP_HDR_SIZE], foot[SNAP_FOOTER_SIZE];
	struct kvcursor *cur = NULL;
	uint8_t *chunk = malloc(IO_CHUNK);
	const void *key;
	size_t klen;
	const struct kvval *val;
	int rc;

	if (!chunk)
		return -ENOMEM;
	memset(hdr, 0, sizeof(hdr));
	memcpy(hdr, SNAP_MAGIC, 8);
	le_put32(hdr + 8, SNAP_VERSION);
	le_put64(hdr + 16, lsn);
	le_put64(hdr + 24, kvview_count(v));
	le_put32(hdr + 36, crc32c(0, hdr, 36));
	rc = writer_put(wr, hdr, sizeof(hdr));
	if (rc)
		goto out;
	rc = kvcursor_open_view(v, NULL, 0, &cur);
	if (rc)
		goto out;
	while (kvcursor_next(cur, &key, &klen, &val) == 1) {
		rc = write_entry(wr, key, klen, val, chunk);
		if (rc)
			goto out;
	}
	memcpy(foot, SNAP_END_MAGIC, 8);
	le_put32(foot + 8, wr->file_crc);
	le_put32(foot + 12, crc32c(0, foot, 12));
	rc = writer_put(wr, foot, sizeof(foot));
	if (!rc)
		rc = writer_flush(wr);
out:
	if (cur)
		kvcursor_close(cur);
	free(chunk);
	return rc;
}

int snapshot_write(const struct kvio *io, const char *dir, const struct kvview *v, uint64_t lsn,
		   uint64_t *bytes_out)
{
	char name[64], tmp[PATH_MAX], dst[PATH_MAX];
	struct writer wr = { .io = io, .fd = -1 };
	int rc;

	snapshot_name(name, sizeof(name), lsn);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	wr.buf = malloc(IO_CHUNK);
	if (!wr.buf)
		return -ENOMEM;
	rc = io->open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600, &wr.fd);
	if (rc)
		goto out;
	rc = write_body(&wr, v, lsn);
	if (rc)
		goto out;
	rc = io->fdatasync(io, wr.fd);
	if (rc)
		goto out;
	rc = io->close(io, wr.fd);
	wr.fd = -1;
	if (rc)
		goto out;
	rc = io->rename(io, tmp, dst);
	if (rc)
		goto out;
	/* Until the directory is synced the rename may be undone by a crash; the old snapshot
	 * and the log still hold everything then, and nothing was removed yet. */
	rc = io->fsync_dir(io, dir);
	if (!rc && bytes_out)
		*bytes_out = wr.off;
out:
	if (wr.fd >= 0) {
		int crc = io->close(io, wr.fd);
		(void)crc; /* the write already failed; that is the error to report */
	}
	if (rc && rc != -EEXIST) {
		int urc = io->unlink(io, tmp);
		(void)urc; /* a leftover temporary is ignored and removed by the next open */
	}
	free(wr.buf);
	return rc;
}

/* Buffered sequential reader with a running CRC of everything consumed. */
struct reader {
	const struct kvio *io;
	int fd;
	uint64_t off;        /* file offset of buf[pos] */
	uint64_t size;
	uint8_t *buf;
	size_t cap, pos, len;
	uint32_t file_crc;
};

/* Copy n bytes out (dst NULL: skip them). -EBADMSG when the file ends first. */
static int reader_get(struct reader *rd, void *dst, uint64_t n)
{
	uint8_t *d = dst;
	while (n) {
		if (rd->pos == rd->len) {
			size_t got;
			int rc = rd->io->pread(rd->io, rd->fd, rd->buf, rd->cap, rd->off, &got);
			if (rc)
				return rc;
			if (got == 0)
				return -EBADMSG;
			rd->pos = 0;
			rd->len = got;
		}
		size_t avail = rd->len - rd->pos, take = n < avail ? (size_t)n : avail;
		rd->file_crc = crc32c(rd->file_crc, rd->buf + rd->pos, take);
		if (d) {
			memcpy(d, rd->buf + rd->pos, take);
			d += take;
		}
		rd->pos += take;
		rd->off += take;
		n -= take;
	}
	return 0;
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int load_entries(struct reader *rd, struct kvindex *ix, uint64_t count, uint64_t *bad_off)
{
	uint8_t *prev = malloc(KV_MAX_KEY), *key = malloc(KV_MAX_KEY), *meta = malloc(KV_MAX_META);
	uint8_t *val = NULL;
	size_t prev_len = 0;
	int rc = 0;

	if (!prev || !key || !meta) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint8_t hdr[SNAP_ENTRY_HDR_SIZE];
		*bad_off = rd->off;
		rc = reader_get(rd, hdr, sizeof(hdr));
		if (rc)
			goto out;
		uint32_t klen = le_get32(hdr + 4), mlen = le_get32(hdr + 8);
		uint64_t vlen = le_get64(hdr + 12);
		if (klen > KV_MAX_KEY || mlen > KV_MAX_META || vlen > KV_MAX_VALUE ||
		    vlen > rd->size - rd->off) {
			rc = -EBADMSG;
			goto out;
		}
		free(val);
		val = malloc(vlen ? (size_t)vlen : 1);
		if (!val) {
			rc = -ENOMEM;
			goto out;
		}
		rc = reader_get(rd, key, klen);
		if (!rc)
			rc = reader_get(rd, meta, mlen);
		if (!rc)
			rc = reader_get(rd, val, vlen);
		if (rc)
			goto out;
		uint32_t crc = crc32c(0, hdr + 4, SNAP_ENTRY_HDR_SIZE - 4);
		crc = crc32c(crc, key, klen);
		crc = crc32c(crc, meta, mlen);
		crc = crc32c(crc, val, (size_t)vlen);
		if (crc != le_get32(hdr) || (i && key_cmp(prev, prev_len, key, klen) >= 0)) {
			rc = -EBADMSG;
			goto out;
		}
		memcpy(prev, key, klen);
		prev_len = klen;
		if (ix) {
			rc = kvindex_put(ix, key, klen, meta, mlen, val, vlen);
			if (rc)
				goto out;
		}
	}
out:
	free(prev);
	free(key);
	free(meta);
	free(val);
	return rc;
}

int snapshot_load(const struct kvio *io, const char *path, struct kvindex *ix, uint64_t *lsn,
		  uint64_t *count, uint64_t *bad_off)
{
	struct reader rd = { .io = io, .fd = -1 };
	uint8_t hdr[SNAP_HDR_SIZE], foot[SNAP_FOOTER_SIZE];
	uint64_t n;
	int rc;

	*bad_off = 0;
	rc = io->open(io, path, O_RDONLY, 0, &rd.fd);
	if (rc)
		goto out;
	rc = io->fsize(io, rd.fd, &rd.size);
	if (rc)
		goto out;
	rd.cap = rd.size && rd.size < IO_CHUNK ? (size_t)rd.size : IO_CHUNK;
	rd.buf = malloc(rd.cap);
	if (!rd.buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = reader_get(&rd, hdr, sizeof(hdr));
	if (rc)
		goto out;
	if (memcmp(hdr, SNAP_MAGIC, 8) || le_get32(hdr + 36) != crc32c(0, hdr, 36)) {
		rc = -EBADMSG;
		goto out;
	}
	if (le_get32(hdr + 8) != SNAP_VERSION || le_get32(hdr + 12) || le_get32(hdr + 32)) {
		rc = -EPROTONOSUPPORT;
		goto out;
	}
	*lsn = le_get64(hdr + 16);
	n = le_get64(hdr + 24);
	rc = load_entries(&rd, ix, n, bad_off);
	if (rc)
		goto out;
	*bad_off = rd.off;
	uint32_t body_crc = rd.file_crc;
	rc = reader_get(&rd, foot, sizeof(foot));
	if (rc)
		goto out;
	if (memcmp(foot, SNAP_END_MAGIC, 8) || le_get32(foot + 12) != crc32c(0, foot, 12) ||
	    le_get32(foot + 8) != body_crc || rd.off != rd.size) {
		rc = -EBADMSG;
		goto out;
	}
	*count = n;
out:
	if (rd.fd >= 0) {
		int crc = io->close(io, rd.fd);
		(void)crc; /* read-only: nothing to lose */
	}
	free(rd.buf);
	return rc;
}
