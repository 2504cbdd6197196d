/* testutil.h — helpers every test suite uses: seeds, scratch directories, running programs.
 * Functions that can fail return 0 (or a length) or a negative errno. */
#ifndef KVFS_TESTS_TESTUTIL_H
#define KVFS_TESTS_TESTUTIL_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The seed of this run: KV_SEED from the environment when set, else from the clock. Printed
 * once per process as "seed: N" on stderr, so a failing run is one `KV_SEED=N` away from a
 * rerun. Call it from main before srunner_run_all, so every forked test sees the same seed. */
uint64_t tu_seed(void);
/* A small seedable generator (splitmix64) for randomised tests: advances *state. */
uint64_t tu_rand(uint64_t *state);

/* mkdtemp of $TMPDIR (or /tmp) /kvfs-test.XXXXXX into buf. */
int tu_tmpdir(char *buf, size_t len);
/* rm -rf: the tree at path, without following symlinks; a missing path is fine. */
int tu_rmrf(const char *path);

/* The whole file, malloc'd and NUL-terminated (the NUL not counted in *len; len may be NULL). */
int tu_read_file(const char *path, char **data, size_t *len);
int tu_write_file(const char *path, const void *data, size_t len);

/* Runs argv (argv[0] searched in PATH unless it has a '/'; KV_CLI names the kv_cli binary),
 * feeding stdin_text (NULL: empty stdin) and capturing stdout and stderr whole into malloc'd
 * NUL-terminated strings (out, err may be NULL to discard). *status is as from waitpid.
 * A program that cannot be started is -errno (e.g. -ENOENT), not an exit status. */
int tu_run(const char *const argv[], const char *stdin_text, char **out, char **err,
	   int *status);

/* Starts argv with pipes to its stdin (*in_fd) and from its stdout (*out_fd); its stderr is
 * ours. For driving a program line by line and killing it mid-way. Close both fds and reap
 * the child (tu_kill or waitpid) when done. */
int tu_spawn(const char *const argv[], int *in_fd, int *out_fd, pid_t *pid);
/* Writes all of buf; a reader that is gone is -EPIPE, never a SIGPIPE. */
int tu_write_all(int fd, const void *buf, size_t len);
/* Reads one line (its '\n' removed) into buf, NUL-terminated: returns its length.
 * -ETIMEDOUT after timeout_ms without a full line (a hang guard, not a timing check),
 * -ENODATA at end of input before any byte (a last line without '\n' is returned as a line),
 * -EOVERFLOW when the line does not fit in len - 1 bytes. */
int tu_read_line(int fd, char *buf, size_t len, int timeout_ms);
/* CLOCK_MONOTONIC in ms: for the deadlines of hang guards, never to decide a test. */
uint64_t tu_now_ms(void);
/* A loopback TCP port nothing listens on or uses now, for a node the test starts: outside the
 * kernel's ephemeral range (ip_local_port_range), so no process's outgoing connection can take
 * it before the node binds it, and never the same one twice in a process (three nodes get
 * three ports). Processes start far apart, and each candidate is tried by binding it. */
int tu_free_port(unsigned *port);
/* tu_free_port for a test's node: the port, or the test fails saying why there is none. */
unsigned tu_port(void);
/* SIGKILL pid and reap it; *status (may be NULL) as from waitpid. */
int tu_kill(pid_t pid, int *status);
struct Suite; /* Check's */
/* Runs every test of su (CK_NORMAL output): EXIT_SUCCESS when none failed, else EXIT_FAILURE.
 * The end of a suite's main. */
int tu_run_suite(struct Suite *su);
struct kv_report;
/* A store's report in the words the programs print (mount/report.c): the failure line when it
 * has a problem, then its notes, one per line. For messages of failing tests. The text lives
 * until the next call from the same thread. */
const char *tu_report(const struct kv_report *r);
#endif
