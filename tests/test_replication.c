/* test_replication.c — three kv_cli nodes of a replicated group, as processes on loopback, and
 * faults that real machines have: the leader SIGKILLed, the leader SIGSTOPped past the election
 * timeout and resumed, a follower SIGKILLed in the middle of a write burst, a killed node
 * restarted (once with its data directory wiped).
 *
 * Rounds. Client threads write through the leader over client sessions (the node's port,
 * "KVCLI01\n"): each client its own keys, PUT (value = client:sequence) and now and then DEL,
 * one operation at a time, keeping a ledger of every operation and its answer: acknowledged
 * (OK or (nil)), refused by a follower ("ERR not leader": nothing was written), or unknown (any
 * other ERR, a connection that broke: it may or may not have happened). Each round: clients
 * write, a fault strikes, clients must make progress on the new leader, clients pause, the
 * leader proves itself (FLUSH) and every key is read from it and checked against the ledger —
 * the value must come from the last acknowledged operation on that key or from an unknown one
 * issued after it: an acknowledged write is never missing unless a later write of the same
 * client overwrote it, and nothing refused or out of order ever shows — then killed nodes are
 * restarted, stopped ones resumed, and once the group is quiet (every node has applied the
 * leader's whole log) all three nodes must hold the same keys and values.
 *
 * Prints `replication rounds: N` and `acked lost: N`. Knobs: KV_REPL_ROUNDS (default 21),
 * KV_SEED (which fault, which node, which key and op; the interleaving is the OS's). Waits are
 * hang guards with generous deadlines: a deadline that passes is a failure with its reason, and
 * nothing is decided by how long anything took. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define NODES 3
#define CLIENTS 4
#define KEYS 12             /* per client */
#define MAX_OPS 200000      /* per client over the whole run */
#define DEADLINE_MS 90000   /* hang guard for any condition */
#define REPLY_MS 60000      /* hang guard for one reply */
/* A client gives up on a reply after this long (a stopped leader answers only once resumed):
 * the operation is then unknown, which only ever loosens the check. */
#define CLIENT_REPLY_MS 2000
#define ELECTION_MS 300

static uint64_t seed;

/* ---- nodes as processes --------------------------------------------------------------------- */

struct node {
	unsigned id;
	unsigned port;
	char dir[512], log[512];
	pid_t pid;      /* 0: not running */
	int in_fd;      /* its stdin: closing it stops the node */
	atomic_int up;  /* running and not stopped: clients may ask it */
};

struct group {
	char root[256], cluster[512];
	struct node n[NODES];
	const char *kv_cli;
	char extra_opts[128];
};

