/* SPDX-License-Identifier: MIT */
/*
 * exec.c - the exec*(), posix_spawn*() and _exit() wrappers of
 * libportshim.so: trampolines that ask exec_check.c whether and how the
 * program may run, let exec_job.c give a new job its environment
 * (--per-job), and call the real function (real.h).
 *
 * glibc's exec functions call its internal __execve without the PLT, so
 * every public variant is wrapped: execve, execv, execvp, execvpe, execl,
 * execle, execlp, fexecve, execveat, posix_spawn and posix_spawnp. Each
 * decides and then calls the real function with the same arguments (or
 * the restored environment), so glibc's own semantics (PATH search,
 * ENOEXEC scripts, error codes) are kept.
 *
 * vfork(): the child of vfork() (Python's subprocess, for one) runs exec
 * in the parent's memory, on the parent's stack. So everything here is
 * read-only shared state plus the stack: the configuration and the
 * snapshot of the environment are taken once, in the library constructor
 * (ps_exec_init), before the program runs; the decision uses only system
 * calls, pread into stack buffers and snprintf; no lock, no malloc, no
 * lazy dlsym in the normal case (the real functions are resolved in the
 * constructor too). execl*() arguments are gathered on the stack, in an
 * anonymous mapping beyond ARGV_STACK, released if the exec fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "exec_int.h"
#include "log.h"
#include "real.h"
#include "shim.h"

/* execl*() arguments gathered on the stack before mmap is needed. */
#define ARGV_STACK 256

/* At load (init.c), with the program's arguments. */
void ps_exec_init(int argc, char **argv)
{
	static struct ps_config cfg;

	/* The loader runs setuid programs in secure mode without us; a
	 * secure process that has us anyway (a system preload) stays inert
	 * here, as config.c makes the rest of the shim. */
	if (getauxval(AT_SECURE) != 0)
		return;
	ps_exec_job_setup(argc, argv);
	/* Not ps_config_load: its port bitmaps are pages to fault in, in
	 * every program started under the preload. */
	ps_config_load_start(&cfg, ps_env_secure);
	if (!cfg.enabled)
		return;
	/* The shim proper sets the log up again, identically, at its first
	 * intercepted call; a process that only execs needs it now. */
	ps_log_setup(cfg.log_level, cfg.log_file);
	ps_exec_job_start(&cfg);
	ps_exec_check_init(&cfg);
}

/* ------------------------------------------------------ argument lists */

/*
 * The argument list of an execl*() call: on the stack up to ARGV_STACK
 * entries, in an anonymous mapping beyond (released if the exec fails).
 */
struct arglist {
	char **argv;
	void *map;
	size_t maplen;
	char *stack[ARGV_STACK];
};

