/* SPDX-License-Identifier: MIT */
/*
 * dgram.c - the calls that carry an address with the data: sendto (and
 * its MSG_FASTOPEN form, an implicit TCP connect), sendmsg and sendmmsg
 * on the way out; recvfrom, recvmsg and recvmmsg on the way in.
 *
 * Out: a destination on this host at a tagged port is sent to the
 * group's real port, exactly as connect() is (ps_shim_redirect). The
 * caller's address and msghdr are const to us: a rewritten call gets a
 * private copy of the msghdr pointing at a private copy of the address.
 *
 * In: a sender on this host at one of the group's real ports is shown at
 * its virtual port (ps_shim_reverse_peer), so that a DNS-style client
 * that checks where the answer came from sees the port it asked. Only
 * the caller's output buffers are written, and only where they hold the
 * port. The destination address of IP_ORIGDSTADDR/IPV6_ORIGDSTADDR
 * control messages is ours, and is shown at its virtual port too.
 *
 * Untagged traffic stays on the fast path: a NULL address, another
 * family, port 0 or a port PORTSHIM_PORTS cannot tag costs a few
 * comparisons; a received sender costs a range test.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "policy.h"
#include "real.h"
#include "shim.h"
#include "sockaddr.h"

/* Not a protocol: the socket's protocol has not been asked yet. */
#define PROTO_UNKNOWN (-2)

/*
 * sendmmsg entries rewritten per real call. Each costs a struct mmsghdr
 * and a union ps_sockaddr on the stack (about 1.5 KiB in all).
 */
#define MMSG_CHUNK 8

#ifndef UIO_MAXIOV
#define UIO_MAXIOV 1024
#endif

/*
 * Decides a destination. *proto caches the socket's protocol across the
 * entries of one sendmmsg (PROTO_UNKNOWN: not asked yet). A TCP socket's
 * destination matters only with MSG_FASTOPEN: otherwise the kernel
 * ignores it (or fails the call on its own), and a refusal by the policy
 * must not turn into an error that the real call would not give.
 * Returns PS_PASS, 0 (use *out) or -errno, as ps_shim_destination.
 */
static int dgram_destination(int fd, int flags, int *proto,
			     const struct sockaddr *addr, socklen_t len,
			     union ps_sockaddr *out)
{
	uint16_t vport;

	if (addr == NULL || !ps_shim_maybe(addr, len, &vport))
		return PS_PASS;
	if (*proto == PROTO_UNKNOWN)
		*proto = ps_front_socket_proto(fd);
	if (!ps_front_ours(&ps_shim_cfg, PS_FRONT_SEND, *proto, addr, vport,
			   flags))
		return PS_PASS;
	return ps_shim_redirect(*proto, vport, addr, len, out);
}

/* ------------------------------------------------------------ send */

static ssize_t ps_shim_sendto(int fd, const void *buf, size_t n, int flags,
			      const struct sockaddr *addr, socklen_t len)
{
	union ps_sockaddr copy;
	int saved = errno;
	int proto = PROTO_UNKNOWN;
	int rc;

	rc = dgram_destination(fd, flags, &proto, addr, len, &copy);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	errno = saved;
	if (rc == PS_PASS)
		return ps_real()->sendto(fd, buf, n, flags, addr, len);
	return ps_real()->sendto(fd, buf, n, flags, &copy.sa, len);
}

static ssize_t ps_shim_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	union ps_sockaddr copy;
	struct msghdr m;
	int saved = errno;
	int proto = PROTO_UNKNOWN;
	int rc;

	/* A NULL msg is the kernel's to refuse (EFAULT). */
	if (msg == NULL || msg->msg_name == NULL)
		return ps_real()->sendmsg(fd, msg, flags);
	rc = dgram_destination(fd, flags, &proto, msg->msg_name,
			       msg->msg_namelen, &copy);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	errno = saved;
	if (rc == PS_PASS)
		return ps_real()->sendmsg(fd, msg, flags);
	m = *msg;
	m.msg_name = &copy;
	return ps_real()->sendmsg(fd, &m, flags);
}

