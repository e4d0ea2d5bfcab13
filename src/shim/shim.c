/* SPDX-License-Identifier: MIT */
/*
 * shim.c - the interposed socket calls of libportshim.so.
 *
 * Each exported function is a one-line trampoline into a static
 * ps_shim_* function. The fast path for everything portshim does not own
 * (other families, port 0, untagged ports, a disabled shim) is a few
 * comparisons and a call to the real function: no lock, no system call.
 *
 * Initialisation happens in two once-guarded stages: the configuration at
 * the first intercepted call (the environment is read then, so runners
 * that set PORTSHIM_GROUP_FROM variables after exec are seen), and the
 * registry at the first call that needs it. A thread-local guard sends
 * calls made during either stage straight to libc: a signal handler that
 * interrupts the once-guarded code and calls connect() would otherwise
 * wait for its own thread forever. Everything else the shim does is safe
 * to re-enter from a signal handler and in a child after fork(): no
 * allocation, no lock but the registry's (held with signals blocked).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "front.h"
#include "log.h"
#include "netstat.h"
#include "policy.h"
#include "real.h"
#include "shim.h"
#include "sockaddr.h"

struct ps_config ps_shim_cfg;
struct ps_policy ps_shim_pol;
__thread int ps_shim_depth __attribute__((tls_model("initial-exec")));

/* Short local names for the two globals of this file. */
#define cfg ps_shim_cfg
#define pol ps_shim_pol
#define in_shim ps_shim_depth

static bool active;	/* configuration says there is work to do */
static bool configured; /* load_config has run */
static bool ready;	/* policy initialised for our group */
static pthread_once_t config_once = PTHREAD_ONCE_INIT;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;

static int probe_port(void *arg, uint16_t real);

/*
 * Makes a fresh group name for a process that was not given one, and
 * exports it so that children started from now on share it.
 */
static void make_group(char *out, size_t len)
{
	ps_front_fresh_group(getpid(), out, len);
	setenv("PORTSHIM_GROUP", out, 0);
}

static void log_config_error(void *arg, const char *line, int len)
{
	(void)arg;
	PS_ERROR("%.*s", len, line);
}

static void load_config(void)
{
	char errs[2048] = "";
	char base[PS_GROUP_MAX + 1];
	int rc;

	rc = ps_config_load(&cfg, ps_env_secure, errs, sizeof(errs));
	ps_log_setup(cfg.log_level, cfg.log_file);
	/* One log line per invalid variable. */
	if (rc > 0)
		ps_config_each_error(errs, log_config_error, NULL);
	if (!cfg.enabled)
		return;
	if (cfg.group[0])
		snprintf(base, sizeof(base), "%s", cfg.group);
	else
		make_group(base, sizeof(base));
	/*
	 * Interface addresses are read now, while we are surely not in a
	 * signal handler; later refreshes are safe anywhere anyway.
	 */
	ps_sockaddr_host_refresh();
	/* The group and mapping file, as the supervisor resolves them. */
	if (ps_policy_setup(&pol, &cfg, ps_env_secure, base) != 0)
		return;
	pol.probe = probe_port;
	active = true;
}

static void open_registry(void)
{
	ps_policy_open(&pol);
	ready = true;
}

static void load_config_once(void)
{
	load_config();
	__atomic_store_n(&configured, true, __ATOMIC_RELEASE);
}

int ps_shim_io_uring(void)
{
	static int said;
	int saved = errno;
	bool fail;

	if (!ps_shim_active() || cfg.bypass == PS_BYPASS_IGNORE)
		goto out;
	fail = cfg.bypass == PS_BYPASS_FAIL;
	if (__atomic_exchange_n(&said, 1, __ATOMIC_RELAXED) == 0)
		PS_ERROR(
			"warning: this program sets up an io_uring "
			"(io_uring_setup): the binds and connects it makes "
			"through it do not reach portshim, which cannot "
			"move their ports. %s",
			fail ? "PORTSHIM_BYPASS=fail: io_uring_setup fails "
			       "with ENOSYS, so that the program uses plain "
			       "system calls" :
			       "Run it under 'portshim run --supervise' (which "
			       "refuses io_uring) or give it free ports yourself "
			       "(PORTSHIM_BYPASS=ignore silences this)");
	if (fail) {
		errno = saved;
		return -ENOSYS;
	}
out:
	errno = saved;
	return 0;
}

