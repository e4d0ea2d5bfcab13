/* SPDX-License-Identifier: MIT */
/*
 * front.c - what both front ends decide before the policy: see front.h.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "front.h"
#include "netstat.h"
#include "portspec.h"
#include "sockaddr.h"

bool ps_front_candidate(const struct ps_config *cfg,
			const struct sockaddr *addr, socklen_t len,
			uint16_t *port)
{
	return ps_sockaddr_port(addr, len, port) && *port != 0 &&
	       ps_portspec_maybe(&cfg->ports, *port);
}

int ps_front_socket_proto(int fd)
{
	int proto = 0;
	socklen_t len = sizeof(proto);

	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) != 0)
		return -1;
	return ps_proto_of(proto);
}

bool ps_front_ours(const struct ps_config *cfg, enum ps_front_op op, int proto,
		   const struct sockaddr *addr, uint16_t port, int flags)
{
	if (proto != PS_TCP && proto != PS_UDP)
		return false;
	if (!ps_portspec_has(&cfg->ports, (enum ps_proto)proto, port))
		return false;
	if (op == PS_FRONT_SEND && proto == PS_TCP && !(flags & MSG_FASTOPEN))
		return false;
	/* Last: for an address of no interface, it reads the host's. */
	return op == PS_FRONT_BIND || ps_sockaddr_is_host(addr);
}

bool ps_front_reported(const struct ps_config *cfg, const struct sockaddr *addr,
		       socklen_t len, bool peer, uint16_t *port)
{
	/* Most peers are at an ephemeral port, outside the range: no
	 * locality test for them. */
	return ps_sockaddr_port(addr, len, port) && *port != 0 &&
	       *port >= cfg->range_lo && *port <= cfg->range_hi &&
	       (!peer || ps_sockaddr_is_host(addr));
}

void ps_front_fresh_group(pid_t pid, char *out, size_t len)
{
	uint32_t r = 0;
	struct timespec ts;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* Only at early boot or on very old kernels. */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		r = (uint32_t)ts.tv_nsec ^ (uint32_t)pid * 2654435761u;
	}
	snprintf(out, len, "ps-%ld-%08x", (long)pid, (unsigned)r);
}

void ps_front_describe(int proto, const struct sockaddr *addr, uint16_t port,
		       char *buf, size_t len)
{
	if (len < 5) {
		if (len > 0)
			buf[0] = '\0';
		return;
	}
	memcpy(buf, ps_proto_name((enum ps_proto)proto), 3);
	buf[3] = ' ';
	ps_sockaddr_format(addr, port, buf + 4, len - 4);
}

/*
 * Binds a plain socket (no SO_REUSEADDR, no SO_REUSEPORT) of family and
 * type to the wildcard address and real; an AF_INET6 one is dual-stack.
 * Returns 0 if real is taken (EADDRINUSE), 1 if not, -1 if this probe
 * cannot be made: no such family, or a dual-stack socket that cannot be
 * had or bound (then it would not speak for IPv4, and the caller probes
 * 0.0.0.0 instead).
 */
static int probe_one(int family, int type, uint16_t real,
		     ps_front_bind_fn bind_fn, void *arg)
{
	union ps_sockaddr a;
	socklen_t len;
	int fd, zero = 0, rc = -1;

	fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons(real);
		len = sizeof(a.in);
	} else {
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
			       sizeof(zero)) != 0)
			goto out;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(real);
		len = sizeof(a.in6);
	}
	if (bind_fn(arg, fd, &a.sa, len) == 0)
		rc = 1;
	else if (errno == EADDRINUSE)
		rc = 0;
	else if (family == AF_INET)
		rc = 1; /* only EADDRINUSE says "taken" */
out:
	close(fd);
	return rc;
}

/*
 * One dual-stack [::] probe per protocol covers IPv4 and IPv6 holders
 * alike (checked on Linux 6.x: holders on 0.0.0.0, 127.0.0.1 or
 * 127.0.0.2, bound or listening, with or without SO_REUSEADDR,
 * server-side TIME_WAIT and a connection's local port all refuse it, as
 * they refuse a 0.0.0.0 probe), so 0.0.0.0 is probed only where [::]
 * cannot be: two sockets per new lease instead of four. No allocation.
 */
int ps_front_probe(uint16_t real, ps_front_bind_fn bind_fn, void *arg)
{
	static const int types[] = { SOCK_STREAM, SOCK_DGRAM };
	int saved = errno;
	int rc = 0;

	for (size_t t = 0; t < 2 && rc == 0; t++) {
		int avail = probe_one(AF_INET6, types[t], real, bind_fn, arg);

		if (avail < 0)
			avail = probe_one(AF_INET, types[t], real, bind_fn,
					  arg);
		/*
		 * TCP remnants in TIME_WAIT only: the number is free for a
		 * bind with SO_REUSEADDR, which the shim gives the caller's
		 * socket if it lacks it (docs/time-wait.md).
		 */
		if (avail == 0 && types[t] == SOCK_STREAM &&
		    ps_netstat_timewait_only(real))
			avail = 1;
		if (avail == 0)
			rc = -EADDRINUSE;
	}
	errno = saved;
	return rc;
}
