/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the commands of the `portshim` program share: exit codes,
 * error and usage messages, option helpers and registry access.
 *
 * Each command lives in its own file (cmd_<name>.c) and is called with
 * argv[0] set to the command's name, so that getopt_long starts at the
 * command's own options. Commands return the process exit status.
 */
#ifndef PS_CLI_H
#define PS_CLI_H

#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "registry.h"

#define PS_CLI_PROG "portshim"

/* Where bugs go, for --help and --version (AC_INIT's bug-report field). */
#define PS_CLI_BUGS_LINE                                                \
	"Report bugs to the " PACKAGE_BUGREPORT ", with the output of " \
	"'portshim doctor'.\n"

/* Exit codes (DESIGN.md "Command line"; 125-127 as env(1) uses them). */
#define PS_EXIT_OK 0
#define PS_EXIT_NOTFOUND 1 /* not found, timed out, or cannot proceed */
#define PS_EXIT_USAGE 2
#define PS_EXIT_RUN_FAILED 125	/* `run` failed before starting CMD */
#define PS_EXIT_CANNOT_EXEC 126 /* CMD exists but cannot be executed */
#define PS_EXIT_NO_CMD 127	/* CMD was not found */

/* The commands; each returns the exit status. */
int ps_cli_run(int argc, char **argv);
int ps_cli_keeper(int argc, char **argv);
int ps_cli_supervise(int argc, char **argv);
int ps_cli_port(int argc, char **argv);
int ps_cli_ls(int argc, char **argv);
int ps_cli_gc(int argc, char **argv);
int ps_cli_who(int argc, char **argv);
int ps_cli_wait(int argc, char **argv);
int ps_cli_doctor(int argc, char **argv);
int ps_cli_pick(int argc, char **argv);
int ps_cli_release(int argc, char **argv);
int ps_cli_portserver(int argc, char **argv);
int ps_cli_env(int argc, char **argv);

struct ps_supervisor;

/*
 * Runs CMD (cmd[0] looked up in PATH) to its end, as `run` and
 * `supervise` do: as our child, in our process group, under the seccomp
 * supervisor sv unless sv is NULL, passing SIGINT, SIGTERM, SIGHUP,
 * SIGQUIT, SIGUSR1 and SIGUSR2 on to it (those ignored when we started
 * stay ignored). Returns CMD's exit status, 128+N if a signal N killed
 * it, PS_EXIT_NO_CMD or PS_EXIT_CANNOT_EXEC if it could not be executed,
 * or PS_EXIT_RUN_FAILED if it could not be started or waited for. Each
 * failure is reported, the supervisor's as "<sv_name>: <why>".
 */
int ps_cli_exec(char **cmd, struct ps_supervisor *sv, const char *sv_name);

/* The pieces of ps_cli_exec, for `run`'s keeper (spawn.c, keeper.c). */
/* Blocks the signals a wrapper passes on; the old mask in *old. */
void ps_cli_block_forwarded(sigset_t *old);
/* From now on passes those signals on to pid (0: to nobody). */
void ps_cli_forward(pid_t pid);
/* Adds to *set those of them that were not ignored when we started
 * (nohup's SIGHUP stays ignored, as CMD has it ignored too). */
void ps_cli_forwarded(sigset_t *set);
/* Whether a signal with si_code, received by a wrapper, is passed on to
 * child: always if a process sent it, a terminal's only if child left our
 * process group (else child had its own copy). */
bool ps_cli_passes_on(pid_t child, int si_code);
/* fork+exec of cmd with signal mask *mask; see spawn.c for the results. */
pid_t ps_cli_spawn(char **cmd, struct ps_supervisor *sv, const sigset_t *mask,
		   int *exec_err, char *why, size_t why_len);
/* Reports a failed ps_cli_spawn; returns the exit status it calls for. */
int ps_cli_spawn_failed(pid_t pid, int err, const char *why, char **cmd,
			const char *sv_name);
/* A wait status as a wrapper's exit status (128+N for signal N). */
int ps_cli_status(int st);

