/* cluster.h — the cluster file: which nodes make up a replicated group and where they listen.
 *
 *   # comment
 *   1 127.0.0.1:7001
 *   2 127.0.0.1:7002     # a comment may follow a node too
 *   3 127.0.0.1:7003
 *
 * One line per node, `ID HOST:PORT`: ID a whole number 1..2^63, HOST an IPv4 address in dotted
 * form (raft's TCP transport takes nothing else), PORT 1..65535. IDs and addresses are unique.
 * Every node of the group reads the same file; its order does not matter. */
#ifndef KVFS_REPL_CLUSTER_H
#define KVFS_REPL_CLUSTER_H
#include <stddef.h>
#include <stdint.h>

#define CLUSTER_MAX_NODES 9
#define CLUSTER_ADDR_MAX 24 /* "255.255.255.255:65535" and its NUL */

struct cluster_node {
	uint64_t id;
	char addr[CLUSTER_ADDR_MAX]; /* HOST:PORT, as written */
	char host[16];
	unsigned port;
};

struct cluster {
	unsigned n;
	struct cluster_node nodes[CLUSTER_MAX_NODES];
};

/* Parse the text of a cluster file (len bytes). 0, or -EINVAL with the reason in err, naming
 * the line: "line 3: port 70000 is out of range (1..65535)". */
int cluster_parse(struct cluster *c, const char *text, size_t len, char *err, size_t errlen);
/* Read and parse the file at path: -errno when it cannot be read (err says so too). */
int cluster_load(struct cluster *c, const char *path, char *err, size_t errlen);
/* The node with this id, or NULL. */
const struct cluster_node *cluster_find(const struct cluster *c, uint64_t id);
#endif
