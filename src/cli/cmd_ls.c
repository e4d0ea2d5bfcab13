/* SPDX-License-Identifier: MIT */
/*
 * cmd_ls.c - `portshim ls [--group G] [--json]`: lists the leases of the
 * registry, as an aligned table or as one JSON document.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "proc.h"
#include "registry.h"

static const char ls_help[] =
	"Usage: portshim ls [--group G] [--json]\n"
	"List the leases of the registry: group, protocols, virtual port, real\n"
	"port, pid that made the lease (or, when it is gone, that holds the\n"
	"lease's socket now: a daemon), whether the lease is alive, its age and\n"
	"that process's command.\n"
	"\n"
	"  -g, --group G     only group G and the worker groups derived from it\n"
	"                    (G.<suffix>, see PORTSHIM_GROUP_FROM)\n"
	"  -j, --json        print one JSON document instead of a table\n"
	"  -h, --help        show this help\n"
	"\n"
	"PROTO is tcp, udp or tcp+udp for a group's lease (the protocols bound\n"
	"so far; - if none yet), and pick for a port leased by `portshim pick`,\n"
	"the C API or the portserver: such a lease belongs to a holder process,\n"
	"not to a group, so its GROUP and VIRTUAL are -.\n";

struct ls_rows {
	struct ps_cli_lease *v;
	size_t n, cap;
};

/* True if group is g or a worker group derived from it ("g.<suffix>"). */
static bool ls_group_match(const char *group, const char *g)
{
	size_t len = strlen(g);

	return strncmp(group, g, len) == 0 &&
	       (group[len] == '\0' || group[len] == '.');
}

