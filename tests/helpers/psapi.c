/* SPDX-License-Identifier: MIT */
/*
 * psapi.c - checks of the socket calls the shim rewrites, from inside a
 * program running under `portshim run --ports 5300-5309,8080-8089`:
 *
 *   psapi udp        sendto/sendmsg/sendmmsg destinations, the senders
 *                    recvfrom/recvmsg/recvmmsg report, IP_ORIGDSTADDR,
 *                    short address buffers, errno, AF_UNSPEC, refusals
 *   psapi tcp        accept/accept4/getpeername/getsockname, EINPROGRESS,
 *                    __connect, sendto(MSG_FASTOPEN), unspecified and
 *                    interface-address destinations, short lengths,
 *                    refusals
 *   psapi dual       IPv4, IPv6 V6ONLY and dual-stack binds of one
 *                    virtual port agree; v4-mapped destinations
 *   psapi reuseport  SO_REUSEPORT listeners in several threads share the
 *                    real port; without SO_REUSEPORT the port is in use
 *
 * Every address handed to the shim lies in a read-only page, so a shim
 * that wrote to a caller's const address would crash the helper. What
 * really happened is checked with raw system calls (see psh.h). Output:
 * check lines for the shell test to relay (psh.h); exit 0 if all passed.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>

#include "psh.h"

#define UDP_SRV 5300	  /* a UDP server */
#define UDP_CLI 5301	  /* a UDP client's own, tagged, port */
#define UDP_UNMAPPED 5309 /* tagged, never bound */
#define TCP_SRV 8080	  /* a TCP server on 127.0.0.1 */
#define TCP_CLI 8081	  /* a client's fixed source port */
#define TCP_CLI2 8082
#define TCP_WILD 8083	/* a server on 0.0.0.0 */
#define DUAL_SPLIT 8084 /* 0.0.0.0 + [::] V6ONLY */
#define DUAL_STACK 8085 /* [::] dual-stack */
#define DUAL_UDP 8086
#define REUSE 8087
#define MPTCP_SRV 8088	  /* a Multipath TCP server */
#define TCP_UNMAPPED 8089 /* tagged, never bound */

#define REUSE_THREADS 4

/* Binds a new socket to text:port through the shim (read-only address);
 * returns the descriptor, or -1 with errno. */
static int bound(int family, int type, const char *text, uint16_t port,
		 bool reuseaddr)
{
	union psh_addr a;
	socklen_t len = psh_addr(&a, text, port);
	int one = 1;
	int fd = psh_socket(family, type);

	if (reuseaddr)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, psh_ro(&a), len) != 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int connect_to(int fd, const char *text, uint16_t port)
{
	union psh_addr a;
	socklen_t len = psh_addr(&a, text, port);

	return connect(fd, psh_ro(&a), len);
}

/* ------------------------------------------------------------- udp */

/* Receives one datagram with recvfrom; returns the sender's reported
 * port (0 on failure) and checks the payload. */
static uint16_t udp_recv(int fd, const char *want)
{
	union psh_addr from;
	socklen_t flen = sizeof(from);
	char buf[64];
	ssize_t n;

	memset(buf, 0, sizeof(buf));
	n = recvfrom(fd, buf, sizeof(buf) - 1, 0, &from.sa, &flen);
	if (n < 0 || strcmp(buf, want) != 0) {
		psh_diag("recvfrom: n=%zd '%s' (%s), wanted '%s'", n, buf,
			 n < 0 ? strerror(errno) : "ok", want);
		return 0;
	}
	return psh_port(&from);
}

static void udp_short_buffers(int srv, int cli)
{
	union psh_addr to;
	socklen_t tlen = psh_addr(&to, "127.0.0.1", UDP_SRV);
	static const socklen_t sizes[] = { 2, 3, 8 };
	unsigned char b[64];
	char data[8];
	bool guard;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		socklen_t len = sizes[i];

		sendto(cli, "s", 1, 0, psh_ro(&to), tlen);
		memset(b, 0xAA, sizeof(b));
		if (recvfrom(srv, data, sizeof(data), 0, (struct sockaddr *)b,
			     &len) != 1) {
			psh_check(false,
				  "recvfrom with a %u-byte address "
				  "buffer receives",
				  (unsigned)sizes[i]);
			continue;
		}
		guard = true;
		for (size_t k = sizes[i]; k < sizeof(b); k++)
			guard = guard && b[k] == 0xAA;
		psh_check(guard && len == sizeof(struct sockaddr_in),
			  "recvfrom with a %u-byte address buffer: nothing "
			  "written past it, full length %u reported",
			  (unsigned)sizes[i], (unsigned)len);
	}
}

