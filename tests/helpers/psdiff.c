/* SPDX-License-Identifier: MIT */
/*
 * psdiff.c - one program, two front ends: the scenarios of the
 * differential test (tests/integration/differential.sh). Linked
 * statically, only the supervisor sees it; linked dynamically, the
 * preload does. Both runs must print the same lines.
 *
 *   psdiff TCP UDP OTHER UNUSED LO HI
 *       TCP and UDP: tagged virtual ports; OTHER: a port that is not
 *       tagged; UNUSED: a tagged port that nothing binds; LO-HI: the
 *       run's range of real ports. Runs each scenario
 *       in this process (servers and clients on 127.0.0.1 or ::1) and
 *       prints one line each: "NAME: what was seen", a port shown as
 *       "real" if it is in LO-HI (a real port that reached the program),
 *       "eph" if it is at or above 32768 (one the kernel chose), else as
 *       its number; an error as its errno name.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned lo, hi;

union addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

static const char *show_port(unsigned p, char *buf, size_t len)
{
	if (p >= lo && p <= hi)
		return "real";
	if (p >= 32768)
		return "eph";
	snprintf(buf, len, "%u", p);
	return buf;
}

static unsigned port_of(const union addr *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->in6.sin6_port :
						   a->in.sin_port);
}

static socklen_t make(union addr *a, const char *host, unsigned port)
{
	memset(a, 0, sizeof(*a));
	if (strchr(host, ':') != NULL) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &a->in6.sin6_addr);
		return sizeof(a->in6);
	}
	a->in.sin_family = AF_INET;
	a->in.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &a->in.sin_addr);
	return sizeof(a->in);
}

/* "port P" of getsockname or getpeername (peer), or the error. */
static const char *name_of(int fd, int peer, char *buf, size_t len)
{
	union addr a;
	socklen_t l = sizeof(a);
	char n[16];

	if ((peer ? getpeername(fd, &a.sa, &l) : getsockname(fd, &a.sa, &l)) !=
	    0) {
		snprintf(buf, len, "%s", strerrorname_np(errno));
		return buf;
	}
	snprintf(buf, len, "%s", show_port(port_of(&a), n, sizeof(n)));
	return buf;
}

/* Closes a TCP client with a reset: no TIME_WAIT is left on either
 * side to refuse the next scenario's bind of the same port. */
static void reset(int fd)
{
	struct linger lg = { 1, 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static int listener(const char *host, unsigned port, int type)
{
	union addr a;
	socklen_t l = make(&a, host, port);
	int fd = socket(a.sa.sa_family, type | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, &a.sa, l) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 8) != 0)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* A TCP server on host:port, a client to dest:port (family of dest), an
 * accepted connection: what each end sees. */
static void tcp_pair(const char *name, const char *host, const char *dest,
		     unsigned port)
{
	char b1[32], b2[32], b3[32], b4[32], b5[32];
	union addr a;
	socklen_t l;
	int s, c, x;

	s = listener(host, port, SOCK_STREAM);
	if (s < 0) {
		printf("%s: bind %s\n", name, strerrorname_np(-s));
		return;
	}
	l = make(&a, dest, port);
	c = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(c, &a.sa, l) != 0) {
		printf("%s: server %s, connect %s\n", name,
		       name_of(s, 0, b1, sizeof(b1)), strerrorname_np(errno));
		reset(c);
		close(s);
		return;
	}
	l = sizeof(a);
	x = accept(s, &a.sa, &l);
	printf("%s: server %s, client peer %s, client %s, accepted %s from"
	       " %s\n",
	       name, name_of(s, 0, b1, sizeof(b1)),
	       name_of(c, 1, b2, sizeof(b2)), name_of(c, 0, b3, sizeof(b3)),
	       x >= 0 ? name_of(x, 0, b4, sizeof(b4)) : "-",
	       x >= 0 ? show_port(port_of(&a), b5, sizeof(b5)) : "-");
	reset(c);
	if (x >= 0)
		close(x);
	close(s);
}

/* A UDP server on 127.0.0.1:port; a client sends with how, the server
 * answers; what each end sees. */
