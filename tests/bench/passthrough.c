/* passthrough.c — the plain-FUSE floor for the benchmarks: a minimal filesystem that mirrors a
 * backing directory, served through libfuse3 with the kernel settings of kvfs, so that a figure
 * measured on it is the cost of FUSE itself and the difference to kvfs is the store's.
 *
 *   passthrough [--xattr] BACKING_DIR MOUNTPOINT [-f] [-d] [-o OPT[,OPT...]]
 *
 * The same as kvfs (fs/lowlevel.c, fs/kvfs_fs.c; docs/FILESYSTEM.md "What the kernel caches"):
 *   - default_permissions, entry_timeout, attr_timeout and negative_timeout of a day, given
 *     ahead of the user's -o options;
 *   - no OPEN round trips: open replies ENOSYS, so the kernel opens files itself and keeps
 *     their cached pages; a read or write without a handle opens the backing file by path;
 *   - no writeback cache; the kernel applies the umask (DONT_MASK off) and kills set-ID bits
 *     (HANDLE_KILLPRIV off); hard_remove on; no flush operation; requests of up to 1 MiB;
 *   - readdir with attributes (READDIRPLUS).
 * Extended attributes only with --xattr (the backing files' own, through /proc/self/fd): a FUSE
 * filesystem that answers GETXATTR pays for it on every file it writes, since the kernel asks
 * for security.capability before the first write(2) after each attribute refresh and before
 * every chown; without --xattr the first GETXATTR replies ENOSYS and the kernel never asks
 * again. kvfs keeps extended attributes, so --xattr is the floor for the same requests.
 * Not the same: it is libfuse's high-level (path) API on libfuse's thread pool, where kvfs uses
 * the low-level one on its own; and the work behind each request is a system call on the
 * backing directory (openat, pwrite, fstatat, ...) instead of the store. Files are created with
 * the daemon's credentials (it does not switch to the caller's): a benchmark harness, not a
 * general mount.
 *
 * Every path is resolved relative to a descriptor of the backing directory (the *at calls), so
 * the daemon may chdir("/") when it detaches and the threads share no state. No handle is kept
 * (fh 0): each request opens what it needs by path. */
#define FUSE_USE_VERSION 31
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#define DEFAULT_OPTS "default_permissions,entry_timeout=86400,attr_timeout=86400," \
	"negative_timeout=86400"

static int backing = -1; /* the backing directory */

/* A node removed while the kernel still uses it (an unlinked file's late readahead, say) has no
 * path: libfuse passes NULL (hard_remove, and no handle to use instead), answered ESTALE. */
#define NEED_PATH(path)                 \
	do {                            \
		if (!(path))            \
			return -ESTALE; \
	} while (0)

/* The high-level API gives "/a/b"; the *at calls want "a/b", and "." for the root. */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static int err(int rc)
{
	return rc < 0 ? -errno : rc;
}

/* The backing descriptor of a request's handle, or -1 when it has none. */
static int fd_of(const struct fuse_file_info *fi)
{
	return fi && fi->fh ? (int)fi->fh - 1 : -1;
}

/* A backing descriptor for path: the handle's, or one opened now (*opened set: close it). */
static int use_fd(const char *path, const struct fuse_file_info *fi, int flags, int *opened)
{
	int fd = fd_of(fi);

	*opened = 0;
	if (fd >= 0)
		return fd;
	if (!path) {
		errno = ESTALE;
		return -1;
	}
	fd = openat(backing, rel(path), flags);
	*opened = fd >= 0;
	return fd;
}

static void *pt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->hard_remove = 1;
	cfg->nullpath_ok = 0;
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC; /* no OPEN: O_TRUNC comes as a truncate */
	conn->want &= ~FUSE_CAP_DONT_MASK;
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	return NULL;
}

static int pt_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	if (fd_of(fi) >= 0)
		return err(fstat(fd_of(fi), st));
	NEED_PATH(path);
	return err(fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH));
}

