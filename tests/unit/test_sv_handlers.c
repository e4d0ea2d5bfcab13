/* SPDX-License-Identifier: MIT */
/*
 * test_sv_handlers.c - what the supervisor's handlers (src/supervisor/
 * handlers.c) decide and do with real calls of a real process. The test
 * plays the supervisor: its child installs the real filter (filter.c)
 * and runs this program again, in child mode, with a group's variables
 * in its environment; every call the kernel stops goes through
 * ps_sv_take (ps_sv_classify and its answer) and, when classify hands it
 * over, ps_sv_act, as the notification loop does (acted on here, in
 * order, rather than by a worker thread). The child does what a program does (bind and listen,
 * connect, ask its socket's and its peer's names, send TCP data with and
 * without MSG_FASTOPEN, UDP, IPv6, port 0, an untagged port) and reports
 * what it saw; the test checks both which calls classify took as the
 * policy's and what the program observed: the group's real port behind
 * the virtual one, shown as the virtual one.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../helpers/psaddr.h"
#include "config.h"
#include "filter.h"
#include "fixture.h"
#include "registry.h"
#include "sv.h"
#include "sv_notif.h"
#include "target.h"

#define COOKIE 0x51d3c0ffee7e5701ull
#define VPORT 8080
#define GROUP "sv-handlers"

/* What the child saw, in the order it did it. */
struct seen {
	int bind_tcp;	    /* bind(127.0.0.1:8080), 0 or errno */
	int name_tcp;	    /* its getsockname port */
	int connect_tcp;    /* connect(127.0.0.1:8080) */
	int peer_tcp;	    /* getpeername port of that connection */
	int accepted;	    /* the listener accepted it */
	long send_plain;    /* sendto without MSG_FASTOPEN: bytes */
	char got_plain;	    /* what the server side read */
	int name_zero;	    /* bind to port 0: its getsockname port */
	int bind_untagged;  /* bind(127.0.0.1:a free untagged port) */
	int name_untagged;  /* its getsockname port */
	int bind_udp;	    /* UDP bind(127.0.0.1:8080) */
	long send_udp;	    /* UDP sendto(127.0.0.1:8080): bytes */
	char got_udp[4];    /* what the UDP socket bound to 8080 read */
	long send_fastopen; /* sendto with MSG_FASTOPEN: bytes or -errno */
	int accepted_fo;    /* the listener accepted that connection */
	int bind_v6;	    /* bind([::1]:8080) */
	int name_v6;	    /* its getsockname port */
	int done;	    /* 1 when the child got to the end */
};

static int sock_port(int fd, bool peer)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &len) :
		    getsockname(fd, (struct sockaddr *)&ss, &len)) != 0)
		return -errno;
	return psh_port(&ss);
}

static struct sockaddr_in v4(uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons(port);
	return a;
}

#define SA(a) ((struct sockaddr *)&(a))
#define RC(call) ((call) == 0 ? 0 : errno)

/* What the host can do, for child mode's optional parts. */
#define CAN_FASTOPEN 1 /* net.ipv4.tcp_fastopen lets clients use it */
#define CAN_IPV6 2     /* ::1 can be bound */

/*
 * Child mode: the calls, under the filter, with the group's variables;
 * untagged is a free port outside PORTSHIM_PORTS, can says what the host
 * can do. The alarm the test set before the exec bounds a hang (a call
 * the supervisor got wrong may leave a recv waiting for ever).
 */
