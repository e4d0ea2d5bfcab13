/* SPDX-License-Identifier: MIT */
/*
 * psproc.c - processes, threads and signal handlers under the shim, run
 * by `portshim run --ports 8080-8099,9000-9015`:
 *
 *   psproc fork       the first shim call made in a child after fork();
 *                     children forked while other threads are inside
 *                     the shim; a server restarted in each child gets
 *                     the same real port back
 *   psproc exec       a child exec'd with an environment rebuilt from
 *                     LD_PRELOAD and PORTSHIM_* only, through execve,
 *                     posix_spawn and vfork, stays in the group; one
 *                     without PORTSHIM_* is not in it
 *   psproc threads    16 threads bind 16 ports and connect to all of
 *                     them at once
 *   psproc signals    a signal handler calls connect() and sendto()
 *                     while the main thread is busy in the shim, and a
 *                     handler makes a process's very first shim call
 *   psproc reuseport  4 worker processes listen with SO_REUSEPORT on one
 *                     virtual port: one real port, connections spread
 *   psproc client PORT TOKEN
 *                     connect to 127.0.0.1:PORT and exit 0 if the
 *                     server's greeting is TOKEN (the exec'd child)
 *
 * Output: check lines for the shell test to relay (psh.h).
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "psh.h"

extern char **environ;

#define FORK_FIRST 8080
#define FORK_SRV 8081
#define FORK_RESTART 8082
#define EXEC_SRV 8083
#define SIG_TCP 8090
#define SIG_UDP 8091
#define SIG_BIND 8092
#define SIG_FIRST 8093
#define REUSE 8094
#define THREAD_BASE 9000

#define NTHREADS 16
#define NCHILDREN 16
#define NWORKERS 4

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A listener on 127.0.0.1:port through the shim, or -1. */
static int listener(uint16_t port, bool reuseport)
{
	union psh_addr a;
	socklen_t len = psh_addr(&a, "127.0.0.1", port);
	int one = 1;
	int fd = psh_socket(AF_INET, SOCK_STREAM);

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, &a.sa, len) != 0 || listen(fd, 4096) != 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Connects to 127.0.0.1:port and reads the greeting into buf. */
static bool fetch_into(uint16_t port, char *buf, size_t len)
{
	union psh_addr a;
	socklen_t alen = psh_addr(&a, "127.0.0.1", port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0)
		return false;
	psh_timeout(fd, 5);
	if (connect(fd, &a.sa, alen) != 0) {
		close(fd);
		return false;
	}
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

static bool fetch(uint16_t port, const char *want)
{
	char buf[64];

	return fetch_into(port, buf, sizeof(buf)) && strcmp(buf, want) == 0;
}

struct server {
	int lfd;
	char token[32];
};

/* Answers every connection with the token, until the process ends. */
static void *serve(void *p)
{
	struct server *s = p;

	for (;;) {
		int c = accept(s->lfd, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		if (write(c, s->token, strlen(s->token)) < 0)
			(void)0; /* the client went away */
		close(c);
	}
}

/* Starts a server thread on port; the struct lives for the process. */
static bool start_server(uint16_t port, const char *token)
{
	struct server *s = calloc(1, sizeof(*s));
	pthread_t th;

	s->lfd = listener(port, false);
	if (s->lfd < 0) {
		psh_diag("listen on %u: %s", port, strerror(errno));
		return false;
	}
	snprintf(s->token, sizeof(s->token), "%s", token);
	pthread_create(&th, NULL, serve, s);
	pthread_detach(th);
	return true;
}

/* Waits for a byte on fd (60 s at most, a safety net). */
static bool wait_byte(int fd, char *c)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 60000) == 1 && read(fd, c, 1) == 1;
}

/* Waits for pid (60 s at most, a safety net); returns its exit status,
 * or -1. */
