/* SPDX-License-Identifier: MIT */
/*
 * pick.c - probing and leasing ports for `portshim pick`, the C API and
 * the portserver.
 *
 * The probe runs with the registry lock held, inside ps_registry_alloc:
 * between the probe and the lease nobody who coordinates through the
 * registry can take the number, and afterwards the lease keeps it. A
 * program outside portshim could still bind the number after the probe;
 * that is the hole every port picker has, and the reason the lease is
 * taken by number, not by socket.
 */
#include <dlfcn.h>
#include <errno.h>
#include <gnu/lib-names.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pick.h"
#include "supcall.h"

typedef long (*pick_syscall_fn)(long, ...);
typedef int (*pick_bind_fn)(int, const struct sockaddr *, socklen_t);

/*
 * libc's own syscall() and bind(), looked up in libc itself. When the
 * preload library is in this process (`portshim pick` run by a wrapped
 * script, a program using the C API under `portshim run`), the names
 * bind and syscall are the shim's: a probe of a tagged number would be
 * rewritten to another port, and the shim would wait for the registry
 * lock that this thread holds. dlsym on libc's handle skips every
 * interposer. Two threads resolving at once store the same values.
 */
static pick_syscall_fn libc_syscall;
static pick_bind_fn libc_bind;
static uint64_t sv_cookie;
static int resolved;

static void pick_resolve(void)
{
	void *h;

	if (__atomic_load_n(&resolved, __ATOMIC_ACQUIRE))
		return;
	h = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
	if (h != NULL) {
		__atomic_store_n(&libc_syscall,
				 (pick_syscall_fn)dlsym(h, "syscall"),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&libc_bind, (pick_bind_fn)dlsym(h, "bind"),
				 __ATOMIC_RELAXED);
		/* libc stays loaded for the life of the process anyway. */
	}
	/*
	 * Under `portshim run --supervise` the kernel stops every bind for
	 * the supervisor unless it carries the supervisor's cookie
	 * (supcall.h). A probe is portshim's own call, never to be
	 * rewritten: with the cookie it goes straight to the kernel. (The
	 * supervisor would also let it through unchanged, seeing that the
	 * caller holds the registry lock, but only after a round trip.)
	 */
	if (!ps_supcall_env_cookie(&sv_cookie))
		sv_cookie = 0;
	__atomic_store_n(&resolved, 1, __ATOMIC_RELEASE);
}

/* bind(2) as the kernel sees it, never rewritten. Returns 0 or -errno. */
static int probe_bind(int fd, const struct sockaddr *a, socklen_t len)
{
	pick_syscall_fn sc;
	pick_bind_fn b;
	long rc;

	pick_resolve();
	sc = __atomic_load_n(&libc_syscall, __ATOMIC_RELAXED);
	b = __atomic_load_n(&libc_bind, __ATOMIC_RELAXED);
#ifdef SYS_bind
	if (sc != NULL) {
		rc = sc(SYS_bind, (long)fd, (long)a, (long)len, 0L, 0L,
			(long)sv_cookie);
		return rc == 0 ? 0 : -errno;
	}
#endif
	/* A static program has no libc to look into: bind is libc's. */
	rc = b != NULL ? b(fd, a, len) : bind(fd, a, len);
	return rc == 0 ? 0 : -errno;
}

/*
 * Opens one probe socket of family and type bound to the wildcard address
 * and port (listening, for TCP) into *fd. Returns 0 or -errno; *fd is
 * set whenever a socket was made, for the caller to close.
 */
static int probe_one(int family, int type, uint16_t port, int *fd)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} a;
	socklen_t len;
	int one = 1;
	int rc;

	*fd = socket(family, type | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	if (family == AF_INET) {
		a.in.sin_family = AF_INET;
		a.in.sin_port = htons(port);
		a.in.sin_addr.s_addr = htonl(INADDR_ANY);
		len = sizeof(a.in);
	} else {
		/*
		 * V6ONLY: the IPv4 probe is still open, and a dual-stack
		 * socket would clash with it. The two together cover what a
		 * dual-stack bind would check.
		 */
		if (setsockopt(*fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			       sizeof(one)) != 0)
			return -errno;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons(port);
		a.in6.sin6_addr = in6addr_any;
		len = sizeof(a.in6);
	}
	rc = probe_bind(*fd, &a.sa, len);
	if (rc == 0 && type == SOCK_STREAM && listen(*fd, 1) != 0)
		rc = -errno;
	return rc;
}

