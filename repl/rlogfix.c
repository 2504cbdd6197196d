/* rlogfix.c — finishing a truncation of raft's log that libraft 0.15 left undone (rlogfix.h).
 *
 * Raft's segment format 1 (libraft's uv_segment.c, uv_encoding.c), all little endian:
 *   u64 format (1), then batches:
 *   u32 crc1 (of the batch header) | u32 crc2 (of the entries' data) |
 *   header: u64 n, then n times { u64 term, u8 type, 3 unused bytes, u32 len } |
 *   data: each entry's len bytes, padded to 8.
 * The checksums are libraft's byteCrc32: CRC-32 with polynomial 0x04c11db7 taken MSB first,
 * starting at 0, no final xor. A closed segment's name is FIRST-LAST (16 digits each). */
#include "rlogfix.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "futil.h"

#define MAX_SEGMENTS 4096
#define MAX_SEGMENT_BYTES (256u << 20) /* raft's are 8 MiB; far more is no segment of ours */
#define TMP_NAME ".rlogfix-tmp"

struct seg {
	uint64_t first, end;
	char name[40];
};

static uint32_t raft_crc(const uint8_t *p, size_t n, uint32_t crc)
{
	while (n--) {
		crc ^= (uint32_t)*p++ << 24;
		for (int k = 0; k < 8; k++)
			crc = crc & 0x80000000u ? (crc << 1) ^ 0x04c11db7u : crc << 1;
	}
	return crc;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static int by_range(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;
	if (x->first != y->first)
		return x->first < y->first ? -1 : 1;
	return x->end < y->end ? -1 : x->end > y->end;
}

static int is_closed_name(const char *s, uint64_t *first, uint64_t *end)
{
	if (strlen(s) != 33 || s[16] != '-')
		return 0;
	for (int i = 0; i < 33; i++)
		if (i != 16 && (s[i] < '0' || s[i] > '9'))
			return 0;
	*first = strtoull(s, NULL, 10);
	*end = strtoull(s + 17, NULL, 10);
	return *first >= 1 && *end >= *first;
}

static int list_closed(const char *dir, struct seg *segs, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	*n = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		struct seg s;
		if (!is_closed_name(e->d_name, &s.first, &s.end))
			continue;
		if (*n == MAX_SEGMENTS) {
			closedir(d);
			return -E2BIG;
		}
		memcpy(s.name, e->d_name, 34); /* 33 characters and the NUL: is_closed_name checked */
		segs[(*n)++] = s;
	}
	closedir(d);
	qsort(segs, *n, sizeof(*segs), by_range);
	return 0;
}

static int read_whole(const char *dir, const char *name, uint8_t **out, size_t *len)
{
	char path[4096];
	struct stat st;
	uint8_t *buf = NULL;
	int fd = -1, rc = futil_join(path, sizeof(path), dir, name);

	if (rc)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_size > MAX_SEGMENT_BYTES) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t got = 0; got < (size_t)st.st_size;) {
		ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			goto out;
		}
		got += (size_t)r;
	}
	*out = buf;
	*len = (size_t)st.st_size;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Where entry x of a segment starting at first lies: the batch's offset, the entry's place in
 * it, its term. 0, or -EPROTO (the segment does not parse or does not hold x). */
struct where {
	size_t batch;
	uint64_t k, term;
};

static int locate(const uint8_t *b, size_t len, uint64_t first, uint64_t x, struct where *w)
{
	size_t off = 8;
	uint64_t index = first;

	if (len < 8 || get64(b) != 1)
		return -EPROTO;
	while (off + 16 <= len) {
		uint64_t n = get64(b + off + 8);
		size_t hdr = off + 8, data;
		uint32_t crc2 = 0;

		if (n == 0 || n > (len - off) / 16)
			return -EPROTO;
		data = hdr + 8 + 16 * (size_t)n;
		if (data > len || raft_crc(b + hdr, 8 + 16 * (size_t)n, 0) != get32(b + off))
			return -EPROTO;
		for (uint64_t k = 0; k < n; k++) {
			uint32_t elen = get32(b + hdr + 8 + 16 * k + 12);
			size_t padded = ((size_t)elen + 7) & ~(size_t)7;
			if (padded > len - data)
				return -EPROTO;
			crc2 = raft_crc(b + data, elen, crc2);
			data += padded;
		}
		if (crc2 != get32(b + off + 4))
			return -EPROTO;
		if (x >= index && x < index + n) {
			w->batch = off;
			w->k = x - index;
			w->term = get64(b + hdr + 8 + 16 * w->k);
			return 0;
		}
		index += n;
		off = data;
	}
	return -EPROTO;
}

/* The segment's bytes up to entry x (which w locates): the batches before it whole, its own
 * batch rewritten with the entries before x. The new length. */
