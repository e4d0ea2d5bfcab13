/* SPDX-License-Identifier: MIT */
/*
 * supervise_bench.c - what a call costs under `portshim run --supervise`,
 * next to the preload library and to no portshim at all.
 *
 * Build it twice, dynamically and statically (the static copy is what
 * only the supervisor can see), then let it run itself in every mode:
 *
 *   cc -O2 -o sb bench/supervise_bench.c
 *   cc -O2 -static -o sb-static bench/supervise_bench.c
 *   ./sb --table PORTSHIM ./sb ./sb-static [N]
 *
 * Modes (one column each):
 *   raw          ./sb, no portshim: binds a fixed free port;
 *   preload      portshim run --ports 8080,8081 -- ./sb;
 *   supervised   portshim run --supervise ... -- ./sb-static: every call
 *                goes through the seccomp supervisor;
 *   sv+preload   portshim run --supervise ... -- ./sb: a dynamic program
 *                under the supervisor, whose preload does the work (its
 *                own calls carry the cookie and pass the filter).
 *
 * Operations (one row each), N samples each (default 2000), timed one by
 * one with clock_gettime(CLOCK_MONOTONIC); a cell is the median, with the
 * 10th and 90th percentiles in brackets, in microseconds:
 *   bind tagged     socket + bind(0.0.0.0:8080) + close (a repeat bind:
 *                   the group's lease is reused);
 *   connect tagged  connect to 127.0.0.1:8081 + accept + close;
 *   connect tagged, non-blocking
 *                   the same on a non-blocking socket (EINPROGRESS, poll),
 *                   as Go and event loops do;
 *   getsockname     of the listener bound to 8081;
 *   bind port 0     socket + bind(0.0.0.0:0) + close (untagged: the
 *                   supervisor still hears of it, the preload does not);
 *   sendto untagged a UDP datagram to an untagged local port;
 *   first bind      socket + bind(0.0.0.0:P) + listen of a port P never
 *                   bound before in the group (a new lease: allocation,
 *                   probe, mapping file), min(N, 400) of them, kept open
 *                   until the end, as a server's net.Listen does; raw:
 *                   the same with port 0.
 *
 * `--run first N` runs only the last one (scripts/bench runs it again
 * beside CPU burners).
 *
 * Everything runs with a private registry in a temporary folder. Output:
 * one Markdown table on stdout. No timing is asserted anywhere.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOPS 7
/* Virtual ports of the first-bind row: each a new lease. */
#define FIRST_PORT 9000
#define FIRST_MAX 400
#define NMODES 4

static const char *const op_names[NOPS] = {
	"bind tagged",
	"connect tagged",
	"connect tagged, non-blocking",
	"getsockname",
	"bind port 0",
	"sendto untagged",
	"first bind (a new lease) + listen",
};