static int pt_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n;

	NEED_PATH(path);
	if (size == 0)
		return -EINVAL;
	n = readlinkat(backing, rel(path), buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int pt_mknod(const char *path, mode_t mode, dev_t dev)
{
	NEED_PATH(path);
	return err(mknodat(backing, rel(path), mode, dev));
}

static int pt_mkdir(const char *path, mode_t mode)
{
	NEED_PATH(path);
	return err(mkdirat(backing, rel(path), mode));
}

static int pt_unlink(const char *path)
{
	NEED_PATH(path);
	return err(unlinkat(backing, rel(path), 0));
}

static int pt_rmdir(const char *path)
{
	NEED_PATH(path);
	return err(unlinkat(backing, rel(path), AT_REMOVEDIR));
}

static int pt_symlink(const char *target, const char *path)
{
	NEED_PATH(path);
	return err(symlinkat(target, backing, rel(path)));
}

static int pt_rename(const char *from, const char *to, unsigned int flags)
{
	NEED_PATH(from);
	NEED_PATH(to);
	return err(renameat2(backing, rel(from), backing, rel(to), flags));
}

static int pt_link(const char *from, const char *to)
{
	NEED_PATH(from);
	NEED_PATH(to);
	return err(linkat(backing, rel(from), backing, rel(to), 0));
}

static int pt_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	if (fd_of(fi) >= 0)
		return err(fchmod(fd_of(fi), mode));
	NEED_PATH(path);
	return err(fchmodat(backing, rel(path), mode, 0));
}

static int pt_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	if (fd_of(fi) >= 0)
		return err(fchown(fd_of(fi), uid, gid));
	NEED_PATH(path);
	return err(fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW));
}

static int pt_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int opened, fd = use_fd(path, fi, O_WRONLY, &opened), rc;

	if (fd < 0)
		return -errno;
	rc = err(ftruncate(fd, size));
	if (opened)
		close(fd);
	return rc;
}

static int pt_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	if (fd_of(fi) >= 0)
		return err(futimens(fd_of(fi), tv));
	NEED_PATH(path);
	return err(utimensat(backing, rel(path), tv, AT_SYMLINK_NOFOLLOW));
}

/* ENOSYS once: the kernel stops sending OPEN (and RELEASE) and opens files itself */
static int pt_open(const char *path, struct fuse_file_info *fi)
{
	(void)path, (void)fi;
	return -ENOSYS;
}

/* No handle kept, as kvfs keeps none: the descriptor closes at once and reads and writes open
 * the file by path (otherwise descriptors pile up behind the kernel's background RELEASEs when
 * files are created faster than those are served). */
static int pt_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int fd;

	NEED_PATH(path);
	fd = openat(backing, rel(path), fi->flags | O_CREAT, mode);
	if (fd < 0)
		return -errno;
	close(fd);
	fi->fh = 0;
	fi->keep_cache = 1;
	return 0;
}

static int pt_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	int opened, fd = use_fd(path, fi, O_RDONLY, &opened), rc;

	if (fd < 0)
		return -errno;
	rc = err((int)pread(fd, buf, size, off));
	if (opened)
		close(fd);
	return rc;
}

static int pt_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	int opened, fd = use_fd(path, fi, O_WRONLY, &opened), rc;

	if (fd < 0)
		return -errno;
	rc = err((int)pwrite(fd, buf, size, off));
	if (opened)
		close(fd);
	return rc;
}

static int pt_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return err(fstatvfs(backing, sv));
}

static int pt_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	if (fd_of(fi) >= 0)
		close(fd_of(fi));
	return 0;
}

static int pt_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int opened, fd = use_fd(path, fi, O_RDONLY, &opened), rc;

	if (fd < 0)
		return -errno;
	rc = err(datasync ? fdatasync(fd) : fsync(fd));
	if (opened)
		close(fd);
	return rc;
}

/* The whole listing in one call, offsets 0 (libfuse buffers it), with attributes when the
 * kernel asks for READDIRPLUS: the same shape as kvfs's readdir. */
