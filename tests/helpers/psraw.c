/* SPDX-License-Identifier: MIT */
/*
 * psraw.c - socket calls made with libc's syscall(), as some programs do,
 * for the integration tests: the shim must rewrite them like the libc
 * functions.
 *
 *   psraw listen ADDR PORT [REPLY]  TCP: syscall(SYS_bind), listen, print
 *                                   "listening PORT REAL" (the ports that
 *                                   getsockname() and the raw
 *                                   syscall(SYS_getsockname) report),
 *                                   then answer every connection with
 *                                   REPLY (default "psraw") until killed
 *   psraw connect ADDR PORT         TCP: syscall(SYS_connect); print
 *                                   "ok REPLY" (what the server sent) or
 *                                   the errno name
 *   psraw udpecho ADDR PORT         UDP: syscall(SYS_bind), print
 *                                   "listening PORT REAL", then send every
 *                                   datagram back prefixed with "echo "
 *   psraw sendto ADDR PORT MSG      UDP: syscall(SYS_sendto) MSG to ADDR
 *                                   PORT; print "ok REPLY" (the answer,
 *                                   within 10 s) or the errno name
 *   psraw uring N                   syscall(SYS_io_uring_setup) N times,
 *                                   as io_uring libraries may; print "ok"
 *                                   or the errno name of each
 *
 * ADDR is a numeric IPv4 or IPv6 address. Exit status: 0 success, 1 the
 * operation failed, 2 bad usage. Lines go to stdout, flushed at once.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "psaddr.h"

#define PSRAW_EXIT_FAIL 1
#define PSRAW_EXIT_USAGE 2

static const char usage[] =
	"usage: psraw listen ADDR PORT [REPLY] | connect ADDR PORT |\n"
	"       udpecho ADDR PORT | sendto ADDR PORT MSG | uring N\n";

static int fail(const char *what)
{
	int err = errno;
	const char *name = strerrorname_np(err);

	printf("%s\n", name != NULL ? name : "error");
	fflush(stdout);
	fprintf(stderr, "psraw: %s: %s\n", what, strerror(err));
	return PSRAW_EXIT_FAIL;
}

/* Fills addr from "ADDR" and "PORT"; returns its length or 0. */
static socklen_t endpoint(const char *host, const char *port_text,
			  union psh_addr *addr)
{
	char *end;
	unsigned long port = strtoul(port_text, &end, 10);

	if (end == port_text || *end != '\0' || port > 65535)
		return 0;
	return psh_addr(addr, host, (uint16_t)port);
}

/*
 * A socket bound with syscall(SYS_bind); prints "listening PORT REAL":
 * the port libc's getsockname() shows (through the shim: virtual) and
 * the one the raw system call shows (the socket's real port).
 */
static int raw_bound(int type, const union psh_addr *addr, socklen_t len)
{
	union psh_addr got, raw;
	socklen_t glen = sizeof(got), rlen = sizeof(raw);
	int fd = socket(addr->sa.sa_family, type, 0);

	if (fd < 0)
		return -1;
	if (syscall(SYS_bind, fd, &addr->sa, len) != 0)
		return -1;
	if (getsockname(fd, &got.sa, &glen) != 0 ||
	    syscall(SYS_getsockname, fd, &raw.sa, &rlen) != 0)
		return -1;
	if (type == SOCK_STREAM && listen(fd, 16) != 0)
		return -1;
	printf("listening %u %u\n", psh_port(&got), psh_port(&raw));
	fflush(stdout);
	return fd;
}

static int cmd_listen(const union psh_addr *addr, socklen_t len,
		      const char *reply)
{
	int fd = raw_bound(SOCK_STREAM, addr, len), c;

	if (fd < 0)
		return fail("bind");
	for (;;) {
		c = accept(fd, NULL, NULL);
		if (c < 0)
			continue;
		if (write(c, reply, strlen(reply)) < 0)
			perror("psraw: write");
		close(c);
	}
}

static int cmd_connect(const union psh_addr *addr, socklen_t len)
{
	char buf[256];
	ssize_t n;
	int fd = socket(addr->sa.sa_family, SOCK_STREAM, 0);

	if (fd < 0)
		return fail("socket");
	if (syscall(SYS_connect, fd, &addr->sa, len) != 0)
		return fail("connect");
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	printf("ok %s\n", buf);
	return 0;
}

static int cmd_udpecho(const union psh_addr *addr, socklen_t len)
{
	char buf[512], out[600];
	union psh_addr from;
	socklen_t flen;
	ssize_t n;
	int fd = raw_bound(SOCK_DGRAM, addr, len);

	if (fd < 0)
		return fail("bind");
	for (;;) {
		flen = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf) - 1, 0, &from.sa, &flen);
		if (n < 0)
			continue;
		buf[n] = '\0';
		snprintf(out, sizeof(out), "echo %s", buf);
		sendto(fd, out, strlen(out), 0, &from.sa, flen);
	}
}

static int cmd_sendto(const union psh_addr *addr, socklen_t len,
		      const char *msg)
{
	struct timeval tv = { .tv_sec = 10 };
	char buf[600];
	ssize_t n;
	int fd = socket(addr->sa.sa_family, SOCK_DGRAM, 0);

	if (fd < 0)
		return fail("socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (syscall(SYS_sendto, fd, msg, strlen(msg), 0, &addr->sa, len) < 0)
		return fail("sendto");
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return fail("recv");
	buf[n] = '\0';
	printf("ok %s\n", buf);
	return 0;
}

/* io_uring_setup through syscall(), n times; each ring is closed. */
static int cmd_uring(int n)
{
	/* struct io_uring_params: 120 bytes of zeros ask for defaults. */
	unsigned char params[120];
	int rc = 0;

	for (int i = 0; i < n; i++) {
		long fd;

		memset(params, 0, sizeof(params));
		fd = syscall(SYS_io_uring_setup, 4, params);
		if (fd < 0) {
			const char *name = strerrorname_np(errno);

			printf("%s\n", name != NULL ? name : "error");
			rc = PSRAW_EXIT_FAIL;
			continue;
		}
		printf("ok\n");
		close((int)fd);
	}
	return rc;
}

int main(int argc, char **argv)
{
	union psh_addr addr;
	socklen_t len;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "uring") == 0)
		return cmd_uring(atoi(argv[2]));
	if (argc < 4 || (len = endpoint(argv[2], argv[3], &addr)) == 0) {
		fputs(usage, stderr);
		return PSRAW_EXIT_USAGE;
	}
	if (strcmp(argv[1], "listen") == 0 && argc <= 5)
		return cmd_listen(&addr, len, argc == 5 ? argv[4] : "psraw");
	if (strcmp(argv[1], "connect") == 0 && argc == 4)
		return cmd_connect(&addr, len);
	if (strcmp(argv[1], "udpecho") == 0 && argc == 4)
		return cmd_udpecho(&addr, len);
	if (strcmp(argv[1], "sendto") == 0 && argc == 5)
		return cmd_sendto(&addr, len, argv[4]);
	fputs(usage, stderr);
	return PSRAW_EXIT_USAGE;
}
