/* kvcmd.c — kv_cli's protocol: parsing a command and answering it (kvcmd.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "control.h"
#include "kvcmd.h"
#include "kvquote.h"

static const struct {
	const char *name;
	enum kvcmd_op op;
} commands[] = {
	{ "PUT", KVCMD_PUT },     { "GET", KVCMD_GET },   { "DEL", KVCMD_DEL },
	{ "SIZE", KVCMD_SIZE },   { "SNAP", KVCMD_SNAP }, { "FLUSH", KVCMD_FLUSH },
	{ "EXIT", KVCMD_EXIT },   { "LIST", KVCMD_LIST }, { "LEADER", KVCMD_LEADER },
	{ "STATS", KVCMD_STATS },
};

static const char *op_name(enum kvcmd_op op)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (commands[i].op == op)
			return commands[i].name;
	return "?";
}

const char *kvcmd_op_word(enum kvcmd_op op)
{
	return op_name(op);
}

int kvcmd_lookup(const char *word, size_t len, enum kvcmd_op *op)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (len == strlen(commands[i].name) && strncasecmp(word, commands[i].name, len) == 0) {
			*op = commands[i].op;
			return 0;
		}
	return -ENOENT;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "unknown command 'X'", naming X only when it is short and prints as itself. */
static int unknown_command(const char *word, size_t len, char *err, size_t errlen)
{
	if (len <= 32 && !kvq_needs_quotes(word, len, KVQ_KEY))
		return fail(err, errlen, "unknown command '%.*s'", (int)len, word);
	return fail(err, errlen, "unknown command");
}

static int quote_error(enum kvq_error e, size_t at, char *err, size_t errlen)
{
	if (e == KVQ_BAD_ESCAPE)
		return fail(err, errlen, "bad escape at offset %zu (known: \\\\ \\\" \\n \\r \\t "
			    "\\a \\b \\f \\v \\xHH)", at);
	return fail(err, errlen, "unterminated quoted string (no closing '\"')");
}

/* ---- lines ---------------------------------------------------------------------------------- */

struct cursor {
	char *line;
	size_t len, pos;
	int overlong;
};

static void skip_spaces(struct cursor *cu)
{
	while (cu->pos < cu->len && cu->line[cu->pos] == ' ')
		cu->pos++;
}

static int at_end(struct cursor *cu)
{
	skip_spaces(cu);
	return cu->pos == cu->len;
}

/* The next token: 1 with *tok, *tlen (a quoted one decoded in place), 0 when only spaces are
 * left, -EINVAL with err. *cut: the token runs into the end of an overlong line, so it is only
 * the start of what was sent. */
static int next_token(struct cursor *cu, char **tok, size_t *tlen, int *cut, char *err,
		      size_t errlen)
{
	size_t start, used, at;
	enum kvq_error qe;

	*cut = 0;
	skip_spaces(cu);
	start = cu->pos;
	if (start == cu->len)
		return 0;
	*tok = cu->line + start;
	if (cu->line[start] != '"') {
		while (cu->pos < cu->len && cu->line[cu->pos] != ' ')
			cu->pos++;
		*tlen = cu->pos - start;
		*cut = cu->overlong && cu->pos == cu->len;
		return 1;
	}
	if (kvq_unquote(cu->line + start, cu->len - start, cu->line + start, tlen, &used, &qe,
			&at)) {
		if (cu->overlong) {
			*cut = 1; /* the closing quote may be in what was dropped */
			cu->pos = cu->len;
			return 1;
		}
		return quote_error(qe, start + at, err, errlen);
	}
	cu->pos = start + used;
	if (cu->pos < cu->len && cu->line[cu->pos] != ' ')
		return fail(err, errlen, "text after the closing quote at offset %zu", cu->pos);
	return 1;
}

static int key_too_long(char *err, size_t errlen)
{
	return fail(err, errlen, "key too long (at most %u bytes)", KV_MAX_KEY);
}

static int value_too_long(char *err, size_t errlen)
{
	return fail(err, errlen, "value too long (at most %llu bytes)",
		    (unsigned long long)KV_MAX_WRITE);
}

