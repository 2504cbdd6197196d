/* report.c — a store's report in words (see report.h). */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "repl.h"

const char *report_damage_words(enum kv_damage d)
{
	switch (d) {
	case KV_DAMAGE_NONE:
		return "no damage";
	case KV_DAMAGE_BAD_RECORD:
		return "a bad record followed by valid records";
	case KV_DAMAGE_BAD_HEADER:
		return "a bad segment header followed by valid records";
	case KV_DAMAGE_LSN_GAP:
		return "gap in LSNs";
	case KV_DAMAGE_SEGMENT_GAP:
		return "gap in LSNs before this segment";
	case KV_DAMAGE_CHECKPOINT_GAP:
		return "gap in LSNs after the checkpoint";
	case KV_DAMAGE_MISSING_RECORDS:
		return "records after the checkpoint are missing";
	case KV_DAMAGE_MALFORMED:
		return "malformed record";
	case KV_DAMAGE_UNKNOWN_TYPE:
		return "unknown record type";
	case KV_DAMAGE_SEGMENT_VERSION:
		return "a log segment of another format version";
	case KV_DAMAGE_CHECKPOINT:
		return "damaged checkpoint";
	case KV_DAMAGE_CHECKPOINT_VERSION:
		return "a checkpoint of another format version";
	case KV_DAMAGE_FORMAT_1:
		return "a store of kvfs 0.1's format 1, which this version does not read";
	case KV_DAMAGE_LOST_VALUES:
		return "values still have bytes there";
	case KV_DAMAGE_VALUE_BYTES:
		return "value bytes that fail their checksum";
	case KV_DAMAGE_LOG_END_LOST:
		return "the log ends before the checkpoint's last record: whatever followed it is lost";
	}
	return "damage";
}

/* A refused checkpoint whose damage is at offset 0 failed in its header (magic, checksum, or
 * cut inside it): the entries start after it. */
static int ckpt_header_hit(const struct kv_report *r)
{
	return r->damage == KV_DAMAGE_CHECKPOINT && (r->ckpt_header_damaged || r->damage_offset == 0);
}

const char *report_salvage_keeps(const struct kv_report *r)
{
	switch (r->damage) {
	case KV_DAMAGE_VALUE_BYTES:
		return "keeps every record and drops only the key(s) whose value bytes are damaged";
	case KV_DAMAGE_LOST_VALUES:
		return "keeps every record and drops only the key(s) that lost bytes there";
	case KV_DAMAGE_CHECKPOINT:
		if (ckpt_header_hit(r))
			return "keeps every checkpoint entry it can prove (the LSN is the file's name's) "
			       "and the log after the checkpoint";
		return "keeps every checkpoint entry that checks and the log after the checkpoint: "
		       "only the damaged entries' keys are lost";
	case KV_DAMAGE_CHECKPOINT_VERSION:
	case KV_DAMAGE_SEGMENT_VERSION:
		return "sets the file of the other version aside and keeps what comes before it (a "
		       "kvfs that reads that version opens the store whole instead)";
	case KV_DAMAGE_FORMAT_1:
		return NULL; /* salvage refuses it too: nothing to offer */
	case KV_DAMAGE_NONE:
	case KV_DAMAGE_BAD_RECORD:
	case KV_DAMAGE_BAD_HEADER:
	case KV_DAMAGE_LSN_GAP:
	case KV_DAMAGE_SEGMENT_GAP:
	case KV_DAMAGE_CHECKPOINT_GAP:
	case KV_DAMAGE_MISSING_RECORDS:
	case KV_DAMAGE_MALFORMED:
	case KV_DAMAGE_UNKNOWN_TYPE:
	case KV_DAMAGE_LOG_END_LOST:
		break;
	}
	/* damage to a record's framing proves nothing about the records after it */
	return "keeps every record before the first damaged one and sets the rest aside";
}

void report_salvage_advice(const struct kv_report *r, const char *dir, const char *also, char *buf,
			   size_t len)
{
	const char *keeps = report_salvage_keeps(r);
	if (!keeps) {
		snprintf(buf, len, "this version cannot read it, and salvage cannot convert it");
		return;
	}
	snprintf(buf, len, "run 'kv_cli --salvage %s': it %s, setting damaged files aside (nothing is "
		 "deleted)%s%s", dir, keeps, also ? ", " : "", also ? also : "");
}

size_t report_salvage_kept(const struct kv_report *r, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "the state up to lsn %" PRIu64, r->last_lsn);
	if (n < len && r->lost_keys)
		n += (size_t)snprintf(buf + n, len - n, ", less %" PRIu64 " key(s) (the first '%s')",
				      r->lost_keys, r->lost_key);
	else if (n < len && r->ckpt_header_damaged && r->ckpt_lost_unknown)
		n += (size_t)snprintf(buf + n, len - n, ", less the checkpoint's entries it could not "
				      "prove (how many is unknown)");
	return n < len ? n : len - 1;
}

