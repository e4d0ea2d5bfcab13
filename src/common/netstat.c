/* SPDX-License-Identifier: MIT */
/*
 * netstat.c - sockets from /proc/net, and their processes from
 * /proc/PID/fd, with fixed buffers only (see netstat.h for why).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netstat.h"
#include "proc.h"

/*
 * Buffer sizes. Lines of /proc/net/tcp are 150 bytes and those of tcp6
 * 178: 2048 bytes hold several, and a line that somehow does not fit is
 * skipped. Directory listings are read 1024 bytes at a time (a few dozen
 * entries). All of it lives on the caller's stack, which in a host
 * program may be a small thread stack: the total stays under 4 KB.
 */
#define TABLE_BUF 2048
#define DENTS_BUF 1024
#define LINK_BUF 64

/* ------------------------------------------------------------ parsing */

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Parses exactly n hex digits at *p into *out and advances *p. */
static int parse_hex(const char **p, int n, uint32_t *out)
{
	uint32_t v = 0;
	int i, d;

	for (i = 0; i < n; i++) {
		d = hex_digit((*p)[i]);
		if (d < 0)
			return -EINVAL;
		v = v << 4 | (uint32_t)d;
	}
	*p += n;
	*out = v;
	return 0;
}

/* Parses a decimal number at *p (at least one digit) and advances *p. */
static int parse_dec(const char **p, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	while (*s >= '0' && *s <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

/* Skips one field (non-blank characters) and the blanks after it. */
static int skip_field(const char **p)
{
	const char *s = *p;

	if (*s == '\0' || *s == ' ')
		return -EINVAL;
	while (*s != '\0' && *s != ' ' && *s != '\t')
		s++;
	*p = skip_spaces(s);
	return 0;
}

/*
 * Parses "ADDR:PORT". The kernel prints each 32-bit word of the address
 * as %08X of its value in memory, so copying the parsed words back into
 * memory gives the address in network byte order, on any endianness.
 */
static int parse_endpoint(const char **p, bool v6, uint8_t *addr,
			  uint16_t *port)
{
	uint32_t w, v;
	int i;

	memset(addr, 0, 16);
	for (i = 0; i < (v6 ? 4 : 1); i++) {
		if (parse_hex(p, 8, &w) < 0)
			return -EINVAL;
		memcpy(addr + 4 * i, &w, 4);
	}
	if (**p != ':')
		return -EINVAL;
	(*p)++;
	if (parse_hex(p, 4, &v) < 0)
		return -EINVAL;
	*port = (uint16_t)v;
	*p = skip_spaces(*p);
	return 0;
}

int ps_netstat_parse(const char *line, enum ps_proto proto, bool v6,
		     struct ps_sock *out)
{
	const char *p = skip_spaces(line);
	uint32_t state;
	uint64_t uid, inode;
	int i;

	memset(out, 0, sizeof(*out));
	out->proto = (uint8_t)proto;
	out->v6 = v6;
	/* "sl:" */
	if (parse_dec(&p, &inode) < 0 || *p != ':')
		return -EINVAL;
	p = skip_spaces(p + 1);
	if (parse_endpoint(&p, v6, out->laddr, &out->lport) < 0 ||
	    parse_endpoint(&p, v6, out->raddr, &out->rport) < 0)
		return -EINVAL;
	if (parse_hex(&p, 2, &state) < 0)
		return -EINVAL;
	out->state = (uint8_t)state;
	p = skip_spaces(p);
	/* tx_queue:rx_queue, tr:tm->when, retrnsmt */
	for (i = 0; i < 3; i++) {
		if (skip_field(&p) < 0)
			return -EINVAL;
	}
	if (parse_dec(&p, &uid) < 0 || uid > UINT32_MAX)
		return -EINVAL;
	out->uid = (uint32_t)uid;
	p = skip_spaces(p);
	/* timeout */
	if (skip_field(&p) < 0)
		return -EINVAL;
	if (parse_dec(&p, &inode) < 0)
		return -EINVAL;
	out->inode = inode;
	return 0;
}

/* ------------------------------------------------------ socket tables */

/*
 * Reads one table line by line through a fixed buffer, calling fn for
 * each socket. Returns 0, fn's non-zero value, or -errno.
 */
static int scan_table(const char *path, enum ps_proto proto, bool v6,
		      int (*fn)(void *arg, const struct ps_sock *s), void *arg)
{
	char buf[TABLE_BUF];
	struct ps_sock s;
	size_t have = 0, start, i;
	bool header = true, skipping = false;
	ssize_t n;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		n = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		have += (size_t)n;
		start = 0;
		for (i = 0; i < have; i++) {
			if (buf[i] != '\n')
				continue;
			buf[i] = '\0';
			if (!header && !skipping &&
			    ps_netstat_parse(buf + start, proto, v6, &s) == 0) {
				rc = fn(arg, &s);
				if (rc != 0)
					goto out;
			}
			header = false;
			skipping = false;
			start = i + 1;
		}
		if (start == 0 && have == sizeof(buf) - 1) {
			/* A line longer than the buffer: drop it. */
			skipping = true;
			have = 0;
			continue;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
	}
out:
	close(fd);
	return rc;
}

int ps_netstat_scan(unsigned protos,
		    int (*fn)(void *arg, const struct ps_sock *s), void *arg)
{
	static const struct {
		const char *path;
		enum ps_proto proto;
		bool v6;
	} tables[] = {
		{ "/proc/net/tcp", PS_TCP, false },
		{ "/proc/net/tcp6", PS_TCP, true },
		{ "/proc/net/udp", PS_UDP, false },
		{ "/proc/net/udp6", PS_UDP, true },
	};
	int saved = errno;
	int rc, err = 0;
	bool any = false;
	size_t i;

	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		if (!(protos & (1u << tables[i].proto)))
			continue;
		rc = scan_table(tables[i].path, tables[i].proto, tables[i].v6,
				fn, arg);
		if (rc > 0) {
			err = rc;
			goto out;
		}
		if (rc == 0)
			any = true;
		else if (rc != -ENOENT || !tables[i].v6)
			err = rc; /* no tcp6/udp6: a host without IPv6 */
	}
	if (any)
		err = 0;
	else if (err == 0)
		err = -ENOENT;
out:
	errno = saved;
	return err;
}

struct tw_only {
	uint16_t port;
	bool timewait;
};

static int tw_only_fn(void *arg, const struct ps_sock *s)
{
	struct tw_only *t = arg;

	if (s->lport != t->port)
		return 0;
	if (s->state != PS_SOCK_TIME_WAIT)
		return 1; /* something lives there */
	t->timewait = true;
	return 0;
}

bool ps_netstat_timewait_only(uint16_t port)
{
	struct tw_only t = { port, false };

	return ps_netstat_scan(1u << PS_TCP, tw_only_fn, &t) == 0 && t.timewait;
}

/* ---------------------------------------------------------- processes */

struct walk {
	int (*fn)(void *arg, pid_t pid, uint64_t inode);
	void *arg;
	size_t budget; /* descriptors left; SIZE_MAX = no bound */
	struct ps_netstat_stats *st;
};

/* The inode of a "socket:[12345]" link, or 0. */
static uint64_t socket_inode(const char *link, ssize_t len)
{
	const char *p = link + 8;
	uint64_t v;

	if (len < 10 || memcmp(link, "socket:[", 8) != 0)
		return 0;
	if (parse_dec(&p, &v) < 0 || *p != ']')
		return 0;
	return v;
}

/*
 * Reads the descriptors of one process (procfd/name/fd). Returns 0 to go
 * on (st->truncated tells that the budget ran out), or fn's value.
 */
static int walk_process(int procfd, const char *name, pid_t pid, struct walk *w)
{
	char path[32], link[LINK_BUF];
	char buf[DENTS_BUF] __attribute__((aligned(8)));
	struct dirent64 *d;
	struct stat st;
	ssize_t n, len;
	size_t off;
	uint64_t inode;
	int fd, rc = 0;

	if (snprintf(path, sizeof(path), "%s/fd", name) >= (int)sizeof(path))
		return 0;
	fd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		/* Gone since the listing (ENOENT) is not worth a word;
		 * another user's or a non-dumpable process is. */
		if (errno == EACCES || errno == EPERM) {
			w->st->unreadable++;
			if (fstatat(procfd, name, &st, 0) == 0)
				w->st->unreadable_uid = (uint32_t)st.st_uid;
		}
		return 0;
	}
	w->st->procs++;
	while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
		for (off = 0; off < (size_t)n; off += d->d_reclen) {
			d = (struct dirent64 *)(void *)(buf + off);
			if (d->d_name[0] == '.')
				continue;
			if (w->budget == 0) {
				w->st->truncated = true;
				goto out;
			}
			if (w->budget != SIZE_MAX)
				w->budget--;
			len = readlinkat(fd, d->d_name, link, sizeof(link) - 1);
			if (len <= 0)
				continue;
			link[len] = '\0';
			inode = socket_inode(link, len);
			if (inode == 0)
				continue;
			rc = w->fn(w->arg, pid, inode);
			if (rc != 0)
				goto out;
		}
	}
