/* layout.c — names and keys of the tree (layout.h). */
#include "layout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int kvfs_name_visible(const char *name, size_t len, int at_root)
{
	if (len == 0 || len > KVFS_NAME_MAX)
		return 0;
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	return !kvfs_name_is_control(name, len, at_root);
}

int kvfs_name_is_control(const char *name, size_t len, int at_root)
{
	return at_root && len == sizeof(KVFS_CONTROL_NAME) - 1 &&
	       memcmp(name, KVFS_CONTROL_NAME, len) == 0;
}

size_t kvfs_id_key(char *buf, const char *prefix, uint64_t id)
{
	return (size_t)snprintf(buf, KVFS_ID_KEY_MAX, "%s%016" PRIx64, prefix, id);
}

int kvfs_is_id_key(const void *key, size_t klen, const char *prefix, uint64_t *id)
{
	const size_t plen = strlen(prefix);
	const char *k = key;
	uint64_t v = 0;

	if (klen < plen + 16 || memcmp(k, prefix, plen) != 0)
		return 0;
	if (klen > plen + 16 && k[plen + 16] != '\0')
		return 0;
	for (size_t i = plen; i < plen + 16; i++) {
		int d;

		if (k[i] >= '0' && k[i] <= '9')
			d = k[i] - '0';
		else if (k[i] >= 'a' && k[i] <= 'f')
			d = k[i] - 'a' + 10;
		else
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	*id = v;
	return 1;
}

size_t kvfs_child_key(char *buf, const char *prefix, size_t plen, const char *name, size_t nlen)
{
	size_t len = plen ? plen + 1 + nlen : nlen;

	if (len > KVFS_NODE_KEY_MAX)
		return 0;
	if (plen) {
		memmove(buf, prefix, plen);
		buf[plen] = '/';
		memcpy(buf + plen + 1, name, nlen);
	} else {
		memcpy(buf, name, nlen);
	}
	return len;
}

size_t kvfs_xattr_key(char *buf, const char *key, size_t klen, const char *name, size_t nlen)
{
	memmove(buf, key, klen);
	buf[klen] = '\0';
	memcpy(buf + klen + 1, name, nlen);
	return klen + 1 + nlen;
}

size_t kvfs_node_part(const char *key, size_t klen)
{
	const char *nul = memchr(key, '\0', klen);

	return nul ? (size_t)(nul - key) : klen;
}
