/* kvfs.c — the filesystem daemon: open a store, mount it, serve it until it is unmounted.
 *
 *   kvfs [-f] [-d] [-o OPT[,OPT...]] DATADIR MOUNTPOINT
 *
 * Also the program mount(8) runs for `mount -t fuse.kvfs DATADIR MNT -o OPTS` and fstab lines
 * of type fuse.kvfs: mount.fuse3 calls `kvfs DATADIR MNT -o OPTS`, options after the operands.
 *
 * Start-up without -f: the process forks at once, before anything else, because the store's
 * threads must be created in the process that keeps running. The child opens the store, mounts
 * it and only then detaches; until then it sends every message through a pipe, and the parent,
 * still attached to the terminal, prints them and exits 0 when the child says the mount is
 * ready, 1 otherwise. So a script can use the mount as soon as kvfs returns, and every start-up
 * error is one line on the caller's stderr.
 *
 * Shutdown: unmount (fusermount3 -u, umount), SIGINT, SIGTERM or SIGHUP end libfuse's loop; the
 * store is then closed, which flushes everything to disk; exit 0 (1 if the close failed).
 *
 * Exit status: 0 mounted (or cleanly ended, with -f), 1 the store or the mount failed, 2 usage. */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <stddef.h>
#include <limits.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "ctlsock.h"
#include "deathwatch.h"
#include "hugepages.h"
#include "lockwait.h"
#include "sdnotify.h"
#include "stdfds.h"
#include "unmount.h"
#include "kv.h"
#include "kvfs_cluster.h"
#include "kvfs_fs.h"
#include "repl.h"
#include "report.h"

#define PROG "kvfs"
#define EXIT_FAIL 1
#define EXIT_USAGE 2

/* Given to libfuse ahead of the user's options. default_permissions: the kernel checks modes,
 * owners and ACLs (we store them, it enforces them). */
#define FUSE_DEFAULT_OPTS "default_permissions"

/* ---------------------------------------------------------------------------------------------
 * Messages: one place decides where a line goes.
 * ------------------------------------------------------------------------------------------- */

static struct {
	int status_fd;  /* start-up pipe to the waiting parent; -1 once ready (or with -f) */
	int background; /* detached (or about to be): after start-up, lines go to syslog */
	char fuse_msg[512]; /* libfuse's last message during start-up, for our error line */
} out = { -1, 0, "" };

/* One line for a person. level: a syslog level. During start-up without -f it goes through
 * the pipe (E: an error, I: information); later to syslog when detached, else to stderr. */
static void say(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (out.status_fd >= 0) {
		char msg[2100];
		int n = snprintf(msg, sizeof(msg), "%c" PROG ": %s\n", level <= LOG_ERR ? 'E' : 'I',
				 line);

		/* a parent that is gone cannot be told; syslog below keeps the line anyway */
		if (n > 0 && write(out.status_fd, msg, (size_t)n) != n && !out.background)
			syslog(LOG_ERR, "%s", line);
		if (out.background)
			syslog(level, "%s", line);
		return;
	}
	if (out.background)
		syslog(level, "%s", line);
	else
		fprintf(stderr, PROG ": %s\n", line);
}

/* The store's own reports (a failed background flush, the switch to read-only). */
static void store_log(void *arg, const char *line)
{
	(void)arg;
	say(LOG_ERR, "%s", line);
}

/* Long work's progress (recovery, checkpoints, the cleaner): systemd's status line at every
 * report, the log (as say() logs) at most every 5 s for work lasting longer than that. */
static struct report_pace log_pace;

static void log_progress(void *arg, enum kv_work what, uint64_t done, uint64_t total, int end)
{
	char line[160];

	sdn_progress.fn(sdn_progress.arg, what, done, total, end);
	if (!report_progress_due(&log_pace, what, done, end, 5000))
		return;
	report_progress(what, done, total, line, sizeof(line));
	say(LOG_INFO, "%s%s", line, end ? (done == total ? " (done)" : " (stopped)") : "");
	(void)arg;
}

/* libfuse's messages: during start-up gathered (libfuse may write one message in pieces) for
 * the error line we print; afterwards passed on. */
static void fuse_log_startup(enum fuse_log_level level, const char *fmt, va_list ap)
{
	size_t have = strlen(out.fuse_msg), n;

	(void)level;
	vsnprintf(out.fuse_msg + have, sizeof(out.fuse_msg) - have, fmt, ap);
	/* one line: inner newlines become "; ", a trailing one goes */
	n = strlen(out.fuse_msg);
	while (n > 0 && out.fuse_msg[n - 1] == '\n')
		out.fuse_msg[--n] = '\0';
	for (size_t i = have; i < n; i++)
		if (out.fuse_msg[i] == '\n')
			out.fuse_msg[i] = ';';
	if (n > 0 && n + 2 < sizeof(out.fuse_msg) && fmt[0] && fmt[strlen(fmt) - 1] == '\n') {
		out.fuse_msg[n++] = ';';
		out.fuse_msg[n++] = ' ';
		out.fuse_msg[n] = '\0';
	}
}