bool ps_shim_active(void)
{
	if (!__atomic_load_n(&configured, __ATOMIC_ACQUIRE)) {
		int saved = errno;

		in_shim++;
		pthread_once(&config_once, load_config_once);
		in_shim--;
		errno = saved;
	}
	return active;
}

void ps_shim_registry(void)
{
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		int saved = errno;

		in_shim++;
		pthread_once(&registry_once, open_registry);
		in_shim--;
		errno = saved;
	}
}

bool ps_shim_maybe(const struct sockaddr *addr, socklen_t len, uint16_t *vport)
{
	return !in_shim && ps_shim_active() &&
	       ps_front_candidate(&cfg, addr, len, vport);
}

int ps_shim_tagged(int fd, enum ps_front_op op, const struct sockaddr *addr,
		   socklen_t len, int flags, uint16_t *vport)
{
	int proto;

	if (!ps_shim_maybe(addr, len, vport))
		return -1;
	proto = ps_front_socket_proto(fd);
	if (!ps_front_ours(&cfg, op, proto, addr, *vport, flags))
		return -1;
	return proto;
}

/* ------------------------------------------------------------- bind */

struct bind_arg {
	int fd;
	const struct sockaddr *addr;
	socklen_t len;
};

/* The default probe of a new lease's number, with the real bind. */
static int probe_bind(void *arg, int fd, const struct sockaddr *addr,
		      socklen_t len)
{
	(void)arg;
	return ps_real()->bind(fd, addr, len);
}

static int probe_port(void *arg, uint16_t real)
{
	return ps_front_probe(real, probe_bind, arg);
}

/*
 * A TCP socket without SO_REUSEADDR whose bind to real failed because
 * real's only sockets are in TIME_WAIT (connections of servers that have
 * ended: a real port is reused across groups): gives the socket
 * SO_REUSEADDR, with which the kernel lets the bind through. It is never
 * a way to share a port: on Linux, SO_REUSEADDR lets no TCP bind succeed
 * where a socket listens, and a new lease's number was probed free of
 * everything else (docs/time-wait.md). The option stays set, as a
 * listen() after the bind checks the port again. Returns true if set;
 * errno is preserved.
 */
static bool reuse_timewait(int fd, uint16_t real)
{
	int saved = errno, type = 0, one = 1, reuse = 0;
	socklen_t len = sizeof(type);
	bool set = false;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	    type == SOCK_STREAM &&
	    (len = sizeof(reuse),
	     getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, &len)) == 0 &&
	    reuse == 0 && ps_netstat_timewait_only(real))
		set = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				 sizeof(one)) == 0;
	errno = saved;
	return set;
}

static int try_bind(void *arg, uint16_t real)
{
	struct bind_arg *b = arg;
	union ps_sockaddr copy;

	ps_sockaddr_copy_port(&copy, b->addr, b->len, real);
	if (ps_real()->bind(b->fd, &copy.sa, b->len) == 0)
		return 0;
	if (errno == EADDRINUSE && reuse_timewait(b->fd, real)) {
		int err, zero = 0;

		if (ps_real()->bind(b->fd, &copy.sa, b->len) == 0)
			return 0;
		/* Not the remnants after all: as the caller left it. */
		err = errno;
		setsockopt(b->fd, SOL_SOCKET, SO_REUSEADDR, &zero,
			   sizeof(zero));
		return -err;
	}
	return -errno;
}

/*
 * A bind that portshim did not rewrite failed with EADDRINUSE: with
 * PORTSHIM_LOG=info or debug, one line names who holds the port. Only
 * this failure path pays for the /proc scan. errno is preserved.
 */
static void bind_clash(int fd, const struct sockaddr *addr, socklen_t len)
{
	int saved = errno;
	char desc[96];
	uint16_t port;
	int proto;

	if (in_shim || !ps_sockaddr_port(addr, len, &port) || port == 0)
		goto out;
	/* The log level is known once the configuration is loaded. */
	ps_shim_active();
	if (ps_log_level() < PS_LOG_INFO)
		goto out;
	proto = ps_front_socket_proto(fd);
	if (proto < 0)
		goto out;
	if (active)
		ps_shim_registry();
	ps_front_describe(proto, addr, port, desc, sizeof(desc));
	ps_policy_clash(active ? &pol : NULL, proto, port, desc);
out:
	errno = saved;
}

/* The real bind, with the diagnostic of a clash. */
static int bind_untagged(int fd, const struct sockaddr *addr, socklen_t len)
{
	int rc = ps_real()->bind(fd, addr, len);

	if (rc != 0 && errno == EADDRINUSE)
		bind_clash(fd, addr, len);
	return rc;
}

