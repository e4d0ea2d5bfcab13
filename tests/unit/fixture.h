/* SPDX-License-Identifier: MIT */
/*
 * fixture.h - what the registry's unit tests share: a registry of the
 * test's own in a fresh folder under /tmp, a lease template, the
 * registry's invariant check as an assertion, and child processes that
 * hold something (a lease, the lock) until they are killed.
 *
 * Header-only: every function is static, and each test program includes
 * this file once. A test program declares its fixture with the folder's
 * name and hands it to cmocka as the tests' initial state:
 *
 *	static struct fixture fx = { .name = "ps-registry" };
 *	#define T(f) cmocka_unit_test_prestate_setup_teardown(f, fx_setup, \
 *							     fx_teardown, &fx)
 *
 * Children never run cmocka's assertions (they would report from the
 * wrong process): they answer through a pipe or their exit status.
 */
#ifndef PS_TESTS_FIXTURE_H
#define PS_TESTS_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "claims.h"
#include "registry.h"

/*
 * A test's registry and folder. The registry is ~9 MB of mapping plus a
 * 4 KiB path: declare the fixture static.
 */
struct fixture {
	const char *name; /* the folder is /tmp/<name>.XXXXXX */
	char dir[64];
	char path[128]; /* <dir>/registry */
	struct ps_registry reg;
	struct ps_ident self; /* this process */
};

/* Removes every file in dir (a test's folder is flat), then dir. */
static inline void fx_remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
	rmdir(dir);
}

/*
 * Makes f's fresh folder and names the registry in it (nothing opened).
 * Returns 0 or -errno; asserts nothing, so main() may call it too.
 */
static inline int fx_mkdir(struct fixture *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/%s.XXXXXX", f->name);
	if (mkdtemp(f->dir) == NULL)
		return -errno;
	snprintf(f->path, sizeof(f->path), "%s/registry", f->dir);
	return 0;
}

/*
 * cmocka setup; *state is the struct fixture. Makes the folder, creates
 * and opens the registry there, and reads this process's identity.
 */
static inline int fx_setup(void **state)
{
	struct fixture *f = *state;
	struct ps_reg_error err = { "" };
	int rc;

	assert_int_equal(fx_mkdir(f), 0);
	rc = ps_registry_open(&f->reg, f->path, &err);
	if (rc != 0)
		fail_msg("ps_registry_open: %d %s", rc, err.msg);
	assert_int_equal(ps_proc_self(&f->self), 0);
	return 0;
}

/* ps_claims_each callback: drops the registry's claim on port. */
static inline void fx_drop_claim(void *arg, uint16_t port)
{
	ps_claim_drop(arg, port);
}

/*
 * cmocka teardown of fx_setup: drops the registry's claims (claims.h:
 * the leases are not freed one by one), unmaps the registry, removes the
 * folder.
 */
static inline int fx_teardown(void **state)
{
	struct fixture *f = *state;

	ps_claims_each(&f->reg, fx_drop_claim, &f->reg);

	/*
	 * Nobody holds the lock now, so unmapping is safe here (the shim
	 * never unmaps, see registry.h).
	 */
	munmap(f->reg.hdr, f->reg.size);
	close(f->reg.fd);
	fx_remove_dir(f->dir);
	return 0;
}

/* A lease template for (group, vport) made and held by holder (TCP). */
static inline struct ps_lease fx_lease(const char *group, uint16_t vport,
				       const struct ps_ident *holder)
{
	struct ps_lease t;

	memset(&t, 0, sizeof(t));
	t.kind = PS_KIND_GROUP;
	t.vport = vport;
	t.protos = (uint8_t)PS_PROTO_BIT(PS_TCP);
	t.maker = *holder;
	t.holder = *holder;
	snprintf(t.group, sizeof(t.group), "%s", group);
	return t;
}

/* Fails the test unless reg passes every invariant (lock held). */
static inline void fx_check(struct ps_registry *reg)
{
	struct ps_reg_error err = { "" };
	int rc = ps_registry_check(reg, &err);

	if (rc != 0)
		fail_msg("ps_registry_check: %s", err.msg);
}

/* Monotonic time in seconds. */
static inline double fx_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Waits until another process sleeps in the kernel on the registry
 * mutex m, which the caller holds: glibc marks the lock word with
 * FUTEX_WAITERS (futex(2)) before a waiter's futex wait, and nobody else
 * sets it while the owner holds the lock. The positive sign that pid is
 * blocked in the lock, not merely on its way there. Fails the test if
 * pid ends first.
 */
static inline void fx_wait_for_waiter(pthread_mutex_t *m, pid_t pid)
{
	int status;

	while (!(__atomic_load_n(&m->__data.__lock, __ATOMIC_SEQ_CST) &
		 0x80000000u /* FUTEX_WAITERS */)) {
		if (waitpid(pid, &status, WNOHANG) != 0)
			fail_msg("pid %d ended before it waited for the lock",
				 (int)pid);
		usleep(1000);
	}
}

/*
 * What a holder does before it waits: reports through fd and returns 0,
 * or returns the status to exit with. It may also never return.
 */
typedef int (*fx_holder_fn)(void *arg, int fd);

/*
 * Forks a holder: a child that runs fn(arg, fd), with fd the write end
 * of a pipe, then waits to be killed; fn NULL makes a child that only
 * waits. The parent reads len bytes (len 0: none) of the child's report
 * into out, in one read, before it returns. Returns the child's pid.
 */
static inline pid_t fx_holder(fx_holder_fn fn, void *arg, void *out, size_t len)
{
	int p[2], rc;
	pid_t pid;

	assert_return_code(pipe(p), errno);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		close(p[0]);
		rc = fn != NULL ? fn(arg, p[1]) : 0;
		if (rc != 0)
			_exit(rc);
		for (;;)
			pause();
	}
	close(p[1]);
	if (len > 0)
		assert_int_equal(read(p[0], out, len), len);
	close(p[0]);
	return pid;
}

/* A child that does nothing but wait to be killed. Returns its pid. */
static inline pid_t fx_sleeper(void)
{
	return fx_holder(NULL, NULL, NULL, 0);
}

/* Kills pid with SIGKILL and reaps it; it must have died of that. */
static inline void fx_kill(pid_t pid)
{
	int status;

	assert_return_code(kill(pid, SIGKILL), errno);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* A process identity that is certainly dead: a reaped child's. */
static inline struct ps_ident fx_dead_ident(void)
{
	struct ps_ident id = { 0 };
	pid_t pid = fx_sleeper();

	assert_int_equal(ps_proc_ident(pid, &id), 0);
	fx_kill(pid);
	return id;
}

#endif
