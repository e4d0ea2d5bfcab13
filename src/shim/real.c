/*
 * real.c - the table of real libc symbols.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "real.h"

struct ps_real ps_real_fns;

/* Raw system calls, used only when dlsym cannot give us libc's. */
static int sys_bind(int fd, const struct sockaddr *a, socklen_t l)
{
	return (int)syscall(SYS_bind, fd, a, l);
}

static int sys_connect(int fd, const struct sockaddr *a, socklen_t l)
{
	return (int)syscall(SYS_connect, fd, a, l);
}

static int sys_getsockname(int fd, struct sockaddr *a, socklen_t *l)
{
	return (int)syscall(SYS_getsockname, fd, a, l);
}

static int sys_getpeername(int fd, struct sockaddr *a, socklen_t *l)
{
	return (int)syscall(SYS_getpeername, fd, a, l);
}

/*
 * Our own exported definitions (declared by <sys/socket.h>): a lookup
 * that finds one of them is rejected.
 */

void *ps_real_lookup(const char *name, void *ours, void *fallback)
{
	void *p = dlsym(RTLD_NEXT, name);

	return p == NULL || p == ours ? fallback : p;
}

static void resolve_once(void)
{
	struct ps_real r;

	r.connect = ps_real_lookup("connect", (void *)connect, (void *)sys_connect);
	r.getsockname = ps_real_lookup("getsockname", (void *)getsockname,
			       (void *)sys_getsockname);
	r.getpeername = ps_real_lookup("getpeername", (void *)getpeername,
			       (void *)sys_getpeername);
	r.bind = ps_real_lookup("bind", (void *)bind, (void *)sys_bind);
	/*
	 * bind is stored last: ps_real() tests it to decide whether the
	 * table is complete, so it must not become visible before the rest.
	 */
	ps_real_fns.connect = r.connect;
	ps_real_fns.getsockname = r.getsockname;
	ps_real_fns.getpeername = r.getpeername;
	__atomic_store_n(&ps_real_fns.bind, r.bind, __ATOMIC_RELEASE);
}

void ps_real_resolve(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, resolve_once);
}

__attribute__((constructor)) static void real_ctor(void)
{
	ps_real_resolve();
}