static void test_udp(void)
{
	union psh_addr to, other, from, names[3];
	socklen_t tlen, olen, flen;
	struct mmsghdr vec[3], rvec[2];
	struct iovec iov[3], riov[2];
	char rbuf[2][16];
	char buf[64], ctl[256];
	struct msghdr *ro_msg;
	struct msghdr m;
	struct cmsghdr *c;
	uint16_t real, creal, port;
	int srv, cli, plain, tcp, one = 1, rc;
	ssize_t n;

	srv = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", UDP_SRV, false);
	if (!psh_check(srv >= 0, "udp bind 127.0.0.1:%d", UDP_SRV)) {
		psh_diag("bind: %s", strerror(errno));
		return;
	}
	real = psh_raw_port(srv);
	psh_check(psh_name_port(srv) == UDP_SRV, "getsockname shows %d",
		  UDP_SRV);
	psh_check(real != UDP_SRV && psh_in_range(real),
		  "the socket is really bound to %u, in the range", real);
	cli = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", UDP_CLI, false);
	psh_check(cli >= 0, "a client binds its own tagged port %d", UDP_CLI);
	creal = psh_raw_port(cli);
	psh_timeout(srv, 5);
	psh_timeout(cli, 5);

	/* sendto, unconnected, read-only destination, errno kept. */
	tlen = psh_addr(&to, "127.0.0.1", UDP_SRV);
	errno = EDOM;
	n = sendto(cli, "one", 3, 0, psh_ro(&to), tlen);
	psh_check(n == 3 && errno == EDOM,
		  "sendto 127.0.0.1:%d succeeds, errno untouched", UDP_SRV);
	errno = EDOM;
	port = udp_recv(srv, "one");
	psh_check(port == UDP_CLI && errno == EDOM,
		  "the server receives it; recvfrom shows the sender at %d "
		  "(really %u), errno untouched",
		  UDP_CLI, creal);

	/* The server answers the address it was shown. */
	flen = psh_addr(&from, "127.0.0.1", UDP_CLI);
	n = sendto(srv, "two", 3, 0, psh_ro(&from), flen);
	port = udp_recv(cli, "two");
	psh_check(n == 3 && port == UDP_SRV,
		  "the reply reaches the client; recvfrom shows it from %d",
		  UDP_SRV);

	/* sendmsg with a read-only msghdr and name; recvmsg. */
	ro_msg = psh_page();
	iov[0].iov_base = "three";
	iov[0].iov_len = 5;
	memset(ro_msg, 0, sizeof(*ro_msg));
	ro_msg->msg_name = (void *)psh_ro(&to);
	ro_msg->msg_namelen = tlen;
	ro_msg->msg_iov = iov;
	ro_msg->msg_iovlen = 1;
	psh_protect(ro_msg);
	n = sendmsg(cli, ro_msg, 0);
	psh_check(n == 5, "sendmsg with a read-only msghdr succeeds");
	setsockopt(srv, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));
	memset(&m, 0, sizeof(m));
	memset(buf, 0, sizeof(buf));
	iov[1].iov_base = buf;
	iov[1].iov_len = sizeof(buf) - 1;
	m.msg_name = &from;
	m.msg_namelen = sizeof(from);
	m.msg_iov = &iov[1];
	m.msg_iovlen = 1;
	m.msg_control = ctl;
	m.msg_controllen = sizeof(ctl);
	errno = EDOM;
	n = recvmsg(srv, &m, 0);
	psh_check(n == 5 && strcmp(buf, "three") == 0 &&
			  psh_port(&from) == UDP_CLI && errno == EDOM,
		  "recvmsg receives it and shows the sender at %d", UDP_CLI);
	port = 0;
	for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR)
			port = psh_port(CMSG_DATA(c));
	psh_check(port == UDP_SRV, "IP_ORIGDSTADDR shows the destination %d",
		  UDP_SRV);
	one = 0;
	setsockopt(srv, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof(one));

	/* sendmmsg: tagged, untagged, tagged; read-only names. */
	plain = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", 0, false);
	psh_timeout(plain, 5);
	olen = psh_addr(&other, "127.0.0.1", psh_raw_port(plain));
	memset(vec, 0, sizeof(vec));
	for (int i = 0; i < 3; i++) {
		static const char *const text[] = { "m1", "m2", "m3" };

		iov[i].iov_base = (void *)text[i];
		iov[i].iov_len = 2;
		vec[i].msg_hdr.msg_iov = &iov[i];
		vec[i].msg_hdr.msg_iovlen = 1;
		vec[i].msg_hdr.msg_name = (void *)psh_ro(i == 1 ? &other : &to);
		vec[i].msg_hdr.msg_namelen = i == 1 ? olen : tlen;
	}
	rc = sendmmsg(cli, vec, 3, 0);
	psh_check(rc == 3 && vec[0].msg_len == 2 && vec[1].msg_len == 2 &&
			  vec[2].msg_len == 2,
		  "sendmmsg to tagged, untagged, tagged sends 3, msg_len set");
	port = udp_recv(plain, "m2");
	psh_check(port == UDP_CLI, "the untagged port gets its message");

	/* recvmmsg gets both tagged ones, senders shown at UDP_CLI. */
	memset(rvec, 0, sizeof(rvec));
	memset(rbuf, 0, sizeof(rbuf));
	for (int i = 0; i < 2; i++) {
		riov[i].iov_base = rbuf[i];
		riov[i].iov_len = sizeof(rbuf[i]) - 1;
		rvec[i].msg_hdr.msg_iov = &riov[i];
		rvec[i].msg_hdr.msg_iovlen = 1;
		rvec[i].msg_hdr.msg_name = &names[i];
		rvec[i].msg_hdr.msg_namelen = sizeof(names[i]);
	}
	rc = recvmmsg(srv, rvec, 2, MSG_WAITFORONE, NULL);
	if (rc == 1) {
		/* The second may not be queued yet: take it alone. */
		rc += recvmmsg(srv, rvec + 1, 1, 0, NULL) == 1;
	}
	psh_check(rc == 2 && strcmp(rbuf[0], "m1") == 0 &&
			  strcmp(rbuf[1], "m3") == 0 &&
			  psh_port(&names[0]) == UDP_CLI &&
			  psh_port(&names[1]) == UDP_CLI,
		  "recvmmsg receives m1 and m3, senders shown at %d", UDP_CLI);

	udp_short_buffers(srv, cli);

	/* A tagged port nobody in the group bound: refused. */
	olen = psh_addr(&other, "127.0.0.1", UDP_UNMAPPED);
	errno = 0;
	n = sendto(cli, "x", 1, 0, psh_ro(&other), olen);
	psh_check(n == -1 && errno == ECONNREFUSED,
		  "sendto unmapped tagged %d fails with ECONNREFUSED",
		  UDP_UNMAPPED);

	/* A short length reaches the kernel, which refuses it. */
	errno = 0;
	n = sendto(cli, "x", 1, 0, psh_ro(&to), 8);
	psh_check(n == -1 && errno == EINVAL,
		  "sendto with an 8-byte AF_INET address gets the kernel's "
		  "EINVAL");

	/* connect, send, then AF_UNSPEC disconnects. */
	psh_check(connect_to(cli, "127.0.0.1", UDP_SRV) == 0 &&
			  psh_raw_peer(cli) == real &&
			  psh_peer_port(cli) == UDP_SRV,
		  "udp connect goes to %u; getpeername shows %d", real,
		  UDP_SRV);
	n = send(cli, "four", 4, 0);
	psh_check(n == 4 && udp_recv(srv, "four") == UDP_CLI,
		  "send on the connected socket reaches the server");
	{
		struct sockaddr un = { .sa_family = AF_UNSPEC };

		errno = 0;
		psh_check(connect(cli, &un, sizeof(un)) == 0,
			  "connect AF_UNSPEC disconnects");
		n = send(cli, "five", 4, 0);
		psh_check(n == -1 && errno == EDESTADDRREQ,
			  "send after the disconnect: EDESTADDRREQ");
	}

	/* One virtual port, one real port for TCP and UDP. */
	tcp = bound(AF_INET, SOCK_STREAM, "127.0.0.1", UDP_SRV, true);
	psh_check(tcp >= 0 && psh_raw_port(tcp) == real,
		  "tcp bind of %d gets udp's real port %u", UDP_SRV, real);
	if (tcp >= 0)
		close(tcp);
	close(plain);
	close(cli);
	close(srv);
}

