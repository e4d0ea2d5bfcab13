/* SPDX-License-Identifier: MIT */
/*
 * test_registry.c - the lease table: layout, lookups, chains, reclaiming,
 * allocation, and the basic contract of the lock.
 *
 * Every test works on a registry of its own in a fresh folder under /tmp.
 * Multi-process behaviour uses fork(); a child reports through its exit
 * status or a pipe (cmocka's assertions must not run in a child). Crash
 * recovery has its own file (test_registry_crash.c), hostile files and
 * the creation race another (test_registry_files.c).
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
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"
#include "registry.h"

#include "fixture.h"

#define LO 20000
#define HI 29999

static struct fixture fx = { .name = "ps-registry" };

static void lock(struct ps_reg_guard *g)
{
	assert_int_equal(ps_registry_lock(&fx.reg, g), 0);
}

static void unlock(struct ps_reg_guard *g)
{
	ps_registry_unlock(&fx.reg, g);
}

/* Allocates (group, vport) for holder in [lo, hi]; returns the port. */
static uint16_t alloc(const char *group, uint16_t vport,
		      const struct ps_ident *holder, uint16_t lo, uint16_t hi)
{
	struct ps_lease t = fx_lease(group, vport, holder);
	uint16_t real = 0;
	int rc;

	rc = ps_registry_alloc(&fx.reg, &t, lo, hi, NULL, NULL, NULL, &real);
	assert_int_equal(rc, 0);
	assert_in_range(real, lo, hi);
	return real;
}

/* ------------------------------------------------------------ layout */

#define OFF(type, field, want) \
	assert_int_equal(offsetof(struct type, field), (want))

/*
 * The registry is shared between processes built at different times:
 * any change of layout must be deliberate (and bump PS_REG_VERSION), so
 * every offset is spelled out here.
 */
static void test_registry_layout(void **state)
{
	struct ps_reg_header *h = fx.reg.hdr;
	char boot[64] = "";
	struct stat st;
	FILE *f;

	(void)state;
	OFF(ps_ident, pid, 0);
	OFF(ps_ident, pad, 4);
	OFF(ps_ident, start, 8);
	assert_int_equal(sizeof(struct ps_ident), 16);

	OFF(ps_lease, state, 0);
	OFF(ps_lease, vport, 4);
	OFF(ps_lease, kind, 6);
	OFF(ps_lease, protos, 7);
	OFF(ps_lease, hnext, 8);
	OFF(ps_lease, gnext, 12);
	OFF(ps_lease, ghash, 16);
	OFF(ps_lease, pad0, 20);
	OFF(ps_lease, maker, 24);
	OFF(ps_lease, holder, 40);
	OFF(ps_lease, created_ns, 56);
	OFF(ps_lease, expires_ns, 64);
	OFF(ps_lease, group, 72);
	assert_int_equal(sizeof(((struct ps_lease *)0)->group), 64);
	assert_int_equal(sizeof(struct ps_lease), 136);

	OFF(ps_reg_header, magic, 0);
	OFF(ps_reg_header, version, 8);
	OFF(ps_reg_header, header_size, 12);
	OFF(ps_reg_header, file_size, 16);
	OFF(ps_reg_header, abi_word, 24);
	OFF(ps_reg_header, abi_mutex, 28);
	OFF(ps_reg_header, pidns, 32);
	OFF(ps_reg_header, uid, 40);
	OFF(ps_reg_header, hbuckets, 44);
	OFF(ps_reg_header, gbuckets, 48);
	OFF(ps_reg_header, nports, 52);
	OFF(ps_reg_header, hbuckets_off, 56);
	OFF(ps_reg_header, gbuckets_off, 64);
	OFF(ps_reg_header, leases_off, 72);
	OFF(ps_reg_header, boot_id, 80);
	OFF(ps_reg_header, created_ns, 120);
	OFF(ps_reg_header, seq, 128);
	OFF(ps_reg_header, undo_port, 136);
	OFF(ps_reg_header, next_hint, 140);
	OFF(ps_reg_header, nleases, 144);
	OFF(ps_reg_header, recoveries, 148);
	OFF(ps_reg_header, undo, 152);
	OFF(ps_reg_header, lock_gen, 288);
	OFF(ps_reg_header, reserved0, 296);
	OFF(ps_reg_header, lock, 1024);
	assert_int_equal(sizeof(struct ps_reg_header), 1152);

	/* The file: header page, two bucket arrays, one lease per port. */
	assert_int_equal(ps_registry_file_size(),
			 4096 + 16384 * 4 + 4096 * 4 + 65536 * 136);
	assert_int_equal(h->magic, PS_REG_MAGIC);
	assert_int_equal(h->version, PS_REG_VERSION);
	assert_int_equal(h->header_size, 4096);
	assert_int_equal(h->file_size, ps_registry_file_size());
	assert_int_equal(h->abi_word, sizeof(long));
	assert_int_equal(h->abi_mutex, sizeof(pthread_mutex_t));
	assert_int_equal(h->uid, geteuid());
	assert_int_equal(h->hbuckets, PS_REG_HBUCKETS);
	assert_int_equal(h->gbuckets, PS_REG_GBUCKETS);
	assert_int_equal(h->nports, PS_REG_NPORTS);
	assert_int_equal(h->hbuckets_off, 4096);
	assert_int_equal(h->gbuckets_off, 4096 + 16384 * 4);
	assert_int_equal(h->leases_off, 4096 + 16384 * 4 + 4096 * 4);
	assert_ptr_equal((char *)fx.reg.leases, (char *)h + h->leases_off);
	assert_int_equal(h->nleases, 0);
	assert_int_equal(h->undo_port, 0);
	assert_int_equal(h->seq % 2, 0);
	assert_int_equal(stat("/proc/self/ns/pid", &st), 0);
	assert_int_equal(h->pidns, st.st_ino);
	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (f != NULL) {
		assert_non_null(fgets(boot, sizeof(boot), f));
		fclose(f);
		boot[strcspn(boot, "\n")] = '\0';
		assert_string_equal(h->boot_id, boot);
	}
}

