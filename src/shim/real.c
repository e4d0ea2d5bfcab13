/* SPDX-License-Identifier: MIT */
/*
 * real.c - the table of real libc symbols (real.h).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rawsys.h"
#include "real.h"
#include "supervised.h"

struct ps_real ps_real_fns;

/*
 * Raw system calls, used only when dlsym cannot give us libc's: straight
 * to the kernel (rawsys.h), never through the syscall() that this library
 * exports. Where rawsys.h knows no calling convention the socket calls
 * fail with ENOSYS (the exec calls and exit: see below).
 */
static int sys_bind(int fd, const struct sockaddr *a, socklen_t l)
{
	return (int)ps_rawsys_errno(ps_rawsys3(SYS_bind, fd, a, l));
}

static int sys_connect(int fd, const struct sockaddr *a, socklen_t l)
{
	return (int)ps_rawsys_errno(ps_rawsys3(SYS_connect, fd, a, l));
}

static int sys_getsockname(int fd, struct sockaddr *a, socklen_t *l)
{
	return (int)ps_rawsys_errno(ps_rawsys3(SYS_getsockname, fd, a, l));
}

static int sys_getpeername(int fd, struct sockaddr *a, socklen_t *l)
{
	return (int)ps_rawsys_errno(ps_rawsys3(SYS_getpeername, fd, a, l));
}

/* accept4 with no flags is accept (and some ports have no SYS_accept). */
static int sys_accept(int fd, struct sockaddr *a, socklen_t *l)
{
	return (int)ps_rawsys_errno(ps_rawsys4(SYS_accept4, fd, a, l, 0));
}

static int sys_accept4(int fd, struct sockaddr *a, socklen_t *l, int flags)
{
	return (int)ps_rawsys_errno(ps_rawsys4(SYS_accept4, fd, a, l, flags));
}

static ssize_t sys_sendto(int fd, const void *b, size_t n, int flags,
			  const struct sockaddr *a, socklen_t l)
{
	return ps_rawsys_errno(ps_rawsys6(SYS_sendto, fd, b, n, flags, a, l));
}

static ssize_t sys_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return ps_rawsys_errno(ps_rawsys3(SYS_sendmsg, fd, m, flags));
}

static int sys_sendmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags)
{
	return (int)ps_rawsys_errno(ps_rawsys4(SYS_sendmmsg, fd, v, n, flags));
}

static ssize_t sys_recvfrom(int fd, void *b, size_t n, int flags,
			    struct sockaddr *a, socklen_t *l)
{
	return ps_rawsys_errno(ps_rawsys6(SYS_recvfrom, fd, b, n, flags, a, l));
}

static ssize_t sys_recvmsg(int fd, struct msghdr *m, int flags)
{
	return ps_rawsys_errno(ps_rawsys3(SYS_recvmsg, fd, m, flags));
}

static int sys_recvmmsg(int fd, struct mmsghdr *v, unsigned int n, int flags,
			struct timespec *t)
{
	return (int)ps_rawsys_errno(
		ps_rawsys5(SYS_recvmmsg, fd, v, n, flags, t));
}

/*
 * The exec calls and exit, where rawsys.h knows no calling convention,
 * go through syscall() (ours, which passes them on to libc's), as they
 * did before there was a rawsys.h: an exec would otherwise fail there for
 * want of a libc symbol that glibc always has. Every argument is a long,
 * as syscall() reads them.
 */
#ifdef PS_HAVE_RAWSYS
#define EXEC_SYSCALL(...) ps_rawsys_errno(ps_rawsys(__VA_ARGS__))
#else
#define EXEC_SYSCALL(...) syscall(__VA_ARGS__)
#endif

static int sys_execve(const char *path, char *const argv[], char *const envp[])
{
	return (int)EXEC_SYSCALL(SYS_execve, (long)path, (long)argv, (long)envp,
				 0L, 0L, 0L);
}

static int sys_execveat(int dirfd, const char *path, char *const argv[],
			char *const envp[], int flags)
{
	return (int)EXEC_SYSCALL(SYS_execveat, (long)dirfd, (long)path,
				 (long)argv, (long)envp, (long)flags, 0L);
}

void ps_real_exit_raw(int status)
{
	EXEC_SYSCALL(SYS_exit_group, (long)status, 0L, 0L, 0L, 0L, 0L);
	/* exit_group does not return; a kernel that refused it leaves no
	 * better way out than a trap. */
	__builtin_trap();
}

/* The library functions with no single system call behind them. */
static int no_execvpe(const char *file, char *const argv[], char *const envp[])
{
	errno = ENOSYS;
	return -1;
}

static int no_fexecve(int fd, char *const argv[], char *const envp[])
{
	errno = ENOSYS;
	return -1;
}

