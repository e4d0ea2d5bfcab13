/* SPDX-License-Identifier: MIT */
/*
 * main.c - the `portshim` program: global options, command dispatch and
 * the helpers the commands share (cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "keeper_int.h"
#include "log.h"
#include "portspec.h"
#include "registry.h"

static const char main_help[] =
	"Usage: portshim COMMAND [OPTION]... [ARG]...\n"
	"Run unmodified programs that use fixed ports side by side: a preloaded\n"
	"library moves their tagged ports to coordinated free ports per group.\n"
	"\n"
	"Commands:\n"
	"  run [--ports SPEC] [--group G] [--map FILE] [--range LO-HI] [--report]\n"
	"      [--supervise] [--per-job] [--no-keeper] [--] CMD...\n"
	"                    run CMD with the shim preloaded, in a new group;\n"
	"                    exit with CMD's status; the group is released when\n"
	"                    its last process ends (--no-keeper: when CMD ends);\n"
	"                    --supervise also sees static and Go programs;\n"
	"                    --per-job gives each job of a job runner a group\n"
	"  supervise [--] CMD...\n"
	"                    run CMD under the seccomp supervisor in the group\n"
	"                    of the environment (static and Go programs)\n"
	"  port [--group G] [--udp] VPORT\n"
	"                    print the real port of VPORT in the group\n"
	"  wait [--group G] [--timeout S] [--udp] VPORT\n"
	"                    wait until VPORT is mapped in the group and its\n"
	"                    server accepts connections; print the real port\n"
	"  env [--group G]   print the group's mapping as shell lines:\n"
	"                    export PORTSHIM_TCP_8080=20003\n"
	"  ls [--group G] [--json]\n"
	"                    list the leases of the registry\n"
	"  who PORT [--udp] [--listening] [--json]\n"
	"                    show the sockets and processes on real or virtual\n"
	"                    port PORT, and their leases\n"
	"  gc [--dry-run] [--reset]\n"
	"                    reclaim the leases of dead groups; --reset rebuilds\n"
	"                    a registry that is refused\n"
	"  doctor [CMD]      check whether portshim can see CMD, the registry's\n"
	"                    health and the port ranges\n"
	"  pick [--tcp|--udp] [--count N] [--group G] [--hold PID] [--for S]\n"
	"                    print free ports leased to a holder process (default:\n"
	"                    the parent) until it dies, --for ends, or release\n"
	"  release [--force] [--hold PID] PORT...\n"
	"                    end leases made by pick\n"
	"  portserver [--address ADDR]\n"
	"                    serve portpicker's portserver protocol from the\n"
	"                    registry (PORTSERVER_ADDRESS=@unittest-portserver)\n"
	"  help [COMMAND]    show this help, or COMMAND's\n"
	"\n"
	"Options:\n"
	"  -h, --help        show this help (or COMMAND --help for a command)\n"
	"  -V, --version     show the version\n"
	"\n"
	"Exit status: 0 success, 1 not found or failed, 2 bad usage;\n"
	"`run` exits with CMD's status (128+N if CMD was killed by signal N,\n"
	"125 if portshim failed, 126 if CMD cannot run, 127 if it was not found).\n"
	"\n"
	"Environment: PORTSHIM_PORTS, PORTSHIM_GROUP, PORTSHIM_GROUP_FROM,\n"
	"PORTSHIM_MAP_FILE, PORTSHIM_RANGE, PORTSHIM_REGISTRY, PORTSHIM_UNMAPPED,\n"
	"PORTSHIM_ON_ERROR, PORTSHIM_LOG, PORTSHIM_LOG_FILE, PORTSHIM_BYPASS,\n"
	"PORTSHIM_KEEP_ENV; see portshim(1).\n"
	"\n" PS_CLI_BUGS_LINE
	"portshim is free software under the MIT licence; see --version.\n";

struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);
};

static const struct cli_command commands[] = {
	{ "run", ps_cli_run },
	{ "supervise", ps_cli_supervise },
	{ "port", ps_cli_port },
	{ "wait", ps_cli_wait },
	{ "ls", ps_cli_ls },
	{ "who", ps_cli_who },
	{ "gc", ps_cli_gc },
	{ "doctor", ps_cli_doctor },
	{ "pick", ps_cli_pick },
	{ "release", ps_cli_release },
	{ "portserver", ps_cli_portserver },
	{ "env", ps_cli_env },
};

/*
 * Writes "portshim: <message>\n" and then tail to stderr. stdout goes
 * first: when both reach one terminal or file, what was printed before
 * the error appears before it.
 */
