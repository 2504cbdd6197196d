/* ckpt.c — write a view to a checkpoint file and load one back (see ckpt.h). */
#include "ckpt.h"

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
#include "progress.h"

/* Writes go out in chunks of this size; reads come in chunks of at most this size. Big enough
 * that syscalls are a rounding error, small enough to stay in cache. */
#define IO_CHUNK (256u << 10)

void ckpt_name(char *buf, size_t len, uint64_t lsn)
{
	lsnname_format(buf, len, "ckpt-", lsn, ".kvc");
}

int ckpt_parse_name(const char *name, uint64_t *lsn)
{
	return lsnname_parse(name, "ckpt-", ".kvc", lsn);
}

void ckpt_refs_free(struct ckpt_refs *r)
{
	free(r->seg);
	free(r->end);
	r->seg = r->end = NULL;
	r->n = 0;
}

int ckpt_refs_has(const struct ckpt_refs *r, uint64_t seg)
{
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->seg[mid] < seg)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n && r->seg[lo] == seg;
}

/* Gathering refs: segments come in any order; kept sorted and unique with a binary-search
 * insert (a store has few segments next to its extents). */
struct refs_builder {
	struct ckpt_refs r;
	size_t cap;
};

static int refs_note(struct refs_builder *b, uint64_t seg, uint64_t end)
{
	size_t lo = 0, hi = b->r.n;
	if (b->r.n && b->r.seg[b->r.n - 1] == seg) { /* the usual case: the same as last time */
		if (end > b->r.end[b->r.n - 1])
			b->r.end[b->r.n - 1] = end;
		return 0;
	}
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (b->r.seg[mid] < seg)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < b->r.n && b->r.seg[lo] == seg) {
		if (end > b->r.end[lo])
			b->r.end[lo] = end;
		return 0;
	}
	if (b->r.n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		uint64_t *s = realloc(b->r.seg, cap * sizeof(*s));
		if (!s)
			return -ENOMEM;
		b->r.seg = s;
		uint64_t *e = realloc(b->r.end, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		b->r.end = e;
		b->cap = cap;
	}
	memmove(b->r.seg + lo + 1, b->r.seg + lo, (b->r.n - lo) * sizeof(uint64_t));
	memmove(b->r.end + lo + 1, b->r.end + lo, (b->r.n - lo) * sizeof(uint64_t));
	b->r.seg[lo] = seg;
	b->r.end[lo] = end;
	b->r.n++;
	return 0;
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

static void ext_encode(uint8_t out[CKPT_EXT_SIZE], const struct kvext *e)
{
	le_put64(out, e->off);
	le_put64(out + 8, e->seg);
	le_put64(out + 16, e->pos);
	le_put64(out + 24, e->cbase);
	le_put32(out + 32, e->len);
	le_put32(out + 36, e->dlen);
}

static void ext_decode(const uint8_t in[CKPT_EXT_SIZE], struct kvext *e)
{
	e->off = le_get64(in);
	e->seg = le_get64(in + 8);
	e->pos = le_get64(in + 16);
	e->cbase = le_get64(in + 24);
	e->len = le_get32(in + 32);
	e->dlen = le_get32(in + 36);
}

static int write_entry(struct writer *wr, uint32_t salt, const void *key, size_t klen,
		       const struct kvval *v, struct refs_builder *refs, uint64_t *extents)
{
	uint8_t hdr[CKPT_ENTRY_HDR_SIZE], ext[CKPT_EXT_SIZE];
	size_t mlen;
	const void *meta = kvval_meta(v, &mlen);
	uint32_t n;
	const struct kvext *e = kvval_extents(v, &n);
	uint32_t crc;
	int rc;

	le_put16(hdr + 4, (uint16_t)klen);
	le_put16(hdr + 6, (uint16_t)mlen);
	le_put32(hdr + 8, n);
	le_put64(hdr + 12, kvval_size(v));
	crc = crc32c(salt, hdr + 4, CKPT_ENTRY_HDR_SIZE - 4);
	crc = crc32c(crc, key, klen);
	crc = crc32c(crc, meta, mlen);
	for (uint32_t i = 0; i < n; i++) {
		ext_encode(ext, &e[i]);
		crc = crc32c(crc, ext, sizeof(ext));
	}
	le_put32(hdr, crc);
	rc = writer_put(wr, hdr, sizeof(hdr));
	if (!rc)
		rc = writer_put(wr, key, klen);
	if (!rc)
		rc = writer_put(wr, meta, mlen);
	for (uint32_t i = 0; !rc && i < n; i++) {
		ext_encode(ext, &e[i]);
		rc = writer_put(wr, ext, sizeof(ext));
		if (!rc && refs)
			rc = refs_note(refs, e[i].seg, e[i].pos + e[i].len);
	}
	*extents += n;
	return rc;
}

/* The header is written last (its counts are known only then) over the placeholder at 0. */
static void encode_header(uint8_t hdr[CKPT_HDR_SIZE], uint64_t lsn, uint64_t count, uint64_t extents,
			  uint32_t salt)
{
	memset(hdr, 0, CKPT_HDR_SIZE);
	memcpy(hdr, CKPT_MAGIC, 8);
	le_put32(hdr + 8, CKPT_VERSION);
	le_put64(hdr + 16, lsn);
	le_put64(hdr + 24, count);
	le_put64(hdr + 32, extents);
	le_put32(hdr + 40, salt);
	le_put32(hdr + 44, crc32c(0, hdr, 44));
}

static int write_body(struct writer *wr, const struct kvview *v, uint64_t lsn, uint32_t salt,
		      struct refs_builder *refs, const struct kv_progress *progress)
{
	struct progress meter = { 0 };
	uint8_t hdr[CKPT_HDR_SIZE], foot[CKPT_FOOTER_SIZE];
	struct kvcursor *cur = NULL;
	const void *key;
	size_t klen;
	const struct kvval *val;
	uint64_t extents = 0, count = kvview_count(v);
	int rc;

	/* The extent total is not known up front: count it in a first pass over the view (memory
	 * only), so the header, and the file's checksum, can be written in order. */
	rc = kvcursor_open_view(v, NULL, 0, &cur);
	if (rc)
		return rc;
	while (kvcursor_next(cur, &key, &klen, &val) == 1) {
		uint32_t n;
		kvval_extents(val, &n);
		extents += n;
	}
	kvcursor_close(cur);
	cur = NULL;
	encode_header(hdr, lsn, count, extents, salt);
	rc = writer_put(wr, hdr, sizeof(hdr));
	if (rc)
		goto out;
	rc = kvcursor_open_view(v, NULL, 0, &cur);
	if (rc)
		goto out;
	uint64_t written = 0;
	progress_start(&meter, progress, KV_WORK_CHECKPOINT, count);
	while (kvcursor_next(cur, &key, &klen, &val) == 1) {
		rc = write_entry(wr, salt, key, klen, val, refs, &written);
		if (rc)
			goto out;
		progress_add(&meter, 1);
	}
	memcpy(foot, CKPT_END_MAGIC, 8);
	le_put32(foot + 8, wr->file_crc);
	le_put32(foot + 12, crc32c(0, foot, 12));
	rc = writer_put(wr, foot, sizeof(foot));
	if (!rc)
		rc = writer_flush(wr);
out:
	progress_end(&meter);
	if (cur)
		kvcursor_close(cur);
	return rc;
}

int ckpt_write(const struct kvio *io, const char *dir, const struct kvview *v, uint64_t lsn,
	       uint32_t salt, const struct kv_progress *progress, struct ckpt_refs *refs_out,
	       uint64_t *bytes_out)
{
	char name[64], tmp[PATH_MAX], dst[PATH_MAX];
	struct writer wr = { .io = io, .fd = -1 };
	struct refs_builder refs = { { NULL, NULL, 0 }, 0 };
	int rc;

	ckpt_name(name, sizeof(name), lsn);
	snprintf(dst, sizeof(dst), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
	wr.buf = malloc(IO_CHUNK);
	if (!wr.buf)
		return -ENOMEM;
	rc = io->open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600, &wr.fd);
	if (rc)
		goto out;
	rc = write_body(&wr, v, lsn, salt, &refs, progress);
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
	/* Until the directory is synced the rename may be undone by a crash; the old checkpoint
	 * and the log still hold everything then, and nothing was removed yet. */
	rc = io->fsync_dir(io, dir);
	if (!rc && bytes_out)
		*bytes_out = wr.off;
out:
	kvio_close_quiet(io, wr.fd); /* the write already failed; that is the error to report */
	if (rc) {
		int urc = io->unlink(io, tmp);
		(void)urc; /* a leftover temporary is ignored and removed by the next open */
		ckpt_refs_free(&refs.r);
	} else if (refs_out) {
		*refs_out = refs.r;
	} else {
		ckpt_refs_free(&refs.r);
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

/* Copy n bytes out. -EBADMSG when the file ends first. */
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
		memcpy(d, rd->buf + rd->pos, take);
		d += take;
		rd->pos += take;
		rd->off += take;
		n -= take;
	}
	return 0;
}

/* Read from off next: within the buffer when it holds off, else from the file. */
static void reader_seek(struct reader *rd, uint64_t off)
{
	uint64_t start = rd->off - rd->pos; /* the file offset of buf[0] */
	if (off >= start && off < start + rd->len) {
		rd->pos = (size_t)(off - start);
	} else {
		rd->pos = rd->len = 0;
	}
	rd->off = off;
}

static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

struct load {
	struct reader rd;
	uint8_t *prev, *key, *meta;
	struct kvext *ext;
	uint32_t ext_cap;
	uint32_t salt;    /* the entries' checksum seed (0 in version 1) */
	size_t prev_len;
	int have_prev;    /* an entry was loaded: prev holds its key */
	uint64_t extents; /* in the entries loaded so far */
	uint64_t loaded;
};

/* One entry: read, checked (checksum, limits, order, extents sorted and inside the size), and
 * put into ix. -EBADMSG for damage, leaving ix, refs and prev as they were. */
static int load_entry(struct load *l, struct kvindex *ix, struct refs_builder *refs)
{
	uint8_t hdr[CKPT_ENTRY_HDR_SIZE], raw[CKPT_EXT_SIZE];
	int rc = reader_get(&l->rd, hdr, sizeof(hdr));
	if (rc)
		return rc;
	uint32_t klen = le_get16(hdr + 4), mlen = le_get16(hdr + 6), n = le_get32(hdr + 8);
	uint64_t size = le_get64(hdr + 12);
	if (klen > KV_MAX_KEY || mlen > KV_MAX_META || size > KV_MAX_VALUE ||
	    (uint64_t)n * CKPT_EXT_SIZE > l->rd.size - l->rd.off)
		return -EBADMSG;
	if (n > l->ext_cap) {
		struct kvext *e = realloc(l->ext, (size_t)n * sizeof(*e));
		if (!e)
			return -ENOMEM;
		l->ext = e;
		l->ext_cap = n;
	}
	rc = reader_get(&l->rd, l->key, klen);
	if (!rc)
		rc = reader_get(&l->rd, l->meta, mlen);
	if (rc)
		return rc;
	uint32_t crc = crc32c(l->salt, hdr + 4, CKPT_ENTRY_HDR_SIZE - 4);
	crc = crc32c(crc, l->key, klen);
	crc = crc32c(crc, l->meta, mlen);
	for (uint32_t k = 0; k < n; k++) {
		rc = reader_get(&l->rd, raw, sizeof(raw));
		if (rc)
			return rc;
		crc = crc32c(crc, raw, sizeof(raw));
		ext_decode(raw, &l->ext[k]);
	}
	if (crc != le_get32(hdr) || (l->have_prev && key_cmp(l->prev, l->prev_len, l->key, klen) >= 0))
		return -EBADMSG;
	/* kvindex_put_extents checks the extents themselves (sorted, inside the size, each one
	 * inside its operation's data): -EFBIG from it is damage here */
	if (ix) {
		rc = kvindex_put_extents(ix, l->key, klen, l->meta, mlen, size, l->ext, n);
		if (rc == -EFBIG || rc == -EINVAL)
			rc = -EBADMSG;
	} else {
		rc = kvindex_check_extents(size, l->ext, n) ? -EBADMSG : 0;
	}
	if (rc)
		return rc;
	for (uint32_t k = 0; refs && k < n; k++) {
		rc = refs_note(refs, l->ext[k].seg, l->ext[k].pos + l->ext[k].len);
		if (rc)
			return rc;
	}
	memcpy(l->prev, l->key, klen);
	l->prev_len = klen;
	l->have_prev = 1;
	l->extents += n;
	l->loaded++;
	return 0;
}

void ckpt_loss_free(struct ckpt_loss *l)
{
	free(l->after);
	free(l->before);
	memset(l, 0, sizeof(*l));
}

static int loss_key(uint8_t **dst, size_t *dlen, int *has, const uint8_t *key, size_t klen)
{
	*dst = malloc(klen ? klen : 1);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, key, klen);
	*dlen = klen;
	*has = 1;
	return 0;
}