static int no_spawn(pid_t *pid, const char *path,
		    const posix_spawn_file_actions_t *fa,
		    const posix_spawnattr_t *attr, char *const argv[],
		    char *const envp[])
{
	return ENOSYS;
}

/*
 * Our own exported definitions (declared by <sys/socket.h>, and
 * __recvfrom_chk, which glibc declares only under _FORTIFY_SOURCE): a
 * lookup that finds one of them is rejected.
 */
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
		       __SOCKADDR_ARG addr, socklen_t *restrict len);
/* glibc declares execveat from 2.34 on. */
int execveat(int dirfd, const char *path, char *const argv[],
	     char *const envp[], int flags);

void *ps_real_lookup(const char *name, void *ours, void *fallback)
{
	void *p = dlsym(RTLD_NEXT, name);

	return p == NULL || p == ours ? fallback : p;
}

static void resolve_once(void)
{
	struct ps_real r;

	r.connect =
		ps_real_lookup("connect", (void *)connect, (void *)sys_connect);
	r.getsockname = ps_real_lookup("getsockname", (void *)getsockname,
				       (void *)sys_getsockname);
	r.getpeername = ps_real_lookup("getpeername", (void *)getpeername,
				       (void *)sys_getpeername);
	r.accept = ps_real_lookup("accept", (void *)accept, (void *)sys_accept);
	r.accept4 =
		ps_real_lookup("accept4", (void *)accept4, (void *)sys_accept4);
	r.sendto = ps_real_lookup("sendto", (void *)sendto, (void *)sys_sendto);
	r.sendmsg =
		ps_real_lookup("sendmsg", (void *)sendmsg, (void *)sys_sendmsg);
	r.sendmmsg = ps_real_lookup("sendmmsg", (void *)sendmmsg,
				    (void *)sys_sendmmsg);
	r.recvfrom = ps_real_lookup("recvfrom", (void *)recvfrom,
				    (void *)sys_recvfrom);
	r.recvmsg =
		ps_real_lookup("recvmsg", (void *)recvmsg, (void *)sys_recvmsg);
	r.recvmmsg = ps_real_lookup("recvmmsg", (void *)recvmmsg,
				    (void *)sys_recvmmsg);
	r.recvfrom_chk =
		ps_real_lookup("__recvfrom_chk", (void *)__recvfrom_chk, NULL);
	r.execve = ps_real_lookup("execve", (void *)execve, (void *)sys_execve);
	r.execvpe =
		ps_real_lookup("execvpe", (void *)execvpe, (void *)no_execvpe);
	r.fexecve =
		ps_real_lookup("fexecve", (void *)fexecve, (void *)no_fexecve);
	r.execveat = ps_real_lookup("execveat", (void *)execveat,
				    (void *)sys_execveat);
	r.posix_spawn = ps_real_lookup("posix_spawn", (void *)posix_spawn,
				       (void *)no_spawn);
	r.posix_spawnp = ps_real_lookup("posix_spawnp", (void *)posix_spawnp,
					(void *)no_spawn);
	r.exit = ps_real_lookup("_exit", (void *)_exit,
				(void *)ps_real_exit_raw);
	r.bind = ps_real_lookup("bind", (void *)bind, (void *)sys_bind);
	/* Under --supervise, our own calls carry the supervisor's cookie. */
	ps_real_supervised(&r);
	/*
	 * bind is stored last: ps_real() tests it to decide whether the
	 * table is complete, so it must not become visible before the rest.
	 */
	ps_real_fns.connect = r.connect;
	ps_real_fns.getsockname = r.getsockname;
	ps_real_fns.getpeername = r.getpeername;
	ps_real_fns.accept = r.accept;
	ps_real_fns.accept4 = r.accept4;
	ps_real_fns.sendto = r.sendto;
	ps_real_fns.sendmsg = r.sendmsg;
	ps_real_fns.sendmmsg = r.sendmmsg;
	ps_real_fns.recvfrom = r.recvfrom;
	ps_real_fns.recvmsg = r.recvmsg;
	ps_real_fns.recvmmsg = r.recvmmsg;
	ps_real_fns.recvfrom_chk = r.recvfrom_chk;
	ps_real_fns.execve = r.execve;
	ps_real_fns.execvpe = r.execvpe;
	ps_real_fns.fexecve = r.fexecve;
	ps_real_fns.execveat = r.execveat;
	ps_real_fns.posix_spawn = r.posix_spawn;
	ps_real_fns.posix_spawnp = r.posix_spawnp;
	ps_real_fns.exit = r.exit;
	__atomic_store_n(&ps_real_fns.bind, r.bind, __ATOMIC_RELEASE);
}

void ps_real_resolve(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, resolve_once);
}
