/* SPDX-License-Identifier: MIT */
/*
 * test_pick.c - probing and leasing ports for pick (pick.c): what the
 * probe refuses, distinct ports under many processes, all-or-nothing
 * requests, exhaustion, dead and live holders, expiry, and who may
 * release what.
 *
 * Every test works on a registry of its own in a fresh folder under /tmp.
 * Children report through their exit status or a pipe (cmocka's
 * assertions must not run in a child). Small ranges are found at run
 * time among ports that are free on this host, so other programs on the
 * machine cannot make a test fail.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pick.h"
#include "registry.h"

#include "fixture.h"

#define LO 20000
#define HI 32767
#define NPROC 8
#define PER_PROC 50

static struct fixture fx = { .name = "ps-pick" };

/* A request for the calling process over [lo, hi]. */
static struct ps_pick_req req_for(const struct ps_ident *holder, uint16_t lo,
				  uint16_t hi)
{
	struct ps_pick_req r;

	memset(&r, 0, sizeof(r));
	r.holder = *holder;
	r.lo = lo;
	r.hi = hi;
	return r;
}

/*
 * Finds n consecutive ports that the probe accepts; returns the first.
 * From 31300 up: test_api, which may run at the same time, binds real
 * ports in 31000-31249.
 */
static uint16_t free_block(unsigned n)
{
	for (unsigned base = 31300; base + n < 32700; base += n) {
		unsigned i;

		for (i = 0; i < n; i++)
			if (ps_pick_probe((uint16_t)(base + i), 0) != 0)
				break;
		if (i == n)
			return (uint16_t)base;
	}
	fail_msg("no block of %u free ports", n);
	return 0;
}

static unsigned count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static unsigned leases(void)
{
	return fx.reg.hdr->nleases;
}

static int tcp_socket(int family, int type, const char *addr, uint16_t port,
		      bool do_listen)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a;
	int one = 1;
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	assert_return_code(fd, errno);
	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, addr, &a.in.sin_addr), 1);
	} else {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, addr, &a.in6.sin6_addr),
				 1);
	}
	if (bind(fd, &a.sa, family == AF_INET ? sizeof(a.in) : sizeof(a.in6)) !=
	    0) {
		close(fd);
		return -1;
	}
	if (do_listen)
		assert_return_code(listen(fd, 1), errno);
	return fd;
}

static bool have_ipv6(void)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
	bool ok;

	if (fd < 0)
		return false;
	a.sin6_addr = in6addr_loopback;
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* ------------------------------------------------------------ probe */

static void test_pick_probe_refuses_taken(void **state)
{
	uint16_t p = free_block(1);
	unsigned fds = count_fds();
	int fd;

	(void)state;
	assert_int_equal(ps_pick_probe(p, 0), 0);
	assert_int_equal(count_fds(), fds); /* probe sockets closed */

	/* A TCP listener on one loopback address blocks the number. */
	fd = tcp_socket(AF_INET, SOCK_STREAM, "127.0.0.1", p, true);
	assert_true(fd >= 0);
	assert_int_equal(ps_pick_probe(p, 0), -EADDRINUSE);
	assert_int_equal(ps_pick_probe(p, PS_PROTO_BIT(PS_TCP)), -EADDRINUSE);
	/* ... but not for UDP alone. */
	assert_int_equal(ps_pick_probe(p, PS_PROTO_BIT(PS_UDP)), 0);
	close(fd);

	/* A UDP socket blocks it for UDP, not for TCP alone. */
	fd = tcp_socket(AF_INET, SOCK_DGRAM, "0.0.0.0", p, false);
	assert_true(fd >= 0);
	assert_int_equal(ps_pick_probe(p, 0), -EADDRINUSE);
	assert_int_equal(ps_pick_probe(p, PS_PROTO_BIT(PS_UDP)), -EADDRINUSE);
	assert_int_equal(ps_pick_probe(p, PS_PROTO_BIT(PS_TCP)), 0);
	close(fd);

	/* A bound, not listening, TCP socket blocks it too. */
	fd = tcp_socket(AF_INET, SOCK_STREAM, "127.0.0.1", p, false);
	assert_true(fd >= 0);
	assert_int_equal(ps_pick_probe(p, 0), -EADDRINUSE);
	close(fd);

	if (have_ipv6()) {
		/* An IPv6-only listener on ::1 is seen by the [::] probe. */
		fd = tcp_socket(AF_INET6, SOCK_STREAM, "::1", p, true);
		assert_true(fd >= 0);
		assert_int_equal(ps_pick_probe(p, 0), -EADDRINUSE);
		close(fd);
	}
	assert_int_equal(ps_pick_probe(p, 0), 0);
	assert_int_equal(count_fds(), fds);
	assert_int_equal(ps_pick_probe(0, 0), -EINVAL);
}

