/* report.h — the one place where what the store reports (struct kv_report: kinds, files,
 * offsets, errnos) becomes words for a person. kv_cli and kvfs print these lines; the engine
 * never writes prose about opening, checking or salvaging. */
#ifndef KVFS_MOUNT_REPORT_H
#define KVFS_MOUNT_REPORT_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kv.h"

/* Why an open, a check or a salvage of the store at dir failed with rc: one line, no newline.
 * way_out: what the calling program offers for damage (e.g. "run 'kv_cli --salvage DIR' to
 * ..."), appended after "; ", or NULL. */
void report_failure(const struct kv_report *r, const char *dir, int rc, const char *way_out, char *buf,
		    size_t len);

/* What a successful open, check or salvage found that a person should know (a torn tail cut,
 * damage in records the checkpoint holds, damage in a pending relocation's copy read back from
 * its source, damage salvaged past, keys that lost bytes, values that fail their checksum):
 * line() is called once per line, without newline. Silent when there is nothing to say
 * (preallocated zeros cut are not lost writes). */
void report_notes(const struct kv_report *r, const char *dir, void (*line)(void *arg, const char *text),
		  void *arg);

/* Why a node of a replicated group (repl.h) did not start: one line, no newline. dir is the
 * node directory, cluster the cluster file, node the ID asked for. */
struct repl_report;
void report_repl_failure(const struct repl_report *r, const char *dir, const char *cluster,
			 uint64_t node, int rc, char *buf, size_t len);

/* Long work's progress as words: "recovery: 120 of 512 MiB" (keys for a checkpoint). */
void report_progress(enum kv_work what, uint64_t done, uint64_t total, char *buf, size_t len);

/* What kv_cli --salvage (or recovery=point_in_time) keeps for the damage r reports, a phrase
 * that follows "it" or "salvage" ("keeps every record and drops only ..."); NULL when salvage
 * cannot help (a store of kvfs 0.1's format). The words differ by r->damage: damaged framing
 * costs what follows it, a damaged value only its key, a damaged checkpoint only what cannot be
 * proven. */
const char *report_salvage_keeps(const struct kv_report *r);
/* The way out of a refusal for r: "run 'kv_cli --salvage DIR': it keeps ..., setting damaged
 * files aside (nothing is deleted)", then ", " and also when not NULL (another way, such as a
 * mount option). */
void report_salvage_advice(const struct kv_report *r, const char *dir, const char *also, char *buf,
			   size_t len);
/* What a salvage that succeeded kept: "the state up to lsn N[, less K key(s) (the first 'X')]". */
size_t report_salvage_kept(const struct kv_report *r, char *buf, size_t len);
/* For --check and --salvage, a line (without newline) on value bytes of a cleaner's pending
 * relocation that failed in its copy and were read back from their source (r->reloc_*):
 * "damage in a pending relocation: FILE offset N (value bytes of K key(s), the first 'KEY',
 * ...: nothing lost)". Returns its length; 0 and "" when there were none. The same damage is a note
 * of report_notes. */
size_t report_read_back(const struct kv_report *r, char *buf, size_t len);
/* What salvage lost of a checkpoint with damaged entries (r->ckpt_lost_*), without newline;
 * returns the length written. */
size_t report_ckpt_loss(const struct kv_report *r, char *buf, size_t len);
/* When a progress report (kv.h's kv_progress) should become a line in a log: for work that
 * has lasted interval_ms, a line at most every interval_ms, and one at its end when any was
 * written; short work stays silent. One job of each kind at a time (the engine runs them so). */
struct report_pace {
	int64_t start_ms[KV_WORK_KINDS], last_ms[KV_WORK_KINDS];
	int shown[KV_WORK_KINDS];
};
int report_progress_due(struct report_pace *p, enum kv_work what, uint64_t done, int end,
			unsigned interval_ms);
/* A damage kind in a few words ("a bad record followed by valid records"). */
const char *report_damage_words(enum kv_damage d);
/* An option table (name=values, then its help wrapped to 90 columns) under title. */
void report_options(FILE *f, const char *title, const struct kv_option_desc *t, size_t n);
#endif
