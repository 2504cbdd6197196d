/* inode.c — the nodes the kernel holds (fs_internal.h): their tables, lookup counts, FORGET,
 * where each one lives, and its key. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

#define ROOT_ST_INO 1
#define CONTROL_ST_INO KVFS_CONTROL_ST_INO
#define INO_MASK ((1ull << 63) - 1)
#define KEY_INO_BIT (1ull << 62) /* numbers derived from a key; stored ones count from 3 */

/* A chained hash table of nodes; next is the chain field's offset in struct kvfs_node. */
struct ctab {
	struct kvfs_node **b;
	size_t nb; /* a power of two */
	size_t n;
	size_t next;
};

struct kvfs_tables {
	struct ctab names; /* (parent, name) */
	struct ctab links; /* link_id */
	struct ctab inos;  /* st_ino: no two live nodes show the same number */
};

static struct kvfs_node **next_of(const struct ctab *t, struct kvfs_node *n)
{
	return (struct kvfs_node **)((char *)n + t->next);
}

static int ctab_init(struct ctab *t, size_t next)
{
	t->nb = 1024;
	t->n = 0;
	t->next = next;
	t->b = calloc(t->nb, sizeof(*t->b));
	return t->b ? 0 : -ENOMEM;
}

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_bytes(uint64_t seed, const char *p, size_t len)
{
	uint64_t h = 1469598103934665603ull ^ seed; /* FNV-1a, then mixed */

	for (size_t i = 0; i < len; i++) {
		h ^= (uint8_t)p[i];
		h *= 1099511628211ull;
	}
	return mix(h);
}

static uint64_t name_hash(const struct kvfs_node *dir, const char *name, size_t nlen)
{
	return hash_bytes((uint64_t)(uintptr_t)dir, name, nlen);
}

static uint64_t hash_of(const struct ctab *t, const struct kvfs_node *n)
{
	if (t->next == offsetof(struct kvfs_node, name_next))
		return name_hash(n->parent, n->name, n->namelen);
	if (t->next == offsetof(struct kvfs_node, link_next))
		return mix(n->link_id);
	return mix(n->st_ino);
}

/* Twice the buckets once there are more nodes than buckets; a failed growth only makes the
 * chains longer. */
static void ctab_grow(struct ctab *t)
{
	size_t nb = t->nb * 2;
	struct kvfs_node **b, **old = t->b;

	if (t->n <= t->nb)
		return;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	t->b = b;
	t->nb = nb;
	for (size_t i = 0; i < nb / 2; i++) {
		struct kvfs_node *n = old[i], *next;

		for (; n; n = next) {
			struct kvfs_node **head = &t->b[hash_of(t, n) & (t->nb - 1)];

			next = *next_of(t, n);
			*next_of(t, n) = *head;
			*head = n;
		}
	}
	free(old);
}

static void ctab_add(struct ctab *t, struct kvfs_node *n)
{
	struct kvfs_node **head = &t->b[hash_of(t, n) & (t->nb - 1)];

	*next_of(t, n) = *head;
	*head = n;
	t->n++;
	ctab_grow(t);
}

static void ctab_del(struct ctab *t, struct kvfs_node *n)
{
	struct kvfs_node **p = &t->b[hash_of(t, n) & (t->nb - 1)];

	while (*p && *p != n)
		p = next_of(t, *p);
	if (*p) {
		*p = *next_of(t, n);
		t->n--;
	}
}

uint64_t kvfs_ino_from_key(const char *key, size_t klen)
{
	return (hash_bytes(0, key, klen) & (KEY_INO_BIT - 1)) | KEY_INO_BIT;
}

static struct kvfs_node *find_st_ino(struct kvfs_tables *tb, uint64_t ino)
{
	struct kvfs_node *n = tb->inos.b[mix(ino) & (tb->inos.nb - 1)];

	while (n && n->st_ino != ino)
		n = n->ino_next;
	return n;
}

/* Registers n's st_ino, moving on to the next free number if another live node shows it. */
static void add_st_ino(struct kvfs_tables *tb, struct kvfs_node *n)
{
	/* two files holding one number would be one file to tar and rsync -H: never shown
	 * (only a damaged or hand-edited store can hold a number twice) */
	while (find_st_ino(tb, n->st_ino) || n->st_ino <= CONTROL_ST_INO)
		n->st_ino = (n->st_ino + 1) & INO_MASK;
	ctab_add(&tb->inos, n);
}