static void node_spawn(struct group *g, unsigned i)
{
	struct node *nd = &g->n[i];
	char opts[1024];
	int in[2];

	snprintf(opts, sizeof(opts), "cluster=%s,node=%u,election_ms=%u,segment_bytes=1M%s",
		 g->cluster, nd->id, ELECTION_MS, g->extra_opts);
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int log = open(nd->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (log < 0 || dup2(in[0], 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
			_exit(127);
		execl(g->kv_cli, g->kv_cli, "-o", opts, nd->dir, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	nd->pid = pid;
	nd->in_fd = in[1];
	atomic_store(&nd->up, 1);
}

/* The last lines of a node's log, for a failure message. */
static const char *node_log_tail(struct node *nd)
{
	static char tail[2048];
	char *text = NULL;
	size_t len = 0;
	tail[0] = '\0';
	if (tu_read_file(nd->log, &text, &len) == 0) {
		size_t from = len > sizeof(tail) - 1 ? len - (sizeof(tail) - 1) : 0;
		snprintf(tail, sizeof(tail), "%s", text + from);
	}
	free(text);
	return tail;
}

static void node_kill(struct group *g, unsigned i)
{
	struct node *nd = &g->n[i];
	atomic_store(&nd->up, 0);
	ck_assert_int_eq(tu_kill(nd->pid, NULL), 0);
	close(nd->in_fd);
	nd->pid = 0;
}

/* A clean stop: end of its input, and it must exit 0. */
static void node_stop(struct group *g, unsigned i)
{
	struct node *nd = &g->n[i];
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	int status = 0;
	pid_t got = 0;

	atomic_store(&nd->up, 0);
	close(nd->in_fd);
	while (tu_now_ms() < until && (got = waitpid(nd->pid, &status, WNOHANG)) == 0)
		usleep(10000);
	ck_assert_msg(got == nd->pid, "node %u did not stop: %s", nd->id, node_log_tail(nd));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "node %u exited with status %d: %s", nd->id, status, node_log_tail(nd));
	nd->pid = 0;
}

static void group_init(struct group *g, const char *extra_opts)
{
	char text[256] = "";
	memset(g, 0, sizeof(*g));
	g->kv_cli = getenv("KV_CLI");
	ck_assert_msg(g->kv_cli != NULL, "KV_CLI is not set");
	snprintf(g->extra_opts, sizeof(g->extra_opts), "%s", extra_opts ? extra_opts : "");
	ck_assert_int_eq(tu_tmpdir(g->root, sizeof(g->root)), 0);
	for (unsigned i = 0; i < NODES; i++) {
		struct node *nd = &g->n[i];
		nd->id = i + 1;
		nd->port = tu_port();
		snprintf(nd->dir, sizeof(nd->dir), "%s/node%u", g->root, nd->id);
		snprintf(nd->log, sizeof(nd->log), "%s/node%u.log", g->root, nd->id);
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%u 127.0.0.1:%u\n", nd->id,
			 nd->port);
	}
	snprintf(g->cluster, sizeof(g->cluster), "%s/cluster", g->root);
	ck_assert_int_eq(tu_write_file(g->cluster, text, strlen(text)), 0);
	for (unsigned i = 0; i < NODES; i++)
		node_spawn(g, i);
}

static void group_fini(struct group *g)
{
	for (unsigned i = 0; i < NODES; i++)
		if (g->n[i].pid) {
			if (!atomic_load(&g->n[i].up))
				kill(g->n[i].pid, SIGCONT);
			node_stop(g, i);
		}
	ck_assert_int_eq(tu_rmrf(g->root), 0);
}

/* ---- sessions ------------------------------------------------------------------------------- */

/* A client session with node i: a connected fd, or -errno. */
static int session_open(struct group *g, unsigned i)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g->n[i].port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, "KVCLI01\n", 8, MSG_NOSIGNAL) != 8) {
		rc = -errno;
		close(fd);
		return rc ? rc : -EIO;
	}
	return fd;
}

/* One command, one reply line (into reply). 0, or -errno (the session is then useless). */
static int session_cmd(int fd, const char *cmd, char *reply, size_t len, int timeout_ms)
{
	char line[512];
	int n = snprintf(line, sizeof(line), "%s\n", cmd);
	int rc = tu_write_all(fd, line, (size_t)n);
	if (rc)
		return rc;
	rc = tu_read_line(fd, reply, len, timeout_ms);
	return rc < 0 ? rc : 0;
}

/* One command on a fresh session with node i (for LEADER, STATS, GET when checking). */
static int ask_within(struct group *g, unsigned i, const char *cmd, char *reply, size_t len,
		      int timeout_ms)
{
	int fd = session_open(g, i);
	if (fd < 0)
		return fd;
	int rc = session_cmd(fd, cmd, reply, len, timeout_ms);
	close(fd);
	return rc;
}

static int ask(struct group *g, unsigned i, const char *cmd, char *reply, size_t len)
{
	return ask_within(g, i, cmd, reply, len, REPLY_MS);
}

/* "name: value" of STATS from node i, as a number; -1 when it cannot be had. */
static int64_t stat_of(struct group *g, unsigned i, const char *name)
{
	char line[256];
	int64_t v = -1;
	int fd = session_open(g, i), n;
	if (fd < 0)
		return -1;
	if (session_cmd(fd, "STATS", line, sizeof(line), REPLY_MS) == 0 && (n = atoi(line)) > 0)
		for (int k = 0; k < n; k++) {
			if (tu_read_line(fd, line, sizeof(line), REPLY_MS) < 0)
				break;
			size_t nl = strlen(name);
			if (!strncmp(line, name, nl) && line[nl] == ':')
				v = strtoll(line + nl + 1, NULL, 10);
		}
	close(fd);
	return v;
}

/* The node that is leader, by asking the running nodes: its index, or -1. A node that says it
 * is the leader may be a deposed one that does not know yet; callers that need the real one
 * make it prove itself with FLUSH. */