/*
 * Finds the preload library as `run` does ($PORTSHIM_LIBRARY, the build
 * tree's, the installed one) into out. Returns 0, or an exit status after
 * printing why.
 */
int ps_cli_library(char *out, size_t len);

/*
 * Inspects CMD (found through PATH) before `run` starts it: a program the
 * shim cannot see gets one line on stderr per PORTSHIM_BYPASS mode.
 * Returns 0 to go ahead, or PS_EXIT_CANNOT_EXEC for mode fail.
 */
int ps_cli_bypass_check(const char *cmd, enum ps_bypass mode);

/* Writes "portshim: <message>\n" to stderr. */
void ps_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Writes "portshim: <message>\n" and "Try 'portshim COMMAND --help'.\n"
 * (the command being run; "Try 'portshim --help'." before one is chosen)
 * to stderr and returns PS_EXIT_USAGE.
 */
int ps_cli_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

/*
 * Reports the option error that getopt_long (called with opterr = 0 and
 * an optstring beginning with ":", or "+:" for the commands that take a
 * CMD) signalled by returning '?' or ':'.
 * Returns PS_EXIT_USAGE.
 */
int ps_cli_bad_option(int ret, char **argv);

/*
 * Checks a group name given to option opt (e.g. "--group"); on success
 * copies it into out (PS_GROUP_MAX + 1 bytes) and returns 0, otherwise
 * reports a usage error naming the value and returns PS_EXIT_USAGE.
 */
int ps_cli_parse_group(const char *opt, const char *text, char *out);

/*
 * Parses a port number 1..65535 given as what (e.g. "port"); returns 0,
 * or reports a usage error naming the value and returns PS_EXIT_USAGE.
 */
int ps_cli_parse_port(const char *what, const char *text, uint16_t *out);

/* getenv with the const-correct signature of ps_getenv_fn. */
const char *ps_cli_getenv(const char *name);

/*
 * Loads the configuration of a command that hands out ports of the range
 * (`pick`, `portserver`) into cfg and sets up logging from it. Each
 * invalid variable is reported as one line and takes its default, except
 * PORTSHIM_RANGE: returns PS_EXIT_USAGE if it is invalid, else 0.
 */
int ps_cli_range_config(struct ps_config *cfg);

/*
 * Warns (one line each, on stderr) when the range LO-HI that the user
 * chose holds privileged ports (below 1024) or overlaps the kernel's
 * ephemeral ports (ip_local_port_range), as `doctor` does.
 */
void ps_cli_range_warnings(unsigned lo, unsigned hi);

/*
 * The registry path the commands use: $PORTSHIM_REGISTRY, or NULL for the
 * default location in the per-user state directory.
 */
const char *ps_cli_registry_path(void);

/*
 * Opens the registry at ps_cli_registry_path(). On failure prints the
 * reason as one line and returns -errno.
 */
int ps_cli_open_registry(struct ps_registry *reg);

/*
 * Locks the registry. On failure prints "cannot lock the registry PATH:
 * REASON" and returns -errno; 0 with the lock held through g.
 */
int ps_cli_lock_registry(struct ps_registry *reg, struct ps_reg_guard *g);

/*
 * The options that `ls`, `port` and `wait` share, for the default case of
 * their getopt_long loop (optstring "...:g:...h"): -g/--group G (checked
 * and copied into group, PS_GROUP_MAX + 1 bytes), -h/--help (prints help)
 * and getopt_long's errors. Returns -1 to go on with the next option, or
 * the exit status the command returns with.
 */
int ps_cli_group_option(int c, char **argv, const char *help, char *group);

/*
 * The operand of `port` and `wait` (cmd, for messages): exactly one VPORT
 * at argv[optind], into vport; and the group, when no --group filled it
 * in, from ps_cli_default_group(). Returns 0, or reports a usage error
 * and returns PS_EXIT_USAGE.
 */
int ps_cli_vport_operand(const char *cmd, int argc, char **argv, char *group,
			 uint16_t *vport);

