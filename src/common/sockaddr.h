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
bool ps_sockaddr_port(const struct sockaddr *sa, socklen_t len,
		      uint16_t *port);

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
