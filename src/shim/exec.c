/* SPDX-License-Identifier: MIT */
/*
 * exec.c - the exec*() and posix_spawn*() wrappers of libportshim.so:
 * never let a program escape the shim silently.
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
 * snapshot of the environment are taken once, in the library constructor,
 * before the program runs; the decision uses only system calls, pread
 * into stack buffers and snprintf; no lock, no malloc, no lazy dlsym in
 * the normal case (the real functions are resolved in the constructor
 * too). A rebuilt environment lives in a bounded stack area; one that
 * does not fit (thousands of variables: scrubbed environments are small)
 * goes to an mmap that is released if the exec fails, and that, after a
 * successful exec from a vfork child, stays in the parent as a small leak
 * rather than a shared-heap corruption.
 *
 * The snapshot is taken at start because `env -i` and friends clear the
 * process's own environment before they exec: what "this process has" is
 * what it was started with. A group name that the shim makes later for a
 * process started without one is not restored (the child makes its own).
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "config.h"
#include "inspect.h"
#include "job.h"
#include "envguard.h"
#include "log.h"
#include "once.h"
#include "policy.h"
#include "preload.h"
#include "real.h"
#include "shim.h"
#include "supcall.h"

/* Bytes of stack for a rebuilt environment (pointers and LD_PRELOAD). */
#define ENV_AREA 4096
/* execl*() arguments gathered on the stack before mmap is needed. */
#define ARGV_STACK 256
/* The list of dropped names in a message. */
#define NAMES_MAX 512
/* Pointers of a job's environment on the stack before mmap is needed. */
#define JOB_PTRS 512

#ifndef BINDIR
#error "BINDIR must name the folder the portshim program is installed in"
#endif

typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*fexecve_fn)(int, char *const[], char *const[]);
typedef int (*execveat_fn)(int, const char *, char *const[], char *const[],
			   int);
typedef int (*spawn_fn)(pid_t *, const char *,
			const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[],
			char *const[]);

/* Written once by the constructor; read-only afterwards. */
static struct {
	execve_fn execve;
	execve_fn execvpe;
	fexecve_fn fexecve;
	execveat_fn execveat;
	spawn_fn posix_spawn;
	spawn_fn posix_spawnp;
} real_exec;

static bool exec_enabled; /* PORTSHIM_PORTS was valid at start */
static enum ps_bypass exec_bypass;
static bool exec_supervised; /* a seccomp supervisor sees our children */

static bool exec_keep_env;
/* What we keep of our start environment (envguard.h). */
static struct ps_envguard guard;
static char sup_prog[PATH_MAX];	   /* portshim's program, or "" */
static char exec_warned[PATH_MAX]; /* PORTSHIM_WARNED, or "" */

/* --per-job (src/common/job.h), also written once by the constructor. */
static char job_base[PS_GROUP_MAX + 1];	 /* PORTSHIM_PER_JOB, or "" */
static char job_base_map[PATH_MAX];	 /* the base group's mapping file */
static bool job_runner;			 /* exec*() here starts a job */
static pid_t job_init_pid;		 /* our pid when this image started */
static bool job_leader;			 /* we own our job's group */
static struct ps_ident job_self;	 /* the leader: us */
static char job_group[PS_GROUP_MAX + 1]; /* our job's group */
static char job_map[PATH_MAX];		 /* and its mapping file */
static char job_registry[PATH_MAX];	 /* PORTSHIM_REGISTRY, or "" */

/* ------------------------------------------------- real functions */

/* _exit() and _Exit() (see job_fini). */
typedef void (*exit_fn)(int);
static exit_fn real__exit;

/* Used only when dlsym cannot give us libc's: the raw system calls. */
static void sys_exit(int status)
{
	for (;;)
		syscall(SYS_exit_group, status);
}

static int sys_execve(const char *path, char *const argv[], char *const envp[])
{
	return (int)syscall(SYS_execve, path, argv, envp);
}

