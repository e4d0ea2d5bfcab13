/* SPDX-License-Identifier: MIT */
/*
 * exec_check.c - the exec wrappers' decision (exec_int.h): never let a
 * program escape the shim silently.
 *
 * Before a wrapped process runs a program, two things are checked:
 *
 *   - the program itself (inspect.h): a static, Go, musl, foreign-ELF,
 *     setuid/setgid or file-capability program cannot be seen by a preload
 *     library, whatever its environment;
 *   - its environment: a new environment that lacks the portshim entry of
 *     LD_PRELOAD, or PORTSHIM_* variables this process was started with
 *     (env -i, sudo, some test runners), takes the child out of the shim
 *     or out of the group.
 *
 * PORTSHIM_BYPASS says what happens then: warn (one log line at the error
 * level, so it shows with the default PORTSHIM_LOG), fail (the exec fails
 * with EPERM, after a log line; posix_spawn returns EPERM), ignore, or
 * supervise: a static, Go or musl program is run as `portshim supervise
 * -- PROGRAM ARG...` instead (its argv[0] becomes the program's path),
 * with the PORTSHIM_* variables its environment dropped put back, so the
 * seccomp supervisor gives it the group's ports. portshim's program is
 * found next to this library: the build tree's src/cli/portshim for
 * src/shim/.libs/libportshim.so, else BINDIR/portshim. Without it, and
 * for the descriptor-based execs (fexecve, execveat with AT_EMPTY_PATH),
 * supervise warns as warn does. PORTSHIM_KEEP_ENV=1 puts the missing
 * variables back instead of warning about the environment.
 *
 * Under a supervisor (`portshim run --supervise`, or PORTSHIM_BYPASS=
 * supervise on a CMD that needed it), every descendant inherits the
 * seccomp filter: static, Go and musl programs are seen by the supervisor,
 * and so is a child whose environment lost the preload. Only what the
 * filter lets through (another ELF class) and a child that keeps the
 * preload but loses the supervisor's cookie (its calls would be decided
 * twice) are reported then. EPERM was chosen over ENOEXEC (shells
 * and execvp() would then run the file as a shell script) and EACCES
 * (execvp() would go on searching PATH): "Operation not permitted" is what
 * a policy refusal looks like elsewhere (seccomp, LSMs), and shells report
 * it with status 126.
 *
 * The snapshot is taken at start because `env -i` and friends clear the
 * process's own environment before they exec: what "this process has" is
 * what it was started with. A group name that the shim makes later for a
 * process started without one is not restored (the child makes its own).
 * A rebuilt environment lives in a bounded stack area of the caller's
 * struct ps_exec_env; one that does not fit (thousands of variables:
 * scrubbed environments are small) goes to an mmap that is released if
 * the exec fails, and that, after a successful exec from a vfork child,
 * stays in the parent as a small leak rather than a shared-heap
 * corruption.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "envguard.h"
#include "exec_int.h"
#include "inspect.h"
#include "log.h"
#include "once.h"
#include "supcall.h"

/* The list of dropped names in a message. */
#define NAMES_MAX 512

#ifndef BINDIR
#error "BINDIR must name the folder the portshim program is installed in"
#endif

/* Written once by the constructor (ps_exec_check_init); read-only after. */
static bool exec_enabled; /* PORTSHIM_PORTS was valid at start */
static enum ps_bypass exec_bypass;
static bool exec_supervised; /* a seccomp supervisor sees our children */
static bool exec_keep_env;
/* What we keep of our start environment (envguard.h). */
static struct ps_envguard guard;
static char exec_warned[PATH_MAX]; /* PORTSHIM_WARNED, or "" */
char ps_exec_sup_prog[PATH_MAX];   /* portshim's program, or "" */

/* ----------------------------------------------------------- at load */

/* The last component of a path. */
static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* Takes the snapshot of the variables this process was started with. */
static void snapshot(void)
{
	Dl_info info;

	ps_envguard_snapshot(
		&guard, environ,
		dladdr((void *)snapshot, &info) != 0 ? info.dli_fname : NULL);
}

/*
 * Finds portshim's program for PORTSHIM_BYPASS=supervise: the build
 * tree's (this library is DIR/src/shim/.libs/libportshim.so, the program
 * DIR/src/cli/portshim), else the installed one. Leaves ps_exec_sup_prog empty
 * when neither can be run.
 */
static void find_supervisor(void)
{
	static const char tree[] = "/src/shim/.libs/";
	Dl_info info;
	const char *me, *base;
	size_t dir;

	if (dladdr((void *)find_supervisor, &info) != 0 &&
	    info.dli_fname != NULL) {
		me = info.dli_fname;
		base = base_name(me);
		dir = (size_t)(base - me);
		if (dir >= sizeof(tree) - 1 &&
		    memcmp(base - (sizeof(tree) - 1), tree, sizeof(tree) - 1) ==
			    0 &&
		    snprintf(ps_exec_sup_prog, sizeof(ps_exec_sup_prog),
			     "%.*s/src/cli/portshim",
			     (int)(dir - (sizeof(tree) - 1)),
			     me) < (int)sizeof(ps_exec_sup_prog) &&
		    access(ps_exec_sup_prog, X_OK) == 0)
			return;
	}
	if (snprintf(ps_exec_sup_prog, sizeof(ps_exec_sup_prog), "%s/portshim",
		     BINDIR) >= (int)sizeof(ps_exec_sup_prog) ||
	    access(ps_exec_sup_prog, X_OK) < 0)
		ps_exec_sup_prog[0] = '\0';
}

