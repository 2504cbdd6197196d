/* unmount.h — `kvfs --unmount MOUNTPOINT`: unmount and return only once the daemon has flushed
 * and closed the store and released its LOCK, so a script may open the store (kv_cli, a new
 * mount, a backup of the directory) as soon as it returns. fusermount3 -u and umount return
 * when the kernel lets go of the mount, while the daemon may still be flushing and closing.
 *
 * How: the mount's control file names the store's directory; the command connects to the
 * daemon's socket there, asks to be told of the close (CTL_WAIT), unmounts, and waits for the
 * daemon's word and then for the daemon's process to end. */
#ifndef KVFS_UNMOUNT_H
#define KVFS_UNMOUNT_H

/* The whole command: argv[1] is "--unmount". Prints what went wrong (one line, prog: ...) and
 * returns the exit status: 0 unmounted and closed cleanly, 1 not unmounted or not closed
 * cleanly (the reason said), 2 usage. */
int unmount_main(const char *prog, int argc, char **argv);
#endif