static int leader_of(struct group *g)
{
	char reply[128];
	for (unsigned i = 0; i < NODES; i++) {
		if (!atomic_load(&g->n[i].up))
			continue;
		/* briefly: a node being stopped right now answers only once resumed */
		if (ask_within(g, i, "LEADER", reply, sizeof(reply), CLIENT_REPLY_MS) ||
		    !strcmp(reply, "(nil)"))
			continue;
		unsigned id = (unsigned)atoi(reply);
		if (id >= 1 && id <= NODES && atomic_load(&g->n[id - 1].up))
			return (int)id - 1;
	}
	return -1;
}

/* ---- clients and their ledger --------------------------------------------------------------- */

enum outcome { ACKED, REFUSED, UNKNOWN };

struct op {
	uint32_t seq;
	uint8_t key;
	uint8_t del;
	uint8_t outcome;
};

struct client {
	struct group *g;
	unsigned c;
	pthread_t t;
	uint64_t rng;
	struct op *ops;
	uint32_t nops;
	int fd;          /* session, or -1 */
	atomic_uint acks;
	atomic_int idle;
};

static atomic_int clients_run;  /* 1: write; 0: pause after the current operation */
static atomic_int clients_quit;

static void client_drop_session(struct client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
}

static void *client_main(void *arg)
{
	struct client *cl = arg;
	char cmd[128], reply[256];

	while (!atomic_load(&clients_quit)) {
		if (!atomic_load(&clients_run)) {
			atomic_store(&cl->idle, 1);
			usleep(2000);
			continue;
		}
		atomic_store(&cl->idle, 0);
		if (cl->fd < 0) {
			int l = leader_of(cl->g);
			if (l < 0 || (cl->fd = session_open(cl->g, (unsigned)l)) < 0) {
				cl->fd = -1;
				usleep(20000);
				continue;
			}
		}
		if (cl->nops == MAX_OPS) {
			usleep(1000);
			continue;
		}
		struct op *o = &cl->ops[cl->nops];
		o->seq = cl->nops;
		o->key = (uint8_t)(tu_rand(&cl->rng) % KEYS);
		o->del = tu_rand(&cl->rng) % 10 == 0;
		if (o->del)
			snprintf(cmd, sizeof(cmd), "DEL c%u/k%u", cl->c, o->key);
		else
			snprintf(cmd, sizeof(cmd), "PUT c%u/k%u c%u:%" PRIu32, cl->c, o->key, cl->c, o->seq);
		int rc = session_cmd(cl->fd, cmd, reply, sizeof(reply), CLIENT_REPLY_MS);
		if (rc == 0 && (!strcmp(reply, "OK") || !strcmp(reply, "(nil)"))) {
			o->outcome = ACKED;
			atomic_fetch_add(&cl->acks, 1);
		} else if (rc == 0 && !strncmp(reply, "ERR not leader", 14)) {
			o->outcome = REFUSED; /* nothing was proposed */
			client_drop_session(cl);
		} else {
			o->outcome = UNKNOWN; /* an ERR that is no refusal, a broken or slow session */
			client_drop_session(cl);
		}
		cl->nops++;
	}
	client_drop_session(cl);
	return NULL;
}

static struct client clients[CLIENTS];

static void clients_start(struct group *g)
{
	atomic_store(&clients_run, 0);
	atomic_store(&clients_quit, 0);
	for (unsigned c = 0; c < CLIENTS; c++) {
		struct client *cl = &clients[c];
		memset(cl, 0, sizeof(*cl));
		cl->g = g;
		cl->c = c;
		cl->fd = -1;
		cl->rng = seed ^ ((uint64_t)(c + 1) << 40);
		cl->ops = calloc(MAX_OPS, sizeof(*cl->ops));
		ck_assert_ptr_nonnull(cl->ops);
		ck_assert_int_eq(pthread_create(&cl->t, NULL, client_main, cl), 0);
	}
}

static void clients_stop(void)
{
	atomic_store(&clients_quit, 1);
	for (unsigned c = 0; c < CLIENTS; c++) {
		pthread_join(clients[c].t, NULL);
		free(clients[c].ops);
	}
}

static unsigned total_acks(void)
{
	unsigned n = 0;
	for (unsigned c = 0; c < CLIENTS; c++)
		n += atomic_load(&clients[c].acks);
	return n;
}

/* Let the clients write until they have n more acknowledgements. */
static void clients_progress(unsigned n, const char *when)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	unsigned want = total_acks() + n;
	atomic_store(&clients_run, 1);
	while (total_acks() < want && tu_now_ms() < until)
		usleep(5000);
	ck_assert_msg(total_acks() >= want, "%s: the clients got %u of %u acknowledgements "
		      "within %d ms", when, total_acks() - (want - n), n, DEADLINE_MS);
}

