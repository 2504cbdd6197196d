/* replbench — durable writes of a replicated group of three beside the single store, and
 * failover time, on this machine's disk and loopback.
 *
 *   replbench [--dir DIR] [--ops N] [--kills N] [--election-ms N] [--kv-cli PATH] [--tiny]
 *
 *   writes    N puts of 100-byte values to distinct keys, split among 1 and 8 writer threads:
 *             the single store with sync=always (a put returns once it is durable; concurrent
 *             puts share an fdatasync), and a group of three nodes in this process on loopback
 *             TCP (repl_propose: a put returns once two of the three have it in raft's log,
 *             fsync'd, and the leader has applied it). writes/s, p50 and p99 latency
 *   failover  N times: three kv_cli nodes (processes, --serve) with election_ms; SIGKILL the
 *             leader, then write through whichever node answers until one acknowledges a write
 *             (a follower's "ERR not leader" is retried at once, every 2 ms); the time from the
 *             kill to that first acknowledged write. The killed node is restarted and caught
 *             up before the next kill
 *
 * Prints markdown tables; nothing here is a pass/fail check (the suite runs --tiny only, so
 * that it keeps working). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "kv.h"
#include "repl.h"

#define NODES 3
#define VALUE 100

static const char *base_dir = "/tmp/replbench";
static unsigned nops = 4000, nkills = 5, election_ms = 1000;
static const char *kv_cli;

static void die(const char *what, int rc)
{
	fprintf(stderr, "replbench: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static void quiet(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

static unsigned free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		die("finding a free port", errno);
	close(fd);
	return ntohs(sa.sin_port);
}

static void write_cluster(const char *path, unsigned ports[NODES])
{
	FILE *f = fopen(path, "w");
	if (!f)
		die(path, errno);
	for (unsigned i = 0; i < NODES; i++) {
		ports[i] = free_port();
		fprintf(f, "%u 127.0.0.1:%u\n", i + 1, ports[i]);
	}
	if (fclose(f) != 0)
		die(path, errno);
}

/* ---- writes ----------------------------------------------------------------------------------- */

struct writer {
	struct kv *kv;
	struct repl *repl;
	unsigned id, n;
	double *lat;
	pthread_t t;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char key[32], val[VALUE];

	memset(val, 'v', sizeof(val));
	for (unsigned i = 0; i < w->n; i++) {
		int rc;
		double t0 = bench_now();
		snprintf(key, sizeof(key), "w%u/%08u", w->id, i);
		if (w->repl) {
			struct kv_batch *b;
			rc = kv_batch_new(&b);
			if (rc == 0)
				rc = kv_batch_put(b, key, strlen(key), NULL, 0, val, sizeof(val));
			if (rc == 0)
				rc = repl_propose(w->repl, b, 0, 0, NULL);
			kv_batch_free(b);
		} else {
			rc = kv_put(w->kv, key, strlen(key), val, sizeof(val));
		}
		if (rc)
			die("a write", rc);
		w->lat[i] = bench_now() - t0;
	}
	return NULL;
}