static void fuse_log_running(enum fuse_log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	say(level <= FUSE_LOG_ERR ? LOG_ERR : LOG_INFO, "%s", line);
}

/* libfuse's message without its "fuse: " prefix and our separators, or a fallback. */
static const char *fuse_reason(const char *fallback)
{
	char *m = out.fuse_msg;
	size_t n = strlen(m);

	while (n > 0 && (m[n - 1] == ' ' || m[n - 1] == ';'))
		m[--n] = '\0';
	if (strncmp(m, "fuse: ", 6) == 0)
		m += 6;
	return m[0] ? m : fallback;
}

/* ---------------------------------------------------------------------------------------------
 * Arguments.
 * ------------------------------------------------------------------------------------------- */

struct args {
	int foreground, debug, help, version;
	const char *datadir, *mountpoint;
	int operands;
	struct kv_options kvo;
	struct kvfs_config cfg;
	char *fuse_opts; /* for libfuse, comma-separated */
	char *cluster_opts; /* replication's (kvfs_cluster.h), comma-separated; NULL: none */
	int user_fsname, user_subtype;
};

static int opts_add(char **opts, const char *opt, size_t len)
{
	size_t have = *opts ? strlen(*opts) : 0;
	char *n = realloc(*opts, have + len + 2);

	if (!n)
		return -ENOMEM;
	if (have)
		n[have++] = ',';
	memcpy(n + have, opt, len);
	n[have + len] = '\0';
	*opts = n;
	return 0;
}

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* One store option ("sync=batch"): the store's own parser, the one place that knows them. */
static int store_option(struct args *a, const char *opt)
{
	char err[256] = "";

	if (kv_options_parse(&a->kvo, opt, err, sizeof(err))) {
		fprintf(stderr, PROG ": -o %s: %s\n", opt, err[0] ? err : "invalid option");
		return -1;
	}
	return 0;
}

enum {
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_HELP,
	KEY_VERSION,
	KEY_IGNORED /* mount(8)'s own words, and atime flavours libfuse does not know: reads never
		     * update atime here anyway (docs/FILESYSTEM.md) */
};

#define KVFS_OPT(t, field) { t, offsetof(struct args, field), 1 }

/* The options of kvfs itself. The store's are its own table's (engine/options.c, asked with
 * kv_option_known); anything else (allow_other, fsname=, ...) is libfuse's to take or refuse. */
static const struct fuse_opt kvfs_opts[] = {
	KVFS_OPT("entry_timeout=%lf", cfg.entry_timeout),
	KVFS_OPT("attr_timeout=%lf", cfg.attr_timeout),
	KVFS_OPT("negative_timeout=%lf", cfg.negative_timeout),
	KVFS_OPT("writeback_cache", cfg.writeback_cache),
	KVFS_OPT("threads=%u", cfg.threads),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("defaults", KEY_IGNORED),
	FUSE_OPT_KEY("auto", KEY_IGNORED),
	FUSE_OPT_KEY("noauto", KEY_IGNORED),
	FUSE_OPT_KEY("user", KEY_IGNORED),
	FUSE_OPT_KEY("nouser", KEY_IGNORED),
	FUSE_OPT_KEY("users", KEY_IGNORED),
	FUSE_OPT_KEY("_netdev", KEY_IGNORED),
	FUSE_OPT_KEY("nofail", KEY_IGNORED),
	FUSE_OPT_KEY("relatime", KEY_IGNORED),
	FUSE_OPT_KEY("norelatime", KEY_IGNORED),
	FUSE_OPT_KEY("strictatime", KEY_IGNORED),
	FUSE_OPT_KEY("nostrictatime", KEY_IGNORED),
	FUSE_OPT_KEY("lazytime", KEY_IGNORED),
	FUSE_OPT_KEY("nolazytime", KEY_IGNORED),
	FUSE_OPT_KEY("diratime", KEY_IGNORED),
	FUSE_OPT_KEY("nodiratime", KEY_IGNORED),
	FUSE_OPT_END
};

static int option_cb(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct args *a = data;

	(void)outargs;
	switch (key) {
	case KEY_FOREGROUND:
		a->foreground = 1;
		return 0;
	case KEY_DEBUG:
		a->debug = 1;
		return 0;
	case KEY_HELP:
		a->help = 1;
		return 0;
	case KEY_VERSION:
		a->version = 1;
		return 0;
	case KEY_IGNORED:
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (a->operands == 0)
			a->datadir = arg;
		else if (a->operands == 1)
			a->mountpoint = arg;
		a->operands++;
		return 0;
	default: /* FUSE_OPT_KEY_OPT: not in kvfs_opts */
		if (!arg[0])
			return 0; /* -o "" (a unit's empty $KVFS_OPTIONS): nothing, as for mount(8) */
		if (arg[0] == '-') {
			fprintf(stderr, PROG ": unknown option %s\n", arg);
			return -1;
		}
		{
			/* a node of a replicated group: cluster=, node=, ... (sync= goes on too) */
			char err[256] = "";
			int ours = kvfs_cluster_option(arg, &a->cluster_opts, err, sizeof(err));

			if (ours < 0)
				fprintf(stderr, PROG ": -o %s: %s\n", arg, err);
			if (ours)
				return ours < 0 ? -1 : 0;
		}
		if (kv_option_known(arg, strcspn(arg, "="))) {
			if (store_option(a, arg))
				return -1;
			/* ro is the kernel's too: the mount is read-only, so writes fail with
			 * EROFS before they reach us, and the store opens read-only (nothing on
			 * disk changes, which a store on a read-only filesystem needs) */
			if (strcmp(arg, "ro") != 0)
				return 0;
		}
		if (has_prefix(arg, "x-") || has_prefix(arg, "comment="))
			return 0; /* mount(8)'s and fstab's notes */
		if (has_prefix(arg, "fsname="))
			a->user_fsname = 1;
		if (has_prefix(arg, "subtype="))
			a->user_subtype = 1;
		return opts_add(&a->fuse_opts, arg, strlen(arg)) ? -1 : 0;
	}
}