/* True if some entry may need a rewrite (no system call). */
static bool mmsg_candidates(const struct mmsghdr *vec, unsigned int vlen)
{
	uint16_t vport;

	for (unsigned int i = 0; i < vlen; i++)
		if (vec[i].msg_hdr.msg_name != NULL &&
		    ps_shim_maybe(vec[i].msg_hdr.msg_name,
				  vec[i].msg_hdr.msg_namelen, &vport))
			return true;
	return false;
}

/*
 * sendmmsg with rewritten destinations: the entries go out in chunks of
 * private copies, and each chunk's msg_len is copied back into the
 * caller's array (which sendmmsg writes anyway). The kernel's rules are
 * kept: the result is the number of messages sent; an error after at
 * least one message was sent is not reported (the count is); a refused
 * destination is such an error for its entry.
 */
static int ps_shim_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
			    int flags)
{
	struct mmsghdr part[MMSG_CHUNK];
	union ps_sockaddr names[MMSG_CHUNK];
	unsigned int done = 0, n, i;
	int saved = errno;
	int proto = PROTO_UNKNOWN;
	int err, rc, sent;

	/* The kernel handles at most UIO_MAXIOV entries per call. */
	if (vlen > UIO_MAXIOV)
		vlen = UIO_MAXIOV;
	if (vec == NULL || !mmsg_candidates(vec, vlen)) {
		errno = saved;
		return ps_real()->sendmmsg(fd, vec, vlen, flags);
	}
	while (done < vlen) {
		err = 0;
		for (n = 0; n < MMSG_CHUNK && done + n < vlen; n++) {
			const struct msghdr *h = &vec[done + n].msg_hdr;

			part[n] = vec[done + n];
			rc = dgram_destination(fd, flags, &proto, h->msg_name,
					       h->msg_namelen, &names[n]);
			if (rc < 0) {
				err = -rc;
				break;
			}
			if (rc == 0)
				part[n].msg_hdr.msg_name = &names[n];
		}
		if (n > 0) {
			errno = saved;
			sent = ps_real()->sendmmsg(fd, part, n, flags);
			if (sent < 0) {
				if (done == 0)
					return -1;
				errno = saved;
				return (int)done;
			}
			for (i = 0; i < (unsigned int)sent; i++)
				vec[done + i].msg_len = part[i].msg_len;
			done += (unsigned int)sent;
			if ((unsigned int)sent < n)
				break;
		}
		if (err != 0) {
			if (done == 0) {
				errno = err;
				return -1;
			}
			break;
		}
	}
	errno = saved;
	return (int)done;
}

/* ------------------------------------------------------------ receive */

/*
 * The destination of IP_ORIGDSTADDR / IPV6_ORIGDSTADDR control messages
 * is this socket's own address: show its virtual port. Only complete
 * messages are looked at (a truncated one has a shorter cmsg_len).
 */
static void reverse_control(struct msghdr *msg)
{
	struct cmsghdr *c;

	if (msg->msg_control == NULL || msg->msg_controllen == 0)
		return;
	for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
		socklen_t len;

		if (!((c->cmsg_level == SOL_IP &&
		       c->cmsg_type == IP_ORIGDSTADDR) ||
		      (c->cmsg_level == SOL_IPV6 &&
		       c->cmsg_type == IPV6_ORIGDSTADDR)))
			continue;
		if (c->cmsg_len < CMSG_LEN(0))
			continue;
		len = (socklen_t)(c->cmsg_len - CMSG_LEN(0));
		ps_shim_reverse((struct sockaddr *)CMSG_DATA(c), len, len);
	}
}

static ssize_t ps_shim_recvfrom(int fd, void *buf, size_t n, int flags,
				struct sockaddr *addr, socklen_t *len)
{
	socklen_t bufsize = addr != NULL && len != NULL ? *len : 0;
	ssize_t rc = ps_real()->recvfrom(fd, buf, n, flags, addr, len);

	if (rc >= 0 && addr != NULL && len != NULL)
		ps_shim_reverse_peer(addr, bufsize, *len);
	return rc;
}