/*
 * The real port that vport has in group, read under the lock: returns 1
 * with it in *real, 0 if the group has no lease of vport, or -errno if
 * the registry cannot be locked (reported as ps_cli_lock_registry does).
 */
int ps_cli_lookup(struct ps_registry *reg, const char *group, uint16_t vport,
		  uint16_t *real);

/*
 * Names the protocols of a lease's protos bits: "tcp", "udp", "tcp+udp",
 * or "-" when no protocol has bound it yet. Returns a static string.
 */
const char *ps_cli_protos_name(unsigned protos);

/*
 * Writes a usage text to stdout and returns PS_EXIT_OK; for --help.
 */
int ps_cli_help(const char *text);

/*
 * The default group of `port` and `wait`: $PORTSHIM_GROUP with the
 * suffixes of PORTSHIM_GROUP_FROM applied, as the shim resolves it in
 * this process. Copies it into out (PS_GROUP_MAX + 1 bytes) and returns
 * 0, or reports a usage error and returns PS_EXIT_USAGE.
 */
int ps_cli_default_group(char *out);

/*
 * The registry file's path: $PORTSHIM_REGISTRY, or "registry" in the
 * verified per-user state directory. Returns 0, or an exit status after
 * printing why.
 */
int ps_cli_registry_file(char *path, size_t len);

/* A lease as `ls` and `who` show it: a copy taken under the lock, and
 * what is read outside it. */
#define PS_CLI_CMD_MAX 256 /* longest command line shown */
struct ps_cli_lease {
	struct ps_lease lease;
	uint16_t real;
	bool alive; /* holder lives, time not run out */
	uint64_t age_s;
	/* The maker, or when it is gone, the process holding the lease's
	 * socket now (a daemon that made it before it forked). */
	pid_t pid;
	char cmd[PS_CLI_CMD_MAX]; /* pid's command, "-" if none */
};

/* Fills in alive, age_s and cmd (reads /proc; no lock needed). */
void ps_cli_lease_describe(struct ps_cli_lease *v, uint64_t now_ns);

/* Formats an age in seconds: "42s", "3m07s", "5h02m", "2d03h". */
void ps_cli_format_age(uint64_t s, char *buf, size_t len);

/*
 * Prints s to stdout as a JSON string; bytes that are not valid UTF-8
 * become U+FFFD, so the document stays valid JSON.
 */
void ps_cli_json_string(const char *s);

/* Room for a group name made safe by ps_cli_group_text. */
#define PS_CLI_GROUP_TEXT (4 * (PS_GROUP_MAX + 1) + 1)

/*
 * A registry's group field made safe to print, into out
 * (PS_CLI_GROUP_TEXT bytes): reads no more than the field's
 * PS_GROUP_MAX + 1 bytes, NUL or not, and writes every byte outside the
 * group alphabet ([A-Za-z0-9._-]; a corrupt or hostile registry may
 * hold anything) as \xHH. Returns out.
 */
const char *ps_cli_group_text(const char *group, char *out);

/*
 * Prints a lease as the JSON object of `ls --json`: group, kind,
 * protocols, virtual, real, pid, holder_pid, alive, age_seconds,
 * command (see portshim(1)).
 */
void ps_cli_json_lease(const struct ps_cli_lease *v);

/*
 * Creates the empty file "<folder>/<group>.<ext>" (a left-over of the
 * same name is replaced), the folder being the registry's (registry, as
 * the default mapping files) or, for "", the state directory, and stores
 * its path in path (len bytes): the report of `run --report`, the
 * PORTSHIM_WARNED file. Returns 0, or -1 (after printing why unless
 * quiet).
 */
int ps_cli_state_file(const char *registry, const char *group, const char *ext,
		      char *path, size_t len, bool quiet);

/*
 * Prints to standard error the ports that the report at path lists (each
 * with bound / connected to) and the --ports that tags the bound ones,
 * then removes the file.
 */
void ps_cli_report_print(const char *path, const char *group);

#endif
