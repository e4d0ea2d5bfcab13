/* SPDX-License-Identifier: MIT */
/*
 * portspec.h - the PORTSHIM_PORTS language.
 *
 *   spec  := "all" | item ("," item)*
 *   item  := [("tcp" | "udp") ":"] port ["-" port]
 *   port  := 1..65535 (decimal, no sign, no leading "+")
 *
 * An item without a protocol tags both TCP and UDP. White space around
 * items is allowed. "all" tags every non-zero port for both protocols.
 */
#ifndef PS_PORTSPEC_H
#define PS_PORTSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ps_proto {
	PS_TCP = 0,
	PS_UDP = 1,
};
#define PS_NPROTO 2

/* "tcp" or "udp": how the mapping file, logs and reports name it. */
static inline const char *ps_proto_name(enum ps_proto proto)
{
	return proto == PS_UDP ? "udp" : "tcp";
}

/* The protocol that name ("tcp" or "udp") names, or -1. */
int ps_proto_parse(const char *name);

/*
 * The protocol of a socket from its SO_PROTOCOL: PS_TCP for TCP and for
 * Multipath TCP (IPPROTO_MPTCP, 262: Go 1.24's listeners by default,
 * Python's socket.IPPROTO_MPTCP), whose sockets take their port numbers
 * from TCP's; PS_UDP for UDP; -1 for anything else (SCTP and UDP-Lite
 * have port numbers of their own, which portshim leaves alone).
 */
static inline int ps_proto_of(int ipproto)
{
	switch (ipproto) {
	case 6:	  /* IPPROTO_TCP */
	case 262: /* IPPROTO_MPTCP */
		return PS_TCP;
	case 17: /* IPPROTO_UDP */
		return PS_UDP;
	default:
		return -1;
	}
}

struct ps_portspec {
	bool all; /* "all": every non-zero port, both protocols */
	bool any; /* at least one port is tagged */
	uint8_t bits[PS_NPROTO][65536 / 8];
	uint8_t either[65536 / 8]; /* tagged for TCP or UDP */
};

/*
 * Parses text into spec (which is fully overwritten; NULL: only checks
 * text). Returns 0, or -EINVAL with a one-line explanation in err (no
 * trailing newline) that quotes the offending item, e.g. "'70000' is not
 * a port (1-65535)".
 */
int ps_portspec_parse(struct ps_portspec *spec, const char *text, char *err,
		      size_t errlen);

/* True if port is tagged for proto. Port 0 is never tagged. */
static inline bool ps_portspec_has(const struct ps_portspec *spec,
				   enum ps_proto proto, uint16_t port)
{
	if (port == 0)
		return false;
	if (spec->all)
		return true;
	return (spec->bits[proto][port >> 3] >> (port & 7)) & 1;
}

/* True if port is tagged for either protocol (the cheap first test). */
static inline bool ps_portspec_maybe(const struct ps_portspec *spec,
				     uint16_t port)
{
	if (port == 0)
		return false;
	if (spec->all)
		return true;
	return (spec->either[port >> 3] >> (port & 7)) & 1;
}

/*
 * Parses a decimal number in [min, max] spanning the whole of text.
 * Returns 0 or -EINVAL. Shared by every parser of the project.
 */
int ps_parse_uint(const char *text, unsigned long min, unsigned long max,
		  unsigned long *out);

#endif
