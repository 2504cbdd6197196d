/* listing.c — the directory walker of listing.h. */
#include "listing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs_internal.h"

/* The state of one listing across the scans it takes. Names emitted from a key of their own
 * ("P/x") may still see keys below them ("P/x/...") later, after siblings that sort between
 * "x" and "x/" (their bytes after "x" are below '/'). Those siblings all extend x, so the names
 * waiting for their subtree form a chain, each a prefix of the next: kept as the longest name
 * and the lengths of the others. */
struct kvfs_listing {
	struct kvfs_fs *fs;
	char prefix[KV_MAX_KEY + 2]; /* "P/", or "" at the root */
	size_t plen;
	int at_root;
	char resume[KV_MAX_KEY + 2]; /* where the next scan starts */
	size_t rlen;
	int done;
	char chain[KVFS_NAME_MAX + 1];
	size_t lens[KVFS_NAME_MAX + 1];
	unsigned depth;
	/* this call's */
	struct kvfs_child *out;
	size_t max, n;
	size_t *budget;
	size_t (*cost)(size_t namelen);
	int stopped;
};

int kvfs_listing_new(struct kvfs_listing **out, struct kvfs_fs *fs, const char *prefix,
		     size_t plen, int at_root)
{
	struct kvfs_listing *ls;

	if (plen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	ls = calloc(1, sizeof(*ls));
	if (!ls)
		return -ENOMEM;
	ls->fs = fs;
	ls->at_root = at_root;
	if (plen) {
		memcpy(ls->prefix, prefix, plen);
		ls->prefix[plen] = '/';
		ls->plen = plen + 1;
	}
	memcpy(ls->resume, ls->prefix, ls->plen);
	ls->rlen = ls->plen;
	*out = ls;
	return 0;
}

void kvfs_listing_free(struct kvfs_listing *ls)
{
	free(ls);
}

int kvfs_listing_done(const struct kvfs_listing *ls)
{
	return ls->done;
}

static void skip_subtree(struct kvfs_listing *ls, const char *key, size_t end)
{
	/* resume at key[0..end) + '0': the first key after every key starting with
	 * key[0..end) + '/' */
	memcpy(ls->resume, key, end);
	ls->resume[end] = '0';
	ls->rlen = end + 1;
}

/* Room for one more child in this call? If not, the walk stops here and resumes at key. */
static int room_for(struct kvfs_listing *ls, const char *key, size_t klen, size_t namelen)
{
	size_t c = ls->cost ? ls->cost(namelen) : 0;

	if (ls->n < ls->max && c <= *ls->budget) {
		*ls->budget -= c;
		return 1;
	}
	memcpy(ls->resume, key, klen);
	ls->rlen = klen;
	ls->stopped = 1;
	return 0;
}

static struct kvfs_child *add_child(struct kvfs_listing *ls, const char *name, size_t len)
{
	struct kvfs_child *c = &ls->out[ls->n++];

	memset(c, 0, sizeof(*c));
	memcpy(c->name, name, len);
	c->name[len] = '\0';
	c->namelen = len;
	return c;
}

static int listing_cb(void *arg, const void *kp, size_t klen, uint64_t size, const void *meta,
		      size_t mlen)
{
	struct kvfs_listing *ls = arg;
	const char *key = kp, *c, *slash;
	struct kvfs_child *ch;
	size_t cl;
	int has_sub;

	if (klen < ls->plen || memcmp(key, ls->prefix, ls->plen) != 0) {
		ls->done = 1;
		return 1;
	}
	c = key + ls->plen;
	slash = memchr(c, '/', klen - ls->plen);
	cl = slash ? (size_t)(slash - c) : klen - ls->plen;
	has_sub = slash != NULL;

	/* forget waiting names whose subtree can no longer come: c does not extend them with
	 * bytes below '/' */
	while (ls->depth > 0) {
		size_t t = ls->lens[ls->depth - 1];

		if (cl >= t && memcmp(c, ls->chain, t) == 0 && (cl == t || (unsigned char)c[t] < '/'))
			break;
		ls->depth--;
	}
	if (!kvfs_name_visible(c, cl, ls->at_root)) {
		if (!has_sub)
			return 0;
		skip_subtree(ls, key, ls->plen + cl);
		return 1;
	}
	if (has_sub) {
		int shown = ls->depth > 0 && ls->lens[ls->depth - 1] == cl;

		if (!shown) {
			if (!room_for(ls, key, klen, cl))
				return 1;
			ch = add_child(ls, c, cl);
			ch->implicit = 1;
			kvfs_meta_default(ls->fs, S_IFDIR | 0755, &ch->meta);
		}
		skip_subtree(ls, key, ls->plen + cl);
		return 1;
	}
	if (!room_for(ls, key, klen, cl))
		return 1;
	ch = add_child(ls, c, cl);
	ch->size = size;
	if (mlen == 0) {
		kvfs_meta_default(ls->fs, S_IFREG | 0644, &ch->meta);
	} else {
		int kind = kvfs_blob_decode(meta, mlen, &ch->meta, &ch->link_id);

		if (kind < 0)
			ch->unreadable = 1; /* listed with an unknown type; stat says EIO */
		else if (kind == KVFS_BLOB_IS_NODE && S_ISDIR(ch->meta.mode))
			ch->size = 0;
	}
	memcpy(ls->chain, c, cl);
	ls->lens[ls->depth++] = cl;
	return 0;
}

int kvfs_listing_next(struct kvfs_listing *ls, struct kvfs_child *out, size_t max,
		      size_t *budget, size_t (*cost)(size_t namelen))
{
	int rc;

	ls->out = out;
	ls->max = max;
	ls->n = 0;
	ls->budget = budget;
	ls->cost = cost;
	ls->stopped = 0;
	while (!ls->done && !ls->stopped) {
		rc = kv_scan(ls->fs->kv, ls->resume, ls->rlen, listing_cb, ls);
		if (rc < 0)
			return rc;
		if (rc == 0)
			ls->done = 1; /* the end of the store */
	}
	return (int)ls->n;
}

struct first_key {
	const char *prefix;
	size_t plen;
	int found;
};

static int first_key_cb(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
			size_t mlen)
{
	struct first_key *f = arg;

	(void)size, (void)meta, (void)mlen; /* only the key matters */
	f->found = klen >= f->plen && memcmp(key, f->prefix, f->plen) == 0;
	return 1; /* the first key at or after the prefix decides */
}

int kvfs_has_entries(struct kvfs_fs *fs, const char *prefix, size_t plen)
{
	char p[KV_MAX_KEY + 2];
	struct first_key f = { p, plen + 1, 0 };
	int rc;

	if (plen > KV_MAX_KEY)
		return -ENAMETOOLONG;
	memcpy(p, prefix, plen);
	p[plen] = '/';
	rc = kv_scan(fs->kv, p, plen + 1, first_key_cb, &f);
	if (rc < 0)
		return rc;
	return f.found;
}

#define COUNT_CHUNK 256

int kvfs_count_subdirs(struct kvfs_fs *fs, const char *prefix, size_t plen, int at_root,
		       uint64_t *n)
{
	struct kvfs_listing *ls = NULL;
	struct kvfs_child *ch = malloc(COUNT_CHUNK * sizeof(*ch));
	uint64_t count = 0;
	size_t budget = SIZE_MAX;
	int rc;

	if (!ch)
		return -ENOMEM;
	rc = kvfs_listing_new(&ls, fs, prefix, plen, at_root);
	while (rc == 0 && !kvfs_listing_done(ls)) {
		int got = kvfs_listing_next(ls, ch, COUNT_CHUNK, &budget, NULL);

		if (got < 0) {
			rc = got;
			break;
		}
		for (int i = 0; i < got; i++)
			if (ch[i].implicit || (!ch[i].link_id && !ch[i].unreadable &&
					       S_ISDIR(ch[i].meta.mode)))
				count++;
	}
	kvfs_listing_free(ls);
	free(ch);
	if (rc == 0)
		*n = count;
	return rc;
}
