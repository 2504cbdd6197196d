/* listing.h — walking one directory's entries in the store, in key order, resumably.
 *
 * A directory whose entries live under prefix P ("a/b" for directory a/b, "/dir/<id>" for a
 * spilled one, "" for the root) is listed by walking the keys that start with "P/": each key
 * gives the child named by its next component. "P/x" is the node x itself (or a link name x);
 * "P/x/..." makes x an (implicit) directory when there is no key "P/x". The keys below a child
 * are never walked one by one: the walk restarts past them at "P/x0" ('0' is '/' + 1), so a
 * listing costs one step per child, not per key. Invisible components (layout.h) are skipped.
 *
 * Names that sort between "x" and "x/" ("x-", "x.", "x\0attr": bytes below '/') may come
 * between a child's own key and the keys below it; each child is still listed once.
 *
 * Thread safety: a listing is used by one thread at a time; the store may change between
 * calls (a resumed listing continues after the last name it returned). */
#ifndef KVFS_FS_LISTING_H
#define KVFS_FS_LISTING_H
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "meta.h"

struct kvfs_fs;

struct kvfs_child {
	char name[KVFS_NAME_MAX + 1]; /* NUL-terminated */
	size_t namelen;
	int implicit;     /* no key of its own: a directory made by the keys below it */
	int unreadable;   /* its metadata is of a format this version cannot read */
	uint64_t link_id; /* a name of a file kept under /inode/<link_id>; meta and size are not
			   * loaded (they are the inode key's) */
	struct kvfs_meta meta; /* decoded, or the defaults of a key written without metadata */
	uint64_t size;
};

struct kvfs_listing;

/* A listing of the directory whose entries live under prefix (plen bytes, no trailing '/'). */
int kvfs_listing_new(struct kvfs_listing **out, struct kvfs_fs *fs, const char *prefix,
		     size_t plen, int at_root);
void kvfs_listing_free(struct kvfs_listing *ls);
/* The next children, at most max, into out, while their cost (cost(namelen) bytes each, as a
 * reply would take them) fits in *budget, which is decreased. Returns how many (0: the end, or
 * the next one does not fit), or -errno. */
int kvfs_listing_next(struct kvfs_listing *ls, struct kvfs_child *out, size_t max,
		      size_t *budget, size_t (*cost)(size_t namelen));
int kvfs_listing_done(const struct kvfs_listing *ls);

/* 1 when some key starts with prefix + "/", 0 when none, or -errno. */
int kvfs_has_entries(struct kvfs_fs *fs, const char *prefix, size_t plen);
/* The number of directories among the entries under prefix, into *n. */
int kvfs_count_subdirs(struct kvfs_fs *fs, const char *prefix, size_t plen, int at_root,
		       uint64_t *n);
#endif
