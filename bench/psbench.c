/* SPDX-License-Identifier: MIT */
/*
 * psbench.c - timings of the socket calls portshim interposes, and the
 * small test job that scripts/bench runs many copies of.
 *
 * The same binary runs with and without LD_PRELOAD=libportshim.so, so the
 * two arms of every comparison execute identical code. Each timed mode
 * runs its operation for a warm-up (not recorded) and then N times, times
 * each iteration with clock_gettime(CLOCK_MONOTONIC) and prints one line:
 *
 *   NAME MEDIAN_NS P10_NS P90_NS SAMPLES
 *
 * With -o FILE the samples are appended to FILE, one per line, so that
 * interleaved runs of both arms can be pooled with `psbench stats`.
 *
 *   psbench [OPTIONS] sbc PORT     socket + bind(127.0.0.1:PORT) + close
 *   psbench [OPTIONS] bind PORT    bind alone (socket and close untimed)
 *   psbench [OPTIONS] conn PORT    connect + accept + close + close, to a
 *                                  listener this process bound to
 *                                  127.0.0.1:PORT
 *   psbench [OPTIONS] bind0        socket + bind(127.0.0.1:0) +
 *                                  getsockname + close
 *   psbench stats NAME FILE        pooled statistics of a sample file
 *   psbench free LO HI             prints a TCP port of LO..HI that
 *                                  127.0.0.1 and 0.0.0.0 can be bound to
 *                                  now (searched from a random point)
 *   psbench contend P M PORT DIR   P processes, each in its own group,
 *                                  allocate the virtual ports PORT+1 ..
 *                                  PORT+M at once; prints "contend P
 *                                  ALLOCS_PER_S DUPLICATES TOTAL"
 *   psbench job PORT REQUESTS      the test job: a server on
 *                                  127.0.0.1:PORT, REQUESTS requests to
 *                                  it, stop; exit 0 if every answer came
 *   psbench [OPTIONS] spawn PROG   posix_spawn(PROG) + waitpid: a
 *                                  process's start and end, as a
 *                                  preloaded runner (a shell, make)
 *                                  starts one
 *   psbench par COPIES REPEATS [-s] -- CMD...
 *                                  runs COPIES copies of CMD at once (-s:
 *                                  one after another), "%i" in an argument
 *                                  replaced by the copy's index, REPEATS
 *                                  times; one sample per repeat (wall
 *                                  time of all copies)
 *
 * Options: -n N (samples, default 20000), -w N (warm-up iterations,
 * default N/10), -t NAME (the name printed), -o FILE, -l (listen before
 * close, in sbc and bind0), -r (sbc: after each iteration, untimed, free
 * every lease of $PORTSHIM_GROUP in $PORTSHIM_REGISTRY, so each timed bind
 * is the group's first), -f N (before measuring, fill the registry with N
 * live leases of other groups; they are freed at the end), -P LO-HI (sbc,
 * bind, conn: when PORT turns out busy, take a free port of LO..HI
 * instead and start the measurement again, up to 10 times; for ports
 * that are not tagged, whose number does not matter).
 *
 * A bind that fails with EADDRINUSE otherwise exits with status 3, so
 * that a script can tell a busy port from other failures.
 *
 * The registry work (-r, -f, contend) goes through the project's internal
 * library, linked into this program: it is the same code the shim runs,
 * and it never passes through the interposed calls.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "mapfile.h"
#include "registry.h"

#define DEFAULT_SAMPLES 20000
#define FILL_PER_GROUP 10
#define MAX_COPIES 256

struct opts {
	long samples;
	long warmup; /* -1: samples / 10 */
	const char *name;
	const char *out;
	int listen;
	int release;
	long fill;
	long spare_lo, spare_hi; /* -P: 0 for none */
};

static struct opts opt = { DEFAULT_SAMPLES, -1, NULL, NULL, 0, 0, 0, 0, 0 };

/* How many times -P moves to another port before giving up. */
#define MAX_MOVES 10

/* The registry of -r and -f, opened on first use. */
static struct ps_config cfg;
static struct ps_registry reg;
static int reg_open;