static int wait_child(pid_t pid)
{
	int st;

	for (int i = 0; i < 6000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) :
					       128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -1;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* ------------------------------------------------------------ fork */

static volatile bool busy_stop;

static void *busy(void *p)
{
	(void)p;
	while (!__atomic_load_n(&busy_stop, __ATOMIC_RELAXED))
		fetch(FORK_SRV, "parent");
	return NULL;
}

static void test_fork(void)
{
	pthread_t th[4];
	int pfd[2], rfd[2];
	uint16_t first = 0, port;
	bool all_ok = true, same = true;
	pid_t pid;
	char c;

	/* The child's very first shim call comes after fork(). */
	if (pipe(pfd) != 0)
		exit(99);
	pid = fork();
	if (pid == 0) {
		int lfd = listener(FORK_FIRST, false);
		int a;

		if (lfd < 0)
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		a = accept(lfd, NULL, NULL);
		if (write(a, "child", 5) != 5)
			_exit(1);
		close(a);
		_exit(0);
	}
	psh_check(wait_byte(pfd[0], &c) && fetch(FORK_FIRST, "child"),
		  "a server whose first shim call follows fork() is reached "
		  "by its parent");
	psh_check(wait_child(pid) == 0, "... and that child exits 0");
	close(pfd[0]);
	close(pfd[1]);

	/*
	 * Children forked while four threads keep connecting through the
	 * shim (and so hold the registry lock at random moments): each
	 * reaches the parent's server and binds a tagged port.
	 */
	if (!start_server(FORK_SRV, "parent"))
		return;
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, busy, NULL);
	if (pipe(rfd) != 0)
		exit(99);
	for (int i = 0; i < NCHILDREN; i++) {
		pid = fork();
		if (pid == 0) {
			int lfd;

			if (!fetch(FORK_SRV, "parent"))
				_exit(2);
			lfd = listener(FORK_RESTART, false);
			if (lfd < 0)
				_exit(3);
			port = psh_raw_port(lfd);
			if (write(rfd[1], &port, sizeof(port)) !=
			    (ssize_t)sizeof(port))
				_exit(4);
			_exit(0);
		}
		if (wait_child(pid) != 0) {
			all_ok = false;
			continue;
		}
		if (read(rfd[0], &port, sizeof(port)) != (ssize_t)sizeof(port))
			all_ok = false;
		else if (first == 0)
			first = port;
		else if (port != first)
			same = false;
	}
	__atomic_store_n(&busy_stop, true, __ATOMIC_RELAXED);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	psh_check(all_ok,
		  "%d children forked from a busy multi-threaded "
		  "process reach its server and bind %d",
		  NCHILDREN, FORK_RESTART);
	psh_check(same && psh_in_range(first),
		  "the server restarted in each child gets real port %u back",
		  first);
}

/* ------------------------------------------------------------ exec */

/* The environment a program that rebuilds it would pass on: only the
 * preload, portshim's variables (and the sanitizer build's options). */
static char **rebuilt_env(bool with_portshim)
{
	static char *env[64];
	size_t n = 0;

	for (char **e = environ; *e != NULL && n < 63; e++) {
		if (strncmp(*e, "LD_PRELOAD=", 11) == 0 ||
		    strncmp(*e, "ASAN_OPTIONS=", 13) == 0 ||
		    strncmp(*e, "UBSAN_OPTIONS=", 14) == 0 ||
		    (with_portshim && strncmp(*e, "PORTSHIM_", 9) == 0))
			env[n++] = *e;
	}
	env[n] = NULL;
	return env;
}

static void test_exec(void)
{
	char *argv[] = { "psproc", "client", "8083", "parent", NULL };
	char **env = rebuilt_env(true);
	pid_t pid;
	int rc;

	if (!start_server(EXEC_SRV, "parent"))
		return;

	pid = fork();
	if (pid == 0) {
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	psh_check(wait_child(pid) == 0,
		  "a child exec'd with a rebuilt "
		  "environment (LD_PRELOAD, PORTSHIM_*) reaches the group");

	rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, env);
	psh_check(rc == 0 && wait_child(pid) == 0,
		  "a posix_spawn'd child reaches the group");

	pid = vfork();
	if (pid == 0) {
		execve("/proc/self/exe", argv, env);
		_exit(127);
	}
	psh_check(pid > 0 && wait_child(pid) == 0,
		  "a vfork+execve'd child reaches the group");

	pid = fork();
	if (pid == 0) {
		execve("/proc/self/exe", argv, rebuilt_env(false));
		_exit(127);
	}
	psh_check(wait_child(pid) == 1,
		  "a child without PORTSHIM_* (the "
		  "shim inert) does not reach the group's server");
}

static int cmd_client(char **argv)
{
	unsigned long port = strtoul(argv[0], NULL, 10);

	return fetch((uint16_t)port, argv[1]) ? 0 : 1;
}

