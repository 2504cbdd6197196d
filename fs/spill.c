/* spill.c — ids for internal keys, directories whose entries move to "/dir/<id>/" when a path
 * grows too long for a key, and orphans (files without a name).
 *
 * Spilling. A node's key is at most KVFS_NODE_KEY_MAX bytes. When an entry of directory D
 * would not fit under D's own key (a deep path), D spills: in one record of its own, every key
 * below "D/" moves to "/dir/<id>/" (kv_batch_rename_prefix) and D's node blob records the id.
 * Nothing visible changes, so the spill needs no atomicity with the operation that caused it.
 * From then on D's entries are "/dir/<id>/name": at most 22 + 255 bytes, whatever D's depth,
 * and renaming D or any directory above it leaves them where they are.
 * A directory rename that makes keys below it longer (kvfs_make_room) spills, before the
 * rename, the directories whose entries would not fit any more: the one holding the longest
 * key first, until everything fits. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fs_internal.h"

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Whether any key is named by id under any internal prefix. */
static int id_in_use(struct kvfs_fs *fs, uint64_t id)
{
	static const char *const prefixes[] = { KVFS_INODE_PREFIX, KVFS_ORPHAN_PREFIX };
	char key[KVFS_ID_KEY_MAX];
	size_t klen;
	uint64_t size;
	size_t mlen = 0;
	int rc;

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		klen = kvfs_id_key(key, prefixes[i], id);
		rc = kv_stat(fs->kv, key, klen, &size, NULL, &mlen);
		if (rc != -ENOENT)
			return rc ? rc : 1;
	}
	klen = kvfs_id_key(key, KVFS_DIR_PREFIX, id);
	return kvfs_has_entries(fs, key, klen);
}

int kvfs_new_id(struct kvfs_fs *fs, uint64_t *id)
{
	for (;;) {
		uint64_t v;
		int rc;

		pthread_mutex_lock(&fs->id_mu);
		if (fs->id_state == 0) {
			/* seeded once per mount: ids of earlier mounts are in the store, and the
			 * check below skips them */
			if (getrandom(&fs->id_state, sizeof(fs->id_state), 0) != sizeof(fs->id_state)) {
				struct timespec now;

				kvfs_now(&now);
				fs->id_state = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
			}
			fs->id_state |= 1;
		}
		v = splitmix(&fs->id_state) >> 1; /* 63 bits: st_ino sets the top one for links */
		pthread_mutex_unlock(&fs->id_mu);
		if (v == 0)
			continue;
		rc = id_in_use(fs, v);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			*id = v;
			return 0;
		}
	}
}

#define INO_RANGE 1024 /* inode numbers reserved by one record */

int kvfs_new_ino(struct kvfs_fs *fs, uint64_t *ino)
{
	uint8_t val[8];
	int rc;

	if (fs->next_ino == 0) {
		/* the first new node of this mount: go on from what the store has reserved */
		void *v = NULL;
		uint64_t vlen = 0;

		rc = kv_get(fs->kv, KVFS_INO_KEY, sizeof(KVFS_INO_KEY) - 1, &v, &vlen);
		if (rc && rc != -ENOENT)
			return rc;
		fs->next_ino = 3; /* 1 is the root, 2 the control file */
		if (rc == 0 && vlen == 8) {
			fs->next_ino = 0;
			for (int i = 7; i >= 0; i--)
				fs->next_ino = fs->next_ino << 8 | ((uint8_t *)v)[i];
		}
		free(v);
		if (fs->next_ino < 3)
			fs->next_ino = 3;
		fs->ino_reserved = fs->next_ino;
	}
	if (fs->next_ino == fs->ino_reserved) {
		/* A record of its own, before any node holds a number of the range: a node that
		 * survives a crash was logged after it, so a remount never gives its number again. */
		uint64_t upto = fs->ino_reserved + INO_RANGE;

		for (int i = 0; i < 8; i++)
			val[i] = (uint8_t)(upto >> (8 * i));
		rc = kv_put(fs->kv, KVFS_INO_KEY, sizeof(KVFS_INO_KEY) - 1, val, sizeof(val));
		if (rc)
			return rc;
		fs->ino_reserved = upto;
	}
	*ino = fs->next_ino++;
	return 0;
}