static void usage(FILE *f)
{
	struct kvfs_config c;

	kvfs_config_default(&c);
	fprintf(f,
"Usage: " PROG " [-f] [-d] [-o OPT[,OPT...]] DATADIR MOUNTPOINT\n"
"       " PROG " --unmount MOUNTPOINT\n"
"       " PROG " --help | --version\n"
"\n"
"Mounts the kvfs store in DATADIR (created, mode 0700, when missing) at MOUNTPOINT: path\n"
"/a/b/c is key a/b/c. Without -f, kvfs returns once the mount is ready and serves it in the\n"
"background; start-up errors are printed here and make it exit 1. Unmount with\n"
"'fusermount3 -u MOUNTPOINT' (or umount, SIGINT, SIGTERM): everything written is flushed\n"
"and the store closed.\n"
"\n"
"  -f                 stay in the foreground (messages on stderr, not syslog)\n"
"  -d                 libfuse debug output (implies -f)\n"
"  -o OPT[,OPT...]    options, may be repeated: the store's (below), and the mount's:\n"
"       entry_timeout=S, attr_timeout=S, negative_timeout=S\n"
"                                      how long the kernel may trust names, attributes\n"
"                                      and missing names (default %g s each)\n"
"       writeback_cache                let the kernel gather writes (faster; ENOSPC then\n"
"                                      fails fsync or close, not the write)\n"
"       threads=N                      threads serving requests (default %u)\n"
"       any other option goes to libfuse: allow_other, noatime, fsname=NAME, ...\n"
"       (default_permissions is always on: the kernel checks modes, owners and ACLs)\n"
"  --unmount MOUNTPOINT\n"
"                     unmount and return once the store is flushed and closed (scripts:\n"
"                     fusermount3 -u and umount return before that)\n"
"  -h, --help         this text\n"
"  -V, --version      the version\n"
"\n"
"fsync(2) on any file or directory of the mount returns once every earlier write is\n"
"durable. 'echo flush > MOUNTPOINT/.kvfs' does the same, 'echo snapshot > ...' writes a\n"
"snapshot, 'cat MOUNTPOINT/.kvfs' shows the store's statistics. A bare sync(1) does not\n"
"reach FUSE filesystems: with sync=batch writes are durable within commit_ms anyway.\n"
"\n"
"/etc/fstab:  DATADIR  MOUNTPOINT  fuse.kvfs  defaults,sync=batch  0  0\n"
"\n"
"Exit status: 0 mounted (with -f: ended cleanly), 1 the store could not be opened or\n"
"closed, or the mount failed, 2 usage errors.\n",
		c.entry_timeout, c.threads);
	{
		size_t n;
		const struct kv_option_desc *t = kv_option_table(&n);
		report_options(f, "Store options (-o; also kv_cli's):", t, n);
		t = repl_option_table(&n);
		report_options(f, "Replication options (-o; a node of a group, docs/REPLICATION.md):",
			       t, n);
	}
}

/* The mount's own numeric options (kvfs_opts) and what they take, for the messages. */
static const struct {
	const char *name, *range;
} mount_ranges[] = {
	{ "entry_timeout", "seconds, a number from 0 to 1000000000 (default 86400)" },
	{ "attr_timeout", "seconds, a number from 0 to 1000000000 (default 86400)" },
	{ "negative_timeout", "seconds, a number from 0 to 1000000000 (default 86400)" },
	{ "threads", "a whole number from 1 to 1024 (default 16)" },
};

static const char *mount_range(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(mount_ranges) / sizeof(mount_ranges[0]); i++)
		if (strlen(mount_ranges[i].name) == len && !strncmp(mount_ranges[i].name, name, len))
			return mount_ranges[i].range;
	return NULL;
}

/* The parsed values in their ranges; else one line naming the option and its range. */
static int mount_option_ranges(const struct args *a)
{
	const struct {
		const char *name;
		double v;
	} t[] = { { "entry_timeout", a->cfg.entry_timeout }, { "attr_timeout", a->cfg.attr_timeout },
		  { "negative_timeout", a->cfg.negative_timeout } };

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!(t[i].v >= 0) || t[i].v > 1e9) { /* NaN fails the first test */
			fprintf(stderr, PROG ": -o %s=%g: out of range; %s takes %s\n", t[i].name,
				t[i].v, t[i].name, mount_range(t[i].name, strlen(t[i].name)));
			return -EINVAL;
		}
	if (a->cfg.threads < 1 || a->cfg.threads > 1024) {
		fprintf(stderr, PROG ": -o threads=%u: out of range; threads takes %s\n", a->cfg.threads,
			mount_range("threads", 7));
		return -EINVAL;
	}
	return 0;
}