static int sys_execveat(int dirfd, const char *path, char *const argv[],
			char *const envp[], int flags)
{
	return (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

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
 * Resolves the real functions. Idempotent and race-free in effect: every
 * caller stores the same values. Normally done by the constructor, so
 * that no dlsym (which may allocate) happens in a vfork child.
 */
static void exec_resolve(void)
{
	if (__atomic_load_n(&real_exec.execve, __ATOMIC_ACQUIRE) != NULL)
		return;
	real_exec.execvpe = (execve_fn)ps_real_lookup(
		"execvpe", (void *)execvpe, (void *)no_execvpe);
	real_exec.fexecve = (fexecve_fn)ps_real_lookup(
		"fexecve", (void *)fexecve, (void *)no_fexecve);
	real_exec.execveat = (execveat_fn)ps_real_lookup("execveat", NULL,
							 (void *)sys_execveat);
	real_exec.posix_spawn = (spawn_fn)ps_real_lookup(
		"posix_spawn", (void *)posix_spawn, (void *)no_spawn);
	real_exec.posix_spawnp = (spawn_fn)ps_real_lookup(
		"posix_spawnp", (void *)posix_spawnp, (void *)no_spawn);
	real__exit = (exit_fn)ps_real_lookup("_exit", (void *)_exit,
					     (void *)sys_exit);
	/* execve last: it tells the others are there. */
	__atomic_store_n(&real_exec.execve,
			 (execve_fn)ps_real_lookup("execve", (void *)execve,
						   (void *)sys_execve),
			 __ATOMIC_RELEASE);
}

/* ----------------------------------------------------------- snapshot */

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
 * DIR/src/cli/portshim), else the installed one. Leaves sup_prog empty
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
		    snprintf(sup_prog, sizeof(sup_prog),
			     "%.*s/src/cli/portshim",
			     (int)(dir - (sizeof(tree) - 1)),
			     me) < (int)sizeof(sup_prog) &&
		    access(sup_prog, X_OK) == 0)
			return;
	}
	if (snprintf(sup_prog, sizeof(sup_prog), "%s/portshim", BINDIR) >=
		    (int)sizeof(sup_prog) ||
	    access(sup_prog, X_OK) < 0)
		sup_prog[0] = '\0';
}

/*
 * --per-job: what this process is (src/common/job.h). A runner starts a
 * job with each new program; a job's first process becomes its group's
 * owner here, before the configuration is read, so that the shim, and
 * every child, sees PORTSHIM_GROUP_OWNER naming it.
 */
static void job_setup(int argc, char **argv, const char *per)
{
	const char *group = secure_getenv("PORTSHIM_GROUP");
	const char *job = secure_getenv("PORTSHIM_JOB");
	const char *owner = secure_getenv("PORTSHIM_GROUP_OWNER");
	const char *map = secure_getenv("PORTSHIM_MAP_FILE");
	struct ps_ident id;
	char text[64];
	bool in_job;

	if (!ps_group_valid(per) ||
	    strlen(per) + PS_JOB_SUFFIX_LEN > PS_GROUP_MAX)
		return;
	memcpy(job_base, per, strlen(per) + 1);
	job_init_pid = getpid();
	in_job = group != NULL && job != NULL && strcmp(group, job) == 0;
	job_runner = !in_job || ps_job_runner_argv(argc, argv);
	if (map != NULL && map[0] != '\0' && group != NULL &&
	    ps_job_base_map(map, group, per, job_base_map,
			    sizeof(job_base_map)) < 0)
		job_base_map[0] = '\0';
	if (!in_job || ps_proc_self(&job_self) < 0)
		return;
	if (owner == NULL || owner[0] == '\0') {
		/* The job's first process: the group is ours. */
		ps_ident_format(&job_self, text, sizeof(text));
		if (setenv("PORTSHIM_GROUP_OWNER", text, 1) < 0)
			return;
	} else if (ps_ident_parse(owner, &id) < 0 || id.pid != job_self.pid ||
		   id.start != job_self.start) {
		return; /* a process of the job, not its leader */
	}
	/* The leader (also after it ran another program in its place). */
	job_leader = true;
	snprintf(job_group, sizeof(job_group), "%s", group);
	if (map != NULL)
		snprintf(job_map, sizeof(job_map), "%s", map);
}