/* Spill the directory at key (node: its node, if the kernel holds one). */
static int spill_key(struct kvfs_fs *fs, const char *key, size_t klen, struct kvfs_node *node)
{
	char from[KV_MAX_KEY + 2], to[KVFS_ID_KEY_MAX + 1];
	struct kvfs_stored st;
	struct kv_batch *b = NULL;
	uint64_t id, lsn = 0;
	size_t tlen;
	int rc;

	rc = kvfs_load(fs, key, klen, &st);
	if (rc)
		return rc;
	if (!S_ISDIR(st.meta.mode))
		return -ENOTDIR;
	if (st.meta.spill)
		return 0; /* already */
	rc = kvfs_new_id(fs, &id);
	if (rc)
		return rc;
	rc = kv_batch_new(&b);
	if (rc)
		return rc;
	memcpy(from, key, klen);
	from[klen] = '/';
	tlen = kvfs_id_key(to, KVFS_DIR_PREFIX, id);
	to[tlen] = '/';
	rc = kvfs_has_entries(fs, key, klen);
	if (rc > 0)
		rc = kv_batch_rename_prefix(b, from, klen + 1, to, tlen + 1);
	st.meta.spill = id;
	if (rc == 0)
		rc = kvfs_batch_meta(b, key, klen, &st);
	/* a spill runs inside a namespace change, which set writer_epoch (txn.c) */
	if (rc == 0)
		rc = kvfs_fs_apply(fs, b, fs->writer_epoch, &lsn);
	kv_batch_free(b);
	if (lsn && node) {
		/* applied (even if its flush failed): the entries are there now */
		node->spill = id;
		kvfs_cursors_free(node);
	}
	return rc;
}

int kvfs_spill(struct kvfs_fs *fs, struct kvfs_node *dir)
{
	char key[KV_MAX_KEY];
	size_t klen;
	int rc;

	if (dir->spill || dir->is_root)
		return 0;
	rc = kvfs_node_key(dir, key, &klen);
	return rc ? rc : spill_key(fs, key, klen, dir);
}

struct longest {
	const char *prefix;
	size_t plen;
	char key[KV_MAX_KEY];
	size_t klen; /* its node part */
};

static int longest_cb(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		      size_t mlen)
{
	struct longest *l = arg;
	size_t n;

	(void)size, (void)meta, (void)mlen;
	if (klen < l->plen || memcmp(key, l->prefix, l->plen) != 0)
		return 1;
	n = kvfs_node_part(key, klen);
	if (n > l->klen) {
		memcpy(l->key, key, n);
		l->klen = n;
	}
	return 0;
}

/* The node the kernel holds for the directory at key, below dir (whose key is dkey): found by
 * walking down the names, or NULL (then none below it is held either: a node holds its
 * parent). */
static struct kvfs_node *held_below(struct kvfs_fs *fs, struct kvfs_node *dir, size_t dklen,
				    const char *key, size_t klen)
{
	struct kvfs_node *n = dir;
	size_t at = dklen;

	kvfs_node_ref(fs, n);
	while (n && at < klen) {
		const char *c = key + at + 1, *slash = memchr(c, '/', klen - at - 1);
		size_t cl = slash ? (size_t)(slash - c) : klen - at - 1;
		struct kvfs_node *next = kvfs_node_find(fs, n, c, cl);

		kvfs_node_unref(fs, n);
		n = next;
		at += 1 + cl;
		if (n && n->spill)
			break; /* its entries are not below key any more */
	}
	if (n && at != klen) {
		kvfs_node_unref(fs, n);
		n = NULL;
	}
	return n;
}