static struct kvfs_node *node_alloc(uint32_t type, uint64_t st_ino)
{
	struct kvfs_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->type = type;
	n->st_ino = st_ino;
	n->subdirs = -1;
	pthread_mutex_init(&n->mu, NULL);
	pthread_mutex_init(&n->dir_mu, NULL);
	return n;
}

int kvfs_tables_new(struct kvfs_fs *fs)
{
	struct kvfs_tables *tb = calloc(1, sizeof(*tb));
	int rc = -ENOMEM;

	if (!tb)
		return -ENOMEM;
	if (ctab_init(&tb->names, offsetof(struct kvfs_node, name_next)) ||
	    ctab_init(&tb->links, offsetof(struct kvfs_node, link_next)) ||
	    ctab_init(&tb->inos, offsetof(struct kvfs_node, ino_next)))
		goto fail;
	fs->root = node_alloc(S_IFDIR, ROOT_ST_INO);
	if (!fs->root)
		goto fail;
	/* it lives as long as the mount: never forgotten, never freed before it ends */
	fs->root->is_root = 1;
	fs->root->refs = 1;
	fs->root->nlookup = 1;
	fs->tables = tb;
	ctab_add(&tb->inos, fs->root);
	return 0;
fail:
	free(fs->root);
	fs->root = NULL;
	free(tb->names.b);
	free(tb->links.b);
	free(tb->inos.b);
	free(tb);
	return rc;
}

static void node_free(struct kvfs_node *n)
{
	kvfs_cursors_free(n);
	free(n->text);
	pthread_mutex_destroy(&n->mu);
	pthread_mutex_destroy(&n->dir_mu);
	free(n->name);
	free(n);
}

void kvfs_tables_free(struct kvfs_fs *fs)
{
	struct kvfs_tables *tb = fs->tables;

	if (!tb)
		return;
	/* at the end every node is in the st_ino table, whatever else it was */
	for (size_t i = 0; i < tb->inos.nb; i++) {
		struct kvfs_node *n = tb->inos.b[i], *next;

		for (; n; n = next) {
			next = n->ino_next;
			node_free(n);
		}
	}
	while (fs->controls) {
		struct kvfs_node *n = fs->controls;

		fs->controls = n->name_next;
		node_free(n);
	}
	free(tb->names.b);
	free(tb->links.b);
	free(tb->inos.b);
	free(tb);
	fs->tables = NULL;
	fs->root = NULL;
}

struct kvfs_node *kvfs_node_of(struct kvfs_fs *fs, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return fs->root;
	return (struct kvfs_node *)(uintptr_t)ino;
}

fuse_ino_t kvfs_ino_of(const struct kvfs_fs *fs, const struct kvfs_node *n)
{
	return n == fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

/* Leaves the name table and drops the parent (table_mu held). */
static void detach_name(struct kvfs_fs *fs, struct kvfs_node *n);

static void unref_locked(struct kvfs_fs *fs, struct kvfs_node *n)
{
	while (n && --n->refs == 0) {
		struct kvfs_node *parent = n->parent;
		struct kvfs_tables *tb = fs->tables;

		if (n->is_control) {
			/* in the list of control nodes (name_next forward, link_next back) */
			if (n->link_next)
				n->link_next->name_next = n->name_next;
			else
				fs->controls = n->name_next;
			if (n->name_next)
				n->name_next->link_next = n->link_next;
			node_free(n);
			return;
		}
		if (n->name)
			ctab_del(&tb->names, n);
		if (n->link_id)
			ctab_del(&tb->links, n);
		ctab_del(&tb->inos, n);
		node_free(n);
		n = parent; /* a child's reference on its directory goes with it */
	}
}

static void detach_name(struct kvfs_fs *fs, struct kvfs_node *n)
{
	struct kvfs_node *parent = n->parent;

	if (n->name)
		ctab_del(&fs->tables->names, n);
	free(n->name);
	n->name = NULL;
	n->namelen = 0;
	n->parent = NULL;
	unref_locked(fs, parent);
}

void kvfs_node_ref(struct kvfs_fs *fs, struct kvfs_node *n)
{
	pthread_mutex_lock(&fs->table_mu);
	n->refs++;
	pthread_mutex_unlock(&fs->table_mu);
}

void kvfs_node_unref(struct kvfs_fs *fs, struct kvfs_node *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&fs->table_mu);
	unref_locked(fs, n);
	pthread_mutex_unlock(&fs->table_mu);
}