/* ---------------------------------------------------------- threads */

struct thread_arg {
	pthread_barrier_t *bound, *go;
	int index;
	int bad;
};

static void *thread_main(void *p)
{
	struct thread_arg *arg = p;
	char token[16];
	int bad = 0;

	snprintf(token, sizeof(token), "t%d", arg->index);
	if (!start_server((uint16_t)(THREAD_BASE + arg->index), token))
		bad++;
	pthread_barrier_wait(arg->bound);
	for (int k = 0; k < NTHREADS; k++) {
		int j = (arg->index + k) % NTHREADS;

		snprintf(token, sizeof(token), "t%d", j);
		if (!fetch((uint16_t)(THREAD_BASE + j), token))
			bad++;
	}
	arg->bad = bad;
	return NULL;
}

static void test_threads(void)
{
	pthread_t th[NTHREADS];
	struct thread_arg arg[NTHREADS];
	pthread_barrier_t bound;
	int bad = 0;

	pthread_barrier_init(&bound, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		arg[i] = (struct thread_arg){ &bound, NULL, i, 0 };
		pthread_create(&th[i], NULL, thread_main, &arg[i]);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		bad += arg[i].bad;
	}
	psh_check(bad == 0,
		  "%d threads bind %d-%d at once and each of "
		  "%d connects reaches the right one (%d wrong)",
		  NTHREADS, THREAD_BASE, THREAD_BASE + NTHREADS - 1,
		  NTHREADS * NTHREADS, bad);
	pthread_barrier_destroy(&bound);
}

/* ---------------------------------------------------------- signals */

static union psh_addr sig_tcp, sig_udp;
static uint16_t sig_real;
static volatile sig_atomic_t h_ok, h_bad, h_sent;
static int h_active; /* handlers running now (atomic) */
/*
 * When the timer must stop (0: not armed). A handler past it stops the
 * timer itself: on a loaded machine a handler that waits for the registry
 * lock can take longer than the timer's period, and handlers run back to
 * back would then never let the main thread reach its own deadline.
 */
static double sig_end;
static int udp_received;     /* datagrams the counter got */
static uint32_t udp_dropped; /* the kernel's SO_RXQ_OVFL count */

/* Everything here is async-signal-safe, as the shim must be. */
static void on_signal(int sig)
{
	static const struct itimerval off = { { 0, 0 }, { 0, 0 } };
	int saved = errno;
	int fd;

	(void)sig;
	__atomic_add_fetch(&h_active, 1, __ATOMIC_SEQ_CST);
	/* clock_gettime and setitimer are async-signal-safe. */
	if (sig_end > 0 && now() >= sig_end)
		setitimer(ITIMER_REAL, &off, NULL);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		if (connect(fd, &sig_tcp.sa, sizeof(sig_tcp.in)) == 0 &&
		    psh_raw_peer(fd) == sig_real)
			h_ok++;
		else
			h_bad++;
		close(fd);
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		if (sendto(fd, "s", 1, 0, &sig_udp.sa, sizeof(sig_udp.in)) == 1)
			h_sent++;
		close(fd);
	}
	__atomic_sub_fetch(&h_active, 1, __ATOMIC_SEQ_CST);
	errno = saved;
}

/*
 * Counts the datagrams that arrive, and those the kernel dropped because
 * this thread was too slow (a loaded machine): SO_RXQ_OVFL reports the
 * socket's drop count with every datagram, so arrived + dropped is what
 * was delivered to the port.
 */
