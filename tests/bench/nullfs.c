/* nullfs.c — the FUSE floor for the benchmarks: a filesystem that keeps everything in memory
 * and answers every request at once, served through libfuse3's low-level API with kvfs's
 * kernel settings, so that a figure measured on it is the cost of FUSE alone (the kernel, the
 * round trips, libfuse) and what kvfs adds above it is kvfs's own (its store, its locks).
 *
 *   nullfs MOUNTPOINT [-f] [-d] [-o OPT[,OPT...]]
 *
 * What the kernel is told is kvfs's (fs/lowlevel.c, fs/kvfs_fs.c): entry, attribute and
 * negative timeouts of a day; no OPEN or OPENDIR round trips (the first replies ENOSYS, and the
 * kernel keeps cached pages and listings across opens); no FLUSH (none is given, so the first
 * replies ENOSYS); requests of up to 1 MiB; READDIRPLUS; no writeback cache; ATOMIC_O_TRUNC off
 * (O_TRUNC comes as a SETATTR, as on kvfs); default_permissions. Not the same, on purpose:
 *   - no extended attributes: the first GETXATTR replies ENOSYS and the kernel never asks
 *     again, so the security.capability GETXATTRs kvfs answers (one per file written, one per
 *     chown) are not sent — the floor is the fewest requests a FUSE filesystem can get;
 *   - one mutex over everything, and the work behind a request is a hash lookup and a memcpy.
 * The same thread model as kvfs (fs/serve.c): a fixed pool of threads (16; -o threads=N isn't
 * offered — libfuse's loop_mt would be a different model), each reading a request and
 * answering it.
 *
 * The tree: nodes in an array indexed by inode number (1 the root), names in one hash table
 * keyed by (parent, name), and each directory's entries in an append-only list whose index is
 * the readdir offset (a removed entry leaves a hole, so offsets never move under a reader). A
 * node's data and number are freed when it has no name and the kernel has forgotten it. A
 * benchmark harness: files belong to the caller, nothing is persistent, and memory is what
 * the work writes. */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT 86400.0
#define THREADS 16

struct dent {
	char *name; /* NULL: removed */
	fuse_ino_t ino;
};

struct node {
	struct stat st;  /* st_ino 0: a free slot */
	uint64_t lookups; /* the kernel's references */
	char *data;       /* a file's bytes, a symlink's target */
	size_t cap;
	struct dent *ents; /* a directory's entries, in order of creation */
	size_t nents, ents_cap;
};

