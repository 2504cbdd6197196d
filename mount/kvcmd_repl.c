/* kvcmd_repl.c — kv_cli's protocol on a node of a replicated group (kvcmd.h, kvcmd_run_repl):
 * writes through raft, reads from the node's own store. Apart from kvcmd.c so that the protocol
 * alone (and its fuzz target) needs no raft. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "kvcmd.h"
#include "repl.h"

#define INTERNAL_PREFIX "/raft/" /* a node's own keys (repl/fsm.h REPL_INTERNAL_PREFIX) */

static int internal_key(const char *key, size_t klen)
{
	size_t plen = strlen(INTERNAL_PREFIX);
	return klen >= plen && memcmp(key, INTERNAL_PREFIX, plen) == 0;
}

/* A write through raft that did not return OK: what the client must know, above all whether it
 * may still take effect (REPLICATION.md section 4). */
static int reply_repl_error(struct repl *r, FILE *out, int rc)
{
	struct repl_stats st;
	char addr[64];
	uint64_t id;

	switch (rc) {
	case -EROFS:
		if (repl_leader(r, &id, addr, sizeof(addr)) == 0)
			return kvcmd_reply_err(out, "not leader; leader is %" PRIu64 " %s", id, addr);
		return kvcmd_reply_err(out, "not leader; no leader known (an election is on, or this "
				       "node is cut off)");
	case -ECONNABORTED:
		return kvcmd_reply_err(out, "leadership lost before the write committed; it may or "
				       "may not take effect");
	case -ETIMEDOUT:
		return kvcmd_reply_err(out, "no majority acknowledged the write in time; it may or "
				       "may not take effect");
	case -ESHUTDOWN:
		return kvcmd_reply_err(out, "the node is stopping; the write may or may not take "
				       "effect");
	case -EFBIG:
		return kvcmd_reply_err(out, "too large for one replicated write");
	case -EIO:
		repl_stats(r, &st);
		if (st.store_error)
			return kvcmd_reply_err(out, "this node's store failed (%s); the write may or "
					       "may not take effect on the others",
					       strerror(-st.store_error));
		return kvcmd_reply_err(out, "%s; the write may or may not take effect",
				       strerror(-rc));
	default:
		return kvcmd_reply_err(out, "%s; the write may or may not take effect",
				       strerror(-rc));
	}
}

/* Keys in the store that are replication's own (they sort together). */
static int count_internal(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
			  size_t mlen)
{
	uint64_t *n = arg;
	(void)size;
	(void)meta;
	(void)mlen;
	if (!internal_key(key, klen))
		return 1;
	(*n)++;
	return 0;
}

/* Replication's STATS lines (repl_stats_text), then the store's (the control file's): a count
 * line and the lines, or with JSON one object of the same names and values. */
static int run_stats(struct repl *r, struct kv *kv, const struct kvcmd *c, FILE *out)
{
	char *rtext = NULL, *stext = NULL;
	size_t rlen = 0, slen = 0, lines = 0;
	int rc = repl_stats_text(r, &rtext, &rlen);

	if (rc == 0 && kv)
		rc = kvfs_control_render(kv, &stext, &slen);
	if (rc) {
		free(rtext);
		return kvcmd_reply_err(out, "%s", strerror(-rc));
	}
	if (c->json) {
		char *all = malloc(rlen + slen + 1);

		if (!all) {
			free(rtext);
			free(stext);
			return kvcmd_reply_err(out, "%s", strerror(ENOMEM));
		}
		memcpy(all, rtext, rlen);
		if (slen)
			memcpy(all + rlen, stext, slen);
		kvcmd_stats_json(out, all, rlen + slen);
		free(all);
	} else {
		for (size_t i = 0; i < rlen; i++)
			lines += rtext[i] == '\n';
		for (size_t i = 0; i < slen; i++)
			lines += stext[i] == '\n';
		fprintf(out, "%zu\n", lines);
		fwrite(rtext, 1, rlen, out);
		if (slen)
			fwrite(stext, 1, slen, out);
	}
	free(rtext);
	free(stext);
	errno = 0;
	if (fflush(out) == EOF || ferror(out))
		return errno ? -errno : -EIO;
	return KVCMD_REPLIED;
}

