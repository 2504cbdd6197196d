/* kvcmd.h — kv_cli's protocol: parse one command (a line of the shell, or one-shot arguments)
 * and answer it from a store. Both ways of giving a command end in the same struct kvcmd, and
 * every reply is written by kvcmd_run, so the shell, one-shot mode and any later server of the
 * protocol answer alike.
 *
 * Replies (README.md, "kv_cli"): one line each, except LIST, whose first line is the number n
 * of keys listed and whose next n lines are the keys, and STATS, whose first line is the number
 * n of "name: value" lines that follow (the control file's text; STATS JSON: one line). A key or value is written plain or quoted
 * as kvquote.h says (always plain under raw). Errors are one line "ERR <reason>". */
#ifndef KVFS_KVCMD_H
#define KVFS_KVCMD_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kv.h"

enum kvcmd_op { KVCMD_PUT, KVCMD_GET, KVCMD_DEL, KVCMD_SIZE, KVCMD_SNAP, KVCMD_FLUSH,
		KVCMD_EXIT, KVCMD_LIST, KVCMD_LEADER, KVCMD_STATS, KVCMD_NOPS /* the number of commands */ };

/* A parsed command. Its strings point into what was parsed (the line, or the arguments and
 * scratch), so it lives as long as they do. */
struct kvcmd {
	enum kvcmd_op op;
	const char *key;   /* PUT GET DEL: the key; LIST: the prefix */
	size_t klen;
	const char *val;   /* PUT: the value; LIST: the key to list after (when has_after) */
	size_t vlen;
	uint64_t limit;    /* LIST: at most this many keys (UINT64_MAX: all) */
	int has_after;
	int json;          /* STATS JSON: one line, a JSON object */
};

/* The command word of op ("PUT"). */
const char *kvcmd_op_word(enum kvcmd_op op);

/* The command word, case-insensitive: 0 and *op, or -ENOENT when word is none. */
int kvcmd_lookup(const char *word, size_t len, enum kvcmd_op *op);

/* Parses one line of the shell (without its newline), decoding quoted strings in place.
 * overlong: the line was cut to its first len bytes because it was longer than any valid command.
 * 0, or -EINVAL with the reason for the ERR reply in err. */
int kvcmd_parse_line(struct kvcmd *c, char *line, size_t len, int overlong, char *err,
		     size_t errlen);

/* Parses one-shot arguments: argv[0] the command word, then its arguments, each one token (spaces
 * and all, so no quoting is needed for them; one that begins with '"' is decoded as quoted).
 * PUT's value is the arguments after the key joined by single spaces. Decoding happens in place in
 * argv's strings, and the joined value is malloc'd into *scratch (free it after the command).
 * 0, or -EINVAL with the reason in err. */
int kvcmd_parse_args(struct kvcmd *c, int argc, char **argv, char **scratch, char *err,
		     size_t errlen);

enum kvcmd_result {
	KVCMD_REPLIED,     /* answered, not with ERR */
	KVCMD_REPLIED_ERR, /* answered ERR */
	KVCMD_DO_EXIT,     /* EXIT: nothing written; the caller closes the store and replies */
};

/* Answers c from kv on out, flushing out after the reply. raw: keys and values plain, always.
 * Returns an enum kvcmd_result, or -errno when out could not be written (the caller stops). */
int kvcmd_run(struct kv *kv, const struct kvcmd *c, FILE *out, int raw);

/* The same for a node of a replicated group (docs/REPLICATION.md; kvcmd_repl.c): writes (PUT,
 * DEL, FLUSH) go through raft and are answered OK once committed on a majority (on a follower:
 * "ERR not leader; leader is ID HOST:PORT"); reads, SIZE and SNAP use this node's own store,
 * whose keys under "/raft/" (replication's own) are neither listed nor counted nor writable;
 * LEADER and STATS say what raft knows. */
struct repl;
int kvcmd_run_repl(struct repl *r, const struct kvcmd *c, FILE *out, int raw);

/* The pieces kvcmd_run is made of, for kvcmd_run_repl; each returns what kvcmd_run does. */
#define KVCMD_STAT_LINE 160
/* STATS: a count line, the extra lines (replication's), then the store's (kv may be NULL). */
int kvcmd_stats(FILE *out, struct kv *kv, const char (*extra)[KVCMD_STAT_LINE], unsigned nextra);
/* "name: value" lines as one JSON object on one line (STATS JSON). */
void kvcmd_stats_json(FILE *out, const char *text, size_t len);
int kvcmd_reply_err(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3), nonnull(1, 2)));
int kvcmd_reply_ok(FILE *out, const char *text);
int kvcmd_get(struct kv *kv, const struct kvcmd *c, FILE *out, int raw);
/* LIST, leaving out the keys that begin with hide (NULL: none). */
int kvcmd_list(struct kv *kv, const struct kvcmd *c, FILE *out, int raw, const char *hide);
/* SNAP: a checkpoint of kv. */
int kvcmd_snap(struct kv *kv, FILE *out);

/* Writes one reply line (printf-style, newline added) and flushes: 0 or -errno of out. */
int kvcmd_reply(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3), nonnull(1, 2)));
#endif
