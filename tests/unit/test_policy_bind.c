/* SPDX-License-Identifier: MIT */
/*
 * test_policy_bind.c - the policy's lock-free paths. A repeat bind: a
 * process binding again a virtual port whose lease it made takes its
 * real port from a lock-free read, and the sequence word checked after
 * the bind proves the lease was still there. The races are made
 * deterministic: try_bind, called between the read and the check,
 * changes the table the way another process would (gc reclaiming the
 * lease, another group taking its port, an unrelated lease). And
 * ps_policy_reverse's lock-free read of a real port's lease. And the
 * memo of those reads (memo.h): answers that follow every change.
 *
 * Real sockets on 127.0.0.1, a registry of its own in a fresh folder
 * under /tmp.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

#define VPORT 8080
/* Real ports no other test uses: the kernel's port space is shared. */
#define LO 11000
#define HI 11099

/* What try_bind does before it binds, to stand for another process. */
enum meddle {
	MEDDLE_NONE,
	MEDDLE_RECLAIM, /* the lease is freed (gc of a dead holder) */
	MEDDLE_STEAL,	/* ... and another group leases its port */
	MEDDLE_OTHER,	/* another group makes a lease elsewhere */
};

static struct {
	char dir[64];
	char reg_path[128];
	char range[32];
	struct ps_config cfg;
	struct ps_policy pol;
	struct ps_ident self;
	int fd;	      /* the socket under test, or -1 */
	int calls;    /* try_bind calls */
	int unlocked; /* of which without the registry lock */
	enum meddle meddle;
} fx;

static const char *fx_getenv(const char *name)
{
	if (strcmp(name, "PORTSHIM_PORTS") == 0)
		return "8080";
	if (strcmp(name, "PORTSHIM_REGISTRY") == 0)
		return fx.reg_path;
	if (strcmp(name, "PORTSHIM_RANGE") == 0)
		return fx.range;
	if (strcmp(name, "PORTSHIM_LOG") == 0)
		return "none";
	return NULL;
}

/* Frees (group, vport)'s lease under the lock; returns its real port. */
static uint16_t reclaim(const char *group, uint16_t vport)
{
	struct ps_reg_guard g;
	struct ps_lease *l;
	uint16_t real = 0;

	if (ps_registry_lock(&fx.pol.reg, &g) != 0)
		return 0;
	l = ps_registry_find(&fx.pol.reg, group, vport);
	if (l != NULL) {
		real = ps_registry_port(&fx.pol.reg, l);
		ps_registry_free(&fx.pol.reg, l);
	}
	ps_registry_unlock(&fx.pol.reg, &g);
	return real;
}

static int no_bind(void *arg, uint16_t real)
{
	(void)arg;
	(void)real;
	return 0;
}

/* Leases port [lo, hi] to group "other" for vport. */
static int lease_other(uint16_t vport, uint16_t lo, uint16_t hi)
{
	struct ps_reg_guard g;
	struct ps_lease tmpl;
	uint16_t got;
	int rc;

	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.kind = PS_KIND_GROUP;
	tmpl.vport = vport;
	snprintf(tmpl.group, sizeof(tmpl.group), "other");
	tmpl.maker = fx.self;
	tmpl.holder = fx.self;
	tmpl.protos = PS_PROTO_BIT(PS_TCP);
	rc = ps_registry_lock(&fx.pol.reg, &g);
	if (rc != 0)
		return rc;
	rc = ps_registry_alloc(&fx.pol.reg, &tmpl, lo, hi, NULL, no_bind, NULL,
			       &got);
	ps_registry_unlock(&fx.pol.reg, &g);
	return rc;
}

static int try_bind(void *arg, uint16_t real)
{
	struct sockaddr_in sin;
	pthread_mutex_t *m = &fx.pol.reg.hdr->lock.mutex;
	int rc;

	(void)arg;
	fx.calls++;
	/* Held by us (the locked path) or free (the lock-free one). */
	rc = pthread_mutex_trylock(m);
	if (rc == 0) {
		pthread_mutex_unlock(m);
		fx.unlocked++;
		switch (fx.meddle) {
		case MEDDLE_RECLAIM:
			reclaim(fx.pol.group, VPORT);
			break;
		case MEDDLE_STEAL:
			reclaim(fx.pol.group, VPORT);
			lease_other(VPORT, real, real);
			break;
		case MEDDLE_OTHER:
			lease_other(VPORT + 1, LO, HI);
			break;
		case MEDDLE_NONE:
			break;
		}
		fx.meddle = MEDDLE_NONE;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(real);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fx.fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		return -errno;
	return 0;
}

/* A fresh socket for the next bind. */
static void new_socket(void)
{
	if (fx.fd >= 0)
		close(fx.fd);
	fx.fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_return_code(fx.fd, errno);
	fx.calls = 0;
	fx.unlocked = 0;
}

/* The real port the socket has, by the kernel. */
static uint16_t bound_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	assert_return_code(getsockname(fx.fd, (struct sockaddr *)&sin, &len),
			   errno);
	return ntohs(sin.sin_port);
}

