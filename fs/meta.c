/* meta.c — encoding of the node and link blobs (layout in meta.h and docs/FORMAT.md). */
#include "meta.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++)
		v |= (uint32_t)p[i] << (8 * i);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void put_time(uint8_t *p, const struct timespec *t)
{
	put64(p, (uint64_t)(int64_t)t->tv_sec);
	put32(p + 8, (uint32_t)t->tv_nsec);
}

static int get_time(const uint8_t *p, struct timespec *t)
{
	uint32_t nsec = get32(p + 8);

	if (nsec >= 1000000000u)
		return -EIO;
	t->tv_sec = (time_t)(int64_t)get64(p);
	t->tv_nsec = (long)nsec;
	return 0;
}

size_t kvfs_meta_encode(const struct kvfs_meta *m, uint8_t out[KVFS_META_LEN])
{
	out[0] = KVFS_BLOB_NODE;
	put32(out + 1, m->mode);
	put32(out + 5, m->uid);
	put32(out + 9, m->gid);
	put64(out + 13, m->rdev);
	put_time(out + 21, &m->atime);
	put_time(out + 33, &m->mtime);
	put_time(out + 45, &m->ctime);
	put32(out + 57, m->nlink);
	put32(out + 61, m->flags);
	put64(out + 65, m->spill);
	put64(out + 73, m->ino);
	if (m->pa_hi <= m->pa_lo)
		return KVFS_META_BASE_LEN;
	put64(out + 81, m->pa_lo);
	put64(out + 89, m->pa_hi);
	put64(out + 97, m->pa_unwritten);
	put64(out + 105, m->pa_promised);
	return KVFS_META_LEN;
}

size_t kvfs_link_encode(uint64_t id, uint8_t out[KVFS_LINK_LEN])
{
	out[0] = KVFS_BLOB_LINK;
	put64(out + 1, id);
	return KVFS_LINK_LEN;
}

static int decode_node(const uint8_t *p, size_t len, struct kvfs_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->mode = get32(p + 1);
	switch (m->mode & S_IFMT) {
	case S_IFREG:
	case S_IFDIR:
	case S_IFLNK:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EIO;
	}
	m->uid = get32(p + 5);
	m->gid = get32(p + 9);
	m->rdev = get64(p + 13);
	if (get_time(p + 21, &m->atime) || get_time(p + 33, &m->mtime) || get_time(p + 45, &m->ctime))
		return -EIO;
	m->nlink = 1;
	if (p[0] == KVFS_BLOB_NODE_V1)
		return KVFS_BLOB_IS_NODE;
	if (len < KVFS_META_BASE_LEN)
		return -EIO;
	m->nlink = get32(p + 57);
	m->flags = get32(p + 61);
	m->spill = get64(p + 65);
	m->ino = get64(p + 73);
	if (len < KVFS_META_LEN)
		return KVFS_BLOB_IS_NODE;
	m->pa_lo = get64(p + 81);
	m->pa_hi = get64(p + 89);
	m->pa_unwritten = get64(p + 97);
	m->pa_promised = get64(p + 105);
	if (m->pa_hi <= m->pa_lo)
		m->pa_lo = m->pa_hi = m->pa_unwritten = m->pa_promised = 0; /* no range: none kept */
	else if (m->pa_unwritten > m->pa_hi - m->pa_lo)
		return -EIO;
	return KVFS_BLOB_IS_NODE;
}

int kvfs_blob_decode(const void *buf, size_t len, struct kvfs_meta *m, uint64_t *link_id)
{
	const uint8_t *p = buf;

	if (len == 0)
		return -EIO;
	switch (p[0]) {
	case KVFS_BLOB_NODE_V1:
	case KVFS_BLOB_NODE:
		if (len < KVFS_META_V1_LEN)
			return -EIO;
		return decode_node(p, len, m);
	case KVFS_BLOB_LINK:
		if (len < KVFS_LINK_LEN)
			return -EIO;
		*link_id = get64(p + 1);
		return *link_id ? KVFS_BLOB_IS_LINK : -EIO;
	default:
		return -EIO;
	}
}