struct name {
	struct name *next;
	fuse_ino_t parent, ino;
	size_t slot; /* in the parent's ents */
	char name[];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct node *nodes;
static size_t nnodes, nodes_cap; /* nodes[0] unused */
static struct name **names;
static size_t names_cap = 1u << 20; /* buckets; more than the 100,000-file workload needs */

static uint64_t hash(fuse_ino_t parent, const char *name)
{
	uint64_t h = 1469598103934665603ull ^ parent;

	for (; *name; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ull;
	return h;
}

static struct name **name_slot(fuse_ino_t parent, const char *name)
{
	struct name **p = &names[hash(parent, name) & (names_cap - 1)];

	while (*p && ((*p)->parent != parent || strcmp((*p)->name, name) != 0))
		p = &(*p)->next;
	return p;
}

static void now(struct timespec *t)
{
	clock_gettime(CLOCK_REALTIME, t);
}

/* A new node of mode for the caller of req; its number, or 0 when memory ran out. */
static fuse_ino_t node_new(fuse_req_t req, mode_t mode, fuse_ino_t parent)
{
	fuse_ino_t ino;
	struct node *n;

	if (nnodes >= nodes_cap) {
		size_t cap = nodes_cap ? nodes_cap * 2 : 1024;
		struct node *p = realloc(nodes, cap * sizeof(*p));

		if (!p)
			return 0;
		memset(p + nodes_cap, 0, (cap - nodes_cap) * sizeof(*p));
		nodes = p;
		nodes_cap = cap;
	}
	/* numbers are never reused: a forgotten number the kernel still names in a late request
	 * then finds a free slot (ESTALE), never somebody else's file */
	ino = nnodes++;
	n = &nodes[ino];
	memset(n, 0, sizeof(*n));
	n->st.st_ino = ino;
	n->st.st_mode = mode;
	n->st.st_nlink = S_ISDIR(mode) ? 2 : 1;
	n->st.st_uid = req ? fuse_req_ctx(req)->uid : getuid();
	n->st.st_gid = req ? fuse_req_ctx(req)->gid : getgid();
	if (parent && (nodes[parent].st.st_mode & S_ISGID)) {
		n->st.st_gid = nodes[parent].st.st_gid;
		if (S_ISDIR(mode))
			n->st.st_mode |= S_ISGID;
	}
	n->st.st_blksize = 4096;
	now(&n->st.st_atim);
	n->st.st_mtim = n->st.st_ctim = n->st.st_atim;
	return ino;
}

static struct node *node_of(fuse_ino_t ino)
{
	return ino < nnodes && nodes[ino].st.st_ino ? &nodes[ino] : NULL;
}

/* Frees a node nobody names and the kernel has forgotten. */
static void node_maybe_free(fuse_ino_t ino)
{
	struct node *n = &nodes[ino];

	if (n->st.st_nlink || n->lookups || ino == 1)
		return;
	free(n->data);
	free(n->ents);
	memset(n, 0, sizeof(*n));
}

static int resize(struct node *n, size_t size)
{
	if (size > n->cap) {
		size_t cap = n->cap ? n->cap : 4096;
		char *p;

		while (cap < size)
			cap *= 2;
		p = realloc(n->data, cap);
		if (!p)
			return -ENOMEM;
		n->data = p;
		n->cap = cap;
	}
	if (size > (size_t)n->st.st_size)
		memset(n->data + n->st.st_size, 0, size - (size_t)n->st.st_size);
	n->st.st_size = (off_t)size;
	n->st.st_blocks = (blkcnt_t)((size + 511) / 512);
	return 0;
}

static int link_name(fuse_ino_t parent, const char *name, fuse_ino_t ino)
{
	struct node *d = &nodes[parent];
	size_t len = strlen(name);
	struct name *nm = malloc(sizeof(*nm) + len + 1);

	if (!nm)
		return -ENOMEM;
	if (d->nents == d->ents_cap) {
		size_t cap = d->ents_cap ? d->ents_cap * 2 : 16;
		struct dent *p = realloc(d->ents, cap * sizeof(*p));

		if (!p) {
			free(nm);
			return -ENOMEM;
		}
		d->ents = p;
		d->ents_cap = cap;
	}
	memcpy(nm->name, name, len + 1);
	nm->parent = parent;
	nm->ino = ino;
	nm->slot = d->nents;
	d->ents[d->nents].name = nm->name;
	d->ents[d->nents++].ino = ino;
	nm->next = *name_slot(parent, name);
	*name_slot(parent, name) = nm;
	if (S_ISDIR(nodes[ino].st.st_mode))
		d->st.st_nlink++; /* its ".." */
	now(&d->st.st_mtim);
	d->st.st_ctim = d->st.st_mtim;
	return 0;
}

/* Removes the name *p points at; its node's number (whose link count the caller keeps). */
static fuse_ino_t unlink_name(struct name **p)
{
	struct name *nm = *p;
	fuse_ino_t ino = nm->ino;
	struct node *d = &nodes[nm->parent];

	*p = nm->next;
	d->ents[nm->slot].name = NULL;
	if (S_ISDIR(nodes[ino].st.st_mode))
		d->st.st_nlink--;
	now(&d->st.st_mtim);
	d->st.st_ctim = d->st.st_mtim;
	nodes[ino].st.st_ctim = d->st.st_mtim;
	free(nm);
	return ino;
}

/* The node lost its name ino: one link fewer (a directory: none left), freed if forgotten. */
static void drop_link(fuse_ino_t ino)
{
	struct node *n = &nodes[ino];

	n->st.st_nlink = S_ISDIR(n->st.st_mode) ? 0 : n->st.st_nlink - 1;
	node_maybe_free(ino);
}

static void fill_entry(fuse_ino_t ino, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr = nodes[ino].st;
	e->attr_timeout = TIMEOUT;
	e->entry_timeout = TIMEOUT;
	nodes[ino].lookups++;
}

static void nf_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	conn->want &= ~FUSE_CAP_DONT_MASK;
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
}

static void nf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	struct name *nm;

