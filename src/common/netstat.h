/* SPDX-License-Identifier: MIT */
/*
 * netstat.h - the TCP and UDP sockets of this host, read from
 * /proc/net/{tcp,tcp6,udp,udp6}, and the processes that hold them, found
 * through the descriptors in /proc/PID/fd.
 *
 * Used by `portshim who` and by the shim's diagnostic of a bind that
 * failed with EADDRINUSE. That diagnostic runs inside the host program,
 * so everything here works in fixed stack buffers with open, read,
 * getdents64 and readlinkat: no allocation (opendir and stdio would
 * malloc), no stdio, no lock, no signal; errno is preserved.
 *
 * What cannot be seen: /proc/net shows the sockets of the caller's network
 * namespace only; a TCP socket that is bound but neither listening nor
 * connected is not in /proc/net/tcp at all; and without privileges the
 * descriptors of other users' processes (and of non-dumpable ones) cannot
 * be read, so their sockets are found but not their processes.
 */
#ifndef PS_NETSTAT_H
#define PS_NETSTAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "portspec.h"

/* Socket states as the kernel numbers them (include/net/tcp_states.h). */
enum ps_sock_state {
	PS_SOCK_ESTABLISHED = 1,
	PS_SOCK_SYN_SENT = 2,
	PS_SOCK_SYN_RECV = 3,
	PS_SOCK_FIN_WAIT1 = 4,
	PS_SOCK_FIN_WAIT2 = 5,
	PS_SOCK_TIME_WAIT = 6,
	PS_SOCK_CLOSE = 7, /* an unconnected UDP socket */
	PS_SOCK_CLOSE_WAIT = 8,
	PS_SOCK_LAST_ACK = 9,
	PS_SOCK_LISTEN = 10,
	PS_SOCK_CLOSING = 11,
	PS_SOCK_NEW_SYN_RECV = 12,
};

/* One line of a socket table. */
struct ps_sock {
	uint8_t proto; /* PS_TCP or PS_UDP */
	uint8_t v6;    /* from tcp6/udp6 (addresses are IPv6) */
	uint8_t state; /* enum ps_sock_state */
	uint8_t pad;
	uint16_t lport; /* local port */
	uint16_t rport; /* remote port; 0 if none */
	uint32_t uid;	/* the socket's owner */
	uint32_t pad2;
	uint64_t inode;	   /* 0 for sockets no process holds (TIME_WAIT) */
	uint8_t laddr[16]; /* network byte order; IPv4 uses 4 bytes */
	uint8_t raddr[16];
};

/* What a scan of /proc/PID/fd could and could not see. */
struct ps_netstat_stats {
	unsigned procs;		 /* processes whose descriptors were read */
	unsigned unreadable;	 /* processes whose descriptors were not */
	uint32_t unreadable_uid; /* the uid of one of those (for messages) */
	bool truncated;		 /* the descriptor budget ran out */
};

/*
 * Parses one socket line of /proc/net/tcp, udp, tcp6 or udp6 (not the
 * header line) for proto (PS_TCP or PS_UDP), v6 telling which table it
 * came from. Returns 0, or -EINVAL for a line it does not understand.
 */
int ps_netstat_parse(const char *line, enum ps_proto proto, bool v6,
		     struct ps_sock *out);

/*
 * Reads the socket tables of the protocols in protos (a PS_PROTO_BIT set
 * from registry.h: bit PS_TCP, bit PS_UDP), IPv4 and IPv6, and calls fn
 * for each socket. fn returns 0 to go on, or a positive value to stop
 * the scan. Returns 0, fn's value if it stopped the scan, or -errno if
 * no table could be read (a missing tcp6/udp6, on a host without IPv6,
 * is not an error). No allocation; errno preserved.
 */
int ps_netstat_scan(unsigned protos,
		    int (*fn)(void *arg, const struct ps_sock *s), void *arg);

/*
 * Walks the descriptors of every process in /proc and calls fn(arg, pid,
 * inode) for each socket descriptor. fn returns 0 to go on, or a
 * positive value to stop. max_fds bounds the descriptors looked at (0 =
 * no bound); st (may be NULL) is filled in. Returns 0, fn's value if it
 * stopped the walk, or -errno if /proc cannot be read. No allocation;
 * errno preserved.
 */
int ps_netstat_owners(int (*fn)(void *arg, pid_t pid, uint64_t inode),
		      void *arg, size_t max_fds, struct ps_netstat_stats *st);

/*
 * True if the only TCP sockets at local port port (any address, IPv4 and
 * IPv6) are in TIME_WAIT, and there is at least one: the remnants of
 * connections that have ended, which a bind with SO_REUSEADDR may reuse
 * (docs/time-wait.md). A socket bound but neither listening nor
 * connected cannot be seen. No allocation; errno preserved.
 */
bool ps_netstat_timewait_only(uint16_t port);

/* Who has a port: the most likely cause of an EADDRINUSE. */
struct ps_netstat_holder {
	bool found;	     /* a socket at the port was found */
	struct ps_sock sock; /* that socket */
	pid_t pid;	     /* a process holding it; 0 if none seen */
	struct ps_netstat_stats st;
};

/* Descriptors that ps_netstat_holder looks at, at most. */
#define PS_NETSTAT_HOLDER_FDS 65536u

/*
 * Finds the socket that most likely keeps a bind to local port port of
 * proto from succeeding (a TCP listener or any bound UDP socket first,
 * then a socket with another state that has a process, then one that has
 * none, such as TIME_WAIT) and a process that holds it. Reads at most
 * PS_NETSTAT_HOLDER_FDS descriptors. Returns 0 (out->found and out->pid
 * tell what was seen) or -errno. No allocation; errno preserved: safe on
 * a host program's failure path.
 */
int ps_netstat_holder(enum ps_proto proto, uint16_t port,
		      struct ps_netstat_holder *out);

/*
 * Describes a holder found by ps_netstat_holder for a log line: "held by
 * pid 456 (nginx: master process)", "held by a TIME_WAIT socket at
 * 127.0.0.1:8080 that no process holds (...)", "held by a LISTEN socket
 * at 0.0.0.0:80 of uid 0 whose process could not be seen (not root?)",
 * or "no holder is visible (...)". Reads the holder's command line. No
 * allocation.
 */
void ps_netstat_describe(const struct ps_netstat_holder *h, char *buf,
			 size_t len);

/*
 * The name of a socket's state: "LISTEN", "ESTABLISHED", "TIME_WAIT",
 * ...; an unconnected UDP socket is "UNCONN" (as ss(8) says). Returns a
 * static string.
 */
const char *ps_sock_state_name(const struct ps_sock *s);

/*
 * Formats a socket's local (remote = false) or remote address, without
 * the port, as inet_ntop does ("127.0.0.1", "::1", "::ffff:127.0.0.1").
 * No allocation.
 */
void ps_sock_addr(const struct ps_sock *s, bool remote, char *buf, size_t len);

/*
 * Formats "ADDR:PORT", or "[ADDR]:PORT" for IPv6, with "*" for port 0.
 * No allocation.
 */
void ps_sock_endpoint(const struct ps_sock *s, bool remote, char *buf,
		      size_t len);

#endif