/* Salvage: load the entries from off (where one failed) to the footer, skipping each damaged
 * place by trying every later byte offset until an entry checks there (its checksum under the
 * salt, its limits, its key after the last good one, its extents). The cost is a few checksum
 * attempts per damaged byte: a candidate's claimed lengths rarely pass the limits. */
static int load_salvaging(struct load *l, struct kvindex *ix, struct refs_builder *refs, uint64_t off,
			  struct ckpt_loss *loss)
{
	/* the entries end where the footer starts (in a file cut short: at its end) */
	uint64_t end = l->rd.size >= CKPT_HDR_SIZE + CKPT_FOOTER_SIZE ? l->rd.size - CKPT_FOOTER_SIZE
								     : l->rd.size;
	int skipping = 0, rc;

	while (off < end) {
		reader_seek(&l->rd, off);
		rc = load_entry(l, ix, refs);
		if (rc == 0) {
			if (skipping && loss->places == 1) {
				rc = loss_key(&loss->before, &loss->before_len, &loss->has_before, l->prev,
					      l->prev_len);
				if (rc)
					return rc;
			}
			skipping = 0;
			off = l->rd.off;
			continue;
		}
		if (rc != -EBADMSG)
			return rc;
		if (!skipping && !loss->places++) {
			loss->first_off = off;
			if (l->have_prev) {
				rc = loss_key(&loss->after, &loss->after_len, &loss->has_after, l->prev,
					      l->prev_len);
				if (rc)
					return rc;
			}
		}
		skipping = 1;
		off++;
	}
	reader_seek(&l->rd, off);
	return 0;
}