/* ------------------------------------------------------ open, reopen */

static void test_registry_open_reopen(void **state)
{
	static struct ps_registry other;
	struct ps_reg_error err = { "" };
	struct ps_reg_guard g;
	struct stat st, st2;
	struct dirent *e;
	uint16_t real;
	DIR *d;
	int n = 0;

	(void)state;
	assert_true(fx.reg.created);
	assert_return_code(fstat(fx.reg.fd, &st), errno);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_nlink, 1);
	assert_int_equal(st.st_size, ps_registry_file_size());
	/* The descriptor does not leak into programs the host runs. */
	assert_true(fcntl(fx.reg.fd, F_GETFD) & FD_CLOEXEC);

	assert_int_equal(ps_registry_open(&other, fx.path, &err), 0);
	assert_false(other.created);
	assert_string_equal(other.path, fx.path);
	assert_return_code(fstat(other.fd, &st2), errno);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_ptr_not_equal(other.hdr, fx.reg.hdr);

	/* A lease made through one mapping is seen through the other. */
	lock(&g);
	real = alloc("g1", 8080, &fx.self, LO, HI);
	unlock(&g);
	assert_int_equal(ps_registry_lock(&other, &g), 0);
	assert_non_null(ps_registry_at(&other, real));
	assert_non_null(ps_registry_find(&other, "g1", 8080));
	ps_registry_unlock(&other, &g);

	/* Creation left nothing behind but the registry. */
	d = opendir(fx.dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' &&
		    (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0))
			continue;
		assert_string_equal(e->d_name, "registry");
		n++;
	}
	closedir(d);
	assert_int_equal(n, 1);
	munmap(other.hdr, other.size);
	close(other.fd);
}

/* ------------------------------------------------------------- lock */

/*
 * PITFALLS 1 and 4: the mutex is robust, process-shared and
 * error-checking; a second lock from the holding thread is EDEADLK, not a
 * deadlock.
 */
static void test_registry_mutex_kind(void **state)
{
	struct ps_reg_guard g, g2;

	(void)state;
#ifdef __GLIBC__
	/* glibc's encoding: type in the low bits, 16 robust, 128 pshared. */
	int kind = fx.reg.hdr->lock.mutex.__data.__kind;

	assert_int_equal(kind & 3, PTHREAD_MUTEX_ERRORCHECK);
	assert_true(kind & 16);
	assert_true(kind & 128);
#endif
	lock(&g);
	assert_int_equal(ps_registry_lock(&fx.reg, &g2), -EDEADLK);
	unlock(&g);
	/* And the lock is free again. */
	lock(&g);
	unlock(&g);
}

static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

/*
 * PITFALLS 4: while the lock is held, signals wait, so a handler that
 * binds cannot find its own thread holding the lock.
 */
static void test_registry_lock_blocks_signals(void **state)
{
	struct sigaction sa, old;
	struct ps_reg_guard g;
	sigset_t cur;

	(void)state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	assert_return_code(sigaction(SIGUSR1, &sa, &old), errno);
	usr1_seen = 0;

	lock(&g);
	assert_return_code(raise(SIGUSR1), errno);
	assert_int_equal(usr1_seen, 0);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	assert_true(sigismember(&cur, SIGUSR1));
	assert_true(sigismember(&cur, SIGINT));
	assert_true(sigismember(&cur, SIGALRM));
	assert_true(sigismember(&cur, SIGTERM));
	unlock(&g);

	assert_int_equal(usr1_seen, 1);
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	assert_false(sigismember(&cur, SIGUSR1));
	sigaction(SIGUSR1, &old, NULL);
}

/*
 * PITFALLS 8: a child forked while the parent holds the lock does not
 * own it (its unlock is EPERM) and simply waits for the parent; that is
 * not an owner death.
 */
static void test_registry_fork_does_not_own(void **state)
{
	struct ps_reg_guard g;
	uint32_t rec = fx.reg.hdr->recoveries;
	int status;
	pid_t pid;

	(void)state;
	lock(&g);
	pid = fork();
	assert_return_code(pid, errno);
	if (pid == 0) {
		struct ps_reg_guard cg;

		if (pthread_mutex_unlock(&fx.reg.hdr->lock.mutex) != EPERM)
			_exit(1);
		if (ps_registry_lock(&fx.reg, &cg) != 0)
			_exit(2);
		if (fx.reg.hdr->recoveries != rec)
			_exit(3);
		ps_registry_unlock(&fx.reg, &cg);
		_exit(0);
	}
	/* The child sleeps on the lock, waiting for us. */
	fx_wait_for_waiter(&fx.reg.hdr->lock.mutex, pid);
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
	unlock(&g);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(fx.reg.hdr->recoveries, rec);
}

/* ------------------------------------------------- allocate, release */

