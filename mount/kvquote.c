/* kvquote.c — quoted strings for kv_cli's protocol (the rules are in kvquote.h). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kvquote.h"

/* Length of the well-formed UTF-8 sequence at p (1 to 4), or 0 when the bytes there are not one
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const uint8_t *p, size_t avail)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* the second byte's range is narrower after these leads */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* The bytes at p that print as themselves inside quotes: a printable ASCII byte other than
 * backslash and quote, or a whole UTF-8 sequence that is not a C1 control. 0: escape p[0]. */
static size_t plain_run(const uint8_t *p, size_t avail)
{
	size_t n;

	if (p[0] < 0x80)
		return p[0] >= 0x20 && p[0] != 0x7f && p[0] != '\\' && p[0] != '"' ? 1 : 0;
	n = utf8_len(p, avail);
	if (n == 2 && p[0] == 0xc2 && p[1] <= 0x9f)
		return 0; /* C1 control: escaped byte by byte */
	return n;
}

int kvq_needs_quotes(const void *s, size_t len, enum kvq_kind kind)
{
	const uint8_t *p = s;
	size_t i = 0, n;

	if (kind == KVQ_KEY && (len == 0 || memchr(p, ' ', len)))
		return 1;
	if (len == 0)
		return 0;
	if (p[0] == '"')
		return 1;
	if ((len == 5 && memcmp(p, "(nil)", 5) == 0) ||
	    (len >= 3 && memcmp(p, "ERR", 3) == 0 && (len == 3 || p[3] == ' ')))
		return 1;
	while (i < len) {
		/* a '"' after the first byte is fine plain: only a leading one means "quoted" */
		n = p[i] == '"' ? 1 : plain_run(p + i, len - i);
		if (n == 0)
			return 1;
		i += n;
	}
	return 0;
}

/* Encodes what comes next at p into out (room for 4 bytes): an escape, or the bytes that stand
 * for themselves. Returns the bytes written; *adv the bytes of p consumed. */
static size_t encode_step(const uint8_t *p, size_t avail, char *out, size_t *adv)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = plain_run(p, avail);

	if (n) {
		memcpy(out, p, n);
		*adv = n;
		return n;
	}
	*adv = 1;
	out[0] = '\\';
	switch (p[0]) {
	case '\\': out[1] = '\\'; return 2;
	case '"': out[1] = '"'; return 2;
	case '\n': out[1] = 'n'; return 2;
	case '\r': out[1] = 'r'; return 2;
	case '\t': out[1] = 't'; return 2;
	default:
		out[1] = 'x';
		out[2] = hex[p[0] >> 4];
		out[3] = hex[p[0] & 15];
		return 4;
	}
}

size_t kvq_quote(char *dst, const void *s, size_t len)
{
	const uint8_t *p = s;
	size_t i = 0, o = 0, adv;

	dst[o++] = '"';
	while (i < len) {
		o += encode_step(p + i, len - i, dst + o, &adv);
		i += adv;
	}
	dst[o++] = '"';
	return o;
}

int kvq_print(FILE *f, const void *s, size_t len, enum kvq_kind kind, int raw)
{
	const uint8_t *p = s;
	char buf[4096];
	size_t i = 0, o, adv;

	if (raw || !kvq_needs_quotes(s, len, kind)) {
		if (len)
			fwrite(s, 1, len, f);
		return ferror(f) ? -EIO : 0;
	}
	fputc('"', f);
	while (i < len) {
		/* fill the buffer, leaving room for the longest step */
		for (o = 0; i < len && o <= sizeof(buf) - 4; i += adv)
			o += encode_step(p + i, len - i, buf + o, &adv);
		fwrite(buf, 1, o, f);
	}
	fputc('"', f);
	return ferror(f) ? -EIO : 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int kvq_unquote(const char *src, size_t len, char *dst, size_t *dlen, size_t *used,
		enum kvq_error *err, size_t *err_at)
{
	size_t i = 1, o = 0;
	int hi, lo;

	*err = KVQ_OK;
	while (i < len) {
		char c = src[i];

		if (c == '"') {
			*dlen = o;
			*used = i + 1;
			return 0;
		}
		if (c != '\\') {
			dst[o++] = c;
			i++;
			continue;
		}
		if (i + 1 == len)
			break; /* a backslash where the closing quote should be */
		switch (src[i + 1]) {
		case '\\': dst[o++] = '\\'; break;
		case '"': dst[o++] = '"'; break;
		case 'n': dst[o++] = '\n'; break;
		case 'r': dst[o++] = '\r'; break;
		case 't': dst[o++] = '\t'; break;
		case 'a': dst[o++] = '\a'; break;
		case 'b': dst[o++] = '\b'; break;
		case 'f': dst[o++] = '\f'; break;
		case 'v': dst[o++] = '\v'; break;
		case 'x':
			hi = i + 2 < len ? hexval(src[i + 2]) : -1;
			lo = i + 3 < len ? hexval(src[i + 3]) : -1;
			if (hi < 0 || lo < 0)
				goto bad_escape;
			dst[o++] = (char)(hi << 4 | lo);
			i += 2;
			break;
		default:
			goto bad_escape;
		}
		i += 2;
	}
	*err = KVQ_UNTERMINATED;
	*err_at = len;
	return -EINVAL;
bad_escape:
	*err = KVQ_BAD_ESCAPE;
	*err_at = i;
	return -EINVAL;
}