size_t report_ckpt_loss(const struct kv_report *r, char *buf, size_t len)
{
	char after[300], before[300];
	size_t n;
	if (r->ckpt_lost_has_after)
		snprintf(after, sizeof(after), "after '%s'", r->ckpt_lost_after);
	else
		snprintf(after, sizeof(after), "before the first key kept");
	if (r->ckpt_lost_has_before)
		snprintf(before, sizeof(before), " and before '%s'", r->ckpt_lost_before);
	else
		snprintf(before, sizeof(before), "%s", r->ckpt_lost_has_after ? ", to the end" : "");
	/* after a damaged header, "no entry lost" is never said: what was kept is said instead, and
	 * how it was proven */
	if (r->ckpt_header_damaged && !r->ckpt_lost_unknown)
		n = (size_t)snprintf(buf, len, "all %" PRIu64 " entries kept: its header is damaged, but "
				     "every entry from it to the footer checks (the LSN was taken from "
				     "its name, the salt found again from the entries)", r->snapshot_keys);
	else if (r->ckpt_header_damaged && !r->snapshot_keys)
		n = (size_t)snprintf(buf, len, "its header is damaged and no entry could be proven: "
				     "every key it held is lost (how many is unknown) unless written "
				     "again after the checkpoint, which was replayed");
	else if (r->ckpt_header_damaged)
		n = (size_t)snprintf(buf, len, "its header is damaged: the %" PRIu64 " entries that "
				     "check were kept, an unknown number lost with their keys (the first "
				     "%s%s); the log after the checkpoint was replayed, so a key written "
				     "again there is back", r->snapshot_keys, after, before);
	else if (!r->ckpt_lost_entries && ckpt_header_hit(r))
		/* passed over: an older checkpoint, or the log from LSN 1, was used instead */
		n = (size_t)snprintf(buf, len, "its header is damaged: it was set aside and the state "
				     "rebuilt from %s and the log after it", r->snapshot_lsn ?
				     "the older checkpoint" : "the whole log (it still starts at LSN 1)");
	else if (!r->ckpt_lost_entries)
		n = (size_t)snprintf(buf, len, "no entry lost (the damage is in its footer or its "
				     "header's extent count)");
	else
		n = (size_t)snprintf(buf, len, "%" PRIu64 " %s (the first %s%s), every other entry "
				     "kept; a key written again after the checkpoint is back",
				     r->ckpt_lost_entries, r->ckpt_lost_entries == 1 ?
				     "entry lost with its key" : "entries lost with their keys", after, before);
	return n < len ? n : len - 1;
}

/* "DIR/FILE: damaged at offset N (why)" */
static size_t damage_line(const struct kv_report *r, const char *dir, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "%s/%s: damaged at offset %" PRIu64 " (%s", dir,
				    r->damage_file, r->damage_offset, report_damage_words(r->damage));
	if (n < len && r->damage == KV_DAMAGE_LOST_VALUES)
		n += (size_t)snprintf(buf + n, len - n, ": %" PRIu64 " key(s), the first '%s'", r->lost_keys,
				      r->lost_key);
	if (n + 2 < len && r->damage == KV_DAMAGE_CHECKPOINT && r->salvaged) {
		n += (size_t)snprintf(buf + n, len - n, ": ");
		n += report_ckpt_loss(r, buf + n, len - n);
	}
	if (n < len && r->damage == KV_DAMAGE_VALUE_BYTES)
		n += (size_t)snprintf(buf + n, len - n, ": %" PRIu64 " key(s), the first '%s'",
				      r->data_damaged_keys, r->data_damage_key);
	if (n < len)
		n += (size_t)snprintf(buf + n, len - n, ")");
	return n < len ? n : len - 1;
}

/* Value bytes of a pending relocation's copy read back from their source (r->reloc_*): what the
 * words in the parentheses of both forms say. */
static size_t read_back_words(const struct kv_report *r, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "value bytes of %" PRIu64 " key(s), the first '%s', "
				    "copied here by the cleaner in a record no checkpoint holds yet, "
				    "fail their checksum; read back from the segment they were copied "
				    "from, where they check: nothing lost", r->reloc_damaged_keys,
				    r->reloc_damage_key);
	return n < len ? n : len - 1;
}