out:
	close(fd);
	return rc;
}

int ps_netstat_owners(int (*fn)(void *arg, pid_t pid, uint64_t inode),
		      void *arg, size_t max_fds, struct ps_netstat_stats *st)
{
	char buf[DENTS_BUF] __attribute__((aligned(8)));
	struct ps_netstat_stats local;
	struct walk w = { fn, arg, max_fds ? max_fds : SIZE_MAX, st };
	struct dirent64 *d;
	int saved = errno;
	const char *p;
	uint64_t pid;
	ssize_t n;
	size_t off;
	int procfd, rc = 0;

	if (w.st == NULL)
		w.st = &local;
	memset(w.st, 0, sizeof(*w.st));
	procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0) {
		rc = -errno;
		goto out;
	}
	while ((n = getdents64(procfd, buf, sizeof(buf))) > 0) {
		for (off = 0; off < (size_t)n; off += d->d_reclen) {
			d = (struct dirent64 *)(void *)(buf + off);
			p = d->d_name;
			if (parse_dec(&p, &pid) < 0 || *p != '\0' || pid == 0 ||
			    pid > INT32_MAX)
				continue;
			rc = walk_process(procfd, d->d_name, (pid_t)pid, &w);
			if (rc != 0 || w.st->truncated)
				goto done;
		}
	}
