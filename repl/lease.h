/* lease.h — how long a leader may answer as the leader without asking the group again
 * (docs/REPLICATION.md 3.11; a15 FINDINGS 0b).
 *
 * A follower that heard from the leader at time t grants no vote (pre-vote or real) and starts
 * no election before t + the minimum election timeout (raft 4.2.3; libraft 0.15 rejects a vote
 * while it has a leader, and its timeout is randomized in 1x..2x election_ms). So while a
 * majority heard this leader after time T, no other leader exists before T + election_ms: a
 * leader whose majority answered after T may answer as the leader until T + length, with
 * length < election_ms. The leader's loop cannot see when a follower heard it, only when an
 * answer was read; an answer read during one turn of the loop arrived after the previous turn
 * began waiting (it would have been read then), so it counts from that earlier moment. A
 * process paused while it waits (SIGSTOP, a frozen VM) reads answers that sat in its socket
 * for the whole pause: they count from before the pause, and the lease has run out.
 *
 * Pure bookkeeping: the caller (raft's loop thread) passes the monotonic clock in, so a test
 * drives it with a clock of its own. Not thread-safe: one loop owns it. */
#ifndef KVFS_REPL_LEASE_H
#define KVFS_REPL_LEASE_H
#include <stdint.h>

struct lease;

/* For a group of `nodes` voters (at most 9), this node at index `self`; length in ns (> 0).
 * 0, -EINVAL or -ENOMEM. */
int lease_new(struct lease **out, unsigned nodes, unsigned self, uint64_t length);
void lease_free(struct lease *l);

/* A new leadership (or none): nothing heard counts any more. */
void lease_reset(struct lease *l);
/* The loop is about to wait for messages (a uv prepare handle): now on the monotonic clock. */
void lease_turn(struct lease *l, uint64_t now);
/* An answer of this leadership, in its term, from node index `node`, read in this turn. */
void lease_heard(struct lease *l, unsigned node);
/* Until when (monotonic ns) this node may answer as the leader; 0: not now. */
uint64_t lease_until(const struct lease *l);
#endif