/* GET, LIST, SIZE, SNAP and STATS against this node's own store. */
static int run_local(struct repl *r, const struct kvcmd *c, FILE *out, int raw)
{
	struct kv *kv = repl_pin(r);
	struct kv_stats st;
	uint64_t internal = 0;
	int rc;

	if (!kv && c->op != KVCMD_STATS) {
		repl_unpin(r);
		return kvcmd_reply_err(out, "this node's store failed; restart the node");
	}
	switch (c->op) {
	case KVCMD_GET:
		rc = kvcmd_get(kv, c, out, raw);
		break;
	case KVCMD_LIST:
		rc = kvcmd_list(kv, c, out, raw, INTERNAL_PREFIX);
		break;
	case KVCMD_SIZE:
		kv_stats(kv, &st);
		rc = kv_scan(kv, INTERNAL_PREFIX, strlen(INTERNAL_PREFIX), count_internal, &internal);
		if (rc < 0)
			rc = kvcmd_reply_err(out, "%s", strerror(-rc));
		else if ((rc = kvcmd_reply(out, "%" PRIu64, st.keys - internal)) == 0)
			rc = KVCMD_REPLIED;
		break;
	case KVCMD_SNAP:
		rc = kvcmd_snap(kv, out);
		break;
	default:
		rc = run_stats(r, kv, c, out);
		break;
	}
	repl_unpin(r);
	return rc;
}

int kvcmd_run_repl(struct repl *r, const struct kvcmd *c, FILE *out, int raw)
{
	struct kv_batch *b = NULL;
	char addr[64];
	uint64_t id;
	int rc, absent = 0;

	switch (c->op) {
	case KVCMD_PUT:
	case KVCMD_DEL:
		if (internal_key(c->key, c->klen))
			return kvcmd_reply_err(out, "keys under %s are replication's own",
					       INTERNAL_PREFIX);
		rc = kv_batch_new(&b);
		if (rc == 0)
			rc = c->op == KVCMD_PUT ?
				kv_batch_put(b, c->key, c->klen, NULL, 0, c->val, c->vlen) :
				kv_batch_del(b, c->key, c->klen);
		if (rc) {
			kv_batch_free(b);
			return kvcmd_reply_err(out, "%s", strerror(-rc));
		}
		/* term 0: a PUT or DEL reads nothing before it writes (DEL's "(nil)" is decided
		 * when it is applied), so no later leadership can make it stale */
		rc = repl_propose(r, b, c->op == KVCMD_DEL ? REPL_REPORT_ABSENT : 0, 0, &absent);
		kv_batch_free(b);
		if (rc)
			return reply_repl_error(r, out, rc);
		return kvcmd_reply_ok(out, absent ? "(nil)" : "OK");
	case KVCMD_FLUSH:
		rc = repl_flush(r);
		return rc ? reply_repl_error(r, out, rc) : kvcmd_reply_ok(out, "OK");
	case KVCMD_LEADER:
		if (repl_leader(r, &id, addr, sizeof(addr)) == 0) {
			rc = kvcmd_reply(out, "%" PRIu64 " %s", id, addr);
			return rc ? rc : KVCMD_REPLIED;
		}
		return kvcmd_reply_ok(out, "(nil)");
	case KVCMD_GET:
	case KVCMD_LIST:
	case KVCMD_SIZE:
	case KVCMD_SNAP:
	case KVCMD_STATS:
		return run_local(r, c, out, raw);
	case KVCMD_EXIT:
	case KVCMD_NOPS:
		break;
	}
	return KVCMD_DO_EXIT;
}
