/* SPDX-License-Identifier: MIT */
/*
 * cmd_wait.c - `portshim wait [--group G] [--timeout S] [--udp] VPORT`:
 * waits until VPORT is mapped in the group and its server is ready, then
 * prints the real port. For scripts and tests that start a server in the
 * background.
 *
 * Ready means, for TCP, that a connection to the real port on 127.0.0.1
 * or ::1 is accepted (the connection is closed at once, without data);
 * for UDP, that a UDP socket is bound to the real port (nothing can be
 * asked of a UDP server without knowing its protocol).
 *
 * The registry and the port are polled with a bounded backoff, 10 ms
 * doubling to 100 ms: a server that starts is seen within 100 ms, and a
 * long wait costs ten checks a second.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "netstat.h"
#include "registry.h"

static const char wait_help[] =
	"Usage: portshim wait [--group G] [--timeout S] [--udp] VPORT\n"
	"Wait until virtual port VPORT is mapped in group G and its server is\n"
	"ready, then print the real port. Ready: for TCP, a connection to the\n"
	"real port on 127.0.0.1 or ::1 is accepted (and closed at once); for\n"
	"UDP, a UDP socket is bound to the real port.\n"
	"\n"
	"  -g, --group G     the group (default: $PORTSHIM_GROUP, with the\n"
	"                    suffixes of $PORTSHIM_GROUP_FROM applied)\n"
	"  -t, --timeout S   give up after S seconds (decimals allowed;\n"
	"                    default 30; 0 checks once)\n"
	"  -u, --udp         wait for a bound UDP socket instead of a TCP\n"
	"                    listener\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: 0 ready (the real port is printed), 1 timed out or the\n"
	"registry cannot be used, 2 bad usage.\n";

#define WAIT_DEFAULT_S 30.0
#define WAIT_MAX_S 31536000.0		 /* a year: long enough */
#define WAIT_BACKOFF_MIN_NS 10000000ull	 /* 10 ms */
#define WAIT_BACKOFF_MAX_NS 100000000ull /* 100 ms */
#define WAIT_CONNECT_MAX_MS 1000

static uint64_t wait_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Parses S: a non-negative decimal number of seconds. */
static int wait_parse_timeout(const char *text, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(v) ||
	    v < 0 || v > WAIT_MAX_S || strchr(text, 'x') != NULL ||
	    strchr(text, 'X') != NULL)
		return ps_cli_usage_error("invalid --timeout '%s': use a "
					  "number of seconds such as 30 or "
					  "0.5",
					  text);
	*out = v;
	return 0;
}

/*
 * True if a TCP connection to addr is accepted within timeout_ms. The
 * connect is non-blocking: a listener whose backlog is full drops the
 * handshake, and a blocking connect would then wait for retries.
 */
static bool wait_connect(const struct sockaddr *addr, socklen_t len,
			 int timeout_ms)
{
	struct pollfd p;
	socklen_t elen = sizeof(int);
	int fd, err = 0;
	bool ok = false;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    0);
	if (fd < 0)
		return false;
	if (connect(fd, addr, len) == 0) {
		ok = true;
	} else if (errno == EINPROGRESS) {
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, timeout_ms) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 &&
		    err == 0)
			ok = true;
	}
	close(fd);
	return ok;
}

/* TCP: does 127.0.0.1 or ::1 accept a connection at real? */
static bool wait_tcp_ready(uint16_t real, int timeout_ms)
{
	struct sockaddr_in in = { .sin_family = AF_INET };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };

	in.sin_port = htons(real);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (wait_connect((struct sockaddr *)&in, sizeof(in), timeout_ms))
		return true;
	in6.sin6_port = htons(real);
	in6.sin6_addr = in6addr_loopback;
	return wait_connect((struct sockaddr *)&in6, sizeof(in6), timeout_ms);
}

static int wait_udp_sock(void *arg, const struct ps_sock *s)
{
	return s->lport == *(const uint16_t *)arg ? 1 : 0;
}

/* UDP: is a UDP socket bound to real? */
static bool wait_udp_ready(uint16_t real)
{
	return ps_netstat_scan(1u << PS_UDP, wait_udp_sock, &real) == 1;
}

int ps_cli_wait(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "timeout", required_argument, NULL, 't' },
		{ "udp", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char group[PS_GROUP_MAX + 1] = "";
	enum ps_proto proto = PS_TCP;
	double timeout = WAIT_DEFAULT_S;
	uint64_t start, deadline, now, delay = WAIT_BACKOFF_MIN_NS;
	struct ps_registry reg;
	struct timespec ts;
	uint16_t vport, real = 0;
	bool mapped = false;
	int c, rc, ms;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":g:t:uh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			rc = wait_parse_timeout(optarg, &timeout);
			if (rc != 0)
				return rc;
			break;
		case 'u':
			proto = PS_UDP;
			break;
		default:
			rc = ps_cli_group_option(c, argv, wait_help, group);
			if (rc >= 0)
				return rc;
			break;
		}
	}
	rc = ps_cli_vport_operand("wait", argc, argv, group, &vport);
	if (rc != 0)
		return rc;

	/* A registry that is refused now will not heal by waiting. */
	if (ps_cli_open_registry(&reg) < 0)
		return PS_EXIT_NOTFOUND;
	start = wait_now_ns();
	deadline = start + (uint64_t)(timeout * 1e9);
	for (;;) {
		rc = ps_cli_lookup(&reg, group, vport, &real);
		if (rc < 0)
			return PS_EXIT_NOTFOUND;
		mapped = rc == 1;
		now = wait_now_ns();
		ms = now < deadline ? (int)((deadline - now) / 1000000) : 0;
		if (ms > WAIT_CONNECT_MAX_MS)
			ms = WAIT_CONNECT_MAX_MS;
		if (mapped &&
		    (proto == PS_UDP ? wait_udp_ready(real) :
				       wait_tcp_ready(real, ms > 0 ? ms : 1))) {
			printf("%u\n", real);
			return PS_EXIT_OK;
		}
		now = wait_now_ns();
		if (now >= deadline)
			break;
		if (delay > deadline - now)
			delay = deadline - now;
		ts.tv_sec = (time_t)(delay / 1000000000ull);
		ts.tv_nsec = (long)(delay % 1000000000ull);
		nanosleep(&ts, NULL);
		delay *= 2;
		if (delay > WAIT_BACKOFF_MAX_NS)
			delay = WAIT_BACKOFF_MAX_NS;
	}
	if (!mapped)
		ps_cli_error("timed out after %gs: %s port %u is not mapped "
			     "in group %s",
			     timeout, ps_proto_name(proto), vport, group);
	else if (proto == PS_UDP)
		ps_cli_error("timed out after %gs: udp port %u is mapped to "
			     "%u in group %s, but no UDP socket is bound "
			     "there",
			     timeout, vport, real, group);
	else
		ps_cli_error("timed out after %gs: tcp port %u is mapped to "
			     "%u in group %s, but nothing accepts "
			     "connections on 127.0.0.1:%u or [::1]:%u",
			     timeout, vport, real, group, real, real);
	return PS_EXIT_NOTFOUND;
}