/*
 * The end of a job: its leader, exiting, releases the group's leases
 * (all made for it) and its mapping file, so a finished job's ports go
 * back at once rather than when the whole run ends.
 */
__attribute__((destructor)) static void job_fini(void)
{
	static bool done;
	int saved = errno;

	if (job_leader && !done && (uint32_t)getpid() == job_self.pid) {
		done = true;
		/* A group that never got a lease has no mapping file: most
		 * jobs (a make's $(shell ...), a compiler) end here, without
		 * opening the registry. */
		if (job_map[0] == '\0' || access(job_map, F_OK) == 0)
			ps_job_release(job_registry, job_group, &job_self,
				       job_map);
	}
	errno = saved;
}

/*
 * Shells end with _exit() (dash does, after its own clean-up), which runs
 * no destructor: the leader of a job that is a shell script would never
 * release its group. So _exit and _Exit are interposed too, for that
 * alone. A vfork or fork child that calls them is not the leader (its pid
 * differs) and goes straight through.
 */
static void ps_exec_exit(int status)
{
	exit_fn fn = __atomic_load_n(&real__exit, __ATOMIC_ACQUIRE);

	job_fini();
	if (fn == NULL)
		fn = sys_exit;
	fn(status);
	sys_exit(status);
}

/* At load (init.c), with the program's arguments. */
void ps_exec_init(int argc, char **argv)
{
	static struct ps_config cfg;
	const char *warned, *per;

	exec_resolve();
	/* The loader runs setuid programs in secure mode without us; a
	 * secure process that has us anyway (a system preload) stays inert
	 * here, as config.c makes the rest of the shim. */
	if (getauxval(AT_SECURE) != 0)
		return;
	per = secure_getenv("PORTSHIM_PER_JOB");
	if (per != NULL && per[0] != '\0')
		job_setup(argc, argv, per);
	/* Not ps_config_load: its port bitmaps are pages to fault in, in
	 * every program started under the preload. */
	ps_config_load_start(&cfg, ps_env_secure);
	if (!cfg.enabled)
		return;
	/* The shim proper sets the log up again, identically, at its first
	 * intercepted call; a process that only execs needs it now. */
	ps_log_setup(cfg.log_level, cfg.log_file);
	exec_bypass = cfg.bypass;
	/* Under `portshim run --supervise` the supervisor sees them all. */
	if (ps_supcall_supervised())
		exec_supervised = true;
	exec_keep_env = cfg.keep_env;
	memcpy(job_registry, cfg.registry, sizeof(job_registry));
	if (!cfg.enabled)
		job_runner = job_leader = false;
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

/* Where a rebuilt environment lives (see the top of the file). */
struct exec_env {
	char *const *envp; /* the environment to pass on */
	void *map;	   /* mmap'd storage, or NULL */
	size_t maplen;
	bool supervise;	     /* run it as `portshim supervise --` */
	char prog[PATH_MAX]; /* the program, for that command */
	union {
		char *ptrs[ENV_AREA / sizeof(char *)];
		char bytes[ENV_AREA];
	} area;
	/* A job's environment (--per-job): its pointers and new entries. */
	void *job_map; /* mmap'd pointers, or NULL */
	size_t job_maplen;
	char *job_ptrs[JOB_PTRS];
	char job_group_var[sizeof("PORTSHIM_GROUP=") + PS_GROUP_MAX];
	char job_var[sizeof("PORTSHIM_JOB=") + PS_GROUP_MAX];
	char job_map_var[sizeof("PORTSHIM_MAP_FILE=") + PATH_MAX];
};

/* Releases a rebuilt environment's mapping (after a failed exec). */
static void exec_env_done(struct exec_env *xe)
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
		       struct exec_env *xe)
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
		     char *const envp[], struct exec_env *xe)
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
		       struct exec_env *xe)
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
		prog, in->reason, sup_prog, xe->prog);
	return 0;
}

/* Whether PORTSHIM_BYPASS=supervise runs this program supervised. */
static bool sup_wanted(const struct ps_inspect *in, int dirfd, const char *path)
{
	if (exec_bypass != PS_BYPASS_SUPERVISE || sup_prog[0] == '\0' ||
	    path == NULL || (dirfd != AT_FDCWD && path[0] != '/'))
		return false;
	return in->verdict == PS_INSPECT_GO ||
	       in->verdict == PS_INSPECT_STATIC ||
	       in->verdict == PS_INSPECT_MUSL;
}

