/* txn.c — the transaction every operation runs in (fs_internal.h): lock, find the node and its
 * key, read what the store holds, build one batch, apply it as one record, unlock.
 *
 * With a writer (kvfs_fs_set_writer: a node of a replicated group) a change starts only while
 * the writer is writable, and the batch goes to the writer. Inode numbers are then not reserved
 * a range at a time in records of their own (spill.c writes those straight to the store):
 * each namespace change that handed out numbers carries the next one in its own batch, and the
 * counter is loaded again from the store whenever the writer's epoch changes — a new leader
 * holds every committed change of the earlier one before it is writable, so it goes on after
 * the last number any committed change used. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

/* One block of kvfs_txn_alloc, on the transaction's list. */
struct kvfs_txn_mem {
	struct kvfs_txn_mem *next;
	max_align_t data[];
};

/* The inode counter the store records (KVFS_INO_KEY, little-endian), 0 when none. */
static int recorded_ino(struct kvfs_fs *fs, uint64_t *ino)
{
	void *v = NULL;
	uint64_t vlen = 0;
	int rc = kv_get(fs->kv, KVFS_INO_KEY, sizeof(KVFS_INO_KEY) - 1, &v, &vlen);

	*ino = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc == 0 && vlen == 8)
		for (int i = 7; i >= 0; i--)
			*ino = *ino << 8 | ((uint8_t *)v)[i];
	free(v);
	return rc;
}

/* A change through the writer: refused unless it is writable; a namespace change (ns exclusive
 * held) in a new epoch loads the inode counter. */
static int writer_begin(struct kvfs_txn *t)
{
	struct kvfs_fs *fs = t->fs;
	uint64_t epoch = 0, stored;
	int rc;

	if (!fs->writer.writable(fs->writer.arg, &epoch))
		return -EROFS;
	t->epoch = epoch; /* everything the change reads is read after this */
	if (t->kind != KVFS_TXN_NAMESPACE || epoch == fs->writer_epoch)
		return 0;
	rc = recorded_ino(fs, &stored);
	if (rc)
		return rc;
	/* never below a number this process gave out, even in a change that did not commit */
	if (fs->next_ino < stored)
		fs->next_ino = stored;
	if (fs->next_ino < 3)
		fs->next_ino = 3; /* 1 is the root, 2 the control file */
	fs->ino_recorded = stored;
	fs->ino_reserved = UINT64_MAX; /* kvfs_new_ino never writes a range of its own */
	fs->writer_epoch = epoch;
	return 0;
}

/* Through the writer: the batch, with the inode counter when this change used new numbers. */
static int writer_commit(struct kvfs_txn *t)
{
	struct kvfs_fs *fs = t->fs;
	uint64_t next = fs->next_ino;
	int rc;

	if (t->kind == KVFS_TXN_NAMESPACE && next > fs->ino_recorded) {
		uint8_t *val = kvfs_txn_alloc(t, 8);

		if (!val)
			return -ENOMEM;
		for (int i = 0; i < 8; i++)
			val[i] = (uint8_t)(next >> (8 * i));
		rc = kv_batch_put(t->b, KVFS_INO_KEY, sizeof(KVFS_INO_KEY) - 1, NULL, 0, val, 8);
		if (rc)
			return rc;
	}
	rc = kvfs_fs_apply(fs, t->b, t->epoch, &t->lsn);
	if (rc == 0 && t->kind == KVFS_TXN_NAMESPACE && next > fs->ino_recorded)
		fs->ino_recorded = next;
	return rc;
}

/* kvfs_txn_begin; count 0: without st.allocated (kvfs_load_bytes) */
static int begin(struct kvfs_txn *t, struct kvfs_fs *fs, fuse_ino_t ino, enum kvfs_txn_kind kind,
		 int count)
{
	int rc;

	t->fs = fs;
	t->kind = kind;
	t->b = NULL;
	t->mem = NULL;
	t->lsn = 0;
	t->epoch = 0;
	t->klen = 0;
	memset(&t->st, 0, sizeof(t->st));
	kvfs_prealloc_forget(); /* releases of a change this thread built and never applied */
	t->node = kvfs_node_of(fs, ino);
	if (kind == KVFS_TXN_NAMESPACE)
		pthread_rwlock_wrlock(&fs->ns);
	else
		pthread_rwlock_rdlock(&fs->ns);
	if (kind == KVFS_TXN_NODE)
		pthread_mutex_lock(&t->node->mu);
	t->locked = 1;
	kvfs_node_ref(fs, t->node);
	if (fs->writer.apply && kind != KVFS_TXN_READ) {
		rc = writer_begin(t);
		if (rc)
			return rc;
	}
	rc = kvfs_node_key(t->node, t->key, &t->klen);
	if (rc)
		return rc;
	return count ? kvfs_load(fs, t->key, t->klen, &t->st)
		     : kvfs_load_bytes(fs, t->key, t->klen, &t->st);
}