static size_t cut_bytes(uint8_t *b, const struct where *w)
{
	size_t off = w->batch, hdr = off + 8, src, dst;
	uint64_t n = get64(b + hdr), m = w->k;
	uint32_t crc2 = 0;

	if (m == 0)
		return off;
	src = hdr + 8 + 16 * (size_t)n; /* the old data */
	dst = hdr + 8 + 16 * (size_t)m; /* the new data, right after the shorter header */
	for (uint64_t k = 0; k < m; k++) {
		uint32_t elen = get32(b + hdr + 8 + 16 * k + 12);
		size_t padded = ((size_t)elen + 7) & ~(size_t)7;
		memmove(b + dst, b + src, padded);
		crc2 = raft_crc(b + dst, elen, crc2);
		src += padded;
		dst += padded;
	}
	put64(b + hdr, m);
	put32(b + off, raft_crc(b + hdr, 8 + 16 * (size_t)m, 0));
	put32(b + off + 4, crc2);
	return dst;
}

static int write_durable(const char *dir, const char *name, const uint8_t *b, size_t len)
{
	char tmp[4096], path[4096];
	int fd, rc = futil_join(tmp, sizeof(tmp), dir, TMP_NAME);

	if (rc == 0)
		rc = futil_join(path, sizeof(path), dir, name);
	if (rc)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < len && rc == 0;) {
		ssize_t r = write(fd, b + done, len - done);
		if (r < 0 && errno != EINTR)
			rc = -errno;
		else if (r > 0)
			done += (size_t)r;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc)
		unlink(tmp); /* best effort: a leftover is removed at the next repair */
	return rc;
}

/* Cuts s at x: rewrites it as [first, x-1], or removes it when x is its first entry. The new
 * segment is durable before the old one goes, so a crash between loses nothing; what it leaves
 * is repaired by the next start (rlogfix_repair's order). */
static int cut(const char *dir, const struct seg *s, uint8_t *b, const struct where *w,
	       uint64_t x, struct rlogfix_report *rep)
{
	char path[4096], name[40];
	int rc;

	if (x > s->first) {
		size_t len = cut_bytes(b, w);
		snprintf(name, sizeof(name), "%016" PRIu64 "-%016" PRIu64, s->first, x - 1);
		rc = write_durable(dir, name, b, len);
		if (rc == 0)
			rc = futil_sync_dir(dir);
		if (rc) {
			snprintf(rep->detail, sizeof(rep->detail), "writing %s/%s: %s", dir, name,
				 strerror(-rc));
			return rc;
		}
	}
	rc = futil_join(path, sizeof(path), dir, s->name);
	if (rc == 0 && unlink(path) < 0)
		rc = -errno;
	if (rc == 0)
		rc = futil_sync_dir(dir);
	if (rc) {
		snprintf(rep->detail, sizeof(rep->detail), "removing %s/%s: %s", dir, s->name,
			 strerror(-rc));
		return rc;
	}
	rep->cut++;
	if (x > s->first)
		snprintf(rep->detail, sizeof(rep->detail), "segment %s cut to %s: entries from %" PRIu64
			 " on had been replaced by a newer term's", s->name, name, x);
	else
		snprintf(rep->detail, sizeof(rep->detail), "segment %s removed: its entries had been "
			 "replaced by a newer term's", s->name);
	return 0;
}

