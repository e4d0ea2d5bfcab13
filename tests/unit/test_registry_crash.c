/* SPDX-License-Identifier: MIT */
/*
 * test_registry_crash.c - a process killed while it holds the registry
 * lock costs the others nothing but the lock's recovery.
 *
 * Deterministic cases: a child opens the registry (its own mapping, at
 * another address than the parent's), takes the lock, leaves the table
 * in a chosen half-changed state, tells the parent, and is SIGKILLed.
 * Half-done transactions are made by writing the header's undo record
 * exactly as the registry's tx_begin does (seq odd, the old lease copied
 * to the undo slot, then undo_port published), then changing the lease.
 * The parent's next lock must repair: roll the lease back, rebuild the
 * chains, count the recovery, pass every invariant, and never report
 * ENOTRECOVERABLE.
 *
 * Statistical case: pairs of children allocate, update and free leases
 * in a loop through the real code and are SIGKILLed at random moments;
 * after every round the parent locks and checks every invariant and that
 * each lease still belongs to the child that made it. Before each repair,
 * lock-free lookups (ps_registry_peek) must either be sent to the lock
 * (a change left open) or agree with the repaired table. PS_CRASH_KILLS
 * (default 300, 200 under valgrind) and PS_CRASH_SEED override the number
 * of kills and the seed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry.h"

#include "fixture.h"

#define LO 20000
#define HI 29999

static struct fixture fx = { .name = "ps-crash" };

/* Allocates a few leases in the parent; returns the first one's port. */
static uint16_t populate(void)
{
	struct ps_reg_guard g;
	uint16_t first = 0, real;

	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	for (int i = 0; i < 10; i++) {
		struct ps_lease t = fx_lease(i % 2 ? "odd" : "even",
					     (uint16_t)(8000 + i), &fx.self);

		assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL,
						   NULL, NULL, &real),
				 0);
		if (i == 0)
			first = real;
	}
	ps_registry_unlock(&fx.reg, &g);
	return first;
}

/* ---------------------------------------------------- the dying child */

/* What the child does while it holds the lock, before it is killed. */
typedef void (*in_lock_fn)(struct ps_registry *reg, uint16_t port);

/* The registry's tx_begin, step by step, as a dying writer leaves it. */
static void sim_tx_begin(struct ps_registry *reg, uint32_t port)
{
	struct ps_reg_header *h = reg->hdr;

	h->seq++;
	memcpy(&h->undo, &reg->leases[port], sizeof(h->undo));
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&h->undo_port, port + 1, __ATOMIC_SEQ_CST);
}

/* What kill_in_lock's child runs, and on which port. */
struct in_lock {
	in_lock_fn fn;
	uint16_t port;
};

/*
 * The child of kill_in_lock (an fx_holder_fn): opens the registry itself,
 * locks it, runs the in_lock's fn and says it is ready.
 */
static int hold_lock(void *arg, int ready)
{
	static struct ps_registry mine;
	const struct in_lock *il = arg;
	struct ps_reg_guard g;

	if (ps_registry_open(&mine, fx.path, NULL) != 0)
		return 2;
	if (ps_registry_lock(&mine, &g) != 0)
		return 3;
	if (il->fn != NULL)
		il->fn(&mine, il->port);
	if (write(ready, "x", 1) != 1)
		return 4;
	return 0;
}

/*
 * Forks a child that opens the registry itself, locks it, runs fn and
 * then waits to be killed; kills it with SIGKILL once it says it is
 * ready. Returns the child's pid (reaped).
 */
static pid_t kill_in_lock(in_lock_fn fn, uint16_t port)
{
	struct in_lock il = { fn, port };
	char b = 0;
	pid_t pid = fx_holder(hold_lock, &il, &b, 1);

	fx_kill(pid);
	return pid;
}

/*
 * Takes the lock after a death: it must succeed (never ENOTRECOVERABLE),
 * count exactly one recovery, and leave a table that passes every check.
 */
static void lock_after_death(struct ps_reg_guard *g)
{
	uint32_t rec = fx.reg.hdr->recoveries;
	int rc = ps_registry_lock(&fx.reg, g);

	assert_int_equal(rc, 0);
	assert_int_equal(fx.reg.hdr->recoveries, rec + 1);
	assert_int_equal(fx.reg.hdr->undo_port, 0);
	assert_int_equal(fx.reg.hdr->seq % 2, 0);
	fx_check(&fx.reg);
}

