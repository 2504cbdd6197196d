/* lowlevel.c — what the kernel is told it may do (init), the operations table, and the one
 * place where an operation on a node is routed by the node's kind: the control file has
 * operations of its own (control.c); every other node is a node of the tree. */
#include <errno.h>

#include "fs_internal.h"

static void kvfs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct kvfs_fs *fs = userdata;

	/* Requests up to 1 MiB, and readahead as large. */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	conn->time_gran = 1;
	/* No O_TRUNC with OPEN: there is no OPEN (open replies ENOSYS), so the kernel sends the
	 * truncation as a SETATTR instead of assuming OPEN did it. */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* Set-ID bits: the kernel clears them itself (it sends a SETATTR) unless it takes our
	 * FUSE_HANDLE_KILLPRIV_V2, which device.c asks for behind libfuse's back. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* ACLs: kept as attributes, enforced by the kernel (with default_permissions, which
	 * POSIX_ACL implies); the umask reaches us unapplied, for a default ACL replaces it. */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	if ((conn->capable & FUSE_CAP_DONT_MASK) && (conn->want & FUSE_CAP_POSIX_ACL))
		conn->want |= FUSE_CAP_DONT_MASK;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* Cached pages stay when the attributes the kernel is told differ from those it set
	 * itself (our mtime for a write is not the kernel's clock reading); only a size change
	 * drops them. Every change of data passes through this kernel. */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* Writeback caching only when asked: it would let write(2) succeed for bytes the store
	 * then refuses at writeback (ENOSPC, EFBIG, EROFS), where nobody is told. */
	if (fs->cfg.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

/* No OPEN, OPENDIR, RELEASE or RELEASEDIR round trips: the first open of each kind replies
 * ENOSYS and the kernel stops asking, keeping cached pages and listings across opens
 * (FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR) — right, because every change passes through it. */
static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi;
	fuse_reply_err(req, ENOSYS);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino, (void)fi; /* a file made by CREATE: nothing was kept for it */
	fuse_reply_err(req, 0);
}

/* The control file's node, or NULL for a node of the tree. */
static struct kvfs_node *control_node(fuse_req_t req, fuse_ino_t ino)
{
	struct kvfs_node *n = kvfs_node_of(kvfs_fs_of(req), ino);

	return n->is_control ? n : NULL;
}

static int is_control(fuse_req_t req, fuse_ino_t ino)
{
	return control_node(req, ino) != NULL;
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_getattr(req, control_node(req, ino));
	else
		kvfs_op_getattr(req, ino, fi);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_setattr(req, control_node(req, ino), attr, to_set);
	else
		kvfs_op_setattr(req, ino, attr, to_set, fi);
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_read(req, control_node(req, ino), size, off);
	else
		kvfs_op_read(req, ino, size, off, fi);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		kvfs_control_write(req, buf, size);
	else
		kvfs_op_write(req, ino, buf, size, off, fi);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EINVAL);
	else
		kvfs_op_readlink(req, ino);
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EPERM);
	else
		kvfs_op_fallocate(req, ino, mode, off, len, fi);
}

static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EPERM);
	else
		kvfs_op_setxattr(req, ino, name, value, size, flags);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	if (is_control(req, ino))
		fuse_reply_err(req, ENODATA);
	else
		kvfs_op_getxattr(req, ino, name, size);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	if (is_control(req, ino) && size)
		fuse_reply_buf(req, NULL, 0); /* none */
	else if (is_control(req, ino))
		fuse_reply_xattr(req, 0);
	else
		kvfs_op_listxattr(req, ino, size);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (is_control(req, ino))
		fuse_reply_err(req, EPERM);
	else
		kvfs_op_removexattr(req, ino, name);
}

static const struct fuse_lowlevel_ops ops = {
	.init = kvfs_init,
	.lookup = kvfs_op_lookup,
	.forget = kvfs_op_forget,
	.forget_multi = kvfs_op_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mknod = kvfs_op_mknod,
	.mkdir = kvfs_op_mkdir,
	.unlink = kvfs_op_unlink,
	.rmdir = kvfs_op_rmdir,
	.symlink = kvfs_op_symlink,
	.rename = kvfs_op_rename,
	.link = kvfs_op_link,
	.open = ll_open,
	.read = ll_read,
	.write = ll_write,
	.release = ll_release,
	.fsync = kvfs_op_fsync, /* the control file too: a flush */
	.opendir = ll_open,
	.readdir = kvfs_op_readdir,
	.readdirplus = kvfs_op_readdirplus,
	.releasedir = ll_release,
	.fsyncdir = kvfs_op_fsync, /* a directory too: the log holds every change, in order */
	.statfs = kvfs_op_statfs,
	.setxattr = ll_setxattr,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.removexattr = ll_removexattr,
	.create = kvfs_op_create,
	.fallocate = ll_fallocate,
};

const struct fuse_lowlevel_ops *kvfs_fs_operations(void)
{
	return &ops;
}