static uint16_t bind_vport(int want)
{
	uint16_t real = 0;

	assert_int_equal(ps_policy_bind(&fx.pol, PS_TCP, VPORT, try_bind, NULL,
					&real, "tcp test"),
			 want);
	return real;
}

static int setup(void **state)
{
	char errs[512] = "";

	(void)state;
	memset(&fx, 0, sizeof(fx));
	fx.fd = -1;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/ps-pbind.XXXXXX");
	assert_non_null(mkdtemp(fx.dir));
	snprintf(fx.reg_path, sizeof(fx.reg_path), "%s/registry", fx.dir);
	snprintf(fx.range, sizeof(fx.range), "%d-%d", LO, HI);
	if (ps_config_load(&fx.cfg, fx_getenv, errs, sizeof(errs)) != 0)
		fail_msg("configuration: %s", errs);
	assert_int_equal(ps_policy_init(&fx.pol, &fx.cfg, "pbind", NULL), 0);
	assert_int_equal(ps_policy_open(&fx.pol), 0);
	assert_int_equal(ps_proc_self(&fx.self), 0);
	return 0;
}

static int teardown(void **state)
{
	struct ps_reg_error err = { "" };

	(void)state;
	if (fx.fd >= 0)
		close(fx.fd);
	/* Every test leaves a table that passes every check. */
	assert_int_equal(ps_registry_check(&fx.pol.reg, &err), 0);
	unlink(fx.reg_path);
	rmdir(fx.dir);
	return 0;
}

/* The first bind allocates under the lock; the repeat takes none. */
static void test_repeat_without_lock(void **state)
{
	uint16_t first, again;

	(void)state;
	new_socket();
	first = bind_vport(0);
	assert_in_range(first, LO, HI);
	assert_int_equal(bound_port(), first);
	assert_int_equal(fx.unlocked, 0);

	new_socket();
	again = bind_vport(0);
	assert_int_equal(again, first);
	assert_int_equal(bound_port(), first);
	assert_int_equal(fx.calls, 1);
	assert_int_equal(fx.unlocked, 1);
}

/* Another group's change between the read and the check: still ours. */
static void test_repeat_other_change(void **state)
{
	uint16_t first, again;

	(void)state;
	new_socket();
	first = bind_vport(0);
	new_socket();
	fx.meddle = MEDDLE_OTHER;
	again = bind_vport(0);
	assert_int_equal(again, first);
	assert_int_equal(fx.unlocked, 1);
	assert_int_equal(fx.calls, 1);
}

/* The lease reclaimed while the socket took its port: made again there. */
static void test_repeat_reclaimed(void **state)
{
	struct ps_reg_guard g;
	struct ps_lease *l;
	uint16_t first, again;

	(void)state;
	new_socket();
	first = bind_vport(0);
	new_socket();
	fx.meddle = MEDDLE_RECLAIM;
	again = bind_vport(0);
	assert_int_equal(again, first);
	assert_int_equal(bound_port(), first);
	/* One bind only: the socket kept the port it took. */
	assert_int_equal(fx.calls, 1);
	assert_int_equal(ps_registry_lock(&fx.pol.reg, &g), 0);
	l = ps_registry_find(&fx.pol.reg, fx.pol.group, VPORT);
	assert_non_null(l);
	assert_int_equal(ps_registry_port(&fx.pol.reg, l), first);
	assert_int_equal(l->maker.pid, fx.self.pid);
	ps_registry_unlock(&fx.pol.reg, &g);
}

/*
 * A bind of a fresh socket while another group takes real port first
 * (MEDDLE_STEAL): the bind fails, the port is the other group's, and
 * ours has no lease of VPORT.
 */
static void bind_stolen(uint16_t first)
{
	struct ps_reg_guard g;
	struct ps_lease *l;

	new_socket();
	fx.meddle = MEDDLE_STEAL;
	bind_vport(-EADDRINUSE);
	assert_int_equal(ps_registry_lock(&fx.pol.reg, &g), 0);
	l = ps_registry_at(&fx.pol.reg, first);
	assert_non_null(l);
	assert_string_equal(l->group, "other");
	assert_null(ps_registry_find(&fx.pol.reg, fx.pol.group, VPORT));
	ps_registry_unlock(&fx.pol.reg, &g);
}

