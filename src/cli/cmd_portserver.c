/* SPDX-License-Identifier: MIT */
/*
 * cmd_portserver.c - `portshim portserver [--address ADDR]`: Google
 * portpicker's portserver protocol, served from portshim's registry.
 *
 * The protocol, as portpicker's client speaks it: connect to a Unix
 * stream socket (an address starting with '@' is in the abstract
 * namespace: the '@' stands for a leading NUL byte), send a pid in
 * decimal and a newline, read once: a port and a newline, or nothing
 * when there is no port to give. The client never shuts down its side,
 * so the request ends at its newline.
 *
 * The port is leased to the named pid (pid and start time) as a pick
 * lease: it ends when that process dies, reclaimed by `portshim gc` or
 * by the next allocation that needs room, and no other pick, API call or
 * shim bind sharing the registry gets it meanwhile. The server keeps no
 * state of its own: stopping it ends no lease, and a restarted server
 * carries on.
 *
 * One thread, one poll loop: the listener, a signalfd for SIGTERM and
 * SIGINT, and every client's socket, all non-blocking. A client that
 * sends slowly only costs a slot until its deadline; picking a port is
 * the only work done for a request, under the registry lock as for
 * every other pick.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "pick.h"
#include "portspec.h"
#include "proc.h"
#include "registry.h"

#define PSV_DEFAULT_ADDRESS "@unittest-portserver"
/* Clients served at once; more wait in the listen backlog. */
#define PSV_CLIENTS_MAX 1024
/* The longest request taken: a pid, a newline and some slack. */
#define PSV_REQUEST_MAX 32
/* How long a client may take to send its request. */
#define PSV_CLIENT_TIMEOUT_MS 10000
/* How long to stop accepting when out of descriptors. */
#define PSV_EMFILE_PAUSE_MS 100

static const char portserver_help[] =
	"Usage: portshim portserver [--address ADDR]\n"
	"Serve Google portpicker's portserver protocol from portshim's registry,\n"
	"in the foreground, until SIGTERM or SIGINT. A client sends a pid and a\n"
	"newline; it gets a free port and a newline, leased to that pid until it\n"
	"exits, or an empty reply when no port is free. Programs that use\n"
	"portpicker get portshim-coordinated ports with\n"
	"PORTSERVER_ADDRESS=" PSV_DEFAULT_ADDRESS ".\n"
	"\n"
	"  -a, --address ADDR  the Unix socket to listen on; a leading '@' names\n"
	"                      an abstract socket (default " PSV_DEFAULT_ADDRESS
	")\n"
	"  -h, --help          show this help\n"
	"\n"
	"Only processes of the same user (or root) are served, and never pid 1.\n"
	"Ports come from PORTSHIM_RANGE; PORTSHIM_LOG=info logs every request.\n"
	"\n"
	"Exit status: 0 stopped by a signal, 1 cannot serve, 2 bad usage.\n";

struct psv_client {
	int fd;
	pid_t peer_pid; /* SO_PEERCRED; 0 if unknown */
	uid_t peer_uid;
	bool cred; /* peer_pid and peer_uid are known */
	size_t len;
	char buf[PSV_REQUEST_MAX];
	uint64_t deadline_ms;
};

struct psv_server {
	int listen_fd;
	int sig_fd;
	const char *address;
	bool unlink_at_exit; /* a file-system socket this server made */
	dev_t dev;
	ino_t ino;
	struct ps_config cfg;
	struct ps_registry reg;
	uint8_t reserved[PS_REG_NPORTS / 8];
	struct psv_client *clients;
	size_t nclients;
	struct pollfd *pfds;
	uint64_t pause_until_ms;
	unsigned long served, refused;
};

static uint64_t psv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Fills sun and its length from ADDR ("@name" or a path). Returns 0 or
 * an exit status. */
static int psv_address(const char *text, struct sockaddr_un *sun,
		       socklen_t *len)
{
	size_t n = strlen(text);

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (n == 0 || (text[0] == '@' && n == 1))
		return ps_cli_usage_error("invalid --address '%s': give a "
					  "path or @name",
					  text);
	if (n > sizeof(sun->sun_path) - (text[0] == '@' ? 0 : 1))
		return ps_cli_usage_error("invalid --address '%s': longer "
					  "than %zu bytes",
					  text, sizeof(sun->sun_path) - 1);
	/*
	 * portpicker connects to '\0' + name with the exact length, no
	 * trailing NUL: an abstract name is its bytes and the length, so
	 * the server must bind exactly the same.
	 */
	memcpy(sun->sun_path, text, n);
	if (text[0] == '@')
		sun->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
			   (text[0] == '@' ? 0 : 1));
	return 0;
}