__attribute__((format(printf, 2, 0))) static void
cli_report(const char *tail, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	fflush(stdout);
	fprintf(stderr, "%s: %s\n%s", PS_CLI_PROG, line, tail);
}

void ps_cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cli_report("", fmt, ap);
	va_end(ap);
}

/* The command being run, for the "Try" line of a usage error; NULL
 * before one is chosen. */
static const char *cli_command;

int ps_cli_usage_error(const char *fmt, ...)
{
	char tail[64];
	va_list ap;

	snprintf(tail, sizeof(tail), "Try '%s%s%s --help'.\n", PS_CLI_PROG,
		 cli_command != NULL ? " " : "",
		 cli_command != NULL ? cli_command : "");
	va_start(ap, fmt);
	cli_report(tail, fmt, ap);
	va_end(ap);
	return PS_EXIT_USAGE;
}

int ps_cli_bad_option(int ret, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (ret == ':') {
		if (optopt != 0 && strncmp(arg, "--", 2) != 0)
			return ps_cli_usage_error(
				"option requires an argument -- '%c'", optopt);
		return ps_cli_usage_error("option '%s' requires an argument",
					  arg);
	}
	if (optopt != 0)
		return ps_cli_usage_error("invalid option -- '%c'", optopt);
	return ps_cli_usage_error("unrecognized option '%s'", arg);
}

int ps_cli_parse_group(const char *opt, const char *text, char *out)
{
	if (!ps_group_valid(text))
		return ps_cli_usage_error(
			"invalid %s '%s': use 1-%d characters of "
			"A-Z a-z 0-9 . _ -",
			opt, text, PS_GROUP_MAX);
	strcpy(out, text);
	return 0;
}

int ps_cli_parse_port(const char *what, const char *text, uint16_t *out)
{
	unsigned long v;

	if (ps_parse_uint(text, 1, 65535, &v) < 0)
		return ps_cli_usage_error("invalid %s '%s': not a port "
					  "(1-65535)",
					  what, text);
	*out = (uint16_t)v;
	return 0;
}

const char *ps_cli_getenv(const char *name)
{
	return getenv(name);
}

/*
 * An invalid PORTSHIM_RANGE is refused rather than replaced by the
 * default range: ports from a range the user did not mean would mix
 * with the ones they meant to keep apart.
 */
int ps_cli_range_config(struct ps_config *cfg)
{
	char err[2048] = "";
	bool bad_range = false;

	if (ps_config_load(cfg, ps_cli_getenv, err, sizeof(err)) != 0) {
		for (char *line = err, *end; *line != '\0'; line = end) {
			end = line + strcspn(line, "\n");
			if (*end == '\n')
				*end++ = '\0';
			ps_cli_error("%s", line);
			if (strncmp(line, "PORTSHIM_RANGE:", 15) == 0)
				bad_range = true;
		}
	}
	ps_log_setup(cfg->log_level, cfg->log_file);
	return bad_range ? PS_EXIT_USAGE : 0;
}

void ps_cli_range_warnings(unsigned lo, unsigned hi)
{
	unsigned elo, ehi;
	FILE *f;

	if (lo < 1024)
		ps_cli_error("warning: the range %u-%u holds privileged ports "
			     "(below 1024), which only root (or "
			     "CAP_NET_BIND_SERVICE) can bind",
			     lo, hi);
	f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
	if (f == NULL)
		return;
	if (fscanf(f, "%u %u", &elo, &ehi) == 2 && lo <= ehi && elo <= hi)
		ps_cli_error("warning: the range %u-%u overlaps the ephemeral "
			     "ports %u-%u (ip_local_port_range): outgoing "
			     "connections can take ports portshim would hand "
			     "out; choose a range outside %u-%u",
			     lo, hi, elo, ehi, elo, ehi);
	fclose(f);
}

const char *ps_cli_registry_path(void)
{
	const char *p = getenv("PORTSHIM_REGISTRY");

	return p != NULL && *p != '\0' ? p : NULL;
}

int ps_cli_open_registry(struct ps_registry *reg)
{
	struct ps_reg_error err = { "" };
	int rc;

	rc = ps_registry_open(reg, ps_cli_registry_path(), &err);
	if (rc < 0)
		ps_cli_error("%s",
			     err.msg[0] != '\0' ? err.msg : strerror(-rc));
	return rc;
}

int ps_cli_lock_registry(struct ps_registry *reg, struct ps_reg_guard *g)
{
	int rc = ps_registry_lock(reg, g);
	char why[320];

	if (rc < 0)
		ps_cli_error(
			"cannot lock the registry %s: %s", reg->path,
			ps_registry_strerror(reg, g, rc, why, sizeof(why)));
	return rc;
}