static void run_writers(const char *setup, struct kv *kv, struct repl *r, unsigned threads)
{
	struct writer w[8];
	unsigned per = nops / threads, total = per * threads;
	double *lat = malloc(total * sizeof(*lat)), t0, secs;

	if (!lat)
		die("memory", ENOMEM);
	t0 = bench_now();
	for (unsigned i = 0; i < threads; i++) {
		w[i] = (struct writer){ .kv = kv, .repl = r, .id = i, .n = per, .lat = lat + i * per };
		if (pthread_create(&w[i].t, NULL, writer_main, &w[i]))
			die("a thread", errno);
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(w[i].t, NULL);
	secs = bench_now() - t0;
	printf("| %s | %u | %.0f | %.2f | %.2f |\n", setup, threads, total / secs,
	       bench_pct(lat, total, 0.50) * 1000, bench_pct(lat, total, 0.99) * 1000);
	fflush(stdout);
	free(lat);
}

static void bench_single(void)
{
	char dir[1024];
	struct kv_options o;
	struct kv *kv;
	int rc;

	for (unsigned threads = 1; threads <= 8; threads *= 8) {
		snprintf(dir, sizeof(dir), "%s/single", base_dir);
		bench_rm(dir);
		kv_options_default(&o);
		o.sync = KV_SYNC_ALWAYS;
		rc = kv_open(&kv, dir, &o, NULL);
		if (rc)
			die("opening the store", rc);
		run_writers("one store, sync=always", kv, NULL, threads);
		rc = kv_close(kv);
		if (rc)
			die("closing the store", rc);
	}
	bench_rm(dir);
}

static void bench_group(void)
{
	char root[1024], cluster[1100], dir[1200];
	unsigned ports[NODES];
	struct repl *r[NODES];
	struct repl_options o[NODES];
	struct repl_report rep;
	int rc;

	for (unsigned threads = 1; threads <= 8; threads *= 8) {
		snprintf(root, sizeof(root), "%s/group", base_dir);
		bench_rm(root);
		bench_mkdir(root);
		snprintf(cluster, sizeof(cluster), "%s/cluster", root);
		write_cluster(cluster, ports);
		for (unsigned i = 0; i < NODES; i++) {
			repl_options_default(&o[i]);
			o[i].cluster_file = cluster;
			o[i].node = i + 1;
			o[i].election_ms = election_ms;
			o[i].store.segment_bytes = 8u << 20;
			o[i].log = quiet;
			snprintf(dir, sizeof(dir), "%s/node%u", root, i + 1);
			rc = repl_start(&r[i], dir, &o[i], &rep);
			if (rc)
				die(rep.detail[0] ? rep.detail : "starting a node", rc);
		}
		/* the leader: whoever all three follow */
		struct repl *leader = NULL;
		double until = bench_now() + 60;
		while (!leader && bench_now() < until) {
			for (unsigned i = 0; i < NODES && !leader; i++) {
				struct repl_stats st;
				repl_stats(r[i], &st);
				if (st.role == REPL_LEADER && repl_flush(r[i]) == 0)
					leader = r[i];
			}
			if (!leader)
				usleep(10000);
		}
		if (!leader)
			die("electing a leader", ETIMEDOUT);
		run_writers("group of 3 on loopback", NULL, leader, threads);
		for (unsigned i = 0; i < NODES; i++) {
			rc = repl_stop(r[i]);
			if (rc)
				die("stopping a node", rc);
		}
	}
	bench_rm(root);
}

/* ---- failover --------------------------------------------------------------------------------- */

struct proc {
	pid_t pid;
	unsigned port;
	char dir[1200];
};

static void spawn(struct proc *p, const char *cluster, unsigned id, const char *log)
{
	char opts[1400];

	snprintf(opts, sizeof(opts), "cluster=%s,node=%u,election_ms=%u,segment_bytes=8M", cluster, id,
		 election_ms);
	p->pid = fork();
	if (p->pid < 0)
		die("fork", errno);
	if (p->pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		int null = open("/dev/null", O_RDONLY);
		if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execl(kv_cli, kv_cli, "--serve", "-o", opts, p->dir, (char *)NULL);
		_exit(127);
	}
}

/* One command on a fresh session with the node on port: the reply line, or "" on failure. */
static void ask(unsigned port, const char *cmd, char *reply, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char line[256];
	size_t n = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	reply[0] = '\0';
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return;
	int l = snprintf(line, sizeof(line), "KVCLI01\n%s\n", cmd);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, line, (size_t)l, MSG_NOSIGNAL) != l)
		goto out;
	while (n + 1 < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 30000) <= 0)
			break;
		ssize_t got = read(fd, reply + n, 1);
		if (got <= 0 || reply[n] == '\n')
			break;
		n += (size_t)got;
	}
	reply[n] = '\0';
out:
	close(fd);
}