void ps_exec_check_init(const struct ps_config *cfg)
{
	const char *warned;

	exec_bypass = cfg->bypass;
	/* Under `portshim run --supervise` the supervisor sees them all. */
	if (ps_supcall_supervised())
		exec_supervised = true;
	exec_keep_env = cfg->keep_env;
	warned = secure_getenv("PORTSHIM_WARNED");
	if (warned != NULL && warned[0] == '/' &&
	    strlen(warned) < sizeof(exec_warned))
		memcpy(exec_warned, warned, strlen(warned) + 1);
	snapshot();
	if (exec_bypass == PS_BYPASS_SUPERVISE)
		find_supervisor();
	exec_enabled = true;
}

/* ------------------------------------------------------ environment */

/* Releases a rebuilt environment's mapping (after a failed exec). */
void ps_exec_env_done(struct ps_exec_env *xe)
{
	int saved = errno;

	if (xe->map != NULL)
		munmap(xe->map, xe->maplen);
	xe->map = NULL;
	if (xe->job_map != NULL)
		munmap(xe->job_map, xe->job_maplen);
	xe->job_map = NULL;
	errno = saved;
}

/*
 * Builds envp plus the missing variables in xe (envguard.h), on the stack
 * when they fit. Returns 0 or -errno (nothing changed).
 */
static int env_restore(char *const envp[], const struct ps_env_scan *sc,
		       struct ps_exec_env *xe)
{
	size_t need = ps_envguard_need(&guard, sc);
	void *mem;

	if (need == 0)
		return -E2BIG;
	if (need <= sizeof(xe->area)) {
		mem = xe->area.ptrs;
	} else {
		mem = mmap(NULL, need, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED)
			return -errno;
		xe->map = mem;
		xe->maplen = need;
	}
	xe->envp = ps_envguard_build(&guard, envp, sc, mem);
	return 0;
}

/*
 * Whether a supervisor sees our children: known at start, or become true
 * since (portshim's own process that installs the filter just before it
 * execs the command). System calls only: safe after vfork.
 */
static bool is_supervised(void)
{
	return exec_supervised || ps_supcall_supervised();
}

/*
 * Whether to write a warning of kind ("bin": the program cannot be seen;
 * "env": its environment drops the shim) about prog: once per program
 * and `portshim run` (PORTSHIM_WARNED names the run's file of programs
 * warned about), every time without one. GNU parallel, for one, starts
 * its probes (/usr/bin/false, ...) with a scrubbed environment again and
 * again: a line each would bury what matters.
 */
static bool say_once(const char *kind, const char *prog)
{
	char key[PATH_MAX + 8];

	if (exec_warned[0] == '\0')
		return true;
	if ((size_t)snprintf(key, sizeof(key), "%s %s", kind, prog) >=
	    sizeof(key))
		return true;
	return ps_once_claim(exec_warned, key) != 0;
}

/*
 * The environment check of prog, whose file is path relative to dirfd
 * (NULL: run from a descriptor): returns 0 (xe->envp is what to pass on)
 * or -EPERM (PORTSHIM_BYPASS=fail).
 */
static int env_check(const char *prog, int dirfd, const char *path,
		     char *const envp[], struct ps_exec_env *xe)
{
	char names[NAMES_MAX];
	struct ps_env_scan sc;
	bool escapes;
	int rc;

	ps_envguard_scan(&guard, envp, &sc);
	if (sc.nmissing == 0 && !sc.preload_missing)
		return 0;
	/* Without the preload, a supervised child is the supervisor's. */
	if (is_supervised() && sc.preload_missing && !exec_keep_env)
		return 0;
	ps_envguard_names(&sc, names, sizeof(names));
	if (exec_keep_env) {
		rc = env_restore(envp, &sc, xe);
		if (rc == 0) {
			PS_INFO("put %s back for %s (PORTSHIM_KEEP_ENV=1)",
				names, prog);
			return 0;
		}
		PS_ERROR("cannot put %s back for %s: %s", names, prog,
			 strerrordesc_np(-rc));
	}
	if (exec_bypass == PS_BYPASS_IGNORE)
		return 0;
	/* A program that can tell it never binds, connects or starts
	 * another (true, false, sleep) escapes nothing without the shim. */
	if (path != NULL && ps_inspect_harmless(dirfd, path))
		return 0;
	/* Kept variable 0 is PORTSHIM_PORTS (envguard.h). */
	escapes = sc.preload_missing || sc.missing[0];
	if (exec_bypass == PS_BYPASS_FAIL) {
		PS_ERROR("refusing to run %s (PORTSHIM_BYPASS=fail): its "
			 "environment drops %s, so %s. Set PORTSHIM_KEEP_ENV=1 "
			 "to put them back (PORTSHIM_BYPASS=warn runs it "
			 "anyway)",
			 prog, names,
			 escapes ?
				 "portshim would not be active in it" :
				 "it would run outside this group's settings");
		return -EPERM;
	}
	if (!say_once("env", prog))
		return 0;
	PS_ERROR("warning: %s is started with an environment that drops %s: "
		 "%s. Set PORTSHIM_KEEP_ENV=1 to put them back "
		 "(PORTSHIM_BYPASS=ignore silences this)",
		 prog, names,
		 escapes ? "portshim is not active in it, it binds its ports "
			   "as asked" :
			   "it runs outside this group's settings");
	return 0;
}