/* A decimal limit for LIST. */
static int parse_limit(const char *s, size_t len, uint64_t *out, char *err, size_t errlen)
{
	uint64_t v = 0;

	if (len == 0 || len > 19)
		goto bad;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
bad:
	if (len <= 32 && !kvq_needs_quotes(s, len, KVQ_KEY))
		return fail(err, errlen, "LIST limit must be a number, not '%.*s'", (int)len, s);
	return fail(err, errlen, "LIST limit must be a number");
}

/* A value given as the rest of a line or as joined arguments: plain, or one quoted string that
 * only spaces may follow (decoded in place). base: v's offset in the line, for messages. */
static int take_value(struct kvcmd *c, char *v, size_t len, size_t base, char *err, size_t errlen)
{
	size_t used, at;
	enum kvq_error qe;

	if (len == 0 || v[0] != '"') {
		if (len > KV_MAX_WRITE)
			return value_too_long(err, errlen);
		c->val = v;
		c->vlen = len;
		return 0;
	}
	if (kvq_unquote(v, len, v, &c->vlen, &used, &qe, &at))
		return quote_error(qe, base + at, err, errlen);
	for (size_t i = used; i < len; i++)
		if (v[i] != ' ')
			return fail(err, errlen, "text after the closing quote of the value (a value "
				    "that begins with '\"' is a quoted string)");
	if (c->vlen > KV_MAX_WRITE)
		return value_too_long(err, errlen);
	c->val = v;
	return 0;
}

static int parse_list_args(struct kvcmd *c, char *const *tok, const size_t *tlen, int n,
			   char *err, size_t errlen)
{
	if (n > 3)
		return fail(err, errlen, "LIST takes at most a prefix, a limit and a key to list after");
	c->key = n >= 1 ? tok[0] : "";
	c->klen = n >= 1 ? tlen[0] : 0;
	if (c->klen > KV_MAX_KEY)
		return key_too_long(err, errlen);
	if (n >= 2 && parse_limit(tok[1], tlen[1], &c->limit, err, errlen))
		return -EINVAL;
	if (n == 3) {
		if (tlen[2] > KV_MAX_KEY)
			return key_too_long(err, errlen);
		c->val = tok[2];
		c->vlen = tlen[2];
		c->has_after = 1;
	}
	return 0;
}

/* STATS's one optional word, JSON (case-insensitive). more: something follows it. */
static int stats_arg(struct kvcmd *c, const char *w, size_t len, int more, char *err,
		     size_t errlen)
{
	if (w && !more && len == 4 && strncasecmp(w, "JSON", 4) == 0)
		c->json = 1;
	else if (w || more)
		return fail(err, errlen, "STATS takes nothing or the word JSON");
	return 0;
}

static void cmd_init(struct kvcmd *c, enum kvcmd_op op)
{
	memset(c, 0, sizeof(*c));
	c->op = op;
	c->limit = UINT64_MAX;
}