/*
 * Decides an exec of prog (for messages) whose file is path relative to
 * dirfd, or the open descriptor fd when path is NULL, with environment
 * envp. Returns 0 (go ahead with xe->envp) or -EPERM. Preserves errno.
 */
static int exec_check(const char *prog, int dirfd, const char *path, int fd,
		      char *const envp[], struct exec_env *xe)
{
	char msg[PS_LOG_LINE_MAX];
	struct ps_inspect in;
	int saved = errno, rc = 0;

	xe->envp = envp;
	xe->map = NULL;
	xe->job_map = NULL;
	xe->supervise = false;
	if (!exec_enabled)
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

/* The p-variants: the file execvp() would run, for the check. */
static int exec_check_p(const char *file, char *const envp[],
			struct exec_env *xe)
{
	char path[PATH_MAX];

	xe->envp = envp;
	xe->map = NULL;
	xe->job_map = NULL;
	xe->supervise = false;
	if (!exec_enabled)
		return 0;
	/* Not found: the real call fails the same way; nothing to say. */
	if (ps_inspect_which(file, getenv("PATH"), path, sizeof(path)) < 0)
		return 0;
	return exec_check(path, AT_FDCWD, path, -1, envp, xe);
}

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
	al->argv[0] = sup_prog;
	al->argv[1] = verb;
	al->argv[2] = dashes;
	al->argv[3] = (char *)prog;
	for (i = 1; i < n; i++)
		al->argv[3 + i] = argv[i];
	al->argv[total - 1] = NULL;
	return 0;
}

/* execve() of `portshim supervise -- PROG ARG...` (xe->supervise). */
static int sup_execve(const struct exec_env *xe, char *const argv[])
{
	struct arglist al;
	int rc;

	rc = sup_args(&al, xe->prog, argv);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	rc = real_exec.execve(sup_prog, al.argv, xe->envp);
	args_done(&al);
	return rc;
}

/* ----------------------------------------------------------- jobs */

/* True if entry ("NAME=value") sets one of the variables a job replaces. */
static bool job_replaced(const char *entry)
{
	return strncmp(entry, "PORTSHIM_GROUP=", 15) == 0 ||
	       strncmp(entry, "PORTSHIM_JOB=", 13) == 0 ||
	       strncmp(entry, "PORTSHIM_MAP_FILE=", 18) == 0 ||
	       strncmp(entry, "PORTSHIM_GROUP_OWNER=", 21) == 0;
}

/*
 * --per-job: when a runner starts a program in a new process (spawn:
 * posix_spawn; otherwise the exec of a forked or vforked child, whose pid
 * is not the one this image started with), the program is a new job:
 * xe->envp is replaced by a copy with the job's group, mapping file and
 * marker, and without an owner (src/common/job.h). On the stack up to
 * JOB_PTRS entries, in a mapping beyond. Nothing changes when it cannot
 * be done (the job then shares the runner's group, as without
 * --per-job). System calls and stack buffers only: safe after vfork.
 */