/* fuse_opt's complaints ("fuse: invalid parameter in option `threads=x'"), as ours, with what
 * the option takes when it is one of the mount's own. */
static void fuse_log_usage(enum fuse_log_level level, const char *fmt, va_list ap)
{
	static const char bad[] = "invalid parameter in option `";
	char line[1024];
	const char *m = line, *range = NULL;
	size_t n;

	(void)level;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (strncmp(m, "fuse: ", 6) == 0)
		m += 6;
	n = strlen(m);
	if (strncmp(m, bad, sizeof(bad) - 1) == 0)
		range = mount_range(m + sizeof(bad) - 1, strcspn(m + sizeof(bad) - 1, "="));
	if (range && n > 0 && m[n - 1] == '\n')
		fprintf(stderr, PROG ": %.*s; %.*s takes %s\n", (int)n - 1, m,
			(int)strcspn(m + sizeof(bad) - 1, "="), m + sizeof(bad) - 1, range);
	else
		fprintf(stderr, PROG ": %s", m);
}

/* Fills a; on a usage error prints the reason and returns -EINVAL. Options may come before or
 * after DATADIR and MOUNTPOINT (mount.fuse3 puts them last). */
static int parse_args(int argc, char **argv, struct args *a)
{
	struct fuse_args fa = FUSE_ARGS_INIT(argc, argv);
	int rc;

	memset(a, 0, sizeof(*a));
	kv_options_default(&a->kvo);
	kvfs_config_default(&a->cfg);
	/* not given yet: a node of a group has defaults of its own (kvfs_cluster_config) */
	a->cfg.entry_timeout = a->cfg.attr_timeout = a->cfg.negative_timeout = KVFS_TIMEOUT_UNSET;
	fuse_set_log_func(fuse_log_usage);
	rc = fuse_opt_parse(&fa, a, kvfs_opts, option_cb);
	fuse_opt_free_args(&fa);
	kvfs_cluster_config(&a->cfg, kvfs_cluster_wanted(a->cluster_opts));
	if (rc)
		return -EINVAL;
	if (a->help || a->version)
		return 0;
	if (a->operands != 2) {
		fprintf(stderr, PROG ": %s\n", a->operands < 2 ? "needs DATADIR and MOUNTPOINT"
				: "too many arguments: only DATADIR and MOUNTPOINT");
		return -EINVAL;
	}
	if (!a->datadir[0] || !a->mountpoint[0]) {
		fprintf(stderr, PROG ": %s is empty\n", !a->datadir[0] ? "DATADIR" : "MOUNTPOINT");
		return -EINVAL;
	}
	if (mount_option_ranges(a))
		return -EINVAL;
	if (a->debug)
		a->foreground = 1;
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Checks before anything changes: where the mount goes, where the store is.
 * ------------------------------------------------------------------------------------------- */

/* path made absolute without requiring it to exist (the daemon changes to / when detached, and
 * the store keeps using its directory's path). */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX], *p = NULL;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&p, "%s/%s", cwd, path) < 0)
		return NULL;
	return p;
}

/* A mountinfo field with its octal escapes (\040 for a space, ...) decoded in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/* 1 when something is mounted at path (a canonical path), 0 when not, -errno. */
static int is_mount_point(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return -errno;
	while (!found && getline(&line, &cap, f) > 0) {
		char *save = NULL, *field = strtok_r(line, " ", &save);

		for (int i = 1; field && i < 5; i++) /* the fifth field is the mount point */
			field = strtok_r(NULL, " ", &save);
		if (!field)
			continue;
		unescape(field);
		found = strcmp(field, path) == 0;
	}
	free(line);
	fclose(f);
	return found;
}
/* realpath of dir or, when dir does not exist yet (kv_open creates its last component), of its
 * parent with that component appended: where dir will be. 0 or -1. */
static int existing_realpath(const char *dir, char res[PATH_MAX])
{
	char parent[PATH_MAX], *slash;
	size_t n;

	if (realpath(dir, res))
		return 0;
	if (errno != ENOENT || strlen(dir) >= sizeof(parent))
		return -1;
	strcpy(parent, dir);
	for (n = strlen(parent); n > 1 && parent[n - 1] == '/'; n--)
		parent[n - 1] = '\0'; /* "a/b/" is "a/b" */
	slash = strrchr(parent, '/');
	if (!slash) {
		if (!realpath(".", res) || strlen(res) + 1 + strlen(parent) >= PATH_MAX)
			return -1;
		strcat(strcat(res, "/"), parent);
		return 0;
	}
	*slash = '\0';
	if (!realpath(slash == parent ? "/" : parent, res) ||
	    strlen(res) + 1 + strlen(slash + 1) >= PATH_MAX)
		return -1;
	if (strcmp(res, "/") != 0)
		strcat(res, "/");
	strcat(res, slash + 1);
	return 0;
}