static void die(const char *what)
{
	fprintf(stderr, "psbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *msg)
{
	fprintf(stderr, "psbench: %s\n", msg);
	exit(1);
}

/* A bind to port failed: says which, and for what. */
static void bind_failed(const char *mode, long port)
{
	int err = errno;

	fprintf(stderr, "psbench: %s: bind to port %ld: %s%s\n", mode, port,
		strerror(err),
		err == EADDRINUSE ? " (another process holds it, or holds the"
				    " real port of its lease)" :
				    "");
	exit(err == EADDRINUSE ? 3 : 1);
}

/* True if a TCP socket can be bound to addr:port now (no SO_REUSEADDR). */
static int bindable(uint32_t addr, long port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ok;

	if (fd < 0)
		return 0;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(addr);
	ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
	close(fd);
	return ok;
}

/* A port of lo..hi free now on 127.0.0.1 and 0.0.0.0, other than
 * avoid; searched from a random point. 0 if there is none. */
static long free_port(long lo, long hi, long avoid)
{
	long n = hi - lo + 1, start;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	srandom((unsigned)(ts.tv_nsec ^ getpid()));
	start = random() % n;
	for (long i = 0; i < n; i++) {
		long p = lo + (start + i) % n;

		if (p != avoid && bindable(INADDR_LOOPBACK, p) &&
		    bindable(INADDR_ANY, p))
			return p;
	}
	return 0;
}

/*
 * A bind of mode to *port failed: with -P and EADDRINUSE, moves *port to
 * a free port (saying so) and returns 1: the caller starts over. Exits
 * otherwise.
 */
static int move_port(const char *mode, long *port, int *moves)
{
	int err = errno;
	long p;

	if (err != EADDRINUSE || opt.spare_lo == 0 || *moves >= MAX_MOVES)
		bind_failed(mode, *port);
	p = free_port(opt.spare_lo, opt.spare_hi, *port);
	if (p == 0) {
		errno = err;
		bind_failed(mode, *port);
	}
	fprintf(stderr,
		"psbench: %s: port %ld is busy; measuring on port "
		"%ld instead\n",
		mode, *port, p);
	*port = p;
	(*moves)++;
	return 1;
}

static int cmd_free(long lo, long hi)
{
	long p;

	if (lo > hi)
		fail("free: LO is above HI");
	p = free_port(lo, hi, 0);
	if (p == 0) {
		fprintf(stderr, "psbench: free: no free port in %ld-%ld\n", lo,
			hi);
		return 1;
	}
	printf("%ld\n", p);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static long parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "psbench: '%s' is not a number in %ld-%ld\n", s,
			min, max);
		exit(2);
	}
	return v;
}

/* ------------------------------------------------------- statistics */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v (nearest rank). */
static uint64_t quantile(const uint64_t *v, size_t n, double q)
{
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

static void report(const char *name, uint64_t *v, size_t n)
{
	if (n == 0)
		fail("no samples");
	if (opt.out) {
		FILE *f = fopen(opt.out, "a");

		if (f == NULL)
			die(opt.out);
		for (size_t i = 0; i < n; i++)
			fprintf(f, "%llu\n", (unsigned long long)v[i]);
		if (fclose(f) != 0)
			die(opt.out);
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%s %llu %llu %llu %zu\n", name,
	       (unsigned long long)quantile(v, n, 0.5),
	       (unsigned long long)quantile(v, n, 0.1),
	       (unsigned long long)quantile(v, n, 0.9), n);
	fflush(stdout);
}

static int cmd_stats(const char *name, const char *file)
{
	FILE *f = fopen(file, "r");
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	unsigned long long x;

	if (f == NULL)
		die(file);
	while (fscanf(f, "%llu", &x) == 1) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			v = realloc(v, cap * sizeof(*v));
			if (v == NULL)
				die("realloc");
		}
		v[n++] = x;
	}
	fclose(f);
	opt.out = NULL;
	report(name, v, n);
	free(v);
	return 0;
}

/* ---------------------------------------------------------- registry */

static const char *env_get(const char *name)
{
	return getenv(name);
}

static void registry_open(void)
{
	struct ps_reg_error err = { "" };
	char errs[2048] = "";
	int rc;

	if (reg_open)
		return;
	if (ps_config_load(&cfg, env_get, errs, sizeof(errs)) != 0) {
		fprintf(stderr, "psbench: %s", errs);
		exit(2);
	}
	if (cfg.registry[0] == '\0')
		fail("-r, -f and contend need PORTSHIM_REGISTRY");
	rc = ps_registry_open(&reg, cfg.registry, &err);
	if (rc) {
		fprintf(stderr, "psbench: registry: %s\n", err.msg);
		exit(1);
	}
	reg_open = 1;
}

