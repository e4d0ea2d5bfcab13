/* SPDX-License-Identifier: MIT */
/*
 * psstress.c - load and inspection tool for the registry's integration
 * tests.
 *
 *   psstress storm THREADS PER VBASE GO STOP
 *       Run under the shim. Waits until the file GO exists, then THREADS
 *       threads each bind PER sockets at once, to virtual ports
 *       VBASE + thread * PER + i (thread % 4: TCP 127.0.0.1, TCP 0.0.0.0,
 *       UDP 127.0.0.1, TCP ::1 or 127.0.0.1), with SO_REUSEADDR and
 *       SO_REUSEPORT so that the kernel would let two groups share a port
 *       and only the registry keeps them apart. Each socket must report
 *       its virtual port through getsockname. Then it looks up the REAL
 *       port of every socket by inode in /proc/net/{tcp,tcp6,udp} and
 *       prints "ready" when its threads wait for GO, then one line per
 *       socket, "PROTO VPORT REAL", then "done BINDS SECONDS", and keeps the sockets open until the file
 *       STOP exists.
 *   psstress churn N VBASE [SEEN STEP]
 *       Run under the shim. Binds and closes N sockets to VBASE..VBASE+N-1
 *       one after the other (TCP, then UDP on every other port), so that
 *       the group's mapping changes about 1.5 N times. Prints "churned N".
 *       With SEEN and STEP: after every STEP ports, waits until the file
 *       SEEN (written by mapread) holds at least the number of entries
 *       made so far, so that a reader sees the file change N / STEP
 *       times at least, however the two are scheduled.
 *   psstress mapread FILE STOP [SEEN]
 *       Reads the mapping file FILE in a tight loop until the file STOP
 *       exists, parsing each read completely. Prints
 *       "reads R versions V partial P missing M last N"; exits 1 if any
 *       read was partial or the number of entries ever went down. With
 *       SEEN: writes the number of entries of each new version there
 *       (replaced whole, by rename).
 *   psstress regcheck REGISTRY
 *       Locks the registry, checks every invariant, and prints each lease
 *       as "GROUP KIND VPORT REAL HOLDERPID", then "check ok" (exit 0) or
 *       "check failed: REASON" (exit 1).
 *   psstress lostfd MODE VPORT1 VPORT2
 *       Run under the shim. Binds a TCP socket to 127.0.0.1:VPORT1 (the
 *       shim opens the registry), loses the shim's registry descriptor as
 *       MODE says, then binds 127.0.0.1:VPORT2. MODE: "close_range"
 *       (every descriptor above 2 closed), "dup2" (/dev/null dup2'ed over
 *       the descriptor that names $PORTSHIM_REGISTRY), or "emfile" (the
 *       first bind, VPORT1, is made with no descriptor left, then again
 *       with some), or "shrink" (the registry is truncated to 4096 bytes,
 *       then VPORT2 is bound 100 times, each a new socket: each fails or
 *       passes, the program lives). Prints "first OK|ERRNO" and "second
 *       OK|ERRNO"; exits 0 if the last bind worked (for shrink: if the
 *       program is still alive).
 *   psstress wedge REGISTRY MODE [PID]
 *       Puts the registry's lock in a bad state, as a test needs it.
 *       "hold": takes the lock, prints "held PID", and waits holding it.
 *       "rawclone": a child made by raw clone() takes the mutex directly
 *       (no robust list, as an older program's child would), its parent
 *       exits; prints "wedged PARENT CHILD" (the child waits inside).
 *       "kind": writes garbage into the mutex's kind. "word": writes PID
 *       into the lock word.
 *   psstress secure LIBRARY PORT
 *       Loads the preload library with dlopen and binds a TCP socket to
 *       127.0.0.1:PORT through the library's bind(); prints
 *       "secure S port P", S being getauxval(AT_SECURE) and P the port
 *       the kernel reports (libc's getsockname, not the library's).
 *
 * Exit status: 0 success, 1 a check failed (a line says which), 2 usage.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapfile.h"
#include "registry.h"

#define EXIT_CHECK 1
#define EXIT_USAGE 2

/* The longest a storm waits for its start or stop file. */
#define WAIT_MAX_S 300

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* Waits (polling) until path exists; false after WAIT_MAX_S. */
static bool wait_file(const char *path, long poll_us)
{
	double end = now_s() + WAIT_MAX_S;

	while (!exists(path)) {
		if (now_s() > end)
			return false;
		usleep((useconds_t)poll_us);
	}
	return true;
}