static void job_apply(struct exec_env *xe, const char *prog, bool spawn)
{
	char group[PS_GROUP_MAX + 1], map[PATH_MAX];
	char *const *envp = xe->envp;
	size_t n = 0, o = 0, i, need;
	char **ptrs;
	uint32_t r;

	if (!job_runner || (!spawn && getpid() == job_init_pid))
		return;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)(uintptr_t)&r;
	if (ps_job_group(job_base, r, group) < 0)
		return;
	map[0] = '\0';
	if (job_base_map[0] != '\0' &&
	    ps_policy_map_path(job_base_map, group + strlen(job_base), map,
			       sizeof(map)) < 0)
		return;
	while (envp != NULL && envp[n] != NULL)
		n++;
	need = n + 4;
	if (need <= JOB_PTRS) {
		ptrs = xe->job_ptrs;
	} else {
		void *m = mmap(NULL, need * sizeof(char *),
			       PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED)
			return;
		xe->job_map = m;
		xe->job_maplen = need * sizeof(char *);
		ptrs = m;
	}
	for (i = 0; i < n; i++)
		if (!job_replaced(envp[i]))
			ptrs[o++] = envp[i];
	snprintf(xe->job_group_var, sizeof(xe->job_group_var),
		 "PORTSHIM_GROUP=%s", group);
	snprintf(xe->job_var, sizeof(xe->job_var), "PORTSHIM_JOB=%s", group);
	ptrs[o++] = xe->job_group_var;
	ptrs[o++] = xe->job_var;
	if (map[0] != '\0') {
		snprintf(xe->job_map_var, sizeof(xe->job_map_var),
			 "PORTSHIM_MAP_FILE=%s", map);
		ptrs[o++] = xe->job_map_var;
	}
	ptrs[o] = NULL;
	xe->envp = ptrs;
	PS_INFO("job group=%s for %s", group, prog);
}

/* ------------------------------------------------------- wrappers */

static int ps_exec_execve(const char *path, char *const argv[],
			  char *const envp[])
{
	struct exec_env xe;
	int rc;

	exec_resolve();
	rc = exec_check(path, AT_FDCWD, path, -1, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	job_apply(&xe, path, false);
	if (xe.supervise)
		rc = sup_execve(&xe, argv);
	else
		rc = real_exec.execve(path, argv, xe.envp);
	exec_env_done(&xe);
	return rc;
}

static int ps_exec_execvpe(const char *file, char *const argv[],
			   char *const envp[])
{
	struct exec_env xe;
	int rc;

	exec_resolve();
	rc = exec_check_p(file, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	job_apply(&xe, file, false);
	if (xe.supervise)
		rc = sup_execve(&xe, argv);
	else
		rc = real_exec.execvpe(file, argv, xe.envp);
	exec_env_done(&xe);
	return rc;
}

static int ps_exec_fexecve(int fd, char *const argv[], char *const envp[])
{
	char prog[64];
	struct exec_env xe;
	int rc;

	exec_resolve();
	snprintf(prog, sizeof(prog), "/proc/self/fd/%d", fd);
	rc = exec_check(prog, AT_FDCWD, NULL, fd, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	job_apply(&xe, prog, false);
	rc = real_exec.fexecve(fd, argv, xe.envp);
	exec_env_done(&xe);
	return rc;
}

static int ps_exec_execveat(int dirfd, const char *path, char *const argv[],
			    char *const envp[], int flags)
{
	struct exec_env xe;
	bool self = (flags & AT_EMPTY_PATH) && path != NULL && path[0] == '\0';
	int rc;

	exec_resolve();
	rc = exec_check(self ? "(descriptor)" : path, dirfd, self ? NULL : path,
			dirfd, envp, &xe);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	job_apply(&xe, path, false);
	rc = real_exec.execveat(dirfd, path, argv, xe.envp, flags);
	exec_env_done(&xe);
	return rc;
}

static int ps_exec_spawn(bool search, pid_t *pid, const char *file,
			 const posix_spawn_file_actions_t *fa,
			 const posix_spawnattr_t *attr, char *const argv[],
			 char *const envp[])
{
	struct exec_env xe;
	int rc;

	exec_resolve();
	/* Decided here, in the parent: glibc's child runs its internal
	 * __execve on a small private stack that we never see. */
	if (search)
		rc = exec_check_p(file, envp, &xe);
	else
		rc = exec_check(file, AT_FDCWD, file, -1, envp, &xe);
	if (rc < 0)
		return -rc;
	job_apply(&xe, file, true);
	if (xe.supervise) {
		struct arglist al;

		rc = sup_args(&al, xe.prog, argv);
		if (rc == 0) {
			rc = real_exec.posix_spawn(pid, sup_prog, fa, attr,
						   al.argv, xe.envp);
			args_done(&al);
		} else {
			rc = -rc;
		}
	} else {
		rc = (search ? real_exec.posix_spawnp : real_exec.posix_spawn)(
			pid, file, fa, attr, argv, xe.envp);
	}
	exec_env_done(&xe);
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