/* A same-user SO_REUSEPORT listener would let a reuse-port probe in. */
static void test_pick_probe_ignores_reuseport(void **state)
{
	uint16_t p = free_block(1);
	struct sockaddr_in a = { .sin_family = AF_INET };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	(void)state;
	assert_return_code(fd, errno);
	assert_return_code(
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)),
		errno);
	assert_return_code(
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)),
		errno);
	a.sin_port = htons(p);
	assert_return_code(bind(fd, (struct sockaddr *)&a, sizeof(a)), errno);
	assert_return_code(listen(fd, 1), errno);
	assert_int_equal(ps_pick_probe(p, 0), -EADDRINUSE);
	close(fd);
}

/* ------------------------------------------------------------- pick */

static void test_pick_leases_and_skips(void **state)
{
	uint16_t base = free_block(4);
	struct ps_pick_req r = req_for(&fx.self, base, base + 3);
	uint16_t ports[3];
	struct ps_lease *l;
	int fd;

	(void)state;
	/* A foreign socket on base+1: the pick skips it. */
	fd = tcp_socket(AF_INET, SOCK_STREAM, "127.0.0.1", base + 1, true);
	assert_true(fd >= 0);
	snprintf(r.group, sizeof(r.group), "label.1");
	r.expires_ns = ps_now_ns() + 60000000000ull;
	fx.reg.hdr->next_hint = base;
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 3), 0);
	assert_int_equal(ports[0], base);
	assert_int_equal(ports[1], base + 2);
	assert_int_equal(ports[2], base + 3);
	for (int i = 0; i < 3; i++) {
		l = ps_registry_at(&fx.reg, ports[i]);
		assert_non_null(l);
		assert_int_equal(l->kind, PS_KIND_PICK);
		assert_int_equal(l->vport, 0);
		assert_int_equal(l->holder.pid, fx.self.pid);
		assert_int_equal(l->holder.start, fx.self.start);
		assert_int_equal(l->maker.pid, fx.self.pid);
		assert_string_equal(l->group, "label.1");
		assert_int_equal(l->expires_ns, r.expires_ns);
		/* A picked port is free for the caller to bind. */
		assert_int_equal(ps_pick_probe(ports[i], 0), 0);
	}
	close(fd);
	struct ps_reg_error err = { "" };
	struct ps_reg_guard g;

	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	assert_int_equal(ps_registry_check(&fx.reg, &err), 0);
	ps_registry_unlock(&fx.reg, &g);
}

static void test_pick_invalid(void **state)
{
	struct ps_pick_req r = req_for(&fx.self, LO, HI);
	uint16_t p;

	(void)state;
	assert_int_equal(ps_pick(&fx.reg, &r, &p, 0), -EINVAL);
	assert_int_equal(ps_pick(&fx.reg, &r, &p, PS_PICK_MAX + 1), -EINVAL);
	r.protos = 0x80;
	assert_int_equal(ps_pick(&fx.reg, &r, &p, 1), -EINVAL);
	r = req_for(&fx.self, 30000, 29999);
	assert_int_equal(ps_pick(&fx.reg, &r, &p, 1), -EINVAL);
	r = req_for(&fx.self, LO, HI);
	snprintf(r.group, sizeof(r.group), "bad group");
	assert_int_equal(ps_pick(&fx.reg, &r, &p, 1), -EINVAL);
	assert_int_equal(leases(), 0);
}

/* A holder that is not alive gets nothing: its lease would die at once. */
static void test_pick_dead_holder_refused(void **state)
{
	struct ps_ident dead = fx_dead_ident();
	struct ps_pick_req r;
	uint16_t p;

	(void)state;
	r = req_for(&dead, LO, HI);
	assert_int_equal(ps_pick(&fx.reg, &r, &p, 1), -ESRCH);
	assert_int_equal(leases(), 0);
}

static void test_pick_all_or_nothing(void **state)
{
	uint16_t base = free_block(5);
	struct ps_pick_req r = req_for(&fx.self, base, base + 4);
	uint16_t ports[6];

	(void)state;
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 6), -EADDRNOTAVAIL);
	assert_int_equal(leases(), 0);
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 5), 0);
	assert_int_equal(leases(), 5);
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 1), -EADDRNOTAVAIL);
	assert_int_equal(leases(), 5);
}

/*
 * NPROC processes pick PER_PROC ports each, one call at a time, at once:
 * every port is distinct, bindable when it was returned, and held by the
 * process that asked.
 */