	pthread_mutex_lock(&mu);
	nm = node_of(parent) ? *name_slot(parent, name) : NULL;
	if (nm) {
		fill_entry(nm->ino, &e);
	} else {
		memset(&e, 0, sizeof(e)); /* negative, cached as long as the positive ones */
		e.entry_timeout = TIMEOUT;
	}
	pthread_mutex_unlock(&mu);
	fuse_reply_entry(req, &e);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = node_of(ino);

	if (!n)
		return;
	n->lookups -= nlookup < n->lookups ? nlookup : n->lookups;
	node_maybe_free(ino);
}

static void nf_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	pthread_mutex_lock(&mu);
	forget_one(ino, nlookup);
	pthread_mutex_unlock(&mu);
	fuse_reply_none(req);
}

static void nf_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < count; i++)
		forget_one(f[i].ino, f[i].nlookup);
	pthread_mutex_unlock(&mu);
	fuse_reply_none(req);
}

static void nf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct node *n;
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node_of(ino);
	if (n)
		st = n->st;
	pthread_mutex_unlock(&mu);
	if (n)
		fuse_reply_attr(req, &st, TIMEOUT);
	else
		fuse_reply_err(req, ESTALE);
}

static void nf_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct node *n;
	struct stat st;
	int rc = 0;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node_of(ino);
	if (!n)
		rc = ESTALE;
	if (!rc && (to_set & FUSE_SET_ATTR_SIZE))
		rc = S_ISREG(n->st.st_mode) ? -resize(n, (size_t)attr->st_size) : EINVAL;
	if (!rc) {
		if (to_set & FUSE_SET_ATTR_MODE)
			n->st.st_mode = (n->st.st_mode & S_IFMT) | (attr->st_mode & 07777);
		if (to_set & FUSE_SET_ATTR_UID)
			n->st.st_uid = attr->st_uid;
		if (to_set & FUSE_SET_ATTR_GID)
			n->st.st_gid = attr->st_gid;
		if (to_set & FUSE_SET_ATTR_ATIME)
			n->st.st_atim = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			now(&n->st.st_atim);
		if (to_set & FUSE_SET_ATTR_MTIME)
			n->st.st_mtim = attr->st_mtim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			now(&n->st.st_mtim);
		now(&n->st.st_ctim);
		st = n->st;
	}
	pthread_mutex_unlock(&mu);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

/* Makes a node of mode named name in parent (data: a symlink's target), and replies. */
static void make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 const char *data, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	fuse_ino_t ino = 0;
	int rc = 0;

	pthread_mutex_lock(&mu);
	if (!node_of(parent) || !S_ISDIR(nodes[parent].st.st_mode))
		rc = ENOTDIR;
	else if (*name_slot(parent, name))
		rc = EEXIST;
	else if (!(ino = node_new(req, mode, parent)))
		rc = ENOMEM;
	if (!rc && data) {
		rc = -resize(&nodes[ino], strlen(data));
		if (!rc)
			memcpy(nodes[ino].data, data, strlen(data));
	}
	if (!rc)
		rc = -link_name(parent, name, ino);
	if (!rc)
		fill_entry(ino, &e);
	pthread_mutex_unlock(&mu);
	if (rc) {
		fuse_reply_err(req, rc);
	} else if (fi) {
		fi->keep_cache = 1;
		if (fuse_reply_create(req, &e, fi)) {
			pthread_mutex_lock(&mu);
			forget_one(ino, 1);
			pthread_mutex_unlock(&mu);
		}
	} else if (fuse_reply_entry(req, &e)) {
		pthread_mutex_lock(&mu);
		forget_one(ino, 1);
		pthread_mutex_unlock(&mu);
	}
}

static void nf_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	make(req, parent, name, S_IFREG | (mode & 07777), NULL, fi);
}

static void nf_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	(void)rdev;
	if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode))
		fuse_reply_err(req, EPERM); /* no device nodes in a benchmark */
	else
		make(req, parent, name, mode, NULL, NULL);
}

static void nf_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make(req, parent, name, S_IFDIR | (mode & 07777), NULL, NULL);
}

static void nf_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	make(req, parent, name, S_IFLNK | 0777, target, NULL);
}