static void test_registry_alloc_find_free(void **state)
{
	struct ps_reg_guard g;
	struct ps_lease *l;
	uint64_t before = ps_now_ns();
	uint16_t a, b, c;

	(void)state;
	lock(&g);
	a = alloc("g1", 8080, &fx.self, LO, HI);
	b = alloc("g1", 8081, &fx.self, LO, HI);
	c = alloc("g2", 8080, &fx.self, LO, HI);
	assert_true(a != b && b != c && a != c);
	assert_int_equal(fx.reg.hdr->nleases, 3);

	l = ps_registry_at(&fx.reg, a);
	assert_non_null(l);
	assert_int_equal(l->state, PS_LEASE_USED);
	assert_int_equal(l->kind, PS_KIND_GROUP);
	assert_int_equal(l->vport, 8080);
	assert_string_equal(l->group, "g1");
	assert_int_equal(l->ghash, ps_group_hash("g1"));
	assert_int_equal(l->holder.pid, fx.self.pid);
	assert_int_equal(l->holder.start, fx.self.start);
	assert_true(l->created_ns >= before && l->created_ns <= ps_now_ns());
	assert_int_equal(l->expires_ns, 0);

	assert_ptr_equal(ps_registry_find(&fx.reg, "g1", 8080), l);
	assert_int_equal(
		ps_registry_port(&fx.reg,
				 ps_registry_find(&fx.reg, "g1", 8081)),
		b);
	assert_int_equal(
		ps_registry_port(&fx.reg,
				 ps_registry_find(&fx.reg, "g2", 8080)),
		c);
	assert_null(ps_registry_find(&fx.reg, "g1", 8082));
	assert_null(ps_registry_find(&fx.reg, "g3", 8080));
	assert_null(ps_registry_find(&fx.reg, "g", 8080));
	assert_null(ps_registry_at(&fx.reg, LO - 1));
	fx_check(&fx.reg);

	ps_registry_free(&fx.reg, l);
	assert_null(ps_registry_at(&fx.reg, a));
	assert_null(ps_registry_find(&fx.reg, "g1", 8080));
	assert_non_null(ps_registry_find(&fx.reg, "g1", 8081));
	assert_int_equal(fx.reg.hdr->nleases, 2);
	/* Freeing a free lease changes nothing. */
	ps_registry_free(&fx.reg, &fx.reg.leases[a]);
	assert_int_equal(fx.reg.hdr->nleases, 2);
	fx_check(&fx.reg);
	unlock(&g);
}

/*
 * ps_registry_at is an index, not a search: it finds every lease even
 * with every chain head wiped, and returns the lease stored at the port.
 */
static void test_registry_at_is_indexed(void **state)
{
	static uint32_t hsave[PS_REG_HBUCKETS], gsave[PS_REG_GBUCKETS];
	struct ps_reg_guard g;
	uint16_t ports[64];

	(void)state;
	lock(&g);
	for (int i = 0; i < 64; i++)
		ports[i] = alloc("gi", (uint16_t)(1000 + i), &fx.self, LO, HI);
	memcpy(hsave, fx.reg.hbuckets, sizeof(hsave));
	memcpy(gsave, fx.reg.gbuckets, sizeof(gsave));
	memset(fx.reg.hbuckets, 0, sizeof(hsave));
	memset(fx.reg.gbuckets, 0, sizeof(gsave));
	for (int i = 0; i < 64; i++) {
		struct ps_lease *l = ps_registry_at(&fx.reg, ports[i]);

		assert_ptr_equal(l, &fx.reg.leases[ports[i]]);
		assert_int_equal(ps_registry_port(&fx.reg, l), ports[i]);
		assert_int_equal(l->vport, 1000 + i);
		/* find walks the (wiped) chains and cannot. */
		assert_null(
			ps_registry_find(&fx.reg, "gi", (uint16_t)(1000 + i)));
	}
	memcpy(fx.reg.hbuckets, hsave, sizeof(hsave));
	memcpy(fx.reg.gbuckets, gsave, sizeof(gsave));
	fx_check(&fx.reg);
	unlock(&g);
}

/* ---------------------------------------------------------- chains */

struct seen {
	const char *group;
	size_t n;
	bool wrong;
};

static void count_lease(void *arg, struct ps_lease *l)
{
	struct seen *s = arg;

	if (strcmp(l->group, s->group) != 0 || l->state != PS_LEASE_USED)
		s->wrong = true;
	s->n++;
}

#define NGROUPS 5000

/*
 * 5000 groups in 4096 group buckets: some chains certainly hold several
 * groups, so walking a group's chain must skip the others.
 */
static void test_registry_group_chains(void **state)
{
	static uint16_t port[NGROUPS][3];
	struct ps_reg_guard g;
	char name[16];
	size_t total = 0;

	(void)state;
	lock(&g);
	for (int i = 0; i < NGROUPS; i++) {
		snprintf(name, sizeof(name), "grp%04d", i);
		for (int k = 0; k < 1 + i % 2; k++) {
			port[i][k] = alloc(name, (uint16_t)(7000 + k), &fx.self,
					   LO, 32767);
			total++;
		}
	}
	assert_int_equal(fx.reg.hdr->nleases, total);
	fx_check(&fx.reg);
	for (int i = 0; i < NGROUPS; i++) {
		struct seen s = { name, 0, false };

		snprintf(name, sizeof(name), "grp%04d", i);
		assert_int_equal(
			ps_registry_each_group(&fx.reg, name, count_lease, &s),
			1 + i % 2);
		assert_int_equal(s.n, 1 + i % 2);
		assert_false(s.wrong);
		for (int k = 0; k < 1 + i % 2; k++)
			assert_int_equal(
				ps_registry_port(
					&fx.reg,
					ps_registry_find(&fx.reg, name,
							 (uint16_t)(7000 + k))),
				port[i][k]);
	}

	/* Release every third group; the others keep all their leases. */
	for (int i = 0; i < NGROUPS; i += 3) {
		snprintf(name, sizeof(name), "grp%04d", i);
		assert_int_equal(ps_registry_release_group(&fx.reg, name),
				 1 + i % 2);
		total -= 1 + i % 2;
	}
	assert_int_equal(fx.reg.hdr->nleases, total);
	for (int i = 0; i < NGROUPS; i++) {
		size_t want = i % 3 == 0 ? 0 : 1 + i % 2;

		snprintf(name, sizeof(name), "grp%04d", i);
		assert_int_equal(
			ps_registry_each_group(&fx.reg, name, NULL, NULL),
			want);
		if (want == 0)
			assert_null(ps_registry_at(&fx.reg, port[i][0]));
	}
	assert_int_equal(ps_registry_release_group(&fx.reg, "nosuch"), 0);
	fx_check(&fx.reg);
	unlock(&g);
}

