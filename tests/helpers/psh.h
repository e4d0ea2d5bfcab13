/* SPDX-License-Identifier: MIT */
/*
 * psh.h - what the socket-API test helpers (psapi, psproc) share:
 * reporting checks as lines a shell test relays to TAP, addresses
 * (psaddr.h), and looking at sockets behind the shim's back.
 *
 * A helper runs under `portshim run`, so its own bind/connect/... go
 * through the shim. To see what really happened, it asks the kernel
 * with raw system calls (psh_raw_*) made through libc's own syscall(),
 * looked up in libc itself: the shim interposes syscall() too.
 *
 * Output, one line each, flushed at once:
 *   ok - DESCRIPTION
 *   not ok - DESCRIPTION
 *   skip - REASON - DESCRIPTION
 *   # a diagnostic
 *   done N        (last line: N checks were reported)
 */
#ifndef PSH_H
#define PSH_H

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "psaddr.h"

static int psh_count;
static int psh_failed;

__attribute__((format(printf, 2, 0)))
static void psh_vline(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	printf("%s%s\n", prefix, buf);
	fflush(stdout);
}

__attribute__((format(printf, 2, 3), unused))
static bool psh_check(bool cond, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	psh_vline(cond ? "ok - " : "not ok - ", fmt, ap);
	va_end(ap);
	psh_count++;
	if (!cond)
		psh_failed++;
	return cond;
}

__attribute__((format(printf, 1, 2), unused))
static void psh_diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	psh_vline("# ", fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 2, 3), unused))
static void psh_skip(const char *reason, const char *fmt, ...)
{
	char desc[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	printf("skip - %s - %s\n", reason, desc);
	fflush(stdout);
	psh_count++;
}

__attribute__((unused))
static int psh_done(void)
{
	printf("done %d\n", psh_count);
	fflush(stdout);
	return psh_failed ? 1 : 0;
}

/*
 * A copy of an address in a page of its own that is then made
 * read-only: a shim that wrote to the caller's const address would
 * crash the helper. The pages are never freed (a helper is short-lived).
 */
__attribute__((unused))
static const struct sockaddr *psh_ro(const union psh_addr *a)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(99);
	}
	memcpy(p, a, sizeof(*a));
	if (mprotect(p, (size_t)page, PROT_READ) != 0) {
		perror("mprotect");
		exit(99);
	}
	return p;
}

/* Makes a page-aligned block read-only (for msghdrs built in place). */
__attribute__((unused))
static void *psh_page(void)
{
	long page = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(99);
	}
	return p;
}

__attribute__((unused))
static void psh_protect(void *p)
{
	if (mprotect(p, (size_t)sysconf(_SC_PAGESIZE), PROT_READ) != 0) {
		perror("mprotect");
		exit(99);
	}
}

/*
 * getsockname or getpeername straight from the kernel, through libc's
 * syscall() (found in libc.so.6 itself, not through the symbol search
 * that finds the preloaded shim first). Async-signal-safe once
 * psh_kernel_init has run.
 */
static long (*psh_libc_syscall)(long, ...);

__attribute__((unused))
static void psh_kernel_init(void)
{
	void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);

	if (libc != NULL)
		psh_libc_syscall = (long (*)(long, ...))dlsym(libc, "syscall");
	if (psh_libc_syscall == NULL) {
		fprintf(stderr, "cannot find libc's syscall()\n");
		exit(99);
	}
}

static uint16_t psh_raw_name(long nr, int fd)
{
	union psh_addr a;
	socklen_t len = sizeof(a);

	if (psh_libc_syscall == NULL)
		psh_kernel_init();
	if (psh_libc_syscall(nr, (long)fd, &a, &len) != 0)
		return 0;
	return psh_port(&a);
}

/* The port the socket is really bound to (no shim): 0 on error. */
__attribute__((unused))
static uint16_t psh_raw_port(int fd)
{
	return psh_raw_name(SYS_getsockname, fd);
}

/* The port the socket is really connected to (no shim): 0 on error. */
__attribute__((unused))
static uint16_t psh_raw_peer(int fd)
{
	return psh_raw_name(SYS_getpeername, fd);
}

/* The port getsockname() reports (through the shim): 0 on error. */
__attribute__((unused))
static uint16_t psh_name_port(int fd)
{
	union psh_addr a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, &a.sa, &len) != 0)
		return 0;
	return psh_port(&a);
}

/* The port getpeername() reports (through the shim): 0 on error. */
__attribute__((unused))
static uint16_t psh_peer_port(int fd)
{
	union psh_addr a;
	socklen_t len = sizeof(a);

	if (getpeername(fd, &a.sa, &len) != 0)
		return 0;
	return psh_port(&a);
}

/* A socket of the given family and type, or exit 99. */
__attribute__((unused))
static int psh_socket(int family, int type)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("socket");
		exit(99);
	}
	return fd;
}

/* Sets a receive timeout so that a lost datagram fails a check instead
 * of hanging the test. */
__attribute__((unused))
static void psh_timeout(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* The real port range the shim hands out (PORTSHIM_RANGE or default). */
__attribute__((unused))
static bool psh_in_range(uint16_t port)
{
	const char *r = getenv("PORTSHIM_RANGE");
	unsigned lo = 20000, hi = 32767;

	if (r != NULL && sscanf(r, "%u-%u", &lo, &hi) != 2) {
		lo = 20000;
		hi = 32767;
	}
	return port >= lo && port <= hi;
}

#endif