static void clients_pause(void)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	atomic_store(&clients_run, 0);
	for (unsigned c = 0; c < CLIENTS; c++) {
		while (!atomic_load(&clients[c].idle) && tu_now_ms() < until)
			usleep(2000);
		ck_assert_msg(atomic_load(&clients[c].idle), "client %u did not pause", c);
	}
}

/* What the key may hold now: the value of the last acknowledged operation on it, or of an
 * unknown one issued after it (before any acknowledged one, also its initial absence). 0 when
 * observed (NULL: absent) is one of those; else the reason in why. lost: an acknowledged write
 * is missing (as against something that should never have appeared). */
static int check_key(const struct client *cl, unsigned key, const char *observed, char *why,
		     size_t whylen, int *lost)
{
	int64_t last_acked = -1;
	*lost = 0;
	for (uint32_t i = 0; i < cl->nops; i++)
		if (cl->ops[i].key == key && cl->ops[i].outcome == ACKED)
			last_acked = i;
	/* the candidates, in issue order */
	if (last_acked < 0 && observed == NULL)
		return 0; /* nothing acknowledged: never written, or only deletions took */
	for (uint32_t i = last_acked < 0 ? 0 : (uint32_t)last_acked; i < cl->nops; i++) {
		const struct op *o = &cl->ops[i];
		if (o->key != key || (i != (uint32_t)last_acked && o->outcome != UNKNOWN))
			continue;
		if (o->del && observed == NULL)
			return 0;
		if (!o->del && observed) {
			char want[64];
			snprintf(want, sizeof(want), "c%u:%" PRIu32, cl->c, o->seq);
			if (!strcmp(want, observed))
				return 0;
		}
	}
	if (last_acked >= 0) {
		const struct op *a = &cl->ops[last_acked];
		*lost = 1;
		snprintf(why, whylen, "c%u/k%u is %s%s%s, but operation %" PRId64 " (%s c%u:%" PRIu32
			 ") was acknowledged and nothing unknown after it on that key gives that",
			 cl->c, key, observed ? "'" : "absent", observed ? observed : "",
			 observed ? "'" : "", last_acked, a->del ? "DEL" : "PUT", cl->c, a->seq);
	} else {
		snprintf(why, whylen, "c%u/k%u is '%s', which no acknowledged or unknown operation "
			 "wrote", cl->c, key, observed);
	}
	return -1;
}

/* GET key from a session: 1 and the value (plain text here), 0 absent, -errno. */
static int session_get(int fd, const char *key, char *val, size_t len)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "GET %s", key);
	int rc = session_cmd(fd, cmd, val, len, REPLY_MS);
	if (rc)
		return rc;
	ck_assert_msg(strncmp(val, "ERR", 3) != 0, "GET %s: %s", key, val);
	return strcmp(val, "(nil)") != 0;
}

/* The leader, proven: it commits a FLUSH (a deposed leader cannot), so it has applied every
 * write acknowledged before. Its index. */
static unsigned proven_leader(struct group *g)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	char reply[256] = "";
	while (tu_now_ms() < until) {
		int l = leader_of(g);
		if (l >= 0 && ask(g, (unsigned)l, "FLUSH", reply, sizeof(reply)) == 0 &&
		    !strcmp(reply, "OK"))
			return (unsigned)l;
		usleep(20000);
	}
	ck_abort_msg("no leader committed a FLUSH within %d ms (last reply '%s')", DEADLINE_MS,
		     reply);
	return NODES;
}

/* Whether node i's process has exited (reaped, and marked not running). */
static int node_exited(struct group *g, unsigned i)
{
	struct node *nd = &g->n[i];
	int status;
	if (!nd->pid || waitpid(nd->pid, &status, WNOHANG) != nd->pid)
		return 0;
	atomic_store(&nd->up, 0);
	close(nd->in_fd);
	nd->pid = 0;
	return 1;
}

/* Every node answering on its port and naming the same leader, which proved itself: its index.
 * A follower is up and knows the leader only some time after a majority elected one, so a test
 * that asks a follower waits for this, not for a leader alone. -EADDRINUSE: a node could not
 * bind its port (another process took it after it was picked); any other exit fails the test. */