static struct kvfs_node *find_name(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name,
				   size_t nlen)
{
	struct ctab *t = &fs->tables->names;
	struct kvfs_node *n = t->b[name_hash(dir, name, nlen) & (t->nb - 1)];

	while (n && !(n->parent == dir && n->namelen == nlen && memcmp(n->name, name, nlen) == 0))
		n = n->name_next;
	return n;
}

static struct kvfs_node *find_link(struct kvfs_fs *fs, uint64_t id)
{
	struct ctab *t = &fs->tables->links;
	struct kvfs_node *n = t->b[mix(id) & (t->nb - 1)];

	while (n && n->link_id != id)
		n = n->link_next;
	return n;
}

/* One more lookup by the kernel: the first one is a reference. */
static void looked_up(struct kvfs_node *n)
{
	if (n->nlookup++ == 0)
		n->refs++;
}

int kvfs_node_lookup(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name, size_t nlen,
		     uint64_t st_ino, uint32_t type, uint64_t link_id, uint64_t spill,
		     struct kvfs_node **out)
{
	struct kvfs_node *n;
	int rc = 0;

	pthread_mutex_lock(&fs->table_mu);
	n = link_id ? find_link(fs, link_id) : find_name(fs, dir, name, nlen);
	if (n && n->type != type) {
		/* The name now holds another kind of node than the one the kernel had: the old
		 * one lost its name behind our back (it cannot happen through this mount). */
		detach_name(fs, n);
		n = NULL;
	}
	if (n) {
		looked_up(n);
		goto out;
	}
	n = node_alloc(type, st_ino & INO_MASK);
	if (!n) {
		rc = -ENOMEM;
		goto out;
	}
	n->spill = spill;
	if (link_id) {
		n->link_id = link_id;
		ctab_add(&fs->tables->links, n);
	} else {
		n->name = malloc(nlen + 1);
		if (!n->name) {
			node_free(n);
			n = NULL;
			rc = -ENOMEM;
			goto out;
		}
		memcpy(n->name, name, nlen);
		n->name[nlen] = '\0';
		n->namelen = nlen;
		n->parent = dir;
		dir->refs++;
		ctab_add(&fs->tables->names, n);
	}
	add_st_ino(fs->tables, n);
	looked_up(n);
out:
	pthread_mutex_unlock(&fs->table_mu);
	*out = n;
	return rc;
}

int kvfs_node_new_control(struct kvfs_fs *fs, char *text, size_t len, struct kvfs_node **out)
{
	struct kvfs_node *n = node_alloc(S_IFREG, CONTROL_ST_INO);

	if (!n)
		return -ENOMEM;
	n->is_control = 1;
	n->text = text;
	n->textlen = len;
	pthread_mutex_lock(&fs->table_mu);
	n->name_next = fs->controls;
	if (fs->controls)
		fs->controls->link_next = n;
	fs->controls = n;
	looked_up(n);
	pthread_mutex_unlock(&fs->table_mu);
	*out = n;
	return 0;
}

int kvfs_node_new_orphan(struct kvfs_fs *fs, uint32_t type, uint64_t orphan_id, uint64_t st_ino,
			 struct kvfs_node **out)
{
	struct kvfs_node *n = node_alloc(type, st_ino & INO_MASK);

	if (!n)
		return -ENOMEM;
	n->orphan_id = orphan_id;
	pthread_mutex_lock(&fs->table_mu);
	add_st_ino(fs->tables, n);
	looked_up(n);
	pthread_mutex_unlock(&fs->table_mu);
	*out = n;
	return 0;
}

struct kvfs_node *kvfs_node_find(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name,
				 size_t nlen)
{
	struct kvfs_node *n;

	pthread_mutex_lock(&fs->table_mu);
	n = find_name(fs, dir, name, nlen);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&fs->table_mu);
	return n;
}

struct kvfs_node *kvfs_node_find_link(struct kvfs_fs *fs, uint64_t link_id)
{
	struct kvfs_node *n;

	pthread_mutex_lock(&fs->table_mu);
	n = find_link(fs, link_id);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&fs->table_mu);
	return n;
}

int kvfs_node_held(struct kvfs_fs *fs, struct kvfs_node *n)
{
	int held;

	pthread_mutex_lock(&fs->table_mu);
	held = n->nlookup > 0;
	pthread_mutex_unlock(&fs->table_mu);
	return held;
}