int ps_pick_probe(uint16_t port, unsigned protos)
{
	static const struct {
		int family, type;
		enum ps_proto proto;
	} probes[] = {
		{ AF_INET, SOCK_STREAM, PS_TCP },
		{ AF_INET6, SOCK_STREAM, PS_TCP },
		{ AF_INET, SOCK_DGRAM, PS_UDP },
		{ AF_INET6, SOCK_DGRAM, PS_UDP },
	};
	int fds[sizeof(probes) / sizeof(probes[0])];
	size_t i;
	int rc = 0;

	if (port == 0)
		return -EINVAL;
	if (protos == 0)
		protos = PS_PROTO_BIT(PS_TCP) | PS_PROTO_BIT(PS_UDP);
	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		fds[i] = -1;
	/* All probe sockets stay open until the end, so that the IPv6 and
	 * UDP probes cannot be fooled by the TCP IPv4 one's absence. */
	for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		if (!(protos & PS_PROTO_BIT(probes[i].proto)))
			continue;
		rc = probe_one(probes[i].family, probes[i].type, port, &fds[i]);
		/* No IPv6 on this host: IPv4 is all there is to check. */
		if (probes[i].family == AF_INET6 &&
		    (rc == -EAFNOSUPPORT || rc == -EPROTONOSUPPORT ||
		     rc == -EADDRNOTAVAIL))
			rc = 0;
		if (rc != 0)
			break;
	}
	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

/* ps_try_bind_fn for ps_registry_alloc: arg points at the protos. */
static int pick_try(void *arg, uint16_t real)
{
	return ps_pick_probe(real, *(const unsigned *)arg);
}

int ps_pick(struct ps_registry *reg, const struct ps_pick_req *req,
	    uint16_t *ports, unsigned count)
{
	struct ps_reg_guard g;
	struct ps_lease tmpl;
	unsigned protos = req->protos;
	unsigned got = 0;
	int rc;

	if (count == 0 || count > PS_PICK_MAX || req->lo == 0 ||
	    req->hi < req->lo || req->holder.pid == 0 ||
	    (req->group[0] != '\0' && !ps_group_valid(req->group)) ||
	    (protos & ~(PS_PROTO_BIT(PS_TCP) | PS_PROTO_BIT(PS_UDP))) != 0)
		return -EINVAL;
	memset(&tmpl, 0, sizeof(tmpl));
	tmpl.kind = PS_KIND_PICK;
	tmpl.maker = req->holder;
	tmpl.holder = req->holder;
	tmpl.expires_ns = req->expires_ns;
	memcpy(tmpl.group, req->group, sizeof(tmpl.group));
	tmpl.group[PS_GROUP_MAX] = '\0';

	rc = ps_registry_lock(reg, &g);
	if (rc)
		return rc;
	/*
	 * Checked under the lock: a holder that is already gone would leave
	 * a lease that the next gc frees, a port handed out for nothing.
	 */
	if (!ps_proc_alive(&req->holder)) {
		rc = -ESRCH;
		goto out;
	}
	for (got = 0; got < count; got++) {
		rc = ps_registry_alloc(reg, &tmpl, req->lo, req->hi,
				       req->reserved, pick_try, &protos,
				       &ports[got]);
		if (rc)
			break;
	}
	if (rc) {
		for (unsigned i = 0; i < got; i++) {
			struct ps_lease *l = ps_registry_at(reg, ports[i]);

			if (l != NULL)
				ps_registry_free(reg, l);
		}
	}
out:
	ps_registry_unlock(reg, &g);
	return rc;
}

static bool ident_eq(const struct ps_ident *a, const struct ps_ident *b)
{
	return a->pid == b->pid && a->start == b->start;
}

int ps_pick_release(struct ps_registry *reg, uint16_t port,
		    const struct ps_ident *owners, size_t n, bool force,
		    struct ps_lease *old)
{
	struct ps_reg_guard g;
	struct ps_lease *l;
	bool mine = force;
	int rc;

	rc = ps_registry_lock(reg, &g);
	if (rc)
		return rc;
	l = port != 0 ? ps_registry_at(reg, port) : NULL;
	if (l == NULL) {
		rc = -ENOENT;
		goto out;
	}
	if (old != NULL)
		*old = *l;
	if (l->kind != PS_KIND_PICK) {
		rc = -EINVAL;
		goto out;
	}
	for (size_t i = 0; i < n && !mine; i++)
		mine = ident_eq(&owners[i], &l->holder);
	if (!mine) {
		rc = -EPERM;
		goto out;
	}
	ps_registry_free(reg, l);
out:
	ps_registry_unlock(reg, &g);
	return rc;
}