static int child_mode(int report, uint16_t untagged, int can)
{
	struct seen s;
	struct sockaddr_in a = v4(VPORT), z = v4(0), u = v4(untagged);
	struct sockaddr_in6 a6;
	int lis, cli, srv, zero, unt, u1, u2, fo, srv2, s6;

	memset(&s, 0, sizeof(s));
	lis = socket(AF_INET, SOCK_STREAM, 0);
	s.bind_tcp = RC(bind(lis, SA(a), sizeof(a)));
	listen(lis, 8);
	s.name_tcp = sock_port(lis, false);

	cli = socket(AF_INET, SOCK_STREAM, 0);
	s.connect_tcp = RC(connect(cli, SA(a), sizeof(a)));
	s.peer_tcp = sock_port(cli, true);
	srv = s.connect_tcp == 0 ? accept(lis, NULL, NULL) : -1;
	s.accepted = srv >= 0;
	/* On a connected TCP socket the kernel ignores the address. */
	s.send_plain = sendto(cli, "p", 1, 0, SA(a), sizeof(a));
	if (srv >= 0 && read(srv, &s.got_plain, 1) != 1)
		s.got_plain = 0;

	zero = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(zero, SA(z), sizeof(z)) == 0)
		s.name_zero = sock_port(zero, false);
	unt = socket(AF_INET, SOCK_STREAM, 0);
	s.bind_untagged = RC(bind(unt, SA(u), sizeof(u)));
	s.name_untagged = sock_port(unt, false);

	u1 = socket(AF_INET, SOCK_DGRAM, 0);
	u2 = socket(AF_INET, SOCK_DGRAM, 0);
	s.bind_udp = RC(bind(u1, SA(a), sizeof(a)));
	s.send_udp = sendto(u2, "udp", 3, 0, SA(a), sizeof(a));
	if (recv(u1, s.got_udp, sizeof(s.got_udp) - 1, 0) < 0)
		s.got_udp[0] = '\0';

	if (can & CAN_FASTOPEN) {
		fo = socket(AF_INET, SOCK_STREAM, 0);
		s.send_fastopen =
			sendto(fo, "f", 1, MSG_FASTOPEN, SA(a), sizeof(a));
		if (s.send_fastopen < 0)
			s.send_fastopen = -errno;
		srv2 = s.send_fastopen == 1 ? accept(lis, NULL, NULL) : -1;
		s.accepted_fo = srv2 >= 0;
	}
	if (!(can & CAN_IPV6))
		goto out;
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	a6.sin6_addr = in6addr_loopback;
	a6.sin6_port = htons(VPORT);
	s6 = socket(AF_INET6, SOCK_STREAM, 0);
	s.bind_v6 = RC(bind(s6, SA(a6), sizeof(a6)));
	s.name_v6 = sock_port(s6, false);
out:
	s.done = 1;
	return write(report, &s, sizeof(s)) == (ssize_t)sizeof(s) ? 0 : 3;
}

/* Calls in order, and whether classify took each (handed it to ps_sv_act):
 * what happened, or what should have. */
struct calls {
	int nr[64];
	bool ours[64];
	size_t n;
};

static void add_call(struct calls *c, int nr, bool ours)
{
	assert_true(c->n < sizeof(c->nr) / sizeof(c->nr[0]));
	c->nr[c->n] = nr;
	c->ours[c->n] = ours;
	c->n++;
}

/* One notification, as supervise.c's loop handles it (acted on here). */
static void handle(struct ps_supervisor *sv, const struct seccomp_notif *req,
		   struct calls *v)
{
	enum ps_sv_verdict verdict;
	struct ps_sv_call *c = ps_sv_take(sv, req, &verdict);

	add_call(v, req->data.nr, verdict == PS_SV_WORK);
	if (c != NULL) {
		ps_sv_act(sv, c);
		ps_sv_call_free(c);
	}
}

/* Lives as long as the process, as a supervisor's tables do (target.h). */
static struct ps_supervisor the_sv;

/* The child's environment: ours without PORTSHIM_* (and without the
 * preload, were the test itself run under portshim), plus the group's. */
static char **child_env(const char *reg)
{
	extern char **environ;
	static char ports[] = "PORTSHIM_PORTS=8080";
	static char group[] = "PORTSHIM_GROUP=" GROUP;
	static char regvar[PATH_MAX + 32];
	size_t n = 0, o = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = calloc(n + 4, sizeof(*env));
	assert_non_null(env);
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "PORTSHIM_", 9) != 0 &&
		    !(strncmp(environ[i], "LD_PRELOAD=", 11) == 0 &&
		      strstr(environ[i], "portshim") != NULL))
			env[o++] = environ[i];
	snprintf(regvar, sizeof(regvar), "PORTSHIM_REGISTRY=%s", reg);
	env[o++] = ports;
	env[o++] = group;
	env[o++] = regvar;
	env[o] = NULL;
	return env;
}

/* The registry's folder (fixture.h), and the child while it runs. */
static struct fixture fx = { .name = "ps-sv-handlers" };
static pid_t child_pid;

static bool in_range(int port)
{
	return port >= PS_RANGE_LO_DEFAULT && port <= PS_RANGE_HI_DEFAULT;
}

