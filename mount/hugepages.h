/* hugepages.h — run the program with transparent huge pages for malloc'd memory. */
#ifndef KVFS_HUGEPAGES_H
#define KVFS_HUGEPAGES_H

/* The store keeps every key and value in malloc'd memory, so opening a store or streaming a
 * file into it touches one fresh page per 4 KiB of data; on a VM a page fault costs
 * microseconds, which made log replay and large writes fault-bound. glibc asks the kernel for
 * transparent huge pages (madvise) when started with GLIBC_TUNABLES=glibc.malloc.hugetlb=1
 * (for its main heap: so also arena_max=1), and keeps freed memory for reuse with larger
 * mmap and trim thresholds; it reads these only at start-up. So, unless the caller already
 * set glibc.malloc.hugetlb (=0 opts out of all of it), this re-executes the program with them
 * set. Returns only if it did not re-execute, which is harmless. */
void hugepages_reexec(char **argv);

#endif