/* Tells whether a server answers at a file-system socket. */
static bool psv_path_live(const struct sockaddr_un *sun, socklen_t len)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return true; /* cannot tell: do not remove anything */
	live = connect(fd, (const struct sockaddr *)sun, len) == 0 ||
	       errno != ECONNREFUSED;
	close(fd);
	return live;
}

/* Creates the listening socket. Returns 0 or an exit status. */
static int psv_listen(struct psv_server *sv)
{
	struct sockaddr_un sun;
	socklen_t len = 0;
	struct stat st;
	int rc;

	rc = psv_address(sv->address, &sun, &len);
	if (rc != 0)
		return rc;
	sv->listen_fd =
		socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (sv->listen_fd < 0) {
		ps_cli_error("socket: %s", strerror(errno));
		return PS_EXIT_NOTFOUND;
	}
	rc = bind(sv->listen_fd, (struct sockaddr *)&sun, len);
	/*
	 * A socket file left by a server that died answers nothing: it is
	 * replaced. One that answers belongs to a running server.
	 */
	if (rc != 0 && errno == EADDRINUSE && sv->address[0] != '@' &&
	    lstat(sun.sun_path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    !psv_path_live(&sun, len)) {
		unlink(sun.sun_path);
		rc = bind(sv->listen_fd, (struct sockaddr *)&sun, len);
	}
	if (rc != 0) {
		if (errno == EADDRINUSE)
			ps_cli_error("%s is in use: another portserver runs "
				     "there",
				     sv->address);
		else
			ps_cli_error("cannot bind %s: %s", sv->address,
				     strerror(errno));
		return PS_EXIT_NOTFOUND;
	}
	if (sv->address[0] != '@' && stat(sun.sun_path, &st) == 0) {
		sv->unlink_at_exit = true;
		sv->dev = st.st_dev;
		sv->ino = st.st_ino;
	}
	if (listen(sv->listen_fd, SOMAXCONN) != 0) {
		ps_cli_error("cannot listen on %s: %s", sv->address,
			     strerror(errno));
		return PS_EXIT_NOTFOUND;
	}
	return 0;
}

/* Blocks SIGTERM and SIGINT and opens a signalfd for them. Returns 0 or
 * an exit status. */
static int psv_signals(struct psv_server *sv)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
		ps_cli_error("sigprocmask: %s", strerror(errno));
		return PS_EXIT_NOTFOUND;
	}
	sv->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sv->sig_fd < 0) {
		ps_cli_error("signalfd: %s", strerror(errno));
		return PS_EXIT_NOTFOUND;
	}
	/* A client that hangs up before its reply must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static void psv_drop(struct psv_server *sv, size_t i)
{
	close(sv->clients[i].fd);
	sv->clients[i] = sv->clients[--sv->nclients];
}

/* Sends the reply (the empty reply is no bytes at all) and drops i. */
static void psv_reply(struct psv_server *sv, size_t i, uint16_t port)
{
	char out[16];
	int n;

	if (port != 0) {
		n = snprintf(out, sizeof(out), "%u\n", (unsigned)port);
		/* A few bytes into a fresh socket's buffer: this does not
		 * block, and the client reads them in one recv. */
		if (send(sv->clients[i].fd, out, (size_t)n,
			 MSG_NOSIGNAL | MSG_DONTWAIT) != n)
			PS_INFO("portserver: reply of port %u lost: %s",
				(unsigned)port, strerror(errno));
	}
	psv_drop(sv, i);
}

/*
 * Parses a request: decimal digits, optionally surrounded by blanks
 * (Python's int() accepts them too). Returns the pid, or -1.
 */
static long psv_parse_pid(char *text)
{
	unsigned long v;
	char *end;

	while (*text == ' ' || *text == '\t')
		text++;
	end = text + strlen(text);
	while (end > text &&
	       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	if (ps_parse_uint(text, 0, INT_MAX, &v) < 0)
		return -1;
	return (long)v;
}

/* The uid owning /proc/PID, or (uid_t)-1. */
static uid_t psv_uid_of(pid_t pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) != 0)
		return (uid_t)-1;
	return st.st_uid;
}

/*
 * Decides who may get a lease for whom: portpicker's own server refuses
 * pids that are not positive, init (it never exits, so the port would
 * never come back) and pids that are not running. The registry is this
 * user's, and an abstract socket is open to every user on the host, so
 * only this user's processes (or root's) are served, for processes of
 * the same user as the asker. Returns NULL to serve, or why not.
 */