/* --------------------------------------------------------- decision */

/*
 * PORTSHIM_BYPASS=supervise: prepares xe to run path (relative to the
 * working directory) as `portshim supervise -- PATH ...`, with the
 * PORTSHIM_* variables envp lacks put back (supervise needs the group's).
 * Returns 0, or -errno when it cannot (the caller warns instead).
 */
static int sup_prepare(const struct ps_inspect *in, const char *prog,
		       const char *path, char *const envp[],
		       struct ps_exec_env *xe)
{
	struct ps_env_scan sc;
	int n, rc;

	/* Supervise runs its command with execvp(): a bare name would be
	 * searched in PATH, where execve() means the working directory. */
	n = snprintf(xe->prog, sizeof(xe->prog), "%s%s",
		     strchr(path, '/') != NULL ? "" : "./", path);
	if (n < 0 || (size_t)n >= sizeof(xe->prog))
		return -ENAMETOOLONG;
	ps_envguard_scan(&guard, envp, &sc);
	if (sc.nmissing > 0) {
		rc = env_restore(envp, &sc, xe);
		if (rc < 0)
			return rc;
	}
	xe->supervise = true;
	PS_INFO("%s %s: running it as '%s supervise -- %s' "
		"(PORTSHIM_BYPASS=supervise)",
		prog, in->reason, ps_exec_sup_prog, xe->prog);
	return 0;
}

/* Whether PORTSHIM_BYPASS=supervise runs this program supervised. */
static bool sup_wanted(const struct ps_inspect *in, int dirfd, const char *path)
{
	if (exec_bypass != PS_BYPASS_SUPERVISE || ps_exec_sup_prog[0] == '\0' ||
	    path == NULL || (dirfd != AT_FDCWD && path[0] != '/'))
		return false;
	return in->verdict == PS_INSPECT_GO ||
	       in->verdict == PS_INSPECT_STATIC ||
	       in->verdict == PS_INSPECT_MUSL;
}

/* Sets xe to pass envp on unchanged; false if there is nothing to check. */
static bool xe_start(struct ps_exec_env *xe, char *const envp[])
{
	xe->envp = envp;
	xe->map = NULL;
	xe->job_map = NULL;
	xe->supervise = false;
	return exec_enabled;
}

/* exec_int.h */
int ps_exec_check(const char *prog, int dirfd, const char *path, int fd,
		  char *const envp[], struct ps_exec_env *xe)
{
	char msg[PS_LOG_LINE_MAX];
	struct ps_inspect in;
	int saved = errno, rc = 0;

	if (!xe_start(xe, envp))
		return 0;
	if (exec_bypass != PS_BYPASS_IGNORE) {
		if (path != NULL) {
			rc = ps_inspect_path(dirfd, path, &in);
		} else {
			rc = ps_inspect_fd(fd, NULL, &in);
		}
		/* No such program: the exec fails, nothing runs. */
		if (rc == -ENOENT || rc == -ENOTDIR) {
			rc = 0;
			goto out;
		}
		rc = 0;
		if (in.verdict != PS_INSPECT_VISIBLE &&
		    !(is_supervised() && in.verdict != PS_INSPECT_FOREIGN)) {
			if (sup_wanted(&in, dirfd, path) &&
			    sup_prepare(&in, prog, path, envp, xe) == 0)
				goto out;
			if (exec_bypass == PS_BYPASS_FAIL ||
			    say_once("bin", prog)) {
				ps_inspect_message(&in, prog, exec_bypass, msg,
						   sizeof(msg));
				PS_ERROR("%s", msg);
			}
			/* Its environment does not matter: the shim cannot
			 * act in it either way. */
			rc = exec_bypass == PS_BYPASS_FAIL ? -EPERM : 0;
			goto out;
		}
	}
	rc = env_check(prog, dirfd, path, envp, xe);
out:
	errno = saved;
	return rc;
}

/* exec_int.h: the file execvp() would run, for the check. */
int ps_exec_check_p(const char *file, char *const envp[],
		    struct ps_exec_env *xe)
{
	char path[PATH_MAX];

	if (!xe_start(xe, envp))
		return 0;
	/* Not found: the real call fails the same way; nothing to say. */
	if (ps_inspect_which(file, getenv("PATH"), path, sizeof(path)) < 0)
		return 0;
	return ps_exec_check(path, AT_FDCWD, path, -1, envp, xe);
}