static ssize_t ps_shim_recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
				    int flags, struct sockaddr *addr,
				    socklen_t *len)
{
	socklen_t bufsize = addr != NULL && len != NULL ? *len : 0;
	ssize_t rc;

	if (ps_real()->recvfrom_chk != NULL) {
		rc = ps_real()->recvfrom_chk(fd, buf, n, buflen, flags, addr,
					     len);
	} else {
		/* What glibc's __recvfrom_chk does: __chk_fail aborts. */
		if (n > buflen)
			abort();
		rc = ps_real()->recvfrom(fd, buf, n, flags, addr, len);
	}
	if (rc >= 0 && addr != NULL && len != NULL)
		ps_shim_reverse_peer(addr, bufsize, *len);
	return rc;
}

static ssize_t ps_shim_recvmsg(int fd, struct msghdr *msg, int flags)
{
	socklen_t bufsize = msg != NULL ? msg->msg_namelen : 0;
	ssize_t rc = ps_real()->recvmsg(fd, msg, flags);

	if (rc < 0)
		return rc;
	if (msg->msg_name != NULL)
		ps_shim_reverse_peer(msg->msg_name, bufsize, msg->msg_namelen);
	reverse_control(msg);
	return rc;
}

/*
 * recvmmsg overwrites each msg_namelen with the full length of the
 * sender's address, so whether each caller's buffer holds a whole
 * address is noted first: one bit per entry and family, on the stack
 * (vlen is at most UIO_MAXIOV for the kernel).
 */
static int ps_shim_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
			    int flags, struct timespec *tmo)
{
	uint8_t holds4[UIO_MAXIOV / 8], holds6[UIO_MAXIOV / 8];
	unsigned int n = vlen > UIO_MAXIOV ? UIO_MAXIOV : vlen;
	int rc;

	if (vec == NULL)
		return ps_real()->recvmmsg(fd, vec, vlen, flags, tmo);
	memset(holds4, 0, sizeof(holds4));
	memset(holds6, 0, sizeof(holds6));
	for (unsigned int i = 0; i < n; i++) {
		socklen_t have = vec[i].msg_hdr.msg_namelen;

		if (vec[i].msg_hdr.msg_name == NULL)
			continue;
		if (have >= (socklen_t)sizeof(struct sockaddr_in))
			holds4[i / 8] |= (uint8_t)(1u << (i % 8));
		if (have >= (socklen_t)sizeof(struct sockaddr_in6))
			holds6[i / 8] |= (uint8_t)(1u << (i % 8));
	}
	rc = ps_real()->recvmmsg(fd, vec, vlen, flags, tmo);
	for (int i = 0; i < rc && (unsigned int)i < n; i++) {
		struct msghdr *h = &vec[i].msg_hdr;
		bool v6 = (holds6[i / 8] >> (i % 8)) & 1;
		bool v4 = (holds4[i / 8] >> (i % 8)) & 1;
		socklen_t bufsize =
			v6 ? (socklen_t)sizeof(struct sockaddr_in6) :
			v4 ? (socklen_t)sizeof(struct sockaddr_in) :
			     0;

		if (h->msg_name != NULL && bufsize != 0)
			ps_shim_reverse_peer(h->msg_name, bufsize,
					     h->msg_namelen);
		reverse_control(h);
	}
	return rc;
}

/* ------------------------------------------------------ trampolines */

PS_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			 __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	return ps_shim_sendto(fd, buf, n, flags, PS_SA(addr), len);
}

PS_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return ps_shim_sendmsg(fd, msg, flags);
}

PS_EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
		       int flags)
{
	return ps_shim_sendmmsg(fd, vec, vlen, flags);
}

PS_EXPORT ssize_t recvfrom(int fd, void *restrict buf, size_t n, int flags,
			   __SOCKADDR_ARG addr, socklen_t *restrict len)
{
	return ps_shim_recvfrom(fd, buf, n, flags, PS_SA(addr), len);
}

/* glibc's fortified recvfrom; declared by glibc only with fortification. */
PS_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
				 int flags, __SOCKADDR_ARG addr,
				 socklen_t *restrict len);
PS_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen,
				 int flags, __SOCKADDR_ARG addr,
				 socklen_t *restrict len)
{
	return ps_shim_recvfrom_chk(fd, buf, n, buflen, flags, PS_SA(addr),
				    len);
}

PS_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	return ps_shim_recvmsg(fd, msg, flags);
}

PS_EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen,
		       int flags, struct timespec *tmo)
{
	return ps_shim_recvmmsg(fd, vec, vlen, flags, tmo);
}
