/* SPDX-License-Identifier: MIT */
/*
 * sockaddr.c - port access and locality of AF_INET/AF_INET6 addresses.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sockaddr.h"

bool ps_sockaddr_port(const struct sockaddr *sa, socklen_t len, uint16_t *port)
{
	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return false;
	/*
	 * The family is read with memcpy: the caller's buffer may be a
	 * plain byte array with no particular alignment.
	 */
	sa_family_t family;
	memcpy(&family, &sa->sa_family, sizeof(family));
	if (family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		in_port_t p;
		memcpy(&p, &((const struct sockaddr_in *)sa)->sin_port,
		       sizeof(p));
		*port = ntohs(p);
		return true;
	}
	if (family == AF_INET6 &&
	    len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		in_port_t p;
		memcpy(&p, &((const struct sockaddr_in6 *)sa)->sin6_port,
		       sizeof(p));
		*port = ntohs(p);
		return true;
	}
	return false;
}

void ps_sockaddr_copy_port(union ps_sockaddr *out, const struct sockaddr *sa,
			   socklen_t len, uint16_t port)
{
	size_t n = (size_t)len;

	if (n > sizeof(*out))
		n = sizeof(*out);
	memset(out, 0, sizeof(*out));
	memcpy(out, sa, n);
	if (out->sa.sa_family == AF_INET)
		out->in.sin_port = htons(port);
	else
		out->in6.sin6_port = htons(port);
}

static bool v4_is_local(uint32_t host_order)
{
	/* 127.0.0.0/8 (loopback) or 0.0.0.0 (reaches this host). */
	return (host_order >> 24) == 127 || host_order == 0;
}

bool ps_sockaddr_is_local(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		return v4_is_local(ntohl(in.sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		if (IN6_IS_ADDR_LOOPBACK(&in6.sin6_addr) ||
		    IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr))
			return true;
		/* Java and others use v4-mapped addresses on v6 sockets. */
		if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
			uint32_t v4;

			memcpy(&v4, &in6.sin6_addr.s6_addr[12], sizeof(v4));
			return v4_is_local(ntohl(v4));
		}
	}
	return false;
}

void ps_sockaddr_patch_port(struct sockaddr *sa, socklen_t bufsize,
			    uint16_t port)
{
	in_port_t p = htons(port);
	size_t need;
	size_t off;

	if (sa == NULL || bufsize < (socklen_t)sizeof(sa_family_t))
		return;
	if (sa->sa_family == AF_INET)
		off = offsetof(struct sockaddr_in, sin_port);
	else if (sa->sa_family == AF_INET6)
		off = offsetof(struct sockaddr_in6, sin6_port);
	else
		return;
	need = off + sizeof(p);
	if ((size_t)bufsize < need)
		return;
	memcpy((char *)sa + off, &p, sizeof(p));
}

/* Appends the decimal form of v to buf[*off], within len - 1 bytes. */
static void put_dec(char *buf, size_t len, size_t *off, unsigned v)
{
	char tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0 && *off + 1 < len)
		buf[(*off)++] = tmp[--n];
}

/* Appends s to buf[*off], within len - 1 bytes. */
static void put_str(char *buf, size_t len, size_t *off, const char *s)
{
	while (*s && *off + 1 < len)
		buf[(*off)++] = *s++;
}

/*
 * Built by hand rather than with snprintf and inet_ntop: every tagged
 * bind formats its description (a failure is logged at the default
 * level), and the stdio route cost more than all the rest of the shim's
 * own work on that path. IPv6 keeps inet_ntop (its zero compression is
 * not worth redoing); the result is the same text either way.
 */
void ps_sockaddr_format(const struct sockaddr *sa, uint16_t port, char *buf,
			size_t len)
{
	size_t off = 0;

	if (len == 0)
		return;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;
		const uint8_t *b;

		memcpy(&in, sa, sizeof(in));
		b = (const uint8_t *)&in.sin_addr;
		for (int i = 0; i < 4; i++) {
			if (i > 0)
				put_str(buf, len, &off, ".");
			put_dec(buf, len, &off, b[i]);
		}
	} else if (sa->sa_family == AF_INET6) {
		char host[INET6_ADDRSTRLEN] = "?";
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof(host));
		put_str(buf, len, &off, "[");
		put_str(buf, len, &off, host);
		put_str(buf, len, &off, "]");
	} else {
		put_str(buf, len, &off, "?");
	}
	put_str(buf, len, &off, ":");
	put_dec(buf, len, &off, port);
	buf[off] = '\0';
}

