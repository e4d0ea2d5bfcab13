/* SPDX-License-Identifier: MIT */
/*
 * registry.c - the shared lease registry: transactions on the lease
 * table, the robust lock with repair, and the table's lookups. Its file
 * (layout, creation, validation, the checks under the mapping) is in
 * registry_file.c, its lock-free reads in registry_peek.c, allocation and
 * gc in registry_alloc.c, the full check in registry_check.c
 * (registry_int.h is what they share).
 *
 * Lock order: there is one lock (the registry mutex). Nothing else is
 * taken while it is held, and nothing that can block for long (connect,
 * waiting for a peer) runs under it: only bind(), short file writes of the
 * mapping file and /proc reads when reclaiming.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "claims.h"
#include "reglock.h"
#include "proc.h"
#include "registry.h"
#include "registry_int.h"

void ps_reg_seterr(struct ps_reg_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

uint64_t ps_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t ps_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint32_t ps_group_hash(const char *group)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)group; *p; p++) {
		h ^= *p;
		h *= 16777619u;
	}
	return h ? h : 1;
}

/* ------------------------------------------------------ transactions */

/*
 * Each change to one lease is bracketed by tx_begin/tx_end. The fences
 * keep the compiler (and weakly ordered CPUs) from moving the change
 * before the undo record is published, or the undo record's retirement
 * before the change: a process killed at any instruction leaves either
 * no undo record (the change is complete or not begun) or a complete one.
 */
static void tx_begin(struct ps_registry *reg, uint32_t port)
{
	struct ps_reg_header *h = reg->hdr;

	h->seq++;
	memcpy(&h->undo, &reg->leases[port], sizeof(h->undo));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&h->undo_port, port + 1, __ATOMIC_SEQ_CST);
}

static void tx_end(struct ps_registry *reg)
{
	struct ps_reg_header *h = reg->hdr;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&h->undo_port, 0, __ATOMIC_SEQ_CST);
	h->seq++;
}

unsigned long ps_registry_unlink_steps;

/* Removes port from the chain starting at *head (linked through off). */
static void chain_unlink(struct ps_registry *reg, uint32_t *head, size_t off,
			 uint32_t port)
{
	uint32_t *link = head;

	for (uint32_t n = 0; n < PS_REG_NPORTS && *link; n++) {
		uint32_t p = *link;

		ps_registry_unlink_steps++;

		if (p >= PS_REG_NPORTS)
			break; /* corrupt: repair will rebuild */
		uint32_t *next = (uint32_t *)((char *)&reg->leases[p] + off);

		if (p == port) {
			*link = *next;
			*next = 0;
			return;
		}
		link = next;
	}
}

static void link_lease(struct ps_registry *reg, uint32_t port)
{
	struct ps_lease *l = &reg->leases[port];

	if (l->kind == PS_KIND_GROUP) {
		uint32_t *hb =
			&reg->hbuckets[ps_reg_hbucket(l->ghash, l->vport)];

		l->hnext = *hb;
		*hb = port;
	} else {
		l->hnext = 0;
	}
	uint32_t *gb = &reg->gbuckets[ps_reg_gbucket(l->ghash)];

	l->gnext = *gb;
	*gb = port;
}

static void unlink_lease(struct ps_registry *reg, uint32_t port)
{
	struct ps_lease *l = &reg->leases[port];

	if (l->kind == PS_KIND_GROUP)
		chain_unlink(reg,
			     &reg->hbuckets[ps_reg_hbucket(l->ghash, l->vport)],
			     offsetof(struct ps_lease, hnext), port);
	chain_unlink(reg, &reg->gbuckets[ps_reg_gbucket(l->ghash)],
		     offsetof(struct ps_lease, gnext), port);
}

void ps_reg_insert_lease(struct ps_registry *reg, uint32_t port,
			 const struct ps_lease *tmpl)
{
	struct ps_lease *l = &reg->leases[port];

	tx_begin(reg, port);
	*l = *tmpl;
	/* tmpl may be a copy of a used lease: not committed until the end. */
	l->state = PS_LEASE_FREE;
	l->group[PS_GROUP_MAX] = '\0';
	l->ghash = ps_group_hash(l->group);
	if (l->created_ns == 0)
		l->created_ns = ps_now_ns();
	l->hnext = l->gnext = 0;
	link_lease(reg, port);
	reg->hdr->nleases++;
	/* The state word is the lease's commit mark: written last. */
	__atomic_store_n(&l->state, PS_LEASE_USED, __ATOMIC_RELEASE);
	tx_end(reg);
}

