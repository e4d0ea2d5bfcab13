/*
 * sockaddr.c - port access and locality of AF_INET/AF_INET6 addresses.
 */

#include <arpa/inet.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>

#include "sockaddr.h"

bool ps_sockaddr_port(const struct sockaddr *sa, socklen_t len,
		      uint16_t *port)
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

void ps_sockaddr_format(const struct sockaddr *sa, uint16_t port, char *buf,
			size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		struct sockaddr_in in;

		memcpy(&in, sa, sizeof(in));
		inet_ntop(AF_INET, &in.sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, (unsigned)port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 in6;

		memcpy(&in6, sa, sizeof(in6));
		inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, (unsigned)port);
	} else {
		snprintf(buf, len, "?:%u", (unsigned)port);
	}
}
