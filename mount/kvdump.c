/* kvdump.c — writing a store as a dump and reading one back (format in kvdump.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "kvdump.h"
#include "le.h"

#define IOBUF_SIZE KVDUMP_CHUNK

/* memcmp order, a proper prefix first: the order of the index and of a dump. */
static int dump_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	return r ? r : (alen > blen) - (alen < blen);
}

static int fault(struct kvdump_report *rep, enum kvdump_fault f, int err, uint64_t offset,
		 const char *what)
{
	rep->fault = f;
	rep->err = err;
	rep->offset = offset;
	rep->what = what;
	return err ? err : -EINVAL;
}

/* ---- writing -------------------------------------------------------------------------------- */

struct wstream {
	int fd;
	uint8_t *buf;
	size_t n;
	uint64_t off;     /* bytes handed to wput so far */
	uint32_t crc;     /* of all of them */
	uint64_t reported; /* off at the last progress call */
};

static int wflush(struct wstream *w)
{
	size_t done = 0;

	while (done < w->n) {
		ssize_t k = write(w->fd, w->buf + done, w->n - done);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		done += (size_t)k;
	}
	w->n = 0;
	return 0;
}

static int wput(struct wstream *w, const void *p, size_t len)
{
	const uint8_t *s = p;
	int rc;

	w->crc = crc32c(w->crc, p, len);
	w->off += len;
	while (len) {
		size_t k = IOBUF_SIZE - w->n < len ? IOBUF_SIZE - w->n : len;

		memcpy(w->buf + w->n, s, k);
		w->n += k;
		s += k;
		len -= k;
		if (w->n == IOBUF_SIZE) {
			rc = wflush(w);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Keys come out of kv_scan in batches: its callback runs under the index lock and may not call
 * into the store, so it copies keys and metadata here, and values are read after it returns. */
#define BATCH_BYTES ((size_t)1 << 20)
#define BATCH_ENTRY_MAX (sizeof(struct bentry) + KV_MAX_KEY + KV_MAX_META + 8) /* + alignment */

struct bentry {
	uint64_t vlen;
	uint32_t klen, mlen; /* key then meta bytes follow the struct */
};

struct batch {
	uint8_t *buf;          /* BATCH_BYTES + BATCH_ENTRY_MAX */
	size_t len;
	size_t count;
	const uint8_t *after;  /* skip this key (the last of the previous batch) */
	size_t alen;
	int has_after;
};

static int batch_add(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		     size_t mlen)
{
	struct batch *b = arg;
	struct bentry e = { .vlen = size, .klen = (uint32_t)klen, .mlen = (uint32_t)mlen };
	size_t need = sizeof(e) + klen + mlen;

	if (b->has_after && klen == b->alen && memcmp(key, b->after, klen) == 0)
		return 0;
	if (b->len >= BATCH_BYTES)
		return 1;
	memcpy(b->buf + b->len, &e, sizeof(e));
	memcpy(b->buf + b->len + sizeof(e), key, klen);
	if (mlen)
		memcpy(b->buf + b->len + sizeof(e) + klen, meta, mlen);
	b->len += (need + 7) & ~(size_t)7;
	b->count++;
	return 0;
}

static int write_entry(struct kv *kv, struct wstream *w, const struct bentry *e, uint8_t *chunk,
		       struct kvdump_report *rep)
{
	const uint8_t *key = (const uint8_t *)(e + 1), *meta = key + e->klen;
	uint8_t fixed[KVDUMP_ENTRY_FIXED], le[4];
	uint64_t entry_off = w->off, done = 0;
	uint32_t crc;
	int rc;

	fixed[0] = KVDUMP_ENTRY;
	le_put32(fixed + 1, e->klen);
	le_put32(fixed + 5, e->mlen);
	le_put64(fixed + 9, e->vlen);
	crc = crc32c(0, fixed, sizeof(fixed));
	crc = crc32c(crc, key, e->klen);
	crc = crc32c(crc, meta, e->mlen);
	le_put32(le, crc);
	if ((rc = wput(w, fixed, sizeof(fixed))) || (rc = wput(w, key, e->klen)) ||
	    (rc = wput(w, meta, e->mlen)) || (rc = wput(w, le, 4)))
		return fault(rep, KVDUMP_IO, rc, w->off, NULL);
	while (done < e->vlen) {
		size_t want = e->vlen - done < KVDUMP_CHUNK ? (size_t)(e->vlen - done) : KVDUMP_CHUNK;
		size_t got = 0;

		rc = kv_read(kv, key, e->klen, done, chunk, want, &got);
		if (rc == -ENOENT || (!rc && got != want))
			return fault(rep, KVDUMP_CHANGED, 0, entry_off, NULL);
		if (rc)
			return fault(rep, KVDUMP_STORE, rc, entry_off, NULL);
		crc = crc32c(crc, chunk, got);
		rc = wput(w, chunk, got);
		if (rc)
			return fault(rep, KVDUMP_IO, rc, w->off, NULL);
		done += got;
	}
	le_put32(le, crc);
	rc = wput(w, le, 4);
	if (rc)
		return fault(rep, KVDUMP_IO, rc, w->off, NULL);
	rep->entries++;
	rep->value_bytes += e->vlen;
	return 0;
}

int kvdump_write(struct kv *kv, int fd, struct kvdump_report *rep, kvdump_progress_fn progress,
		 void *arg)
{
	struct wstream w = { .fd = fd };
	struct batch b = { 0 };
	uint8_t hdr[KVDUMP_HEADER_SIZE], end[KVDUMP_END_SIZE], *chunk = NULL;
	uint8_t last[KV_MAX_KEY];
	size_t lastlen = 0;
	uint32_t stream_crc;
	int rc;

	memset(rep, 0, sizeof(*rep));
	w.buf = malloc(IOBUF_SIZE);
	b.buf = malloc(BATCH_BYTES + BATCH_ENTRY_MAX);
	chunk = malloc(KVDUMP_CHUNK);
	if (!w.buf || !b.buf || !chunk) {
		rc = fault(rep, KVDUMP_IO, -ENOMEM, 0, NULL);
		goto out;
	}
	memcpy(hdr, KVDUMP_MAGIC, 8);
	le_put32(hdr + 8, KVDUMP_VERSION);
	le_put32(hdr + 12, 0);
	le_put32(hdr + 16, crc32c(0, hdr, 16));
	rc = wput(&w, hdr, sizeof(hdr));
	if (rc) {
		rc = fault(rep, KVDUMP_IO, rc, 0, NULL);
		goto out;
	}
	for (;;) {
		b.len = b.count = 0;
		b.after = last;
		b.alen = lastlen;
		rc = kv_scan(kv, last, lastlen, batch_add, &b);
		if (rc < 0) {
			rc = fault(rep, KVDUMP_STORE, rc, w.off, NULL);
			goto out;
		}
		if (b.count == 0)
			break;
		for (size_t off = 0; off < b.len;) {
			const struct bentry *e = (const struct bentry *)(b.buf + off);

			rc = write_entry(kv, &w, e, chunk, rep);
			if (rc)
				goto out;
			if (progress && w.off - w.reported >= KVDUMP_CHUNK) {
				rep->bytes = w.off;
				w.reported = w.off;
				progress(arg, rep);
			}
			memcpy(last, e + 1, e->klen);
			lastlen = e->klen;
			off += (sizeof(*e) + e->klen + e->mlen + 7) & ~(size_t)7;
		}
		b.has_after = 1;
	}
	stream_crc = w.crc;
	end[0] = KVDUMP_END;
	le_put64(end + 1, rep->entries);
	le_put32(end + 9, stream_crc);
	le_put32(end + 13, crc32c(0, end, 13));
	rc = wput(&w, end, sizeof(end));
	if (!rc)
		rc = wflush(&w);
	if (rc)
		rc = fault(rep, KVDUMP_IO, rc, w.off, NULL);
	rep->bytes = w.off;
out:
	free(w.buf);
	free(b.buf);
	free(chunk);
	return rc;
}

/* ---- reading -------------------------------------------------------------------------------- */

struct rstream {
	int fd;
	uint8_t *buf;
	size_t pos, n;
	uint64_t off;  /* bytes consumed */
	uint32_t crc;  /* of all of them */
	int eof;
	uint64_t reported;
};

/* Up to len bytes into dst (dst NULL: just consumed); returns the number read, short only at
 * the end of input, or -errno. */
static ssize_t rget(struct rstream *r, void *dst, size_t len)
{
	uint8_t *d = dst;
	size_t got = 0;

	while (got < len) {
		if (r->pos == r->n) {
			ssize_t k;

			if (r->eof)
				break;
			k = read(r->fd, r->buf, IOBUF_SIZE);
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -errno;
			if (k == 0) {
				r->eof = 1;
				break;
			}
			r->pos = 0;
			r->n = (size_t)k;
		}
		size_t k = r->n - r->pos < len - got ? r->n - r->pos : len - got;

		r->crc = crc32c(r->crc, r->buf + r->pos, k);
		if (d)
			memcpy(d + got, r->buf + r->pos, k);
		r->pos += k;
		r->off += k;
		got += k;
	}
	return (ssize_t)got;
}

/* Exactly len bytes, or a report: the stream ends at r->off. */
static int rexact(struct rstream *r, void *dst, size_t len, struct kvdump_report *rep)
{
	ssize_t k = rget(r, dst, len);

	if (k < 0)
		return fault(rep, KVDUMP_IO, (int)k, r->off, NULL);
	if ((size_t)k < len)
		return fault(rep, KVDUMP_TRUNCATED, 0, r->off, NULL);
	return 0;
}

static int read_header(struct rstream *r, struct kvdump_report *rep)
{
	uint8_t hdr[KVDUMP_HEADER_SIZE];
	ssize_t k = rget(r, hdr, sizeof(hdr));

	if (k < 0)
		return fault(rep, KVDUMP_IO, (int)k, 0, NULL);
	if (memcmp(hdr, KVDUMP_MAGIC, (size_t)k < 8 ? (size_t)k : 8) != 0 || k == 0)
		return fault(rep, KVDUMP_NOT_A_DUMP, 0, 0, NULL);
	if ((size_t)k < sizeof(hdr))
		return fault(rep, KVDUMP_TRUNCATED, 0, r->off, NULL);
	/* the checksum first, so that a damaged version byte reads as damage */
	if (le_get32(hdr + 16) != crc32c(0, hdr, 16))
		return fault(rep, KVDUMP_DAMAGED, 0, 0, "header checksum");
	if (le_get32(hdr + 8) != KVDUMP_VERSION || le_get32(hdr + 12) != 0)
		return fault(rep, KVDUMP_VERSION_UNKNOWN, 0, 8, NULL);
	return 0;
}

/* Puts the value in chunks: the first with the key and its metadata (one record), the rest as
 * writes at their offsets, so neither side ever holds the whole value. */
static int read_value(struct kv *kv, struct rstream *r, const uint8_t *key, size_t klen,
		      const uint8_t *meta, size_t mlen, uint64_t vlen, uint8_t *chunk, uint32_t *crc,
		      uint64_t entry_off, struct kvdump_report *rep)
{
	uint64_t done = 0;
	int rc;

	do {
		size_t want = vlen - done < KVDUMP_CHUNK ? (size_t)(vlen - done) : KVDUMP_CHUNK;

		rc = rexact(r, chunk, want, rep);
		if (rc)
			return rc;
		*crc = crc32c(*crc, chunk, want);
		if (done == 0) {
			struct kv_batch *b = NULL;

			rc = kv_batch_new(&b);
			if (!rc) {
				rc = kv_batch_put(b, key, klen, meta, mlen, chunk, want);
				if (!rc)
					rc = kv_apply(kv, b, NULL);
				kv_batch_free(b);
			}
		} else {
			rc = kv_write(kv, key, klen, done, chunk, want);
		}
		if (rc)
			return fault(rep, KVDUMP_STORE, rc, entry_off, NULL);
		done += want;
	} while (done < vlen);
	return 0;
}

int kvdump_read(struct kv *kv, int fd, struct kvdump_report *rep, kvdump_progress_fn progress,
		void *arg)
{
	struct rstream r = { .fd = fd };
	uint8_t fixed[KVDUMP_ENTRY_FIXED], le[4], *chunk = NULL;
	uint8_t *key = NULL, *prev = NULL, meta[KV_MAX_META];
	size_t prevlen = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	r.buf = malloc(IOBUF_SIZE);
	chunk = malloc(KVDUMP_CHUNK);
	key = malloc(KV_MAX_KEY);
	prev = malloc(KV_MAX_KEY);
	if (!r.buf || !chunk || !key || !prev) {
		rc = fault(rep, KVDUMP_IO, -ENOMEM, 0, NULL);
		goto out;
	}
	rc = read_header(&r, rep);
	if (rc)
		goto out;
	for (;;) {
		uint64_t rec_off = r.off, vlen;
		uint32_t before = r.crc, crc, klen, mlen;

		rc = rexact(&r, fixed, 1, rep);
		if (rc)
			goto out;
		if (fixed[0] == KVDUMP_END) {
			uint8_t end[KVDUMP_END_SIZE];

			end[0] = fixed[0];
			rc = rexact(&r, end + 1, sizeof(end) - 1 - 4, rep);
			if (!rc)
				rc = rexact(&r, end + 13, 4, rep);
			if (rc)
				goto out;
			if (le_get32(end + 13) != crc32c(0, end, 13))
				rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off, "end record checksum");
			else if (le_get64(end + 1) != rep->entries)
				rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off, "entry count");
			else if (le_get32(end + 9) != before)
				rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off, "stream checksum");
			if (rc)
				goto out;
			break;
		}
		if (fixed[0] != KVDUMP_ENTRY) {
			rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off, "record type");
			goto out;
		}
		rc = rexact(&r, fixed + 1, sizeof(fixed) - 1, rep);
		if (rc)
			goto out;
		klen = le_get32(fixed + 1);
		mlen = le_get32(fixed + 5);
		vlen = le_get64(fixed + 9);
		/* bounds before the checksum can be read: a damaged length must not make us read
		 * (or allocate) gigabytes to find out */
		if (klen > KV_MAX_KEY) {
			rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off + 1, "key length");
			goto out;
		}
		if (mlen > KV_MAX_META) {
			rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off + 5, "metadata length");
			goto out;
		}
		if ((rc = rexact(&r, key, klen, rep)) || (rc = rexact(&r, meta, mlen, rep)) ||
		    (rc = rexact(&r, le, 4, rep)))
			goto out;
		crc = crc32c(0, fixed, sizeof(fixed));
		crc = crc32c(crc, key, klen);
		crc = crc32c(crc, meta, mlen);
		if (le_get32(le) != crc) {
			rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off, "entry header checksum");
			goto out;
		}
		if (rep->entries && dump_keycmp(key, klen, prev, prevlen) <= 0) {
			rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off, "key order");
			goto out;
		}
		if (vlen > KV_MAX_VALUE) {
			rep->size = vlen;
			rc = fault(rep, KVDUMP_TOO_BIG, 0, rec_off, NULL);
			goto out;
		}
		rc = read_value(kv, &r, key, klen, meta, mlen, vlen, chunk, &crc, rec_off, rep);
		if (rc)
			goto out;
		rc = rexact(&r, le, 4, rep);
		if (rc)
			goto out;
		if (le_get32(le) != crc) {
			rc = fault(rep, KVDUMP_DAMAGED, 0, rec_off, "entry checksum");
			goto out;
		}
		memcpy(prev, key, klen);
		prevlen = klen;
		rep->entries++;
		rep->value_bytes += vlen;
		if (progress && r.off - r.reported >= KVDUMP_CHUNK) {
			rep->bytes = r.off;
			r.reported = r.off;
			progress(arg, rep);
		}
	}
	/* nothing may follow the end record */
	{
		uint8_t extra;
		ssize_t k = rget(&r, &extra, 1);

		if (k < 0)
			rc = fault(rep, KVDUMP_IO, (int)k, r.off, NULL);
		else if (k > 0)
			rc = fault(rep, KVDUMP_TRAILING, 0, r.off - 1, NULL);
	}
	rep->bytes = r.off;
out:
	free(r.buf);
	free(chunk);
	free(key);
	free(prev);
	return rc;
}