static void nf_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n;
	char *t = NULL;

	pthread_mutex_lock(&mu);
	n = node_of(ino);
	if (n && S_ISLNK(n->st.st_mode))
		t = strndup(n->data ? n->data : "", (size_t)n->st.st_size);
	pthread_mutex_unlock(&mu);
	if (t)
		fuse_reply_readlink(req, t);
	else
		fuse_reply_err(req, n ? EINVAL : ESTALE);
	free(t);
}

/* unlink and rmdir */
static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int dir)
{
	struct name **p;
	int rc = 0;

	pthread_mutex_lock(&mu);
	p = node_of(parent) ? name_slot(parent, name) : NULL;
	if (!p || !*p) {
		rc = ENOENT;
	} else {
		struct node *n = &nodes[(*p)->ino];

		if (dir && !S_ISDIR(n->st.st_mode))
			rc = ENOTDIR;
		else if (!dir && S_ISDIR(n->st.st_mode))
			rc = EISDIR;
		else if (dir && n->st.st_nlink > 2)
			rc = ENOTEMPTY;
		for (size_t i = 0; dir && !rc && i < n->nents; i++)
			if (n->ents[i].name)
				rc = ENOTEMPTY;
		if (!rc)
			drop_link(unlink_name(p));
	}
	pthread_mutex_unlock(&mu);
	fuse_reply_err(req, rc);
}

static void nf_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 0);
}

static void nf_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, 1);
}

static void nf_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct name **from, **to;
	fuse_ino_t ino;
	int rc = 0;

	pthread_mutex_lock(&mu);
	from = node_of(parent) ? name_slot(parent, name) : NULL;
	to = node_of(newparent) ? name_slot(newparent, newname) : NULL;
	if (flags)
		rc = EINVAL; /* no RENAME_EXCHANGE or NOREPLACE in a benchmark */
	else if (!from || !*from || !to)
		rc = ENOENT;
	else if (*to && *to == *from)
		rc = 0;
	else if (*to && S_ISDIR(nodes[(*to)->ino].st.st_mode))
		rc = EISDIR; /* replacing a directory: not needed by the workloads */
	if (!rc && *from && to && *to != *from) {
		if (*to)
			drop_link(unlink_name(to));
		from = name_slot(parent, name); /* the chain may have changed */
		ino = unlink_name(from);
		rc = -link_name(newparent, newname, ino);
		if (rc)
			drop_link(ino); /* out of memory: the file lost its name */
	}
	pthread_mutex_unlock(&mu);
	fuse_reply_err(req, rc);
}

static void nf_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fuse_entry_param e;
	int rc = 0;

	pthread_mutex_lock(&mu);
	if (!node_of(ino) || !node_of(newparent))
		rc = ENOENT;
	else if (*name_slot(newparent, newname))
		rc = EEXIST;
	else if (S_ISDIR(nodes[ino].st.st_mode))
		rc = EPERM;
	if (!rc) {
		nodes[ino].st.st_nlink++;
		rc = -link_name(newparent, newname, ino);
		if (rc)
			nodes[ino].st.st_nlink--;
	}
	if (!rc)
		fill_entry(ino, &e);
	pthread_mutex_unlock(&mu);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static void nf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, ENOSYS); /* as kvfs: no OPEN or RELEASE round trips from now on */
}

static void nf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct node *n;
	char *buf = NULL;
	size_t got = 0;
	int rc = 0;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node_of(ino);
	if (!n)
		rc = ESTALE;
	else if (S_ISDIR(n->st.st_mode))
		rc = EISDIR;
	else if (off < n->st.st_size) {
		got = (size_t)(n->st.st_size - off) < size ? (size_t)(n->st.st_size - off) : size;
		buf = malloc(got);
		if (buf)
			memcpy(buf, n->data + off, got);
		else
			rc = ENOMEM;
	}
	pthread_mutex_unlock(&mu);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, got);
	free(buf);
}

static void nf_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct node *n;
	int rc = 0;

	(void)fi;
	pthread_mutex_lock(&mu);
	n = node_of(ino);
	if (!n)
		rc = ESTALE;
	else if (!S_ISREG(n->st.st_mode))
		rc = EINVAL;
	else if ((size_t)off + size > (size_t)n->st.st_size)
		rc = -resize(n, (size_t)off + size);
	if (!rc) {
		memcpy(n->data + off, buf, size);
		now(&n->st.st_mtim);
		n->st.st_ctim = n->st.st_mtim;
	}
	pthread_mutex_unlock(&mu);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_write(req, size);
}

