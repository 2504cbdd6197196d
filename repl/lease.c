/* lease.c — a leader's read lease from its followers' answers (lease.h). */
#include "lease.h"

#include <errno.h>
#include <stdlib.h>

#define LEASE_MAX_NODES 9

struct lease {
	unsigned nodes, self;
	uint64_t length;
	uint64_t turn, prev_turn; /* when this and the previous turn of the loop began waiting */
	uint64_t heard[LEASE_MAX_NODES]; /* per node: the earliest its latest answer can be from */
};

int lease_new(struct lease **out, unsigned nodes, unsigned self, uint64_t length)
{
	struct lease *l;

	*out = NULL;
	if (nodes == 0 || nodes > LEASE_MAX_NODES || self >= nodes || length == 0)
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->nodes = nodes;
	l->self = self;
	l->length = length;
	*out = l;
	return 0;
}

void lease_free(struct lease *l)
{
	free(l);
}

void lease_reset(struct lease *l)
{
	for (unsigned i = 0; i < l->nodes; i++)
		l->heard[i] = 0;
}

void lease_turn(struct lease *l, uint64_t now)
{
	l->prev_turn = l->turn;
	l->turn = now;
}

void lease_heard(struct lease *l, unsigned node)
{
	/* read in this turn: it arrived after the previous turn began waiting, or that turn would
	 * have read it; when the follower heard what it answers is earlier still, by its own
	 * handling and the network's delay (the margin between length and the election timeout) */
	if (node < l->nodes && node != l->self && l->prev_turn > l->heard[node])
		l->heard[node] = l->prev_turn;
}

uint64_t lease_until(const struct lease *l)
{
	unsigned need = l->nodes / 2; /* answers besides this node's own for a majority */
	uint64_t peers[LEASE_MAX_NODES];
	unsigned n = 0;

	if (need == 0)
		return UINT64_MAX; /* a group of one: nobody else can lead */
	for (unsigned i = 0; i < l->nodes; i++) {
		if (i == l->self)
			continue;
		/* insertion, latest first */
		unsigned j = n++;
		for (; j > 0 && peers[j - 1] < l->heard[i]; j--)
			peers[j] = peers[j - 1];
		peers[j] = l->heard[i];
	}
	/* this node and the need latest answers are a majority, all heard after peers[need-1] */
	if (peers[need - 1] == 0)
		return 0;
	return peers[need - 1] + l->length;
}
