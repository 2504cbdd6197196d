/* repl.h — a node of a replicated kvfs group: one store kept the same on every node named in a
 * cluster file, by canonical raft (docs/REPLICATION.md).
 *
 * Writes go to the leader: repl_propose appends the batch to raft's log and returns once a
 * majority has it durably and this node has applied it. Reads are served from this node's own
 * store (repl_pin) and may lag the leader. The node directory holds store/ (the kv store) and
 * raft/ (raft's log, metadata and snapshots); see fsm.h for how the two are kept in step.
 *
 * Threads: raft runs on a thread of its own (a libuv loop); every function here may be called
 * from any thread and blocks on a condition variable while that thread does the work, except
 * repl_stop, which must be the last call. */
#ifndef KVFS_REPL_REPL_H
#define KVFS_REPL_REPL_H
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

#define REPL_REPORT_ABSENT 0x1u /* repl_propose: say whether the first op's key was absent */
/* repl_propose: the caller makes the change known on this node itself (the mount answers the
 * kernel), so options.changed is not called for it here; other nodes are told as always. A
 * proposal that returns -ETIMEDOUT (it may still land) is announced like anyone else's. */
#define REPL_QUIET 0x2u

struct repl;

struct repl_options {
	const char *cluster_file;   /* the group: one line `ID HOST:PORT` per node (cluster.h) */
	uint64_t node;              /* this node's ID in it */
	unsigned election_ms;       /* raft's election timeout (1x..2x, randomized); heartbeats
				     * every tenth of it. Default 1000 */
	unsigned snapshot_entries;  /* a raft snapshot every this many entries; default 1024 */
	unsigned write_timeout_ms;  /* the longest a write waits for its commit; default 10000 */
	uint64_t max_write;         /* the largest batch one entry may carry; default 4 MiB */
	int store_sync_set;         /* the store's sync= was given; else the node uses sync=none
				     * (raft's log is the durable copy) */
	struct kv_options store;    /* the node's store */
	/* What an operator must know: a failed store, a copy installed or wanted, raft stopping.
	 * NULL: stderr. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
	/* A client connected to this node's port (mux.h, "KVCLI01\n" already read): fd is theirs.
	 * Called on raft's thread; hand it to a thread of the caller's. NULL: refused. */
	void (*client)(void *arg, int fd);
	void *client_arg;
	/* An entry changed key on this node's store (called for each key of each applied entry,
	 * a rename's new name too, except for this node's own REPL_QUIET proposals). On raft's
	 * thread, after the store has it; it must not wait for anything that waits for raft.
	 * NULL: nobody. */
	void (*changed)(void *arg, const void *key, size_t klen);
	void *changed_arg;
	/* A copy of another node's store replaces this one's: called with NULL before it is
	 * closed, then with the new store (NULL: it did not reopen; the node stops applying). A
	 * reader that keeps the store without repl_pin stops using it at the first call. On
	 * raft's thread. NULL: nobody. */
	void (*swap)(void *arg, struct kv *kv);
	void *swap_arg;
};

void repl_options_default(struct repl_options *o);
/* Replication's options, for the programs' --help (the store's are kv_option_table). */
const struct kv_option_desc *repl_option_table(size_t *n);
/* "name=value[,name=value...]": replication's names into o, every other one into o->store as
 * kv_options_parse takes them. -EINVAL with the reason in err. May be called repeatedly. */
int repl_options_parse(struct repl_options *o, const char *opts, char *err, size_t errlen);
/* Frees what repl_options_parse allocated (the cluster file's name). */
void repl_options_release(struct repl_options *o);

/* Why a node did not start: data, put into words by mount/report.c. */
enum repl_problem {
	REPL_PROBLEM_NONE,
	REPL_PROBLEM_OPTIONS,  /* cluster= without node=, or the reverse (detail) */
	REPL_PROBLEM_CLUSTER,  /* the cluster file cannot be read or parsed (err, detail) */
	REPL_PROBLEM_NODE,     /* node= is not in the cluster file */
	REPL_PROBLEM_DIR,      /* the directory cannot be made (err), or holds something that is
				* no part of a node (detail: its name) */
	REPL_PROBLEM_STORE,    /* the node's store did not open (store: its report; err) */
	REPL_PROBLEM_RAFT,     /* raft did not start (detail: raft's message; err) */
};

