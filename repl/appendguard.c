/* appendguard.c — a failed append of raft's log goes to the node, not to libraft (appendguard.h). */
#include "appendguard.h"

#include <errno.h>
#include <raft.h>
#include <stdlib.h>

struct appendguard {
	struct raft_io *io;
	int (*append)(struct raft_io *, struct raft_io_append *, const struct raft_entry[],
		      unsigned, raft_io_append_cb);
	void (*failed)(void *arg, int status);
	void *arg;
};

/* One append in the backend's hands: raft's request, answered when ours completes. */
struct guarded {
	struct raft_io_append ours;
	struct raft_io_append *raft;
	raft_io_append_cb cb;
	struct appendguard *g;
};

static _Thread_local struct appendguard *bound;

static void guarded_done(struct raft_io_append *req, int status)
{
	struct guarded *w = req->data;
	struct raft_io_append *raft = w->raft;
	raft_io_append_cb cb = w->cb;
	struct appendguard *g = w->g;

	free(w);
	if (status != 0 && status != RAFT_CANCELED)
		g->failed(g->arg, status); /* does not return on a node */
	if (cb)
		cb(raft, status);
}

static int guarded_append(struct raft_io *io, struct raft_io_append *req,
			  const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
	struct appendguard *g = bound;
	struct guarded *w;
	int rv;

	if (!g || g->io != io)
		return RAFT_IOERR; /* not the bound thread: cannot happen on raft's loop */
	w = malloc(sizeof(*w));
	if (!w)
		return RAFT_NOMEM;
	w->ours.data = w;
	w->raft = req;
	w->cb = cb;
	w->g = g;
	rv = g->append(io, &w->ours, entries, n, guarded_done);
	if (rv) /* refused at once: raft gets the error from the call, as without the guard */
		free(w);
	return rv;
}

int appendguard_new(struct appendguard **out, struct raft_io *io,
		    void (*failed)(void *arg, int status), void *arg)
{
	struct appendguard *g = calloc(1, sizeof(*g));

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->io = io;
	g->append = io->append;
	g->failed = failed;
	g->arg = arg;
	io->append = guarded_append;
	*out = g;
	return 0;
}

void appendguard_bind(struct appendguard *g)
{
	bound = g;
}

void appendguard_free(struct appendguard *g)
{
	if (bound == g)
		bound = NULL;
	free(g);
}
