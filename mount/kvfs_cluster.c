/* kvfs_cluster.c — kvfs as a node of a replicated group (kvfs_cluster.h). The tree's writer is
 * raft: repl_propose for each change (REPL_QUIET: the kernel heard of it from the reply),
 * repl_flush for fsync and "flush", repl_writable for whether a change may start. Entries this
 * node did not make reach the tree through repl's changed hook (kvfs_fs_store_changed) and an
 * installed copy through its swap hook (kvfs_fs_store_pause/resume). */
#include "kvfs_cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "repl.h"
#include "report.h"

struct kvfs_cluster {
	struct repl *r;
	void (*log)(void *arg, const char *line);
	void *log_arg;
	/* fs while attached; held by a hook for as long as it uses fs (a swap: from its first
	 * call to its second), so detach waits for it */
	pthread_mutex_t mu;
	struct kvfs_fs *fs;
};

static int has_name(const char *opt, const char *name)
{
	size_t n = strlen(name);
	return strncmp(opt, name, n) == 0 && (opt[n] == '=' || opt[n] == '\0');
}

static int append(char **opts, const char *opt)
{
	size_t have = *opts ? strlen(*opts) : 0;
	char *n = realloc(*opts, have + strlen(opt) + 2);

	if (!n)
		return -ENOMEM;
	if (have)
		n[have++] = ',';
	strcpy(n + have, opt);
	*opts = n;
	return 0;
}

int kvfs_cluster_option(const char *opt, char **opts, char *err, size_t errlen)
{
	const struct kv_option_desc *t;
	struct repl_options o;
	size_t n;
	int ours = 0, rc;

	t = repl_option_table(&n);
	for (size_t i = 0; i < n && !ours; i++)
		ours = has_name(opt, t[i].name);
	if (!ours && !has_name(opt, "sync"))
		return 0;
	if (ours) {
		/* checked now, so a typo is a usage error before anything starts */
		repl_options_default(&o);
		rc = repl_options_parse(&o, opt, err, errlen);
		repl_options_release(&o);
		if (rc)
			return -1;
	}
	if (append(opts, opt)) {
		snprintf(err, errlen, "%s", strerror(ENOMEM));
		return -1;
	}
	return ours; /* sync= is the store's too: its parser takes it as well */
}