/* Salvage of a damaged header: find the entries' salt again. The candidates are the header's
 * own salt field (the damage may lie elsewhere in the header) and the seed under which the first
 * entry's checksum holds (crc32c_solve_seed; any bytes give one, so alone it proves nothing). A
 * candidate is taken on two witnesses: the first two entries check under it, or the first one
 * does and both candidates agree. *found 0 when none is proven (then no entry can be). */
static int header_salt(struct load *l, const uint8_t hdr[CKPT_HDR_SIZE], int *found)
{
	uint8_t eh[CKPT_ENTRY_HDR_SIZE];
	uint8_t *body = NULL;
	uint32_t cand[2];
	int ncand = 0, rc;

	*found = 0;
	cand[ncand++] = le_get32(hdr + 40);
	reader_seek(&l->rd, CKPT_HDR_SIZE);
	rc = reader_get(&l->rd, eh, sizeof(eh));
	if (rc && rc != -EBADMSG)
		return rc;
	uint64_t elen = CKPT_ENTRY_HDR_SIZE - 4 + (uint64_t)le_get16(eh + 4) + le_get16(eh + 6) +
			(uint64_t)le_get32(eh + 8) * CKPT_EXT_SIZE;
	if (!rc && elen <= l->rd.size - CKPT_HDR_SIZE - 4) {
		body = malloc((size_t)elen);
		if (!body)
			return -ENOMEM;
		reader_seek(&l->rd, CKPT_HDR_SIZE + 4);
		rc = reader_get(&l->rd, body, elen);
		if (!rc)
			cand[ncand++] = crc32c_solve_seed(body, (size_t)elen, le_get32(eh));
		free(body);
		if (rc && rc != -EBADMSG)
			return rc;
	}
	for (int c = 0; c < ncand && !*found; c++) {
		int checked = 0;
		l->salt = cand[c];
		l->have_prev = 0;
		reader_seek(&l->rd, CKPT_HDR_SIZE);
		while (checked < 2 && (rc = load_entry(l, NULL, NULL)) == 0)
			checked++;
		if (rc && rc != -EBADMSG)
			return rc;
		*found = checked == 2 || (checked == 1 && ncand == 2 && cand[0] == cand[1]);
	}
	l->have_prev = 0;
	l->loaded = l->extents = 0;
	return 0;
}