int kvcmd_parse_line(struct kvcmd *c, char *line, size_t len, int overlong, char *err,
		     size_t errlen)
{
	struct cursor cu = { .line = line, .len = len, .overlong = overlong };
	char *tok, *toks[4];
	size_t tlen, tlens[4];
	enum kvcmd_op op;
	int n, rc, cut;

	/* the command word is always plain */
	skip_spaces(&cu);
	tok = line + cu.pos;
	while (cu.pos < len && line[cu.pos] != ' ')
		cu.pos++;
	tlen = (size_t)(line + cu.pos - tok);
	if (tlen == 0)
		return fail(err, errlen, overlong ? "line too long" : "empty line");
	if (kvcmd_lookup(tok, tlen, &op))
		return unknown_command(tok, tlen, err, errlen);
	cmd_init(c, op);

	switch (op) {
	case KVCMD_SIZE:
	case KVCMD_SNAP:
	case KVCMD_FLUSH:
	case KVCMD_EXIT:
	case KVCMD_LEADER:
		if (overlong || !at_end(&cu))
			return fail(err, errlen, "%s takes no arguments", op_name(op));
		return 0;
	case KVCMD_STATS:
		rc = next_token(&cu, &tok, &tlen, &cut, err, errlen);
		if (rc < 0)
			return rc;
		return stats_arg(c, rc ? tok : NULL, tlen, overlong || (rc && !at_end(&cu)), err,
				 errlen);
	case KVCMD_LIST:
		for (n = 0; n < 4; n++) {
			rc = next_token(&cu, &toks[n], &tlens[n], &cut, err, errlen);
			if (rc < 0)
				return rc;
			if (rc == 0)
				break;
			if (cut)
				return fail(err, errlen, "line too long");
		}
		return parse_list_args(c, toks, tlens, n, err, errlen);
	default:
		break;
	}

	/* PUT, GET, DEL: a key first */
	rc = next_token(&cu, &tok, &tlen, &cut, err, errlen);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return fail(err, errlen, op == KVCMD_PUT ? "%s needs a key and a value" :
			    "%s needs a key", op_name(op));
	if (cut || tlen > KV_MAX_KEY)
		return key_too_long(err, errlen);
	c->key = tok;
	c->klen = tlen;
	if (op != KVCMD_PUT) {
		if (overlong || !at_end(&cu))
			return fail(err, errlen, "%s takes one key (quote a key that holds spaces: "
				    "%s \"a b\")", op_name(op), op_name(op));
		return 0;
	}
	/* PUT: the value is everything after the one space that ends the key, spaces included */
	if (cu.pos == len)
		return fail(err, errlen, "PUT needs a value (for an empty one: \"PUT key \")");
	cu.pos++;
	if (overlong)
		return value_too_long(err, errlen);
	return take_value(c, line + cu.pos, len - cu.pos, cu.pos, err, errlen);
}

/* ---- arguments ------------------------------------------------------------------------------ */

/* One argument as a token: decoded in place when it begins with '"'. */
static int arg_token(char *arg, size_t *len, char *err, size_t errlen)
{
	size_t alen = strlen(arg), used, at;
	enum kvq_error qe;

	if (alen == 0 || arg[0] != '"') {
		*len = alen;
		return 0;
	}
	if (kvq_unquote(arg, alen, arg, len, &used, &qe, &at))
		return quote_error(qe, at, err, errlen);
	if (used != alen)
		return fail(err, errlen, "text after the closing quote in argument '%s'", arg);
	return 0;
}

int kvcmd_parse_args(struct kvcmd *c, int argc, char **argv, char **scratch, char *err,
		     size_t errlen)
{
	size_t tlens[3], total = 0;
	enum kvcmd_op op;
	int nargs = argc - 1;
	char *v;

	*scratch = NULL;
	if (argc < 1)
		return fail(err, errlen, "no command");
	if (kvcmd_lookup(argv[0], strlen(argv[0]), &op))
		return unknown_command(argv[0], strlen(argv[0]), err, errlen);
	cmd_init(c, op);
	switch (op) {
	case KVCMD_SIZE:
	case KVCMD_SNAP:
	case KVCMD_FLUSH:
	case KVCMD_EXIT:
	case KVCMD_LEADER:
		if (nargs)
			return fail(err, errlen, "%s takes no arguments", op_name(op));
		return 0;
	case KVCMD_STATS:
		return stats_arg(c, nargs ? argv[1] : NULL, nargs ? strlen(argv[1]) : 0, nargs > 1,
				 err, errlen);
	case KVCMD_LIST:
		if (nargs > 3)
			return fail(err, errlen, "LIST takes at most a prefix, a limit and a key to "
				    "list after");
		for (int i = 0; i < nargs; i++)
			if (arg_token(argv[1 + i], &tlens[i], err, errlen))
				return -EINVAL;
		return parse_list_args(c, argv + 1, tlens, nargs, err, errlen);
	case KVCMD_GET:
	case KVCMD_DEL:
		if (nargs != 1)
			return fail(err, errlen, "%s takes one key", op_name(op));
		break;
	case KVCMD_PUT:
		if (nargs < 2)
			return fail(err, errlen, "PUT needs a key and a value");
		break;
	case KVCMD_NOPS:
		return fail(err, errlen, "no command");
	}
	if (arg_token(argv[1], &c->klen, err, errlen))
		return -EINVAL;
	if (c->klen > KV_MAX_KEY)
		return key_too_long(err, errlen);
	c->key = argv[1];
	if (op != KVCMD_PUT)
		return 0;
	for (int i = 2; i < argc; i++)
		total += strlen(argv[i]) + 1;
	v = malloc(total);
	if (!v)
		return fail(err, errlen, "%s", strerror(ENOMEM));
	total = 0;
	for (int i = 2; i < argc; i++) {
		size_t l = strlen(argv[i]);

		if (i > 2)
			v[total++] = ' ';
		memcpy(v + total, argv[i], l);
		total += l;
	}
	*scratch = v;
	return take_value(c, v, total, 0, err, errlen);
}

