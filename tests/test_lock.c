/* Exclusive open: a store is held by one kv_open at a time, in this process or another. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kv.h"
#include "testutil.h"

static char dir[256];

static void make_dir(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/kvfs-lock.XXXXXX", t && *t ? t : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	strcat(dir, "/store");
}

static void remove_dir(void)
{
	char cmd[600];
	char *slash = strrchr(dir, '/');
	*slash = '\0';
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static struct kv_options real_options(void)
{
	struct kv_options o;
	kv_options_default(&o);
	o.sync = KV_SYNC_NONE;
	o.segment_bytes = 1 << 20;
	return o;
}

START_TEST(second_open_in_same_process_is_refused_naming_the_holder)
{
	make_dir();
	struct kv_options o = real_options();
	struct kv *a, *b = NULL;
	struct kv_report rep;
	ck_assert_int_eq(kv_open(&a, dir, &o, &rep), 0);
	ck_assert_int_eq(kv_put(a, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_open(&b, dir, &o, &rep), -EWOULDBLOCK);
	char pid[32];
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	ck_assert_int_eq(rep.problem, KV_PROBLEM_LOCKED);
	ck_assert_str_eq(rep.holder, pid);
	ck_assert_ptr_nonnull(strstr(tu_report(&rep), pid));
	ck_assert_int_eq(kv_close(a), 0);
	/* released on close */
	ck_assert_int_eq(kv_open(&b, dir, &o, &rep), 0);
	void *v;
	uint64_t len;
	ck_assert_int_eq(kv_get(b, "k", 1, &v, &len), 0);
	free(v);
	ck_assert_int_eq(kv_close(b), 0);
	remove_dir();
}
END_TEST

START_TEST(another_process_is_refused_and_nothing_on_disk_changes)
{
	make_dir();
	struct kv_options o = real_options();
	struct kv *a;
	ck_assert_int_eq(kv_open(&a, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(a, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_flush(a), 0);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "cd '%s' && ls -l --time-style=+%%s.%%N && md5sum *", dir);
	FILE *p = popen(cmd, "r");
	char before[4096] = "", after[4096] = "";
	ck_assert_uint_gt(fread(before, 1, sizeof before - 1, p), 0);
	pclose(p);
	pid_t child = fork();
	if (child == 0) {
		struct kv *b;
		struct kv_report rep;
		int rc = kv_open(&b, dir, &o, &rep);
		_exit(rc == -EWOULDBLOCK && rep.problem == KV_PROBLEM_LOCKED ? 0 : 1);
	}
	int status;
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p = popen(cmd, "r");
	ck_assert_uint_gt(fread(after, 1, sizeof after - 1, p), 0);
	pclose(p);
	ck_assert_str_eq(before, after);
	ck_assert_int_eq(kv_close(a), 0);
	remove_dir();
}
END_TEST

START_TEST(store_directory_is_0700_and_files_0600)
{
	make_dir();
	struct kv_options o = real_options();
	struct kv *a;
	ck_assert_int_eq(kv_open(&a, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(a, "k", 1, "v", 1), 0);
	ck_assert_int_eq(kv_snapshot(a), 0);
	ck_assert_int_eq(kv_close(a), 0);
	struct stat st;
	ck_assert_int_eq(stat(dir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	char path[600];
	const char *files[] = { "LOCK", "wal-0000000000000001.log", "ckpt-0000000000000001.kvc", "space.reserve" };
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		ck_assert_msg(stat(path, &st) == 0, "%s missing", path);
		ck_assert_uint_eq(st.st_mode & 0777, 0600);
	}
	remove_dir();
}
END_TEST

int main(void)
{
	umask(022);
	Suite *su = suite_create("lock");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, second_open_in_same_process_is_refused_naming_the_holder);
	tcase_add_test(tc, another_process_is_refused_and_nothing_on_disk_changes);
	tcase_add_test(tc, store_directory_is_0700_and_files_0600);
	suite_add_tcase(su, tc);
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