/* An update that changes group and vport moves the lease between chains. */
static void test_registry_update_relinks(void **state)
{
	struct ps_reg_guard g;
	struct ps_lease nl;
	struct ps_lease *l;
	uint16_t real;

	(void)state;
	lock(&g);
	real = alloc("ga", 80, &fx.self, LO, HI);
	alloc("ga", 81, &fx.self, LO, HI);
	l = ps_registry_at(&fx.reg, real);
	nl = *l;
	snprintf(nl.group, sizeof(nl.group), "gb");
	nl.vport = 90;
	nl.protos |= (uint8_t)PS_PROTO_BIT(PS_UDP);
	assert_int_equal(ps_registry_update(&fx.reg, l, &nl), 0);
	assert_null(ps_registry_find(&fx.reg, "ga", 80));
	assert_ptr_equal(ps_registry_find(&fx.reg, "gb", 90), l);
	assert_int_equal(l->ghash, ps_group_hash("gb"));
	assert_int_equal(ps_registry_each_group(&fx.reg, "ga", NULL, NULL), 1);
	assert_int_equal(ps_registry_each_group(&fx.reg, "gb", NULL, NULL), 1);
	assert_int_equal(fx.reg.hdr->nleases, 2);
	/* Same group and vport: only the payload changes. */
	nl = *l;
	nl.protos = (uint8_t)PS_PROTO_BIT(PS_UDP);
	assert_int_equal(ps_registry_update(&fx.reg, l, &nl), 0);
	assert_int_equal(l->protos, PS_PROTO_BIT(PS_UDP));
	assert_ptr_equal(ps_registry_find(&fx.reg, "gb", 90), l);
	fx_check(&fx.reg);
	unlock(&g);
}

/* -------------------------------------------------------- reclaiming */

struct gc_seen {
	size_t n;
	uint16_t ports[16];
};

static void gc_note(void *arg, const struct ps_lease *l, uint16_t real)
{
	struct gc_seen *s = arg;

	(void)l;
	if (s->n < 16)
		s->ports[s->n] = real;
	s->n++;
}

/*
 * Leases of a holder that was killed are reclaimed by gc, never while it
 * lives; a zombie (killed, not yet reaped) is already dead.
 */
static void test_registry_gc_dead_holder(void **state)
{
	struct ps_reg_guard g;
	struct ps_ident child;
	struct gc_seen seen = { 0 };
	uint16_t theirs[5], mine[3];
	pid_t pid;

	(void)state;
	pid = fx_sleeper();
	assert_int_equal(ps_proc_ident(pid, &child), 0);
	lock(&g);
	for (int i = 0; i < 5; i++)
		theirs[i] = alloc("dead", (uint16_t)(100 + i), &child, LO, HI);
	for (int i = 0; i < 3; i++)
		mine[i] = alloc("live", (uint16_t)(100 + i), &fx.self, LO, HI);

	/* Never while the holder lives. */
	assert_false(ps_lease_dead(ps_registry_at(&fx.reg, theirs[0]),
				   ps_boot_ns()));
	assert_int_equal(ps_registry_gc(&fx.reg, false, NULL, NULL), 0);
	assert_int_equal(fx.reg.hdr->nleases, 8);
	unlock(&g);

	assert_return_code(kill(pid, SIGKILL), errno);
	/* Wait until it is a zombie, but do not reap it yet. */
	for (int i = 0; i < 200 && ps_proc_alive(&child); i++)
		usleep(10 * 1000);
	assert_false(ps_proc_alive(&child));

	lock(&g);
	assert_true(ps_lease_dead(ps_registry_at(&fx.reg, theirs[0]),
				  ps_boot_ns()));
	/* A dry run reports and frees nothing. */
	assert_int_equal(ps_registry_gc(&fx.reg, true, gc_note, &seen), 5);
	assert_int_equal(seen.n, 5);
	for (int i = 0; i < 5; i++)
		assert_int_equal(seen.ports[i] == theirs[0] ||
					 seen.ports[i] == theirs[1] ||
					 seen.ports[i] == theirs[2] ||
					 seen.ports[i] == theirs[3] ||
					 seen.ports[i] == theirs[4],
				 1);
	assert_int_equal(fx.reg.hdr->nleases, 8);
	assert_int_equal(ps_registry_gc(&fx.reg, false, NULL, NULL), 5);
	assert_int_equal(fx.reg.hdr->nleases, 3);
	for (int i = 0; i < 5; i++)
		assert_null(ps_registry_at(&fx.reg, theirs[i]));
	for (int i = 0; i < 3; i++)
		assert_non_null(ps_registry_at(&fx.reg, mine[i]));
	assert_int_equal(ps_registry_each_group(&fx.reg, "dead", NULL, NULL),
			 0);
	fx_check(&fx.reg);
	unlock(&g);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* CLOCK_BOOTTIME in ns, read here rather than through the registry. */
static uint64_t boot_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Expiry follows the boot clock, which the wall clock's jumps (NTP, a
 * user's `date -s`) never move: a lease made to last an hour lasts an
 * hour. An expiry stored on the wall clock (a registry made before) is
 * still read as one.
 */
static void test_registry_gc_expiry(void **state)
{
	struct ps_reg_guard g;
	struct ps_lease t;
	uint64_t now = boot_now();
	uint64_t hour = 3600ull * 1000000000ull;
	struct timespec wall;
	uint16_t past, future, never, wall_future;

	(void)state;
	clock_gettime(CLOCK_REALTIME, &wall);
	lock(&g);
	t = fx_lease("", 0, &fx.self);
	t.kind = PS_KIND_PICK;
	t.expires_ns = now - 1;
	assert_int_equal(
		ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, NULL, NULL, &past),
		0);
	t.expires_ns = now + hour;
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, NULL,
					   NULL, &future),
			 0);
	t.expires_ns = 0;
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, NULL,
					   NULL, &never),
			 0);
	t.expires_ns = (uint64_t)wall.tv_sec * 1000000000ull + hour;
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, NULL,
					   NULL, &wall_future),
			 0);
	assert_true(ps_lease_dead(ps_registry_at(&fx.reg, past), now));
	assert_false(ps_lease_dead(ps_registry_at(&fx.reg, future), now));
	assert_false(ps_lease_dead(ps_registry_at(&fx.reg, wall_future), now));
	/* The same lease is dead once its time has come. */
	assert_true(ps_lease_dead(ps_registry_at(&fx.reg, future),
				  now + hour + 1000000000ull));
	/* gc reads the boot clock itself: one lease is over. */
	assert_int_equal(ps_registry_gc(&fx.reg, false, NULL, NULL), 1);
	assert_null(ps_registry_at(&fx.reg, past));
	assert_non_null(ps_registry_at(&fx.reg, future));
	assert_non_null(ps_registry_at(&fx.reg, never));
	assert_non_null(ps_registry_at(&fx.reg, wall_future));
	fx_check(&fx.reg);
	unlock(&g);
}