/* The parts of a lease that recovery must bring back exactly. */
static void assert_same_lease(const struct ps_lease *a,
			      const struct ps_lease *b)
{
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->vport, b->vport);
	assert_int_equal(a->kind, b->kind);
	assert_int_equal(a->protos, b->protos);
	assert_int_equal(a->ghash, b->ghash);
	assert_memory_equal(&a->maker, &b->maker, sizeof(a->maker));
	assert_memory_equal(&a->holder, &b->holder, sizeof(a->holder));
	assert_int_equal(a->created_ns, b->created_ns);
	assert_int_equal(a->expires_ns, b->expires_ns);
	assert_string_equal(a->group, b->group);
}

/* ------------------------------------------------ deterministic deaths */

static void test_crash_plain_holder(void **state)
{
	static struct ps_lease before[PS_REG_NPORTS];
	struct ps_reg_guard g;

	(void)state;
	populate();
	memcpy(before, fx.reg.leases, sizeof(before));
	kill_in_lock(NULL, 0);
	lock_after_death(&g);
	for (uint32_t p = LO; p <= HI; p++)
		if (before[p].state == PS_LEASE_USED)
			assert_same_lease(&fx.reg.leases[p], &before[p]);
	assert_int_equal(fx.reg.hdr->nleases, 10);
	assert_non_null(ps_registry_find(&fx.reg, "even", 8000));
	ps_registry_unlock(&fx.reg, &g);

	/* Recovered once; the next lock is an ordinary one. */
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	ps_registry_unlock(&fx.reg, &g);
	assert_int_equal(fx.reg.hdr->recoveries, 1);
}

/* Killed inside an insert: fields written, linked, counted, not ended. */
static void half_insert(struct ps_registry *reg, uint16_t port)
{
	struct ps_lease *l = &reg->leases[port];

	sim_tx_begin(reg, port);
	l->kind = PS_KIND_GROUP;
	l->vport = 9;
	snprintf(l->group, sizeof(l->group), "ghost");
	l->ghash = ps_group_hash("ghost");
	l->hnext = reg->hbuckets[0];
	reg->hbuckets[0] = port;
	l->gnext = reg->gbuckets[0];
	reg->gbuckets[0] = port;
	reg->hdr->nleases++;
	__atomic_store_n(&l->state, PS_LEASE_USED, __ATOMIC_RELEASE);
}