size_t report_read_back(const struct kv_report *r, char *buf, size_t len)
{
	if (!len)
		return 0;
	buf[0] = '\0';
	if (!r->reloc_damaged_keys)
		return 0;
	size_t n = (size_t)snprintf(buf, len, "damage in a pending relocation: %s offset %" PRIu64 " (",
				    r->reloc_damage_file, r->reloc_damage_offset);
	if (n + 1 < len)
		n += read_back_words(r, buf + n, len - n);
	if (n + 1 < len)
		n += (size_t)snprintf(buf + n, len - n, ")");
	return n < len ? n : len - 1;
}

/* A salvage that failed while copying a damaged file aside (its refusal's data: aside_bytes,
 * aside_unchanged): what it needs, and what it left. */
static void aside_failure(const struct kv_report *r, char *buf, size_t len)
{
	const char *what = strncmp(r->file, "wal-", 4) ? "file" : "segment";
	const char *left = r->aside_unchanged ? "nothing was changed"
					      : "a partial copy (*.damaged) may be left: delete it";
	if (r->aside_bytes && (r->err == -ENOSPC || r->err == -EDQUOT))
		snprintf(buf, len, "; salvage needs %" PRIu64 " bytes free to set the damaged %s aside; %s",
			 r->aside_bytes, what, left);
	else
		snprintf(buf, len, "; salvage could not set the damaged %s aside; %s", what, left);
}

void report_failure(const struct kv_report *r, const char *dir, int rc, const char *way_out, char *buf,
		    size_t len)
{
	size_t n = 0;
	switch (r->problem) {
	case KV_PROBLEM_DIR:
		snprintf(buf, len, "%s: store directory: %s", dir, strerror(-r->err));
		return;
	case KV_PROBLEM_NOT_A_STORE:
		snprintf(buf, len, "%s: not a kvfs store (it holds '%s' and no store files); a store is "
			 "made only in a missing or empty directory", dir, r->file);
		return;
	case KV_PROBLEM_LOCKED:
		if (r->holder[0])
			snprintf(buf, len, "%s: store is locked by process %s (%s/LOCK); only one process may "
				 "open it", dir, r->holder, dir);
		else
			snprintf(buf, len, "%s: store is locked by another process (%s/LOCK); only one process "
				 "may open it", dir, dir);
		return;
	case KV_PROBLEM_FILE:
		if (r->file[0])
			n = (size_t)snprintf(buf, len, "%s/%s: %s", dir, r->file, strerror(-r->err));
		else
			n = (size_t)snprintf(buf, len, "%s: %s", dir, strerror(-r->err));
		if (n + 1 < len && (r->aside_unchanged || r->aside_bytes))
			aside_failure(r, buf + n, len - n);
		return;
	case KV_PROBLEM_DAMAGE:
		n = damage_line(r, dir, buf, len);
		if (n + 1 < len)
			snprintf(buf + n, len - n, "; the store refuses to open%s%s",
				 way_out ? ": " : "", way_out ? way_out : "");
		return;
	case KV_PROBLEM_NONE:
		break;
	}
	snprintf(buf, len, "%s: %s", dir, strerror(-rc));
}

void report_notes(const struct kv_report *r, const char *dir, void (*line)(void *arg, const char *text),
		  void *arg)
{
	char buf[1600];
	if (r->tail_torn) {
		snprintf(buf, sizeof(buf), "%s/%s: torn tail of %" PRIu64 " bytes at offset %" PRIu64
			 " cut off (a write in progress at the crash, or, if the disk lost that block, "
			 "records synced before it); "
			 "recovered to lsn %" PRIu64, dir, r->tail_file, r->tail_torn_bytes, r->tail_offset,
			 r->last_lsn);
		line(arg, buf);
	}
	if (r->covered_damage) {
		snprintf(buf, sizeof(buf), "%s/%s: damaged at offset %" PRIu64 " in records the checkpoint "
			 "(LSN %" PRIu64 ") already holds: not needed%s", dir, r->covered_file,
			 r->covered_offset, r->snapshot_lsn,
			 r->lost_keys ? "" : ", nothing lost");
		line(arg, buf);
	}
	if (r->reloc_damaged_keys) {
		/* nothing lost, and the open succeeds: but the disk damaged bytes it had written */
		char words[700];
		read_back_words(r, words, sizeof(words));
		snprintf(buf, sizeof(buf), "%s/%s: damaged at offset %" PRIu64 " (%s)", dir,
			 r->reloc_damage_file, r->reloc_damage_offset, words);
		line(arg, buf);
	}
	if (r->damaged && r->salvaged) {
		damage_line(r, dir, buf, sizeof(buf));
		line(arg, buf);
		char kept[600];
		report_salvage_kept(r, kept, sizeof(kept));
		snprintf(buf, sizeof(buf), "SALVAGED: kept %s; %u damaged file(s) set aside as *.damaged "
			 "in %s (nothing deleted)", kept, r->set_aside, dir);
		line(arg, buf);
	}
	if (r->lost_keys > r->ckpt_lost_entries) {
		snprintf(buf, sizeof(buf), "%s: %" PRIu64 " key(s) lost bytes (the first '%s'): salvage "
			 "deletes them, their surviving bytes staying in the files set aside (opened "
			 "read-only, their reads fail with EIO instead)", dir,
			 r->lost_keys - r->ckpt_lost_entries, r->lost_key);
		line(arg, buf);
	}
}