/* The mount point must be an existing directory with nothing mounted on it yet, and the store
 * must not live under it (the store's own files would then be served by itself). *canon gets
 * the canonical mount point. Prints the one line that says what is wrong. */
static int check_places(const char *mnt, const char *datadir, char **canon)
{
	char real[PATH_MAX], dreal[PATH_MAX];
	struct stat st;
	int rc;

	*canon = NULL;
	if (stat(mnt, &st) < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			say(LOG_ERR, "%s: mount point does not exist", mnt);
		else if (rc == -ENOTCONN)
			say(LOG_ERR, "%s: a stale mount whose daemon is gone; run 'fusermount3 -uz %s' "
			    "first", mnt, mnt);
		else
			say(LOG_ERR, "%s: mount point: %s", mnt, strerror(-rc));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		say(LOG_ERR, "%s: mount point is not a directory", mnt);
		return -ENOTDIR;
	}
	if (!realpath(mnt, real)) {
		rc = -errno;
		say(LOG_ERR, "%s: mount point: %s", mnt, strerror(-rc));
		return rc;
	}
	rc = is_mount_point(real);
	if (rc < 0) {
		say(LOG_ERR, "reading /proc/self/mountinfo: %s", strerror(-rc));
		return rc;
	}
	if (rc > 0) {
		say(LOG_ERR, "%s: already a mount point; unmount it first", mnt);
		return -EBUSY;
	}
	if (existing_realpath(datadir, dreal) == 0) {
		size_t n = strlen(real);

		if (strcmp(real, "/") == 0 || (strncmp(dreal, real, n) == 0 &&
					       (dreal[n] == '/' || dreal[n] == '\0'))) {
			say(LOG_ERR, "%s: the store is inside the mount point %s; keep it outside",
			    datadir, mnt);
			return -EINVAL;
		}
	}
	*canon = strdup(real);
	return *canon ? 0 : -ENOMEM;
}

/* ---------------------------------------------------------------------------------------------
 * The store.
 * ------------------------------------------------------------------------------------------- */

static void report_open_error(const char *dir, int rc, const struct kv_report *rep)
{
	char line[2048], way_out[PATH_MAX + 400];
	report_salvage_advice(rep, dir, "or mount with -o recovery=point_in_time, which does the same",
			      way_out, sizeof(way_out));
	report_failure(rep, dir, rc, way_out, line, sizeof(line));
	if (rc == -EROFS)
		say(LOG_ERR, "%s; a store on a read-only filesystem mounts with -o ro", line);
	else
		say(LOG_ERR, "%s", line);
}

static void warning_line(void *arg, const char *text)
{
	(void)arg;
	say(LOG_WARNING, "%s", text);
}