/* Room for total pointers in al: its stack, or a mapping. 0 or -errno. */
static int args_alloc(struct arglist *al, size_t total)
{
	al->map = NULL;
	if (total <= ARGV_STACK) {
		al->argv = al->stack;
		return 0;
	}
	if (total > SIZE_MAX / sizeof(char *))
		return -E2BIG;
	al->maplen = total * sizeof(char *);
	al->map = mmap(NULL, al->maplen, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (al->map == MAP_FAILED) {
		al->map = NULL;
		return -errno;
	}
	al->argv = al->map;
	return 0;
}

/*
 * Gathers arg0 and the arguments in ap up to the terminating NULL; with
 * want_envp, reads the environment that follows it into *envp. Returns 0
 * or -errno.
 */
static int args_gather(struct arglist *al, const char *arg0, va_list ap,
		       bool want_envp, char *const **envp)
{
	va_list count;
	size_t n = 1, i;
	int rc;

	va_copy(count, ap);
	if (arg0 != NULL)
		while (va_arg(count, char *) != NULL)
			n++;
	va_end(count);
	if (arg0 == NULL)
		n = 0;
	rc = args_alloc(al, n + 1);
	if (rc < 0)
		return rc;
	if (n > 0) {
		al->argv[0] = (char *)arg0;
		for (i = 1; i < n; i++)
			al->argv[i] = va_arg(ap, char *);
		/* The terminating NULL. */
		(void)va_arg(ap, char *);
	}
	al->argv[n] = NULL;
	if (want_envp)
		*envp = va_arg(ap, char *const *);
	return 0;
}

static void args_done(struct arglist *al)
{
	int saved = errno;

	if (al->map != NULL)
		munmap(al->map, al->maplen);
	errno = saved;
}

/*
 * The arguments of `portshim supervise -- PROG ARG...` in al, for a
 * program whose arguments were argv: its argv[0] gives way to PROG, as
 * supervise runs its command by path. Returns 0 or -errno.
 */
static int sup_args(struct arglist *al, const char *prog, char *const argv[])
{
	static char verb[] = "supervise", dashes[] = "--";
	size_t n = 0, total, i;
	int rc;

	while (argv != NULL && argv[n] != NULL)
		n++;
	total = 4 + (n > 0 ? n - 1 : 0) + 1;
	rc = args_alloc(al, total);
	if (rc < 0)
		return rc;
	al->argv[0] = ps_exec_sup_prog;
	al->argv[1] = verb;
	al->argv[2] = dashes;
	al->argv[3] = (char *)prog;
	for (i = 1; i < n; i++)
		al->argv[3 + i] = argv[i];
	al->argv[total - 1] = NULL;
	return 0;
}

/* execve() of `portshim supervise -- PROG ARG...` (xe->supervise). */
static int sup_execve(const struct ps_exec_env *xe, char *const argv[])
{
	struct arglist al;
	int rc;

	rc = sup_args(&al, xe->prog, argv);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	rc = ps_real()->execve(ps_exec_sup_prog, al.argv, xe->envp);
	args_done(&al);
	return rc;
}

/* ------------------------------------------------------- wrappers */

static int ps_exec_execve(const char *path, char *const argv[],
			  char *const envp[])
{
	struct ps_exec_env xe;
	int rc;

	rc = ps_exec_check(path, AT_FDCWD, path, -1, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	ps_exec_job_apply(&xe, path, false);
	if (xe.supervise)
		rc = sup_execve(&xe, argv);
	else
		rc = ps_real()->execve(path, argv, xe.envp);
	ps_exec_env_done(&xe);
	return rc;
}

static int ps_exec_execvpe(const char *file, char *const argv[],
			   char *const envp[])
{
	struct ps_exec_env xe;
	int rc;

	rc = ps_exec_check_p(file, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	ps_exec_job_apply(&xe, file, false);
	if (xe.supervise)
		rc = sup_execve(&xe, argv);
	else
		rc = ps_real()->execvpe(file, argv, xe.envp);
	ps_exec_env_done(&xe);
	return rc;
}

static int ps_exec_fexecve(int fd, char *const argv[], char *const envp[])
{
	char prog[64];
	struct ps_exec_env xe;
	int rc;

	snprintf(prog, sizeof(prog), "/proc/self/fd/%d", fd);
	rc = ps_exec_check(prog, AT_FDCWD, NULL, fd, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	ps_exec_job_apply(&xe, prog, false);
	rc = ps_real()->fexecve(fd, argv, xe.envp);
	ps_exec_env_done(&xe);
	return rc;
}

static int ps_exec_execveat(int dirfd, const char *path, char *const argv[],
			    char *const envp[], int flags)
{
	struct ps_exec_env xe;
	bool self = (flags & AT_EMPTY_PATH) && path != NULL && path[0] == '\0';
	int rc;

	rc = ps_exec_check(self ? "(descriptor)" : path, dirfd,
			   self ? NULL : path, dirfd, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	ps_exec_job_apply(&xe, path, false);
	rc = ps_real()->execveat(dirfd, path, argv, xe.envp, flags);
	ps_exec_env_done(&xe);
	return rc;
}

static int ps_exec_spawn(bool search, pid_t *pid, const char *file,
			 const posix_spawn_file_actions_t *fa,
			 const posix_spawnattr_t *attr, char *const argv[],
			 char *const envp[])
{
	struct ps_exec_env xe;
	int rc;

	/* Decided here, in the parent: glibc's child runs its internal
	 * __execve on a small private stack that we never see. */
	if (search)
		rc = ps_exec_check_p(file, envp, &xe);
	else
		rc = ps_exec_check(file, AT_FDCWD, file, -1, envp, &xe);
	if (rc < 0)
		return -rc;
	ps_exec_job_apply(&xe, file, true);
	if (xe.supervise) {
		struct arglist al;

		rc = sup_args(&al, xe.prog, argv);
		if (rc == 0) {
			rc = ps_real()->posix_spawn(pid, ps_exec_sup_prog, fa,
						    attr, al.argv, xe.envp);
			args_done(&al);
		} else {
			rc = -rc;
		}
	} else {
		rc = (search ? ps_real()->posix_spawnp :
			       ps_real()->posix_spawn)(pid, file, fa, attr,
						       argv, xe.envp);
	}
	ps_exec_env_done(&xe);
	return rc;
}

/* execl, execle (with_env) and execlp (search). */
static int ps_exec_list(bool search, bool with_env, const char *path,
			const char *arg0, va_list ap)
{
	struct arglist al;
	char *const *envp = environ;
	int rc;

	rc = args_gather(&al, arg0, ap, with_env, &envp);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	if (search)
		rc = ps_exec_execvpe(path, al.argv, envp);
	else
		rc = ps_exec_execve(path, al.argv, envp);
	args_done(&al);
	return rc;
}

/* ------------------------------------------------------ trampolines */

PS_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return ps_exec_execve(path, argv, envp);
}

PS_EXPORT int execv(const char *path, char *const argv[])
{
	return ps_exec_execve(path, argv, environ);
}

PS_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return ps_exec_execvpe(file, argv, envp);
}

PS_EXPORT int execvp(const char *file, char *const argv[])
{
	return ps_exec_execvpe(file, argv, environ);
}

PS_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	return ps_exec_fexecve(fd, argv, envp);
}

/* glibc declares execveat from 2.34 on; older ones have only the call. */
PS_EXPORT int execveat(int dirfd, const char *path, char *const argv[],
		       char *const envp[], int flags);
PS_EXPORT int execveat(int dirfd, const char *path, char *const argv[],
		       char *const envp[], int flags)
{
	return ps_exec_execveat(dirfd, path, argv, envp, flags);
}

PS_EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = ps_exec_list(false, false, path, arg, ap);
	va_end(ap);
	return rc;
}

PS_EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = ps_exec_list(false, true, path, arg, ap);
	va_end(ap);
	return rc;
}

PS_EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	int rc;

	va_start(ap, arg);
	rc = ps_exec_list(true, false, file, arg, ap);
	va_end(ap);
	return rc;
}

PS_EXPORT int posix_spawn(pid_t *restrict pid, const char *restrict path,
			  const posix_spawn_file_actions_t *fa,
			  const posix_spawnattr_t *restrict attr,
			  char *const argv[restrict],
			  char *const envp[restrict])
{
	return ps_exec_spawn(false, pid, path, fa, attr, argv, envp);
}

PS_EXPORT void _exit(int status)
{
	ps_exec_exit(status);
	__builtin_unreachable();
}

PS_EXPORT void _Exit(int status)
{
	ps_exec_exit(status);
	__builtin_unreachable();
}

PS_EXPORT int posix_spawnp(pid_t *pid, const char *file,
			   const posix_spawn_file_actions_t *fa,
			   const posix_spawnattr_t *attr, char *const argv[],
			   char *const envp[])
{
	return ps_exec_spawn(true, pid, file, fa, attr, argv, envp);
}