void ps_registry_free(struct ps_registry *reg, struct ps_lease *l)
{
	uint32_t port = ps_registry_port(reg, l);

	if (l->state != PS_LEASE_USED)
		return;
	tx_begin(reg, port);
	unlink_lease(reg, port);
	memset(l, 0, sizeof(*l));
	reg->hdr->nleases--;
	tx_end(reg);
	ps_claim_drop(reg, (uint16_t)port);
}

int ps_registry_update(struct ps_registry *reg, struct ps_lease *l,
		       const struct ps_lease *nl)
{
	uint32_t port = ps_registry_port(reg, l);
	uint32_t ghash = ps_group_hash(nl->group);
	bool relink = ghash != l->ghash || nl->vport != l->vport ||
		      nl->kind != l->kind || strcmp(nl->group, l->group) != 0;

	tx_begin(reg, port);
	if (relink)
		unlink_lease(reg, port);
	uint32_t hnext = l->hnext, gnext = l->gnext;

	*l = *nl;
	l->group[PS_GROUP_MAX] = '\0';
	l->ghash = ghash;
	l->state = PS_LEASE_USED;
	if (relink) {
		l->hnext = l->gnext = 0;
		link_lease(reg, port);
	} else {
		l->hnext = hnext;
		l->gnext = gnext;
	}
	tx_end(reg);
	return 0;
}

/* ------------------------------------------------------------ repair */

static bool group_ok(const char *g, bool may_be_empty)
{
	size_t n = strnlen(g, PS_GROUP_MAX + 1);

	if (n > PS_GROUP_MAX)
		return false;
	if (n == 0)
		return may_be_empty;
	return ps_group_valid(g);
}

bool ps_reg_lease_ok(const struct ps_lease *l, uint32_t port)
{
	if (port == 0)
		return false;
	if (l->kind == PS_KIND_GROUP)
		return l->vport != 0 && group_ok(l->group, false);
	if (l->kind == PS_KIND_PICK)
		return group_ok(l->group, true);
	return false;
}

/*
 * Brings the table back to a consistent state after a holder of the lock
 * died (lock held, EOWNERDEAD). The dead process's half-done change, if
 * any, is rolled back from the undo record; then every lease is
 * validated (garbage is discarded: it can only come from a writer that
 * broke the protocol) and the derived data (chains, count) is rebuilt.
 */
/*
 * Rebuilds the derived data (chains, count) from the leases, discarding
 * invalid leases (garbage can only come from a writer that broke the
 * protocol). Lock held, sequence word odd. O(table).
 */
static void rebuild(struct ps_registry *reg)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t n = 0;

	memset(reg->hbuckets, 0, PS_REG_HBUCKETS * sizeof(uint32_t));
	memset(reg->gbuckets, 0, PS_REG_GBUCKETS * sizeof(uint32_t));
	for (uint32_t p = 0; p < PS_REG_NPORTS; p++) {
		struct ps_lease *l = &reg->leases[p];

		if (l->state == PS_LEASE_FREE)
			continue;
		if (l->state != PS_LEASE_USED || !ps_reg_lease_ok(l, p)) {
			memset(l, 0, sizeof(*l));
			continue;
		}
		l->ghash = ps_group_hash(l->group);
		link_lease(reg, p);
		n++;
	}
	h->nleases = n;
	if (h->next_hint >= PS_REG_NPORTS)
		h->next_hint = 0;
}

/*
 * Brings the table back to a consistent state after a holder of the lock
 * died (lock held, EOWNERDEAD). The dead process's half-done change, if
 * any, is rolled back from the undo record; then every lease is
 * validated and the derived data is rebuilt. A holder that died inside
 * a bulk free (below) left freed leases and stale chains: the rebuild
 * is all they need.
 */
static void repair(struct ps_registry *reg)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t undo = __atomic_load_n(&h->undo_port, __ATOMIC_ACQUIRE);

	/* Lock-free readers (ps_registry_peek) must see a change begin. */
	if (!(h->seq & 1))
		h->seq++;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (undo != 0 && undo <= PS_REG_NPORTS)
		memcpy(&reg->leases[undo - 1], &h->undo, sizeof(h->undo));
	h->undo_port = 0;
	rebuild(reg);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	h->seq++; /* even again: the table is consistent */
	h->recoveries++;
}

/*
 * Bulk frees: freeing one lease unlinks it from its chains, a walk of
 * the chain; freeing every lease of a 64k-lease group that way is
 * quadratic (seconds under the lock). A bulk free instead only clears
 * each lease's state word (its commit mark: a lease is freed by one
 * store) and rebuilds the chains once at the end. Meanwhile the sequence
 * word is odd, so lock-free readers go to the lock, and a holder that
 * dies in the middle leaves what repair() handles anyway. The links of
 * a freed lease are kept until the rebuild, so that a walk of a chain
 * (ps_registry_next) can go on past it.
 */