/* The port given to another group meanwhile: the bind fails. */
static void test_repeat_stolen(void **state)
{
	uint16_t first;

	(void)state;
	new_socket();
	first = bind_vport(0);
	bind_stolen(first);
}

/* Another process's lease (its maker): the locked path claims it. */
static void test_other_maker_locked(void **state)
{
	struct ps_reg_guard g;
	struct ps_lease *l, nl;
	uint16_t first;

	(void)state;
	new_socket();
	first = bind_vport(0);
	assert_int_equal(ps_registry_lock(&fx.pol.reg, &g), 0);
	l = ps_registry_find(&fx.pol.reg, fx.pol.group, VPORT);
	assert_non_null(l);
	nl = *l;
	nl.maker.pid = 1;
	ps_registry_update(&fx.pol.reg, l, &nl);
	ps_registry_unlock(&fx.pol.reg, &g);

	new_socket();
	assert_int_equal(bind_vport(0), first);
	assert_int_equal(fx.unlocked, 0);
	/* Now it is ours again: the next repeat is lock-free. */
	new_socket();
	assert_int_equal(bind_vport(0), first);
	assert_int_equal(fx.unlocked, 1);
}

/* Reported addresses: the lock-free read of a real port's lease. */
static void test_reverse(void **state)
{
	uint16_t first, vport = 0, other_real = 0;
	struct ps_reg_guard g;
	struct ps_lease *l;

	(void)state;
	new_socket();
	first = bind_vport(0);
	assert_int_equal(
		ps_registry_peek_at(&fx.pol.reg, fx.pol.group, first, &vport),
		0);
	assert_int_equal(vport, VPORT);
	vport = 0;
	assert_int_equal(ps_policy_reverse(&fx.pol, first, &vport), 0);
	assert_int_equal(vport, VPORT);

	/* Another group's lease, and a port with none: not ours. */
	assert_int_equal(lease_other(VPORT, LO, HI), 0);
	assert_int_equal(ps_registry_lock(&fx.pol.reg, &g), 0);
	l = ps_registry_find(&fx.pol.reg, "other", VPORT);
	assert_non_null(l);
	other_real = ps_registry_port(&fx.pol.reg, l);
	ps_registry_unlock(&fx.pol.reg, &g);
	assert_int_not_equal(other_real, first);
	assert_int_equal(ps_registry_peek_at(&fx.pol.reg, fx.pol.group,
					     other_real, &vport),
			 -ENOENT);
	assert_int_equal(ps_policy_reverse(&fx.pol, other_real, &vport),
			 PS_PASS);
	assert_int_equal(
		ps_registry_peek_at(&fx.pol.reg, "other", other_real, &vport),
		0);
	assert_int_equal(
		ps_registry_peek_at(&fx.pol.reg, fx.pol.group, HI + 1, &vport),
		-ENOENT);
	assert_int_equal(ps_policy_reverse(&fx.pol, HI + 1, &vport), PS_PASS);

	/* A change in progress (odd sequence word): the lock decides. */
	__atomic_fetch_add(&fx.pol.reg.hdr->seq, 1, __ATOMIC_SEQ_CST);
	assert_int_equal(
		ps_registry_peek_at(&fx.pol.reg, fx.pol.group, first, &vport),
		-EAGAIN);
	__atomic_fetch_add(&fx.pol.reg.hdr->seq, 1, __ATOMIC_SEQ_CST);
	vport = 0;
	assert_int_equal(ps_policy_reverse(&fx.pol, first, &vport), 0);
	assert_int_equal(vport, VPORT);
}

/* Leases vport to group at a port of [lo, hi] in reg; returns the port. */
static uint16_t lease_in(struct ps_registry *reg, const char *group,
			 uint16_t vport, uint16_t lo, uint16_t hi)
{
	struct ps_reg_guard g;
	struct ps_lease tmpl;
	uint16_t got = 0;

	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.kind = PS_KIND_GROUP;
	tmpl.vport = vport;
	snprintf(tmpl.group, sizeof(tmpl.group), "%s", group);
	tmpl.maker = fx.self;
	tmpl.holder = fx.self;
	tmpl.protos = PS_PROTO_BIT(PS_TCP);
	assert_int_equal(ps_registry_lock(reg, &g), 0);
	assert_int_equal(ps_registry_alloc(reg, &tmpl, lo, hi, NULL, no_bind,
					   NULL, &got),
			 0);
	ps_registry_unlock(reg, &g);
	return got;
}

/*
 * The answers remembered for connect and getsockname (memo.h) follow
 * every change: a lease moved to another real port, a lease made where
 * there was none, a lease freed.
 */