/* ---------------------------------------------- this host's addresses */

/*
 * Why not getifaddrs(): it allocates its result with malloc, which may
 * deadlock in a signal handler (the interrupted code may hold malloc's
 * lock) and in the child of a multi-threaded parent. We need the answer
 * on exactly those paths (a handler or a child calling connect), so the
 * addresses are read from the kernel with raw system calls into static
 * memory, and published to readers without a lock:
 *
 * - two tables; readers use host_tables[host_current], a refresh writes
 *   the other one and then flips host_current;
 * - each table has a sequence word, odd while it is written, so a reader
 *   that was slow enough to see its table rewritten notices and retries
 *   (a bounded number of times, then answers "not this host");
 * - one refresher per process at a time, elected by storing its pid in
 *   host_reader. A second thread, or a signal handler interrupting the
 *   refresh, finds its own pid there and keeps using the current table
 *   instead of waiting. A pid that is not ours was left by the parent
 *   (another of its threads was refreshing when it forked): the child
 *   takes the job over.
 *
 * Only socket, send, recv and close are used: calls the shim does not
 * interpose (a netlink socket's unaddressed send goes to the kernel), so
 * they never come back into it. Not syscall(): the shim interposes that.
 */
struct host_addr {
	uint8_t family;	   /* AF_INET or AF_INET6 */
	uint8_t bytes[16]; /* 4 or 16 bytes of address */
};

struct host_table {
	uint32_t seq; /* odd while the table is being written */
	uint32_t n;
	struct host_addr addr[PS_SOCKADDR_HOST_MAX];
};

#define HOST_REFRESH_NS 1000000000LL /* at most one refresh a second */
#define HOST_READ_TRIES 4
#define HOST_MAX_REPLIES 4096 /* bound on netlink datagrams */

static struct host_table host_tables[2];
static uint32_t host_current;
static int64_t host_loaded_ns; /* CLOCK_MONOTONIC; 0 = never */
static int32_t host_reader;    /* pid of the refresher, 0 = none */
/* Netlink replies; only the elected refresher touches it. */
static char host_buf[8192] __attribute__((aligned(8)));

static int64_t monotonic_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The table's key for an address: v4-mapped IPv6 counts as IPv4. */
static bool host_key(const struct sockaddr *sa, struct host_addr *key)
{
	memset(key, 0, sizeof(*key));
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		key->family = AF_INET;
		memcpy(key->bytes, &in.sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		if (IN6_IS_ADDR_V4MAPPED(&in6.sin6_addr)) {
			key->family = AF_INET;
			memcpy(key->bytes, &in6.sin6_addr.s6_addr[12], 4);
		} else {
			key->family = AF_INET6;
			memcpy(key->bytes, &in6.sin6_addr, 16);
		}
		return true;
	}
	return false;
}

static bool host_lookup(const struct host_addr *key)
{
	for (int tries = 0; tries < HOST_READ_TRIES; tries++) {
		uint32_t i = __atomic_load_n(&host_current, __ATOMIC_ACQUIRE);
		const struct host_table *t = &host_tables[i & 1];
		uint32_t seq = __atomic_load_n(&t->seq, __ATOMIC_ACQUIRE);
		uint32_t n = __atomic_load_n(&t->n, __ATOMIC_RELAXED);
		bool found = false;

		if (seq & 1)
			continue;
		if (n > PS_SOCKADDR_HOST_MAX)
			n = PS_SOCKADDR_HOST_MAX;
		for (uint32_t k = 0; k < n && !found; k++)
			found = t->addr[k].family == key->family &&
				memcmp(t->addr[k].bytes, key->bytes,
				       sizeof(key->bytes)) == 0;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&t->seq, __ATOMIC_RELAXED) == seq)
			return found;
	}
	return false;
}