static int parse(const char *text, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* ------------------------------------------------------------- storm */

struct sock {
	int fd;
	int udp;
	uint16_t vport;
	uint16_t real;
	ino_t ino;
};

struct storm {
	int thread;
	long per;
	long vbase;
	const char *go;
	bool v6;
	struct sock *socks;
	char err[256];
};

static int bind_one(struct storm *s, struct sock *k, int kind)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a, got;
	socklen_t len, glen = sizeof(got);
	int one = 1, family = AF_INET, fd;
	struct stat st;

	memset(&a, 0, sizeof(a));
	if (kind == 3 && s->v6) {
		family = AF_INET6;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_loopback;
		a.in6.sin6_port = htons(k->vport);
		len = sizeof(a.in6);
	} else {
		a.in.sin_family = AF_INET;
		a.in.sin_addr.s_addr =
			htonl(kind == 1 ? INADDR_ANY : INADDR_LOOPBACK);
		a.in.sin_port = htons(k->vport);
		len = sizeof(a.in);
	}
	k->udp = kind == 2;
	fd = socket(family, (k->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
		goto fail;
	if (bind(fd, &a.sa, len) != 0)
		goto fail;
	if (!k->udp && listen(fd, 4) != 0)
		goto fail;
	if (getsockname(fd, &got.sa, &glen) != 0)
		goto fail;
	if (ntohs(family == AF_INET ? got.in.sin_port : got.in6.sin6_port) !=
	    k->vport) {
		snprintf(s->err, sizeof(s->err),
			 "getsockname shows %u, not virtual port %u",
			 ntohs(family == AF_INET ? got.in.sin_port :
						   got.in6.sin6_port),
			 k->vport);
		close(fd);
		return -1;
	}
	if (fstat(fd, &st) != 0)
		goto fail;
	k->fd = fd;
	k->ino = st.st_ino;
	return 0;
fail:
	snprintf(s->err, sizeof(s->err), "socket for virtual port %u: %s",
		 k->vport, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void *storm_thread(void *arg)
{
	struct storm *s = arg;

	if (!wait_file(s->go, 1000)) {
		snprintf(s->err, sizeof(s->err), "no start signal");
		return NULL;
	}
	for (long i = 0; i < s->per; i++) {
		struct sock *k = &s->socks[i];

		k->vport = (uint16_t)(s->vbase + s->thread * s->per + i);
		if (bind_one(s, k, s->thread % 4) != 0)
			return NULL;
	}
	return NULL;
}

/*
 * Finds each socket's real local port in one /proc/net table by inode.
 * Lines: "sl local rem st tx:rx tr:tm retr uid timeout inode ...".
 */
static void real_ports(const char *table, struct sock *socks, size_t n)
{
	char line[512];
	FILE *f = fopen(table, "r");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char local[64];
		unsigned long ino;
		unsigned port;
		char *colon;

		if (sscanf(line, " %*s %63s %*s %*s %*s %*s %*s %*s %*s %lu",
			   local, &ino) != 2)
			continue;
		colon = strrchr(local, ':');
		if (colon == NULL || sscanf(colon + 1, "%x", &port) != 1)
			continue;
		for (size_t i = 0; i < n; i++)
			if (socks[i].ino == (ino_t)ino)
				socks[i].real = (uint16_t)port;
	}
	fclose(f);
}

static int cmd_storm(int argc, char **argv)
{
	long threads, per, vbase;
	struct storm *st;
	struct sock *socks;
	pthread_t *tids;
	double t0;
	size_t n, bound;
	int rc = 0, probe;

	if (argc != 7 || parse(argv[2], 1, 64, &threads) ||
	    parse(argv[3], 1, 4096, &per) || parse(argv[4], 1, 65535, &vbase) ||
	    vbase + threads * per > 65536)
		return EXIT_USAGE;
	n = (size_t)(threads * per);
	st = calloc((size_t)threads, sizeof(*st));
	socks = calloc(n, sizeof(*socks));
	tids = calloc((size_t)threads, sizeof(*tids));
	if (st == NULL || socks == NULL || tids == NULL)
		return EXIT_CHECK;
	probe = socket(AF_INET6, SOCK_STREAM, 0);
	if (probe >= 0) {
		struct sockaddr_in6 a = { .sin6_family = AF_INET6,
					  .sin6_addr = IN6ADDR_LOOPBACK_INIT };

		/* Port 0 is never tagged: this bind is not the shim's. */
		st[0].v6 = bind(probe, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(probe);
	}
	for (long t = 0; t < threads; t++) {
		st[t].thread = (int)t;
		st[t].per = per;
		st[t].vbase = vbase;
		st[t].go = argv[5];
		st[t].v6 = st[0].v6;
		st[t].socks = socks + t * per;
		if (pthread_create(&tids[t], NULL, storm_thread, &st[t]) != 0)
			return EXIT_CHECK;
	}
	printf("ready\n");
	if (!wait_file(argv[5], 1000))
		return EXIT_CHECK;
	t0 = now_s();
	for (long t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	t0 = now_s() - t0;
	for (long t = 0; t < threads; t++) {
		if (st[t].err[0]) {
			printf("error thread %ld: %s\n", t, st[t].err);
			rc = EXIT_CHECK;
		}
	}
	real_ports("/proc/net/tcp", socks, n);
	real_ports("/proc/net/tcp6", socks, n);
	real_ports("/proc/net/udp", socks, n);
	bound = 0;
	for (size_t i = 0; i < n; i++) {
		/* calloc'd: fd 0 (stdin, never a socket here) = not bound. */
		if (socks[i].fd <= 0)
			continue;
		bound++;
		if (socks[i].real == 0) {
			printf("error no real port for virtual %u\n",
			       socks[i].vport);
			rc = EXIT_CHECK;
		}
		printf("%s %u %u\n", socks[i].udp ? "udp" : "tcp",
		       socks[i].vport, socks[i].real);
	}
	printf("done %zu %.3f\n", bound, t0);
	fflush(stdout);
	if (!wait_file(argv[6], 10000))
		rc = EXIT_CHECK;
	return rc;
}

/* ------------------------------------------------------------- churn */

static int bind_close(int type, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	rc = bind(fd, (struct sockaddr *)&a, sizeof(a));
	if (rc != 0)
		printf("error bind %u: %s\n", port, strerror(errno));
	close(fd);
	return rc;
}

/* The number in file path (-1 if it cannot be read). */
static long read_number(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* Waits (polling) until the number in path is at least want. */
static bool wait_number(const char *path, long want)
{
	double end = now_s() + WAIT_MAX_S;

	while (read_number(path) < want) {
		if (now_s() > end)
			return false;
		usleep(1000);
	}
	return true;
}

static int cmd_churn(int argc, char **argv)
{
	long n, vbase, step = 0;

	if ((argc != 4 && argc != 6) || parse(argv[2], 1, 10000, &n) ||
	    parse(argv[3], 1, 65535, &vbase) || vbase + n > 65536 ||
	    (argc == 6 && parse(argv[5], 1, 10000, &step)))
		return EXIT_USAGE;
	for (long i = 0; i < n; i++) {
		if (bind_close(SOCK_STREAM, (uint16_t)(vbase + i)) != 0)
			return EXIT_CHECK;
		if (i % 2 == 0 && bind_close(SOCK_DGRAM, (uint16_t)(vbase + i)))
			return EXIT_CHECK;
		/* Entries so far: i + 1 TCP, i / 2 + 1 UDP. */
		if (step > 0 && (i + 1) % step == 0 &&
		    !wait_number(argv[4], i + 1 + i / 2 + 1)) {
			printf("error the reader never saw %ld entries\n",
			       i + 1 + i / 2 + 1);
			return EXIT_CHECK;
		}
	}
	printf("churned %ld\n", n);
	return 0;
}

/* ----------------------------------------------------------- mapread */

/* Replaces the file path by one holding the number v. */
static void write_number(const char *path, size_t v)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return;
	fprintf(f, "%zu\n", v);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static int cmd_mapread(int argc, char **argv)
{
	static struct ps_map_entry ents[65536];
	unsigned long reads = 0, versions = 0, partial = 0, missing = 0;
	size_t last = 0, n;
	bool went_down = false, stop = false;
	char group[PS_GROUP_MAX + 1];

	if (argc != 4 && argc != 5)
		return EXIT_USAGE;
	while (!stop) {
		int rc;

		/* One more read after STOP appears: the final version. */
		stop = exists(argv[3]);
		rc = ps_mapfile_read(argv[2], group, ents, 65536, &n);
		reads++;
		if (rc == -ENOENT) {
			missing++;
			continue;
		}
		if (rc != 0) {
			partial++;
			printf("error read %lu: %s\n", reads, strerror(-rc));
			continue;
		}
		if (n < last)
			went_down = true;
		if (n != last) {
			versions++;
			if (argc == 5)
				write_number(argv[4], n);
		}
		last = n;
	}
	printf("reads %lu versions %lu partial %lu missing %lu last %zu\n",
	       reads, versions, partial, missing, last);
	return partial || went_down ? EXIT_CHECK : 0;
}

/* ---------------------------------------------------------- regcheck */

static int cmd_regcheck(int argc, char **argv)
{
	static struct ps_registry reg;
	struct ps_reg_error err = { "" };
	struct ps_reg_guard g;
	int rc;

	if (argc != 3)
		return EXIT_USAGE;
	rc = ps_registry_open(&reg, argv[2], &err);
	if (rc != 0) {
		printf("check failed: %s\n", err.msg);
		return EXIT_CHECK;
	}
	rc = ps_registry_lock(&reg, &g);
	if (rc != 0) {
		printf("check failed: lock: %s\n", strerror(-rc));
		return EXIT_CHECK;
	}
	for (uint32_t p = 1; p < PS_REG_NPORTS; p++) {
		const struct ps_lease *l = ps_registry_at(&reg, (uint16_t)p);

		if (l != NULL)
			printf("%s %s %u %u %u\n", l->group[0] ? l->group : "-",
			       l->kind == PS_KIND_GROUP ? "group" : "pick",
			       l->vport, p, l->holder.pid);
	}
	rc = ps_registry_check(&reg, &err);
	ps_registry_unlock(&reg, &g);
	if (rc != 0) {
		printf("check failed: %s\n", err.msg);
		return EXIT_CHECK;
	}
	printf("check ok\n");
	return 0;
}

/* ------------------------------------------------------------ lostfd */

/* Binds fd to 127.0.0.1:port; prints "WHAT OK" or "WHAT ERRNO". */
static int bind_report(const char *what, int fd, long port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int rc = bind(fd, (struct sockaddr *)&a, sizeof(a));

	printf("%s %s\n", what, rc == 0 ? "OK" : strerror(errno));
	return rc;
}

/* The descriptor whose target is path, or -1. */
static int fd_of(const char *path)
{
	for (int fd = 3; fd < 1024; fd++) {
		char link[64], got[4096];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, got, sizeof(got) - 1);
		if (n <= 0)
			continue;
		got[n] = '\0';
		if (strcmp(got, path) == 0)
			return fd;
	}
	return -1;
}

static int cmd_lostfd(int argc, char **argv)
{
	long p1, p2;
	int s1, s2, rc;

	if (argc != 5 || parse(argv[3], 1, 65535, &p1) ||
	    parse(argv[4], 1, 65535, &p2))
		return EXIT_USAGE;
	s1 = socket(AF_INET, SOCK_STREAM, 0);
	s2 = socket(AF_INET, SOCK_STREAM, 0);
	if (s1 < 0 || s2 < 0)
		return EXIT_CHECK;
	if (strcmp(argv[2], "emfile") == 0) {
		struct rlimit rl = { 64, 64 }, old;
		int fds[64], n = 0;

		getrlimit(RLIMIT_NOFILE, &old);
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return EXIT_CHECK;
		while (n < 64 && (fds[n] = open("/dev/null", O_RDONLY)) >= 0)
			n++;
		bind_report("first", s1, p1);
		while (n > 0)
			close(fds[--n]);
		setrlimit(RLIMIT_NOFILE, &old);
		rc = bind_report("second", s1, p1);
		return rc == 0 ? 0 : EXIT_CHECK;
	}
	if (bind_report("first", s1, p1) != 0)
		return EXIT_CHECK;
	if (strcmp(argv[2], "close_range") == 0) {
		/* s2 is re-made after: only 0-2 survive close_range. */
		if (syscall(SYS_close_range, 3u, ~0u, 0) != 0)
			return EXIT_CHECK;
		s2 = socket(AF_INET, SOCK_STREAM, 0);
	} else if (strcmp(argv[2], "shrink") == 0) {
		const char *reg = getenv("PORTSHIM_REGISTRY");

		if (reg == NULL || truncate(reg, 4096) != 0)
			return EXIT_CHECK;
		for (int i = 0; i < 100; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);

			if (fd < 0)
				return EXIT_CHECK;
			bind_report(i == 99 ? "second" : "again", fd, p2);
			close(fd);
		}
		return 0;
	} else if (strcmp(argv[2], "dup2") == 0) {
		const char *reg = getenv("PORTSHIM_REGISTRY");
		int fd = reg != NULL ? fd_of(reg) : -1;
		int null = open("/dev/null", O_RDONLY);

		if (fd < 0 || null < 0) {
			printf("error no descriptor names %s\n",
			       reg ? reg : "$PORTSHIM_REGISTRY");
			return EXIT_CHECK;
		}
		if (dup2(null, fd) != fd)
			return EXIT_CHECK;
	} else {
		return EXIT_USAGE;
	}
	rc = bind_report("second", s2, p2);
	return rc == 0 ? 0 : EXIT_CHECK;
}

/* ------------------------------------------------------------- wedge */

static int cmd_wedge(int argc, char **argv)
{
	static struct ps_registry reg;
	struct ps_reg_error err = { "" };
	struct ps_reg_guard g;
	pthread_mutex_t *m;
	long pid;
	int rc;

	if (argc < 4)
		return EXIT_USAGE;
	rc = ps_registry_open(&reg, argv[2], &err);
	if (rc != 0) {
		printf("error %s\n", err.msg);
		return EXIT_CHECK;
	}
	m = &reg.hdr->lock.mutex;
	if (strcmp(argv[3], "hold") == 0) {
		if (ps_registry_lock(&reg, &g) != 0)
			return EXIT_CHECK;
		printf("held %d\n", (int)getpid());
		fflush(stdout);
		for (;;)
			pause();
	}
	if (strcmp(argv[3], "rawclone") == 0) {
		int p[2];
		pid_t parent, child;
		char b;

		if (pipe(p) != 0)
			return EXIT_CHECK;
		parent = fork();
		if (parent == 0) {
			child = (pid_t)syscall(SYS_clone, SIGCHLD, NULL, NULL,
					       NULL, NULL);
			if (child == 0) {
				/* Holds it in its parent's name, no list. */
				b = pthread_mutex_lock(m) == 0 ? 'L' : '?';
				if (write(p[1], &b, 1) != 1)
					_exit(3);
				for (;;)
					pause();
			}
			if (child < 0 || read(p[0], &b, 1) != 1 || b != 'L')
				_exit(4);
			printf("wedged %d %d\n", (int)getpid(), (int)child);
			fflush(stdout);
			_exit(0);
		}
		if (parent < 0 || waitpid(parent, &rc, 0) != parent ||
		    !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
			return EXIT_CHECK;
		return 0;
	}
	if (strcmp(argv[3], "kind") == 0) {
		m->__data.__kind = 0x41414141;
		return 0;
	}
	if (strcmp(argv[3], "word") == 0 && argc == 5 &&
	    parse(argv[4], 1, 0x3fffffff, &pid) == 0) {
		__atomic_store_n((uint32_t *)(void *)m, (uint32_t)pid,
				 __ATOMIC_SEQ_CST);
		return 0;
	}
	return EXIT_USAGE;
}

/* ------------------------------------------------------------ secure */

static int cmd_secure(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in got;
	socklen_t len = sizeof(got);
	int (*shim_bind)(int, const struct sockaddr *, socklen_t);
	void *lib;
	long port;
	int fd;

	if (argc != 4 || parse(argv[3], 1, 65535, &port))
		return EXIT_USAGE;
	lib = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		printf("error dlopen: %s\n", dlerror());
		return EXIT_CHECK;
	}
	*(void **)&shim_bind = dlsym(lib, "bind");
	if (shim_bind == NULL || (void *)shim_bind == (void *)bind) {
		printf("error the library has no bind of its own\n");
		return EXIT_CHECK;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = htons((uint16_t)port);
	if (fd < 0 || shim_bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&got, &len) != 0) {
		printf("error bind: %s\n", strerror(errno));
		return EXIT_CHECK;
	}
	printf("secure %lu port %u\n", getauxval(AT_SECURE),
	       ntohs(got.sin_port));
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "storm", cmd_storm },	    { "churn", cmd_churn },
		{ "mapread", cmd_mapread }, { "regcheck", cmd_regcheck },
		{ "secure", cmd_secure },   { "lostfd", cmd_lostfd },
		{ "wedge", cmd_wedge },
	};
	int rc = EXIT_USAGE;

	/* Lines must reach the test as they are printed. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; argc >= 2 && i < sizeof(cmds) / sizeof(cmds[0]);
	     i++) {
		if (strcmp(argv[1], cmds[i].name) == 0) {
			rc = cmds[i].fn(argc, argv);
			break;
		}
	}
	if (rc == EXIT_USAGE)
		fprintf(stderr,
			"usage: psstress storm THREADS PER VBASE GO STOP |"
			" churn N VBASE [SEEN STEP] |\n"
			"       mapread FILE STOP [SEEN] | regcheck REGISTRY |"
			" secure LIBRARY PORT |\n"
			"       lostfd MODE VPORT1 VPORT2 |"
			" wedge REGISTRY MODE [PID]\n");
	return rc;
}