static void *udp_counter(void *p)
{
	int fd = *(int *)p;
	int one = 1;
	char b[8];
	char ctl[CMSG_SPACE(sizeof(uint32_t))];

	setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
	for (;;) {
		struct iovec iov = { b, sizeof(b) };
		struct msghdr m = { .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl,
				    .msg_controllen = sizeof(ctl) };
		struct cmsghdr *c;

		if (recvmsg(fd, &m, 0) <= 0)
			continue;
		for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SO_RXQ_OVFL) {
				uint32_t d;

				memcpy(&d, CMSG_DATA(c), sizeof(d));
				__atomic_store_n(&udp_dropped, d,
						 __ATOMIC_RELAXED);
			}
		__atomic_add_fetch(&udp_received, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

/* Arrived plus dropped, as far as the counter knows. */
static int udp_delivered(void)
{
	return __atomic_load_n(&udp_received, __ATOMIC_ACQUIRE) +
	       (int)__atomic_load_n(&udp_dropped, __ATOMIC_RELAXED);
}

static void *drain(void *p)
{
	int lfd = *(int *)p;

	for (;;) {
		int c = accept(lfd, NULL, NULL);

		if (c >= 0)
			close(c);
	}
	return NULL;
}

/* A process whose very first shim call is made by a signal handler. */
static void first_call_in_handler(void)
{
	int pfd[2], lfd, rc;
	pid_t pid;
	char c;

	if (pipe(pfd) != 0)
		exit(99);
	pid = fork();
	if (pid == 0) {
		/* No shim call before the handler's connect. */
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigaction(SIGUSR1, &sa, NULL);
		if (!wait_byte(pfd[0], &c) ||
		    read(pfd[0], &sig_real, sizeof(sig_real)) !=
			    (ssize_t)sizeof(sig_real))
			_exit(3);
		psh_addr(&sig_tcp, "127.0.0.1", SIG_FIRST);
		raise(SIGUSR1);
		_exit(h_ok == 1 && h_bad == 0 ? 0 : 10 + h_bad);
	}
	lfd = listener(SIG_FIRST, false);
	sig_real = psh_raw_port(lfd);
	if (write(pfd[1], "r", 1) != 1 ||
	    write(pfd[1], &sig_real, sizeof(sig_real)) !=
		    (ssize_t)sizeof(sig_real))
		exit(99);
	rc = wait_child(pid);
	if (rc != 0)
		psh_diag("the child exited with %d", rc);
	psh_check(rc == 0,
		  "a signal handler making a "
		  "process's first shim call (connect) reaches the real port");
	close(lfd);
	close(pfd[0]);
	close(pfd[1]);
}

static void test_signals(void)
{
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa;
	union psh_addr b;
	socklen_t blen = psh_addr(&b, "127.0.0.1", SIG_BIND);
	pthread_t t1, t2;
	int lfd, ufd, rounds = 0, main_bad = 0, main_sent = 0;
	double end;

	psh_addr(&sig_tcp, "127.0.0.1", SIG_TCP);
	psh_addr(&sig_udp, "127.0.0.1", SIG_UDP);
	first_call_in_handler();
	h_ok = h_bad = h_sent = 0;

	lfd = listener(SIG_TCP, false);
	sig_real = psh_raw_port(lfd);
	{
		union psh_addr u;
		socklen_t ulen = psh_addr(&u, "127.0.0.1", SIG_UDP);

		ufd = psh_socket(AF_INET, SOCK_DGRAM);
		if (bind(ufd, &u.sa, ulen) != 0)
			exit(99);
	}
	pthread_create(&t1, NULL, drain, &lfd);
	pthread_create(&t2, NULL, udp_counter, &ufd);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	/*
	 * The storm lasts until the handlers have run 100 times and the
	 * main thread has done 100 rounds, however slowly the machine lets
	 * either run; the deadline (60 s) only stops a storm that cannot
	 * end, and the checks below then fail.
	 */
	end = now() + 60.0;
	sig_end = end;
	setitimer(ITIMER_REAL, &it, NULL);
	while ((h_ok + h_bad < 100 || rounds < 100) && now() < end) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		int one = 1;

		/* A tagged bind (rebinding the lease), a send, a connect. */
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, &b.sa, blen) != 0 && errno != EINTR)
			main_bad++;
		if (sendto(fd, "m", 1, 0, &sig_udp.sa, sizeof(sig_udp.in)) == 1)
			main_sent++;
		close(fd);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(fd, &sig_tcp.sa, sizeof(sig_tcp.in)) != 0 ||
		    psh_raw_peer(fd) != sig_real)
			main_bad++;
		close(fd);
		rounds++;
	}
	setitimer(ITIMER_REAL, &off, NULL);
	/*
	 * A signal raised before the timer stopped may still be pending, and
	 * a handler may be running on another thread (the signal goes to any
	 * thread): ignoring the signal discards a pending one; then the
	 * running handlers are let finish before anything is counted.
	 */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGALRM, &sa, NULL);
	while (__atomic_load_n(&h_active, __ATOMIC_SEQ_CST) > 0)
		usleep(1000);
	/*
	 * Drops are only reported with a later datagram: markers are sent
	 * (and counted as sent) until the count is complete (60 s at most,
	 * a safety net).
	 */
	for (int i = 0; i < 6000; i++) {
		if (udp_delivered() >= h_sent + main_sent)
			break;
		if (i % 10 == 0 && sendto(ufd, "z", 1, 0, &sig_udp.sa,
					  sizeof(sig_udp.in)) == 1)
			main_sent++;
		usleep(10000);
	}
	psh_diag("%d rounds in the main thread; %d handler runs", rounds,
		 (int)(h_ok + h_bad));
	psh_check(h_ok >= 100 && h_bad == 0,
		  "signal handlers' connects all reach the real port "
		  "(%d ok, %d wrong)",
		  (int)h_ok, (int)h_bad);
	psh_check(main_bad == 0,
		  "the interrupted main thread's binds and "
		  "connects all succeed (%d failed)",
		  main_bad);
	psh_check(udp_delivered() == h_sent + main_sent,
		  "every datagram sent by handlers and main reaches the real "
		  "port (%d of %d; %u of them dropped by a slow reader)",
		  udp_delivered(), (int)h_sent + main_sent,
		  __atomic_load_n(&udp_dropped, __ATOMIC_RELAXED));
}

