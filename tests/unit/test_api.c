/* SPDX-License-Identifier: MIT */
/*
 * test_api.c - the C API of portshim.h (libportshim-api.so.0), used as a
 * program uses it: through the public header and the shared library,
 * from several threads and processes at once.
 *
 * The environment (a registry of the test's own, a small range) is set
 * before the first call, which reads it. The registry is also opened
 * directly, through the internal library, to check who holds what.
 * Children report through their exit status or a pipe.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <portshim.h>

#include "registry.h"

#include "fixture.h"

#define LO 31000
#define HI 31249
#define NTHREADS 8
#define PER_THREAD 20

/* The registry is opened in main(), for every test at once. */
static struct fixture fx = { .name = "ps-api" };

/* The lease at port as the registry has it (a copy), or false. */
static bool lease_at(uint16_t port, struct ps_lease *out)
{
	struct ps_reg_guard g;
	struct ps_lease *l;

	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	l = ps_registry_at(&fx.reg, port);
	if (l != NULL)
		*out = *l;
	ps_registry_unlock(&fx.reg, &g);
	return l != NULL;
}

/*
 * Binds port as a server would: TCP (listening) and UDP on 0.0.0.0, no
 * SO_REUSEADDR. Returns 0 or -errno. Callable from any thread.
 */
static int bind_as_server(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int t = socket(AF_INET, SOCK_STREAM, 0);
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	int rc = 0;

	a.sin_port = htons(port);
	if (t < 0 || u < 0 || bind(t, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(t, 1) != 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) != 0)
		rc = -errno;
	if (t >= 0)
		close(t);
	if (u >= 0)
		close(u);
	return rc;
}

struct worker {
	pthread_t tid;
	uint16_t ports[PER_THREAD];
	int pick_rc, bind_rc, release_rc;
};

static void *pick_worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		w->pick_rc = portshim_pick(0, &w->ports[i]);
		if (w->pick_rc != 0)
			return NULL;
		/* Bindable at the moment it was returned. */
		w->bind_rc = bind_as_server(w->ports[i]);
		if (w->bind_rc != 0)
			return NULL;
	}
	return NULL;
}

static void *release_worker(void *arg)
{
	struct worker *w = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		w->release_rc = portshim_release(w->ports[i]);
		if (w->release_rc != 0)
			return NULL;
	}
	return NULL;
}

static void test_api_threads(void **state)
{
	static struct worker w[NTHREADS];
	static uint8_t seen[65536];
	struct ps_lease l;

	(void)state;
	memset(w, 0, sizeof(w));
	memset(seen, 0, sizeof(seen));
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(
			pthread_create(&w[i].tid, NULL, pick_worker, &w[i]), 0);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(w[i].pick_rc, 0);
		assert_int_equal(w[i].bind_rc, 0);
		for (int k = 0; k < PER_THREAD; k++) {
			uint16_t p = w[i].ports[k];

			assert_in_range(p, LO, HI);
			assert_int_equal(seen[p], 0);
			seen[p] = 1;
			assert_true(lease_at(p, &l));
			assert_int_equal(l.kind, PS_KIND_PICK);
			assert_int_equal(l.holder.pid, (uint32_t)getpid());
			assert_int_equal(l.expires_ns, 0);
		}
	}
	assert_int_equal(fx.reg.hdr->nleases, NTHREADS * PER_THREAD);

	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(
			pthread_create(&w[i].tid, NULL, release_worker, &w[i]),
			0);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(w[i].tid, NULL), 0);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(w[i].release_rc, 0);
	assert_int_equal(fx.reg.hdr->nleases, 0);
	assert_int_equal(portshim_release(w[0].ports[0]), -ENOENT);
}

static void test_api_flags_and_errno(void **state)
{
	uint16_t p[3];

	(void)state;
	errno = 4242;
	assert_int_equal(portshim_pick(0x100, &p[0]), -EINVAL);
	assert_int_equal(portshim_pick(0, NULL), -EINVAL);
	assert_int_equal(errno, 4242);
	assert_int_equal(portshim_pick(PORTSHIM_PICK_TCP, &p[0]), 0);
	assert_int_equal(portshim_pick(PORTSHIM_PICK_UDP, &p[1]), 0);
	assert_int_equal(
		portshim_pick(PORTSHIM_PICK_TCP | PORTSHIM_PICK_UDP, &p[2]), 0);
	assert_int_equal(errno, 4242);
	for (int i = 0; i < 3; i++) {
		assert_in_range(p[i], LO, HI);
		assert_int_equal(portshim_release(p[i]), 0);
	}
	assert_int_equal(portshim_release(p[0]), -ENOENT);
	assert_int_equal(errno, 4242);
}

