/* kvfs_cluster.h — kvfs as a node of a replicated group: `kvfs -o cluster=FILE,node=ID DATADIR
 * MNT` (docs/REPLICATION.md, "The mount"). The node's store is the tree's; every change of the
 * tree goes through raft on the leader (kvfs_writer), a follower's mount refuses changes with
 * EROFS, and entries applied from other nodes make the kernel forget what it cached of them.
 *
 * Used by mount/kvfs.c: options while parsing, then start, attach (once the tree exists),
 * detach (before the tree is freed), stop. */
#ifndef KVFS_MOUNT_KVFS_CLUSTER_H
#define KVFS_MOUNT_KVFS_CLUSTER_H
#include <stddef.h>

#include "kv.h"
#include "kvfs_fs.h"

struct kvfs_cluster;

/* One -o option: 1 when it is replication's alone (cluster=, node=, election_ms=, ...: kept in
 * *opts), 0 when it is not (sync= is kept too, and is the store's as well), -1 when it is
 * replication's and wrong (err says why). */
int kvfs_cluster_option(const char *opt, char **opts, char *err, size_t errlen);
/* Whether opts (NULL: none) ask for a node (cluster= or node= given). */
int kvfs_cluster_wanted(const char *opts);
/* A cache timeout the options did not give (no one types this). */
#define KVFS_TIMEOUT_UNSET (-1e300)
/* The cache timeouts that were not given (KVFS_TIMEOUT_UNSET): for a node's mount (node 1) 1 s, else
 * kvfs_config_default's (which trust the kernel's cache for a day: only a single writer's
 * mount may). */
void kvfs_cluster_config(struct kvfs_config *cfg, int node);

/* Starts the node in datadir with the store options kvo: *kv is its store, for the tree. log
 * gets the operator's lines (the store's and raft's). On failure, line says why (one line). */
int kvfs_cluster_start(struct kvfs_cluster **out, const char *datadir, const char *opts,
		       const struct kv_options *kvo, void (*log)(void *arg, const char *line),
		       void *log_arg, struct kv **kv, char *line, size_t linelen);
/* The tree's changes go through raft from now on; entries from other nodes reach fs; the
 * control file shows raft's lines before the store's. */
void kvfs_cluster_attach(struct kvfs_cluster *c, struct kvfs_fs *fs);
/* Nothing reaches fs any more (waits for a hook in progress). */
void kvfs_cluster_detach(struct kvfs_cluster *c);
/* Stops the node and closes its store: the result. c may be NULL. */
int kvfs_cluster_stop(struct kvfs_cluster *c);
#endif