/*
 * gc over a full 64k table of one dead group's leases is linear: the
 * frees follow no chain (a free one by one walks the group's chain, so
 * the whole gc would be quadratic: seconds under the lock, signals
 * blocked). The same for releasing a group. Measured in chain links
 * followed, not in time.
 */
static void test_registry_gc_linear(void **state)
{
	struct ps_reg_guard g;
	struct ps_ident dead = fx_dead_ident();
	unsigned long before;
	uint16_t real;
	size_t n = 0;

	(void)state;
	lock(&g);
	for (uint32_t v = 1; v < PS_REG_NPORTS; v++) {
		struct ps_lease t = fx_lease("big", (uint16_t)v, &dead);

		if (ps_registry_alloc(&fx.reg, &t, 1, 65535, NULL, NULL, NULL,
				      &real) != 0)
			break;
		n++;
	}
	assert_int_equal(n, 65535);
	before = ps_registry_unlink_steps;
	assert_int_equal(ps_registry_gc(&fx.reg, false, NULL, NULL), n);
	fprintf(stderr, "# gc of %zu leases: %lu chain links followed\n", n,
		ps_registry_unlink_steps - before);
	assert_true(ps_registry_unlink_steps - before <= 2 * n);
	assert_int_equal(fx.reg.hdr->nleases, 0);
	fx_check(&fx.reg);

	/* Releasing a group of 65535 leases. */
	for (uint32_t v = 1; v < PS_REG_NPORTS; v++) {
		struct ps_lease t = fx_lease("big", (uint16_t)v, &fx.self);

		assert_int_equal(ps_registry_alloc(&fx.reg, &t, 1, 65535, NULL,
						   NULL, NULL, &real),
				 0);
	}
	before = ps_registry_unlink_steps;
	assert_int_equal(ps_registry_release_group(&fx.reg, "big"), 65535);
	fprintf(stderr,
		"# release of 65535 leases: %lu chain links"
		" followed\n",
		ps_registry_unlink_steps - before);
	assert_true(ps_registry_unlink_steps - before <= 2 * 65535);
	fx_check(&fx.reg);
	unlock(&g);
}

/*
 * A pid is only the holder together with its start time: a process that
 * has the pid now but started at another time is someone else.
 */
static void test_registry_reused_pid(void **state)
{
	struct ps_ident impostor = fx.self;
	struct ps_ident child_wrong = { 0 };
	struct ps_reg_guard g;
	uint16_t a, b, c;
	pid_t pid;

	(void)state;
	impostor.start = fx.self.start + 1;
	assert_true(ps_proc_alive(&fx.self));
	assert_false(ps_proc_alive(&impostor));
	impostor.start = fx.self.start - 1;
	assert_false(ps_proc_alive(&impostor));

	pid = fx_sleeper();
	assert_int_equal(ps_proc_ident(pid, &child_wrong), 0);
	child_wrong.start += 7;

	lock(&g);
	a = alloc("reuse", 1, &impostor, LO, HI);
	b = alloc("reuse", 2, &child_wrong, LO, HI);
	c = alloc("reuse", 3, &fx.self, LO, HI);
	assert_true(ps_lease_dead(ps_registry_at(&fx.reg, a), ps_boot_ns()));
	assert_true(ps_lease_dead(ps_registry_at(&fx.reg, b), ps_boot_ns()));
	assert_false(ps_lease_dead(ps_registry_at(&fx.reg, c), ps_boot_ns()));
	assert_int_equal(ps_registry_gc(&fx.reg, false, NULL, NULL), 2);
	assert_null(ps_registry_at(&fx.reg, a));
	assert_null(ps_registry_at(&fx.reg, b));
	assert_non_null(ps_registry_at(&fx.reg, c));
	fx_check(&fx.reg);
	unlock(&g);
	fx_kill(pid);
}