/* ---- answers -------------------------------------------------------------------------------- */

static int out_status(FILE *out)
{
	errno = 0;
	if (fflush(out) == EOF || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}

int kvcmd_reply(FILE *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	return out_status(out);
}

/* What kvcmd_run returns once a reply is written: how it went, or the output's error. */
static int replied(int out_rc, enum kvcmd_result how)
{
	return out_rc ? out_rc : (int)how;
}

/* ERR replies: what the caller returns after one. */
static int reply_err(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int reply_err(FILE *out, const char *fmt, ...)
{
	va_list ap;

	fputs("ERR ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	return replied(out_status(out), KVCMD_REPLIED_ERR);
}

static int reply_ok(FILE *out, const char *text)
{
	return replied(kvcmd_reply(out, "%s", text), KVCMD_REPLIED);
}

/* A write (PUT, DEL) failed. After a failed log write the store refuses writes with -EROFS until
 * it is reopened; name the failure that caused it, which is what the user can act on. */
static int reply_write_error(struct kv *kv, FILE *out, int rc)
{
	struct kv_stats st;

	kv_stats(kv, &st);
	if (rc == -EROFS || st.read_only)
		return reply_err(out, "store is read-only after a failed write: %s",
				 strerror(st.error ? -st.error : -rc));
	return reply_err(out, "%s", strerror(-rc));
}

/* A flush or snapshot failed. Once the log has failed, every later flush returns that original
 * error: say that the store is read-only and why, so a second FLUSH does not look like new
 * trouble. */
static int reply_durability_error(struct kv *kv, FILE *out, const char *what, int rc)
{
	struct kv_stats st;

	kv_stats(kv, &st);
	if (st.read_only)
		return reply_err(out, "%s failed: store is read-only after a failed write: %s", what,
				 strerror(st.error ? -st.error : -rc));
	return reply_err(out, "%s failed: %s", what, strerror(-rc));
}

static int run_get(struct kv *kv, const struct kvcmd *c, FILE *out, int raw)
{
	void *val = NULL;
	uint64_t vlen = 0;
	int rc = kv_get(kv, c->key, c->klen, &val, &vlen);

	if (rc == -ENOENT)
		return reply_ok(out, "(nil)");
	if (rc)
		return reply_err(out, "%s", strerror(-rc));
	/* an output error is sticky in out: reply_ok's flush reports it */
	rc = kvq_print(out, val, (size_t)vlen, KVQ_VALUE, raw);
	free(val);
	if (rc)
		return replied(out_status(out), KVCMD_REPLIED);
	return reply_ok(out, "");
}

/* LIST collects the keys under one scan, so the count and the keys agree even if writers run
 * between commands; the memory it takes is that of the keys listed. */
struct listing {
	const char *prefix, *after, *hide; /* hide: keys beginning with it are not listed */
	size_t plen, alen;
	int has_after;
	uint64_t limit, n;
	char *buf; /* keys, each a size_t length then its bytes */
	size_t len, cap;
};

static int listing_add(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		       size_t mlen)
{
	struct listing *l = arg;

	(void)size; /* only the names are listed */
	(void)meta;
	(void)mlen;
	if (l->n == l->limit)
		return 1;
	if (klen < l->plen || memcmp(key, l->prefix, l->plen) != 0)
		return 1; /* past the keys under the prefix: they are contiguous in key order */
	if (l->has_after && klen == l->alen && memcmp(key, l->after, klen) == 0)
		return 0; /* the scan starts at after itself; list what follows it */
	if (l->hide && klen >= strlen(l->hide) && memcmp(key, l->hide, strlen(l->hide)) == 0)
		return 0;
	if (l->cap - l->len < sizeof(size_t) + klen) {
		size_t ncap = l->cap ? l->cap * 2 : 4096;
		char *nbuf;

		while (ncap - l->len < sizeof(size_t) + klen)
			ncap *= 2;
		nbuf = realloc(l->buf, ncap);
		if (!nbuf)
			return -ENOMEM;
		l->buf = nbuf;
		l->cap = ncap;
	}
	memcpy(l->buf + l->len, &klen, sizeof(size_t));
	memcpy(l->buf + l->len + sizeof(size_t), key, klen);
	l->len += sizeof(size_t) + klen;
	l->n++;
	return 0;
}

/* memcmp order of byte strings, a proper prefix first: the index's order. */
static int list_keycmp(const void *a, size_t alen, const void *b, size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);

	return r ? r : (alen > blen) - (alen < blen);
}

static int run_list(struct kv *kv, const struct kvcmd *c, FILE *out, int raw, const char *hide)
{
	struct listing l = { .prefix = c->key, .plen = c->klen, .after = c->val, .alen = c->vlen,
			     .has_after = c->has_after, .limit = c->limit, .hide = hide };
	const char *start = c->key;
	size_t slen = c->klen, off;
	int rc;

	if (c->has_after && list_keycmp(c->val, c->vlen, c->key, c->klen) > 0) {
		start = c->val;
		slen = c->vlen;
	}
	rc = kv_scan(kv, start, slen, listing_add, &l);
	if (rc < 0) {
		free(l.buf);
		return reply_err(out, "%s", strerror(-rc));
	}
	fprintf(out, "%" PRIu64 "\n", l.n);
	for (off = 0; off < l.len;) {
		size_t klen;

		memcpy(&klen, l.buf + off, sizeof(size_t));
		/* an output error is sticky in out: out_status below reports it */
		if (kvq_print(out, l.buf + off + sizeof(size_t), klen, KVQ_KEY, raw))
			break;
		fputc('\n', out);
		off += sizeof(size_t) + klen;
	}
	free(l.buf);
	return replied(out_status(out), KVCMD_REPLIED);
}

/* ---- STATS and what a node of a replicated group needs (kvcmd_repl.c) ------------------------ */

int kvcmd_stats(FILE *out, struct kv *kv, const char (*extra)[KVCMD_STAT_LINE], unsigned nextra)
{
	char *text = NULL;
	size_t len = 0, n = 0;

	/* the store's lines are the control file's (control.h), so the two never disagree */
	if (kv) {
		int rc = kvfs_control_render(kv, &text, &len);
		if (rc)
			return reply_err(out, "%s", strerror(-rc));
	}
	for (size_t pos = 0; pos < len; pos++)
		n += text[pos] == '\n';
	fprintf(out, "%zu\n", nextra + n);
	for (unsigned i = 0; i < nextra; i++)
		fprintf(out, "%s\n", extra[i]);
	if (len)
		fwrite(text, 1, len, out);
	free(text);
	return replied(out_status(out), KVCMD_REPLIED);
}

int kvcmd_reply_err(FILE *out, const char *fmt, ...)
{
	va_list ap;

	fputs("ERR ", out);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	return replied(out_status(out), KVCMD_REPLIED_ERR);
}

int kvcmd_reply_ok(FILE *out, const char *text)
{
	return reply_ok(out, text);
}

int kvcmd_get(struct kv *kv, const struct kvcmd *c, FILE *out, int raw)
{
	return run_get(kv, c, out, raw);
}

int kvcmd_list(struct kv *kv, const struct kvcmd *c, FILE *out, int raw, const char *hide)
{
	return run_list(kv, c, out, raw, hide);
}

int kvcmd_snap(struct kv *kv, FILE *out)
{
	int rc = kv_snapshot(kv);
	return rc ? reply_durability_error(kv, out, "snapshot", rc) : reply_ok(out, "OK");
}

/* A JSON string of s (len bytes): escapes for '"', '\\' and control bytes; other bytes as
 * they are (the values are the statistics' own text). */
static void json_string(FILE *out, const char *s, size_t len)
{
	fputc('"', out);
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* A value that is a decimal number is written as a JSON number, anything else as a string. */
static int is_number(const char *s, size_t len)
{
	if (len == 0 || len > 19 || (s[0] == '0' && len > 1))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* "name: value" lines as one JSON object on one line: a decimal value as a number, anything
 * else as a string (STATS JSON, on a store and on a node). */
void kvcmd_stats_json(FILE *out, const char *text, size_t len)
{
	int first = 1;

	fputc('{', out);
	for (size_t pos = 0; pos < len;) {
		const char *nl = memchr(text + pos, '\n', len - pos), *colon;
		size_t end = nl ? (size_t)(nl - text) : len;

		colon = memchr(text + pos, ':', end - pos);
		if (colon && colon + 1 < text + end && colon[1] == ' ') {
			const char *v = colon + 2;
			size_t vlen = (size_t)(text + end - v);

			if (!first)
				fputc(',', out);
			first = 0;
			json_string(out, text + pos, (size_t)(colon - (text + pos)));
			fputc(':', out);
			if (is_number(v, vlen))
				fwrite(v, 1, vlen, out);
			else
				json_string(out, v, vlen);
		}
		pos = end + 1;
	}
	fputs("}\n", out);
}

/* STATS: the control file's "name: value" lines (control.h), so the two never disagree: a count
 * line then the lines, or (JSON) one object of the same names and values. */
static int run_stats(struct kv *kv, const struct kvcmd *c, FILE *out)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (!c->json)
		return kvcmd_stats(out, kv, NULL, 0);
	rc = kvfs_control_render(kv, &text, &len);
	if (rc)
		return reply_err(out, "%s", strerror(-rc));
	kvcmd_stats_json(out, text, len);
	free(text);
	return replied(out_status(out), KVCMD_REPLIED);
}

int kvcmd_run(struct kv *kv, const struct kvcmd *c, FILE *out, int raw)
{
	struct kv_stats st;
	int rc;

	switch (c->op) {
	case KVCMD_PUT:
		rc = kv_put(kv, c->key, c->klen, c->val, c->vlen);
		return rc ? reply_write_error(kv, out, rc) : reply_ok(out, "OK");
	case KVCMD_GET:
		return run_get(kv, c, out, raw);
	case KVCMD_DEL:
		rc = kv_del(kv, c->key, c->klen);
		if (rc == -ENOENT)
			return reply_ok(out, "(nil)");
		return rc ? reply_write_error(kv, out, rc) : reply_ok(out, "OK");
	case KVCMD_SIZE:
		kv_stats(kv, &st);
		return replied(kvcmd_reply(out, "%" PRIu64, st.keys), KVCMD_REPLIED);
	case KVCMD_SNAP:
		rc = kv_snapshot(kv);
		return rc ? reply_durability_error(kv, out, "snapshot", rc) : reply_ok(out, "OK");
	case KVCMD_FLUSH:
		rc = kv_flush(kv);
		return rc ? reply_durability_error(kv, out, "flush", rc) : reply_ok(out, "OK");
	case KVCMD_LIST:
		return run_list(kv, c, out, raw, NULL);
	case KVCMD_LEADER:
		return reply_err(out, "not a node of a replicated group (start kv_cli with -o "
				 "cluster=FILE,node=ID)");
	case KVCMD_STATS:
		return run_stats(kv, c, out);
	case KVCMD_EXIT:
	case KVCMD_NOPS:
		break;
	}
	return KVCMD_DO_EXIT;
}