/*
 * The child of test_api_child_leases (an fx_holder_fn): picks one port
 * and reports it.
 */
static int pick_one(void *arg, int fd)
{
	uint16_t p;

	(void)arg;
	if (portshim_pick(0, &p) != 0)
		return 10;
	if (write(fd, &p, sizeof(p)) != sizeof(p))
		return 11;
	return 0;
}

/*
 * A forked child's picks are its own: the parent cannot release them,
 * and they come back when the child dies.
 */
static void test_api_child_leases(void **state)
{
	struct ps_lease l;
	uint16_t port;
	pid_t pid;

	(void)state;
	pid = fx_holder(pick_one, NULL, &port, sizeof(port));
	assert_true(lease_at(port, &l));
	assert_int_equal(l.holder.pid, (uint32_t)pid);
	assert_int_equal(portshim_release(port), -EPERM);
	assert_true(lease_at(port, &l));
	fx_kill(pid);
	/* Still there until gc or an allocation that needs room... */
	assert_true(lease_at(port, &l));
	assert_false(ps_proc_alive(&l.holder));
	/* ... and never the parent's to release. */
	assert_int_equal(portshim_release(port), -EPERM);
}

/*
 * The child of test_api_exhaustion_and_reclaim (an fx_holder_fn): picks
 * until the range is exhausted and reports how many ports it got.
 */
static int pick_all(void *arg, int fd)
{
	unsigned k = 0;
	uint16_t p;
	int rc;

	(void)arg;
	while ((rc = portshim_pick(0, &p)) == 0)
		k++;
	if (rc != -EADDRNOTAVAIL)
		return 10;
	if (write(fd, &k, sizeof(k)) != sizeof(k))
		return 11;
	return 0;
}

/*
 * A child takes every free port of the range and stays alive: the range
 * is exhausted for everyone. Killed, its ports serve the next picks.
 */
static void test_api_exhaustion_and_reclaim(void **state)
{
	static uint16_t mine[HI - LO + 1];
	unsigned n, got = 0;
	uint16_t p;
	pid_t pid;

	(void)state;
	pid = fx_holder(pick_all, NULL, &n, sizeof(n));
	assert_true(n > (HI - LO + 1) / 2);
	assert_int_equal(portshim_pick(0, &p), -EADDRNOTAVAIL);
	fx_kill(pid);
	/* The dead child's ports (and those of the earlier test's child)
	 * are reclaimed by the picks that need room. */
	while (got < n && portshim_pick(0, &mine[got]) == 0)
		got++;
	assert_int_equal(got, n);
	for (unsigned i = 0; i < got; i++)
		assert_int_equal(portshim_release(mine[i]), 0);
	assert_int_equal(fx.reg.hdr->nleases, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_threads),
		cmocka_unit_test(test_api_flags_and_errno),
		cmocka_unit_test(test_api_child_leases),
		cmocka_unit_test(test_api_exhaustion_and_reclaim),
	};
	struct ps_reg_error err = { "" };
	char range[32];
	int rc;

	if (fx_mkdir(&fx) != 0)
		return 99;
	snprintf(range, sizeof(range), "%d-%d", LO, HI);
	/* Read by the library at its first call. */
	setenv("PORTSHIM_REGISTRY", fx.path, 1);
	setenv("PORTSHIM_RANGE", range, 1);
	setenv("PORTSHIM_LOG", "error", 1);
	unsetenv("PORTSHIM_LOG_FILE");
	if (ps_registry_open(&fx.reg, fx.path, &err) != 0) {
		fprintf(stderr, "registry: %s\n", err.msg);
		fx_remove_dir(fx.dir);
		return 99;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	fx_remove_dir(fx.dir);
	return rc;
}
