#include "progress.h"

#define REPORTS 100u

static uint64_t step(const struct progress *p)
{
	return p->total / REPORTS ? p->total / REPORTS : 1;
}

void progress_start(struct progress *p, const struct kv_progress *hook, enum kv_work what,
		    uint64_t total)
{
	p->hook = hook && hook->fn ? hook : NULL;
	p->what = what;
	p->total = total;
	p->done = 0;
	p->next = step(p);
	if (p->hook)
		p->hook->fn(p->hook->arg, what, 0, total, 0);
}

void progress_add(struct progress *p, uint64_t n)
{
	p->done += n;
	if (p->hook && p->done >= p->next && p->done < p->total) {
		p->hook->fn(p->hook->arg, p->what, p->done, p->total, 0);
		p->next = p->done + step(p);
	}
}

void progress_end(struct progress *p)
{
	if (p->hook)
		p->hook->fn(p->hook->arg, p->what, p->done, p->total, 1);
	p->hook = NULL;
}