/* ------------------------------------------------------------- tcp */

static int tcp_listener(const char *text, uint16_t port)
{
	int fd = bound(text[0] == ':' || strchr(text, ':') ? AF_INET6 : AF_INET,
		       SOCK_STREAM, text, port, true);

	if (fd >= 0 && listen(fd, 64) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Accepts one connection; returns it and the peer's reported port. */
static int accept_one(int lfd, bool four, uint16_t *peer)
{
	union psh_addr a;
	socklen_t len = sizeof(a);
	int fd;

	fd = four ? accept4(lfd, &a.sa, &len, SOCK_CLOEXEC) :
		    accept(lfd, &a.sa, &len);
	*peer = fd >= 0 ? psh_port(&a) : 0;
	return fd;
}

/* The first non-loopback IPv4 interface address, or false. */
static bool interface_v4(char *out, size_t len)
{
	struct ifaddrs *ifa, *p;
	bool found = false;

	if (getifaddrs(&ifa) != 0)
		return false;
	for (p = ifa; p != NULL && !found; p = p->ifa_next) {
		struct sockaddr_in in;

		if (p->ifa_addr == NULL || p->ifa_addr->sa_family != AF_INET ||
		    (p->ifa_flags & IFF_LOOPBACK) || !(p->ifa_flags & IFF_UP))
			continue;
		memcpy(&in, p->ifa_addr, sizeof(in));
		if ((ntohl(in.sin_addr.s_addr) >> 24) == 127)
			continue;
		found = inet_ntop(AF_INET, &in.sin_addr, out, (socklen_t)len) !=
			NULL;
	}
	freeifaddrs(ifa);
	return found;
}

static void test_tcp(void)
{
	int (*dunder)(int, const struct sockaddr *, socklen_t);
	union psh_addr to;
	socklen_t tlen;
	char ifaddr[INET_ADDRSTRLEN];
	char buf[16];
	uint16_t real, wreal, peer;
	int lfd, wfd, cli, a;
	struct pollfd pfd;
	int err = 0;
	socklen_t elen = sizeof(err);
	ssize_t n;

	lfd = tcp_listener("127.0.0.1", TCP_SRV);
	if (!psh_check(lfd >= 0, "tcp listen 127.0.0.1:%d", TCP_SRV))
		return;
	real = psh_raw_port(lfd);
	psh_check(psh_name_port(lfd) == TCP_SRV && real != TCP_SRV &&
			  psh_in_range(real),
		  "getsockname shows %d; really %u", TCP_SRV, real);

	/* A client with a fixed, tagged, source port. */
	cli = bound(AF_INET, SOCK_STREAM, "127.0.0.1", TCP_CLI, true);
	errno = EDOM;
	psh_check(cli >= 0 && connect_to(cli, "127.0.0.1", TCP_SRV) == 0 &&
			  errno == EDOM,
		  "connect from %d to %d succeeds, errno untouched", TCP_CLI,
		  TCP_SRV);
	a = accept_one(lfd, false, &peer);
	psh_check(a >= 0 && peer == TCP_CLI,
		  "accept shows the client at %d (really %u)", TCP_CLI,
		  psh_raw_port(cli));
	psh_check(psh_peer_port(cli) == TCP_SRV && psh_raw_peer(cli) == real,
		  "the client's getpeername shows %d", TCP_SRV);
	psh_check(psh_name_port(cli) == TCP_CLI,
		  "the client's getsockname shows %d", TCP_CLI);
	if (a >= 0)
		psh_check(psh_peer_port(a) == TCP_CLI,
			  "the server's getpeername shows %d", TCP_CLI);
	close(a);
	close(cli);

	cli = bound(AF_INET, SOCK_STREAM, "127.0.0.1", TCP_CLI2, true);
	connect_to(cli, "127.0.0.1", TCP_SRV);
	a = accept_one(lfd, true, &peer);
	psh_check(
		a >= 0 && peer == TCP_CLI2 && (fcntl(a, F_GETFD) & FD_CLOEXEC),
		"accept4 shows the client at %d and keeps its flags", TCP_CLI2);
	close(a);
	close(cli);

	/* Non-blocking connect: EINPROGRESS is the caller's to see. */
	cli = psh_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
	errno = 0;
	n = connect_to(cli, "127.0.0.1", TCP_SRV);
	psh_check(n == -1 && errno == EINPROGRESS,
		  "a non-blocking connect gives EINPROGRESS");
	pfd.fd = cli;
	pfd.events = POLLOUT;
	poll(&pfd, 1, 5000);
	getsockopt(cli, SOL_SOCKET, SO_ERROR, &err, &elen);
	psh_check(err == 0 && psh_raw_peer(cli) == real,
		  "... and completes to the real port %u", real);
	a = accept(lfd, NULL, NULL);
	close(a);
	close(cli);

	/* glibc's exported __connect. */
	dunder = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(
		RTLD_DEFAULT, "__connect");
	cli = psh_socket(AF_INET, SOCK_STREAM);
	tlen = psh_addr(&to, "127.0.0.1", TCP_SRV);
	psh_check(dunder != NULL && dunder(cli, psh_ro(&to), tlen) == 0 &&
			  psh_raw_peer(cli) == real,
		  "__connect is rewritten too");
	close(accept(lfd, NULL, NULL));
	close(cli);

	/* sendto(MSG_FASTOPEN): an implicit connect. */
	cli = psh_socket(AF_INET, SOCK_STREAM);
	errno = 0;
	n = sendto(cli, "fast", 4, MSG_FASTOPEN, psh_ro(&to), tlen);
	if (n < 0 && errno == EOPNOTSUPP) {
		psh_skip("TCP Fast Open is disabled here",
			 "sendto(MSG_FASTOPEN) is rewritten");
	} else {
		a = accept(lfd, NULL, NULL);
		psh_timeout(a, 5);
		memset(buf, 0, sizeof(buf));
		psh_check(n == 4 && psh_raw_peer(cli) == real && a >= 0 &&
				  read(a, buf, sizeof(buf) - 1) == 4 &&
				  strcmp(buf, "fast") == 0,
			  "sendto(MSG_FASTOPEN) goes to the real port with "
			  "its data");
		close(a);
	}
	/* Without MSG_FASTOPEN, a connected TCP socket's sendto ignores
	 * the address: even an unmapped tagged one is no error. */
	tlen = psh_addr(&to, "127.0.0.1", TCP_UNMAPPED);
	n = sendto(cli, "more", 4, 0, psh_ro(&to), tlen);
	psh_check(n == 4, "sendto on a connected TCP socket ignores the "
			  "address, as the kernel does");
	close(cli);

	cli = psh_socket(AF_INET, SOCK_STREAM);
	errno = 0;
	psh_check(connect_to(cli, "127.0.0.1", TCP_UNMAPPED) == -1 &&
			  errno == ECONNREFUSED,
		  "connect to unmapped tagged %d: ECONNREFUSED", TCP_UNMAPPED);
	close(cli);

	cli = psh_socket(AF_INET, SOCK_STREAM);
	tlen = psh_addr(&to, "127.0.0.1", TCP_SRV);
	errno = 0;
	psh_check(connect(cli, psh_ro(&to), 4) == -1 && errno == EINVAL,
		  "connect with a 4-byte AF_INET address: the kernel's "
		  "EINVAL");
	close(cli);

	/* A server on 0.0.0.0: reached through 0.0.0.0 and through an
	 * interface address of this host. */
	wfd = tcp_listener("0.0.0.0", TCP_WILD);
	wreal = psh_raw_port(wfd);
	cli = psh_socket(AF_INET, SOCK_STREAM);
	psh_check(wfd >= 0 && connect_to(cli, "0.0.0.0", TCP_WILD) == 0 &&
			  psh_raw_peer(cli) == wreal,
		  "connect to 0.0.0.0:%d reaches the real port %u", TCP_WILD,
		  wreal);
	close(accept(wfd, NULL, NULL));
	close(cli);
	/*
	 * An interface address of this host is local too. The check sends
	 * nothing: the port is tagged but unmapped, so the shim refuses the
	 * connect itself (a destination it did not take for local would
	 * have reached the kernel, and this helper targets no address
	 * outside loopback).
	 */
	if (interface_v4(ifaddr, sizeof(ifaddr))) {
		cli = psh_socket(AF_INET, SOCK_STREAM);
		errno = 0;
		psh_check(connect_to(cli, ifaddr, TCP_UNMAPPED) == -1 &&
				  errno == ECONNREFUSED,
			  "interface address %s is local: unmapped tagged %d "
			  "is refused by the shim",
			  ifaddr, TCP_UNMAPPED);
		close(cli);
	} else {
		psh_skip("no IPv4 address besides loopback",
			 "an interface address is local");
	}
	close(wfd);
	close(lfd);
}

/* ------------------------------------------------------------ dual */

static bool have_ipv6(void)
{
	int fd = bound(AF_INET6, SOCK_STREAM, "::1", 0, false);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static int v6_socket(int type, int v6only)
{
	int fd = psh_socket(AF_INET6, type);

	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
	return fd;
}

static int v6_bind(int fd, uint16_t port)
{
	union psh_addr a;
	socklen_t len = psh_addr(&a, "::", port);
	int one = 1;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	return bind(fd, psh_ro(&a), len);
}

/* Connects a new socket of family to text:port; true if it reached the
 * real port want. */
static bool reaches(int family, const char *text, uint16_t port, uint16_t want,
		    int lfd)
{
	int fd = psh_socket(family, SOCK_STREAM);
	bool ok = connect_to(fd, text, port) == 0 && psh_raw_peer(fd) == want;

	if (ok)
		close(accept(lfd, NULL, NULL));
	close(fd);
	return ok;
}

static void test_dual(void)
{
	uint16_t r4, r6, rd, ru6, ru4;
	int s4, s6, sd, u6, u4;

	if (!have_ipv6()) {
		psh_skip("IPv6 is not available", "IPv4 and IPv6 binds agree");
		return;
	}
	s4 = tcp_listener("0.0.0.0", DUAL_SPLIT);
	r4 = s4 >= 0 ? psh_raw_port(s4) : 0;
	s6 = v6_socket(SOCK_STREAM, 1);
	psh_check(s4 >= 0 && v6_bind(s6, DUAL_SPLIT) == 0 &&
			  listen(s6, 16) == 0 && (r6 = psh_raw_port(s6)) == r4,
		  "tcp 0.0.0.0:%d and [::]:%d (V6ONLY) share real port %u",
		  DUAL_SPLIT, DUAL_SPLIT, r4);
	psh_check(reaches(AF_INET, "127.0.0.1", DUAL_SPLIT, r4, s4) &&
			  reaches(AF_INET6, "::1", DUAL_SPLIT, r4, s6),
		  "127.0.0.1:%d and [::1]:%d both reach it", DUAL_SPLIT,
		  DUAL_SPLIT);
	close(s4);
	close(s6);

	sd = v6_socket(SOCK_STREAM, 0);
	psh_check(v6_bind(sd, DUAL_STACK) == 0 && listen(sd, 16) == 0,
		  "tcp [::]:%d dual-stack", DUAL_STACK);
	rd = psh_raw_port(sd);
	psh_check(psh_name_port(sd) == DUAL_STACK && psh_in_range(rd),
		  "getsockname shows %d (really %u)", DUAL_STACK, rd);
	psh_check(reaches(AF_INET, "127.0.0.1", DUAL_STACK, rd, sd),
		  "an IPv4 client reaches [::]:%d", DUAL_STACK);
	psh_check(reaches(AF_INET6, "::1", DUAL_STACK, rd, sd),
		  "an IPv6 client reaches [::]:%d", DUAL_STACK);
	psh_check(reaches(AF_INET6, "::ffff:127.0.0.1", DUAL_STACK, rd, sd),
		  "a v4-mapped ::ffff:127.0.0.1 client reaches [::]:%d",
		  DUAL_STACK);
	psh_check(reaches(AF_INET6, "::", DUAL_STACK, rd, sd),
		  "a client of [::]:%d (unspecified) reaches it", DUAL_STACK);
	close(sd);

	u6 = v6_socket(SOCK_DGRAM, 1);
	psh_check(v6_bind(u6, DUAL_UDP) == 0, "udp [::]:%d (V6ONLY)", DUAL_UDP);
	ru6 = psh_raw_port(u6);
	u4 = bound(AF_INET, SOCK_DGRAM, "0.0.0.0", DUAL_UDP, true);
	ru4 = u4 >= 0 ? psh_raw_port(u4) : 0;
	psh_check(ru4 == ru6 && psh_in_range(ru4),
		  "udp 0.0.0.0:%d gets the same real port %u", DUAL_UDP, ru6);
	close(u4);
	close(u6);
}

/* ------------------------------------------------------- reuseport */

struct reuse_arg {
	pthread_barrier_t *start;
	uint16_t real;
	int err;
};

static void *reuse_thread(void *p)
{
	struct reuse_arg *arg = p;
	union psh_addr a;
	socklen_t len = psh_addr(&a, "127.0.0.1", REUSE);
	int one = 1;
	int fd = psh_socket(AF_INET, SOCK_STREAM);

	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	pthread_barrier_wait(arg->start);
	if (bind(fd, psh_ro(&a), len) != 0 || listen(fd, 16) != 0)
		arg->err = errno;
	else
		arg->real = psh_raw_port(fd);
	/* Kept open until the process exits: the others must still see
	 * a live socket on the port. */
	return NULL;
}

static void test_reuseport(void)
{
	pthread_t th[REUSE_THREADS];
	struct reuse_arg arg[REUSE_THREADS];
	pthread_barrier_t start;
	bool same = true;
	int fd;

	pthread_barrier_init(&start, NULL, REUSE_THREADS);
	for (int i = 0; i < REUSE_THREADS; i++) {
		arg[i] = (struct reuse_arg){ &start, 0, 0 };
		pthread_create(&th[i], NULL, reuse_thread, &arg[i]);
	}
	for (int i = 0; i < REUSE_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (arg[i].err != 0)
			psh_diag("thread %d: %s", i, strerror(arg[i].err));
		same = same && arg[i].err == 0 && arg[i].real == arg[0].real;
	}
	psh_check(same && psh_in_range(arg[0].real),
		  "%d threads binding %d with SO_REUSEPORT at once share "
		  "real port %u",
		  REUSE_THREADS, REUSE, arg[0].real);
	fd = bound(AF_INET, SOCK_STREAM, "127.0.0.1", REUSE, true);
	psh_check(fd < 0 && errno == EADDRINUSE,
		  "a bind of %d without SO_REUSEPORT: EADDRINUSE, as without "
		  "portshim",
		  REUSE);
	pthread_barrier_destroy(&start);
}

/* -------------------------------------------------------------- mptcp */

/*
 * Multipath TCP sockets (IPPROTO_MPTCP: Go 1.24's listeners by default)
 * take their port numbers from TCP's: a server's bind is moved, and a
 * client's connect reaches it, as for TCP.
 */
static void test_mptcp(void)
{
	union psh_addr a;
	socklen_t len = psh_addr(&a, "127.0.0.1", MPTCP_SRV);
	uint16_t real, peer;
	int lfd, cli, c;

	lfd = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	if (lfd < 0) {
		psh_skip(strerror(errno), "an MPTCP server on %d", MPTCP_SRV);
		return;
	}
	if (!psh_check(bind(lfd, psh_ro(&a), len) == 0 && listen(lfd, 16) == 0,
		       "an MPTCP server binds and listens on %d", MPTCP_SRV))
		return;
	real = psh_raw_port(lfd);
	psh_check(psh_name_port(lfd) == MPTCP_SRV && real != MPTCP_SRV &&
			  psh_in_range(real),
		  "MPTCP: getsockname shows %d; really %u", MPTCP_SRV, real);
	cli = socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP);
	psh_check(cli >= 0 && connect_to(cli, "127.0.0.1", MPTCP_SRV) == 0 &&
			  psh_raw_peer(cli) == real,
		  "an MPTCP client's connect to %d reaches real port %u",
		  MPTCP_SRV, real);
	c = accept_one(lfd, false, &peer);
	psh_check(c >= 0 && psh_peer_port(cli) == MPTCP_SRV,
		  "the server accepts it; the client's getpeername shows %d",
		  MPTCP_SRV);
	if (c >= 0)
		close(c);
	if (cli >= 0)
		close(cli);
	close(lfd);
}

int main(int argc, char **argv)
{
	psh_kernel_init();
	if (argc != 2) {
		fprintf(stderr, "usage: psapi udp|tcp|dual|reuseport|mptcp\n");
		return 2;
	}
	if (strcmp(argv[1], "udp") == 0)
		test_udp();
	else if (strcmp(argv[1], "tcp") == 0)
		test_tcp();
	else if (strcmp(argv[1], "dual") == 0)
		test_dual();
	else if (strcmp(argv[1], "reuseport") == 0)
		test_reuseport();
	else if (strcmp(argv[1], "mptcp") == 0)
		test_mptcp();
	else {
		fprintf(stderr, "psapi: unknown test '%s'\n", argv[1]);
		return 2;
	}
	return psh_done();
}