static void nf_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, 0);
}

static void nf_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino, (void)datasync, (void)fi;
	fuse_reply_err(req, 0); /* nothing is ever more durable than memory here */
}

/* readdir and readdirplus: the entries from offset off (the index of the next one + 1). */
static void list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	char *buf = malloc(size);
	size_t used = 0;
	struct node *d;
	int rc = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&mu);
	d = node_of(ino);
	if (!d || !S_ISDIR(d->st.st_mode))
		rc = d ? ENOTDIR : ESTALE;
	for (size_t i = (size_t)off; !rc && i < d->nents; i++) {
		struct fuse_entry_param e = { 0 };
		size_t len;

		if (!d->ents[i].name)
			continue;
		if (plus) {
			e.ino = d->ents[i].ino;
			e.attr = nodes[e.ino].st;
			e.attr_timeout = e.entry_timeout = TIMEOUT;
			len = fuse_add_direntry_plus(req, buf + used, size - used, d->ents[i].name,
						     &e, (off_t)i + 1);
		} else {
			len = fuse_add_direntry(req, buf + used, size - used, d->ents[i].name,
						&nodes[d->ents[i].ino].st, (off_t)i + 1);
		}
		if (len > size - used)
			break;
		if (plus)
			nodes[e.ino].lookups++; /* the kernel took a reference */
		used += len;
	}
	pthread_mutex_unlock(&mu);
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void nf_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	list(req, ino, size, off, 0);
}

static void nf_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	list(req, ino, size, off, 1);
}

static void nf_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = sv.f_frsize = 4096;
	sv.f_blocks = sv.f_bfree = sv.f_bavail = 1ull << 30; /* 4 TiB, all free */
	sv.f_files = sv.f_ffree = sv.f_favail = 1ull << 30;
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

static const struct fuse_lowlevel_ops ops = {
	.init = nf_init,
	.lookup = nf_lookup,
	.forget = nf_forget,
	.forget_multi = nf_forget_multi,
	.getattr = nf_getattr,
	.setattr = nf_setattr,
	.readlink = nf_readlink,
	.mknod = nf_mknod,
	.mkdir = nf_mkdir,
	.unlink = nf_unlink,
	.rmdir = nf_rmdir,
	.symlink = nf_symlink,
	.rename = nf_rename,
	.link = nf_link,
	.open = nf_open,
	.read = nf_read,
	.write = nf_write,
	.release = nf_release,
	.fsync = nf_fsync,
	.opendir = nf_open,
	.readdir = nf_readdir,
	.readdirplus = nf_readdirplus,
	.releasedir = nf_release,
	.fsyncdir = nf_fsync,
	.statfs = nf_statfs,
	.create = nf_create,
};

static void *worker(void *arg)
{
	struct fuse_session *se = arg;
	struct fuse_buf buf = { 0 };

	while (!fuse_session_exited(se)) {
		int res = fuse_session_receive_buf(se, &buf);

		if (res == -EINTR)
			continue;
		if (res <= 0) {
			fuse_session_exit(se);
			break;
		}
		fuse_session_process_buf(se, &buf);
	}
	free(buf.mem);
	return NULL;
}

int main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_session *se = NULL;
	pthread_t threads[THREADS];
	int rc = 1, started = 0;

	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint) {
		fprintf(stderr, "usage: nullfs MOUNTPOINT [-f] [-d] [-o OPT[,OPT...]]\n");
		goto out;
	}
	if (fuse_opt_add_arg(&args, "-odefault_permissions") != 0)
		goto out;
	names = calloc(names_cap, sizeof(*names));
	if (!names)
		goto out;
	/* slot 0 unused, 1 the root */
	nnodes = 1;
	if (node_new(NULL, S_IFDIR | 0755, 0) != 1)
		goto out;
	nodes[1].st.st_uid = getuid();
	nodes[1].st.st_gid = getgid();
	nodes[1].lookups = 1;
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, opts.mountpoint) != 0)
		goto out;
	if (fuse_daemonize(opts.foreground) != 0)
		goto unmount;
	for (; started < THREADS; started++)
		if (pthread_create(&threads[started], NULL, worker, se) != 0)
			break;
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	rc = started == THREADS ? 0 : 1;
unmount:
	fuse_session_unmount(se);
out:
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return rc;
}