/* -------------------------------------------------------- allocation */

/*
 * A full range with live holders fails with EADDRNOTAVAIL, without
 * waiting for a port; once some holders are dead, the next allocation
 * reclaims their ports.
 */
static void test_registry_exhaustion(void **state)
{
	struct ps_ident dead = fx_dead_ident();
	struct ps_reg_guard g;
	struct ps_lease t = fx_lease("full", 9999, &fx.self);
	uint16_t ports[32], real = 0;
	int rc;

	(void)state;
	lock(&g);
	for (int i = 0; i < 32; i++)
		ports[i] =
			alloc("full", (uint16_t)(1 + i), &fx.self, LO, LO + 31);
	/*
	 * Every holder is this process, which holds the lock: nothing could
	 * free a port while the call runs, so an allocation that waited for
	 * one would never return (the test's timeout ends such a hang).
	 */
	rc = ps_registry_alloc(&fx.reg, &t, LO, LO + 31, NULL, NULL, NULL,
			       &real);
	assert_int_equal(rc, -EADDRNOTAVAIL);
	assert_int_equal(fx.reg.hdr->nleases, 32);
	/* Every attempt fails the same way: nothing hangs, nothing leaks. */
	for (int i = 0; i < 100; i++)
		assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, LO + 31,
						   NULL, NULL, NULL, &real),
				 -EADDRNOTAVAIL);
	fx_check(&fx.reg);

	/* Five holders die: the next allocation takes one of their ports. */
	for (int i = 0; i < 5; i++) {
		struct ps_lease *l = ps_registry_at(&fx.reg, ports[i * 6]);
		struct ps_lease nl = *l;

		nl.holder = dead;
		assert_int_equal(ps_registry_update(&fx.reg, l, &nl), 0);
	}
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, LO + 31, NULL, NULL,
					   NULL, &real),
			 0);
	assert_true(real == ports[0] || real == ports[6] || real == ports[12] ||
		    real == ports[18] || real == ports[24]);
	assert_int_equal(fx.reg.hdr->nleases, 32 - 5 + 1);
	assert_ptr_equal(ps_registry_find(&fx.reg, "full", 9999),
			 ps_registry_at(&fx.reg, real));
	fx_check(&fx.reg);
	unlock(&g);
}

/* Ports in ip_local_reserved_ports are never handed out. */
static void test_registry_reserved_skipped(void **state)
{
	static uint8_t reserved[65536 / 8];
	struct ps_reg_guard g;
	struct ps_lease t = fx_lease("rsv", 1, &fx.self);
	uint16_t real;
	int n = 0, rc;

	(void)state;
	for (unsigned p = LO; p < LO + 30; p += 3)
		reserved[p >> 3] |= (uint8_t)(1u << (p & 7));
	lock(&g);
	for (;;) {
		t.vport++;
		rc = ps_registry_alloc(&fx.reg, &t, LO, LO + 29, reserved, NULL,
				       NULL, &real);
		if (rc != 0)
			break;
		assert_int_not_equal((real - LO) % 3, 0);
		n++;
	}
	assert_int_equal(rc, -EADDRNOTAVAIL);
	assert_int_equal(n, 20);
	fx_check(&fx.reg);
	unlock(&g);

	/* The system's list loads (it may be empty). */
	rc = ps_reserved_ports_load(reserved);
	assert_true(rc == 0 || rc == -ENOENT);
}

struct bind_rec {
	int calls;
	uint16_t busy_below; /* ports below this are "taken" */
	int fail_with;	     /* 0, or an errno for every call */
	uint16_t busy_port;  /* one more taken port (0 = none) */
	uint16_t last;
};

static int fake_bind(void *arg, uint16_t real)
{
	struct bind_rec *r = arg;

	r->calls++;
	r->last = real;
	if (r->fail_with)
		return -r->fail_with;
	if (real < r->busy_below || real == r->busy_port)
		return -EADDRINUSE;
	return 0;
}

/*
 * try_bind decides: EADDRINUSE skips the port (a foreign process has
 * it), any other error fails the allocation without a lease.
 */
static void test_registry_alloc_try_bind(void **state)
{
	struct bind_rec rec = { .busy_below = LO + 10 };
	struct ps_reg_guard g;
	struct ps_lease t = fx_lease("tb", 1, &fx.self);
	uint16_t real = 0;

	(void)state;
	lock(&g);
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, fake_bind,
					   &rec, &real),
			 0);
	assert_int_equal(real, LO + 10);
	assert_int_equal(rec.calls, 11);
	assert_int_equal(rec.last, real);

	rec = (struct bind_rec){ .fail_with = EACCES };
	t.vport = 2;
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, HI, NULL, fake_bind,
					   &rec, &real),
			 -EACCES);
	assert_int_equal(rec.calls, 1);
	assert_int_equal(fx.reg.hdr->nleases, 1);
	assert_null(ps_registry_find(&fx.reg, "tb", 2));

	/* Every port taken by foreigners: EADDRNOTAVAIL, each tried once. */
	rec = (struct bind_rec){ .busy_below = 65535 };
	assert_int_equal(ps_registry_alloc(&fx.reg, &t, LO, LO + 99, NULL,
					   fake_bind, &rec, &real),
			 -EADDRNOTAVAIL);
	assert_true(rec.calls <= 2 * 100);
	assert_int_equal(
		ps_registry_alloc(&fx.reg, &t, 10, 5, NULL, NULL, NULL, &real),
		-EINVAL);
	fx_check(&fx.reg);
	unlock(&g);
}