static void test_pick_many_processes(void **state)
{
	static uint16_t got[NPROC * PER_PROC];
	static uint8_t seen[PS_REG_NPORTS];
	int fds[2];
	pid_t pids[NPROC];
	size_t n = 0;
	ssize_t r;

	(void)state;
	assert_return_code(pipe(fds), errno);
	for (int i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_return_code(pids[i], errno);
		if (pids[i] != 0)
			continue;
		close(fds[0]);
		struct ps_ident me;
		struct ps_pick_req rq;
		uint16_t out[PER_PROC];

		if (ps_proc_self(&me) != 0)
			_exit(10);
		rq = req_for(&me, LO, HI);
		for (int k = 0; k < PER_PROC; k++) {
			if (ps_pick(&fx.reg, &rq, &out[k], 1) != 0)
				_exit(11);
			/* Bindable when returned. */
			if (ps_pick_probe(out[k], 0) != 0)
				_exit(12);
		}
		if (write(fds[1], out, sizeof(out)) != (ssize_t)sizeof(out))
			_exit(13);
		/* Stay alive until the parent has looked at the leases. */
		pause();
		_exit(0);
	}
	close(fds[1]);
	while (n < sizeof(got) &&
	       (r = read(fds[0], (char *)got + n, sizeof(got) - n)) > 0)
		n += (size_t)r;
	close(fds[0]);
	assert_int_equal(n, sizeof(got));
	for (size_t i = 0; i < NPROC * PER_PROC; i++) {
		assert_true(got[i] >= LO && got[i] <= HI);
		assert_int_equal(seen[got[i]], 0);
		seen[got[i]] = 1;
		struct ps_lease *l = ps_registry_at(&fx.reg, got[i]);

		assert_non_null(l);
		assert_int_equal(l->kind, PS_KIND_PICK);
	}
	assert_int_equal(leases(), NPROC * PER_PROC);
	for (int i = 0; i < NPROC; i++) {
		int status;

		kill(pids[i], SIGKILL);
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFSIGNALED(status));
	}
	/* The holders are gone: gc frees every lease. */
	struct ps_reg_guard g;

	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	assert_int_equal(ps_registry_gc(&fx.reg, false, NULL, NULL),
			 NPROC * PER_PROC);
	ps_registry_unlock(&fx.reg, &g);
	assert_int_equal(leases(), 0);
}

/*
 * The child of test_pick_holder_death_frees (an fx_holder_fn): leases
 * the four ports from *arg on, then says so.
 */
static int pick_block(void *arg, int ready)
{
	uint16_t base = *(const uint16_t *)arg;
	struct ps_ident me;
	struct ps_pick_req rq;
	uint16_t ports[4];

	if (ps_proc_self(&me) != 0)
		return 10;
	rq = req_for(&me, base, base + 3);
	if (ps_pick(&fx.reg, &rq, ports, 4) != 0)
		return 11;
	if (write(ready, "x", 1) != 1)
		return 12;
	return 0;
}

/*
 * A child leases the whole of a small range. While it lives, the range
 * is exhausted; once it is killed, the next pick that needs room gets
 * the ports back.
 */
static void test_pick_holder_death_frees(void **state)
{
	uint16_t base = free_block(4);
	struct ps_pick_req r = req_for(&fx.self, base, base + 3);
	uint16_t ports[4];
	char c;
	pid_t pid;

	(void)state;
	pid = fx_holder(pick_block, &base, &c, 1);
	/* A live holder's ports never come back. */
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 1), -EADDRNOTAVAIL);
	assert_int_equal(leases(), 4);
	fx_kill(pid);
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 4), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(ps_registry_at(&fx.reg, ports[i])->holder.pid,
				 fx.self.pid);
	assert_int_equal(leases(), 4);
}

static void test_pick_expiry(void **state)
{
	uint16_t base = free_block(4);
	struct ps_pick_req hour = req_for(&fx.self, base, base + 1);
	struct ps_pick_req r = req_for(&fx.self, base + 2, base + 3);
	struct timespec ts = { 0, 1000000 };
	uint16_t ports[2];
	uint64_t expires;

	(void)state;
	/* An hour: still running at the next call, however slow that is. */
	hour.expires_ns = ps_now_ns() + 3600ull * 1000000000ull;
	assert_int_equal(ps_pick(&fx.reg, &hour, ports, 2), 0);
	hour.expires_ns = 0;
	assert_int_equal(ps_pick(&fx.reg, &hour, ports, 1), -EADDRNOTAVAIL);

	/*
	 * Leases whose time runs out: once the monotonic clock has passed
	 * their expiry (an order of events, whatever the machine's speed),
	 * the holder lives but their ports serve the next pick.
	 */
	expires = ps_now_ns() + 10000000ull;
	r.expires_ns = expires;
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 2), 0);
	while (ps_now_ns() <= expires)
		nanosleep(&ts, NULL);
	r.expires_ns = 0;
	assert_int_equal(ps_pick(&fx.reg, &r, ports, 2), 0);
	assert_int_equal(ps_registry_at(&fx.reg, ports[0])->expires_ns, 0);
	assert_int_equal(ps_registry_at(&fx.reg, ports[1])->expires_ns, 0);
	/* The hour's leases are still there: 2 of theirs, 2 new ones. */
	assert_int_equal(ps_pick(&fx.reg, &hour, ports, 1), -EADDRNOTAVAIL);
	assert_int_equal(leases(), 4);
}

