/* SPDX-License-Identifier: MIT */
/*
 * real.h - the real libc functions behind the interposed names.
 *
 * One table for the whole library: the socket calls and the exec
 * functions. Resolved with dlsym(RTLD_NEXT) once, under pthread_once,
 * from the library constructor (so that no dlsym, which may allocate,
 * runs in a vfork child) and lazily from the first call (another
 * library's constructor may call connect() before ours has run). A lookup
 * that fails, or returns our own function, falls back to the raw system
 * call (rawsys.h, never the syscall() this library exports), or to
 * ENOSYS where there is none, so the host program is never left without
 * bind() or connect() (the exec calls and exit there: real.c).
 */
#ifndef PS_REAL_H
#define PS_REAL_H

#include <spawn.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

typedef int (*ps_spawn_fn)(pid_t *, const char *,
			   const posix_spawn_file_actions_t *,
			   const posix_spawnattr_t *, char *const[],
			   char *const[]);

struct ps_real {
	int (*bind)(int, const struct sockaddr *, socklen_t);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getpeername)(int, struct sockaddr *, socklen_t *);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	ssize_t (*sendto)(int, const void *, size_t, int,
			  const struct sockaddr *, socklen_t);
	ssize_t (*sendmsg)(int, const struct msghdr *, int);
	int (*sendmmsg)(int, struct mmsghdr *, unsigned int, int);
	ssize_t (*recvfrom)(int, void *, size_t, int, struct sockaddr *,
			    socklen_t *);
	ssize_t (*recvmsg)(int, struct msghdr *, int);
	int (*recvmmsg)(int, struct mmsghdr *, unsigned int, int,
			struct timespec *);
	/*
	 * glibc's _FORTIFY_SOURCE entry point for recvfrom: it calls the
	 * real recvfrom internally, so programs built with fortification
	 * (most distribution packages) never reach our recvfrom. NULL when
	 * libc has none; the shim then checks the length itself.
	 */
	ssize_t (*recvfrom_chk)(int, void *, size_t, size_t, int,
				struct sockaddr *, socklen_t *);

	/* What the exec wrappers (exec.c) call. */
	int (*execve)(const char *, char *const[], char *const[]);
	int (*execvpe)(const char *, char *const[], char *const[]);
	int (*fexecve)(int, char *const[], char *const[]);
	int (*execveat)(int, const char *, char *const[], char *const[], int);
	ps_spawn_fn posix_spawn;
	ps_spawn_fn posix_spawnp;
	/* _exit, also called for _Exit (exec_job.c). */
	void (*exit)(int);
};

/* Filled by ps_real_resolve; read-only afterwards. */
extern struct ps_real ps_real_fns;

/*
 * dlsym(RTLD_NEXT, name), rejecting a result equal to ours (our own
 * interposed definition); returns fallback then. For syscall.c, whose
 * lookup of libc's syscall() runs under its own re-entrancy guard.
 */
void *ps_real_lookup(const char *name, void *ours, void *fallback);

/* Resolves the table (idempotent, thread-safe). */
void ps_real_resolve(void);

/* bind is stored last, with release: once it is there, all are. */
static inline bool ps_real_ready(void)
{
	return __atomic_load_n(&ps_real_fns.bind, __ATOMIC_ACQUIRE) != NULL;
}

static inline const struct ps_real *ps_real(void)
{
	if (__builtin_expect(!ps_real_ready(), 0))
		ps_real_resolve();
	return &ps_real_fns;
}

/*
 * exit_group, never returning: the fallback of _exit(), and, where
 * rawsys.h knows the calling convention, the way out of an _exit() that
 * comes before the table (resolving it takes a lock and may allocate,
 * which a fork or vfork child must not).
 */
_Noreturn void ps_real_exit_raw(int status);

#endif