/*
 * Help returns PS_EXIT_OK, which is 0: so "go on" needs a value that no
 * exit status has.
 */
int ps_cli_group_option(int c, char **argv, const char *help, char *group)
{
	int rc;

	switch (c) {
	case 'g':
		rc = ps_cli_parse_group("--group", optarg, group);
		return rc != 0 ? rc : -1;
	case 'h':
		return ps_cli_help(help);
	default:
		return ps_cli_bad_option(c, argv);
	}
}

int ps_cli_vport_operand(const char *cmd, int argc, char **argv, char *group,
			 uint16_t *vport)
{
	int rc;

	if (optind >= argc)
		return ps_cli_usage_error("%s: missing VPORT", cmd);
	if (optind + 1 < argc)
		return ps_cli_usage_error("%s: unexpected argument '%s'", cmd,
					  argv[optind + 1]);
	rc = ps_cli_parse_port("port", argv[optind], vport);
	if (rc != 0)
		return rc;
	if (group[0] == '\0')
		return ps_cli_default_group(group);
	return 0;
}

const char *ps_cli_protos_name(unsigned protos)
{
	bool tcp = protos & PS_PROTO_BIT(PS_TCP);
	bool udp = protos & PS_PROTO_BIT(PS_UDP);

	if (tcp && udp)
		return "tcp+udp";
	if (tcp)
		return "tcp";
	if (udp)
		return "udp";
	return "-";
}

int ps_cli_help(const char *text)
{
	fputs(text, stdout);
	return PS_EXIT_OK;
}

static int cli_version(void)
{
	printf("%s %s\n"
	       "Copyright (C) 2026 the portshim authors.\n"
	       "License MIT: <https://spdx.org/licenses/MIT.html>.\n"
	       "This is free software: you are free to change and "
	       "redistribute it.\n"
	       "There is NO WARRANTY, to the extent permitted by law.\n"
	       "\n" PS_CLI_BUGS_LINE,
	       PS_CLI_PROG, PACKAGE_VERSION);
	return PS_EXIT_OK;
}

/* Flushes stdout and turns a write error (full disk, closed pipe) into a
 * failure, as GNU programs do: a listing that was cut short must not
 * report success. */
static int cli_finish(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			ps_cli_error("write error: %s", strerror(errno));
		if (status == PS_EXIT_OK)
			status = PS_EXIT_NOTFOUND;
	}
	return status;
}

/*
 * A relative PORTSHIM_REGISTRY would name another file in every working
 * directory: every command refuses it, as the shim does (a command's
 * --help still works).
 */
static int cli_check_registry(int argc, char **argv)
{
	const char *p = getenv("PORTSHIM_REGISTRY");

	if (p == NULL || p[0] == '\0' || p[0] == '/')
		return 0;
	if (argc > 1 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
		return 0;
	ps_cli_error("PORTSHIM_REGISTRY: '%s' is a relative path, expected "
		     "an absolute one (starting with /)",
		     p);
	return PS_EXIT_USAGE;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static char help_opt[] = "--help";
	char *help_argv[3] = { NULL, help_opt, NULL };
	const char *name;
	size_t i;
	int c;

	/* "+" stops at the command name: its options are its own. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			return cli_finish(ps_cli_help(main_help));
		case 'V':
			return cli_finish(cli_version());
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	if (optind >= argc)
		return ps_cli_usage_error("missing command");
	name = argv[optind];
	/* Not a command of the user's: a keeper going on (keeper_int.h). */
	if (strcmp(name, PS_KEEPER_COMMAND) == 0)
		return ps_cli_keeper(argc - optind, argv + optind);
	if (strcmp(name, "help") == 0) {
		/* "portshim help CMD" is "portshim CMD --help". */
		if (optind + 1 >= argc)
			return cli_finish(ps_cli_help(main_help));
		if (optind + 2 < argc)
			return ps_cli_usage_error("help: unexpected argument "
						  "'%s'",
						  argv[optind + 2]);
		name = argv[optind + 1];
		for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
			if (strcmp(name, commands[i].name) != 0)
				continue;
			help_argv[0] = argv[optind + 1];
			cli_command = commands[i].name;
			optind = 0;
			return cli_finish(commands[i].fn(2, help_argv));
		}
		return ps_cli_usage_error("unknown command '%s'", name);
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		/* The command parses from its own name on, from scratch. */
		argc -= optind;
		argv += optind;
		optind = 0;
		cli_command = commands[i].name;
		c = cli_check_registry(argc, argv);
		if (c != 0)
			return c;
		return cli_finish(commands[i].fn(argc, argv));
	}
	return ps_cli_usage_error("unknown command '%s'", name);
}