void ps_reg_bulk_free_one(struct ps_registry *reg, struct ps_reg_bulk *b,
			  struct ps_lease *l)
{
	if (l->state != PS_LEASE_USED)
		return;
	if (!b->open) {
		reg->hdr->seq++;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		b->open = true;
	}
	__atomic_store_n(&l->state, PS_LEASE_FREE, __ATOMIC_RELEASE);
	memset((char *)l + offsetof(struct ps_lease, maker), 0,
	       sizeof(*l) - offsetof(struct ps_lease, maker));
	l->vport = 0;
	l->kind = 0;
	l->protos = 0;
	b->n++;
	ps_claim_drop(reg, ps_registry_port(reg, l));
}

void ps_registry_bulk_free(struct ps_registry *reg, struct ps_reg_bulk *b,
			   struct ps_lease *l)
{
	ps_reg_bulk_free_one(reg, b, l);
}

void ps_registry_bulk_end(struct ps_registry *reg, struct ps_reg_bulk *b)
{
	if (!b->open)
		return;
	rebuild(reg);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	reg->hdr->seq++;
	b->open = false;
}

/* Whether the mapping still holds a registry (it can be overwritten). */
static int image_ok(struct ps_registry *reg)
{
	uint64_t magic;
	int rc = ps_reg_copy_in(&magic, &reg->hdr->magic, sizeof(magic));

	if (rc == -EIO)
		return rc;
	if (rc == -ENOSYS)
		magic = __atomic_load_n(&reg->hdr->magic, __ATOMIC_RELAXED);
	return magic == PS_REG_MAGIC ? 0 : -EUCLEAN;
}

static int wait_ok(void *arg)
{
	struct ps_registry *reg = arg;
	int rc = ps_reg_file_ok(reg);

	return rc ? rc : image_ok(reg);
}

/* ---------------------------------------------------------- locking */

int ps_registry_lock(struct ps_registry *reg, struct ps_reg_guard *g)
{
	pthread_mutex_t *m = &reg->hdr->lock.mutex;
	sigset_t all;
	int rc;

	memset(&g->holder, 0, sizeof(g->holder));
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &g->oldmask);
	/*
	 * A vfork or raw clone child would lock with its parent's thread
	 * id and no robust list: killed inside, it would leave the lock
	 * held for good (PITFALLS 34). It is refused before it touches it.
	 */
	if (!ps_reglock_context_ok()) {
		rc = -ENOLCK;
		goto fail;
	}
	/*
	 * A registry shrunk under us would turn the next access into a
	 * SIGBUS in the host program; one removed would leave us alone on
	 * an orphan. Both are refused before the mapping is touched, and
	 * a mutex that is garbage before pthread sees it.
	 */
	rc = wait_ok(reg);
	if (rc == 0)
		rc = ps_reglock_validate(m, NULL, 0);
	if (rc)
		goto fail;
	rc = ps_reglock_acquire(m, &reg->hdr->lock_gen, &g->oldmask,
				reg->lock_timeout_ms ?
					reg->lock_timeout_ms :
					PS_LOCK_TIMEOUT_DEFAULT_MS,
				reg->dev, reg->ino, wait_ok, reg, &g->holder);
	if (rc == -ETIMEDOUT)
		reg->last_holder = g->holder;
	if (rc < 0)
		goto fail;
	/*
	 * The wait may have been long: the file is checked again before
	 * the table is touched. A table shrunk meanwhile cannot be repaired
	 * (that would be the SIGBUS avoided here), but the mutex is still
	 * made consistent rather than left to become ENOTRECOVERABLE; every
	 * process refuses the short file from now on, here and when opening.
	 */
	if (ps_reg_file_ok(reg) == -EIO) {
		if (rc == EOWNERDEAD)
			pthread_mutex_consistent(m);
		pthread_mutex_unlock(m);
		rc = -EIO;
		goto fail;
	}
	__atomic_fetch_add(&reg->hdr->lock_gen, 1, __ATOMIC_RELAXED);
	if (rc == EOWNERDEAD) {
		repair(reg);
		rc = -pthread_mutex_consistent(m);
		if (rc)
			goto fail;
	}
	return 0;
fail:
	pthread_sigmask(SIG_SETMASK, &g->oldmask, NULL);
	return rc;
}

void ps_registry_unlock(struct ps_registry *reg, struct ps_reg_guard *g)
{
	pthread_mutex_unlock(&reg->hdr->lock.mutex);
	pthread_sigmask(SIG_SETMASK, &g->oldmask, NULL);
}

