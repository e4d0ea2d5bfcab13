/* SPDX-License-Identifier: MIT */
/*
 * cmd_port.c - `portshim port [--group G] [--udp] VPORT`: prints the real
 * port that VPORT has in the group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "registry.h"

static const char port_help[] =
	"Usage: portshim port [--group G] [--udp] VPORT\n"
	"Print the real port that virtual port VPORT has in group G.\n"
	"\n"
	"  -g, --group G     the group (default: $PORTSHIM_GROUP, with the\n"
	"                    suffixes of $PORTSHIM_GROUP_FROM applied)\n"
	"  -u, --udp         name UDP in messages (a lease covers TCP and UDP)\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: 0 printed, 1 no such lease, 2 bad usage.\n";

/* Resolved exactly as the shim resolves it in this process, so that a
 * script run by a worker asks for its own worker's port. Errors in
 * unrelated variables do not matter here and are ignored. */
int ps_cli_default_group(char *out)
{
	static struct ps_config cfg;
	char err[1024];
	const char *base = getenv("PORTSHIM_GROUP");

	if (base == NULL || *base == '\0')
		return ps_cli_usage_error("no group: use --group or set "
					  "PORTSHIM_GROUP");
	if (!ps_group_valid(base))
		return ps_cli_usage_error("invalid PORTSHIM_GROUP '%s': use "
					  "1-%d characters of A-Z a-z 0-9 "
					  ". _ -",
					  base, PS_GROUP_MAX);
	ps_config_load(&cfg, ps_cli_getenv, err, sizeof(err));
	if (ps_config_group_resolve(&cfg, ps_cli_getenv, base, out) < 0)
		return ps_cli_usage_error("the group '%s' with the suffixes "
					  "of PORTSHIM_GROUP_FROM is longer "
					  "than %d characters",
					  base, PS_GROUP_MAX);
	return 0;
}

int ps_cli_port(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "udp", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char group[PS_GROUP_MAX + 1] = "";
	enum ps_proto proto = PS_TCP;
	struct ps_registry reg;
	uint16_t vport, real = 0;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":g:uh", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			proto = PS_UDP;
			break;
		default:
			rc = ps_cli_group_option(c, argv, port_help, group);
			if (rc >= 0)
				return rc;
			break;
		}
	}
	rc = ps_cli_vport_operand("port", argc, argv, group, &vport);
	if (rc != 0)
		return rc;

	if (ps_cli_open_registry(&reg) < 0)
		return PS_EXIT_NOTFOUND;
	rc = ps_cli_lookup(&reg, group, vport, &real);
	if (rc < 0)
		return PS_EXIT_NOTFOUND;
	if (rc == 0) {
		ps_cli_error("no lease for %s port %u in group %s",
			     ps_proto_name(proto), vport, group);
		return PS_EXIT_NOTFOUND;
	}
	printf("%u\n", real);
	return PS_EXIT_OK;
}
