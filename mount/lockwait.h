/* lockwait.h — opening a store whose previous daemon is still closing it.
 *
 * `fusermount3 -u` returns before the daemon has closed the store; a mount or a kv_cli started
 * at once would find it locked. lockwait_open is kv_open that, while the LOCK's holder is a
 * kvfs daemon that no longer answers on DATADIR/kvfs.sock (it is closing the store; or one
 * still opening it, before its pid is in LOCK), waits for it: bounded, saying once that it
 * waits. A holder that is anything else (another kv_cli, a daemon that answers) is refused at
 * once, as kv_open refuses it. Used by kvfs and kv_cli; the words are all here. */
#ifndef KVFS_LOCKWAIT_H
#define KVFS_LOCKWAIT_H
#include <stddef.h>

#include "kv.h"

#define LOCKWAIT_ENV "KVFS_LOCK_WAIT"
#define LOCKWAIT_DEFAULT_S 30u
#define LOCKWAIT_MAX_S 3600u

struct lockwait {
	unsigned seconds;                         /* the bound (lockwait_bound) */
	void (*say)(void *arg, const char *line); /* one line for the user, without newline */
	void *arg;
	int answering; /* out: a daemon answers on DATADIR/kvfs.sock now (kv_cli talks to it) */
	int gave_up;   /* out: the bound passed; the line saying so was said */
};

/* The bound from $KVFS_LOCK_WAIT (seconds, 0..3600; unset: 30): 0, or -EINVAL with a line
 * naming the variable and its range in err. */
int lockwait_bound(unsigned *seconds, char *err, size_t errlen);
/* kv_open(out, dir, o, rep), waiting as above. Returns kv_open's last result: -EWOULDBLOCK
 * with w->gave_up (said) or w->answering (nothing said) when it stops waiting. */
int lockwait_open(struct lockwait *w, struct kv **out, const char *dir, const struct kv_options *o,
		  struct kv_report *rep);
#endif