/* Silent unless recovery found something a person should know about. */
static void report_recovery(const char *dir, const struct kv_report *rep)
{
	report_notes(rep, dir, warning_line, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Serving.
 * ------------------------------------------------------------------------------------------- */

/* "fsname=DATADIR" with libfuse's escapes for ',' and '\\'. */
static int add_fsname(char **opts, const char *datadir)
{
	size_t n = strlen(datadir);
	char *s = malloc(2 * n + 8), *p;
	int rc;

	if (!s)
		return -ENOMEM;
	p = s + sprintf(s, "fsname=");
	for (size_t i = 0; i < n; i++) {
		if (datadir[i] == ',' || datadir[i] == '\\')
			*p++ = '\\';
		*p++ = datadir[i];
	}
	*p = '\0';
	rc = opts_add(opts, s, strlen(s));
	free(s);
	return rc;
}

static int build_fuse_args(const struct args *a, const char *datadir, struct fuse_args *fa)
{
	char *opts = NULL;
	int rc = opts_add(&opts, FUSE_DEFAULT_OPTS, strlen(FUSE_DEFAULT_OPTS));

	if (!rc && !a->user_subtype)
		rc = opts_add(&opts, "subtype=kvfs", strlen("subtype=kvfs"));
	if (!rc && !a->user_fsname)
		rc = add_fsname(&opts, datadir);
	if (!rc && a->debug)
		rc = opts_add(&opts, "debug", strlen("debug"));
	if (!rc && a->fuse_opts)
		rc = opts_add(&opts, a->fuse_opts, strlen(a->fuse_opts));
	if (!rc && (fuse_opt_add_arg(fa, PROG) || fuse_opt_add_arg(fa, "-o") ||
		    fuse_opt_add_arg(fa, opts)))
		rc = -ENOMEM;
	free(opts);
	return rc;
}

/* libfuse refuses options it does not know only in fuse_session_new; try them before anything
 * changes on disk (the store is opened later, in the daemon), so a typo is a usage error. */
static int check_fuse_options(const struct args *a, const char *datadir)
{
	struct fuse_args fa = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	int rc = build_fuse_args(a, datadir, &fa);

	if (rc) {
		say(LOG_ERR, "%s", strerror(-rc));
		return rc;
	}
	fuse_set_log_func(fuse_log_startup);
	se = fuse_session_new(&fa, kvfs_fs_operations(), sizeof(struct fuse_lowlevel_ops), NULL);
	if (!se) {
		say(LOG_ERR, "%s", fuse_reason("libfuse refused the options"));
		rc = -EINVAL;
	} else {
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&fa);
	out.fuse_msg[0] = '\0';
	return rc;
}

/* -o allow_other (or allow_root) as a user other than root: fusermount3 refuses it unless
 * /etc/fuse.conf has a line "user_allow_other", and libfuse then says only "mount failed". Said
 * here first, before anything changes. 0, or -EPERM with the line said. */
static int check_allow_other(const struct args *a)
{
	const char *conf = "/etc/fuse.conf", *opt = NULL;
	char *line = NULL, *p;
	size_t cap = 0;
	int allowed = 0, have_conf;
	FILE *f;

	if (geteuid() == 0 || !a->fuse_opts)
		return 0;
	for (p = a->fuse_opts; *p && !opt; p += strcspn(p, ","), p += *p == ',') {
		size_t n = strcspn(p, ",");

		if (n == 11 && !strncmp(p, "allow_other", n))
			opt = "allow_other";
		else if (n == 10 && !strncmp(p, "allow_root", n))
			opt = "allow_root";
	}
	if (!opt)
		return 0;
	/* as fusermount3 reads it: a line that is the word, blanks around it allowed */
	f = fopen(conf, "re");
	have_conf = f != NULL;
	while (f && !allowed && getline(&line, &cap, f) > 0) {
		char *w = line + strspn(line, " \t");
		size_t n = strcspn(w, " \t\r\n");

		allowed = n == 16 && !strncmp(w, "user_allow_other", n) && w[n + strspn(w + n, " \t\r\n")] == '\0';
	}
	free(line);
	if (f)
		fclose(f);
	if (allowed)
		return 0;
	say(LOG_ERR, "-o %s: a user other than root may use it only when %s has a line "
	    "'user_allow_other' (%s); add that line as root, or mount as root", opt, conf,
	    have_conf ? "it has none" : "the file is missing");
	return -EPERM;
}

/* Start-up is over: the mount is live. Detach (without -f) and tell the parent. */
static int detach(void)
{
	int fd;

	fuse_set_log_func(fuse_log_running);
	if (out.background) {
		if (chdir("/") < 0)
			return -errno;
		fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			return -errno;
		if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
		    dup2(fd, STDERR_FILENO) < 0) {
			int rc = -errno;

			close(fd);
			return rc;
		}
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (out.status_fd >= 0) {
		/* a parent that is gone cannot be told; the mount is up all the same */
		if (write(out.status_fd, "R\n", 2) != 2)
			syslog(LOG_WARNING, "the starting process went away before the mount was ready");
		close(out.status_fd);
		out.status_fd = -1;
	}
	return 0;
}

/* kv_cli changed key through the control socket: the kernel must forget what it cached. */
static void key_changed(void *arg, const void *key, size_t klen)
{
	kvfs_fs_key_changed(arg, key, klen);
}

static void lockwait_line(void *arg, const char *line)
{
	(void)arg;
	say(LOG_NOTICE, "%s", line);
}

/* Open, mount, serve, close. Returns the exit status. */
static int serve(const struct args *a, const char *datadir, const char *mnt)
{
	struct fuse_args fa = FUSE_ARGS_INIT(0, NULL);
	struct kvfs_fs *fs = NULL;
	struct fuse_session *se = NULL;
	struct kv_options kvo = a->kvo;
	struct kv_report rep;
	struct kv *kv = NULL;
	struct ctlsock *cs = NULL;
	struct kvfs_cluster *cl = NULL;
	char cs_err[PATH_MAX + 100];
	int status = EXIT_FAIL, mounted = 0, handlers = 0, served = 0, rc;
	pid_t watch = -1;
	uint64_t removed = 0;

	memset(&rep, 0, sizeof(rep));
	kvo.log = store_log;
	kvo.progress = (struct kv_progress){ log_progress, NULL };
	/* a daemon of this store still closing it (unmounted a moment ago) is waited for; main
	 * checked the bound */
	struct lockwait lw = { .say = lockwait_line };
	if (lockwait_bound(&lw.seconds, cs_err, sizeof(cs_err)))
		lw.seconds = LOCKWAIT_DEFAULT_S;
	if (kvfs_cluster_wanted(a->cluster_opts)) {
		/* a node of a group: raft owns the store (kvfs_cluster.h), no control socket */
		rc = kvfs_cluster_start(&cl, datadir, a->cluster_opts, &kvo, store_log, NULL, &kv,
					cs_err, sizeof(cs_err));
		if (rc) {
			say(LOG_ERR, "%s", cs_err);
			goto out;
		}
	} else if ((rc = lockwait_open(&lw, &kv, datadir, &kvo, &rep)) != 0) {
		if (!lw.gave_up)
			report_open_error(datadir, rc, &rep);
		goto out;
	}
	report_recovery(datadir, &rep);
	rc = kvfs_fs_new(&fs, kv, datadir, &a->cfg);
	if (rc) {
		say(LOG_ERR, "%s", strerror(-rc));
		goto out;
	}
	if (cl)
		kvfs_cluster_attach(cl, fs);
	rc = cl ? 0 : ctlsock_start(&cs, kv, datadir, mnt, key_changed, fs, cs_err, sizeof(cs_err));
	if (rc == -EROFS && kvo.read_only) {
		/* a store on a read-only disk has nowhere to put the socket, and needs none: kv_cli
		 * opens it read-only beside the mount (readers share the lock) */
		cs = NULL;
	} else if (rc) {
		say(LOG_ERR, "cannot serve kv_cli: %s", cs_err);
		goto out;
	}
	rc = build_fuse_args(a, datadir, &fa);
	if (rc) {
		say(LOG_ERR, "%s", strerror(-rc));
		goto out;
	}
	fuse_set_log_func(fuse_log_startup);
	se = fuse_session_new(&fa, kvfs_fs_operations(), sizeof(struct fuse_lowlevel_ops), fs);
	if (!se) {
		say(LOG_ERR, "%s", fuse_reason("libfuse refused the options"));
		goto out;
	}
	/* before the mount: a signal from here on ends the loop cleanly instead of killing us */
	if (fuse_set_signal_handlers(se) != 0) {
		say(LOG_ERR, "cannot install signal handlers");
		goto out;
	}
	handlers = 1;
	/* Files without a name that a crash left behind (unlinked while open, O_TMPFILE):
	 * unreachable, so deleted. Before the mount, so no request can see them. A read-only
	 * store changes nothing: they stay, unreachable, for the next writable mount. Nor does a
	 * node of a group: another node's mount may hold them open (REPLICATION.md). */
	rc = kvo.read_only || cl ? 0 : kvfs_fs_remove_leftovers(fs, &removed);
	if (rc) {
		say(LOG_ERR, "%s: removing files left unlinked by a crash: %s", datadir,
		    strerror(-rc));
		goto out;
	}
	if (removed)
		say(LOG_NOTICE, "%s: removed %" PRIu64 " files that were unlinked while open when the "
		    "daemon last stopped", datadir, removed);
	if (!kvo.read_only && !cl) {
		/* the space promised to preallocated files, held again (docs/FILESYSTEM.md §4) */
		uint64_t promised = 0;

		rc = kvfs_fs_load_promises(fs, &promised);
		if (rc == -ENOSPC || rc == -EDQUOT) {
			say(LOG_WARNING, "%s: %" PRIu64 " bytes are promised to preallocated files, and the "
			    "disk filled while unmounted: writes into them may fail with ENOSPC until "
			    "room comes back", datadir, promised);
			rc = 0;
		} else if (rc) {
			say(LOG_ERR, "%s: reading the space promised to preallocated files: %s", datadir,
			    strerror(-rc));
			goto out;
		}
	}
	if (fuse_session_mount(se, mnt) != 0) {
		say(LOG_ERR, "%s: cannot mount: %s", a->mountpoint, fuse_reason("mount failed"));
		goto out;
	}
	mounted = 1;
	rc = deathwatch_start(mnt, &watch);
	if (rc) {
		say(LOG_ERR, "%s: cannot start the watch that frees the mount if this daemon dies: %s",
		    a->mountpoint, strerror(-rc));
		goto out;
	}
	rc = detach();
	if (rc) {
		say(LOG_ERR, "detaching: %s", strerror(-rc));
		goto out;
	}
	if (sdn_ready(mnt))
		say(LOG_WARNING, "cannot tell systemd the mount is ready");
	served = 1;
	rc = kvfs_fs_serve(fs, se);
	if (sdn_stopping())
		say(LOG_WARNING, "cannot tell systemd the mount is stopping");
	if (rc < 0)
		say(LOG_ERR, "%s: serving the mount failed: %s", a->mountpoint, strerror(-rc));
	else
		status = 0;
	/* Files without a name the kernel never forgot (the mount went away under open
	 * files): nothing can reach them now. A failure only leaves them to the next mount. */
	rc = kvo.read_only || cl ? 0 : kvfs_fs_remove_leftovers(fs, &removed);
	if (rc)
		say(LOG_WARNING, "%s: removing files unlinked while open: %s (the next mount will)",
		    datadir, strerror(-rc));
out:
	if (handlers) {
		/* From here a second SIGINT/SIGTERM/SIGHUP would kill us inside the final flush:
		 * the first one already asked for exactly this shutdown, so later ones are ignored.
		 * (libfuse leaves a handler that is no longer its own in place.) */
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		fuse_remove_signal_handlers(se);
	}
	if (mounted)
		fuse_session_unmount(se);
	if (watch > 0 && (rc = deathwatch_stop(watch)) != 0)
		say(LOG_WARNING, "ending the watch over the mount: %s", strerror(-rc));
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&fa);
	ctlsock_quiesce(cs); /* no command of kv_cli's runs from here on */
	kvfs_cluster_detach(cl);
	kvfs_fs_free(fs);
	rc = 0;
	if (cl) {
		rc = kvfs_cluster_stop(cl); /* raft's log holds every change: nothing to lose */
		if (rc)
			say(LOG_ERR, "%s: closing the node's store: %s", datadir, strerror(-rc));
		kv = NULL;
	}
	if (kv) {
		/* A start-up that failed leaves the disk as it found it: a store this open created,
		 * never served, goes with the directory it made (kv_abandon keeps one that was there
		 * or holds a write), as a refused open's would. */
		rc = served ? kv_close(kv) : kv_abandon(kv);
		if (rc) {
			say(LOG_ERR, "%s: closing the store: %s; writes since the last flush may be "
			    "lost", datadir, strerror(-rc));
			status = EXIT_FAIL;
		}
	}
	ctlsock_free(cs, rc); /* `kvfs --unmount` hears how the close went */
	return status;
}

/* The parent's side of start-up: print what the child says until it is ready or gone. */
static int wait_for_child(int fd, pid_t child)
{
	char buf[4096], line[4096];
	size_t have = 0;
	int ready = 0, errors = 0, wstatus;
	ssize_t n;

	for (;;) {
		do
			n = read(fd, buf, sizeof(buf));
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] != '\n') {
				if (have < sizeof(line) - 1)
					line[have++] = buf[i];
				continue;
			}
			line[have] = '\0';
			if (line[0] == 'R')
				ready = 1;
			else if (have > 0)
				fprintf(stderr, "%s\n", line + 1);
			if (line[0] == 'E')
				errors++;
			have = 0;
		}
	}
	close(fd);
	/* Ready means mounted: an error said on the way that did not stop start-up (the store's
	 * own report, say a failed background flush) was printed above; waiting for the daemon
	 * would hang until the unmount. */
	if (ready)
		return 0;
	/* the child ends on its own after an error; reap it so its status can be told */
	if (waitpid(child, &wstatus, 0) == child && !errors) {
		if (WIFSIGNALED(wstatus))
			fprintf(stderr, PROG ": the daemon died of signal %d before the mount was "
				"ready\n", WTERMSIG(wstatus));
		else
			fprintf(stderr, PROG ": the daemon exited before the mount was ready\n");
	}
	return EXIT_FAIL;
}

