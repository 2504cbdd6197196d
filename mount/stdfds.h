/* stdfds.h — descriptors 0, 1 and 2 open before anything else is. */
#ifndef KVFS_STDFDS_H
#define KVFS_STDFDS_H

/* Opens /dev/null onto any of stdin, stdout and stderr that is closed. Without it, a program
 * started with one closed (`kvfs D M <&-`) has the store's LOCK file or a log segment opened
 * as that descriptor: the daemonizing dup2 then drops the lock, and kv_cli's replies land in
 * the store. 0, or -errno when /dev/null cannot be opened (then nothing can be said either). */
int stdfds_ensure(void);

#endif
