/* kvquote.h — kv_cli's quoted strings: how a reply holding any bytes stays one line, and how a
 * key or value holding any bytes is typed on one.
 *
 * The quoted form is '"', the bytes, '"', where inside the quotes
 *   \\  \"  \n  \r  \t        stand for backslash, quote, newline, carriage return, tab,
 *   \xHH                      (two hex digits) for any byte,
 *   \a  \b  \f  \v            (accepted on input only) for 0x07, 0x08, 0x0c, 0x0b,
 * and every other byte stands for itself. Output escapes every control character (bytes 0x00-0x1f
 * and 0x7f, and the C1 controls U+0080-U+009F written in UTF-8) and every byte of an invalid
 * UTF-8 sequence as \xHH, and keeps printable ASCII and valid UTF-8 as they are.
 *
 * A string is printed plain (as its bytes) unless something in it would make the line ambiguous:
 * see kvq_needs_quotes. Plain output never begins with '"', so a reader tells the two apart by the
 * first byte, and unquote(quote(x)) == x for any bytes x. */
#ifndef KVFS_KVQUOTE_H
#define KVFS_KVQUOTE_H
#include <stddef.h>
#include <stdio.h>

enum kvq_kind {
	KVQ_VALUE, /* a value: the rest of a line, so spaces are fine */
	KVQ_KEY,   /* a key: one token, so a space (or nothing at all) needs quotes too */
};

/* 1 when s must be printed quoted: it holds a control character, a backslash or invalid UTF-8,
 * begins with '"', or reads as a reply of its own ("(nil)", or "ERR" alone or followed by a space);
 * for KVQ_KEY also when it is empty or holds a space. */
int kvq_needs_quotes(const void *s, size_t len, enum kvq_kind kind);

/* Prints s to f, quoted when kvq_needs_quotes says so (always plain when raw). No newline.
 * 0, or -EIO when f reports an error. */
int kvq_print(FILE *f, const void *s, size_t len, enum kvq_kind kind, int raw);

/* The quoted form of s, always quoted, into dst (room for kvq_quoted_max(len) bytes);
 * returns its length. */
size_t kvq_quote(char *dst, const void *s, size_t len);
#define kvq_quoted_max(len) (4 * (size_t)(len) + 2)

enum kvq_error {
	KVQ_OK,
	KVQ_UNTERMINATED, /* no closing '"' */
	KVQ_BAD_ESCAPE,   /* a backslash not followed by one of the escapes above */
};

/* Decodes the quoted string that starts at src[0] (which must be '"') and ends at its closing
 * quote, at most len bytes on. The bytes go to dst, which may be src itself (decoding never
 * writes ahead of what it has read); *dlen is their number and *used the bytes of src taken,
 * closing quote included. On error returns -EINVAL with *err the kind and *err_at the offset in
 * src of the bad escape (or len when unterminated). */
int kvq_unquote(const char *src, size_t len, char *dst, size_t *dlen, size_t *used,
		enum kvq_error *err, size_t *err_at);
#endif
