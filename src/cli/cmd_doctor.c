/* SPDX-License-Identifier: MIT */
/*
 * cmd_doctor.c - `portshim doctor [CMD]`: can portshim see CMD, and is
 * this host set up for it? One line per check on stdout, each starting
 * with "ok:", "warn:" or "fail:", so that a script can grep them.
 *
 * The checks, in order:
 *   CMD (when given, found through PATH as `run` finds it): dynamically
 *     linked with a loader that can load the library; not a Go program;
 *     not setuid, setgid or file-capable for the caller;
 *   the preload library: found as `run` finds it, and loadable (dlopen in
 *     a child process, so that its constructors never run in this one);
 *   the PORTSHIM_* variables of this environment;
 *   the state directory and the registry's owner and mode;
 *   the registry's health (opened and checked under its lock; a registry
 *     that does not exist yet is not created);
 *   ip_local_port_range, and whether PORTSHIM_RANGE overlaps it;
 *   ip_local_reserved_ports within PORTSHIM_RANGE.
 *
 * Exit status: 0 if no check failed (warnings allowed), 1 otherwise,
 * 2 bad usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "inspect.h"
#include "registry.h"
#include "statedir.h"

static const char doctor_help[] =
	"Usage: portshim doctor [--] [CMD [ARG]...]\n"
	"Check whether portshim can see CMD and whether this host is set up for\n"
	"it. One line per check, starting with ok:, warn: or fail:.\n"
	"\n"
	"With CMD (found through PATH as `portshim run` finds it; ARGs are\n"
	"ignored): is it dynamically linked with a loader that can load the\n"
	"preload library, is it a Go program (Go makes its own network system\n"
	"calls), is it setuid, setgid or file-capable (the loader then ignores\n"
	"LD_PRELOAD). Always: the preload library loads, the PORTSHIM_* variables\n"
	"are valid, the state directory and the registry belong to you with no\n"
	"access for others, the registry is consistent, PORTSHIM_RANGE stays out\n"
	"of the ephemeral ports (ip_local_port_range), and how many of its ports\n"
	"are in ip_local_reserved_ports.\n"
	"\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: 0 no check failed, 1 a check failed, 2 bad usage.\n";

#define EPHEMERAL_FILE "/proc/sys/net/ipv4/ip_local_port_range"

static int doctor_fails;

/* Prints "STATUS: message". */
static void report(const char *status, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void report(const char *status, const char *fmt, ...)
{
	va_list ap;

	if (strcmp(status, "fail") == 0)
		doctor_fails++;
	printf("%s: ", status);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* ------------------------------------------------------------- CMD */

/* The loader check: can the dynamic loader preload the library? */
static void doctor_loader(const struct ps_inspect *in, const char *subj)
{
	char phrase[PS_INSPECT_REASON_MAX];
	unsigned f = in->flags;

	if (!(f & PS_INSPECT_F_ELF)) {
		if (f & PS_INSPECT_F_SCRIPT)
			report("warn",
			       "%s: its interpreter cannot be "
			       "examined; portshim cannot tell whether it "
			       "sees it",
			       subj);
		else
			report("warn",
			       "%s is neither an ELF executable nor "
			       "a script; portshim cannot tell whether it "
			       "sees it",
			       subj);
		return;
	}
	if (f & PS_INSPECT_F_FOREIGN) {
		ps_inspect_phrase(in, PS_INSPECT_FOREIGN, phrase,
				  sizeof(phrase));
		report("fail", "%s %s", subj, phrase);
	} else if (f & PS_INSPECT_F_MUSL) {
		ps_inspect_phrase(in, PS_INSPECT_MUSL, phrase, sizeof(phrase));
		report("fail", "%s %s", subj, phrase);
	} else if (!(f & PS_INSPECT_F_DYNAMIC)) {
		ps_inspect_phrase(in, PS_INSPECT_STATIC, phrase,
				  sizeof(phrase));
		report("fail", "%s %s", subj, phrase);
	} else {
		report("ok", "%s is dynamically linked (loader %s)", subj,
		       in->loader[0] != '\0' ? in->loader : "?");
	}
}

/*
 * For a script whose "#!" line runs env(1) ("#!/usr/bin/env python3", as
 * pyenv's and many others' shims do), the program env runs: its first
 * operand that is neither an option nor a NAME=VALUE, into name. Returns
 * true if there is one.
 */
static bool doctor_env_target(const char *script, const char *interp,
			      char *name, size_t len)
{
	char line[512], *tok, *save = NULL;
	const char *base = strrchr(interp, '/');
	bool first = true;
	FILE *f;

	if (strcmp(base != NULL ? base + 1 : interp, "env") != 0)
		return false;
	f = fopen(script, "re");
	if (f == NULL)
		return false;
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		return false;
	}
	fclose(f);
	for (tok = strtok_r(line + 2, " \t\n", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t\n", &save)) {
		if (first) { /* env itself */
			first = false;
			continue;
		}
		if (tok[0] == '-' || strchr(tok, '=') != NULL)
			continue;
		if (strlen(tok) >= len)
			return false;
		strcpy(name, tok);
		return true;
	}
	return false;
}

static void doctor_cmd(const char *cmd)
{
	char path[PATH_MAX], subj[3 * PATH_MAX], phrase[PS_INSPECT_REASON_MAX];
	char name[PATH_MAX], real[PATH_MAX];
	struct ps_inspect in;
	int rc;

	rc = ps_inspect_which(cmd, getenv("PATH"), path, sizeof(path));
	if (rc == -EACCES) {
		report("fail", "%s: found in PATH but not executable", cmd);
		return;
	}
	if (rc < 0) {
		report("fail", "%s: not found%s", cmd,
		       strchr(cmd, '/') != NULL ? "" : " in PATH");
		return;
	}
	rc = ps_inspect_path(AT_FDCWD, path, &in);
	if (rc < 0) {
		report("fail", "%s: cannot be read: %s", path, strerror(-rc));
		return;
	}
	if ((in.flags & PS_INSPECT_F_SCRIPT) && in.interp[0] != '\0' &&
	    doctor_env_target(path, in.interp, name, sizeof(name)) &&
	    ps_inspect_which(name, getenv("PATH"), real, sizeof(real)) == 0 &&
	    ps_inspect_path(AT_FDCWD, real, &in) == 0) {
		/* The interpreter env finds in PATH is the one that runs. */
		snprintf(subj, sizeof(subj),
			 "%s runs under %s (found by "
			 "/usr/bin/env in PATH), which",
			 path, real);
	} else if ((in.flags & PS_INSPECT_F_SCRIPT) && in.interp[0] != '\0')
		snprintf(subj, sizeof(subj), "%s runs under %s, which", path,
			 in.interp);
	else
		snprintf(subj, sizeof(subj), "%s", path);

	doctor_loader(&in, subj);

	if (in.flags & PS_INSPECT_F_GO) {
		ps_inspect_phrase(&in, PS_INSPECT_GO, phrase, sizeof(phrase));
		report("fail", "%s %s", subj, phrase);
	} else if (in.flags & PS_INSPECT_F_ELF) {
		report("ok",
		       "%s is not a Go program, so its network calls "
		       "can go through libc",
		       subj);
	}

	if (in.flags & (PS_INSPECT_F_SETUID | PS_INSPECT_F_SETGID)) {
		ps_inspect_phrase(&in, PS_INSPECT_SETID, phrase,
				  sizeof(phrase));
		report("fail", "%s %s", subj, phrase);
	} else if (in.flags & PS_INSPECT_F_FILECAPS) {
		ps_inspect_phrase(&in, PS_INSPECT_FILECAPS, phrase,
				  sizeof(phrase));
		report("fail", "%s %s", subj, phrase);
	} else if (in.flags & PS_INSPECT_F_ELF) {
		report("ok",
		       "%s is not setuid, setgid or file-capable for "
		       "uid %u",
		       subj, (unsigned)getuid());
	}
}

/* ------------------------------------------------------------ library */

/*
 * dlopen()s lib in a child process, so that its constructors never run
 * here. Returns 0, or -1 with the loader's message in why.
 */
static int doctor_dlopen(const char *lib, char *why, size_t len)
{
	int fds[2], st;
	ssize_t n;
	pid_t pid;

	why[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(why, len, "pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		const char *err;

		close(fds[0]);
		if (dlopen(lib, RTLD_NOW | RTLD_LOCAL) != NULL)
			_exit(0);
		err = dlerror();
		if (err != NULL && write(fds[1], err, strlen(err)) < 0)
			_exit(1);
		_exit(1);
	}
	close(fds[1]);
	do
		n = read(fds[0], why, len - 1);
	while (n < 0 && errno == EINTR);
	why[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (why[0] == '\0')
		snprintf(why, len, "the loader failed");
	return -1;
}

static void doctor_library(void)
{
	char lib[PATH_MAX], why[512];

	if (ps_cli_library(lib, sizeof(lib)) != 0) {
		report("fail", "preload library: not found (see the line "
			       "above; PORTSHIM_LIBRARY names another one)");
		return;
	}
	if (doctor_dlopen(lib, why, sizeof(why)) < 0) {
		report("fail", "preload library %s does not load: %s", lib,
		       why);
		return;
	}
	report("ok", "preload library %s exists and loads", lib);
}

/* ------------------------------------------------------- environment */

static void doctor_env_error(void *arg, const char *line, int len)
{
	(void)arg;
	report("fail", "environment: %.*s", len, line);
}

static void doctor_env(struct ps_config *cfg)
{
	static char errs[4096];

	if (ps_config_load(cfg, ps_cli_getenv, errs, sizeof(errs)) == 0) {
		report("ok", "environment: the PORTSHIM_* variables are "
			     "valid");
		return;
	}
	ps_config_each_error(errs, doctor_env_error, NULL);
}

/* ---------------------------------------------------------- registry */

/* The state directory (default registry only); fills path/len with the
 * registry's path. Returns 0, or -1 when there is nothing more to check. */
static int doctor_statedir(char *path, size_t len)
{
	char dir[PATH_MAX], why[512];
	struct stat st;
	int fd;

	fd = ps_statedir_open(ps_cli_getenv, dir, sizeof(dir), why,
			      sizeof(why));
	if (fd < 0) {
		report("fail", "state directory: %s", why);
		return -1;
	}
	if (why[0] != '\0')
		report("warn", "state directory: %s", why);
	if (fstat(fd, &st) == 0)
		report("ok", "state directory %s: yours (uid %u), mode %04o",
		       dir, (unsigned)st.st_uid,
		       (unsigned)(st.st_mode & 07777));
	close(fd);
	if ((size_t)snprintf(path, len, "%s/registry", dir) >= len) {
		report("fail", "state directory %s: path too long", dir);
		return -1;
	}
	return 0;
}

/* Owner, mode, type and links of the registry file, as the opener wants
 * them. Returns 0 if the file exists and may be opened, -1 otherwise. */
static int doctor_registry_file(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT) {
			report("ok",
			       "registry %s does not exist yet; it is "
			       "created at first use",
			       path);
			return -1;
		}
		report("fail", "registry %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		report("fail", "registry %s is not a regular file; remove it",
		       path);
		return -1;
	}
	if (st.st_uid != geteuid()) {
		report("fail",
		       "registry %s is owned by uid %u, not by you "
		       "(uid %u); set PORTSHIM_REGISTRY to a file of yours",
		       path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (st.st_mode & 077) {
		report("fail",
		       "registry %s has mode %04o: other users could "
		       "read or change the leases; 'portshim gc --reset' "
		       "makes a fresh one",
		       path, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if (st.st_nlink != 1) {
		report("fail",
		       "registry %s has %u links; 'portshim gc "
		       "--reset' makes a fresh one",
		       path, (unsigned)st.st_nlink);
		return -1;
	}
	report("ok", "registry %s: yours (uid %u), mode %04o", path,
	       (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	return 0;
}

static void doctor_registry(const struct ps_config *cfg)
{
	static struct ps_registry reg;
	struct ps_reg_error err = { "" };
	struct ps_reg_guard guard;
	char path[PATH_MAX];
	const char *given = cfg->registry[0] != '\0' ? cfg->registry : NULL;
	int rc;

	if (given == NULL) {
		if (doctor_statedir(path, sizeof(path)) < 0)
			return;
	} else {
		snprintf(path, sizeof(path), "%s", given);
	}
	if (doctor_registry_file(path) < 0)
		return;
	rc = ps_registry_open(&reg, given, &err);
	if (rc < 0) {
		report("fail", "registry: %s",
		       err.msg[0] != '\0' ? err.msg : strerror(-rc));
		return;
	}
	rc = ps_registry_lock(&reg, &guard);
	if (rc < 0) {
		char why[320];

		report("fail", "registry %s: cannot take its lock: %s%s",
		       reg.path,
		       ps_registry_strerror(&reg, &guard, rc, why, sizeof(why)),
		       rc == -ETIMEDOUT ? "; 'portshim gc --reset' says what"
					  " can be done" :
					  "");
		return;
	}
	rc = ps_registry_check(&reg, &err);
	if (rc == 0)
		report("ok",
		       "registry %s: consistent, %u leases, %u lock "
		       "recoveries",
		       reg.path, (unsigned)reg.hdr->nleases,
		       (unsigned)reg.hdr->recoveries);
	else
		report("fail",
		       "registry %s: %s; 'portshim gc --reset' makes "
		       "a fresh one",
		       reg.path, err.msg);
	ps_registry_unlock(&reg, &guard);
}

/* ------------------------------------------------------------- ports */

static void doctor_ports(const struct ps_config *cfg)
{
	static uint8_t reserved[PS_REG_NPORTS / 8];
	const char *range = getenv("PORTSHIM_RANGE");
	char what[64];
	unsigned elo = 0, ehi = 0, lo, hi, port, n = 0;
	FILE *f;
	int rc;

	snprintf(what, sizeof(what), "PORTSHIM_RANGE %u-%u%s",
		 (unsigned)cfg->range_lo, (unsigned)cfg->range_hi,
		 range != NULL && *range != '\0' ? "" : " (the default)");
	f = fopen(EPHEMERAL_FILE, "re");
	if (f == NULL || fscanf(f, "%u %u", &elo, &ehi) != 2) {
		report("warn", "ephemeral ports: cannot read %s: %s",
		       EPHEMERAL_FILE,
		       f == NULL ? strerror(errno) : "unexpected contents");
	} else {
		report("ok", "ephemeral ports (ip_local_port_range): %u-%u",
		       elo, ehi);
		lo = cfg->range_lo > elo ? cfg->range_lo : elo;
		hi = cfg->range_hi < ehi ? cfg->range_hi : ehi;
		if (lo <= hi)
			report("warn",
			       "%s overlaps the ephemeral ports "
			       "%u-%u in %u-%u: outgoing connections can "
			       "take ports portshim would hand out (it then "
			       "skips them); choose a range outside %u-%u",
			       what, elo, ehi, lo, hi, elo, ehi);
		else
			report("ok",
			       "%s does not overlap the ephemeral ports "
			       "%u-%u",
			       what, elo, ehi);
	}
	if (f != NULL)
		fclose(f);

	rc = ps_reserved_ports_load(reserved);
	if (rc < 0) {
		report("warn",
		       "reserved ports: cannot read "
		       "ip_local_reserved_ports: %s",
		       strerror(-rc));
		return;
	}
	for (port = cfg->range_lo; port <= cfg->range_hi; port++)
		if (reserved[port / 8] & (1u << (port % 8)))
			n++;
	if (n == 0)
		report("ok",
		       "reserved ports (ip_local_reserved_ports): none "
		       "in %s",
		       what);
	else if (n == (unsigned)cfg->range_hi - cfg->range_lo + 1)
		report("fail",
		       "reserved ports (ip_local_reserved_ports): "
		       "all of %s, so no port can be handed out",
		       what);
	else
		report("ok",
		       "reserved ports (ip_local_reserved_ports): %u "
		       "in %s, skipped",
		       n, what);
}

int ps_cli_doctor(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ps_config cfg;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return ps_cli_help(doctor_help);
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	doctor_fails = 0;
	if (optind < argc)
		doctor_cmd(argv[optind]);
	doctor_library();
	doctor_env(&cfg);
	doctor_registry(&cfg);
	doctor_ports(&cfg);
	return doctor_fails > 0 ? PS_EXIT_NOTFOUND : PS_EXIT_OK;
}

int ps_cli_bypass_check(const char *cmd, enum ps_bypass mode)
{
	char path[PATH_MAX], msg[PS_LOG_LINE_MAX];
	struct ps_inspect in;

	if (mode == PS_BYPASS_IGNORE)
		return 0;
	/* Not found or unreadable: `run` reports the exec's own error. */
	if (ps_inspect_which(cmd, getenv("PATH"), path, sizeof(path)) < 0 ||
	    ps_inspect_path(AT_FDCWD, path, &in) < 0 ||
	    in.verdict == PS_INSPECT_VISIBLE)
		return 0;
	ps_inspect_message(&in, path, mode, msg, sizeof(msg));
	ps_cli_error("%s", msg);
	return mode == PS_BYPASS_FAIL ? PS_EXIT_CANNOT_EXEC : 0;
}
