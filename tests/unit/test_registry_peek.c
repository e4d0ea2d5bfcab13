/* SPDX-License-Identifier: MIT */
/*
 * test_registry_peek.c - the cheap ways to read the registry: the
 * lock-free read of a (group, vport) lease (ps_registry_peek: answers,
 * refusals of a shrunk or removed file, a change in progress, readers
 * racing a writer in another process), and the walk over the leases in
 * use (ps_registry_next).
 *
 * Every test works on a registry of its own in a fresh folder under /tmp.
 * A child reports through its exit status (cmocka's assertions must not
 * run in a child).
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "registry.h"

#include "fixture.h"

#define LO 20000
#define HI 29999

static struct fixture fx = { .name = "ps-peek" };

/* Allocates (group, vport) under the lock; returns the real port. */
static uint16_t alloc(const char *group, uint16_t vport)
{
	struct ps_reg_guard g;
	struct ps_lease t = fx_lease(group, vport, &fx.self);
	uint16_t real = 0;

	if (ps_registry_lock(&fx.reg, &g) != 0)
		return 0;
	if (ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, NULL, NULL, &real))
		real = 0;
	ps_registry_unlock(&fx.reg, &g);
	return real;
}

static void test_peek_finds_and_misses(void **state)
{
	struct ps_reg_guard g;
	uint16_t real = 0, got = 0;

	(void)state;
	real = alloc("g1", 8080);
	assert_int_not_equal(real, 0);
	assert_int_equal(ps_registry_peek(&fx.reg, "g1", 8080, &got), 0);
	assert_int_equal(got, real);
	/* Another vport, another group, a group that is a prefix. */
	assert_int_equal(ps_registry_peek(&fx.reg, "g1", 8081, &got), -ENOENT);
	assert_int_equal(ps_registry_peek(&fx.reg, "g2", 8080, &got), -ENOENT);
	assert_int_equal(ps_registry_peek(&fx.reg, "g", 8080, &got), -ENOENT);

	/* Freed: gone for readers too. */
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	ps_registry_free(&fx.reg, ps_registry_at(&fx.reg, real));
	ps_registry_unlock(&fx.reg, &g);
	assert_int_equal(ps_registry_peek(&fx.reg, "g1", 8080, &got), -ENOENT);
}

/* A change left open (odd sequence word) sends readers to the lock. */
static void test_peek_change_in_progress(void **state)
{
	struct ps_reg_header *h = fx.reg.hdr;
	uint16_t got = 0;

	(void)state;
	assert_int_not_equal(alloc("g1", 8080), 0);
	assert_int_equal(h->seq & 1, 0);
	h->seq++;
	assert_int_equal(ps_registry_peek(&fx.reg, "g1", 8080, &got), -EAGAIN);
	h->seq++;
	assert_int_equal(ps_registry_peek(&fx.reg, "g1", 8080, &got), 0);
}

/* The lock's refusals: a shrunk file (no SIGBUS), a removed one. */
static void test_peek_shrunk_or_removed(void **state)
{
	uint16_t got = 0;

	(void)state;
	assert_int_not_equal(alloc("g1", 8080), 0);
	assert_return_code(unlink(fx.path), errno);
	assert_int_equal(ps_registry_peek(&fx.reg, "g1", 8080, &got), -ESTALE);
	assert_return_code(ftruncate(fx.reg.fd, 4096), errno);
	assert_int_equal(ps_registry_peek(&fx.reg, "g1", 8080, &got), -EIO);
}

/* The vport chain bucket that holds the lease at real port p. */
static uint32_t bucket_of(uint16_t p)
{
	for (uint32_t b = 0; b < PS_REG_HBUCKETS; b++)
		for (uint32_t q = fx.reg.hbuckets[b], n = 0;
		     q != 0 && n < PS_REG_NPORTS; n++) {
			if (q == p)
				return b;
			q = fx.reg.leases[q].hnext;
		}
	fail_msg("port %u is on no chain", p);
	return 0;
}

/*
 * Finds up to max vports of group "noise" whose leases land on the same
 * chain as the lease at real port target (found by trying them: the
 * hash is the registry's business). Returns how many.
 */
static int colliding(uint16_t target, uint16_t *vports, int max)
{
	uint32_t b = bucket_of(target);
	struct ps_reg_guard g;
	struct ps_lease t;
	int n = 0;

	memset(&t, 0, sizeof(t));
	t.kind = PS_KIND_GROUP;
	t.maker = fx.self;
	t.holder = fx.self;
	snprintf(t.group, sizeof(t.group), "noise");
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	for (uint32_t v = 1; v < 65536 && n < max; v++) {
		uint16_t p;

		t.vport = (uint16_t)v;
		assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL,
						   NULL, NULL, &p),
				 0);
		if (fx.reg.hbuckets[b] == p)
			vports[n++] = (uint16_t)v;
		ps_registry_free(&fx.reg, ps_registry_at(&fx.reg, p));
	}
	ps_registry_unlock(&fx.reg, &g);
	return n;
}

/* True when run under valgrind (scripts/test says so in the environment). */
static bool under_valgrind(void)
{
	const char *v = getenv("PS_UNDER_VALGRIND");
	const char *p = getenv("LD_PRELOAD");

	return (v != NULL && strcmp(v, "1") == 0) ||
	       (p != NULL && strstr(p, "vgpreload") != NULL);
}