int main(int argc, char **argv)
{
	struct args a;
	char *datadir = NULL, *mnt = NULL, lock_wait_err[256];
	int status = EXIT_FAIL, pfd[2];
	unsigned lock_wait;
	pid_t pid;

	if (stdfds_ensure() != 0)
		return EXIT_FAIL; /* no /dev/null: nowhere to say so */
	hugepages_reexec(argv);
	if (argc >= 2 && strcmp(argv[1], "--unmount") == 0)
		return unmount_main(PROG, argc, argv);
	if (parse_args(argc, argv, &a)) {
		fprintf(stderr, "Try '" PROG " --help'.\n");
		free(a.fuse_opts);
		free(a.cluster_opts);
		return EXIT_USAGE;
	}
	if (a.help) {
		usage(stdout);
		free(a.fuse_opts);
		free(a.cluster_opts);
		return fflush(stdout) == EOF ? EXIT_USAGE : 0;
	}
	if (a.version) {
		printf(PROG " %s (libfuse %s)\n", KV_VERSION, fuse_pkgversion());
		free(a.fuse_opts);
		free(a.cluster_opts);
		return fflush(stdout) == EOF ? EXIT_USAGE : 0;
	}
	datadir = absolute(a.datadir);
	if (!datadir) {
		say(LOG_ERR, "%s: %s", a.datadir, strerror(errno ? errno : ENOMEM));
		goto out;
	}
	if (check_fuse_options(&a, datadir)) {
		fprintf(stderr, "Try '" PROG " --help'.\n");
		status = EXIT_USAGE;
		goto out;
	}
	if (check_allow_other(&a))
		goto out;
	if (lockwait_bound(&lock_wait, lock_wait_err, sizeof(lock_wait_err))) {
		fprintf(stderr, PROG ": %s\n", lock_wait_err);
		status = EXIT_USAGE;
		goto out;
	}
	if (check_places(a.mountpoint, datadir, &mnt))
		goto out;
	if (a.foreground) {
		status = serve(&a, datadir, mnt);
		goto out;
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		say(LOG_ERR, "pipe: %s", strerror(errno));
		goto out;
	}
	/* flush before fork, or stdio buffers would be written twice */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		say(LOG_ERR, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		goto out;
	}
	if (pid > 0) {
		close(pfd[1]);
		status = wait_for_child(pfd[0], pid);
		goto out;
	}
	close(pfd[0]);
	/* a starting process that went away must not kill us with SIGPIPE at the next line we
	 * tell it (libfuse ignores SIGPIPE too, but only once the mount is set up) */
	signal(SIGPIPE, SIG_IGN);
	/* a session of its own: the terminal's signals (Ctrl-C, hangup) are not for the daemon */
	if (setsid() < 0)
		syslog(LOG_WARNING, "setsid: %s", strerror(errno));
	openlog(PROG, LOG_PID, LOG_DAEMON);
	out.status_fd = pfd[1];
	out.background = 1;
	status = serve(&a, datadir, mnt);
	if (out.status_fd >= 0)
		close(out.status_fd);
	closelog();
out:
	free(datadir);
	free(mnt);
	free(a.fuse_opts);
	free(a.cluster_opts);
	return status;
}
