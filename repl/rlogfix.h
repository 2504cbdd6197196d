/* rlogfix.h — finishes, before raft starts, a truncation of raft's log that libraft 0.15 left
 * undone on disk.
 *
 * Why: in libraft 0.15 a follower that truncates its log (a new leader's entries conflict with
 * its own) while a snapshot is being written can leave the truncated entries in a closed
 * segment: two barriers at once, fixed upstream in 0.18 (canonical/raft PR #435), not in
 * Debian's 0.15. Raft's memory is right and the node runs on, but the directory then holds a
 * segment A = [a1, a2] and, written after the truncation, B = [x, b2] with a1 <= x <= a2; at the
 * next start raft sorts them wrongly and refuses ("closed segment ... is past last snapshot") or
 * reads the stale entries. The truncation is finished here the way raft does it (uv_truncate.c):
 * A is rewritten as [a1, x-1] (removed when x = a1), entries and checksums in raft's segment
 * format 1, the new file made durable before A is removed.
 *
 * Only when the overlap is such a truncation: the entry at x in B has a higher term than in A
 * (raft replaces an entry only with one of a newer term). Anything else (equal terms, a segment
 * that does not parse, an unknown format) is left alone and reported: raft then refuses to start
 * with its own message, and nothing is lost by this step. */
#ifndef KVFS_REPL_RLOGFIX_H
#define KVFS_REPL_RLOGFIX_H
#include <stddef.h>

struct rlogfix_report {
	unsigned cut;        /* segments cut or removed */
	char detail[512];    /* what was done, or why an overlap was left alone */
};

/* Repairs dir (raft's directory). 0: nothing left overlapping (rep->cut says how many segments
 * were repaired, rep->detail the last one); -EPROTO: an overlap that is no undone truncation or
 * a segment that does not parse (rep->detail names it), left as it was; other negative errnos:
 * I/O (rep->detail names the file). */
int rlogfix_repair(const char *dir, struct rlogfix_report *rep);

/* Refuses an open segment (open-N) cut short inside a batch: one whose batch's header or data
 * runs past the end of the file, where no crash leaves one (segments are preallocated; a crash
 * leaves zeros or a batch whose checksum fails, which raft drops) but a copy, a restore or a
 * repair can. libraft 0.15's loader double-frees on it and the node would crash at every start
 * (a15 FINDINGS 3). 0: none such (what raft judges itself is left to it); -EUCLEAN with
 * rep->detail naming the segment, the batch and its offset; other negative errnos: I/O. */
int rlogfix_check_open(const char *dir, struct rlogfix_report *rep);
#endif