done:
	close(procfd);
out:
	errno = saved;
	return rc;
}

/* ------------------------------------------------------------- holder */

struct holder_scan {
	uint16_t port;
	int rank;
	struct ps_sock best;
	pid_t pid;
};

/*
 * How likely a socket at the port is the reason for EADDRINUSE: a TCP
 * listener or a bound UDP socket surely is; a connection's local port
 * may be (measured: an outgoing connection's port blocks a wildcard
 * bind); a socket no process holds (TIME_WAIT) is the last resort, since
 * its owner cannot be named anyway.
 */
static int holder_rank(const struct ps_sock *s)
{
	if (s->inode == 0)
		return 1;
	if (s->proto == PS_UDP || s->state == PS_SOCK_LISTEN)
		return 3;
	return 2;
}

static int holder_sock(void *arg, const struct ps_sock *s)
{
	struct holder_scan *h = arg;
	int rank;

	if (s->lport != h->port)
		return 0;
	rank = holder_rank(s);
	if (rank > h->rank) {
		h->rank = rank;
		h->best = *s;
	}
	return 0;
}

static int holder_owner(void *arg, pid_t pid, uint64_t inode)
{
	struct holder_scan *h = arg;

	if (inode != h->best.inode)
		return 0;
	h->pid = pid;
	return 1;
}

int ps_netstat_holder(enum ps_proto proto, uint16_t port,
		      struct ps_netstat_holder *out)
{
	struct holder_scan h;
	int saved = errno;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&h, 0, sizeof(h));
	h.port = port;
	rc = ps_netstat_scan(1u << proto, holder_sock, &h);
	if (rc < 0)
		goto out;
	rc = 0;
	if (h.rank == 0)
		goto out;
	out->found = true;
	out->sock = h.best;
	if (h.best.inode == 0)
		goto out;
	rc = ps_netstat_owners(holder_owner, &h, PS_NETSTAT_HOLDER_FDS,
			       &out->st);
	if (rc < 0)
		goto out;
	rc = 0;
	out->pid = h.pid;