/* Adds the address of one RTM_NEWADDR message to t. */
static void host_add(struct host_table *t, const struct nlmsghdr *nh)
{
	const struct ifaddrmsg *ifa = NLMSG_DATA(nh);
	const struct rtattr *rta;
	const void *local = NULL, *address = NULL;
	size_t need;
	int len;

	if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifa)))
		return;
	if (ifa->ifa_family == AF_INET)
		need = 4;
	else if (ifa->ifa_family == AF_INET6)
		need = 16;
	else
		return;
	len = (int)IFA_PAYLOAD(nh);
	for (rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (RTA_PAYLOAD(rta) < need)
			continue;
		if (rta->rta_type == IFA_LOCAL)
			local = RTA_DATA(rta);
		else if (rta->rta_type == IFA_ADDRESS)
			address = RTA_DATA(rta);
	}
	/*
	 * On a point-to-point link IFA_ADDRESS is the PEER's address and
	 * IFA_LOCAL ours; elsewhere only IFA_ADDRESS may be present (IPv6).
	 * getifaddrs makes the same choice.
	 */
	if (local == NULL)
		local = address;
	if (local == NULL || t->n >= PS_SOCKADDR_HOST_MAX)
		return;
	memset(&t->addr[t->n], 0, sizeof(t->addr[t->n]));
	t->addr[t->n].family = ifa->ifa_family;
	memcpy(t->addr[t->n].bytes, local, need);
	t->n++;
}

/*
 * Reads every interface address into t. The socket is non-blocking: the
 * kernel queues the first part of a dump during send and each next part
 * during the recv that takes the previous one, so a reply is always
 * waiting and EAGAIN means something went wrong. An unconnected netlink
 * socket sends to the kernel.
 * Returns 0 or -errno.
 */
static int host_read(struct host_table *t)
{
	struct {
		struct nlmsghdr nh;
		struct ifaddrmsg ifa;
	} req;
	int fd, rc = -EIO;

	t->n = 0;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = RTM_GETADDR;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = 1;
	req.ifa.ifa_family = AF_UNSPEC;
	if (send(fd, &req, sizeof(req), 0) < 0) {
		rc = -errno;
		goto out;
	}
	for (int replies = 0; replies < HOST_MAX_REPLIES; replies++) {
		const struct nlmsghdr *nh;
		ssize_t got;
		size_t left, step;

		got = recv(fd, host_buf, sizeof(host_buf), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if (got == 0)
			goto out;
		/* NLMSG_OK and NLMSG_NEXT, without their signed lengths. */
		left = (size_t)got;
		nh = (const struct nlmsghdr *)host_buf;
		while (left >= sizeof(*nh) && nh->nlmsg_len >= sizeof(*nh) &&
		       nh->nlmsg_len <= left) {
			if (nh->nlmsg_type == NLMSG_DONE) {
				rc = 0;
				goto out;
			}
			if (nh->nlmsg_type == NLMSG_ERROR)
				goto out;
			if (nh->nlmsg_type == RTM_NEWADDR)
				host_add(t, nh);
			step = NLMSG_ALIGN(nh->nlmsg_len);
			if (step >= left)
				break;
			left -= step;
			nh = (const struct nlmsghdr *)((const char *)nh + step);
		}
	}
out:
	close(fd);
	return rc;
}

int ps_sockaddr_host_refresh(void)
{
	int saved = errno;
	int32_t self = (int32_t)getpid();
	int32_t cur = __atomic_load_n(&host_reader, __ATOMIC_ACQUIRE);
	struct host_table *t;
	uint32_t next;
	int rc;

	if (cur == self ||
	    !__atomic_compare_exchange_n(&host_reader, &cur, self, false,
					 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
		rc = -EBUSY;
		goto out;
	}
	next = (__atomic_load_n(&host_current, __ATOMIC_RELAXED) + 1) & 1;
	t = &host_tables[next];
	__atomic_store_n(&t->seq, t->seq | 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	rc = host_read(t);
	__atomic_store_n(&t->seq, (t->seq | 1) + 1, __ATOMIC_RELEASE);
	if (rc == 0) {
		rc = (int)t->n;
		__atomic_store_n(&host_current, next, __ATOMIC_RELEASE);
	}
	/* A failed read is not retried before the interval either. */
	__atomic_store_n(&host_loaded_ns, monotonic_ns() | 1, __ATOMIC_RELAXED);
	__atomic_store_n(&host_reader, 0, __ATOMIC_RELEASE);
out:
	errno = saved;
	return rc;
}

bool ps_sockaddr_is_host(const struct sockaddr *sa)
{
	struct host_addr key;
	int64_t last;

	if (ps_sockaddr_is_local(sa))
		return true;
	if (!host_key(sa, &key))
		return false;
	if (host_lookup(&key))
		return true;
	last = __atomic_load_n(&host_loaded_ns, __ATOMIC_RELAXED);
	if (last != 0 && monotonic_ns() - last < HOST_REFRESH_NS)
		return false;
	if (ps_sockaddr_host_refresh() < 0)
		return false;
	return host_lookup(&key);
}