static const char *const mode_names[NMODES] = {
	"raw",
	"preload",
	"supervised",
	"sv+preload",
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void die(const char *what)
{
	fprintf(stderr, "supervise_bench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static struct sockaddr_in v4(const char *host, unsigned port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	inet_pton(AF_INET, host, &a.sin_addr);
	return a;
}

/* A port nothing holds, for the raw mode's "fixed port". */
static unsigned free_port(void)
{
	struct sockaddr_in a = v4("0.0.0.0", 0);
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		die("free port");
	close(fd);
	return ntohs(a.sin_port);
}

/*
 * Binds s to *a. The raw mode's ports are only free when chosen: one that
 * another process took since is replaced by a free one (10 times at
 * most). The tagged mode's ports are portshim's to map.
 */
static int bind_or_move(int s, struct sockaddr_in *a, int tagged)
{
	for (int tries = 0;; tries++) {
		if (bind(s, (struct sockaddr *)a, sizeof(*a)) == 0)
			return 0;
		if (tagged || errno != EADDRINUSE || tries >= 10)
			return -1;
		a->sin_port = htons((unsigned short)free_port());
	}
}

/* Prints "op median p10 p90" for the samples (microseconds). */
static void report(int op, double *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	printf("%d %.2f %.2f %.2f\n", op, t[n / 2], t[n / 10],
	       t[n - 1 - n / 10]);
}

/*
 * n timed connect + accept + close to c, whose listener is l, into t;
 * with SOCK_NONBLOCK in flags, a non-blocking connect (EINPROGRESS, then
 * poll), as Go and event loops do.
 */
static void connects(int l, const struct sockaddr_in *c, int flags, double *t,
		     int n)
{
	for (int i = 0; i < n; i++) {
		struct pollfd p;
		double t0 = now_us();
		int s = socket(AF_INET, SOCK_STREAM | flags, 0), a;

		if (connect(s, (const struct sockaddr *)c, sizeof(*c)) != 0 &&
		    !(flags && errno == EINPROGRESS))
			die(flags ? "connect tagged, non-blocking" :
				    "connect tagged");
		p = (struct pollfd){ .fd = s, .events = POLLOUT };
		if (flags && poll(&p, 1, 5000) != 1)
			die("poll");
		a = accept(l, NULL, NULL);
		if (a < 0)
			die("accept");
		close(a);
		close(s);
		t[i] = now_us() - t0;
	}
}

/* Row 6: first binds of new virtual ports (tagged) or of port 0 (raw). */
static void first_binds(int tagged, int n, double *t)
{
	static int fds[FIRST_MAX];
	int one = 1;

	if (n > FIRST_MAX)
		n = FIRST_MAX;
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a =
			v4("0.0.0.0", tagged ? FIRST_PORT + (unsigned)i : 0);
		double t0 = now_us();

		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    listen(fds[i], 16) != 0)
			die("first bind");
		t[i] = now_us() - t0;
	}
	report(6, t, n);
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* One mode's measurements; tagged: the ports are portshim's 8080/8081. */
static int run(int tagged, int n)
{
	unsigned bport = tagged ? 8080 : free_port();
	unsigned cport = tagged ? 8081 : free_port();
	struct sockaddr_in b = v4("0.0.0.0", bport);
	struct sockaddr_in c = v4("127.0.0.1", cport);
	struct sockaddr_in z = v4("0.0.0.0", 0);
	struct sockaddr_in u, got;
	socklen_t len;
	double *t = calloc((size_t)n, sizeof(double));
	int l, s, us, ur, one = 1;

	if (t == NULL)
		die("calloc");
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		s = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind_or_move(s, &b, tagged) != 0)
			die("bind tagged");
		close(s);
		t[i] = now_us() - t0;
	}
	report(0, t, n);

	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	b = v4("127.0.0.1", cport);
	if (bind_or_move(l, &b, tagged) != 0 || listen(l, 128) != 0)
		die("listener");
	cport = ntohs(b.sin_port);
	c = v4("127.0.0.1", cport);
	connects(l, &c, 0, t, n);
	report(1, t, n);
	connects(l, &c, SOCK_NONBLOCK, t, n);
	report(2, t, n);

	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		len = sizeof(got);
		if (getsockname(l, (struct sockaddr *)&got, &len) != 0)
			die("getsockname");
		t[i] = now_us() - t0;
		if (ntohs(got.sin_port) != cport) {
			fprintf(stderr,
				"supervise_bench: getsockname shows "
				"%u, not %u\n",
				ntohs(got.sin_port), cport);
			exit(1);
		}
	}
	report(3, t, n);
	close(l);

	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		s = socket(AF_INET, SOCK_STREAM, 0);
		if (bind(s, (struct sockaddr *)&z, sizeof(z)) != 0)
			die("bind 0");
		close(s);
		t[i] = now_us() - t0;
	}
	report(4, t, n);

	ur = socket(AF_INET, SOCK_DGRAM, 0);
	u = v4("127.0.0.1", 0);
	len = sizeof(u);
	if (bind(ur, (struct sockaddr *)&u, sizeof(u)) != 0 ||
	    getsockname(ur, (struct sockaddr *)&u, &len) != 0)
		die("udp receiver");
	us = socket(AF_INET, SOCK_DGRAM, 0);
	for (int i = 0; i < n; i++) {
		char buf[8];
		double t0 = now_us();

		if (sendto(us, "x", 1, 0, (struct sockaddr *)&u, sizeof(u)) !=
		    1)
			die("sendto");
		t[i] = now_us() - t0;
		if (recv(ur, buf, sizeof(buf), 0) != 1)
			die("recv");
	}
	report(5, t, n);
	first_binds(tagged, n, t);
	free(t);
	return 0;
}