int kvfs_txn_begin(struct kvfs_txn *t, struct kvfs_fs *fs, fuse_ino_t ino, enum kvfs_txn_kind kind)
{
	return begin(t, fs, ino, kind, 1);
}

int kvfs_txn_begin_bytes(struct kvfs_txn *t, struct kvfs_fs *fs, fuse_ino_t ino,
			 enum kvfs_txn_kind kind)
{
	return begin(t, fs, ino, kind, 0);
}

int kvfs_txn_reload(struct kvfs_txn *t)
{
	int rc = kvfs_node_key(t->node, t->key, &t->klen);

	return rc ? rc : kvfs_load(t->fs, t->key, t->klen, &t->st);
}

int kvfs_txn_batch(struct kvfs_txn *t, struct kv_batch **b)
{
	int rc = 0;

	if (!t->b)
		rc = kv_batch_new(&t->b);
	*b = t->b;
	return rc;
}

void *kvfs_txn_alloc(struct kvfs_txn *t, size_t n)
{
	struct kvfs_txn_mem *m = malloc(sizeof(*m) + n);

	if (!m)
		return NULL;
	m->next = t->mem;
	t->mem = m;
	return m->data;
}

int kvfs_txn_commit_promised(struct kvfs_txn *t, uint64_t promised)
{
	int rc;

	if (!t->b)
		return 0;
	if (t->fs->writer.apply)
		return writer_commit(t); /* kvfs_fs_apply settles the releases */
	/* lsn is set once the record is in the log and applied, even when the flush that
	 * sync=always waits for fails afterwards */
	rc = kv_apply_promised(t->fs->kv, t->b, promised, &t->lsn);
	kvfs_prealloc_settle(t->fs, t->lsn != 0);
	return rc;
}

int kvfs_txn_commit(struct kvfs_txn *t)
{
	return kvfs_txn_commit_promised(t, 0);
}

void kvfs_txn_end(struct kvfs_txn *t)
{
	kvfs_prealloc_forget(); /* a change that was not applied releases nothing */
	kv_batch_free(t->b);
	t->b = NULL;
	while (t->mem) { /* after the batch that may refer to it */
		struct kvfs_txn_mem *next = t->mem->next;

		free(t->mem);
		t->mem = next;
	}
	if (t->locked) {
		if (t->kind == KVFS_TXN_NODE)
			pthread_mutex_unlock(&t->node->mu);
		pthread_rwlock_unlock(&t->fs->ns);
		t->locked = 0;
	}
	kvfs_node_unref(t->fs, t->node);
	t->node = NULL;
}

int kvfs_entry_get(struct kvfs_fs *fs, struct kvfs_node *dir, const char *name,
		   struct kvfs_entry *e)
{
	size_t nlen = strlen(name), plen;
	int rc;

	e->exists = 0;
	e->node = NULL;
	e->klen = 0;
	if (nlen > KVFS_NAME_MAX)
		return -ENAMETOOLONG;
	rc = kvfs_dir_prefix(dir, e->key, &plen);
	if (rc)
		return rc;
	e->klen = kvfs_child_key(e->key, e->key, plen, name, nlen);
	if (e->klen == 0)
		return 0; /* too long for the directory's prefix: no such key can exist */
	rc = kvfs_load(fs, e->key, e->klen, &e->st);
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	e->exists = 1;
	e->node = e->st.link_id ? kvfs_node_find_link(fs, e->st.link_id)
				: kvfs_node_find(fs, dir, name, nlen);
	return 0;
}

void kvfs_entry_release(struct kvfs_fs *fs, struct kvfs_entry *e)
{
	kvfs_node_unref(fs, e->node);
	e->node = NULL;
}
