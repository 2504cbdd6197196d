/* hugepages.h — run the program with transparent huge pages for malloc'd memory. */
#ifndef KVFS_HUGEPAGES_H
#define KVFS_HUGEPAGES_H

/* The store keeps every key and value in malloc'd memory, so opening a store faults in one
 * 4 KiB page per 4 KiB of data; on a VM a fault costs microseconds, which made log replay
 * fault-bound. glibc asks the kernel for transparent huge pages (madvise) when started with
 * GLIBC_TUNABLES=glibc.malloc.hugetlb=1, and reads that only at start-up: so, unless the
 * caller already set glibc.malloc.hugetlb (0 opts out), this re-executes the program with it
 * set. Returns only if it did not re-execute, which is harmless. */
void hugepages_reexec(char **argv);

#endif