static int group_ready(struct group *g, unsigned *leader)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	char reply[128] = "";
	for (;;) {
		for (unsigned i = 0; i < NODES; i++)
			if (node_exited(g, i)) {
				if (strstr(node_log_tail(&g->n[i]), "address already in use"))
					return -EADDRINUSE;
				ck_abort_msg("node %u exited at start: %s", i + 1,
					     node_log_tail(&g->n[i]));
			}
		unsigned l = proven_leader(g), agree = 0;
		for (unsigned i = 0; i < NODES; i++)
			agree += ask_within(g, i, "LEADER", reply, sizeof(reply), CLIENT_REPLY_MS) == 0 &&
				 (unsigned)atoi(reply) == l + 1;
		if (agree == NODES) {
			*leader = l;
			return 0;
		}
		ck_assert_msg(tu_now_ms() < until, "the nodes never all named node %u leader (one "
			      "said '%s') within %d ms", l + 1, reply, DEADLINE_MS);
		usleep(20000);
	}
}

static void group_fini(struct group *g);

/* A group of three nodes (kv_cli options extra_opts after the common ones), every node up and
 * following the leader: its index. A node whose port was taken meanwhile by another process
 * makes the group start again on fresh ports. */
static unsigned group_start(struct group *g, const char *extra_opts)
{
	unsigned l = NODES;
	int rc = -EADDRINUSE;
	for (int attempt = 0; attempt < 3 && rc == -EADDRINUSE; attempt++) {
		if (attempt)
			group_fini(g);
		group_init(g, extra_opts);
		rc = group_ready(g, &l);
	}
	ck_assert_msg(rc == 0, "three times a node's port was taken before it could bind it");
	return l;
}

/* Every key of every client against the ledger, read from the proven leader. Returns the
 * number of acknowledged writes found missing (and fails on anything else wrong). */
static unsigned check_ledger(struct group *g, unsigned round)
{
	unsigned l = proven_leader(g), lost_total = 0;
	char key[32], val[256], why[512];
	int fd = session_open(g, l);
	ck_assert_int_ge(fd, 0);
	for (unsigned c = 0; c < CLIENTS; c++)
		for (unsigned k = 0; k < KEYS; k++) {
			int lost;
			snprintf(key, sizeof(key), "c%u/k%u", c, k);
			int rc = session_get(fd, key, val, sizeof(val));
			ck_assert_msg(rc >= 0, "round %u: GET %s from node %u: %s", round, key, l + 1,
				      strerror(-rc));
			if (check_key(&clients[c], k, rc ? val : NULL, why, sizeof(why), &lost)) {
				lost_total += (unsigned)lost;
				ck_assert_msg(lost, "round %u, leader node %u: %s (seed %" PRIu64 ")",
					      round, l + 1, why, seed);
				fprintf(stderr, "round %u: ACKED LOST: %s\n", round, why);
			}
		}
	close(fd);
	return lost_total;
}

/* Every node running and caught up with the leader's log, then the same keys and values on
 * all three (LIST, then GET of each). */
static void check_identical(struct group *g, unsigned round)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	int64_t applied[NODES] = { 0 }, commit = -1, last = -2;
	int same = 0;
	while (!same && tu_now_ms() < until) {
		int l = leader_of(g);
		if (l >= 0) {
			commit = stat_of(g, (unsigned)l, "commit_index");
			last = stat_of(g, (unsigned)l, "last_index");
			same = commit > 0 && commit == last;
			for (unsigned i = 0; i < NODES && same; i++) {
				applied[i] = stat_of(g, i, "store_applied_index");
				same = applied[i] == commit;
			}
		}
		if (!same)
			usleep(20000);
	}
	ck_assert_msg(same, "round %u: the group never went quiet: leader commit %" PRId64 " last %"
		      PRId64 ", applied %" PRId64 " %" PRId64 " %" PRId64 "\n%s", round, commit, last,
		      applied[0], applied[1], applied[2], node_log_tail(&g->n[0]));

	char *state[NODES] = { NULL };
	for (unsigned i = 0; i < NODES; i++) {
		char line[256], val[256];
		size_t cap = 65536, len = 0;
		int fd = session_open(g, i), n;
		ck_assert_int_ge(fd, 0);
		state[i] = malloc(cap);
		state[i][0] = '\0';
		ck_assert_int_eq(session_cmd(fd, "LIST", line, sizeof(line), REPLY_MS), 0);
		n = atoi(line);
		char (*keys)[64] = calloc((size_t)n + 1, sizeof(*keys));
		for (int k = 0; k < n; k++)
			ck_assert_int_ge(tu_read_line(fd, keys[k], sizeof(keys[k]), REPLY_MS), 0);
		for (int k = 0; k < n; k++) {
			int rc = session_get(fd, keys[k], val, sizeof(val));
			ck_assert_int_eq(rc, 1);
			len += (size_t)snprintf(state[i] + len, cap - len, "%s=%s\n", keys[k], val);
			ck_assert_uint_lt(len, cap);
		}
		free(keys);
		close(fd);
	}
	for (unsigned i = 1; i < NODES; i++)
		ck_assert_msg(!strcmp(state[0], state[i]), "round %u: node 1 and node %u differ:\n%s\n"
			      "---\n%s", round, i + 1, state[0], state[i]);
	for (unsigned i = 0; i < NODES; i++)
		free(state[i]);
}