static void test_pick_release(void **state)
{
	struct ps_pick_req r = req_for(&fx.self, LO, HI);
	struct ps_ident other = fx.self;
	struct ps_lease old, t;
	struct ps_reg_guard g;
	uint16_t p[2], gport;

	(void)state;
	assert_int_equal(ps_pick(&fx.reg, &r, p, 2), 0);
	other.start++; /* the same pid, another process */

	/* Someone else's: refused, and the lease is reported. */
	assert_int_equal(ps_pick_release(&fx.reg, p[0], &other, 1, false, &old),
			 -EPERM);
	assert_int_equal(old.holder.pid, fx.self.pid);
	assert_non_null(ps_registry_at(&fx.reg, p[0]));
	assert_int_equal(ps_pick_release(&fx.reg, p[0], NULL, 0, false, NULL),
			 -EPERM);
	/* The holder's own (among several owners). */
	struct ps_ident owners[2] = { other, fx.self };

	assert_int_equal(ps_pick_release(&fx.reg, p[0], owners, 2, false, NULL),
			 0);
	assert_null(ps_registry_at(&fx.reg, p[0]));
	assert_int_equal(
		ps_pick_release(&fx.reg, p[0], &fx.self, 1, false, NULL),
		-ENOENT);
	/* Forced. */
	assert_int_equal(ps_pick_release(&fx.reg, p[1], &other, 1, true, NULL),
			 0);
	assert_int_equal(leases(), 0);

	/* A group lease is not pick's to end, even forced. */
	memset(&t, 0, sizeof(t));
	t.kind = PS_KIND_GROUP;
	t.vport = 8080;
	t.maker = t.holder = fx.self;
	snprintf(t.group, sizeof(t.group), "g1");
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, NULL,
					   NULL, &gport),
			 0);
	ps_registry_unlock(&fx.reg, &g);
	assert_int_equal(
		ps_pick_release(&fx.reg, gport, &fx.self, 1, true, &old),
		-EINVAL);
	assert_string_equal(old.group, "g1");
	assert_int_equal(leases(), 1);
	assert_int_equal(ps_pick_release(&fx.reg, 0, NULL, 0, true, NULL),
			 -ENOENT);
}

/* A group bind never gets a picked port, nor a pick a group's port. */
static void test_pick_and_group_share_nothing(void **state)
{
	uint16_t base = free_block(4);
	struct ps_pick_req r = req_for(&fx.self, base, base + 3);
	struct ps_lease t;
	struct ps_reg_guard g;
	uint16_t p[2], gp[2];

	(void)state;
	memset(&t, 0, sizeof(t));
	t.kind = PS_KIND_GROUP;
	t.maker = t.holder = fx.self;
	snprintf(t.group, sizeof(t.group), "g1");
	fx.reg.hdr->next_hint = base;
	assert_int_equal(ps_pick(&fx.reg, &r, p, 1), 0);
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	for (int i = 0; i < 2; i++) {
		t.vport = (uint16_t)(8080 + i);
		assert_int_equal(ps_registry_alloc(&fx.reg, &t, base, base + 3,
						   NULL, NULL, NULL, &gp[i]),
				 0);
	}
	ps_registry_unlock(&fx.reg, &g);
	assert_int_equal(ps_pick(&fx.reg, &r, &p[1], 1), 0);
	assert_int_not_equal(gp[0], p[0]);
	assert_int_not_equal(gp[1], p[0]);
	assert_int_not_equal(gp[0], p[1]);
	assert_int_not_equal(gp[1], p[1]);
	assert_int_not_equal(p[0], p[1]);
	assert_int_equal(ps_pick(&fx.reg, &r, p, 1), -EADDRNOTAVAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) \
	cmocka_unit_test_prestate_setup_teardown(f, fx_setup, fx_teardown, &fx)
		T(test_pick_probe_refuses_taken),
		T(test_pick_probe_ignores_reuseport),
		T(test_pick_leases_and_skips),
		T(test_pick_invalid),
		T(test_pick_dead_holder_refused),
		T(test_pick_all_or_nothing),
		T(test_pick_many_processes),
		T(test_pick_holder_death_frees),
		T(test_pick_expiry),
		T(test_pick_release),
		T(test_pick_and_group_share_nothing),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
