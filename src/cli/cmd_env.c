/* SPDX-License-Identifier: MIT */
/*
 * cmd_env.c - `portshim env [--group G]`: prints the group's mapping as
 * shell `export` lines (PORTSHIM_TCP_8080=20003), for the programs and
 * tests that take their ports as arguments or variables.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "registry.h"

static const char env_help[] =
	"Usage: portshim env [--group G]\n"
	"Print the mapping of group G as shell commands, one per virtual port\n"
	"and protocol, in the order of the virtual ports:\n"
	"\n"
	"  export PORTSHIM_TCP_8080=20003\n"
	"  export PORTSHIM_UDP_5353=20004\n"
	"\n"
	"so that a shell can take them in with eval \"$(portshim env)\". A\n"
	"virtual port that no socket has bound yet is shown as TCP.\n"
	"\n"
	"  -g, --group G     the group (default: $PORTSHIM_GROUP, with the\n"
	"                    suffixes of $PORTSHIM_GROUP_FROM applied)\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: 0 printed (nothing when the group has no lease), 1 the\n"
	"registry cannot be read, 2 bad usage.\n";

/* The group's mapping, by virtual port; copied out under the lock. */
static uint16_t env_real[PS_REG_NPORTS];
static uint8_t env_protos[PS_REG_NPORTS];

static int env_collect(struct ps_registry *reg, const char *group)
{
	struct ps_reg_guard guard;
	struct ps_reg_cursor cur;
	struct ps_lease *l;
	int rc;

	rc = ps_cli_lock_registry(reg, &guard);
	if (rc < 0)
		return rc;
	memset(&cur, 0, sizeof(cur));
	while ((l = ps_registry_next(reg, &cur)) != NULL) {
		if (l->kind != PS_KIND_GROUP || l->vport == 0 ||
		    strcmp(l->group, group) != 0)
			continue;
		env_real[l->vport] = ps_registry_port(reg, l);
		env_protos[l->vport] = l->protos;
	}
	ps_registry_unlock(reg, &guard);
	return 0;
}

int ps_cli_env(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char group[PS_GROUP_MAX + 1] = "";
	struct ps_registry reg;
	uint32_t v;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":g:h", opts, NULL)) != -1) {
		rc = ps_cli_group_option(c, argv, env_help, group);
		if (rc >= 0)
			return rc;
	}
	if (optind < argc)
		return ps_cli_usage_error("env: unexpected argument '%s'",
					  argv[optind]);
	if (group[0] == '\0') {
		rc = ps_cli_default_group(group);
		if (rc != 0)
			return rc;
	}
	if (ps_cli_open_registry(&reg) < 0)
		return PS_EXIT_NOTFOUND;
	if (env_collect(&reg, group) < 0)
		return PS_EXIT_NOTFOUND;
	for (v = 1; v < PS_REG_NPORTS; v++) {
		if (env_real[v] == 0)
			continue;
		if ((env_protos[v] & PS_PROTO_BIT(PS_TCP)) ||
		    env_protos[v] == 0)
			printf("export PORTSHIM_TCP_%u=%u\n", v, env_real[v]);
		if (env_protos[v] & PS_PROTO_BIT(PS_UDP))
			printf("export PORTSHIM_UDP_%u=%u\n", v, env_real[v]);
	}
	return PS_EXIT_OK;
}