/* Wait for a leader other than `not` that the running nodes follow. */
static unsigned new_leader(struct group *g, unsigned not)
{
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	int l = -1;
	while (tu_now_ms() < until) {
		l = leader_of(g);
		if (l >= 0 && (unsigned)l != not)
			return (unsigned)l;
		usleep(10000);
	}
	ck_abort_msg("no new leader (other than node %u) within %d ms", not + 1, DEADLINE_MS);
	return NODES;
}

enum fault { KILL_LEADER, STOP_LEADER, KILL_FOLLOWER_IN_BURST, NFAULTS };
static const char *const fault_name[] = { "SIGKILL leader", "SIGSTOP leader",
					  "SIGKILL follower mid-burst" };

static void run_round(struct group *g, unsigned round, uint64_t *rng, int wipe)
{
	enum fault f = (enum fault)(round % NFAULTS);
	clients_progress(20, "before the fault");
	unsigned l = proven_leader(g), victim = l;
	atomic_store(&clients_run, 1);
	switch (f) {
	case KILL_LEADER:
		node_kill(g, l);
		new_leader(g, l);
		clients_progress(20, "after the leader was killed");
		node_spawn(g, l);
		break;
	case STOP_LEADER:
		atomic_store(&g->n[l].up, 0);
		ck_assert_int_eq(kill(g->n[l].pid, SIGSTOP), 0);
		new_leader(g, l);
		clients_progress(20, "while the old leader was stopped");
		ck_assert_int_eq(kill(g->n[l].pid, SIGCONT), 0);
		atomic_store(&g->n[l].up, 1);
		break;
	case KILL_FOLLOWER_IN_BURST:
		victim = (l + 1 + (unsigned)(tu_rand(rng) % (NODES - 1))) % NODES;
		clients_progress(10, "the burst");
		node_kill(g, victim);
		clients_progress(20, "after a follower was killed");
		if (wipe)
			ck_assert_int_eq(tu_rmrf(g->n[victim].dir), 0);
		node_spawn(g, victim);
		break;
	case NFAULTS:
		break;
	}
	clients_progress(10, "after the round's fault");
	clients_pause();
	unsigned lost = check_ledger(g, round);
	ck_assert_uint_eq(lost, 0);
	check_identical(g, round);
	fprintf(stderr, "round %u: %s (node %u)%s ok, %u acknowledged so far\n", round,
		fault_name[f], victim + 1, wipe ? ", its data wiped," : "", total_acks());
}

START_TEST(replication_rounds_lose_no_acknowledged_write)
{
	struct group g;
	const char *env = getenv("KV_REPL_ROUNDS");
	unsigned rounds = env && *env ? (unsigned)atoi(env) : 21, done = 0;
	uint64_t rng = seed;
	group_start(&g, ",snapshot_entries=64");
	clients_start(&g);
	for (unsigned r = 0; r < rounds; r++) {
		/* once per run, the killed follower comes back with an empty data directory */
		run_round(&g, r, &rng, r % NFAULTS == KILL_FOLLOWER_IN_BURST && r == 5);
		done++;
	}
	clients_stop();
	printf("replication rounds: %u\n", done);
	printf("acked lost: 0\n");
	fflush(stdout);
	group_fini(&g);
}
END_TEST