static void test_memo_follows_changes(void **state)
{
	uint16_t real = 0, vport = 0, a, b;
	int none =
		fx.cfg.unmapped == PS_UNMAPPED_PASS ? PS_PASS : -ECONNREFUSED;

	(void)state;
	a = lease_in(&fx.pol.reg, fx.pol.group, VPORT, LO, LO);
	assert_int_equal(
		ps_policy_connect(&fx.pol, PS_TCP, VPORT, &real, "tcp test"),
		0);
	assert_int_equal(real, a);
	assert_int_equal(ps_policy_reverse(&fx.pol, a, &vport), 0);
	assert_int_equal(vport, VPORT);
	/* Asked again: the same answers (now from the memo). */
	assert_int_equal(
		ps_policy_connect(&fx.pol, PS_TCP, VPORT, &real, "tcp test"),
		0);
	assert_int_equal(real, a);

	/* The lease moves to another real port. */
	assert_int_equal(reclaim(fx.pol.group, VPORT), a);
	b = lease_in(&fx.pol.reg, fx.pol.group, VPORT, LO + 1, LO + 1);
	assert_int_equal(
		ps_policy_connect(&fx.pol, PS_TCP, VPORT, &real, "tcp test"),
		0);
	assert_int_equal(real, b);
	assert_int_equal(ps_policy_reverse(&fx.pol, a, &vport), PS_PASS);
	assert_int_equal(ps_policy_reverse(&fx.pol, b, &vport), 0);
	assert_int_equal(vport, VPORT);

	/* "No lease" is remembered too, until one is made. */
	assert_int_equal(ps_policy_connect(&fx.pol, PS_TCP, VPORT + 2, &real,
					   "tcp test"),
			 none);
	assert_int_equal(ps_policy_connect(&fx.pol, PS_TCP, VPORT + 2, &real,
					   "tcp test"),
			 none);
	a = lease_in(&fx.pol.reg, fx.pol.group, VPORT + 2, LO + 2, LO + 2);
	assert_int_equal(ps_policy_connect(&fx.pol, PS_TCP, VPORT + 2, &real,
					   "tcp test"),
			 0);
	assert_int_equal(real, a);

	/* Freed: the connect passes through again. */
	assert_int_equal(reclaim(fx.pol.group, VPORT + 2), a);
	assert_int_equal(ps_policy_connect(&fx.pol, PS_TCP, VPORT + 2, &real,
					   "tcp test"),
			 none);
}

/*
 * Two registries in one process whose sequence words are equal, with
 * the same group and virtual port at different real ports: each answer
 * is about its own table, never the other's.
 */
static void test_memo_per_registry(void **state)
{
	char path2[160];
	struct ps_policy pol2;
	uint16_t real = 0, a, b;

	(void)state;
	snprintf(path2, sizeof(path2), "%s/registry2", fx.dir);
	assert_int_equal(ps_policy_init(&pol2, &fx.cfg, "pbind", NULL), 0);
	assert_int_equal(ps_registry_open(&pol2.reg, path2, NULL), 0);
	pol2.reg_ready = true;
	a = lease_in(&fx.pol.reg, "pbind", VPORT, LO, LO);
	b = lease_in(&pol2.reg, "pbind", VPORT, LO + 1, LO + 1);
	assert_int_not_equal(a, b);
	assert_true(fx.pol.reg.hdr->seq == pol2.reg.hdr->seq);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ps_policy_connect(&fx.pol, PS_TCP, VPORT,
						   &real, "tcp test"),
				 0);
		assert_int_equal(real, a);
		assert_int_equal(ps_policy_connect(&pol2, PS_TCP, VPORT, &real,
						   "tcp test"),
				 0);
		assert_int_equal(real, b);
	}
	unlink(path2);
}

/*
 * The repeat bind that takes its lease from the memo (the third bind)
 * still checks the table after the bind: a lease reclaimed or stolen
 * meanwhile is handled as on the first repeat.
 */
static void test_memo_repeat_meddled(void **state)
{
	uint16_t first;

	(void)state;
	new_socket();
	first = bind_vport(0);
	new_socket();
	assert_int_equal(bind_vport(0), first);
	new_socket();
	fx.meddle = MEDDLE_RECLAIM;
	assert_int_equal(bind_vport(0), first);
	assert_int_equal(fx.calls, 1);
	assert_int_equal(bound_port(), first);
	new_socket();
	assert_int_equal(bind_vport(0), first);
	bind_stolen(first);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_repeat_without_lock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_repeat_other_change, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_repeat_reclaimed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_repeat_stolen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_other_maker_locked, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reverse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memo_follows_changes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_memo_per_registry, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_memo_repeat_meddled, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