static void release_group(const char *group)
{
	struct ps_reg_guard g;

	registry_open();
	if (ps_registry_lock(&reg, &g) != 0)
		fail("cannot lock the registry");
	ps_registry_release_group(&reg, group);
	ps_registry_unlock(&reg, &g);
}

static void fill_group_name(char *buf, size_t len, long k)
{
	snprintf(buf, len, "psbench-fill-%d-%ld", (int)getpid(), k);
}

/* Makes n live leases (held by this process) in groups of ten. */
static void fill(long n)
{
	struct ps_reg_guard g;
	struct ps_lease tmpl;
	struct ps_ident self;
	uint16_t real;

	registry_open();
	if (ps_proc_self(&self) != 0)
		fail("cannot read this process's identity");
	if (ps_registry_lock(&reg, &g) != 0)
		fail("cannot lock the registry");
	for (long i = 0; i < n; i++) {
		memset(&tmpl, 0, sizeof(tmpl));
		tmpl.kind = PS_KIND_GROUP;
		tmpl.vport = (uint16_t)(1 + i % FILL_PER_GROUP);
		tmpl.protos = PS_PROTO_BIT(PS_TCP);
		tmpl.maker = self;
		tmpl.holder = self;
		fill_group_name(tmpl.group, sizeof(tmpl.group),
				i / FILL_PER_GROUP);
		if (ps_registry_alloc(&reg, &tmpl, cfg.range_lo, cfg.range_hi,
				      NULL, NULL, NULL, &real) != 0)
			fail("the range is too small for -f; widen "
			     "PORTSHIM_RANGE");
	}
	ps_registry_unlock(&reg, &g);
}

static void unfill(long n)
{
	char group[PS_GROUP_MAX + 1];

	for (long k = 0; k * FILL_PER_GROUP < n; k++) {
		fill_group_name(group, sizeof(group), k);
		release_group(group);
	}
}

/* -------------------------------------------------------- the calls */

static void loopback(struct sockaddr_in *sin, long port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	return fd;
}

static uint64_t *alloc_samples(void)
{
	uint64_t *v = calloc((size_t)opt.samples, sizeof(*v));

	if (v == NULL)
		die("calloc");
	if (opt.warmup < 0)
		opt.warmup = opt.samples / 10;
	return v;
}

/* The group's lease is freed between iterations when -r is given. */
static void after_iteration(void)
{
	if (opt.release)
		release_group(cfg.group);
}

static int cmd_sbc(long port)
{
	uint64_t *v = alloc_samples();
	struct sockaddr_in sin;
	int moves = 0;

	if (opt.release) {
		registry_open();
		if (cfg.group[0] == '\0')
			fail("-r needs PORTSHIM_GROUP");
	}
	loopback(&sin, port);
	for (long i = -opt.warmup; i < opt.samples; i++) {
		uint64_t t0 = now_ns();
		int fd = tcp_socket();

		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
			close(fd);
			move_port("sbc", &port, &moves);
			loopback(&sin, port);
			i = -opt.warmup - 1; /* start over */
			continue;
		}
		if (opt.listen && listen(fd, 16) != 0)
			die("listen");
		close(fd);
		if (i >= 0)
			v[i] = now_ns() - t0;
		after_iteration();
	}
	report(opt.name ? opt.name : "sbc", v, (size_t)opt.samples);
	free(v);
	return 0;
}

static int cmd_bind(long port)
{
	uint64_t *v = alloc_samples();
	struct sockaddr_in sin;
	int moves = 0;

	loopback(&sin, port);
	for (long i = -opt.warmup; i < opt.samples; i++) {
		int fd = tcp_socket();
		uint64_t t0 = now_ns();

		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
			close(fd);
			move_port("bind", &port, &moves);
			loopback(&sin, port);
			i = -opt.warmup - 1; /* start over */
			continue;
		}
		if (i >= 0)
			v[i] = now_ns() - t0;
		close(fd);
	}
	report(opt.name ? opt.name : "bind", v, (size_t)opt.samples);
	free(v);
	return 0;
}