/*
 * A writer in another process keeps inserting and freeing leases that
 * sit on the same chain as, and in front of, the lease this process
 * reads without the lock (a freed lease's link reads as the end of the
 * chain): every answer must be the right port or "retry under the
 * lock", never a wrong port and never "no such lease".
 */
static void test_peek_races_writer(void **state)
{
	/*
	 * Enough rounds on both sides that the reads surely meet changes:
	 * the reader keeps reading until the writer has made WRITES changes
	 * since its first read, and the writer keeps changing until the
	 * reader says stop. Fewer under valgrind, where each is slower.
	 */
	const long writes = under_valgrind() ? 2000 : 20000;
	const long reads = under_valgrind() ? 2000 : 20000;
	struct shared {
		long cycles;
		int stop;
	} * sh;
	uint16_t real, got = 0, vports[4];
	long right = 0, retry = 0, wrong = 0, n = 0, c0;
	int status, nv;
	pid_t pid;

	(void)state;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	real = alloc("stable", 8080);
	assert_int_not_equal(real, 0);
	nv = colliding(real, vports, 4);
	assert_true(nv > 0);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		long i = 0;

		while (!__atomic_load_n(&sh->stop, __ATOMIC_SEQ_CST)) {
			struct ps_reg_guard g;
			uint16_t p = alloc("noise", vports[i++ % nv]);

			if (p == 0 || ps_registry_lock(&fx.reg, &g) != 0)
				_exit(1);
			ps_registry_free(&fx.reg, ps_registry_at(&fx.reg, p));
			ps_registry_unlock(&fx.reg, &g);
			__atomic_add_fetch(&sh->cycles, 1, __ATOMIC_SEQ_CST);
		}
		_exit(0);
	}
	/* The writer is at work before the first read. */
	while (__atomic_load_n(&sh->cycles, __ATOMIC_SEQ_CST) == 0) {
		if (waitpid(pid, &status, WNOHANG) != 0)
			fail_msg("the writer ended before it wrote");
		usleep(1000);
	}
	c0 = __atomic_load_n(&sh->cycles, __ATOMIC_SEQ_CST);
	while (n < reads ||
	       __atomic_load_n(&sh->cycles, __ATOMIC_SEQ_CST) < c0 + writes) {
		int rc = ps_registry_peek(&fx.reg, "stable", 8080, &got);

		if (rc == 0 && got == real)
			right++;
		else if (rc == -EAGAIN)
			retry++;
		else
			wrong++;
		/* A writer that died would leave this loop waiting. */
		if (++n % 1024 == 0 && waitpid(pid, &status, WNOHANG) != 0)
			fail_msg("the writer ended early");
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	print_message("# %d colliding vports; %ld writes during %ld reads:"
		      " %ld right, %ld retries, %ld wrong\n",
		      nv, __atomic_load_n(&sh->cycles, __ATOMIC_SEQ_CST) - c0,
		      n, right, retry, wrong);
	munmap(sh, sizeof(*sh));
	assert_int_equal(wrong, 0);
	assert_true(right > 0);
}

/*
 * The walk visits every lease in use exactly once, whatever the groups
 * and chains, also when the lease it just returned is freed (as
 * `portshim run` does when it releases its groups).
 */
static void test_next_visits_each_once(void **state)
{
	static uint8_t seen[PS_REG_NPORTS];
	struct ps_reg_cursor cur = { 0 };
	struct ps_reg_guard g;
	struct ps_lease *l;
	char group[16];
	uint32_t n = 0, freed = 0;

	(void)state;
	memset(seen, 0, sizeof(seen));
	/* Nothing in use: nothing visited, and NULL stays NULL. */
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	assert_null(ps_registry_next(&fx.reg, &cur));
	assert_null(ps_registry_next(&fx.reg, &cur));
	ps_registry_unlock(&fx.reg, &g);

	for (int i = 0; i < 300; i++) {
		snprintf(group, sizeof(group), "g%d", i % 7);
		assert_int_not_equal(alloc(group, (uint16_t)(1000 + i)), 0);
	}
	assert_int_equal(ps_registry_lock(&fx.reg, &g), 0);
	memset(&cur, 0, sizeof(cur));
	while ((l = ps_registry_next(&fx.reg, &cur)) != NULL) {
		uint16_t p = ps_registry_port(&fx.reg, l);

		assert_int_equal(seen[p], 0);
		seen[p] = 1;
		n++;
		/* Free every third one while walking. */
		if (l->vport % 3 == 0) {
			ps_registry_free(&fx.reg, l);
			freed++;
		}
	}
	assert_int_equal(n, 300);
	assert_int_equal(fx.reg.hdr->nleases, 300 - freed);

	/* A second walk sees exactly the survivors. */
	memset(&cur, 0, sizeof(cur));
	n = 0;
	while ((l = ps_registry_next(&fx.reg, &cur)) != NULL) {
		assert_int_not_equal(l->vport % 3, 0);
		n++;
	}
	ps_registry_unlock(&fx.reg, &g);
	assert_int_equal(n, 300 - freed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) \
	cmocka_unit_test_prestate_setup_teardown(f, fx_setup, fx_teardown, &fx)
		T(test_peek_finds_and_misses),	T(test_peek_change_in_progress),
		T(test_peek_shrunk_or_removed), T(test_peek_races_writer),
		T(test_next_visits_each_once),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