static const char *psv_refusal(const struct psv_client *c, long pid,
			       struct ps_ident *holder)
{
	uid_t me = geteuid();
	uid_t owner;

	if (pid < 0)
		return "not a pid";
	if (pid == 0)
		return "pid 0 is not a process";
	if (pid == 1)
		return "pid 1 never exits, its port would never come back";
	if (c->cred && c->peer_uid != me && c->peer_uid != 0)
		return "the asking process belongs to another user";
	if (ps_proc_ident((pid_t)pid, holder) < 0)
		return "no such process";
	owner = psv_uid_of((pid_t)pid);
	if (c->cred && c->peer_uid != 0 && owner != c->peer_uid)
		return "the process belongs to another user";
	return NULL;
}

/* Serves the complete request of client i and drops it. */
static void psv_serve(struct psv_server *sv, size_t i)
{
	struct psv_client *c = &sv->clients[i];
	struct ps_pick_req req;
	const char *why;
	char peer[48];
	uint16_t port = 0;
	long pid;
	int rc;

	c->buf[c->len] = '\0';
	c->buf[strcspn(c->buf, "\n")] = '\0';
	pid = psv_parse_pid(c->buf);
	if (c->cred)
		snprintf(peer, sizeof(peer), "peer pid %d uid %u",
			 (int)c->peer_pid, (unsigned)c->peer_uid);
	else
		snprintf(peer, sizeof(peer), "peer unknown");

	memset(&req, 0, sizeof(req));
	why = psv_refusal(c, pid, &req.holder);
	if (why != NULL) {
		sv->refused++;
		PS_INFO("portserver: request '%.20s' (%s) refused: %s", c->buf,
			peer, why);
		psv_reply(sv, i, 0);
		return;
	}
	req.lo = sv->cfg.range_lo;
	req.hi = sv->cfg.range_hi;
	req.reserved = sv->reserved;
	rc = ps_pick(&sv->reg, &req, &port, 1);
	if (rc == 0) {
		sv->served++;
		PS_INFO("portserver: pid %ld (%s) -> port %u", pid, peer,
			(unsigned)port);
	} else {
		sv->refused++;
		port = 0;
		if (rc == -EADDRNOTAVAIL)
			PS_ERROR("portserver: pid %ld (%s): no free port left "
				 "in PORTSHIM_RANGE %u-%u",
				 pid, peer, (unsigned)req.lo, (unsigned)req.hi);
		else
			PS_ERROR("portserver: pid %ld (%s): %s", pid, peer,
				 rc == -ESRCH ? "the process has exited" :
						strerror(-rc));
	}
	psv_reply(sv, i, port);
}

/* Reads what client i sent; serves it once complete. */
static void psv_read(struct psv_server *sv, size_t i)
{
	struct psv_client *c = &sv->clients[i];
	ssize_t n;

	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len,
		 MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		psv_drop(sv, i);
		return;
	}
	c->len += (size_t)n;
	/* A request ends at its newline, or when the client stops
	 * sending (an old client that shuts down its side). */
	if (memchr(c->buf, '\n', c->len) != NULL || (n == 0 && c->len > 0)) {
		psv_serve(sv, i);
		return;
	}
	if (n == 0) {
		psv_drop(sv, i);
		return;
	}
	if (c->len >= sizeof(c->buf) - 1) {
		sv->refused++;
		PS_INFO("portserver: request longer than %d bytes refused",
			PSV_REQUEST_MAX - 1);
		psv_reply(sv, i, 0);
	}
}

/* Takes every waiting connection, up to PSV_CLIENTS_MAX. */
static void psv_accept(struct psv_server *sv)
{
	while (sv->nclients < PSV_CLIENTS_MAX) {
		struct psv_client *c;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		int fd;

		fd = accept4(sv->listen_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				PS_ERROR("portserver: accept: %s; pausing",
					 strerror(errno));
				sv->pause_until_ms =
					psv_now_ms() + PSV_EMFILE_PAUSE_MS;
			}
			return; /* EAGAIN: none left; others: the next */
		}
		c = &sv->clients[sv->nclients++];
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->deadline_ms = psv_now_ms() + PSV_CLIENT_TIMEOUT_MS;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
		    len == sizeof(cred)) {
			c->cred = true;
			c->peer_pid = cred.pid;
			c->peer_uid = cred.uid;
		}
	}
}

/* Drops the clients past their deadline; returns the poll timeout until
 * the next deadline (or the pause's end), -1 for none. */
