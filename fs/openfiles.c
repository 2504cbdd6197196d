/* openfiles.c — the open-files registry of openfiles.h: a chained hash table from key to entry,
 * under one mutex. */
#include "openfiles.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kvfs_ofile {
	struct kvfs_ofile *next; /* bucket chain */
	char *key;
	size_t klen;
	unsigned refs;
	int orphan; /* unlinked or replaced while open: key is an orphan key */
	int lost;   /* a rename could not move the key (no memory): every use fails with EIO */
};

struct kvfs_openfiles {
	pthread_mutex_t mu;
	struct kvfs_ofile **buckets;
	size_t nbuckets; /* a power of two */
	size_t count;
	uint64_t next_orphan;
};

static size_t hash(const char *key, size_t klen)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (size_t i = 0; i < klen; i++) {
		h ^= (uint8_t)key[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

int kvfs_openfiles_new(struct kvfs_openfiles **out)
{
	struct kvfs_openfiles *of = calloc(1, sizeof(*of));

	if (!of)
		return -ENOMEM;
	of->nbuckets = 256;
	of->buckets = calloc(of->nbuckets, sizeof(*of->buckets));
	if (!of->buckets) {
		free(of);
		return -ENOMEM;
	}
	pthread_mutex_init(&of->mu, NULL);
	of->next_orphan = 1;
	*out = of;
	return 0;
}

void kvfs_openfiles_free(struct kvfs_openfiles *of)
{
	if (!of)
		return;
	for (size_t b = 0; b < of->nbuckets; b++) {
		struct kvfs_ofile *f = of->buckets[b], *next;

		for (; f; f = next) {
			next = f->next;
			free(f->key);
			free(f);
		}
	}
	free(of->buckets);
	pthread_mutex_destroy(&of->mu);
	free(of);
}

static struct kvfs_ofile **slot(struct kvfs_openfiles *of, const char *key, size_t klen)
{
	struct kvfs_ofile **p = &of->buckets[hash(key, klen) & (of->nbuckets - 1)];

	while (*p && !((*p)->klen == klen && memcmp((*p)->key, key, klen) == 0))
		p = &(*p)->next;
	return p;
}

static void link_entry(struct kvfs_openfiles *of, struct kvfs_ofile *f)
{
	struct kvfs_ofile **head = &of->buckets[hash(f->key, f->klen) & (of->nbuckets - 1)];

	f->next = *head;
	*head = f;
}

static void unlink_entry(struct kvfs_openfiles *of, struct kvfs_ofile *f)
{
	struct kvfs_ofile **p = &of->buckets[hash(f->key, f->klen) & (of->nbuckets - 1)];

	while (*p != f)
		p = &(*p)->next;
	*p = f->next;
}

/* Twice the buckets once there are more entries than buckets; a failed growth only makes the
 * chains longer. */
static void maybe_grow(struct kvfs_openfiles *of)
{
	size_t n = of->nbuckets * 2;
	struct kvfs_ofile **nb, **old = of->buckets;

	if (of->count <= of->nbuckets)
		return;
	nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	of->buckets = nb;
	of->nbuckets = n;
	for (size_t b = 0; b < n / 2; b++) {
		struct kvfs_ofile *f = old[b], *next;

		for (; f; f = next) {
			next = f->next;
			link_entry(of, f);
		}
	}
	free(old);
}

int kvfs_of_open(struct kvfs_openfiles *of, const char *key, size_t klen, struct kvfs_ofile **out)
{
	struct kvfs_ofile *f;
	int rc = 0;

	pthread_mutex_lock(&of->mu);
	f = *slot(of, key, klen);
	if (f && !f->orphan) {
		f->refs++;
		goto out;
	}
	f = calloc(1, sizeof(*f));
	if (f)
		f->key = malloc(klen ? klen : 1);
	if (!f || !f->key) {
		free(f);
		f = NULL;
		rc = -ENOMEM;
		goto out;
	}
	memcpy(f->key, key, klen);
	f->klen = klen;
	f->refs = 1;
	link_entry(of, f);
	of->count++;
	maybe_grow(of);
out:
	pthread_mutex_unlock(&of->mu);
	*out = f;
	return rc;
}

int kvfs_of_close(struct kvfs_openfiles *of, struct kvfs_ofile *f, char *orphan, size_t *olen)
{
	int last_orphan = 0;

	pthread_mutex_lock(&of->mu);
	if (--f->refs > 0) {
		pthread_mutex_unlock(&of->mu);
		return 0;
	}
	unlink_entry(of, f);
	of->count--;
	if (f->orphan && !f->lost && f->klen <= KVFS_ORPHAN_KEY_MAX) {
		memcpy(orphan, f->key, f->klen);
		*olen = f->klen;
		last_orphan = 1;
	}
	pthread_mutex_unlock(&of->mu);
	free(f->key);
	free(f);
	return last_orphan;
}

size_t kvfs_of_key(struct kvfs_openfiles *of, const struct kvfs_ofile *f, char *buf)
{
	size_t n;

	pthread_mutex_lock(&of->mu);
	if (f->lost) {
		n = SIZE_MAX;
	} else {
		memcpy(buf, f->key, f->klen);
		n = f->klen;
	}
	pthread_mutex_unlock(&of->mu);
	return n;
}

int kvfs_of_is_open(struct kvfs_openfiles *of, const char *key, size_t klen)
{
	int open;

	pthread_mutex_lock(&of->mu);
	open = *slot(of, key, klen) != NULL;
	pthread_mutex_unlock(&of->mu);
	return open;
}

size_t kvfs_of_orphan_name(struct kvfs_openfiles *of, char *buf)
{
	uint64_t n;

	pthread_mutex_lock(&of->mu);
	n = of->next_orphan++;
	pthread_mutex_unlock(&of->mu);
	return (size_t)snprintf(buf, KVFS_ORPHAN_KEY_MAX, KVFS_ORPHAN_PREFIX "%016" PRIx64, n);
}

int kvfs_of_is_orphan_name(const void *key, size_t klen)
{
	const size_t plen = sizeof(KVFS_ORPHAN_PREFIX) - 1;
	const char *k = key;

	if (klen != plen + 16 || memcmp(k, KVFS_ORPHAN_PREFIX, plen) != 0)
		return 0;
	for (size_t i = plen; i < klen; i++)
		if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
			return 0;
	return 1;
}

/* Give f the key prefix + f->key[cut..]; on no memory the entry is lost (never a wrong key). */
static int rekey(struct kvfs_ofile *f, const char *prefix, size_t plen, size_t cut)
{
	size_t n = plen + (f->klen - cut);
	char *k = malloc(n ? n : 1);

	if (!k) {
		f->lost = 1;
		return -ENOMEM;
	}
	memcpy(k, prefix, plen);
	memcpy(k + plen, f->key + cut, f->klen - cut);
	free(f->key);
	f->key = k;
	f->klen = n;
	return 0;
}

int kvfs_of_moved(struct kvfs_openfiles *of, const char *from, size_t flen, const char *to,
		  size_t tlen, int subtree)
{
	struct kvfs_ofile *moved = NULL, *f, *next;
	int rc = 0;

	pthread_mutex_lock(&of->mu);
	/* take the entries out first, then put them back under their new keys, so that none is
	 * seen twice */
	f = *slot(of, from, flen);
	if (f) {
		unlink_entry(of, f);
		f->next = moved;
		moved = f;
	}
	for (size_t b = 0; subtree && b < of->nbuckets; b++) {
		struct kvfs_ofile **p = &of->buckets[b];

		while (*p) {
			f = *p;
			if (f->klen > flen && memcmp(f->key, from, flen) == 0 && f->key[flen] == '/') {
				*p = f->next;
				f->next = moved;
				moved = f;
			} else {
				p = &f->next;
			}
		}
	}
	for (f = moved; f; f = next) {
		next = f->next;
		if (rekey(f, to, tlen, flen))
			rc = -ENOMEM;
		link_entry(of, f);
	}
	pthread_mutex_unlock(&of->mu);
	return rc;
}

int kvfs_of_orphaned(struct kvfs_openfiles *of, const char *key, size_t klen, const char *orphan,
		     size_t olen)
{
	struct kvfs_ofile *f;
	int rc = 0;

	pthread_mutex_lock(&of->mu);
	f = *slot(of, key, klen);
	if (f) {
		unlink_entry(of, f);
		rc = rekey(f, orphan, olen, f->klen);
		f->orphan = 1;
		link_entry(of, f);
	}
	pthread_mutex_unlock(&of->mu);
	return rc;
}
