/* mount_kvfs.c — mount.kvfs, the helper mount(8) runs for filesystems of type kvfs:
 *
 *   mount -t kvfs DATADIR MOUNTPOINT [-o OPTS]       and fstab lines of type kvfs
 *
 * mount(8) calls `mount.kvfs DATADIR MOUNTPOINT [-sfnv] [-N NS] [-o OPTS] [-t TYPE]` (man 8 mount,
 * "External helpers"), looking for it only in /sbin, /sbin/fs.d and /sbin/fs; it passes along
 * the options it keeps for itself (defaults, noauto, nofail, _netdev, user, x-*, ...). This runs
 * `kvfs DATADIR MOUNTPOINT [-o OPTS]` with those options taken out, by the absolute path kvfs
 * was installed to (KVFS_PATH, from the build), so no PATH is involved. kvfs itself detaches
 * once the mount is ready, so mount(8) returns when the filesystem can be used, with kvfs's exit
 * status; kvfs's own messages reach the caller's stderr.
 *
 * Exit status: kvfs's; 1 for a usage error here; 32 (mount(8)'s "mount failure") when kvfs
 * cannot be started. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KVFS_PATH
#error "KVFS_PATH must name the installed kvfs binary"
#endif

#define PROG "mount.kvfs"
#define EXIT_USAGE 1
#define EXIT_MOUNT_FAILED 32

/* Options mount(8) and fstab use for their own bookkeeping, meaningless to kvfs: dropped. The
 * mode "rw" is the default and dropped too; "ro" goes through. */
static int bookkeeping(const char *opt, size_t len)
{
	static const char *const names[] = { "rw", "defaults", "auto", "noauto", "user", "nouser",
					     "users", "owner", "group", "_netdev", "nofail" };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == strlen(names[i]) && strncmp(opt, names[i], len) == 0)
			return 1;
	return (len >= 2 && strncmp(opt, "x-", 2) == 0) ||
	       (len >= 8 && strncmp(opt, "comment=", 8) == 0);
}

/* Appends the options of list that kvfs must see to out (comma-separated). */
static void keep_options(const char *list, char *out, size_t *outlen)
{
	const char *p = list;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len && !bookkeeping(p, len)) {
			if (*outlen)
				out[(*outlen)++] = ',';
			memcpy(out + *outlen, p, len);
			*outlen += len;
			out[*outlen] = '\0';
		}
		p += len;
		if (*p == ',')
			p++;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: " PROG " DATADIR MOUNTPOINT [-sfnv] [-o OPT[,OPT...]] [-t TYPE]\n"
"\n"
"The helper mount(8) runs for `mount -t kvfs DATADIR MOUNTPOINT` and for /etc/fstab lines of\n"
"type kvfs. It runs `" KVFS_PATH " DATADIR MOUNTPOINT -o OPTS` without the options that are\n"
"mount(8)'s own (rw, defaults, auto, noauto, user, nouser, users, owner, group, _netdev,\n"
"nofail, x-*, comment=*). -f: do nothing (with -v: say what would run); -v: say what runs;\n"
"-s, -n, -t: accepted and ignored. See kvfs(8).\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *kvfs_argv[6];
	char *opts;
	size_t optlen = 0, cap = 1;
	int ch, fake = 0, verbose = 0, n = 0;

	for (int i = 1; i < argc; i++)
		cap += strlen(argv[i]) + 1;
	opts = malloc(cap);
	if (!opts) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		return EXIT_MOUNT_FAILED;
	}
	opts[0] = '\0';
	opterr = 0;
	/* mount(8) puts the operands first and the options after: let getopt permute */
	while ((ch = getopt_long(argc, argv, ":sfnvN:o:t:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			keep_options(optarg, opts, &optlen);
			break;
		case 'f':
			fake = 1;
			break;
		case 'v':
			verbose = 1;
			break;
		case 's': /* sloppy: kvfs refuses an unknown option either way */
		case 'n': /* no mtab: FUSE mounts are in /proc/self/mountinfo only */
		case 't': /* the type: kvfs */
			break;
		case 'N':
			fprintf(stderr, PROG ": -N (mount in another namespace) is not supported\n");
			free(opts);
			return EXIT_USAGE;
		case 'h':
			usage(stdout);
			free(opts);
			return 0;
		case ':':
			fprintf(stderr, PROG ": -%c needs an argument\n", optopt);
			usage(stderr);
			free(opts);
			return EXIT_USAGE;
		default:
			fprintf(stderr, PROG ": unknown option -%c\n", optopt);
			usage(stderr);
			free(opts);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, PROG ": expected DATADIR and MOUNTPOINT\n");
		usage(stderr);
		free(opts);
		return EXIT_USAGE;
	}
	kvfs_argv[n++] = "kvfs";
	kvfs_argv[n++] = argv[optind];
	kvfs_argv[n++] = argv[optind + 1];
	if (optlen) {
		kvfs_argv[n++] = "-o";
		kvfs_argv[n++] = opts;
	}
	kvfs_argv[n] = NULL;
	if (verbose) {
		fprintf(stderr, PROG ": %s " KVFS_PATH, fake ? "would run" : "running");
		for (int i = 1; i < n; i++)
			fprintf(stderr, " %s", kvfs_argv[i]);
		fputc('\n', stderr);
	}
	if (fake) {
		free(opts);
		return 0;
	}
	fflush(stderr);
	execv(KVFS_PATH, (char *const *)kvfs_argv);
	fprintf(stderr, PROG ": cannot run " KVFS_PATH ": %s\n", strerror(errno));
	free(opts);
	return EXIT_MOUNT_FAILED;
}