static void udp_pair(const char *name, unsigned port, const char *how)
{
	char b1[32], b2[32], b3[32], buf[64];
	union addr to, from, back;
	socklen_t l, fl = sizeof(from), bl = sizeof(back);
	struct iovec iov = { (void *)"ping", 4 };
	struct msghdr m;
	struct mmsghdr mm;
	struct pollfd p;
	ssize_t n;
	int s, c, rc;

	s = listener("127.0.0.1", port, SOCK_DGRAM);
	if (s < 0) {
		printf("%s: bind %s\n", name, strerrorname_np(-s));
		return;
	}
	l = make(&to, "127.0.0.1", port);
	c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&m, 0, sizeof(m));
	m.msg_name = &to;
	m.msg_namelen = l;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (strcmp(how, "sendto") == 0) {
		rc = (int)sendto(c, "ping", 4, 0, &to.sa, l);
	} else if (strcmp(how, "sendmsg") == 0) {
		rc = (int)sendmsg(c, &m, 0);
	} else if (strcmp(how, "sendmmsg") == 0) {
		memset(&mm, 0, sizeof(mm));
		mm.msg_hdr = m;
		rc = sendmmsg(c, &mm, 1, 0);
	} else {
		rc = connect(c, &to.sa, l);
		if (rc == 0)
			rc = (int)send(c, "ping", 4, 0);
	}
	if (rc < 0) {
		printf("%s: server %s, %s %s\n", name,
		       name_of(s, 0, b1, sizeof(b1)), how,
		       strerrorname_np(errno));
		goto out;
	}
	p = (struct pollfd){ .fd = s, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1 ||
	    recvfrom(s, buf, sizeof(buf), 0, &from.sa, &fl) < 0) {
		printf("%s: server %s, nothing arrived\n", name,
		       name_of(s, 0, b1, sizeof(b1)));
		goto out;
	}
	sendto(s, "pong", 4, 0, &from.sa, fl);
	p = (struct pollfd){ .fd = c, .events = POLLIN };
	n = poll(&p, 1, 10000) == 1 ?
		    recvfrom(c, buf, sizeof(buf) - 1, 0, &back.sa, &bl) :
		    -1;
	printf("%s: server %s, sender %s, answer %s from %s\n", name,
	       name_of(s, 0, b1, sizeof(b1)),
	       show_port(port_of(&from), b2, sizeof(b2)),
	       n == 4 ? "pong" : "none",
	       n == 4 ? show_port(port_of(&back), b3, sizeof(b3)) : "-");
out:
	close(c);
	close(s);
}

/* A TCP client connected to port sends with sendto naming other, with
 * or without MSG_FASTOPEN; the server reads what came. */
static void tcp_sendto(const char *name, unsigned port, unsigned other,
		       int fastopen)
{
	char buf[16] = "";
	union addr a, o;
	socklen_t l, ol;
	ssize_t n;
	int s, c, x;

	s = listener("127.0.0.1", port, SOCK_STREAM);
	if (s < 0) {
		printf("%s: bind %s\n", name, strerrorname_np(-s));
		return;
	}
	l = make(&a, "127.0.0.1", port);
	ol = make(&o, "127.0.0.1", other);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fastopen) {
		/* Connects and sends at once, to the address it names. */
		n = sendto(c, "x", 1, MSG_FASTOPEN, &a.sa, l);
	} else if (connect(c, &a.sa, l) == 0) {
		n = sendto(c, "x", 1, 0, &o.sa, ol);
	} else {
		n = -1;
	}
	if (n != 1) {
		printf("%s: sendto %s\n", name, strerrorname_np(errno));
		goto out;
	}
	x = accept(s, NULL, NULL);
	n = x >= 0 ? read(x, buf, sizeof(buf) - 1) : -1;
	printf("%s: sent, the server read %s\n", name,
	       n == 1 ? buf : "nothing");
	reset(c);
	c = -1;
	if (x >= 0)
		close(x);
out:
	if (c >= 0)
		reset(c);
	close(s);
}

int main(int argc, char **argv)
{
	unsigned tcp, udp, other, unused;
	char b1[32];
	int fd;

	if (argc != 7) {
		fprintf(stderr, "usage: psdiff TCP UDP OTHER UNUSED LO HI\n");
		return 2;
	}
	tcp = (unsigned)atoi(argv[1]);
	udp = (unsigned)atoi(argv[2]);
	other = (unsigned)atoi(argv[3]);
	unused = (unsigned)atoi(argv[4]);
	lo = (unsigned)atoi(argv[5]);
	hi = (unsigned)atoi(argv[6]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	tcp_pair("tcp", "127.0.0.1", "127.0.0.1", tcp);
	tcp_pair("tcp wildcard", "0.0.0.0", "127.0.0.1", tcp);
	tcp_pair("tcp6", "::1", "::1", tcp);
	tcp_pair("tcp v4-mapped", "::", "::ffff:127.0.0.1", tcp);
	tcp_pair("tcp untagged", "127.0.0.1", "127.0.0.1", other);
	udp_pair("udp sendto", udp, "sendto");
	udp_pair("udp sendmsg", udp, "sendmsg");
	udp_pair("udp sendmmsg", udp, "sendmmsg");
	udp_pair("udp connect", udp, "connect");
	udp_pair("udp untagged", other, "sendto");
	/* The address names a tagged port with no lease: the kernel ignores
	 * it on a connected socket, and so must portshim. */
	tcp_sendto("tcp sendto, no MSG_FASTOPEN", tcp, unused, 0);
	tcp_sendto("tcp sendto, MSG_FASTOPEN", tcp, tcp, 1);
	fd = listener("127.0.0.1", 0, SOCK_STREAM);
	printf("port 0: %s\n",
	       fd >= 0 ? name_of(fd, 0, b1, sizeof(b1)) : strerrorname_np(-fd));
	if (fd >= 0)
		close(fd);
	return 0;
}