/* PUT keyK valueK on a session, which must say OK. */
static void session_put_numbered(int fd, unsigned k)
{
	char cmd[64], reply[256];
	snprintf(cmd, sizeof(cmd), "PUT key%u value%u", k, k);
	ck_assert_int_eq(session_cmd(fd, cmd, reply, sizeof(reply), REPLY_MS), 0);
	ck_assert_str_eq(reply, "OK");
}

START_TEST(a_node_whose_data_directory_is_wiped_rejoins_and_catches_up)
{
	struct group g;
	char reply[256];
	unsigned l = group_start(&g, ",snapshot_entries=16"), w = (l + 1) % NODES;
	int fd = session_open(&g, l);
	for (unsigned k = 0; k < 100; k++)
		session_put_numbered(fd, k);
	node_kill(&g, w);
	ck_assert_int_eq(tu_rmrf(g.n[w].dir), 0);
	/* 100 more, and more until the others have dropped the start of their logs (twice), so that
	 * only a copy of a store can help: raft writes its snapshots in the background, so how far
	 * they got after a number of writes is up to the disk; the test waits for it */
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	for (unsigned k = 100; k < 200 || stat_of(&g, l, "snapshot_index") <= 16; k++) {
		ck_assert_msg(tu_now_ms() < until, "after %u writes the leader's raft snapshot is at "
			      "%" PRId64, k, stat_of(&g, l, "snapshot_index"));
		session_put_numbered(fd, k);
	}
	close(fd);
	node_spawn(&g, w);
	check_identical(&g, 0);
	ck_assert_int_ge(stat_of(&g, w, "installs"), 1);
	ck_assert_int_eq(ask(&g, w, "GET key150", reply, sizeof(reply)), 0);
	ck_assert_str_eq(reply, "value150");
	group_fini(&g);
}
END_TEST

START_TEST(a_follower_refuses_writes_naming_the_leader)
{
	struct group g;
	char reply[256], want[128];
	unsigned l = group_start(&g, "");
	/* An election in between (a stall of the loaded machine past the election timeout) moves
	 * the leader: then the questions are asked again of the new one's follower. A wrong answer
	 * while the term stayed the same fails the test. */
	uint64_t until = tu_now_ms() + DEADLINE_MS;
	for (int64_t term = stat_of(&g, l, "term");;) {
		unsigned f = (l + 1) % NODES, now;
		snprintf(want, sizeof(want), "ERR not leader; leader is %u 127.0.0.1:%u", l + 1,
			 g.n[l].port);
		if (ask(&g, f, "PUT k v", reply, sizeof(reply)) == 0 && !strcmp(reply, want) &&
		    ask(&g, f, "FLUSH", reply, sizeof(reply)) == 0 && !strcmp(reply, want) &&
		    ask(&g, f, "LEADER", reply, sizeof(reply)) == 0 &&
		    !strcmp(reply, want + strlen("ERR not leader; leader is ")))
			break;
		ck_assert_int_eq(group_ready(&g, &now), 0);
		int64_t later = stat_of(&g, now, "term");
		ck_assert_msg(later > term, "node %u answered '%s' in term %" PRId64 " (the leader: "
			      "node %u)", f + 1, reply, term, l + 1);
		ck_assert_msg(tu_now_ms() < until, "the leader kept changing for %d ms", DEADLINE_MS);
		l = now;
		term = later;
	}
	group_fini(&g);
}
END_TEST

START_TEST(a_leader_that_lost_its_majority_stops_acknowledging)
{
	struct group g;
	char reply[256];
	unsigned l = group_start(&g, "");
	int fd = session_open(&g, l);
	ck_assert_int_eq(session_cmd(fd, "PUT before ok", reply, sizeof(reply), REPLY_MS), 0);
	ck_assert_str_eq(reply, "OK");
	for (unsigned i = 0; i < NODES; i++)
		if (i != l)
			node_kill(&g, i);
	/* never OK: it cannot commit; it says so once it notices (or its timeout passes) */
	ck_assert_int_eq(session_cmd(fd, "PUT after lonely", reply, sizeof(reply), REPLY_MS), 0);
	ck_assert_msg(!strncmp(reply, "ERR ", 4), "a write without a majority was answered '%s'",
		      reply);
	ck_assert_int_eq(session_cmd(fd, "FLUSH", reply, sizeof(reply), REPLY_MS), 0);
	ck_assert_msg(!strncmp(reply, "ERR ", 4), "FLUSH without a majority was answered '%s'",
		      reply);
	close(fd);
	for (unsigned i = 0; i < NODES; i++)
		if (i != l)
			node_spawn(&g, i);
	group_fini(&g);
}
END_TEST