void kvfs_node_forget(struct kvfs_fs *fs, struct kvfs_node *n, uint64_t nlookup)
{
	uint64_t orphan = 0;

	if (n == fs->root)
		return;
	pthread_mutex_lock(&fs->table_mu);
	if (nlookup > n->nlookup)
		nlookup = n->nlookup; /* never below zero, whatever the kernel says */
	n->nlookup -= nlookup;
	if (nlookup && n->nlookup == 0) {
		/* deleted below: with no lookup left and no name, nothing can reach it again */
		orphan = n->orphan_id;
		unref_locked(fs, n);
	}
	pthread_mutex_unlock(&fs->table_mu);
	if (orphan)
		kvfs_orphan_delete(fs, orphan);
}

int kvfs_node_move(struct kvfs_fs *fs, struct kvfs_node *n, struct kvfs_node *dir,
		   const char *name, size_t nlen)
{
	char *copy = malloc(nlen + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, name, nlen);
	copy[nlen] = '\0';
	pthread_mutex_lock(&fs->table_mu);
	dir->refs++; /* before the old parent may go: it can be the same directory */
	detach_name(fs, n);
	if (n->link_id) {
		ctab_del(&fs->tables->links, n);
		n->link_id = 0;
	}
	n->orphan_id = 0;
	n->name = copy;
	n->namelen = nlen;
	n->parent = dir;
	ctab_add(&fs->tables->names, n);
	pthread_mutex_unlock(&fs->table_mu);
	return 0;
}

void kvfs_node_set_link(struct kvfs_fs *fs, struct kvfs_node *n, uint64_t link_id)
{
	pthread_mutex_lock(&fs->table_mu);
	detach_name(fs, n);
	n->orphan_id = 0;
	if (!n->link_id) {
		n->link_id = link_id;
		ctab_add(&fs->tables->links, n);
	}
	pthread_mutex_unlock(&fs->table_mu);
}

void kvfs_node_set_orphan(struct kvfs_fs *fs, struct kvfs_node *n, uint64_t orphan_id)
{
	pthread_mutex_lock(&fs->table_mu);
	detach_name(fs, n);
	if (n->link_id) {
		ctab_del(&fs->tables->links, n);
		n->link_id = 0;
	}
	n->orphan_id = orphan_id;
	pthread_mutex_unlock(&fs->table_mu);
}

void kvfs_node_set_removed(struct kvfs_fs *fs, struct kvfs_node *n)
{
	pthread_mutex_lock(&fs->table_mu);
	detach_name(fs, n);
	n->removed = 1;
	pthread_mutex_unlock(&fs->table_mu);
}

int kvfs_dir_prefix(const struct kvfs_node *dir, char *buf, size_t *len)
{
	if (dir->spill) {
		*len = kvfs_id_key(buf, KVFS_DIR_PREFIX, dir->spill);
		return 0;
	}
	return kvfs_node_key(dir, buf, len);
}

int kvfs_node_key(const struct kvfs_node *n, char *buf, size_t *len)
{
	size_t plen;
	int rc;

	if (n->orphan_id) {
		*len = kvfs_id_key(buf, KVFS_ORPHAN_PREFIX, n->orphan_id);
		return 0;
	}
	if (n->link_id) {
		*len = kvfs_id_key(buf, KVFS_INODE_PREFIX, n->link_id);
		return 0;
	}
	if (n->is_root) {
		*len = 0;
		return 0;
	}
	if (n->removed || !n->parent)
		return -ENOENT;
	rc = kvfs_dir_prefix(n->parent, buf, &plen);
	if (rc)
		return rc;
	*len = kvfs_child_key(buf, buf, plen, n->name, n->namelen);
	/* every key we made fits; one that does not was never ours (nodes are not made for it) */
	return *len ? 0 : -ENAMETOOLONG;
}

int kvfs_dir_subdirs(struct kvfs_fs *fs, struct kvfs_node *dir, uint64_t *n)
{
	char prefix[KV_MAX_KEY];
	size_t plen;
	uint64_t count;
	int rc = 0;

	pthread_mutex_lock(&dir->dir_mu);
	if (dir->subdirs >= 0) {
		*n = (uint64_t)dir->subdirs;
		goto out;
	}
	rc = kvfs_dir_prefix(dir, prefix, &plen);
	if (rc)
		goto out;
	rc = kvfs_count_subdirs(fs, prefix, plen, dir->is_root, &count);
	if (rc)
		goto out;
	dir->subdirs = (int64_t)count;
	*n = count;
out:
	pthread_mutex_unlock(&dir->dir_mu);
	return rc;
}

void kvfs_dir_subdirs_add(struct kvfs_node *dir, int delta)
{
	pthread_mutex_lock(&dir->dir_mu);
	if (dir->subdirs >= 0)
		dir->subdirs += delta;
	pthread_mutex_unlock(&dir->dir_mu);
}