static int64_t stat_of(unsigned port, const char *name)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char buf[8192];
	size_t n = 0;
	int64_t v = -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    send(fd, "KVCLI01\nSTATS\nEXIT\n", 19, MSG_NOSIGNAL) == 19) {
		for (;;) {
			ssize_t got = read(fd, buf + n, sizeof(buf) - 1 - n);
			if (got <= 0)
				break;
			n += (size_t)got;
		}
		buf[n] = '\0';
		char *at = strstr(buf, name);
		if (at && at[strlen(name)] == ':')
			v = strtoll(at + strlen(name) + 1, NULL, 10);
	}
	close(fd);
	return v;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bench_failover(void)
{
	char root[1024], cluster[1100], log[1200], reply[256], cmd[64];
	unsigned ports[NODES];
	struct proc p[NODES];
	double *t = calloc(nkills ? nkills : 1, sizeof(*t));
	unsigned seq = 0;

	if (!kv_cli) {
		printf("\n(failover skipped: no kv_cli; give --kv-cli PATH or KV_CLI)\n");
		free(t);
		return;
	}
	snprintf(root, sizeof(root), "%s/failover", base_dir);
	bench_rm(root);
	bench_mkdir(root);
	snprintf(cluster, sizeof(cluster), "%s/cluster", root);
	snprintf(log, sizeof(log), "%s/nodes.log", root);
	write_cluster(cluster, ports);
	for (unsigned i = 0; i < NODES; i++) {
		p[i].port = ports[i];
		snprintf(p[i].dir, sizeof(p[i].dir), "%s/node%u", root, i + 1);
		spawn(&p[i], cluster, i + 1, log);
	}
	for (unsigned k = 0; k < nkills; k++) {
		/* the leader, proven by a write it acknowledges */
		int leader = -1;
		double until = bench_now() + 120;
		while (leader < 0 && bench_now() < until) {
			for (unsigned i = 0; i < NODES && leader < 0; i++) {
				snprintf(cmd, sizeof(cmd), "PUT before%u x", seq++);
				ask(p[i].port, cmd, reply, sizeof(reply));
				if (!strcmp(reply, "OK"))
					leader = (int)i;
			}
			if (leader < 0)
				usleep(20000);
		}
		if (leader < 0)
			die("finding the leader", ETIMEDOUT);
		double t0 = bench_now();
		kill(p[leader].pid, SIGKILL);
		waitpid(p[leader].pid, NULL, 0);
		double t1 = 0;
		while (!t1 && bench_now() < t0 + 120) {
			for (unsigned i = 0; i < NODES && !t1; i++) {
				if ((int)i == leader)
					continue;
				snprintf(cmd, sizeof(cmd), "PUT after%u x", seq++);
				ask(p[i].port, cmd, reply, sizeof(reply));
				if (!strcmp(reply, "OK"))
					t1 = bench_now();
			}
			if (!t1)
				usleep(2000);
		}
		if (!t1)
			die("a write after the kill", ETIMEDOUT);
		t[k] = t1 - t0;
		spawn(&p[leader], cluster, (unsigned)leader + 1, log);
		/* caught up: every node has applied what the leader committed */
		until = bench_now() + 120;
		for (;;) {
			int64_t c = -1, a[NODES];
			for (unsigned i = 0; i < NODES; i++) {
				a[i] = stat_of(p[i].port, "store_applied_index");
				int64_t ci = stat_of(p[i].port, "commit_index");
				if (ci > c)
					c = ci;
			}
			if (c > 0 && a[0] == c && a[1] == c && a[2] == c)
				break;
			if (bench_now() > until)
				die("the restarted node catching up", ETIMEDOUT);
			usleep(20000);
		}
	}
	for (unsigned i = 0; i < NODES; i++) {
		kill(p[i].pid, SIGTERM);
		waitpid(p[i].pid, NULL, 0);
	}
	qsort(t, nkills, sizeof(*t), cmp_d);
	printf("\n### Failover: leader SIGKILL to the first write the new leader acknowledges\n\n");
	printf("Three kv_cli nodes (processes), election_ms=%u (raft waits 1x..2x of it, randomized, "
	       "before it starts an election), pre-vote on.\n\n", election_ms);
	printf("| kills | min ms | median ms | max ms |\n|---|---|---|---|\n");
	if (nkills)
		printf("| %u | %.0f | %.0f | %.0f |\n", nkills, t[0] * 1000, t[nkills / 2] * 1000,
		       t[nkills - 1] * 1000);
	fflush(stdout);
	free(t);
	bench_rm(root);
}

int main(int argc, char **argv)
{
	kv_cli = getenv("KV_CLI");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base_dir = argv[++i];
		else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
			nops = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--kills") && i + 1 < argc)
			nkills = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--election-ms") && i + 1 < argc)
			election_ms = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--kv-cli") && i + 1 < argc)
			kv_cli = argv[++i];
		else if (!strcmp(argv[i], "--tiny")) {
			nops = 160;
			nkills = 1;
			election_ms = 300;
		} else {
			fprintf(stderr, "usage: replbench [--dir DIR] [--ops N] [--kills N] "
				"[--election-ms N] [--kv-cli PATH] [--tiny]\n");
			return 2;
		}
	}
	if (nops < 8)
		nops = 8;
	signal(SIGPIPE, SIG_IGN);
	bench_mkdir(base_dir);
	printf("### Durable writes: one store beside a group of three on loopback\n\n");
	printf("%u puts of %u-byte values to distinct keys, split among the writers. One store: "
	       "sync=always (the put returns once durable; concurrent puts share an fdatasync). "
	       "Group: three nodes (one process, loopback TCP); the put returns once two of three "
	       "have it fsync'd in raft's log and the leader has applied it.\n\n", nops, VALUE);
	printf("| setup | writers | writes/s | p50 ms | p99 ms |\n|---|---|---|---|---|\n");
	fflush(stdout);
	bench_single();
	bench_group();
	bench_failover();
	bench_rm(base_dir);
	return 0;
}