out:
	errno = saved;
	return rc;
}

/* --------------------------------------------------------- formatting */

const char *ps_sock_state_name(const struct ps_sock *s)
{
	static const char *const names[] = {
		[PS_SOCK_ESTABLISHED] = "ESTABLISHED",
		[PS_SOCK_SYN_SENT] = "SYN_SENT",
		[PS_SOCK_SYN_RECV] = "SYN_RECV",
		[PS_SOCK_FIN_WAIT1] = "FIN_WAIT1",
		[PS_SOCK_FIN_WAIT2] = "FIN_WAIT2",
		[PS_SOCK_TIME_WAIT] = "TIME_WAIT",
		[PS_SOCK_CLOSE] = "CLOSE",
		[PS_SOCK_CLOSE_WAIT] = "CLOSE_WAIT",
		[PS_SOCK_LAST_ACK] = "LAST_ACK",
		[PS_SOCK_LISTEN] = "LISTEN",
		[PS_SOCK_CLOSING] = "CLOSING",
		[PS_SOCK_NEW_SYN_RECV] = "NEW_SYN_RECV",
	};

	if (s->proto == PS_UDP && s->state == PS_SOCK_CLOSE)
		return "UNCONN";
	if (s->state < sizeof(names) / sizeof(names[0]) &&
	    names[s->state] != NULL)
		return names[s->state];
	return "UNKNOWN";
}

void ps_sock_addr(const struct ps_sock *s, bool remote, char *buf, size_t len)
{
	const uint8_t *a = remote ? s->raddr : s->laddr;

	if (len == 0)
		return;
	if (inet_ntop(s->v6 ? AF_INET6 : AF_INET, a, buf, (socklen_t)len) ==
	    NULL)
		snprintf(buf, len, "?");
}

void ps_sock_endpoint(const struct ps_sock *s, bool remote, char *buf,
		      size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	char port[8] = "*";
	uint16_t p = remote ? s->rport : s->lport;

	ps_sock_addr(s, remote, addr, sizeof(addr));
	if (p != 0)
		snprintf(port, sizeof(port), "%u", (unsigned)p);
	snprintf(buf, len, s->v6 ? "[%s]:%s" : "%s:%s", addr, port);
}

void ps_netstat_describe(const struct ps_netstat_holder *h, char *buf,
			 size_t len)
{
	char ep[INET6_ADDRSTRLEN + 10];
	char cmd[96];
	const char *state;

	if (len == 0)
		return;
	if (!h->found) {
		snprintf(buf, len,
			 "no holder is visible (a socket in another"
			 " network namespace, or a TCP socket bound but not"
			 " listening)");
		return;
	}
	state = ps_sock_state_name(&h->sock);
	ps_sock_endpoint(&h->sock, false, ep, sizeof(ep));
	if (h->sock.inode == 0) {
		snprintf(buf, len,
			 "held by a %s socket at %s that no process"
			 " holds (it ends by itself; SO_REUSEADDR binds over"
			 " TIME_WAIT)",
			 state, ep);
		return;
	}
	if (h->pid == 0) {
		snprintf(buf, len,
			 "held by a %s socket at %s of uid %u whose"
			 " process %s",
			 state, ep, (unsigned)h->sock.uid,
			 h->st.truncated ? "was not found in time" :
					   "could not be seen (not root?)");
		return;
	}
	ps_proc_cmdline(h->pid, cmd, sizeof(cmd));
	if (h->sock.proto == PS_TCP && h->sock.state != PS_SOCK_LISTEN)
		snprintf(buf, len, "held by pid %d (%s), its %s socket at %s",
			 (int)h->pid, cmd, state, ep);
	else
		snprintf(buf, len, "held by pid %d (%s)", (int)h->pid, cmd);
}
