/* SPDX-License-Identifier: MIT */
/*
 * psaddr.h - socket addresses for the tests' programs: one from a numeric
 * text and a port, and the port of one. Shared by the helpers (psh.h,
 * pstcp, psraw) and the unit tests that make addresses.
 */
#ifndef PSADDR_H
#define PSADDR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

union psh_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

/* An address from a numeric IPv4/IPv6 text and a port; returns its
 * length (0 for bad text). */
__attribute__((unused))
static socklen_t psh_addr(union psh_addr *a, const char *text, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, text, &a->in.sin_addr) == 1) {
		a->in.sin_family = AF_INET;
		a->in.sin_port = htons(port);
		return sizeof(a->in);
	}
	if (inet_pton(AF_INET6, text, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(port);
		return sizeof(a->in6);
	}
	return 0;
}

/* The port of an AF_INET/AF_INET6 address, 0 for anything else. */
__attribute__((unused))
static uint16_t psh_port(const void *p)
{
	union psh_addr a;

	memcpy(&a, p, sizeof(a.in));
	if (a.sa.sa_family == AF_INET)
		return ntohs(a.in.sin_port);
	if (a.sa.sa_family == AF_INET6) {
		memcpy(&a, p, sizeof(a.in6));
		return ntohs(a.in6.sin6_port);
	}
	return 0;
}

#endif
