/* opstats.c — per-operation counts and latencies (opstats.h).
 *
 * Each operation has a count, a sum and a maximum of its latencies, and a histogram of them by
 * powers of two (bucket b: latencies in [2^b, 2^(b+1)) ns; bucket 0 also holds 0). Every field is
 * an atomic updated with relaxed order: requests never wait for each other here, and a reader
 * adds up a histogram that may be a few operations ahead of the count it read, which a
 * percentile of a live counter tolerates. */
#include "opstats.h"

#include <stdatomic.h>
#include <time.h>

#define BUCKETS 64

struct counters {
	_Atomic uint64_t count, done, sum_ns, max_ns; /* started; finished and timed */
	_Atomic uint64_t hist[BUCKETS];
};

static struct counters ops[KVFS_OP_N];
static atomic_int active;

static const char *const names[KVFS_OP_N] = {
	[KVFS_OP_LOOKUP] = "lookup",
	[KVFS_OP_FORGET] = "forget",
	[KVFS_OP_GETATTR] = "getattr",
	[KVFS_OP_SETATTR] = "setattr",
	[KVFS_OP_READLINK] = "readlink",
	[KVFS_OP_MKNOD] = "mknod",
	[KVFS_OP_MKDIR] = "mkdir",
	[KVFS_OP_UNLINK] = "unlink",
	[KVFS_OP_RMDIR] = "rmdir",
	[KVFS_OP_SYMLINK] = "symlink",
	[KVFS_OP_RENAME] = "rename",
	[KVFS_OP_LINK] = "link",
	[KVFS_OP_OPEN] = "open",
	[KVFS_OP_READ] = "read",
	[KVFS_OP_WRITE] = "write",
	[KVFS_OP_RELEASE] = "release",
	[KVFS_OP_FSYNC] = "fsync",
	[KVFS_OP_OPENDIR] = "opendir",
	[KVFS_OP_READDIR] = "readdir",
	[KVFS_OP_READDIRPLUS] = "readdirplus",
	[KVFS_OP_RELEASEDIR] = "releasedir",
	[KVFS_OP_FSYNCDIR] = "fsyncdir",
	[KVFS_OP_STATFS] = "statfs",
	[KVFS_OP_SETXATTR] = "setxattr",
	[KVFS_OP_GETXATTR] = "getxattr",
	[KVFS_OP_LISTXATTR] = "listxattr",
	[KVFS_OP_REMOVEXATTR] = "removexattr",
	[KVFS_OP_CREATE] = "create",
	[KVFS_OP_FALLOCATE] = "fallocate",
};

void kvfs_opstats_start(void)
{
	atomic_store(&active, 1);
}

int kvfs_opstats_active(void)
{
	return atomic_load(&active);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t); /* cannot fail for this clock */
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

uint64_t kvfs_opstats_begin(enum kvfs_op op)
{
	atomic_fetch_add_explicit(&ops[op].count, 1, memory_order_relaxed);
	return now_ns();
}

static unsigned bucket_of(uint64_t ns)
{
	return ns ? 63u - (unsigned)__builtin_clzll(ns) : 0;
}

void kvfs_opstats_done(enum kvfs_op op, uint64_t t0)
{
	struct counters *c = &ops[op];
	uint64_t now = now_ns(), ns = now > t0 ? now - t0 : 0;
	uint64_t max = atomic_load_explicit(&c->max_ns, memory_order_relaxed);

	atomic_fetch_add_explicit(&c->done, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->hist[bucket_of(ns)], 1, memory_order_relaxed);
	while (ns > max && !atomic_compare_exchange_weak_explicit(&c->max_ns, &max, ns,
								   memory_order_relaxed,
								   memory_order_relaxed))
		; /* max now holds what another thread put there: retry while ours is larger */
}

void kvfs_opstats_get(enum kvfs_op op, struct kvfs_opstat *out)
{
	struct counters *c = &ops[op];
	uint64_t hist[BUCKETS], total = 0, seen = 0, done;
	unsigned b;

	out->count = atomic_load_explicit(&c->count, memory_order_relaxed);
	done = atomic_load_explicit(&c->done, memory_order_relaxed);
	out->mean_ns = done ? atomic_load_explicit(&c->sum_ns, memory_order_relaxed) / done : 0;
	out->max_ns = atomic_load_explicit(&c->max_ns, memory_order_relaxed);
	/* the sum may hold an operation that finished after done was read */
	if (out->mean_ns > out->max_ns)
		out->mean_ns = out->max_ns;
	out->p99_ns = 0;
	for (b = 0; b < BUCKETS; b++) {
		hist[b] = atomic_load_explicit(&c->hist[b], memory_order_relaxed);
		total += hist[b];
	}
	if (!total)
		return;
	/* the first bucket by which 99% of the operations are counted (rounded up: with fewer than
	 * 100 operations, the slowest one's) */
	for (b = 0; b < BUCKETS; b++) {
		seen += hist[b];
		if (seen * 100 >= total * 99)
			break;
	}
	out->p99_ns = b >= 63 ? UINT64_MAX : (2ull << b) - 1;
	if (out->p99_ns > out->max_ns && out->max_ns)
		out->p99_ns = out->max_ns; /* no operation took longer than the slowest */
}

const char *kvfs_opstats_name(enum kvfs_op op)
{
	return op < KVFS_OP_N ? names[op] : "?";
}