static int psv_expire(struct psv_server *sv)
{
	uint64_t now = psv_now_ms();
	uint64_t next = UINT64_MAX;
	size_t i = 0;

	while (i < sv->nclients) {
		if (sv->clients[i].deadline_ms <= now) {
			PS_INFO("portserver: client sent no request within "
				"%d s; dropped",
				PSV_CLIENT_TIMEOUT_MS / 1000);
			psv_drop(sv, i);
			continue;
		}
		if (sv->clients[i].deadline_ms < next)
			next = sv->clients[i].deadline_ms;
		i++;
	}
	if (sv->pause_until_ms > now && sv->pause_until_ms < next)
		next = sv->pause_until_ms;
	if (next == UINT64_MAX)
		return -1;
	return next - now > INT_MAX ? INT_MAX : (int)(next - now);
}

/* The poll loop; returns when a stop signal arrives or poll fails. */
static int psv_loop(struct psv_server *sv)
{
	struct signalfd_siginfo si;

	for (;;) {
		int timeout = psv_expire(sv);
		bool paused = sv->pause_until_ms > psv_now_ms();
		size_t n = 2, i;
		int rc;

		sv->pfds[0] = (struct pollfd){ sv->sig_fd, POLLIN, 0 };
		sv->pfds[1] = (struct pollfd){
			sv->listen_fd,
			sv->nclients < PSV_CLIENTS_MAX && !paused ? POLLIN : 0,
			0
		};
		for (i = 0; i < sv->nclients; i++)
			sv->pfds[n++] =
				(struct pollfd){ sv->clients[i].fd, POLLIN, 0 };
		rc = poll(sv->pfds, n, timeout);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			ps_cli_error("poll: %s", strerror(errno));
			return PS_EXIT_NOTFOUND;
		}
		if (sv->pfds[0].revents & POLLIN &&
		    read(sv->sig_fd, &si, sizeof(si)) == sizeof(si)) {
			PS_INFO("portserver: %s: stopping (%lu ports handed "
				"out, %lu requests refused)",
				strsignal((int)si.ssi_signo), sv->served,
				sv->refused);
			return PS_EXIT_OK;
		}
		/*
		 * Clients first, from the end: serving one moves the last
		 * client into its slot, and the pollfd array still has the
		 * order of before. Walking backwards, a moved client has
		 * already been looked at.
		 */
		for (i = n; i-- > 2;) {
			size_t k = i - 2;

			if (k >= sv->nclients ||
			    sv->clients[k].fd != sv->pfds[i].fd)
				continue;
			if (sv->pfds[i].revents & (POLLIN | POLLHUP | POLLERR))
				psv_read(sv, k);
		}
		if (sv->pfds[1].revents & POLLIN)
			psv_accept(sv);
	}
}

int ps_cli_portserver(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct psv_server sv;
	struct stat st;
	int c, rc;

	sv.address = PSV_DEFAULT_ADDRESS;
	sv.listen_fd = sv.sig_fd = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":a:h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			sv.address = optarg;
			break;
		case 'h':
			return ps_cli_help(portserver_help);
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	if (optind < argc)
		return ps_cli_usage_error("portserver: unexpected argument "
					  "'%s'",
					  argv[optind]);
	rc = ps_cli_range_config(&sv.cfg);
	if (rc != 0)
		return rc;
	if (ps_cli_open_registry(&sv.reg) < 0)
		return PS_EXIT_NOTFOUND;
	ps_reserved_ports_load(sv.reserved);
	sv.clients = calloc(PSV_CLIENTS_MAX, sizeof(*sv.clients));
	sv.pfds = calloc(PSV_CLIENTS_MAX + 2, sizeof(*sv.pfds));
	if (sv.clients == NULL || sv.pfds == NULL) {
		ps_cli_error("out of memory");
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	rc = psv_signals(&sv);
	if (rc == 0)
		rc = psv_listen(&sv);
	if (rc != 0)
		goto out;
	PS_INFO("portserver: listening on %s, ports %u-%u", sv.address,
		(unsigned)sv.cfg.range_lo, (unsigned)sv.cfg.range_hi);
	rc = psv_loop(&sv);
out:
	while (sv.nclients > 0)
		psv_drop(&sv, sv.nclients - 1);
	if (sv.listen_fd >= 0)
		close(sv.listen_fd);
	/* Only the socket file this server made, not one put there since. */
	if (sv.unlink_at_exit && stat(sv.address, &st) == 0 &&
	    st.st_dev == sv.dev && st.st_ino == sv.ino)
		unlink(sv.address);
	if (sv.sig_fd >= 0)
		close(sv.sig_fd);
	free(sv.clients);
	free(sv.pfds);
	return rc;
}
