/* mountutil.h — mounting the real kvfs daemon in Check tests.
 *
 * Each test (mt_setup/mt_teardown as its checked fixture) gets a scratch directory mt_tmp with
 * mt_data (the store, not yet created) and mt_mnt (the mount point). The daemon is found as
 * KVFS, else "kvfs" beside KV_CLI. Without root or /dev/fuse, mt_skip_reason says why and
 * NEED_MOUNT() makes a test pass after printing it. A test that fails ends its process at once,
 * without its teardown; mt_finish removes whatever such tests left (mounts, daemons, files). */
#ifndef KVFS_MOUNTUTIL_H
#define KVFS_MOUNTUTIL_H

#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

extern char mt_skip_reason[256]; /* non-empty: this machine cannot mount, and why */
extern char mt_kvfs[PATH_MAX];   /* the daemon binary */
extern char mt_tmp[PATH_MAX];    /* this test's scratch directory */
extern char mt_data[PATH_MAX + 16], mt_mnt[PATH_MAX + 16];
extern pid_t mt_daemon_pid; /* the running daemon (our child, as subreaper), or -1 */
extern int mt_tmpfs_mounted; /* mt_data is a tmpfs this test mounted; unmounted at teardown */

#define NEED_MOUNT()                                                                     \
	do {                                                                             \
		if (mt_skip_reason[0]) {                                                 \
			fprintf(stderr, "%s: skipped: %s\n", __func__, mt_skip_reason);  \
			return;                                                          \
		}                                                                        \
	} while (0)

/* In main, before running the suite: finds the daemon, makes the run's scratch directory and
 * becomes a subreaper. 0 (also when mounting is impossible: see mt_skip_reason) or -errno. */
int mt_init(void);
/* In main, after the suite: unmounts, kills and removes what failed tests left. */
void mt_finish(void);
void mt_setup(void);
void mt_teardown(void);
/* Adds the test cases to su, each with the mt_setup/mt_teardown fixture and the timeout. */
void mt_add_cases(Suite *su, TCase *const *cases, size_t n, double timeout_s);
/* Runs su (Check's environment decides the mode), then mt_finish; the exit status for main. */
int mt_run(Suite *su);

/* mt_data made a tmpfs of mib MiB (unmounted at teardown): a disk of a known size, and a full
 * disk a real one. */
void mt_small_disk(unsigned mib);

/* Paths and files; each fails the test on error. in_mnt returns one of 8 rotating buffers. */
char *in_mnt(const char *rel);
void put_file(const char *path, const char *text);
char *get_file(const char *path); /* the whole file, NUL-terminated; freed by the caller */
void assert_file(const char *path, const char *want);
char *list_dir(const char *path); /* names in readdir order joined by ' ', "." ".." included */
void assert_listing(const char *path, const char *want);
void assert_errno(int rc, int want, const char *what); /* rc == -1 with errno want */

/* The daemon. */
int run_kvfs(const char *const *args, char **err); /* its exit code; stderr into *err */
void mount_store_saying(const char *opts, char **said); /* opts NULL: none; stderr into *said */
void mount_store(const char *opts);                     /* and it must say nothing */
void unmount_store(void); /* fusermount3 -u; the daemon must exit 0 */
void remount(void);
int wait_daemon(void); /* its wait status; a hang guard of a minute */
void assert_clean_exit(int status, const char *after);
int fusermount(const char *flags, const char *path); /* 0 or -1 */
int is_mounted(const char *path);
pid_t lock_pid(const char *dir); /* the pid in dir/LOCK */
/* A stand-in for a daemon still closing the store in dir: a child holding dir/LOCK with its pid
 * written in, as the engine leaves it, until mt_release_lock. named: it calls itself "kvfs" (what
 * /proc/PID/comm shows, as for the real daemon); else it keeps this program's name, a process
 * that is no daemon. Returns once the lock is held. */
pid_t mt_hold_lock(const char *dir, int named);
void mt_release_lock(pid_t holder); /* SIGUSR1; it must exit 0, which drops the lock */
const char *mt_kv_cli(void); /* the kv_cli binary (KV_CLI) */
char *kv_cli(const char *script); /* kv_cli on mt_data; its stdout, freed by the caller */
uint64_t stat_of(const char *name); /* the number after "name:" in the control file */
void wait_for_keys(uint64_t n);     /* until the store holds n keys (a hang guard) */

#endif
