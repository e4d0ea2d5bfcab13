/* SPDX-License-Identifier: MIT */
/*
 * accept.c - the peer address that accept() and accept4() report.
 *
 * A client's address is usually an ephemeral port and stays as it is.
 * A client that bound a tagged port itself (a peer-to-peer node, a test
 * that fixes its source port) is at one of the group's real ports: the
 * server is shown its virtual port, as getpeername() shows it. A peer on
 * another host is never changed. The new socket, the result and errno
 * are the real call's.
 */
#include <errno.h>
#include <sys/socket.h>

#include "real.h"
#include "shim.h"

static int ps_shim_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t bufsize = addr != NULL && len != NULL ? *len : 0;
	int rc = ps_real()->accept(fd, addr, len);

	if (rc >= 0 && addr != NULL && len != NULL)
		ps_shim_reverse_peer(addr, bufsize, *len);
	return rc;
}

static int ps_shim_accept4(int fd, struct sockaddr *addr, socklen_t *len,
			   int flags)
{
	socklen_t bufsize = addr != NULL && len != NULL ? *len : 0;
	int rc = ps_real()->accept4(fd, addr, len, flags);

	if (rc >= 0 && addr != NULL && len != NULL)
		ps_shim_reverse_peer(addr, bufsize, *len);
	return rc;
}

PS_EXPORT int accept(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len)
{
	return ps_shim_accept(fd, PS_SA(addr), len);
}

PS_EXPORT int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *restrict len,
		      int flags)
{
	return ps_shim_accept4(fd, PS_SA(addr), len, flags);
}