/* Salvage of a checkpoint whose header is damaged (or cut short): the LSN is the file name's;
 * with the salt found again (header_salt), every entry that checks is loaded as past any damaged
 * entry. How many entries there were is unknown (the count was in the header), so loss->unknown
 * says whether any may be lost: none can be only when the entries that check run from the header
 * to a good footer with no gap. The footer's file_crc covers the damaged header: not checked. */
static int header_lost(struct load *l, const char *path, const uint8_t hdr[CKPT_HDR_SIZE],
		       uint64_t *lsn, struct refs_builder *refs, struct kvindex *ix, struct ckpt_loss *loss)
{
	const char *base = strrchr(path, '/');
	uint8_t foot[CKPT_FOOTER_SIZE];
	int found, rc;

	if (ckpt_parse_name(base ? base + 1 : path, lsn))
		return -EBADMSG; /* no LSN to go on from */
	loss->header = 1;
	loss->first_off = 0;
	rc = l->rd.size > CKPT_HDR_SIZE ? header_salt(l, hdr, &found) : (found = 0, 0);
	if (rc)
		return rc;
	if (!found) {
		loss->unknown = 1;
		return 0;
	}
	rc = load_salvaging(l, ix, refs, CKPT_HDR_SIZE, loss);
	if (rc)
		return rc;
	loss->first_off = 0;
	rc = reader_get(&l->rd, foot, sizeof(foot));
	if (rc && rc != -EBADMSG)
		return rc;
	if (rc || memcmp(foot, CKPT_END_MAGIC, 8) || le_get32(foot + 12) != crc32c(0, foot, 12) ||
	    l->rd.off != l->rd.size)
		loss->footer = 1;
	loss->unknown = loss->places || loss->footer;
	return 0;
}