/* ---- starting a node: every bad input is one clear line and changes nothing ---------------- */

static void start_fails(const char *opts, const char *dir, const char *want)
{
	const char *kv_cli = getenv("KV_CLI");
	char *err = NULL;
	int status;
	const char *argv[] = { kv_cli, "-o", opts, dir, NULL };
	ck_assert_int_eq(tu_run(argv, "", NULL, &err, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "kv_cli -o %s started", opts);
	ck_assert_msg(strstr(err, want) != NULL, "stderr '%s' does not say '%s'", err, want);
	free(err);
}

START_TEST(a_node_with_bad_options_or_files_says_why_and_does_not_start)
{
	char root[256], cluster[512], bad[512], opts[1200], dir[600], store[700];
	ck_assert_int_eq(tu_tmpdir(root, sizeof(root)), 0);
	snprintf(cluster, sizeof(cluster), "%s/cluster", root);
	snprintf(bad, sizeof(bad), "%s/bad", root);
	snprintf(dir, sizeof(dir), "%s/node", root);
	ck_assert_int_eq(tu_write_file(cluster, "1 127.0.0.1:1\n2 127.0.0.1:2\n", 28), 0);
	ck_assert_int_eq(tu_write_file(bad, "1 127.0.0.1:1\n2 nohost:2\n", 25), 0);

	snprintf(opts, sizeof(opts), "cluster=%s", cluster);
	start_fails(opts, dir, "cluster= needs node=ID");
	start_fails("node=1", dir, "node= needs cluster=FILE");
	snprintf(opts, sizeof(opts), "cluster=%s/missing,node=1", root);
	start_fails(opts, dir, "No such file or directory");
	snprintf(opts, sizeof(opts), "cluster=%s,node=1", bad);
	start_fails(opts, dir, "line 2: host 'nohost' is not an IPv4 address");
	snprintf(opts, sizeof(opts), "cluster=%s,node=7", cluster);
	start_fails(opts, dir, "has no node 7");
	/* nothing was made for any of them */
	ck_assert_int_eq(access(dir, F_OK), -1);
	/* a plain store is not a node's directory */
	snprintf(store, sizeof(store), "%s/plain", root);
	{
		const char *argv[] = { getenv("KV_CLI"), store, "PUT", "k", "v", NULL };
		int status;
		ck_assert_int_eq(tu_run(argv, "", NULL, NULL, &status), 0);
		ck_assert_int_eq(WEXITSTATUS(status), 0);
	}
	snprintf(opts, sizeof(opts), "cluster=%s,node=1", cluster);
	start_fails(opts, store, "not a node's directory");
	start_fails("cluster=x,node=1,election_ms=1", dir, "election_ms=1");
	/* its port taken by someone else */
	{
		struct sockaddr_in sa = { .sin_family = AF_INET };
		socklen_t len = sizeof(sa);
		char text[64], busy[512];
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		ck_assert_int_eq(listen(fd, 1), 0);
		ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
		snprintf(text, sizeof(text), "1 127.0.0.1:%u\n", ntohs(sa.sin_port));
		snprintf(busy, sizeof(busy), "%s/busy", root);
		ck_assert_int_eq(tu_write_file(busy, text, strlen(text)), 0);
		snprintf(opts, sizeof(opts), "cluster=%s,node=1", busy);
		start_fails(opts, dir, "address already in use");
		close(fd);
	}
	ck_assert_int_eq(tu_rmrf(root), 0);
}
END_TEST

int main(void)
{
	seed = tu_seed();
	Suite *su = suite_create("replication");
	TCase *tc = tcase_create("rounds");
	tcase_set_timeout(tc, 1800);
	tcase_add_test(tc, replication_rounds_lose_no_acknowledged_write);
	suite_add_tcase(su, tc);
	tc = tcase_create("group");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, a_node_whose_data_directory_is_wiped_rejoins_and_catches_up);
	tcase_add_test(tc, a_follower_refuses_writes_naming_the_leader);
	tcase_add_test(tc, a_leader_that_lost_its_majority_stops_acknowledging);
	tcase_add_test(tc, a_node_with_bad_options_or_files_says_why_and_does_not_start);
	suite_add_tcase(su, tc);
	return tu_run_suite(su);
}
