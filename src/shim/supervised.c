/* SPDX-License-Identifier: MIT */
/*
 * supervised.c - the real-symbol table of a supervised process: the
 * preload's own socket calls carry the supervisor's cookie.
 *
 * The entries replace libc's functions with raw system calls. The only
 * difference a program could notice is that they are not pthread
 * cancellation points, and only the preload uses them.
 */
#include <stdint.h>
#include <stdlib.h>

#include "supcall.h"
#include "supervised.h"

/* Set once, before the table that uses it is published. */
static uint64_t cookie;
static int cookie_read;

uint64_t ps_shim_cookie(void)
{
	uint64_t c;

	if (__atomic_load_n(&cookie_read, __ATOMIC_ACQUIRE))
		return cookie;
	if (!ps_supcall_env_cookie(&c))
		c = 0;
	__atomic_store_n(&cookie, c, __ATOMIC_RELAXED);
	__atomic_store_n(&cookie_read, 1, __ATOMIC_RELEASE);
	return c;
}

static int sv_bind(int fd, const struct sockaddr *a, socklen_t l)
{
	return ps_supcall_bind(cookie, fd, a, l);
}

static int sv_connect(int fd, const struct sockaddr *a, socklen_t l)
{
	return ps_supcall_connect(cookie, fd, a, l);
}

static int sv_getsockname(int fd, struct sockaddr *a, socklen_t *l)
{
	return ps_supcall_getsockname(cookie, fd, a, l);
}

static int sv_getpeername(int fd, struct sockaddr *a, socklen_t *l)
{
	return ps_supcall_getpeername(cookie, fd, a, l);
}

static ssize_t sv_sendto(int fd, const void *b, size_t n, int flags,
			 const struct sockaddr *a, socklen_t l)
{
	return ps_supcall_sendto(cookie, fd, b, n, flags, a, l);
}

static ssize_t sv_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return ps_supcall_sendmsg(cookie, fd, m, flags);
}

static int sv_sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	return ps_supcall_sendmmsg(cookie, fd, v, n, flags);
}

void ps_real_supervised(struct ps_real *r)
{
	/*
	 * Read at the constructor, like the rest of the table: the
	 * supervisor sets the variable before exec, and a value that
	 * reached an unsupervised process does no harm (the kernel ignores
	 * the extra argument).
	 */
	if (ps_shim_cookie() == 0)
		return;
	r->bind = sv_bind;
	r->connect = sv_connect;
	r->getsockname = sv_getsockname;
	r->getpeername = sv_getpeername;
	r->sendto = sv_sendto;
	r->sendmsg = sv_sendmsg;
	r->sendmmsg = sv_sendmmsg;
}