/* Runs one mode as a child; its report lines go into cell[][]. */
static void mode(char *const argv[], int m, char cell[NOPS][NMODES][48])
{
	int fds[2], op, st;
	double med, p10, p90;
	FILE *f;
	pid_t pid;

	if (pipe(fds) != 0)
		die("pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[0], argv);
		die(argv[0]);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (f != NULL &&
	       fscanf(f, "%d %lf %lf %lf", &op, &med, &p10, &p90) == 4)
		if (op >= 0 && op < NOPS)
			snprintf(cell[op][m], sizeof(cell[op][m]),
				 "%.1f [%.1f–%.1f]", med, p10, p90);
	if (f != NULL)
		fclose(f);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fprintf(stderr, "supervise_bench: mode %s failed\n",
			mode_names[m]);
}

/* argv: `portshim run [--supervise] --ports ... -- prog --run tagged n`
 * (11 slots at least). */
static void run_argv(char **argv, const char *portshim, bool supervise,
		     const char *prog, const char *n)
{
	int i = 0;

	argv[i++] = (char *)portshim;
	argv[i++] = "run";
	if (supervise)
		argv[i++] = "--supervise";
	argv[i++] = "--ports";
	argv[i++] = "8080,8081,9000-9399";
	argv[i++] = "--";
	argv[i++] = (char *)prog;
	argv[i++] = "--run";
	argv[i++] = "tagged";
	argv[i++] = (char *)n;
	argv[i] = NULL;
}

static int table(const char *portshim, const char *dyn, const char *stat,
		 const char *n)
{
	static char cell[NOPS][NMODES][48];
	char dir[] = "/tmp/supervise-bench.XXXXXX", reg[64], cmd[256];
	char *const raw[] = { (char *)dyn, "--run", "raw", (char *)n, NULL };
	char *pre[11], *sv[11], *svp[11];

	run_argv(pre, portshim, false, dyn, n);
	run_argv(sv, portshim, true, stat, n);
	run_argv(svp, portshim, true, dyn, n);
	for (int o = 0; o < NOPS; o++)
		for (int m = 0; m < NMODES; m++)
			strcpy(cell[o][m], "-");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(reg, sizeof(reg), "%s/registry", dir);
	setenv("PORTSHIM_REGISTRY", reg, 1);
	setenv("PORTSHIM_BYPASS", "ignore", 1);
	unsetenv("PORTSHIM_PORTS");
	unsetenv("PORTSHIM_GROUP");
	mode(raw, 0, cell);
	mode(pre, 1, cell);
	mode(sv, 2, cell);
	mode(svp, 3, cell);
	printf("| µs per call (median [p10–p90]) | raw | preload | "
	       "supervised | supervised + preload |\n");
	printf("| --- | --- | --- | --- | --- |\n");
	for (int o = 0; o < NOPS; o++)
		printf("| %s | %s | %s | %s | %s |\n", op_names[o], cell[o][0],
		       cell[o][1], cell[o][2], cell[o][3]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--run") == 0 &&
	    strcmp(argv[2], "first") == 0) {
		int n = argc > 3 ? atoi(argv[3]) : 400;
		double *t = calloc(FIRST_MAX, sizeof(double));

		if (t == NULL || n < 1)
			die("--run first");
		first_binds(1, n, t);
		free(t);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "--run") == 0)
		return run(strcmp(argv[2], "tagged") == 0,
			   argc > 3 ? atoi(argv[3]) : 2000);
	if (argc >= 5 && strcmp(argv[1], "--table") == 0)
		return table(argv[2], argv[3], argv[4],
			     argc > 5 ? argv[5] : "2000");
	fprintf(stderr,
		"usage: supervise_bench --table PORTSHIM DYNAMIC "
		"STATIC [N]\n       supervise_bench --run raw|tagged|first [N]\n");
	return 2;
}