/* Appends a row; returns 0 or -ENOMEM. */
static int ls_rows_add(struct ls_rows *rows, const struct ps_lease *l,
		       uint16_t real)
{
	struct ps_cli_lease *v;
	size_t cap;

	if (rows->n == rows->cap) {
		cap = rows->cap ? rows->cap * 2 : 64;
		v = realloc(rows->v, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		rows->v = v;
		rows->cap = cap;
	}
	memset(&rows->v[rows->n], 0, sizeof(rows->v[rows->n]));
	rows->v[rows->n].lease = *l;
	rows->v[rows->n].real = real;
	rows->n++;
	return 0;
}

/*
 * Copies the leases out under the lock, so that the slow parts (reading
 * /proc for liveness and command lines, printing to a pipe that may
 * block) happen after everyone else can use the registry again.
 */
static int ls_collect(struct ps_registry *reg, const char *group,
		      struct ls_rows *rows)
{
	struct ps_reg_guard guard;
	struct ps_lease *l;
	uint32_t port;
	int rc;

	rc = ps_cli_lock_registry(reg, &guard);
	if (rc < 0)
		return rc;
	for (port = 1; port < PS_REG_NPORTS; port++) {
		l = ps_registry_at(reg, (uint16_t)port);
		if (l == NULL)
			continue;
		if (group[0] != '\0' && !ls_group_match(l->group, group))
			continue;
		rc = ls_rows_add(rows, l, (uint16_t)port);
		if (rc < 0)
			break;
	}
	ps_registry_unlock(reg, &guard);
	if (rc < 0)
		ps_cli_error("cannot list the leases: %s", strerror(-rc));
	return rc;
}

/* Group leases first, by group and virtual port; pick leases by port. */
static int ls_row_cmp(const void *a, const void *b)
{
	const struct ps_cli_lease *x = a, *y = b;
	int c;

	if (x->lease.kind != y->lease.kind)
		return x->lease.kind == PS_KIND_GROUP ? -1 : 1;
	c = strcmp(x->lease.group, y->lease.group);
	if (c != 0)
		return c;
	if (x->lease.vport != y->lease.vport)
		return x->lease.vport < y->lease.vport ? -1 : 1;
	return x->real < y->real ? -1 : x->real > y->real;
}

/* Column texts of a row of the table. */
struct ls_cells {
	char group[PS_CLI_GROUP_TEXT];
	char proto[16];
	char vport[8];
	char real[8];
	char pid[16];
	char alive[8];
	char age[32];
};

#define LS_NCOLS 7

static void ls_cells_fill(const struct ps_cli_lease *r, struct ls_cells *c)
{
	const struct ps_lease *l = &r->lease;
	bool pick = l->kind == PS_KIND_PICK;

	if (l->group[0] != '\0')
		ps_cli_group_text(l->group, c->group);
	else
		strcpy(c->group, "-");
	snprintf(c->proto, sizeof(c->proto), "%s",
		 pick ? "pick" : ps_cli_protos_name(l->protos));
	if (pick || l->vport == 0)
		strcpy(c->vport, "-");
	else
		snprintf(c->vport, sizeof(c->vport), "%u", l->vport);
	snprintf(c->real, sizeof(c->real), "%u", r->real);
	snprintf(c->pid, sizeof(c->pid), "%ld", (long)r->pid);
	strcpy(c->alive, r->alive ? "yes" : "no");
	ps_cli_format_age(r->age_s, c->age, sizeof(c->age));
}

static const char *ls_cell(const struct ls_cells *c, int i)
{
	const char *v[LS_NCOLS] = { c->group, c->proto, c->vport, c->real,
				    c->pid,   c->alive, c->age };

	return v[i];
}

/* The table: a header line, then one row per lease, columns aligned;
 * numbers right-aligned, text left-aligned, COMMAND last and unpadded. */
static void ls_print_table(const struct ls_rows *rows)
{
	static const char *const head[LS_NCOLS] = { "GROUP", "PROTO", "VIRTUAL",
						    "REAL",  "PID",   "ALIVE",
						    "AGE" };
	static const bool right[LS_NCOLS] = { false, false, true, true,
					      true,  false, true };
	struct ls_cells cells;
	int width[LS_NCOLS];
	size_t i;
	int k, w;

	for (k = 0; k < LS_NCOLS; k++)
		width[k] = (int)strlen(head[k]);
	for (i = 0; i < rows->n; i++) {
		ls_cells_fill(&rows->v[i], &cells);
		for (k = 0; k < LS_NCOLS; k++) {
			w = (int)strlen(ls_cell(&cells, k));
			if (w > width[k])
				width[k] = w;
		}
	}
	for (k = 0; k < LS_NCOLS; k++)
		printf(right[k] ? "%*s  " : "%-*s  ", width[k], head[k]);
	printf("COMMAND\n");
	for (i = 0; i < rows->n; i++) {
		ls_cells_fill(&rows->v[i], &cells);
		for (k = 0; k < LS_NCOLS; k++)
			printf(right[k] ? "%*s  " : "%-*s  ", width[k],
			       ls_cell(&cells, k));
		printf("%s\n", rows->v[i].cmd);
	}
}

static void ls_print_json(const struct ls_rows *rows)
{
	size_t i;

	printf("{\"leases\":[");
	for (i = 0; i < rows->n; i++) {
		printf("%s\n", i ? "," : "");
		ps_cli_json_lease(&rows->v[i]);
	}
	printf("%s]}\n", rows->n ? "\n" : "");
}

int ps_cli_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char group[PS_GROUP_MAX + 1] = "";
	struct ls_rows rows = { NULL, 0, 0 };
	struct ps_registry reg;
	bool json = false;
	uint64_t now;
	size_t i;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":g:jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		default:
			rc = ps_cli_group_option(c, argv, ls_help, group);
			if (rc >= 0)
				return rc;
			break;
		}
	}
	if (optind < argc)
		return ps_cli_usage_error("ls: unexpected argument '%s'",
					  argv[optind]);

	if (ps_cli_open_registry(&reg) < 0)
		return PS_EXIT_NOTFOUND;
	if (ls_collect(&reg, group, &rows) < 0) {
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	now = ps_now_ns();
	for (i = 0; i < rows.n; i++)
		ps_cli_lease_describe(&rows.v[i], now);
	if (rows.n > 1)
		qsort(rows.v, rows.n, sizeof(rows.v[0]), ls_row_cmp);
	if (json)
		ls_print_json(&rows);
	else
		ls_print_table(&rows);
	rc = PS_EXIT_OK;
out:
	free(rows.v);
	return rc;
}