#define NCHILD 8
#define PERCHILD 250

/*
 * Eight processes, each with its own mapping of the registry (so at
 * another address: PITFALLS 6), allocate at once. Every port is reported
 * once, and the lease at it is the reporting child's.
 */
static void test_registry_alloc_many_processes(void **state)
{
	static uint16_t got[NCHILD][PERCHILD];
	static uint8_t taken[65536];
	struct ps_reg_guard g;
	int fds[NCHILD][2], go[2];
	pid_t pids[NCHILD];
	double t0 = fx_now();

	(void)state;
	assert_return_code(pipe(go), errno);
	for (int c = 0; c < NCHILD; c++) {
		assert_return_code(pipe(fds[c]), errno);
		pids[c] = fork();
		assert_return_code(pids[c], errno);
		if (pids[c] == 0) {
			static struct ps_registry mine;
			struct ps_ident me;
			char group[16], b;
			uint16_t out[PERCHILD];

			close(go[1]);
			close(fds[c][0]);
			if (ps_registry_open(&mine, fx.path, NULL) != 0 ||
			    ps_proc_self(&me) != 0)
				_exit(2);
			snprintf(group, sizeof(group), "p%d", c);
			/* Start together. */
			if (read(go[0], &b, 1) != 0)
				_exit(3);
			for (int i = 0; i < PERCHILD; i++) {
				struct ps_lease t =
					fx_lease(group, (uint16_t)(i + 1), &me);
				struct ps_reg_guard cg;

				if (ps_registry_lock(&mine, &cg) != 0)
					_exit(4);
				if (ps_registry_alloc(&mine, &t, LO, HI, NULL,
						      NULL, NULL, &out[i]) != 0)
					_exit(5);
				ps_registry_unlock(&mine, &cg);
			}
			if (write(fds[c][1], out, sizeof(out)) !=
			    (ssize_t)sizeof(out))
				_exit(6);
			_exit(0);
		}
		close(fds[c][1]);
	}
	close(go[0]);
	close(go[1]); /* everyone's read returns 0: go */
	for (int c = 0; c < NCHILD; c++) {
		int status;

		assert_int_equal(read(fds[c][0], got[c], sizeof(got[c])),
				 sizeof(got[c]));
		close(fds[c][0]);
		assert_int_equal(waitpid(pids[c], &status, 0), pids[c]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	lock(&g);
	for (int c = 0; c < NCHILD; c++) {
		char group[16];

		snprintf(group, sizeof(group), "p%d", c);
		for (int i = 0; i < PERCHILD; i++) {
			struct ps_lease *l = ps_registry_at(&fx.reg, got[c][i]);

			assert_int_equal(taken[got[c][i]], 0);
			taken[got[c][i]] = 1;
			assert_non_null(l);
			assert_string_equal(l->group, group);
			assert_int_equal(l->vport, i + 1);
			assert_int_equal(l->holder.pid, pids[c]);
		}
	}
	assert_int_equal(fx.reg.hdr->nleases, NCHILD * PERCHILD);
	fx_check(&fx.reg);
	unlock(&g);
	fprintf(stderr, "# %d processes x %d allocations: %.3f s\n", NCHILD,
		PERCHILD, fx_now() - t0);
}

/* ------------------------------------------------------------ policy */

static struct ps_config pcfg;
static struct ps_policy pa, pb;

/*
 * A group's second bind of a virtual port reuses its lease (SO_REUSEPORT
 * workers, restarted servers, TCP and UDP on one number); another group
 * gets another real port; connects and reported names follow the lease.
 */
static void test_policy_reuses_lease(void **state)
{
	struct bind_rec rec = { 0 };
	struct ps_reg_guard g;
	struct ps_lease *l;
	uint16_t r1, r2, r3, v;

	(void)state;
	memset(&pcfg, 0, sizeof(pcfg));
	snprintf(pcfg.registry, sizeof(pcfg.registry), "%s", fx.path);
	pcfg.range_lo = LO;
	pcfg.range_hi = LO + 99;
	pcfg.unmapped = PS_UNMAPPED_REFUSE;
	pcfg.on_error = PS_ON_ERROR_FAIL;
	assert_int_equal(ps_policy_init(&pa, &pcfg, "ga", NULL), 0);
	assert_int_equal(ps_policy_init(&pb, &pcfg, "gb", NULL), 0);
	assert_int_equal(ps_policy_init(&pb, &pcfg, "bad name", NULL), -EINVAL);
	assert_int_equal(ps_policy_init(&pb, &pcfg, "gb", NULL), 0);

	assert_int_equal(ps_policy_bind(&pa, PS_TCP, 8080, fake_bind, &rec, &r1,
					"tcp 0.0.0.0:8080"),
			 0);
	assert_int_equal(rec.last, r1);
	assert_int_equal(ps_policy_bind(&pa, PS_UDP, 8080, fake_bind, &rec, &r2,
					"udp 0.0.0.0:8080"),
			 0);
	assert_int_equal(r1, r2);
	assert_int_equal(ps_policy_bind(&pa, PS_TCP, 8080, fake_bind, &rec, &r2,
					"tcp 0.0.0.0:8080"),
			 0);
	assert_int_equal(r1, r2);
	assert_int_equal(ps_policy_bind(&pb, PS_TCP, 8080, fake_bind, &rec, &r3,
					"tcp 0.0.0.0:8080"),
			 0);
	assert_int_not_equal(r1, r3);

	lock(&g);
	l = ps_registry_find(&fx.reg, "ga", 8080);
	assert_non_null(l);
	assert_int_equal(ps_registry_port(&fx.reg, l), r1);
	assert_int_equal(l->protos,
			 PS_PROTO_BIT(PS_TCP) | PS_PROTO_BIT(PS_UDP));
	assert_int_equal(fx.reg.hdr->nleases, 2);
	unlock(&g);

	assert_int_equal(ps_policy_connect(&pa, PS_TCP, 8080, &r2, ""), 0);
	assert_int_equal(r2, r1);
	assert_int_equal(ps_policy_connect(&pb, PS_TCP, 8080, &r2, ""), 0);
	assert_int_equal(r2, r3);
	assert_int_equal(ps_policy_connect(&pa, PS_TCP, 8081, &r2, ""),
			 -ECONNREFUSED);
	assert_int_equal(ps_policy_reverse(&pa, r1, &v), 0);
	assert_int_equal(v, 8080);
	assert_int_equal(ps_policy_reverse(&pb, r1, &v), PS_PASS);
	assert_int_equal(ps_policy_reverse(&pa, r3, &v), PS_PASS);

	/*
	 * The real port is taken while its maker lives: a clash inside the
	 * group, as without portshim.
	 */
	rec = (struct bind_rec){ .busy_port = r1 };
	assert_int_equal(ps_policy_bind(&pa, PS_TCP, 8080, fake_bind, &rec, &r2,
					"tcp 0.0.0.0:8080"),
			 -EADDRINUSE);

	/*
	 * Its maker is gone and someone outside holds the number: the group
	 * moves to a new real port, keeping one lease for the vport.
	 */
	lock(&g);
	{
		struct ps_lease nl = *l;

		nl.maker = fx_dead_ident();
		assert_int_equal(ps_registry_update(&fx.reg, l, &nl), 0);
	}
	unlock(&g);
	assert_int_equal(ps_policy_bind(&pa, PS_TCP, 8080, fake_bind, &rec, &r2,
					"tcp 0.0.0.0:8080"),
			 0);
	assert_int_not_equal(r2, r1);
	assert_int_not_equal(r2, r3);
	lock(&g);
	assert_null(ps_registry_at(&fx.reg, r1));
	assert_ptr_equal(ps_registry_find(&fx.reg, "ga", 8080),
			 ps_registry_at(&fx.reg, r2));
	assert_int_equal(fx.reg.hdr->nleases, 2);
	fx_check(&fx.reg);
	unlock(&g);
	munmap(pa.reg.hdr, pa.reg.size);
	close(pa.reg.fd);
	munmap(pb.reg.hdr, pb.reg.size);
	close(pb.reg.fd);
}

/* ------------------------------------------------------------ checks */

/* The checker is not vacuous: each kind of damage is reported. */
static void test_registry_check_detects(void **state)
{
	struct ps_reg_error err = { "" };
	struct ps_reg_guard g;
	struct ps_lease save;
	uint16_t a;
	uint32_t v;

	(void)state;
	lock(&g);
	a = alloc("chk", 1, &fx.self, LO, HI);
	alloc("chk", 2, &fx.self, LO, HI);
	fx_check(&fx.reg);

	fx.reg.hdr->nleases++;
	assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
	assert_non_null(strstr(err.msg, "header says"));
	fx.reg.hdr->nleases--;

	save = fx.reg.leases[a];
	fx.reg.leases[a].state = 0x12345678;
	assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
	fx.reg.leases[a] = save;
	fx.reg.leases[a].group[0] = '/';
	assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
	fx.reg.leases[a] = save;
	fx.reg.leases[a].ghash ^= 1;
	assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
	fx.reg.leases[a] = save;
	fx.reg.leases[a].hnext = a; /* a cycle */
	assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
	fx.reg.leases[a] = save;

	fx.reg.hdr->undo_port = a + 1;
	assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
	fx.reg.hdr->undo_port = 0;
	fx.reg.hdr->seq++;
	assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
	fx.reg.hdr->seq++;

	/* A lease left off its group chain. */
	for (uint32_t b = 0; b < PS_REG_GBUCKETS; b++) {
		if (fx.reg.gbuckets[b] == 0)
			continue;
		v = fx.reg.gbuckets[b];
		fx.reg.gbuckets[b] = fx.reg.leases[v].gnext;
		assert_int_equal(ps_registry_check(&fx.reg, &err), -EUCLEAN);
		fx.reg.gbuckets[b] = v;
		break;
	}
	fx_check(&fx.reg);
	unlock(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) \
	cmocka_unit_test_prestate_setup_teardown(f, fx_setup, fx_teardown, &fx)
		T(test_registry_layout),
		T(test_registry_open_reopen),
		T(test_registry_mutex_kind),
		T(test_registry_lock_blocks_signals),
		T(test_registry_fork_does_not_own),
		T(test_registry_alloc_find_free),
		T(test_registry_at_is_indexed),
		T(test_registry_group_chains),
		T(test_registry_update_relinks),
		T(test_registry_gc_dead_holder),
		T(test_registry_gc_expiry),
		T(test_registry_gc_linear),
		T(test_registry_reused_pid),
		T(test_registry_exhaustion),
		T(test_registry_reserved_skipped),
		T(test_registry_alloc_try_bind),
		T(test_registry_alloc_many_processes),
		T(test_policy_reuses_lease),
		T(test_registry_check_detects),
#undef T
	};

	/* PS_TEST_FILTER=pattern runs only the matching tests. */
	if (getenv("PS_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("PS_TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