void report_repl_failure(const struct repl_report *r, const char *dir, const char *cluster,
			 uint64_t node, int rc, char *buf, size_t len)
{
	char store[PATH_MAX + 16], line[2048];

	switch (r->problem) {
	case REPL_PROBLEM_OPTIONS:
		snprintf(buf, len, "%s", r->detail);
		return;
	case REPL_PROBLEM_CLUSTER:
		snprintf(buf, len, "cluster file %s: %s", cluster, r->detail);
		return;
	case REPL_PROBLEM_NODE:
		snprintf(buf, len, "cluster file %s has no node %" PRIu64, cluster, node);
		return;
	case REPL_PROBLEM_DIR:
		if (r->err == -ENOTEMPTY)
			snprintf(buf, len, "%s: not a node's directory (it holds '%s'; a node keeps "
				 "its store in store/ and raft's log in raft/, and starts only in a "
				 "missing or empty directory or its own)", dir, r->detail);
		else
			snprintf(buf, len, "%s: node directory: %s", dir, strerror(-r->err));
		return;
	case REPL_PROBLEM_STORE:
		snprintf(store, sizeof(store), "%s/store", dir);
		report_failure(&r->store, store, r->err, NULL, line, sizeof(line));
		snprintf(buf, len, "%s", line);
		return;
	case REPL_PROBLEM_RAFT:
		snprintf(buf, len, "%s: raft did not start: %s", dir, r->detail[0] ? r->detail :
			 strerror(-r->err));
		return;
	case REPL_PROBLEM_NONE:
		break;
	}
	snprintf(buf, len, "%s: %s", dir, strerror(-rc));
}

void report_progress(enum kv_work what, uint64_t done, uint64_t total, char *buf, size_t len)
{
	static const char *const words[] = {
		[KV_WORK_RECOVERY] = "recovery: log read",
		[KV_WORK_CHECKPOINT] = "checkpoint: keys written",
		[KV_WORK_CLEANER] = "cleaner: live bytes moved",
		[KV_WORK_CHECK] = "check: value bytes read",
		[KV_WORK_BACKUP] = "backup: bytes copied",
		[KV_WORK_SALVAGE] = "salvage: value bytes read",
	};
	const char *w = (size_t)what < sizeof(words) / sizeof(words[0]) && words[what] ? words[what] : "work";
	unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
	if (what == KV_WORK_CHECKPOINT)
		snprintf(buf, len, "%s %" PRIu64 " of %" PRIu64 " (%u%%)", w, done, total, pct);
	else
		snprintf(buf, len, "%s %" PRIu64 " of %" PRIu64 " MiB (%u%%)", w, done >> 20, total >> 20,
			 pct);
}

static int64_t monotonic_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int report_progress_due(struct report_pace *p, enum kv_work what, uint64_t done, int end,
			unsigned interval_ms)
{
	int64_t now = monotonic_ms();
	size_t k = (size_t)what;
	if (k >= KV_WORK_KINDS)
		return 0;
	if (done == 0 && !end) { /* a job starts */
		p->start_ms[k] = p->last_ms[k] = now;
		p->shown[k] = 0;
		return 0;
	}
	if (end)
		return p->shown[k];
	if (now - p->last_ms[k] < (int64_t)interval_ms)
		return 0;
	p->last_ms[k] = now;
	p->shown[k] = 1;
	return 1;
}

void report_options(FILE *f, const char *title, const struct kv_option_desc *t, size_t n)
{
	fprintf(f, "\n%s\n", title);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "  %s=%s\n", t[i].name, t[i].values);
		/* the help, wrapped at word boundaries to 90 columns */
		for (const char *h = t[i].help; *h;) {
			size_t take = strlen(h);

			if (take > 84) {
				take = 84;
				while (take && h[take] != ' ')
					take--;
				if (!take)
					take = 84;
			}
			fprintf(f, "      %.*s\n", (int)take, h);
			h += take;
			while (*h == ' ')
				h++;
		}
	}
}
