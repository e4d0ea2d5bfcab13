/* SPDX-License-Identifier: MIT */
/*
 * syscall.c - libc's syscall() for the socket calls that carry a port.
 *
 * A program that calls syscall(SYS_bind, ...) (or SYS_connect, SYS_sendto,
 * or SYS_socketcall where that exists) would otherwise go around the
 * shim. Those numbers are routed through the same logic as the libc
 * functions: bind through ps_shim_bind, destinations through
 * ps_shim_destination. Every other number goes to libc's syscall()
 * untouched, with the six arguments as given, getsockname and
 * getpeername included: a raw getsockname is how a program (or a test)
 * asks for the port a socket really has, and it keeps that meaning. The
 * result convention is syscall()'s: -1 and errno on error.
 *
 * syscall() is variadic; like every implementation (glibc's reads six
 * registers, musl's six va_args), ours reads six longs whatever the
 * caller passed. Reading an argument that was not passed reads a
 * register or the caller's stack: harmless, and never used. That read
 * may land in a redzone of a caller built with AddressSanitizer, so the
 * trampoline is not instrumented.
 *
 * The shim's own calls: under `portshim run --supervise` the preload's
 * real socket calls are syscall()s that carry the supervisor's cookie in
 * their sixth argument (supcall.h), and they land here: a call carrying
 * the cookie is passed on untouched, never decided a second time. The
 * shim's fallbacks for a missing libc symbol (real.c) go to the kernel
 * directly (rawsys.h), not through here (only the exec and exit ones, on
 * an architecture rawsys.h does not know, come here); a thread-local
 * guard still sends every call made while this file is already handling
 * one straight on (the lookup of libc's syscall() may call it), so
 * nothing can loop back into the policy.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy.h"
#include "rawsys.h"
#include "real.h"
#include "shim.h"
#include "sockaddr.h"
#include "supervised.h"

typedef long (*syscall_fn)(long, ...);

static syscall_fn real_syscall;
/* Non-zero while this thread is inside our syscall(). initial-exec: the
 * TLS of a preloaded library is static, and reading it never allocates. */
static __thread int in_raw __attribute__((tls_model("initial-exec")));

/*
 * The kernel's own system call, for the moment before libc's syscall()
 * is known (a dlsym that allocates through a malloc that calls syscall()
 * would otherwise recurse). Only where we know the calling convention
 * (rawsys.h); elsewhere that moment gets ENOSYS.
 */
static long raw_kernel(long nr, const long a[6])
{
	return ps_rawsys_errno(
		ps_rawsys(nr, a[0], a[1], a[2], a[3], a[4], a[5]));
}

/*
 * Resolves libc's syscall() and reads the supervisor's cookie (idempotent;
 * every caller stores the same values).
 */
static void raw_resolve(void)
{
	syscall_fn fn;

	ps_shim_cookie();
	in_raw++;
	fn = (syscall_fn)ps_real_lookup("syscall", (void *)syscall, NULL);
	in_raw--;
	if (fn != NULL)
		__atomic_store_n(&real_syscall, fn, __ATOMIC_RELEASE);
}

/* At load (init.c). */
void ps_syscall_init(void)
{
	raw_resolve();
}