int ckpt_load(const struct kvio *io, const char *path, struct kvindex *ix, uint64_t *lsn,
	      uint64_t *count, uint64_t *bad_off, struct ckpt_refs *refs_out, struct ckpt_loss *loss)
{
	struct load l = { .rd = { .io = io, .fd = -1 } };
	struct refs_builder refs = { { NULL, NULL, 0 }, 0 };
	uint8_t hdr[CKPT_HDR_SIZE], foot[CKPT_FOOTER_SIZE];
	uint64_t n;
	uint32_t version;
	int rc;

	*bad_off = 0;
	if (loss)
		memset(loss, 0, sizeof(*loss));
	l.prev = malloc(KV_MAX_KEY);
	l.key = malloc(KV_MAX_KEY);
	l.meta = malloc(KV_MAX_META);
	if (!l.prev || !l.key || !l.meta) {
		rc = -ENOMEM;
		goto out;
	}
	rc = io->open(io, path, O_RDONLY, 0, &l.rd.fd);
	if (rc)
		goto out;
	rc = io->fsize(io, l.rd.fd, &l.rd.size);
	if (rc)
		goto out;
	l.rd.cap = l.rd.size && l.rd.size < IO_CHUNK ? (size_t)l.rd.size : IO_CHUNK;
	l.rd.buf = malloc(l.rd.cap);
	if (!l.rd.buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = reader_get(&l.rd, hdr, sizeof(hdr));
	if (rc && rc != -EBADMSG)
		goto out;
	if (rc || memcmp(hdr, CKPT_MAGIC, 8) || le_get32(hdr + 44) != crc32c(0, hdr, 44)) {
		/* the header is damaged or cut short */
		rc = -EBADMSG;
		if (!loss)
			goto out;
		rc = header_lost(&l, path, hdr, lsn, refs_out ? &refs : NULL, ix, loss);
		if (rc)
			goto out;
		*bad_off = 0;
		*count = l.loaded;
		goto out;
	}
	version = le_get32(hdr + 8);
	if ((version != 1 && version != CKPT_VERSION) || le_get32(hdr + 12) ||
	    (version == 1 && le_get32(hdr + 40))) {
		rc = -EPROTONOSUPPORT;
		goto out;
	}
	l.salt = version == 1 ? 0 : le_get32(hdr + 40);
	*lsn = le_get64(hdr + 16);
	n = le_get64(hdr + 24);
	for (uint64_t i = 0; i < n; i++) {
		*bad_off = l.rd.off;
		rc = load_entry(&l, ix, refs_out ? &refs : NULL);
		if (rc == -EBADMSG && loss) {
			rc = load_salvaging(&l, ix, refs_out ? &refs : NULL, *bad_off, loss);
			break;
		}
		if (rc)
			goto out;
	}
	if (rc)
		goto out;
	if (!loss || !loss->places)
		*bad_off = l.rd.off;
	uint32_t body_crc = l.rd.file_crc;
	rc = reader_get(&l.rd, foot, sizeof(foot));
	if (rc && rc != -EBADMSG)
		goto out;
	if (rc || memcmp(foot, CKPT_END_MAGIC, 8) || le_get32(foot + 12) != crc32c(0, foot, 12) ||
	    (le_get32(foot + 8) != body_crc && (!loss || !loss->places)) || l.rd.off != l.rd.size) {
		rc = -EBADMSG;
		if (!loss)
			goto out;
		loss->footer = 1;
		if (!loss->places)
			loss->first_off = *bad_off;
		rc = 0;
	}
	if (le_get64(hdr + 32) != l.extents && (!loss || (!loss->places && !loss->footer))) {
		/* the header's count disagrees with the entries (whose checksums hold) */
		*bad_off = 32;
		rc = -EBADMSG;
		if (!loss)
			goto out;
		loss->footer = 1;
		loss->first_off = 32;
		rc = 0;
	}
	if (loss) {
		loss->entries = n > l.loaded ? n - l.loaded : 0;
		if (loss->places || loss->footer)
			*bad_off = loss->first_off;
	}
	*count = l.loaded;
out:
	kvio_close_quiet(io, l.rd.fd);
	free(l.rd.buf);
	free(l.prev);
	free(l.key);
	free(l.meta);
	free(l.ext);
	if (rc && loss)
		ckpt_loss_free(loss);
	if (!rc && refs_out)
		*refs_out = refs.r;
	else
		ckpt_refs_free(&refs.r);
	return rc;
}