/*
 * A loopback TCP port free now, below portshim's range and the kernel's
 * ephemeral ports (where other programs' connects take theirs), and not
 * 8080.
 */
static uint16_t free_port(void)
{
	uint16_t port;

	for (port = 15000; port < PS_RANGE_LO_DEFAULT; port++) {
		struct sockaddr_in a = v4(port);
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		assert_return_code(fd, errno);
		ok = bind(fd, SA(a), sizeof(a)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	fail_msg("no free port in 15000-%d", PS_RANGE_LO_DEFAULT - 1);
	return 0;
}

/* CAN_* for this host: TCP fast open for clients, IPv6 on loopback. */
static int host_can(void)
{
	struct sockaddr_in6 a6;
	char buf[16] = "";
	int can = 0, fd;
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_fastopen", "r");

	if (f != NULL) {
		if (fgets(buf, sizeof(buf), f) != NULL && (atoi(buf) & 1))
			can |= CAN_FASTOPEN;
		fclose(f);
	}
	memset(&a6, 0, sizeof(a6));
	a6.sin6_family = AF_INET6;
	a6.sin6_addr = in6addr_loopback;
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd >= 0 && bind(fd, SA(a6), sizeof(a6)) == 0)
		can |= CAN_IPV6;
	if (fd >= 0)
		close(fd);
	return can;
}

static void test_sv_handlers_calls(void **state)
{
	struct ps_supervisor *sv = &the_sv;
	struct seccomp_notif *req;
	struct seccomp_notif_sizes sizes;
	struct ps_lease *l;
	struct calls v;
	struct seen s;
	struct pollfd p[2];
	char why[512];
	char self[PATH_MAX], fdarg[16], untarg[8], canarg[4], **env;
	int up[2], down[2], lfd, report[2], st, can;
	uint16_t untagged;
	sigset_t alrm;
	pid_t parent;
	size_t req_size, got = 0;
	ssize_t n;
	ssize_t len;
	pid_t pid;
	char ack;

	(void)state;
	if (ps_sv_kernel_check(why, sizeof(why)) != 0)
		skip();
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(len > 0);
	self[len] = '\0';
	env = child_env(fx.path);
	untagged = free_port();
	can = host_can();

	memset(sv, 0, sizeof(*sv));
	sv->cookie = COOKIE;
	sv->stop[0] = sv->stop[1] = -1;
	assert_int_equal(ps_sv_filter_build(&sv->filter, COOKIE), 0);
	assert_int_equal(
		syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes), 0);
	sv->resp_size = sizes.seccomp_notif_resp;
	req = sv_notif_alloc(&req_size);
	sv->notif_size = req_size;
	assert_int_equal(ps_sv_targets_init(&sv->targets, COOKIE), 0);
	pthread_mutex_init(&sv->mu, NULL);
	pthread_mutex_init(&sv->rec_mu, NULL);
	assert_return_code(pipe(report), errno);

	parent = getpid();
	pid = child_pid = sv_fork(up, down);
	if (pid == 0) {
		int fd;

		/* Never left behind: it dies with the test, and the alarm
		 * (kept across exec, at its default) bounds a hang. */
		close(report[0]);
		close(up[0]);
		close(down[1]);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    getppid() != parent)
			_exit(5);
		signal(SIGALRM, SIG_DFL);
		sigemptyset(&alrm);
		sigaddset(&alrm, SIGALRM);
		sigprocmask(SIG_UNBLOCK, &alrm, NULL);
		alarm(120);
		fd = ps_sv_filter_install(&sv->filter);
		if (write(up[1], &fd, sizeof(fd)) != sizeof(fd) || fd < 0 ||
		    read(down[0], &ack, 1) != 1)
			_exit(2);
		close(fd);
		snprintf(fdarg, sizeof(fdarg), "%d", report[1]);
		snprintf(untarg, sizeof(untarg), "%u", untagged);
		snprintf(canarg, sizeof(canarg), "%d", can);
		execve(self,
		       (char *[]){ self, "--child", fdarg, untarg, canarg,
				   NULL },
		       env);
		_exit(127);
	}
	close(report[1]);
	free(env);
	assert_int_equal(read(up[0], &lfd, sizeof(lfd)), sizeof(lfd));
	lfd = sv_take_fd(pid, lfd);
	sv->listener = lfd;
	assert_int_equal(write(down[1], "", 1), 1);

	/* Serve the child's calls until its report is in. */
	memset(&v, 0, sizeof(v));
	memset(&s, 0, sizeof(s));
	for (;;) {
		p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = report[0], .events = POLLIN };
		assert_true(poll(p, 2, 120000) > 0);
		if (p[0].revents & POLLIN) {
			memset(req, 0, req_size);
			if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, req) == 0)
				handle(sv, req, &v);
			continue;
		}
		if (p[1].revents == 0)
			continue;
		n = read(report[0], (char *)&s + got, sizeof(s) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	child_pid = 0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(got, sizeof(s));
	assert_int_equal(s.done, 1);

	/* What classify took as the policy's, call by call (the first is
	 * the exec that started child mode: never ours). A port the kernel
	 * picks (port 0's, the free untagged one) is outside portshim's
	 * range on a usual host; inside it, the supervisor checks it. */
	{
		struct calls w = { 0 };
		size_t i;

		add_call(&w, SYS_execve, false);
		add_call(&w, SYS_bind, true);
		add_call(&w, SYS_getsockname, true);
		add_call(&w, SYS_connect, true);
		add_call(&w, SYS_getpeername, true);
		add_call(&w, SYS_sendto, false);
		add_call(&w, SYS_bind, false);
		add_call(&w, SYS_getsockname, in_range(s.name_zero));
		add_call(&w, SYS_bind, false);
		add_call(&w, SYS_getsockname, in_range(untagged));
		add_call(&w, SYS_bind, true);
		add_call(&w, SYS_sendto, true);
		if (can & CAN_FASTOPEN)
			add_call(&w, SYS_sendto, true);
		if (can & CAN_IPV6) {
			add_call(&w, SYS_bind, true);
			add_call(&w, SYS_getsockname, true);
		}
		for (i = 0; i < v.n && i < w.n; i++) {
			if (v.nr[i] != w.nr[i] || v.ours[i] != w.ours[i])
				fail_msg("call %zu: nr %d %s, wanted nr %d %s",
					 i, v.nr[i],
					 v.ours[i] ? "ours" : "not ours",
					 w.nr[i],
					 w.ours[i] ? "ours" : "not ours");
		}
		assert_int_equal(v.n, w.n);
	}

	/* What the program saw: the virtual port everywhere. */
	assert_int_equal(s.bind_tcp, 0);
	assert_int_equal(s.name_tcp, VPORT);
	assert_int_equal(s.connect_tcp, 0);
	assert_int_equal(s.peer_tcp, VPORT);
	assert_int_equal(s.accepted, 1);
	assert_int_equal(s.send_plain, 1);
	assert_int_equal(s.got_plain, 'p');
	assert_true(s.name_zero > 0 && s.name_zero != VPORT);
	assert_int_equal(s.bind_untagged, 0);
	assert_int_equal(s.name_untagged, untagged);
	assert_int_equal(s.bind_udp, 0);
	assert_int_equal(s.send_udp, 3);
	assert_string_equal(s.got_udp, "udp");
	if (can & CAN_FASTOPEN) {
		assert_int_equal(s.send_fastopen, 1);
		assert_int_equal(s.accepted_fo, 1);
	}
	if (can & CAN_IPV6) {
		assert_int_equal(s.bind_v6, 0);
		assert_int_equal(s.name_v6, VPORT);
	}

	/* And behind it, the group's real port. */
	l = ps_registry_find(&fx.reg, GROUP, VPORT);
	assert_non_null(l);
	assert_int_not_equal(ps_registry_port(&fx.reg, l), VPORT);
	assert_true(l->protos != 0);

	ps_sv_targets_clear(&sv->targets);
	close(lfd);
	close(up[0]);
	close(down[1]);
	close(report[0]);
	free(req);
}

/*
 * The child is not left behind after a failed check; then fx_teardown
 * gives back the claims of the child's leases and removes the folder.
 */
static int teardown(void **state)
{
	if (child_pid > 0) {
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
		child_pid = 0;
	}
	return fx_teardown(state);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate_setup_teardown(
			test_sv_handlers_calls, fx_setup, teardown, &fx),
	};

	if (argc == 5 && strcmp(argv[1], "--child") == 0)
		return child_mode(atoi(argv[2]), (uint16_t)atoi(argv[3]),
				  atoi(argv[4]));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
