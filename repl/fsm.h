/* fsm.h — the replicated state machine: the node's kv store, which raft's committed entries
 * are applied to, and the snapshot and restore steps that keep raft's log short and bring a
 * lagging or new node up to date (docs/REPLICATION.md).
 *
 * The node directory holds the store in store/ (and, briefly, a copy being installed in
 * incoming/). Every entry is applied with kv_apply in one batch together with its raft index
 * under the key REPL_APPLIED_KEY, so the store itself says which entries it holds: after a
 * crash raft replays its log and the entries at or below that index are skipped. Raft's log is
 * the durable copy of the entries, so the store may run with sync=none; a raft snapshot at index
 * I is only taken once the store is durable through I (a kv_flush in the snapshot step).
 *
 * An entry that carries a build term (entry.h) other than its own raft term is refused: nothing
 * of its batch is applied, on every node alike (rfsm_result_refused).
 *
 * A snapshot is a manifest (entry.h: the node holding the data, the index); the store itself
 * travels out of band. Restoring one the store does not already cover fetches a copy through
 * rfsm_options.fetch into incoming/, checks it, and swaps it in (close, exchange the directories,
 * reopen) before returning; until a copy is had it retries once a second, holding raft's thread.
 *
 * Threads: apply, snapshot and restore run on raft's thread (raft calls them); rfsm_pin,
 * rfsm_copy and rfsm_stats may be called from any thread. */
#ifndef KVFS_REPL_FSM_H
#define KVFS_REPL_FSM_H
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

#define REPL_APPLIED_KEY "/raft/applied" /* a key the mounted tree never shows (FORMAT.md 10) */
#define REPL_INTERNAL_PREFIX "/raft/"

struct raft;
struct raft_fsm;
struct rfsm;

struct rfsm_options {
	uint64_t self;            /* this node's ID, named as holder in the snapshots it takes */
	struct kv_options store;  /* for opening the store */
	/* Copy a store that holds every entry up to min_index into dest (an empty directory that
	 * exists), from holder if it can, else from another node; durable when it returns. 0, or
	 * -errno with the reason in err. Runs on raft's thread. */
	int (*fetch)(void *arg, uint64_t holder, uint64_t min_index, const char *dest, char *err,
		     size_t errlen);
	void *fetch_arg;
	unsigned retry_ms;        /* between fetch attempts; 0: 1000 */
	/* What an operator must know (the store failed, a copy is being installed, a fetch
	 * failed): one line at a time. NULL: stderr. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
	/* An entry was applied to the store: its raft index and its batch (a record payload, as
	 * rfsm_batch_keys reads it). On raft's thread, after the store has it. NULL: nobody. */
	void (*applied)(void *arg, uint64_t index, const void *batch, uint64_t len);
	/* An installed copy replaces the store: called with NULL before the store is closed, and
	 * with the new store (NULL when it did not reopen) once the store's lock is released. A
	 * caller that reads the store without rfsm_pin (the mounted tree) stops reading at the
	 * first call and goes on with the second's. On raft's thread. NULL: nobody. */
	void (*swap)(void *arg, struct kv *kv);
	void *hook_arg;
};

/* Calls fn with the key of every operation of a batch's bytes (and a rename's new key or
 * prefix): 0, or -EBADMSG when the bytes are no batch. */
int rfsm_batch_keys(const void *batch, uint64_t len,
		    void (*fn)(void *arg, const void *key, size_t klen), void *arg);

/* Opens (creating when missing) the store in node_dir/store after finishing or undoing an
 * install a crash interrupted. rep: the store's recovery report (may be NULL). */
int rfsm_open(struct rfsm **out, const char *node_dir, const struct rfsm_options *o,
	      struct kv_report *rep);
/* The raft instance that applies entries to it (entries are numbered by its last_applied). */
void rfsm_bind(struct rfsm *f, struct raft *r);
struct raft_fsm *rfsm_fsm(struct rfsm *f);
/* The store, held against an install swapping it, until rfsm_unpin. NULL when it could not be
 * reopened after a swap (then rfsm_stats says why). */
struct kv *rfsm_pin(struct rfsm *f);
void rfsm_unpin(struct rfsm *f);
/* For a node that asks for the data: a copy of the store (kv_backup) into dest, which must be
 * missing or empty; *index the raft index it holds at least. -ESTALE when the store holds less
 * than min_index. */
int rfsm_copy(struct rfsm *f, uint64_t min_index, const char *dest, uint64_t *index);
/* 1 when raft's apply result says the first operation's key was absent (ENTRY_REPORT_ABSENT). */
int rfsm_result_absent(const void *result);
/* 1 when raft's apply result says the entry was refused, nothing of its batch applied: its
 * build term (entry.h) is not the term of the entry itself, i.e. the proposer read the store in
 * an earlier leadership than the one that appended it, and another leader may have changed the
 * store in between. Every node refuses it alike (the store's applied index still moves on). */
int rfsm_result_refused(const void *result);
/* Stop waiting: a restore retrying its fetch gives up (the node is stopping). */
void rfsm_interrupt(struct rfsm *f);

struct rfsm_stats {
	uint64_t applied;      /* the raft index the store holds everything up to */
	uint64_t skipped;      /* entries replayed that the store already held */
	uint64_t snapshots;    /* raft snapshots taken (the store made durable for each) */
	uint64_t installs;     /* copies of another node's store swapped in */
	uint64_t refused;      /* entries refused for their build term (rfsm_result_refused) */
	int error;             /* the store failed applying (negative errno): nothing more is
				* applied until the node restarts */
};
void rfsm_stats(struct rfsm *f, struct rfsm_stats *st);
/* Closes the store: its result. */
int rfsm_close(struct rfsm *f);
#endif
