/* SPDX-License-Identifier: MIT */
/*
 * pstcp.c - a tiny socket tool for the integration tests.
 *
 *   pstcp listen ADDR PORT [REPLY]  bind + listen, print "listening PORT"
 *                                   (the port getsockname reports), then
 *                                   answer every connection with REPLY
 *                                   (default "pstcp") until killed
 *   pstcp connect ADDR PORT         connect; print "ok REPLY" (what the
 *                                   server sent first, if anything) or
 *                                   the errno name, e.g. "ECONNREFUSED"
 *   pstcp bind ADDR PORT            bind a TCP socket, print the port
 *                                   getsockname reports, exit
 *   pstcp free LO HI                print a TCP port in [LO, HI] that
 *                                   nothing holds on 0.0.0.0 or [::]
 *   pstcp unix PATH                 bind, listen, connect and exchange a
 *                                   message over an AF_UNIX socket at
 *                                   PATH; print "ok hello"
 *
 * ADDR is a numeric IPv4 or IPv6 address: name resolution would go
 * through glibc's internal calls and hide what is being tested.
 * Exit status: 0 success, 1 the operation failed (errno name printed),
 * 2 bad usage. Every line goes to stdout, flushed at once, so a test can
 * read it while the program keeps running.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "psaddr.h"

#define PSTCP_EXIT_FAIL 1
#define PSTCP_EXIT_USAGE 2

static const char usage[] =
	"usage: pstcp listen ADDR PORT [REPLY] | connect ADDR PORT |\n"
	"       bind ADDR PORT | free LO HI | unix PATH\n";

/* The symbolic name of an errno value ("ECONNREFUSED"), for tests that
 * compare it; glibc has had strerrorname_np since 2.32. */
static const char *errno_name(int err)
{
	static char buf[32];
	const char *name = NULL;

#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
	name = strerrorname_np(err);
#endif
	if (name != NULL)
		return name;
	snprintf(buf, sizeof(buf), "errno%d", err);
	return buf;
}

/* Prints the errno name of the failed step and returns the exit status
 * for a failed operation. */
static int fail(const char *what)
{
	int err = errno;

	printf("%s\n", errno_name(err));
	fflush(stdout);
	fprintf(stderr, "pstcp: %s: %s\n", what, strerror(err));
	return PSTCP_EXIT_FAIL;
}

static int parse_port(const char *text, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v > max ||
	    text[0] == '-' || text[0] == '+')
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* Parses "ADDR PORT" from argv; returns the address length or 0 after
 * printing the usage. */
static socklen_t parse_endpoint(char **argv, union psh_addr *addr)
{
	unsigned port;
	socklen_t len;

	if (parse_port(argv[1], 65535, &port) < 0) {
		fprintf(stderr, "pstcp: '%s' is not a port\n", argv[1]);
		return 0;
	}
	len = psh_addr(addr, argv[0], (uint16_t)port);
	if (len == 0)
		fprintf(stderr, "pstcp: '%s' is not a numeric address\n",
			argv[0]);
	return len;
}

/* Binds a new TCP socket to addr; returns the descriptor or -1 (errno
 * set). */