static int cmd_bind0(void)
{
	uint64_t *v = alloc_samples();
	struct sockaddr_in sin, got;

	loopback(&sin, 0);
	for (long i = -opt.warmup; i < opt.samples; i++) {
		socklen_t len = sizeof(got);
		uint64_t t0 = now_ns();
		int fd = tcp_socket();

		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			die("bind");
		if (opt.listen && listen(fd, 16) != 0)
			die("listen");
		if (getsockname(fd, (struct sockaddr *)&got, &len) != 0 ||
		    got.sin_port == 0)
			die("getsockname");
		close(fd);
		if (i >= 0)
			v[i] = now_ns() - t0;
	}
	report(opt.name ? opt.name : "bind0", v, (size_t)opt.samples);
	free(v);
	return 0;
}

static int cmd_conn(long port)
{
	static const struct linger rst = { 1, 0 };
	uint64_t *v = alloc_samples();
	struct sockaddr_in sin;
	int one = 1, moves = 0;
	int lfd = tcp_socket();

	loopback(&sin, port);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	while (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		move_port("conn", &port, &moves);
		loopback(&sin, port);
	}
	if (listen(lfd, 64) != 0)
		die("listen");
	for (long i = -opt.warmup; i < opt.samples; i++) {
		uint64_t t0 = now_ns();
		int c = tcp_socket(), a;

		/*
		 * Closing with a reset leaves no TIME_WAIT behind, so tens of
		 * thousands of iterations do not run out of local ports.
		 */
		setsockopt(c, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
		if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			die("connect");
		a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0)
			die("accept");
		close(c);
		close(a);
		if (i >= 0)
			v[i] = now_ns() - t0;
	}
	close(lfd);
	report(opt.name ? opt.name : "conn", v, (size_t)opt.samples);
	free(v);
	return 0;
}

/* ---------------------------------------------------------- contend */

static void contend_child(long idx, long m, long port, const char *dir,
			  int ready, int go)
{
	char group[PS_GROUP_MAX + 1], map[PATH_MAX];
	struct sockaddr_in sin;
	char c = 'r';

	/*
	 * The shim reads its environment at the first intercepted call,
	 * which in this child is the bind below: each child gets its own
	 * group and mapping file.
	 */
	snprintf(group, sizeof(group), "psbench-c-%d-%ld", (int)getppid(), idx);
	snprintf(map, sizeof(map), "%s/%s.map", dir, group);
	setenv("PORTSHIM_GROUP", group, 1);
	setenv("PORTSHIM_MAP_FILE", map, 1);
	for (long j = 0; j <= m; j++) {
		int fd = tcp_socket();

		loopback(&sin, port + j);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
			die("bind");
		close(fd);
		/* The first allocation also opens the registry: untimed. */
		if (j == 0) {
			if (write(ready, &c, 1) != 1 || read(go, &c, 1) != 0)
				die("barrier");
		}
	}
	_exit(0);
}

/* Checks the P groups' mapping files: no real port twice. */
static long contend_check(long p, long m, const char *dir, long *total)
{
	static uint8_t seen[65536];
	static struct ps_map_entry ents[65536];
	char group[PS_GROUP_MAX + 1], map[PATH_MAX];
	long dups = 0;

	memset(seen, 0, sizeof(seen));
	*total = 0;
	for (long i = 0; i < p; i++) {
		size_t n = 0;

		snprintf(group, sizeof(group), "psbench-c-%d-%ld",
			 (int)getpid(), i);
		snprintf(map, sizeof(map), "%s/%s.map", dir, group);
		if (ps_mapfile_read(map, NULL, ents, 65536, &n) != 0)
			fail("cannot read a mapping file of contend");
		if ((long)n != m + 1)
			fail("a group of contend has the wrong lease count");
		for (size_t k = 0; k < n; k++) {
			if (seen[ents[k].real]++)
				dups++;
			(*total)++;
		}
		release_group(group);
		unlink(map);
	}
	return dups;
}

