/* SPDX-License-Identifier: MIT */
/*
 * sockaddr.h - reading and rewriting the port of AF_INET/AF_INET6 socket
 * addresses, and deciding whether a destination is this host.
 */
#ifndef PS_SOCKADDR_H
#define PS_SOCKADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* A private, writable copy of a caller's address (we never write theirs). */
union ps_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

/*
 * If sa is AF_INET or AF_INET6 and len covers the whole structure, stores
 * its port (host order) and returns true. Short lengths, NULL, AF_UNSPEC,
 * AF_UNIX and every other family return false: the call passes through.
 */
bool ps_sockaddr_port(const struct sockaddr *sa, socklen_t len, uint16_t *port);

/*
 * Copies an AF_INET/AF_INET6 address of length len (checked by
 * ps_sockaddr_port) into out, then sets its port (host order).
 */
void ps_sockaddr_copy_port(union ps_sockaddr *out, const struct sockaddr *sa,
			   socklen_t len, uint16_t port);

/*
 * True if the destination reaches this host: 127.0.0.0/8, ::1,
 * ::ffff:127.0.0.0/104, 0.0.0.0, ::, ::ffff:0.0.0.0.
 */
bool ps_sockaddr_is_local(const struct sockaddr *sa);

/*
 * True if the destination reaches this host: ps_sockaddr_is_local, or
 * one of this host's interface addresses (IPv4, IPv6, or IPv4 written as
 * ::ffff:a.b.c.d). sa must hold a whole sockaddr_in or sockaddr_in6.
 *
 * The interface addresses are kept in a fixed table read from the
 * kernel over netlink (socket, send, recv) into a static buffer: no
 * allocation (getifaddrs would malloc), no blocking lock. So this is safe
 * in a signal handler and in a child after fork(). The table is read at
 * the first use and again, at most once a second, when an address is not
 * found in it (an address added later is seen; one removed stays known
 * until the next refresh, which is harmless: nothing answers there). If
 * another thread, or the code this signal handler interrupted, is
 * reading the table at the moment, the previous table is used.
 * At most PS_SOCKADDR_HOST_MAX addresses are kept.
 */
bool ps_sockaddr_is_host(const struct sockaddr *sa);

#define PS_SOCKADDR_HOST_MAX 256

/*
 * Reads the interface addresses now (unless another reader is at it).
 * Returns the number of addresses kept, or -errno (the previous table is
 * kept). Same safety as ps_sockaddr_is_host.
 */
int ps_sockaddr_host_refresh(void);

/*
 * Patches the port of a reported address in a caller's buffer, only if
 * the buffer (bufsize bytes, as the caller gave it) holds the port field:
 * the kernel reports the full length even when it truncated.
 */
void ps_sockaddr_patch_port(struct sockaddr *sa, socklen_t bufsize,
			    uint16_t port);

/*
 * Formats "ADDR:PORT" ("[ADDR]:PORT" for IPv6) into buf; no allocation.
 */
void ps_sockaddr_format(const struct sockaddr *sa, uint16_t port, char *buf,
			size_t len);

#endif