int rlogfix_repair(const char *dir, struct rlogfix_report *rep)
{
	struct seg *segs = malloc(MAX_SEGMENTS * sizeof(*segs));
	uint8_t *ba = NULL, *bb = NULL;
	char tmp[4096];
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	if (!segs)
		return -ENOMEM;
	if (futil_join(tmp, sizeof(tmp), dir, TMP_NAME) == 0 && unlink(tmp) < 0 && errno != ENOENT) {
		rc = -errno;
		snprintf(rep->detail, sizeof(rep->detail), "removing %s/%s: %s", dir, TMP_NAME, strerror(-rc));
		goto out;
	}
	/* One overlap at a time, the lowest first: each step removes a segment or shortens one, so
	 * this ends; the bound only guards against a loop that would be a bug here. */
	for (unsigned step = 0; step < 2 * MAX_SEGMENTS; step++) {
		struct where wa, wb;
		size_t n, la, lb, i;
		const struct seg *a = NULL, *b = NULL;

		rc = list_closed(dir, segs, &n);
		if (rc) {
			snprintf(rep->detail, sizeof(rep->detail), "listing %s: %s", dir, strerror(-rc));
			goto out;
		}
		/* An overlap that starts inside a segment first: the one a crash inside cut() leaves
		 * (the new [first, x-1] beside the old [first, end]) heals when the old one is cut
		 * again, which rewrites the same bytes under the same name. */
		for (int inside = 1; inside >= 0 && !a; inside--)
			for (i = 0; i < n && !a; i++)
				for (size_t j = i + 1; j < n && segs[j].first <= segs[i].end && !a; j++)
					if ((segs[j].first > segs[i].first) == inside) {
						a = &segs[i];
						b = &segs[j];
					}
		if (!a)
			goto out; /* nothing overlaps */
		free(ba);
		free(bb);
		ba = bb = NULL;
		rc = read_whole(dir, a->name, &ba, &la);
		if (rc == 0)
			rc = read_whole(dir, b->name, &bb, &lb);
		if (rc) {
			snprintf(rep->detail, sizeof(rep->detail), "reading %s/%s or %s: %s", dir, a->name,
				 b->name, strerror(-rc));
			goto out;
		}
		/* sorted: a->first <= b->first = x <= a->end */
		uint64_t x = b->first;
		if (locate(ba, la, a->first, x, &wa) || locate(bb, lb, b->first, x, &wb)) {
			rc = -EPROTO;
			snprintf(rep->detail, sizeof(rep->detail), "segments %s and %s overlap and one "
				 "does not parse as raft's format 1: left as they are", a->name, b->name);
			goto out;
		}
		if (wa.term == wb.term) {
			rc = -EPROTO;
			snprintf(rep->detail, sizeof(rep->detail), "segments %s and %s overlap with the "
				 "same term (%" PRIu64 ") at entry %" PRIu64 ": no undone truncation, left "
				 "as they are", a->name, b->name, wa.term, x);
			goto out;
		}
		/* the one with the older term at x lost entries x on to the other */
		if (wa.term < wb.term)
			rc = cut(dir, a, ba, &wa, x, rep);
		else
			rc = cut(dir, b, bb, &wb, x, rep);
		if (rc)
			goto out;
	}
	rc = -ELOOP;
	snprintf(rep->detail, sizeof(rep->detail), "%s: overlapping segments left after %u repairs",
		 dir, rep->cut);
out:
	free(ba);
	free(bb);
	free(segs);
	return rc;
}

/* Where raft 0.15's loader (uvLoadEntriesBatch) would read past the end of open segment b: the
 * batch's number and offset, or 0 when it stops before (the end, zeros, a checksum that fails:
 * raft drops the rest itself). Mirrors the loader's steps: preamble, header, header checksum,
 * data, data checksum. */
static unsigned torn_batch(const uint8_t *b, size_t len, size_t *at)
{
	size_t off = 8;

	if (len < 8 || get64(b) != 1)
		return 0; /* not format 1: raft refuses it with its own message */
	for (unsigned i = 1; off < len; i++) {
		uint64_t n, data = 0;
		size_t hdr;

		*at = off;
		if (len - off < 16)
			return i;
		n = get64(b + off + 8);
		if (n == 0 || n > (8u << 20) / 32)
			return 0; /* zeros, or a count raft calls corrupt: it stops here */
		if ((len - off - 16) / 16 < n)
			return i;
		hdr = off + 8;
		if (raft_crc(b + hdr, 8 + 16 * (size_t)n, 0) != get32(b + off))
			return 0;
		for (uint64_t k = 0; k < n; k++)
			data += get32(b + hdr + 8 + 16 * k + 12);
		off = hdr + 8 + 16 * (size_t)n;
		if (data > len - off)
			return i;
		if (raft_crc(b + off, (size_t)data, 0) != get32(b + *at + 4))
			return 0;
		off += (size_t)data;
	}
	return 0;
}

int rlogfix_check_open(const char *dir, struct rlogfix_report *rep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	memset(rep, 0, sizeof(*rep));
	if (!d) {
		rc = -errno;
		snprintf(rep->detail, sizeof(rep->detail), "listing %s: %s", dir, strerror(-rc));
		return rc;
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		uint8_t *buf = NULL;
		size_t len = 0, at = 0;
		unsigned batch;

		if (strncmp(e->d_name, "open-", 5) != 0)
			continue;
		rc = read_whole(dir, e->d_name, &buf, &len);
		if (rc) {
			snprintf(rep->detail, sizeof(rep->detail), "reading %s/%.64s: %s", dir, e->d_name,
				 strerror(-rc));
			break;
		}
		batch = torn_batch(buf, len, &at);
		free(buf);
		if (batch) {
			rc = -EUCLEAN;
			snprintf(rep->detail, sizeof(rep->detail), "raft's open segment %.64s ends inside "
				 "its batch %u (at byte %zu of %zu): the file was cut short, which no crash "
				 "does (a copy, a restore or a repair did); libraft 0.15 would crash loading "
				 "it. Restore the file, or wipe the whole node directory (while the group "
				 "has a leader) to rejoin as a new node", e->d_name, batch, at, len);
		}
	}
	closedir(d);
	return rc;
}