static int bound_socket(const union psh_addr *addr, socklen_t len)
{
	int one = 1;
	int fd;

	fd = socket(addr->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Like most servers: a restarted listener must not wait for
	 * TIME_WAIT. It never lets two listeners share a port. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, &addr->sa, len) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int cmd_listen(int argc, char **argv)
{
	union psh_addr addr, got;
	socklen_t len, glen = sizeof(got);
	const char *reply = argc > 2 ? argv[2] : "pstcp";
	int fd;

	len = parse_endpoint(argv, &addr);
	if (len == 0)
		return PSTCP_EXIT_USAGE;
	fd = bound_socket(&addr, len);
	if (fd < 0)
		return fail("bind");
	if (listen(fd, 64) < 0)
		return fail("listen");
	if (getsockname(fd, &got.sa, &glen) < 0)
		return fail("getsockname");
	printf("listening %u\n", psh_port(&got));
	fflush(stdout);
	for (;;) {
		int c = accept(fd, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return fail("accept");
		}
		/* A client that went away is not our failure. */
		if (write(c, reply, strlen(reply)) < 0)
			perror("pstcp: write");
		close(c);
	}
}

static int cmd_connect(int argc, char **argv)
{
	struct timeval tv = { .tv_sec = 5 };
	union psh_addr addr;
	char buf[256];
	socklen_t len;
	ssize_t n;
	int fd;

	(void)argc;

	len = parse_endpoint(argv, &addr);
	if (len == 0)
		return PSTCP_EXIT_USAGE;
	fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail("socket");
	if (connect(fd, &addr.sa, len) < 0)
		return fail("connect");
	/* Servers that speak first (pstcp listen) are echoed; others
	 * simply give nothing within the timeout. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	printf("ok%s%s\n", n > 0 ? " " : "", buf);
	close(fd);
	return 0;
}

static int cmd_bind(int argc, char **argv)
{
	union psh_addr addr, got;
	socklen_t len, glen = sizeof(got);
	int fd;

	(void)argc;

	len = parse_endpoint(argv, &addr);
	if (len == 0)
		return PSTCP_EXIT_USAGE;
	fd = bound_socket(&addr, len);
	if (fd < 0)
		return fail("bind");
	if (getsockname(fd, &got.sa, &glen) < 0)
		return fail("getsockname");
	printf("%u\n", psh_port(&got));
	close(fd);
	return 0;
}

/* True if a TCP listener could take port on both wildcards. The probe
 * never sets SO_REUSEADDR or SO_REUSEPORT, so anything bound there (a
 * listener, a connection's local port, TIME_WAIT) counts as busy. */
static int port_free(unsigned port)
{
	static const char *const wild[] = { "0.0.0.0", "::" };
	size_t i;

	for (i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
		union psh_addr addr;
		socklen_t len = psh_addr(&addr, wild[i], (uint16_t)port);
		int fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC,
				0);
		int ok;

		if (fd < 0)
			return i == 1 && errno == EAFNOSUPPORT;
		ok = bind(fd, &addr.sa, len) == 0 && listen(fd, 1) == 0;
		/* A host without IPv6 cannot have the port taken there. */
		if (!ok && i == 1 && errno == EADDRNOTAVAIL)
			ok = 1;
		close(fd);
		if (!ok)
			return 0;
	}
	return 1;
}

static int cmd_free(int argc, char **argv)
{
	unsigned lo, hi, span, start, i;

	(void)argc;

	if (parse_port(argv[0], 65535, &lo) < 0 ||
	    parse_port(argv[1], 65535, &hi) < 0 || lo == 0 || lo > hi) {
		fputs(usage, stderr);
		return PSTCP_EXIT_USAGE;
	}
	/* Tests running in parallel start at different places so that
	 * they rarely race for the same port. */
	span = hi - lo + 1;
	start = (unsigned)(getpid() ^ time(NULL)) % span;
	for (i = 0; i < span; i++) {
		unsigned port = lo + (start + i) % span;

		if (port_free(port)) {
			printf("%u\n", port);
			return 0;
		}
	}
	errno = EADDRNOTAVAIL;
	return fail("free");
}

static int cmd_unix(int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[16];
	ssize_t n;
	int lfd, cfd, afd;

	(void)argc;

	if (strlen(argv[0]) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "pstcp: path too long\n");
		return PSTCP_EXIT_USAGE;
	}
	strcpy(sun.sun_path, argv[0]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return fail("socket");
	if (bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return fail("bind");
	if (listen(lfd, 1) < 0)
		return fail("listen");
	cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cfd < 0)
		return fail("socket");
	/* A stream connect to a listening AF_UNIX socket completes at
	 * once (the backlog has room), so one process plays both ends. */
	if (connect(cfd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		return fail("connect");
	afd = accept(lfd, NULL, NULL);
	if (afd < 0)
		return fail("accept");
	if (write(cfd, "hello", 5) != 5)
		return fail("write");
	n = read(afd, buf, sizeof(buf) - 1);
	if (n < 0)
		return fail("read");
	buf[n] = '\0';
	printf("ok %s\n", buf);
	close(afd);
	close(cfd);
	close(lfd);
	unlink(sun.sun_path);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int min_args, max_args;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{ "listen", 2, 3, cmd_listen },
		{ "connect", 2, 2, cmd_connect },
		{ "bind", 2, 2, cmd_bind },
		{ "free", 2, 2, cmd_free },
		{ "unix", 1, 1, cmd_unix },
	};
	size_t i;

	/* A line must reach a reading test before we block in accept. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fputs(usage, stderr);
		return PSTCP_EXIT_USAGE;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int nargs = argc - 2;

		if (strcmp(argv[1], cmds[i].name) != 0)
			continue;
		if (nargs < cmds[i].min_args || nargs > cmds[i].max_args)
			break;
		return cmds[i].fn(nargs, argv + 2);
	}
	fputs(usage, stderr);
	return PSTCP_EXIT_USAGE;
}