static int pt_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct dirent *e;
	DIR *d;
	int fd, rc = 0;

	NEED_PATH(path);
	(void)off, (void)fi;
	fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	errno = 0;
	while ((e = readdir(d))) {
		struct stat st;
		enum fuse_fill_dir_flags ff = 0;

		memset(&st, 0, sizeof(st));
		if ((flags & FUSE_READDIR_PLUS) && strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			ff = FUSE_FILL_DIR_PLUS;
		} else {
			st.st_ino = e->d_ino;
			st.st_mode = (mode_t)DTTOIF(e->d_type);
		}
		if (fill(buf, e->d_name, &st, 0, ff)) {
			rc = -ENOMEM;
			break;
		}
		errno = 0;
	}
	if (!rc && errno)
		rc = -errno;
	closedir(d);
	return rc;
}

static int pt_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	int fd, rc;

	NEED_PATH(path);
	(void)fi;
	fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	rc = err(datasync ? fdatasync(fd) : fsync(fd));
	close(fd);
	return rc;
}

/* ---- extended attributes (--xattr) ---------------------------------------------------------- */

/* The backing file of path as a name the *xattr calls take: there is no getxattrat in glibc. */
static int xpath(const char *path, char *buf, size_t len)
{
	if (!path)
		return -ESTALE;
	if ((size_t)snprintf(buf, len, "/proc/self/fd/%d/%s", backing, rel(path)) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int pt_getxattr(const char *path, const char *name, char *value, size_t size)
{
	char p[PATH_MAX + 64];
	int rc = xpath(path, p, sizeof(p));

	return rc ? rc : (int)err((int)lgetxattr(p, name, value, size));
}

static int pt_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	char p[PATH_MAX + 64];
	int rc = xpath(path, p, sizeof(p));

	return rc ? rc : err(lsetxattr(p, name, value, size, flags));
}

static int pt_listxattr(const char *path, char *list, size_t size)
{
	char p[PATH_MAX + 64];
	int rc = xpath(path, p, sizeof(p));

	return rc ? rc : (int)err((int)llistxattr(p, list, size));
}

static int pt_removexattr(const char *path, const char *name)
{
	char p[PATH_MAX + 64];
	int rc = xpath(path, p, sizeof(p));

	return rc ? rc : err(lremovexattr(p, name));
}

static struct fuse_operations ops = {
	.init = pt_init,
	.getattr = pt_getattr,
	.readlink = pt_readlink,
	.mknod = pt_mknod,
	.mkdir = pt_mkdir,
	.unlink = pt_unlink,
	.rmdir = pt_rmdir,
	.symlink = pt_symlink,
	.rename = pt_rename,
	.link = pt_link,
	.chmod = pt_chmod,
	.chown = pt_chown,
	.truncate = pt_truncate,
	.open = pt_open,
	.read = pt_read,
	.write = pt_write,
	.statfs = pt_statfs,
	.release = pt_release,
	.fsync = pt_fsync,
	.readdir = pt_readdir,
	.fsyncdir = pt_fsyncdir,
	.create = pt_create,
	.utimens = pt_utimens,
};

int main(int argc, char **argv)
{
	char **fargv;
	int fargc = 0;

	if (argc >= 2 && strcmp(argv[1], "--xattr") == 0) {
		ops.getxattr = pt_getxattr;
		ops.setxattr = pt_setxattr;
		ops.listxattr = pt_listxattr;
		ops.removexattr = pt_removexattr;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	if (argc < 3 || argv[1][0] == '-') {
		fprintf(stderr, "usage: passthrough [--xattr] BACKING_DIR MOUNTPOINT [-f] [-d] "
				"[-o OPT[,OPT...]]\n");
		return 2;
	}
	backing = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (backing < 0) {
		fprintf(stderr, "passthrough: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	/* the kernel has applied the caller's umask already (DONT_MASK off) */
	umask(0);
	/* argv[0], our defaults, then the user's arguments without BACKING_DIR: theirs win */
	fargv = calloc((size_t)argc + 3, sizeof(*fargv));
	if (!fargv)
		return 1;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-o";
	fargv[fargc++] = DEFAULT_OPTS;
	for (int i = 2; i < argc; i++)
		fargv[fargc++] = argv[i];
	return fuse_main(fargc, fargv, &ops, NULL);
}