int ps_shim_bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct bind_arg arg = { fd, addr, len };
	int saved = errno;
	char desc[96];
	uint16_t vport, real;
	int proto, rc;

	proto = ps_shim_tagged(fd, PS_FRONT_BIND, addr, len, 0, &vport);
	if (proto < 0) {
		errno = saved;
		return bind_untagged(fd, addr, len);
	}
	ps_shim_registry();
	/* Cheap (no stdio): failures are logged at the default level. */
	ps_front_describe(proto, addr, vport, desc, sizeof(desc));
	rc = ps_policy_bind(&pol, proto, vport, try_bind, &arg, &real, desc);
	if (rc == PS_PASS) {
		errno = saved;
		return bind_untagged(fd, addr, len);
	}
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	errno = saved;
	return 0;
}

/* ---------------------------------------------------------- connect */

int ps_shim_redirect(int proto, uint16_t vport, const struct sockaddr *addr,
		     socklen_t len, union ps_sockaddr *out)
{
	char desc[96] = "";
	uint16_t real;
	int rc;

	ps_shim_registry();
	if (ps_log_level() >= PS_LOG_INFO)
		ps_front_describe(proto, addr, vport, desc, sizeof(desc));
	rc = ps_policy_connect(&pol, proto, vport, &real, desc);
	if (rc == 0)
		ps_sockaddr_copy_port(out, addr, len, real);
	return rc;
}

int ps_shim_destination(int fd, enum ps_front_op op,
			const struct sockaddr *addr, socklen_t len, int flags,
			union ps_sockaddr *out)
{
	uint16_t vport;
	int proto;

	proto = ps_shim_tagged(fd, op, addr, len, flags, &vport);
	if (proto < 0)
		return PS_PASS;
	return ps_shim_redirect(proto, vport, addr, len, out);
}

static int ps_shim_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	union ps_sockaddr copy;
	int saved = errno;
	int rc = ps_shim_destination(fd, PS_FRONT_CONNECT, addr, len, 0, &copy);

	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	/* The real call sets errno (EINPROGRESS...) and the result. */
	errno = saved;
	if (rc == PS_PASS)
		return ps_real()->connect(fd, addr, len);
	return ps_real()->connect(fd, &copy.sa, len);
}

/* ---------------------------------------------------- reported names */

static void reverse(struct sockaddr *addr, socklen_t bufsize,
		    socklen_t reported, bool peer)
{
	int saved = errno;
	uint16_t port, vport;
	socklen_t have = reported < bufsize ? reported : bufsize;

	if (!in_shim && ps_shim_active() &&
	    ps_front_reported(&cfg, addr, have, peer, &port)) {
		ps_shim_registry();
		if (ps_policy_reverse(&pol, port, &vport) == 0)
			ps_sockaddr_patch_port(addr, bufsize, vport);
	}
	errno = saved;
}

void ps_shim_reverse(struct sockaddr *addr, socklen_t bufsize,
		     socklen_t reported)
{
	reverse(addr, bufsize, reported, false);
}

void ps_shim_reverse_peer(struct sockaddr *addr, socklen_t bufsize,
			  socklen_t reported)
{
	reverse(addr, bufsize, reported, true);
}

static int ps_shim_getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t bufsize = len ? *len : 0;
	int rc = ps_real()->getsockname(fd, addr, len);

	if (rc == 0)
		ps_shim_reverse(addr, bufsize, *len);
	return rc;
}

static int ps_shim_getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	socklen_t bufsize = len ? *len : 0;
	int rc = ps_real()->getpeername(fd, addr, len);

	if (rc == 0)
		ps_shim_reverse_peer(addr, bufsize, *len);
	return rc;
}

/* ------------------------------------------------------ trampolines */

PS_EXPORT int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	return ps_shim_bind(fd, PS_SA(addr), len);
}

PS_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	return ps_shim_connect(fd, PS_SA(addr), len);
}

/* glibc exports __connect too; programs and libraries may call it. */
PS_EXPORT int __connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len);
PS_EXPORT int __connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	return ps_shim_connect(fd, PS_SA(addr), len);
}

PS_EXPORT int getsockname(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	return ps_shim_getsockname(fd, PS_SA(addr), len);
}

PS_EXPORT int getpeername(int fd, __SOCKADDR_ARG addr, socklen_t *len)
{
	return ps_shim_getpeername(fd, PS_SA(addr), len);
}
