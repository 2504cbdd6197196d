/* xfer.h — moving a copy of a node's store to another node over TCP, outside raft.
 *
 * Raft 0.15 keeps a snapshot in one memory buffer; a store can be far larger than memory. So
 * raft's snapshot is only a manifest (entry.h) and a node that must install one asks a node
 * that has the data: it connects to that node's port (mux.h), and the sender makes a consistent
 * copy with kv_backup in a scratch directory and streams its files in checksummed chunks. Byte
 * table in docs/FORMAT.md section 12.
 *
 *   request   magic "KVXFR01\n" (8), requester u64, min_index u64, version u32 = 1, zero u32
 *   answer    status u32 (0, or the errno why not: ESTALE = the sender holds less than
 *             min_index), files u32, index u64 (the copy holds every entry up to at least this);
 *             before it, while the copy is being made, any number of answers with status
 *             0xffffffff ("wait"), one every 5 s, so that a large copy does not look like a
 *             sender that went silent
 *   per file  name_len u16 (1..255), name, size u64, then chunks of len u32 (1..1 MiB),
 *             crc32c u32 of the chunk, the bytes; the lengths add up to size
 *   end       u32 "KVXE"
 *
 * Both sides use blocking descriptors; every read and write gives up after XFER_IO_TIMEOUT_MS
 * without progress. */
#ifndef KVFS_REPL_XFER_H
#define KVFS_REPL_XFER_H
#include <stddef.h>
#include <stdint.h>

#define XFER_IO_TIMEOUT_MS 30000
#define XFER_CHUNK (1u << 20)

struct rfsm;

/* The sender: answer one request on fd (the magic already read) from the store of f, copying
 * it into a fresh directory under scratch_parent first and removing that afterwards. Closes fd.
 * 0, or -errno (the requester was told when it could be). */
int xfer_serve(int fd, struct rfsm *f, const char *scratch_parent);

/* The receiver: ask host:port for a copy holding every entry up to min_index, and write its
 * files into dest (an existing empty directory), each fsync'd, then dest itself. *index: what
 * the sender says the copy holds. 0, or -errno with the reason in err. */
int xfer_fetch(const char *host, unsigned port, uint64_t self, uint64_t min_index,
	       const char *dest, uint64_t *index, char *err, size_t errlen);
#endif