static int cmd_contend(long p, long m, long port, const char *dir)
{
	pid_t pids[MAX_COPIES];
	int ready[2], go[2];
	long total, dups;
	int status, bad = 0;
	uint64_t t0, t1;
	char c;

	registry_open();
	if (pipe(ready) != 0 || pipe(go) != 0)
		die("pipe");
	for (long i = 0; i < p; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			contend_child(i, m, port, dir, ready[1], go[0]);
		}
	}
	close(ready[1]);
	close(go[0]);
	for (long i = 0; i < p; i++)
		if (read(ready[0], &c, 1) != 1)
			fail("a contend child died before starting");
	t0 = now_ns();
	close(go[1]);
	for (long i = 0; i < p; i++) {
		if (waitpid(pids[i], &status, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad = 1;
	}
	t1 = now_ns();
	if (bad)
		fail("a contend child failed");
	dups = contend_check(p, m, dir, &total);
	printf("contend %ld %.0f %ld %ld\n", p,
	       (double)(p * m) * 1e9 / (double)(t1 - t0), dups, total);
	return dups != 0;
}

/* -------------------------------------------------------------- job */

static void job_serve(int lfd)
{
	char buf[256];

	for (;;) {
		int a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (a < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		if (read(a, buf, sizeof(buf)) > 0)
			(void)!write(a, "ok\n", 3);
		close(a);
	}
}

static int cmd_job(long port, long requests)
{
	struct sockaddr_in sin;
	int one = 1, status, bad = 0;
	int lfd = tcp_socket();
	char buf[16];
	pid_t pid;

	loopback(&sin, port);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		bind_failed("job", port);
	if (listen(lfd, 128) != 0)
		die("job: listen");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0)
		job_serve(lfd);
	close(lfd);
	for (long i = 0; i < requests; i++) {
		int c = tcp_socket();
		ssize_t n;

		if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
		    write(c, "GET /\n", 6) != 6) {
			bad = 1;
			close(c);
			break;
		}
		n = read(c, buf, sizeof(buf));
		if (n != 3 || memcmp(buf, "ok\n", 3) != 0)
			bad = 1;
		close(c);
	}
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	if (bad)
		fprintf(stderr, "psbench: job: a request failed: %s\n",
			strerror(errno));
	return bad;
}

/* -------------------------------------------------------------- par */

static pid_t spawn(char **argv, int argc, long idx)
{
	char *args[256];
	char idxs[16];
	pid_t pid;

	if (argc >= 255)
		fail("par: too many arguments");
	snprintf(idxs, sizeof(idxs), "%ld", idx);
	for (int i = 0; i < argc; i++) {
		char *pct = strstr(argv[i], "%i");

		args[i] = argv[i];
		if (pct != NULL) {
			size_t len = strlen(argv[i]) + sizeof(idxs);

			args[i] = malloc(len);
			if (args[i] == NULL)
				die("malloc");
			snprintf(args[i], len, "%.*s%s%s", (int)(pct - argv[i]),
				 argv[i], idxs, pct + 2);
		}
	}
	args[argc] = NULL;
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		execvp(args[0], args);
		fprintf(stderr, "psbench: cannot run %s: %s\n", args[0],
			strerror(errno));
		_exit(127);
	}
	for (int i = 0; i < argc; i++)
		if (args[i] != argv[i])
			free(args[i]);
	return pid;
}

static int reap(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) < 0)
		die("waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	fprintf(stderr, "psbench: par: a copy failed (status %#x)\n",
		(unsigned)status);
	return 1;
}

static int cmd_par(long copies, long repeats, int serial, char **argv, int argc)
{
	uint64_t *v = calloc((size_t)repeats, sizeof(*v));
	pid_t pids[MAX_COPIES];
	int bad = 0;

	if (v == NULL)
		die("calloc");
	for (long r = 0; r < repeats; r++) {
		uint64_t t0 = now_ns();

		for (long i = 0; i < copies; i++) {
			pids[i] = spawn(argv, argc, i);
			if (serial)
				bad |= reap(pids[i]);
		}
		if (!serial)
			for (long i = 0; i < copies; i++)
				bad |= reap(pids[i]);
		v[r] = now_ns() - t0;
	}
	if (bad)
		fail("par: some copies failed");
	report(opt.name ? opt.name : "par", v, (size_t)repeats);
	free(v);
	return 0;
}

extern char **environ;