int kvfs_make_room(struct kvfs_fs *fs, struct kvfs_node *dir, size_t growth)
{
	char dkey[KV_MAX_KEY + 1];
	struct longest *l;
	size_t dklen;
	int rc;

	if (dir->spill || growth == 0)
		return 0;
	rc = kvfs_node_key(dir, dkey, &dklen);
	if (rc)
		return rc;
	dkey[dklen] = '/';
	l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	for (;;) {
		struct kvfs_node *holder;
		size_t plen;

		l->prefix = dkey;
		l->plen = dklen + 1;
		l->klen = 0;
		rc = kv_scan(fs->kv, dkey, dklen + 1, longest_cb, l);
		if (rc < 0)
			break;
		rc = 0;
		if (l->klen == 0 || l->klen + growth <= KVFS_NODE_KEY_MAX)
			break;
		/* the directory holding the longest key spills; its entries no longer move */
		plen = l->klen;
		while (plen > 0 && l->key[plen - 1] != '/')
			plen--;
		plen--; /* without the '/' */
		if (plen == dklen) {
			rc = kvfs_spill(fs, dir);
			break;
		}
		holder = held_below(fs, dir, dklen, l->key, plen);
		rc = spill_key(fs, l->key, plen, holder);
		kvfs_node_unref(fs, holder);
		if (rc)
			break;
	}
	free(l);
	return rc;
}

#define ORPHAN_BATCH 256

/* Orphans found by one scan. */
struct orphans {
	char keys[ORPHAN_BATCH][KVFS_ID_KEY_MAX + KVFS_XATTR_NAME_MAX + 1];
	size_t lens[ORPHAN_BATCH];
	unsigned n;
	int more;
};

static int orphans_cb(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		      size_t mlen)
{
	struct orphans *o = arg;
	const size_t plen = sizeof(KVFS_ORPHAN_PREFIX) - 1;
	uint64_t id;

	(void)size, (void)meta, (void)mlen;
	if (klen < plen || memcmp(key, KVFS_ORPHAN_PREFIX, plen) != 0)
		return 1; /* past the orphans */
	if (o->n == ORPHAN_BATCH) {
		o->more = 1;
		return 1;
	}
	if (!kvfs_is_id_key(key, klen, KVFS_ORPHAN_PREFIX, &id) || klen > sizeof(o->keys[0]))
		return 0; /* not one of ours: leave it */
	memcpy(o->keys[o->n], key, klen);
	o->lens[o->n++] = klen;
	return 0;
}

int kvfs_remove_orphans(struct kvfs_fs *fs, uint64_t *removed)
{
	struct orphans *o = malloc(sizeof(*o));
	uint64_t count = 0;
	int rc = 0;

	if (!o)
		return -ENOMEM;
	do {
		struct kv_batch *b = NULL;

		o->n = 0;
		o->more = 0;
		/* each round deletes what it found, so the next one starts at the prefix again */
		rc = kv_scan(fs->kv, KVFS_ORPHAN_PREFIX, sizeof(KVFS_ORPHAN_PREFIX) - 1, orphans_cb, o);
		if (rc < 0 || o->n == 0)
			break;
		rc = kv_batch_new(&b);
		for (unsigned i = 0; !rc && i < o->n; i++) {
			rc = kv_batch_del(b, o->keys[i], o->lens[i]);
			if (!memchr(o->keys[i], '\0', o->lens[i]))
				count++; /* a file, not one of its attributes */
		}
		if (!rc)
			rc = kvfs_fs_apply(fs, b, 0, NULL); /* never on a node (kvfs.c) */
		kv_batch_free(b);
		if (rc)
			break;
	} while (o->more);
	free(o);
	if (removed)
		*removed = count;
	return rc < 0 ? rc : 0;
}

void kvfs_orphan_delete(struct kvfs_fs *fs, uint64_t id)
{
	char key[KVFS_ID_KEY_MAX];
	struct kvfs_meta m = { .flags = KVFS_META_XATTRS }; /* look for attributes either way */
	struct kv_batch *b = NULL;
	struct kvfs_stored st;
	size_t klen = kvfs_id_key(key, KVFS_ORPHAN_PREFIX, id);
	int rc = kv_batch_new(&b);

	kvfs_prealloc_forget();
	if (kvfs_load(fs, key, klen, &st) == 0)
		m.pa_promised = st.meta.pa_promised; /* its promise goes back with it */
	if (!rc)
		rc = kvfs_batch_delete(fs, b, key, klen, &m);
	if (!rc)
		rc = kvfs_fs_apply(fs, b, 0, NULL); /* its keys: nothing else changes them */
	kv_batch_free(b);
	if (rc)
		fuse_log(FUSE_LOG_ERR, "deleting %s, a file without a name the kernel no longer holds: "
			 "%s (the next mount deletes it)\n", key, strerror(-rc));
}