int kvfs_cluster_wanted(const char *opts)
{
	const char *p = opts;

	while (p && *p) {
		if (has_name(p, "cluster") || has_name(p, "node"))
			return 1;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

void kvfs_cluster_config(struct kvfs_config *cfg, int node)
{
	struct kvfs_config d;

	/* Another node's changes reach this kernel through notifications for the keys they name;
	 * what no key names (a spilled directory's entries, a whole installed copy) only through
	 * the timeouts, so a node's are short. */
	kvfs_config_default(&d);
	if (cfg->entry_timeout == KVFS_TIMEOUT_UNSET)
		cfg->entry_timeout = node ? 1 : d.entry_timeout;
	if (cfg->attr_timeout == KVFS_TIMEOUT_UNSET)
		cfg->attr_timeout = node ? 1 : d.attr_timeout;
	if (cfg->negative_timeout == KVFS_TIMEOUT_UNSET)
		cfg->negative_timeout = node ? 1 : d.negative_timeout;
}

/* ---- the writer ---------------------------------------------------------------------------- */

static int writer_apply(void *arg, const struct kv_batch *b, uint64_t epoch)
{
	struct kvfs_cluster *c = arg;
	int rc = repl_propose(c->r, b, REPL_QUIET, epoch, NULL);

	/* built from the store in an earlier leadership of this node: refused on every node, so
	 * nothing was made, which is what EROFS says to the tree and to the caller (10.1) */
	return rc == -ESTALE ? -EROFS : rc;
}

static int writer_flush(void *arg)
{
	struct kvfs_cluster *c = arg;
	int rc = repl_flush(c->r);

	/* Not the leader: this node has no change of its own in flight (those a lost leadership
	 * cut short failed), and everything it applied was committed, i.e. is on a majority. */
	return rc == -EROFS ? 0 : rc;
}

static int writer_writable(void *arg, uint64_t *epoch)
{
	struct kvfs_cluster *c = arg;
	return repl_writable(c->r, epoch);
}

/* ---- what other nodes change ---------------------------------------------------------------- */

static void changed(void *arg, const void *key, size_t klen)
{
	struct kvfs_cluster *c = arg;

	pthread_mutex_lock(&c->mu);
	if (c->fs)
		kvfs_fs_store_changed(c->fs, key, klen);
	pthread_mutex_unlock(&c->mu);
}

/* Before (kv NULL) and after an installed copy replaced the store. */
static void swap(void *arg, struct kv *kv)
{
	struct kvfs_cluster *c = arg;

	if (!kv) {
		pthread_mutex_lock(&c->mu); /* until the second call */
		if (c->fs)
			kvfs_fs_store_pause(c->fs);
		return;
	}
	if (c->fs)
		kvfs_fs_store_resume(c->fs, kv);
	pthread_mutex_unlock(&c->mu);
}

/* The copy did not reopen: swap was called with NULL twice. Nothing can serve the tree now
 * (every operation waits for a store that will not come); the node's raft log is durable, so
 * ending the process loses nothing, and a restart installs a copy again. */
static void swap_checked(void *arg, struct kv *kv)
{
	struct kvfs_cluster *c = arg;
	static _Thread_local int pending;

	if (!kv && pending) {
		c->log(c->log_arg, "the store did not reopen after installing another node's copy: "
		       "the daemon stops; unmount with 'fusermount3 -u' and start the node again");
		_exit(1);
	}
	pending = !kv;
	swap(arg, kv);
}

static int control_extra(void *arg, char **text, size_t *len)
{
	struct kvfs_cluster *c = arg;
	return repl_stats_text(c->r, text, len);
}

/* ---- the node ------------------------------------------------------------------------------- */

int kvfs_cluster_start(struct kvfs_cluster **out, const char *datadir, const char *opts,
		       const struct kv_options *kvo, void (*log)(void *arg, const char *line),
		       void *log_arg, struct kv **kv, char *line, size_t linelen)
{
	struct kvfs_cluster *c = calloc(1, sizeof(*c));
	struct repl_options ro;
	struct repl_report rep;
	char err[256] = "";
	int rc, sync_set;

	*out = NULL;
	*kv = NULL;
	if (!c) {
		snprintf(line, linelen, "%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	if (kvo->read_only) {
		/* raft writes the node's store whatever the mount does */
		snprintf(line, linelen, "-o ro is not for a node of a group: its store takes the "
			 "group's writes (a follower's mount refuses changes anyway)");
		rc = -EINVAL;
		goto fail_early;
	}
	c->log = log;
	c->log_arg = log_arg;
	repl_options_default(&ro);
	rc = repl_options_parse(&ro, opts, err, sizeof(err));
	if (rc) { /* checked while parsing the arguments: only ENOMEM is left */
		snprintf(line, linelen, "%s", err[0] ? err : strerror(-rc));
		goto fail;
	}
	sync_set = ro.store_sync_set;
	ro.store = *kvo; /* kvfs parsed the store's options, sync= among them */
	ro.store_sync_set = sync_set;
	ro.log = log;
	ro.log_arg = log_arg;
	ro.changed = changed;
	ro.changed_arg = c;
	ro.swap = swap_checked;
	ro.swap_arg = c;
	rc = repl_start(&c->r, datadir, &ro, &rep);
	if (rc) {
		report_repl_failure(&rep, datadir, ro.cluster_file, ro.node, rc, line, linelen);
		goto fail;
	}
	*kv = repl_pin(c->r); /* the pointer only: a swap tells the tree of the next one */
	repl_unpin(c->r);
	if (!*kv) {
		snprintf(line, linelen, "%s: the node's store failed; see the lines above", datadir);
		rc = -EIO;
		int src = repl_stop(c->r);
		if (src)
			log(log_arg, "stopping the node after its store failed: closing it failed too");
		goto fail;
	}
	repl_options_release(&ro);
	*out = c;
	return 0;
fail:
	repl_options_release(&ro);
fail_early:
	pthread_mutex_destroy(&c->mu);
	free(c);
	return rc;
}

void kvfs_cluster_attach(struct kvfs_cluster *c, struct kvfs_fs *fs)
{
	struct kvfs_writer w = {
		.apply = writer_apply,
		.flush = writer_flush,
		.writable = writer_writable,
		.arg = c,
	};

	kvfs_fs_set_writer(fs, &w);
	kvfs_control_set_extra(control_extra, c);
	pthread_mutex_lock(&c->mu);
	c->fs = fs;
	pthread_mutex_unlock(&c->mu);
}

void kvfs_cluster_detach(struct kvfs_cluster *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->fs = NULL;
	pthread_mutex_unlock(&c->mu);
	kvfs_control_set_extra(NULL, NULL);
}

int kvfs_cluster_stop(struct kvfs_cluster *c)
{
	int rc;

	if (!c)
		return 0;
	rc = repl_stop(c->r);
	pthread_mutex_destroy(&c->mu);
	free(c);
	return rc;
}