static void test_crash_mid_insert(void **state)
{
	struct ps_reg_guard g;
	uint16_t port = HI - 5;

	(void)state;
	populate();
	kill_in_lock(half_insert, port);
	lock_after_death(&g);
	assert_null(ps_registry_at(&fx.reg, port));
	assert_null(ps_registry_find(&fx.reg, "ghost", 9));
	assert_int_equal(ps_registry_each_group(&fx.reg, "ghost", NULL, NULL),
			 0);
	assert_int_equal(fx.reg.hdr->nleases, 10);
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * A free's first step: takes the lease at port off its hash chain when it
 * is the first of one (else the chains stay as they are).
 */
static void unhash_head(struct ps_registry *reg, uint16_t port)
{
	for (uint32_t b = 0; b < PS_REG_HBUCKETS; b++) {
		if (reg->hbuckets[b] == port) {
			reg->hbuckets[b] = reg->leases[port].hnext;
			break;
		}
	}
}

/* Killed inside a free: half unlinked, half wiped. */
static void half_free(struct ps_registry *reg, uint16_t port)
{
	struct ps_lease *l = &reg->leases[port];

	sim_tx_begin(reg, port);
	unhash_head(reg, port);
	memset(l, 0, offsetof(struct ps_lease, holder));
	reg->hdr->nleases--;
}

/*
 * A child dies in fn, inside a change of the first lease that populate()
 * made; the next lock must have rolled that lease back to what it was.
 * Returns with the lock held through g.
 */
static void rolled_back(in_lock_fn fn, struct ps_reg_guard *g)
{
	struct ps_lease before;
	uint16_t port = populate();

	before = fx.reg.leases[port];
	kill_in_lock(fn, port);
	lock_after_death(g);
	assert_same_lease(&fx.reg.leases[port], &before);
	assert_ptr_equal(ps_registry_find(&fx.reg, "even", 8000),
			 &fx.reg.leases[port]);
}

static void test_crash_mid_free(void **state)
{
	struct ps_reg_guard g;

	(void)state;
	rolled_back(half_free, &g);
	assert_int_equal(ps_registry_each_group(&fx.reg, "even", NULL, NULL),
			 5);
	assert_int_equal(fx.reg.hdr->nleases, 10);
	ps_registry_unlock(&fx.reg, &g);
}

/* Killed inside an update that moves the lease to another group. */
static void half_update(struct ps_registry *reg, uint16_t port)
{
	struct ps_lease *l = &reg->leases[port];

	sim_tx_begin(reg, port);
	snprintf(l->group, sizeof(l->group), "elsewhere");
	l->vport = 1;
	/* ghash not yet updated: the lease is inconsistent on its own. */
}

static void test_crash_mid_update(void **state)
{
	struct ps_reg_guard g;

	(void)state;
	rolled_back(half_update, &g);
	assert_null(ps_registry_find(&fx.reg, "elsewhere", 1));
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * Killed after a free was complete and its undo record retired, but
 * before the sequence word was made even: the change stands.
 */
static void free_then_die(struct ps_registry *reg, uint16_t port)
{
	struct ps_lease *l = &reg->leases[port];

	sim_tx_begin(reg, port);
	unhash_head(reg, port);
	for (uint32_t b = 0; b < PS_REG_GBUCKETS; b++) {
		uint32_t *link = &reg->gbuckets[b];

		while (*link != 0 && *link != port)
			link = &reg->leases[*link].gnext;
		if (*link == port) {
			*link = l->gnext;
			break;
		}
	}
	memset(l, 0, sizeof(*l));
	reg->hdr->nleases--;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&reg->hdr->undo_port, 0, __ATOMIC_SEQ_CST);
	/* seq stays odd */
}

static void test_crash_after_commit(void **state)
{
	struct ps_reg_guard g;
	uint16_t port;

	(void)state;
	port = populate();
	kill_in_lock(free_then_die, port);
	lock_after_death(&g);
	assert_null(ps_registry_at(&fx.reg, port));
	assert_null(ps_registry_find(&fx.reg, "even", 8000));
	assert_int_equal(fx.reg.hdr->nleases, 9);
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * A writer that broke the protocol (garbage written outside any
 * transaction) is cleaned up: invalid leases are discarded.
 */
static void scribble(struct ps_registry *reg, uint16_t port)
{
	reg->leases[port].state = 0xdeadbeef;
	reg->leases[port + 1].state = PS_LEASE_USED;
	reg->leases[port + 1].kind = PS_KIND_GROUP;
	reg->leases[port + 1].vport = 5;
	memcpy(reg->leases[port + 1].group, "bad/name", 9);
	reg->leases[port + 2].state = PS_LEASE_USED;
	reg->leases[port + 2].kind = 77;
	reg->hdr->nleases = 123456;
	reg->hbuckets[7] = 70000; /* out of range */
	reg->gbuckets[3] = port;  /* a chain into garbage */
	reg->hdr->next_hint = 0xffffffff;
}

static void test_crash_garbage(void **state)
{
	struct ps_reg_guard g;
	uint16_t port = HI - 10;

	(void)state;
	populate();
	kill_in_lock(scribble, port);
	lock_after_death(&g);
	for (int i = 0; i < 3; i++)
		assert_null(ps_registry_at(&fx.reg, (uint16_t)(port + i)));
	assert_int_equal(fx.reg.hdr->nleases, 10);
	assert_true(fx.reg.hdr->next_hint < PS_REG_NPORTS);
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * The second owner of test_crash_during_repair (an fx_holder_fn): takes
 * the mutex itself, reports 'd' if it got EOWNERDEAD ('n' if not), and
 * has wiped the chains when it is killed.
 */
static int repair_then_die(void *arg, int fd)
{
	static struct ps_registry mine;
	char b;
	int rc;

	(void)arg;
	if (ps_registry_open(&mine, fx.path, NULL) != 0)
		return 2;
	rc = pthread_mutex_lock(&mine.hdr->lock.mutex);
	b = rc == EOWNERDEAD ? 'd' : 'n';
	/* The first steps of a repair, then death. */
	memset(mine.hbuckets, 0, PS_REG_HBUCKETS * sizeof(uint32_t));
	memset(mine.gbuckets, 0, PS_REG_GBUCKETS * sizeof(uint32_t));
	mine.hdr->nleases = 0;
	if (write(fd, &b, 1) != 1)
		return 4;
	return 0;
}

/*
 * The next owner dies too, in the middle of the repair (here: it took
 * the lock, got EOWNERDEAD and had wiped the chains when it was killed).
 * The lock stays recoverable and the third owner repairs fully.
 */
static void test_crash_during_repair(void **state)
{
	struct ps_reg_guard g;
	uint32_t rec;
	uint16_t port;
	char b;
	pid_t pid;

	(void)state;
	port = populate();
	rec = fx.reg.hdr->recoveries;
	kill_in_lock(half_free, port);

	pid = fx_holder(repair_then_die, NULL, &b, 1);
	assert_int_equal(b, 'd');
	fx_kill(pid);

	lock_after_death(&g);
	assert_int_equal(fx.reg.hdr->recoveries, rec + 1);
	assert_ptr_equal(ps_registry_find(&fx.reg, "even", 8000),
			 &fx.reg.leases[port]);
	assert_int_equal(fx.reg.hdr->nleases, 10);
	ps_registry_unlock(&fx.reg, &g);
}

/*
 * The child of test_crash_exec_while_holding (an fx_holder_fn): locks the
 * registry through a mapping of its own, says so, and execs sleep while
 * it holds the lock.
 */
static int exec_in_lock(void *arg, int ready)
{
	static struct ps_registry mine;
	struct ps_reg_guard g;

	(void)arg;
	if (ps_registry_open(&mine, fx.path, NULL) != 0 ||
	    ps_registry_lock(&mine, &g) != 0)
		return 2;
	/* The pipe's write end is inherited by sleep; closing it
	 * there would be as good as the byte. */
	if (write(ready, "x", 1) != 1)
		return 3;
	execl("/bin/sleep", "sleep", "30", (char *)NULL);
	return 4;
}

/*
 * PITFALLS 8: a process that execs while holding the lock gives the next
 * locker EOWNERDEAD although it is alive. Recovery works the same, and
 * the table never relied on it being dead.
 */
static void test_crash_exec_while_holding(void **state)
{
	struct ps_reg_guard g;
	char b;
	pid_t pid;

	(void)state;
	populate();
	pid = fx_holder(exec_in_lock, NULL, &b, 1);
	lock_after_death(&g);
	assert_int_equal(kill(pid, 0), 0); /* alive, in sleep */
	assert_int_equal(fx.reg.hdr->nleases, 10);
	ps_registry_unlock(&fx.reg, &g);
	fx_kill(pid);
}

/* ------------------------------------------------------ random deaths */

/*
 * True under valgrind (scripts/test sets PS_UNDER_VALGRIND=1; valgrind's
 * own preload in LD_PRELOAD says so too): the slowest loops are then
 * shortened, the memory checks being the point of that run.
 */
static bool under_valgrind(void)
{
	const char *v = getenv("PS_UNDER_VALGRIND");
	const char *p = getenv("LD_PRELOAD");

	return (v != NULL && strcmp(v, "1") == 0) ||
	       (p != NULL && strstr(p, "vgpreload") != NULL);
}

#define NPEEK 16 /* lock-free lookups checked after each round */
#define RLO 20000
#define RHI 20511 /* 512 ports: the range fills, gc runs under kills */

static unsigned long env_ul(const char *name, unsigned long dflt)
{
	const char *v = getenv(name);

	return v != NULL && *v ? strtoul(v, NULL, 10) : dflt;
}

/* A child's endless work: allocations, updates, frees, a release. */
static void churn(int idx, unsigned seed, int ready)
{
	static struct ps_registry mine;
	struct ps_ident me;
	char group[16];

	if (ps_registry_open(&mine, fx.path, NULL) != 0 ||
	    ps_proc_self(&me) != 0)
		_exit(2);
	snprintf(group, sizeof(group), "c%d", idx);
	srandom(seed);
	if (write(ready, "r", 1) != 1)
		_exit(3);
	for (;;) {
		struct ps_reg_guard g;
		int rc = ps_registry_lock(&mine, &g);

		if (rc != 0)
			_exit(10 + (rc == -ENOTRECOVERABLE));
		for (int k = 0; k < 16; k++) {
			long r = random();
			uint16_t port = (uint16_t)(RLO + r % (RHI - RLO + 1));
			struct ps_lease *l = ps_registry_at(&mine, port);
			bool own = l != NULL && strcmp(l->group, group) == 0;

			switch ((r >> 10) % 8) {
			case 0:
			case 1:
				if (own)
					ps_registry_free(&mine, l);
				break;
			case 2:
				if (own) {
					struct ps_lease nl = *l;

					nl.protos ^=
						(uint8_t)PS_PROTO_BIT(PS_UDP);
					nl.vport = (uint16_t)(1 +
							      (r >> 13) % 5000);
					if (ps_registry_find(&mine, group,
							     nl.vport) == NULL)
						ps_registry_update(&mine, l,
								   &nl);
				}
				break;
			case 3:
				if ((r >> 13) % 64 == 0)
					ps_registry_release_group(&mine, group);
				break;
			default: {
				uint16_t v = (uint16_t)(1 + (r >> 13) % 5000);
				struct ps_lease t = fx_lease(group, v, &me);
				uint16_t real;

				if (ps_registry_find(&mine, group, t.vport) ==
				    NULL)
					ps_registry_alloc(&mine, &t, RLO, RHI,
							  NULL, NULL, NULL,
							  &real);
				break;
			}
			}
		}
		ps_registry_unlock(&mine, &g);
		if (random() % 4 == 0)
			usleep(20);
	}
}

/* Which child churn() is, and its random seed. */
struct churn_arg {
	int idx;
	unsigned seed;
};

/* churn() as an fx_holder_fn; it never returns. */
static int churn_child(void *arg, int ready)
{
	const struct churn_arg *c = arg;

	churn(c->idx, c->seed, ready);
	return 1;
}

/* Starts child idx's churn(); returns once it has the registry open. */
static pid_t start_churn(int idx, unsigned seed)
{
	struct churn_arg c = { idx, seed };
	char b;

	return fx_holder(churn_child, &c, &b, 1);
}

/*
 * Lock held: every lease of RLO..RHI is of a group "cN" with N < n, made
 * (and, with holder, held) by pids[N], and is what a lookup of its
 * (group, vport) finds.
 */
static void check_makers(const pid_t *pids, int n, bool holder)
{
	for (uint32_t p = RLO; p <= RHI; p++) {
		const struct ps_lease *l = ps_registry_at(&fx.reg, (uint16_t)p);
		int owner;

		if (l == NULL)
			continue;
		assert_int_equal(sscanf(l->group, "c%d", &owner), 1);
		assert_in_range(owner, 0, n - 1);
		if (holder)
			assert_int_equal(l->holder.pid, pids[owner]);
		assert_int_equal(l->maker.pid, pids[owner]);
		assert_ptr_equal(ps_registry_find(&fx.reg, l->group, l->vport),
				 l);
	}
}

static void test_crash_random_kills(void **state)
{
	static pid_t pids[100000];
	unsigned long kills =
		env_ul("PS_CRASH_KILLS", under_valgrind() ? 200 : 300);
	unsigned seed =
		(unsigned)env_ul("PS_CRASH_SEED", (unsigned long)time(NULL));
	unsigned long done = 0, in_lock = 0, in_tx = 0, odd = 0;
	unsigned long max_leases = 0, gc_rounds = 0, peeked = 0;
	static struct ps_lease sample[NPEEK];
	struct {
		char group[16];
		uint16_t vport, real;
		int rc;
	} peeks[NPEEK];
	int nsample = 0;
	bool was_odd;
	double t0 = fx_now();
	int idx = 0;

	(void)state;
	if (kills > 2 * 100000)
		kills = 2 * 100000;
	srandom(seed);
	fprintf(stderr, "# random kills: seed %u (PS_CRASH_SEED)\n", seed);
	while (done < kills) {
		struct ps_reg_guard g;
		uint32_t rec;
		int a = idx++, b = idx++, status;

		/* Two children at once, so that one may die in the middle
		 * of the repair after the other's death. */
		pids[a] = start_churn(a, seed + (unsigned)a);
		pids[b] = start_churn(b, seed + (unsigned)b);
		usleep((useconds_t)(random() % 3000));
		assert_return_code(kill(pids[a], SIGKILL), errno);
		usleep((useconds_t)(random() % 300));
		assert_return_code(kill(pids[b], SIGKILL), errno);
		for (int i = 0; i < 2; i++) {
			pid_t pid = i ? pids[b] : pids[a];

			assert_int_equal(waitpid(pid, &status, 0), pid);
			if (!WIFSIGNALED(status))
				fail_msg("child %d ended by itself with %d "
					 "(10: lock failed, 11: "
					 "ENOTRECOVERABLE)",
					 i ? b : a, WEXITSTATUS(status));
		}
		done += 2;

		/* Nobody else runs now: what the dead left is stable. */
		if (fx.reg.hdr->undo_port != 0)
			in_tx++;
		if (fx.reg.hdr->seq & 1)
			odd++;
		/*
		 * Lock-free readers before the repair: with a change left
		 * open (odd sequence word) they must be sent to the lock;
		 * otherwise their answer must be the repaired table's.
		 */
		for (int k = 0; k < NPEEK; k++) {
			snprintf(peeks[k].group, sizeof(peeks[k].group), "c%d",
				 (int)(random() % idx));
			peeks[k].vport = (uint16_t)(1 + random() % 5000);
			if (k < nsample) {
				memcpy(peeks[k].group, sample[k].group,
				       sizeof(peeks[k].group));
				peeks[k].vport = sample[k].vport;
			}
			peeks[k].rc = ps_registry_peek(&fx.reg, peeks[k].group,
						       peeks[k].vport,
						       &peeks[k].real);
		}
		was_odd = fx.reg.hdr->seq & 1;
		rec = fx.reg.hdr->recoveries;
		assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
		in_lock += fx.reg.hdr->recoveries - rec;
		fx_check(&fx.reg);
		for (int k = 0; k < NPEEK; k++) {
			struct ps_lease *l = ps_registry_find(
				&fx.reg, peeks[k].group, peeks[k].vport);

			if (was_odd) {
				assert_int_equal(peeks[k].rc, -EAGAIN);
				continue;
			}
			if (l == NULL) {
				assert_int_equal(peeks[k].rc, -ENOENT);
			} else {
				assert_int_equal(peeks[k].rc, 0);
				assert_int_equal(peeks[k].real,
						 ps_registry_port(&fx.reg, l));
				peeked++;
			}
		}
		/* Next round's samples: leases that exist now. */
		nsample = 0;
		for (uint32_t p = RLO; p <= RHI && nsample < NPEEK / 2; p++) {
			const struct ps_lease *l =
				ps_registry_at(&fx.reg, (uint16_t)p);

			if (l != NULL && random() % 8 == 0)
				sample[nsample++] = *l;
		}
		if (fx.reg.hdr->nleases > max_leases)
			max_leases = fx.reg.hdr->nleases;
		if (fx.reg.hdr->nleases >= RHI - RLO + 1 - 16)
			gc_rounds++;
		/* Each lease belongs to the child that made it. */
		check_makers(pids, idx, true);
		ps_registry_unlock(&fx.reg, &g);
	}
	/* Every owner is dead now: gc takes everything back. */
	{
		struct ps_reg_guard g;
		size_t n;

		assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
		n = ps_registry_gc(&fx.reg, false, NULL, NULL);
		assert_int_equal(fx.reg.hdr->nleases, 0);
		fx_check(&fx.reg);
		ps_registry_unlock(&fx.reg, &g);
		fprintf(stderr,
			"# random kills: %lu kills (%d children, 2 at a time)"
			" in %.2f s; %lu recoveries (a child died holding the"
			" lock), %lu deaths inside a transaction, %lu with the"
			" sequence word odd; up to %lu leases, range full in"
			" %lu rounds; final gc freed %zu; registry recoveries"
			" %u; %lu lock-free lookups of live leases agreed\n",
			done, idx, fx_now() - t0, in_lock, in_tx, odd,
			max_leases, gc_rounds, n, fx.reg.hdr->recoveries,
			peeked);
	}
	/*
	 * The deaths really happened inside the lock (137 of 300 is usual;
	 * none at all would mean the children never held it). Where in a
	 * change they land is chance: a busy machine can give none inside a
	 * transaction, so that count is reported, not asserted; the
	 * mid_insert, mid_free and mid_update tests kill inside a change
	 * every time.
	 */
	assert_true(in_lock > 0);
}

/* ------------------------------------- random deaths, clones and vforks */

/* Counters shared by the test and every child (an anonymous shared page). */
struct clone_stats {
	unsigned long refused_clone; /* raw clone child: lock refused */
	unsigned long refused_vfork; /* vfork child: lock refused */
	unsigned long taken_clone;   /* raw clone child got it: must be 0 */
	unsigned long taken_vfork;   /* vfork child got it: must be 0 */
	unsigned long old_clone;     /* raw clone child took the mutex itself */
	unsigned long old_vfork;     /* vfork child took the mutex itself */
};

static struct clone_stats *cst;

static void bump(unsigned long *c)
{
	__atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static pid_t raw_clone(void)
{
	return (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL, NULL, NULL);
}

/*
 * A raw clone child that takes the mutex behind the registry's back, as
 * an older program would: in its parent's name, with no robust list.
 * It changes nothing in the table (it could not repair it); on
 * EOWNERDEAD it keeps the lock, as a careless program would.
 */
static void old_style_locker(pthread_mutex_t *m, unsigned seed)
{
	srandom(seed);
	for (;;) {
		int rc = pthread_mutex_lock(m);

		if (rc == EOWNERDEAD || rc == ENOTRECOVERABLE)
			for (;;)
				pause();
		if (rc == 0) {
			bump(&cst->old_clone);
			usleep((useconds_t)(random() % 200));
			pthread_mutex_unlock(m);
		}
		usleep((useconds_t)(random() % 300));
	}
}

/* A raw clone child that asks the registry for the lock: refused. */
static void new_style_asker(struct ps_registry *reg)
{
	for (;;) {
		struct ps_reg_guard g;
		int rc = ps_registry_lock(reg, &g);

		if (rc == 0) {
			bump(&cst->taken_clone);
			ps_registry_unlock(reg, &g);
		} else if (rc == -ENOLCK) {
			bump(&cst->refused_clone);
		}
		usleep(100);
	}
}

/*
 * The family: a process that starts the two raw clone children above and
 * then makes vfork children in a loop, each asking for the lock (refused)
 * or, one time in four, taking the mutex itself in its parent's name.
 * Reports the two clone children's pids through ready.
 */
static int clone_family(void *arg, int ready)
{
	static struct ps_registry mine;
	unsigned seed = *(unsigned *)arg;
	pid_t kids[2];

	if (ps_registry_open(&mine, fx.path, NULL) != 0)
		return 2;
	kids[0] = raw_clone();
	if (kids[0] == 0)
		old_style_locker(&mine.hdr->lock.mutex, seed);
	kids[1] = raw_clone();
	if (kids[1] == 0)
		new_style_asker(&mine);
	if (kids[0] < 0 || kids[1] < 0 ||
	    write(ready, kids, sizeof(kids)) != sizeof(kids))
		return 3;
	srandom(seed + 1);
	for (;;) {
		bool old = random() % 4 == 0;
		useconds_t nap = (useconds_t)(random() % 200);
		pid_t pid = vfork();

		if (pid == 0) {
			struct ps_reg_guard g;
			int rc;

			if (old) {
				rc = pthread_mutex_lock(&mine.hdr->lock.mutex);
				if (rc == 0) {
					bump(&cst->old_vfork);
					usleep(nap);
					pthread_mutex_unlock(
						&mine.hdr->lock.mutex);
				}
				_exit(0);
			}
			rc = ps_registry_lock(&mine, &g);
			if (rc == 0) {
				bump(&cst->taken_vfork);
				ps_registry_unlock(&mine, &g);
			} else if (rc == -ENOLCK) {
				bump(&cst->refused_vfork);
			}
			_exit(0);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
		usleep(nap);
	}
	return 0;
}

/* The parent of pid, from /proc (0 if it is gone). */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(buf, sizeof(buf), f) != NULL &&
	    (p = strrchr(buf, ')')) != NULL)
		sscanf(p + 1, " %*c %d", &ppid);
	fclose(f);
	return (pid_t)ppid;
}

/*
 * Makes family start no new child, then kills each of its children (a
 * vfork child in progress, the raw clone children). Once SIGSTOP is
 * pending, a fork or vfork of the family is undone and restarted after
 * the signal (the kernel checks for pending signals at the end of
 * copy_process), and every child made before is in /proc; a family
 * waiting for its vfork child stops when the child dies. Returns how
 * many vfork children were killed.
 */
static unsigned long stop_children(pid_t family, const pid_t kids[2])
{
	unsigned long n = 0;
	struct dirent *d;
	DIR *dir;

	assert_return_code(kill(family, SIGSTOP), errno);
	dir = opendir("/proc");
	assert_non_null(dir);
	while ((d = readdir(dir)) != NULL) {
		pid_t pid = (pid_t)atoi(d->d_name);

		if (pid <= 0 || parent_of(pid) != family)
			continue;
		if (kill(pid, SIGKILL) == 0 && pid != kids[0] && pid != kids[1])
			n++;
	}
	closedir(dir);
	return n;
}

/* Waits for pid (ours, or reparented to us: we are a subreaper). */
static void reap(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
}

/*
 * At least PS_CRASH_CLONE_KILLS (default 500) SIGKILLs, in rounds: two
 * churning children, a family with a raw clone child that takes the mutex
 * itself (no robust list, its parent's thread id), a raw clone child and
 * vfork children that ask the registry for the lock, all killed at random
 * moments and in random order (the family after its children: see the
 * loop). After each round the test takes the lock
 * within the bound (no wedge), checks every invariant and that each lease
 * is its maker's (no port in two leases, no (group, vport) twice).
 */
static void test_crash_clone_kills(void **state)
{
	unsigned long kills =
		env_ul("PS_CRASH_CLONE_KILLS", under_valgrind() ? 100 : 500);
	unsigned seed =
		(unsigned)env_ul("PS_CRASH_SEED", (unsigned long)time(NULL));
	unsigned long done = 0, rounds = 0, in_lock = 0, released = 0;
	unsigned long by[4] = { 0 }; /* churn, old clone, asker, vfork */
	static pid_t owners[4096];
	double t0 = fx_now();
	int idx = 0;

	(void)state;
	cst = mmap(NULL, sizeof(*cst), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(cst != MAP_FAILED);
	memset(cst, 0, sizeof(*cst));
	fx.reg.lock_timeout_ms = 30000;
	srandom(seed);
	fprintf(stderr, "# clone kills: seed %u (PS_CRASH_SEED)\n", seed);
	while (done < kills &&
	       idx + 2 < (int)(sizeof(owners) / sizeof(owners[0]))) {
		pid_t victims[6], kids[2], family;
		int kind[6], n = 0, a = idx++, b = idx++;
		unsigned fseed = seed + (unsigned)(3 * a);
		struct ps_reg_guard g;
		uint32_t rec, w;

		owners[a] = start_churn(a, seed + (unsigned)a);
		owners[b] = start_churn(b, seed + (unsigned)b);
		family = fx_holder(clone_family, &fseed, kids, sizeof(kids));
		usleep((useconds_t)(random() % 3000));
		victims[n] = owners[a], kind[n++] = 0;
		victims[n] = owners[b], kind[n++] = 0;
		victims[n] = kids[0], kind[n++] = 1;
		victims[n] = kids[1], kind[n++] = 2;
		victims[n] = family, kind[n++] = 3;
		/* Shuffle: the order of deaths is part of the test. */
		for (int i = n - 1; i > 0; i--) {
			int j = (int)(random() % (i + 1)), t = kind[i];
			pid_t v = victims[i];

			victims[i] = victims[j], victims[j] = v;
			kind[i] = kind[j], kind[j] = t;
		}
		for (int i = 0; i < n; i++) {
			/*
			 * The family dies after its children: every child
			 * locks in its name, and a lock whose word names a
			 * dead thread is released (by the kernel, from the
			 * family's robust list, or by a waiter) even if a
			 * child that took it still runs. That child's
			 * unlock then races with the next holder: glibc
			 * checks the word, then clears it, and clears the
			 * next holder's lock in the middle of its change.
			 * No lock can survive a process that takes it in
			 * another's name and outlives it; the registry
			 * refuses such children (PITFALLS 34) and this
			 * test's older programs are killed with the family.
			 */
			if (kind[i] == 3) {
				unsigned long v = stop_children(family, kids);

				by[3] += v;
				done += v;
			}
			assert_return_code(kill(victims[i], SIGKILL), errno);
			done++;
			by[kind[i]]++;
			usleep((useconds_t)(random() % 300));
		}
		/* The family first: its raw clone children come to us. */
		reap(family);
		reap(owners[a]);
		reap(owners[b]);
		reap(kids[0]);
		reap(kids[1]);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			; /* a vfork child that outlived its parent */

		/* Nobody runs now. What did the dead leave in the word? */
		w = __atomic_load_n((uint32_t *)(void *)&fx.reg.hdr->lock.mutex,
				    __ATOMIC_RELAXED);
		if ((w & FUTEX_TID_MASK) != 0 && !(w & FUTEX_OWNER_DIED))
			released++; /* no robust list released it */
		rec = fx.reg.hdr->recoveries;
		{
			int rc = ps_registry_lock(&fx.reg, &g);
			char why[320];

			if (rc != 0)
				fail_msg("round %lu: wedged: %s", rounds,
					 ps_registry_strerror(&fx.reg, &g, rc,
							      why,
							      sizeof(why)));
		}
		in_lock += fx.reg.hdr->recoveries - rec;
		fx_check(&fx.reg);
		check_makers(owners, idx, false);
		ps_registry_unlock(&fx.reg, &g);
		rounds++;
	}
	fprintf(stderr,
		"# clone kills: %lu SIGKILLs in %lu rounds in %.1f s (%lu of"
		" churning children, %lu of raw clone children holding the"
		" mutex themselves, %lu of raw clone children asking, %lu of"
		" vfork families and children); %lu rounds ended with the lock"
		" held by a dead process without a robust list, released;"
		" %lu recoveries; 0 wedges; raw clone asks refused %lu, taken"
		" %lu; vfork asks refused %lu, taken %lu; mutex taken behind"
		" the registry's back by raw clone children %lu, vfork"
		" children %lu\n",
		done, rounds, fx_now() - t0, by[0], by[1], by[2], by[3],
		released, in_lock, cst->refused_clone, cst->taken_clone,
		cst->refused_vfork, cst->taken_vfork, cst->old_clone,
		cst->old_vfork);
	assert_true(done >= kills);
	assert_int_equal(cst->taken_clone, 0);
	assert_int_equal(cst->taken_vfork, 0);
	/* The children really asked (under valgrind, a round may end
	 * before a slow child gets that far: the memory checks are the
	 * point of that run). */
	if (!under_valgrind()) {
		assert_true(cst->refused_clone > 0);
		assert_true(cst->refused_vfork > 0);
	}
	munmap(cst, sizeof(*cst));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) \
	cmocka_unit_test_prestate_setup_teardown(f, fx_setup, fx_teardown, &fx)
		T(test_crash_plain_holder),  T(test_crash_mid_insert),
		T(test_crash_mid_free),	     T(test_crash_mid_update),
		T(test_crash_after_commit),  T(test_crash_garbage),
		T(test_crash_during_repair), T(test_crash_exec_while_holding),
		T(test_crash_random_kills),  T(test_crash_clone_kills),
#undef T
	};

	/* PS_TEST_FILTER=pattern runs only the matching tests. */
	if (getenv("PS_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("PS_TEST_FILTER"));
	/* Raw clone children whose parent is killed come back to be reaped. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