struct repl_report {
	enum repl_problem problem;
	int err;
	char detail[512];
	struct kv_report store;
};

/* Starts node o->node of the group in o->cluster_file, its data in dir (created 0700 when
 * missing). A node's first start bootstraps raft with every node of the file. Returns once raft
 * runs (a node that must first fetch a copy of the store waits for it). */
int repl_start(struct repl **out, const char *dir, const struct repl_options *o,
	       struct repl_report *rep);

/* Replicates batch b: 0 once it is committed (durable on a majority) and applied here. *absent
 * (may be NULL) with REPL_REPORT_ABSENT: the first operation's key did not exist when it was
 * applied. term: 0 when b depends on nothing read from the store (a plain PUT or DEL); else
 * the term repl_writable gave before the caller read what it built b from, and b is applied
 * only if raft appends it in that same term (every node checks it, fsm.h): a caller that lost
 * leadership and won it again between its read and this call gets -ESTALE, so a batch built
 * on a store another leader has changed since never lands. Errors, and what they say about
 * the write:
 *   -EROFS         this node is not the leader: nothing was written
 *   -ESTALE        term is not the term it was (or would have been) appended in: nothing was
 *                  written, on any node
 *   -EFBIG         larger than max_write: nothing was written
 *   -ECONNABORTED  leadership was lost before it committed: it may still commit, or not
 *   -ETIMEDOUT     not committed within write_timeout_ms: it may still commit, or not
 *   -ESHUTDOWN     the node is stopping: it may still commit, or not
 *   -EIO           this node's store failed (repl_stats' store_error): it may still commit
 *                  on the others, or not
 *   other          a local failure (-ENOMEM): it may still commit, or not */
int repl_propose(struct repl *r, const struct kv_batch *b, unsigned flags, uint64_t term,
		 int *absent);
/* 0 once every write this leader acknowledged or still has in flight before the call is
 * committed, i.e. durable on a majority; the same errors as repl_propose. */
int repl_flush(struct repl *r);

/* This node's store, for reading (and for a local checkpoint), held against a swap until
 * repl_unpin. NULL when the store failed (repl_stats says why). */
struct kv *repl_pin(struct repl *r);
void repl_unpin(struct repl *r);

/* 1 when a write proposed now would be taken: this node leads and its store holds every
 * entry committed before its leadership (so what it reads to build a write is current). *term
 * (may be NULL): raft's term as of the same moment, the one to give repl_propose for a batch
 * built from what is read after this call. */
int repl_writable(struct repl *r, uint64_t *term);

/* The leader as this node last heard: its ID and HOST:PORT from the cluster file. -ENOENT when
 * none is known (an election is on, or this node is cut off). */
int repl_leader(struct repl *r, uint64_t *id, char *addr, size_t addrlen);

enum repl_role { REPL_UNAVAILABLE, REPL_FOLLOWER, REPL_CANDIDATE, REPL_LEADER };
const char *repl_role_name(enum repl_role role);

struct repl_peer {
	uint64_t id;
	uint64_t match_index; /* the leader's view: entries the peer has durably (leader only) */
};

struct repl_stats {
	uint64_t node;
	enum repl_role role;
	uint64_t term;
	uint64_t leader;           /* 0: none known */
	uint64_t last_index;       /* raft's log */
	uint64_t commit_index;
	uint64_t applied_index;    /* raft's: entries handed to the store */
	uint64_t store_applied;    /* the store's own (REPL_APPLIED_KEY) */
	uint64_t snapshot_index;   /* raft's last snapshot */
	uint64_t snapshots, installs, skipped, refused; /* fsm.h */
	int store_error;           /* the store failed applying: the node stopped applying */
	unsigned npeers;
	struct repl_peer peers[9];
};
void repl_stats(struct repl *r, struct repl_stats *st);
/* The same as "name: value" lines (docs/REPLICATION.md lists them), malloc'd into *text (*len
 * bytes, NUL-terminated): kv_cli's STATS on a node and a mounted node's control file show them
 * before the store's. 0 or -ENOMEM. */
int repl_stats_text(struct repl *r, char **text, size_t *len);

/* Stops raft (a leader first hands leadership to a follower, waiting at most an election
 * timeout), waits for transfers in progress, closes the store: its result. */
int repl_stop(struct repl *r);
#endif