static int cmd_spawn(char **argv)
{
	uint64_t *v = alloc_samples();

	for (long i = -opt.warmup; i < opt.samples; i++) {
		uint64_t t0 = now_ns();
		int status, rc;
		pid_t pid;

		rc = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
		if (rc != 0) {
			errno = rc;
			die("posix_spawn");
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			fail("spawn: the program did not exit with status 0");
		if (i >= 0)
			v[i] = now_ns() - t0;
	}
	report(opt.name ? opt.name : "spawn", v, (size_t)opt.samples);
	free(v);
	return 0;
}

/* ------------------------------------------------------------- main */

static void usage(void)
{
	fputs("usage: psbench [-n N] [-w N] [-t NAME] [-o FILE] [-l] [-r]"
	      " [-f N] [-P LO-HI]\n"
	      "               sbc PORT | bind PORT | conn PORT | bind0 |"
	      " spawn PROG\n"
	      "       psbench stats NAME FILE\n"
	      "       psbench free LO HI\n"
	      "       psbench contend P M PORT DIR\n"
	      "       psbench job PORT REQUESTS\n"
	      "       psbench [-t NAME] par COPIES REPEATS [-s] -- CMD...\n",
	      stderr);
	exit(2);
}

static int run(int argc, char **argv)
{
	const char *mode = argv[0];

	if (strcmp(mode, "sbc") == 0 && argc == 2)
		return cmd_sbc(parse_long(argv[1], 1, 65535));
	if (strcmp(mode, "bind") == 0 && argc == 2)
		return cmd_bind(parse_long(argv[1], 1, 65535));
	if (strcmp(mode, "conn") == 0 && argc == 2)
		return cmd_conn(parse_long(argv[1], 1, 65535));
	if (strcmp(mode, "bind0") == 0 && argc == 1)
		return cmd_bind0();
	if (strcmp(mode, "spawn") == 0 && argc == 2)
		return cmd_spawn(argv + 1);
	if (strcmp(mode, "stats") == 0 && argc == 3)
		return cmd_stats(argv[1], argv[2]);
	if (strcmp(mode, "free") == 0 && argc == 3)
		return cmd_free(parse_long(argv[1], 1, 65535),
				parse_long(argv[2], 1, 65535));
	if (strcmp(mode, "contend") == 0 && argc == 5)
		return cmd_contend(parse_long(argv[1], 1, MAX_COPIES),
				   parse_long(argv[2], 1, 30000),
				   parse_long(argv[3], 1, 65535 - 30000),
				   argv[4]);
	if (strcmp(mode, "job") == 0 && argc == 3)
		return cmd_job(parse_long(argv[1], 1, 65535),
			       parse_long(argv[2], 0, 1000000));
	if (strcmp(mode, "par") == 0 && argc >= 5) {
		int serial = 0, i = 3;

		if (strcmp(argv[i], "-s") == 0) {
			serial = 1;
			i++;
		}
		if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc)
			usage();
		return cmd_par(parse_long(argv[1], 1, MAX_COPIES),
			       parse_long(argv[2], 1, 100000), serial,
			       argv + i + 1, argc - i - 1);
	}
	usage();
	return 2;
}

int main(int argc, char **argv)
{
	int c, rc;

	while ((c = getopt(argc, argv, "+n:w:t:o:lrf:P:")) != -1) {
		switch (c) {
		case 'n':
			opt.samples = parse_long(optarg, 1, 100000000);
			break;
		case 'w':
			opt.warmup = parse_long(optarg, 0, 100000000);
			break;
		case 't':
			opt.name = optarg;
			break;
		case 'o':
			opt.out = optarg;
			break;
		case 'l':
			opt.listen = 1;
			break;
		case 'r':
			opt.release = 1;
			break;
		case 'f':
			opt.fill = parse_long(optarg, 0, 60000);
			break;
		case 'P': {
			char *dash = strchr(optarg, '-');

			if (dash == NULL)
				usage();
			*dash = '\0';
			opt.spare_lo = parse_long(optarg, 1, 65535);
			opt.spare_hi =
				parse_long(dash + 1, opt.spare_lo, 65535);
			break;
		}
		default:
			usage();
		}
	}
	if (optind >= argc)
		usage();
	if (opt.fill)
		fill(opt.fill);
	rc = run(argc - optind, argv + optind);
	if (opt.fill)
		unfill(opt.fill);
	return rc;
}