/* -------------------------------------------------------- reuseport */

static void test_reuseport(void)
{
	pid_t pids[NWORKERS];
	uint16_t ports[NWORKERS];
	int pfd[2];
	bool same = true, seen[NWORKERS] = { false };
	int distinct = 0, lfd;

	if (pipe(pfd) != 0)
		exit(99);
	for (int i = 0; i < NWORKERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct server s;

			s.lfd = listener(REUSE, true);
			snprintf(s.token, sizeof(s.token), "w%d", i);
			ports[i] = s.lfd >= 0 ? psh_raw_port(s.lfd) : 0;
			if (write(pfd[1], &ports[i], sizeof(ports[i])) < 0)
				_exit(1);
			serve(&s);
			_exit(0);
		}
	}
	for (int i = 0; i < NWORKERS; i++) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };

		if (poll(&p, 1, 10000) != 1 ||
		    read(pfd[0], &ports[i], sizeof(ports[i])) !=
			    (ssize_t)sizeof(ports[i]))
			ports[i] = 0;
		same = same && ports[i] != 0 && ports[i] == ports[0];
	}
	psh_check(same && psh_in_range(ports[0]),
		  "%d worker processes listening on %d with SO_REUSEPORT "
		  "share real port %u",
		  NWORKERS, REUSE, ports[0]);
	for (int i = 0; i < 64; i++) {
		char buf[16];

		if (fetch_into(REUSE, buf, sizeof(buf)) && buf[0] == 'w') {
			int w = atoi(buf + 1);

			if (w >= 0 && w < NWORKERS && !seen[w]) {
				seen[w] = true;
				distinct++;
			}
		}
	}
	psh_check(distinct >= 2,
		  "connections to %d are spread over the "
		  "workers (%d of %d answered)",
		  REUSE, distinct, NWORKERS);
	lfd = listener(REUSE, false);
	psh_check(lfd < 0 && errno == EADDRINUSE,
		  "a listener on %d without "
		  "SO_REUSEPORT: EADDRINUSE, as without portshim",
		  REUSE);
	for (int i = 0; i < NWORKERS; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
}

int main(int argc, char **argv)
{
	psh_kernel_init();
	if (argc == 4 && strcmp(argv[1], "client") == 0)
		return cmd_client(argv + 2);
	if (argc != 2) {
		fprintf(stderr, "usage: psproc fork|exec|threads|signals|"
				"reuseport | client PORT TOKEN\n");
		return 2;
	}
	if (strcmp(argv[1], "fork") == 0)
		test_fork();
	else if (strcmp(argv[1], "exec") == 0)
		test_exec();
	else if (strcmp(argv[1], "threads") == 0)
		test_threads();
	else if (strcmp(argv[1], "signals") == 0)
		test_signals();
	else if (strcmp(argv[1], "reuseport") == 0)
		test_reuseport();
	else {
		fprintf(stderr, "psproc: unknown test '%s'\n", argv[1]);
		return 2;
	}
	return psh_done();
}
