/* SPDX-License-Identifier: MIT */
/*
 * cmd_supervise.c - `portshim supervise [--] CMD...`: runs CMD under the
 * seccomp supervisor in the group of the environment it is given, without
 * making, owning or releasing a group.
 *
 * For a program the preload cannot see that is started inside a group
 * (a test script under `portshim run` that starts a Go server, say), and
 * for the preload's exec wrappers under PORTSHIM_BYPASS=supervise, which
 * can run a static or Go program as `portshim supervise -- PROGRAM...`
 * instead of warning. Every PORTSHIM_* variable is passed on as it is, so
 * the supervised program's policy is exactly what the preload's would be.
 */
#include <stdio.h>

#include "cli.h"
#include "config.h"
#include "supervise.h"

static const char supervise_help[] =
	"Usage: portshim supervise [--] CMD [ARG]...\n"
	"Run CMD under portshim's seccomp supervisor, in the group that the\n"
	"environment names (PORTSHIM_PORTS, PORTSHIM_GROUP and the rest, as\n"
	"`portshim run` sets them): the socket system calls of programs that the\n"
	"preload cannot see (static and Go programs, raw system calls) get the\n"
	"group's ports too. No group is made or released. CMD runs with\n"
	"no_new_privs. Needs Linux 5.6 or later.\n"
	"\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: CMD's status; 128+N if CMD was killed by signal N; 2 bad\n"
	"usage or no group in the environment; 125 the supervisor could not\n"
	"start; 126 CMD cannot be executed; 127 CMD was not found.\n";

int ps_cli_supervise(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ps_config cfg;
	static char errs[4096];
	struct ps_supervisor *sv = NULL;
	char why[512];
	int c, status;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		if (c == 'h')
			return ps_cli_help(supervise_help);
		return ps_cli_bad_option(c, argv);
	}
	if (optind >= argc)
		return ps_cli_usage_error("supervise: missing CMD");
	/* The command's own variables are checked where they are used:
	 * by the preload and by the supervisor, each with its log line. */
	ps_config_load(&cfg, ps_cli_getenv, errs, sizeof(errs));
	if (!cfg.enabled) {
		ps_cli_error(
			"supervise: PORTSHIM_PORTS is not set, so there is "
			"no group to supervise %s in; use 'portshim run "
			"--supervise'",
			argv[optind]);
		return PS_EXIT_USAGE;
	}
	if (ps_supervise_prepare(&sv, &cfg, why, sizeof(why)) < 0) {
		ps_cli_error("supervise: %s", why);
		return PS_EXIT_RUN_FAILED;
	}
	status = ps_cli_exec(argv + optind, sv, "supervise");
	ps_supervise_stop(sv);
	return status;
}
