/* keys.c — paths to keys and the visibility rules of keys.h. */
#include "keys.h"

#include <errno.h>
#include <string.h>

#include "kv.h"

int kvfs_name_visible(const char *name, size_t len, int at_root)
{
	if (len == 0 || len > KVFS_NAME_MAX)
		return 0;
	if (memchr(name, '/', len) || memchr(name, '\0', len))
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	if (at_root && len == sizeof(KVFS_CONTROL_NAME) - 1 &&
	    memcmp(name, KVFS_CONTROL_NAME, len) == 0)
		return 0;
	return 1;
}

int kvfs_path_key(const char *path, const char **key, size_t *klen)
{
	const char *k = path[0] == '/' ? path + 1 : path;
	size_t len = strlen(k), start = 0;

	*key = k;
	*klen = len;
	if (len == 0)
		return 0;
	/* components first: a 300-byte name is ENAMETOOLONG whatever the key length */
	while (start <= len) {
		const char *slash = memchr(k + start, '/', len - start);
		size_t end = slash ? (size_t)(slash - k) : len;
		size_t n = end - start;

		if (n > KVFS_NAME_MAX)
			return -ENAMETOOLONG;
		if (n == 0 || (n == 1 && k[start] == '.') ||
		    (n == 2 && k[start] == '.' && k[start + 1] == '.'))
			return -EINVAL;
		start = end + 1;
	}
	if (len > KV_MAX_KEY)
		return -ENAMETOOLONG;
	return 0;
}

size_t kvfs_parent_klen(const char *key, size_t klen)
{
	while (klen > 0 && key[klen - 1] != '/')
		klen--;
	return klen > 0 ? klen - 1 : 0;
}

int kvfs_is_control(const char *path)
{
	return strcmp(path, "/" KVFS_CONTROL_NAME) == 0;
}