const char *ps_registry_strerror(const struct ps_registry *reg,
				 const struct ps_reg_guard *g, int rc,
				 char *buf, size_t len)
{
	char who[160];

	switch (rc) {
	case -ETIMEDOUT:
		ps_reglock_describe(g != NULL ? &g->holder : &reg->last_holder,
				    who, sizeof(who));
		snprintf(buf, len,
			 "its lock is held by %s; gave up after "
			 "%u.%03u s without progress (PORTSHIM_LOCK_TIMEOUT)",
			 who, reg->lock_timeout_ms / 1000,
			 reg->lock_timeout_ms % 1000);
		break;
	case -ENOLCK:
		snprintf(buf, len,
			 "this process cannot take its lock: it "
			 "was made by vfork() or a raw clone() and has no "
			 "robust-futex list, so its death would leave the "
			 "lock held");
		break;
	case -EIO:
		snprintf(buf, len,
			 "the file was truncated under this "
			 "process; run 'portshim gc --reset'");
		break;
	case -ESTALE:
		snprintf(buf, len,
			 "the file was removed or replaced after "
			 "this process opened it");
		break;
	case -EUCLEAN:
		snprintf(buf, len,
			 "the file is corrupt (its lock or its "
			 "header); run 'portshim gc --reset'");
		break;
	case -ENOTRECOVERABLE:
		snprintf(buf, len,
			 "its lock is not recoverable; run "
			 "'portshim gc --reset'");
		break;
	default:
		snprintf(buf, len, "%s", strerror(-rc));
		break;
	}
	return buf;
}

struct ps_lease *ps_registry_at(struct ps_registry *reg, uint16_t real)
{
	struct ps_lease *l = &reg->leases[real];

	return l->state == PS_LEASE_USED ? l : NULL;
}

struct ps_lease *ps_registry_find(struct ps_registry *reg, const char *group,
				  uint16_t vport)
{
	uint32_t gh = ps_group_hash(group);
	uint32_t p = reg->hbuckets[ps_reg_hbucket(gh, vport)];

	/* Bounded: shared memory is never trusted to be acyclic. */
	for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS && n < PS_REG_NPORTS;
	     n++) {
		struct ps_lease *l = &reg->leases[p];

		if (l->state == PS_LEASE_USED && l->kind == PS_KIND_GROUP &&
		    l->vport == vport && l->ghash == gh &&
		    strncmp(l->group, group, sizeof(l->group)) == 0)
			return l;
		p = l->hnext;
	}
	return NULL;
}

size_t ps_registry_each_group(struct ps_registry *reg, const char *group,
			      void (*fn)(void *arg, struct ps_lease *l),
			      void *arg)
{
	uint32_t gh = ps_group_hash(group);
	uint32_t p = reg->gbuckets[ps_reg_gbucket(gh)];
	size_t count = 0;

	for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS && n < PS_REG_NPORTS;
	     n++) {
		struct ps_lease *l = &reg->leases[p];

		p = l->gnext;
		if (l->state == PS_LEASE_USED && l->ghash == gh &&
		    strncmp(l->group, group, sizeof(l->group)) == 0) {
			if (fn)
				fn(arg, l);
			count++;
		}
	}
	return count;
}

struct ps_lease *ps_registry_next(struct ps_registry *reg,
				  struct ps_reg_cursor *cur)
{
	while (cur->bucket <= PS_REG_GBUCKETS) {
		uint32_t p = cur->port;
		struct ps_lease *l;

		if (p == 0 || p >= PS_REG_NPORTS ||
		    cur->steps >= PS_REG_NPORTS) {
			/* This chain is done (or corrupt): the next one. */
			if (cur->bucket == PS_REG_GBUCKETS) {
				cur->bucket++;
				break;
			}
			cur->port = reg->gbuckets[cur->bucket++];
			cur->steps = 0;
			continue;
		}
		l = &reg->leases[p];
		/* Read before the caller may free l, which unlinks it. */
		cur->port = l->gnext;
		cur->steps++;
		if (l->state == PS_LEASE_USED)
			return l;
	}
	return NULL;
}

/* What ps_registry_release_group's walk carries. */
struct release {
	struct ps_registry *reg;
	struct ps_reg_bulk bulk;
	size_t count;
};

static void release_one(void *arg, struct ps_lease *l)
{
	struct release *r = arg;

	/* A few are cheaper one by one than a rebuild. */
	if (r->count < 16 && !r->bulk.open)
		ps_registry_free(r->reg, l);
	else
		ps_reg_bulk_free_one(r->reg, &r->bulk, l);
	r->count++;
}

size_t ps_registry_release_group(struct ps_registry *reg, const char *group)
{
	struct release r = { reg, { false, 0 }, 0 };

	/* The walk reads each lease's link before it is freed (a bulk free
	 * keeps the links): one walk of the chain. */
	ps_registry_each_group(reg, group, release_one, &r);
	ps_registry_bulk_end(reg, &r.bulk);
	return r.count;
}