/* libc's syscall() with the six arguments as given. */
static long raw_pass(long nr, const long a[6])
{
	syscall_fn fn = __atomic_load_n(&real_syscall, __ATOMIC_ACQUIRE);

	if (fn == NULL)
		return raw_kernel(nr, a);
	return fn(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* ------------------------------------------------------ socket calls */

static long raw_bind(long fd, long addr, long len)
{
	return ps_shim_bind((int)fd, (const struct sockaddr *)addr,
			    (socklen_t)len);
}

/*
 * connect, and sendto's destination: rewritten as the libc calls are.
 * sendto on a TCP socket carries a destination only with MSG_FASTOPEN
 * (otherwise the kernel ignores it), so only then does it count.
 */
static long raw_send(long nr, const long a[6])
{
	const struct sockaddr *addr;
	union ps_sockaddr copy;
	long b[6];
	socklen_t len;
	int saved = errno, rc, i;

	if (nr == SYS_connect) {
		addr = (const struct sockaddr *)a[1];
		len = (socklen_t)a[2];
		rc = ps_shim_destination((int)a[0], PS_FRONT_CONNECT, addr, len,
					 0, &copy);
	} else {
		addr = (const struct sockaddr *)a[4];
		len = (socklen_t)a[5];
		if (addr == NULL)
			return raw_pass(nr, a);
		rc = ps_shim_destination((int)a[0], PS_FRONT_SEND, addr, len,
					 (int)a[3], &copy);
	}
	if (rc == PS_PASS) {
		errno = saved;
		return raw_pass(nr, a);
	}
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	for (i = 0; i < 6; i++)
		b[i] = a[i];
	b[nr == SYS_connect ? 1 : 4] = (long)&copy.sa;
	errno = saved;
	return raw_pass(nr, b);
}

#ifdef SYS_socketcall
/* socketcall(2)'s call numbers (<linux/net.h>). */
#define SC_BIND 2
#define SC_CONNECT 3
#define SC_SENDTO 11

/*
 * socketcall(call, args): the 32-bit x86 (and a few others') single
 * entry point for the socket calls; args points at unsigned longs. The
 * decoded call is made with its own system call number where the kernel
 * has one, else through socketcall with a rewritten copy of args.
 */
static long raw_socketcall(const long a[6])
{
	const unsigned long *args = (const unsigned long *)a[1];
	long v[6] = { 0 };
	int i, n;

	switch ((int)a[0]) {
	case SC_BIND:
	case SC_CONNECT:
		n = 3;
		break;
	case SC_SENDTO:
		n = 6;
		break;
	default:
		return raw_pass(SYS_socketcall, a);
	}
	if (args == NULL)
		return raw_pass(SYS_socketcall, a);
	for (i = 0; i < n; i++)
		v[i] = (long)args[i];
	switch ((int)a[0]) {
	case SC_BIND:
		return raw_bind(v[0], v[1], v[2]);
#if defined(SYS_connect) && defined(SYS_sendto)
	case SC_CONNECT:
		return raw_send(SYS_connect, v);
	case SC_SENDTO:
		return raw_send(SYS_sendto, v);
#endif
	default:
		/* No separate numbers: only bind is rewritten (through
		 * libc's bind, which knows how to reach the kernel). */
		return raw_pass(SYS_socketcall, a);
	}
}
#endif

/* Decides one call; the guard is held. */
static long raw_dispatch(long nr, const long a[6])
{
	switch (nr) {
#ifdef SYS_bind
	case SYS_bind:
		return raw_bind(a[0], a[1], a[2]);
#endif
#if defined(SYS_connect) && defined(SYS_sendto)
	case SYS_connect:
	case SYS_sendto:
		return raw_send(nr, a);
#endif
#ifdef SYS_socketcall
	case SYS_socketcall:
		return raw_socketcall(a);
#endif
#ifdef SYS_io_uring_setup
	case SYS_io_uring_setup: {
		int rc = ps_shim_io_uring();

		if (rc < 0) {
			errno = -rc;
			return -1;
		}
		return raw_pass(nr, a);
	}
#endif
	default:
		return raw_pass(nr, a);
	}
}

static long ps_raw_syscall(long nr, const long a[6])
{
	long rc;

	uint64_t cookie;

	if (in_raw)
		return raw_pass(nr, a);
	/* Before the guard: calls made by dlsym meanwhile go raw. */
	if (__atomic_load_n(&real_syscall, __ATOMIC_ACQUIRE) == NULL)
		raw_resolve();
	/* The preload's own call under a supervisor: already decided. */
	cookie = ps_shim_cookie();
	if (cookie != 0 && (uint64_t)a[5] == cookie)
		return raw_pass(nr, a);
	in_raw++;
	rc = raw_dispatch(nr, a);
	in_raw--;
	return rc;
}

/* ------------------------------------------------------ trampoline */

PS_EXPORT __attribute__((no_sanitize_address)) long syscall(long number, ...)
{
	va_list ap;
	long a[6];
	int i;

	va_start(ap, number);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	return ps_raw_syscall(number, a);
}
