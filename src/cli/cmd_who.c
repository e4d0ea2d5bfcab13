/* SPDX-License-Identifier: MIT */
/*
 * cmd_who.c - `portshim who PORT [--udp] [--json]`: every socket on this
 * host bound or connected to PORT, or to a real port that PORT stands
 * for in some group, with its processes and the lease portshim made.
 *
 * Three sources, read in this order: the registry (which real ports PORT
 * stands for, and the lease of each), the kernel's socket tables
 * (netstat.h) and the descriptors of every process. Only the registry
 * needs the lock, and only while its leases are copied out.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "netstat.h"
#include "registry.h"

static const char who_help[] =
	"Usage: portshim who PORT [--udp] [--listening] [--json]\n"
	"Say who holds PORT on this host, in one line, then show every socket\n"
	"bound or connected to PORT, as a real port and, where PORT is a virtual\n"
	"port of a group, at the real port it maps to: protocol, state, local\n"
	"and remote address, the processes that hold it and their command, and\n"
	"the lease portshim made for it.\n"
	"\n"
	"  -u, --udp         UDP sockets instead of TCP ones\n"
	"  -l, --listening   only listening sockets (bound, for UDP), not the\n"
	"                    connections and TIME_WAIT leftovers\n"
	"  -j, --json        print one JSON document instead of a table (its\n"
	"                    schema: docs/who-json.md, \"version\": 1)\n"
	"  -h, --help        show this help\n"
	"\n"
	"Without root, the processes of other users cannot be looked into: their\n"
	"sockets are shown, and a note says that their process was not seen.\n"
	"\n"
	"Exit status: 0 something holds the port, 1 nothing does, 2 bad usage.\n";

/* The version of `who --json`'s document (docs/who-json.md): raised
 * when a field changes meaning or goes; new fields keep it. */
#define PS_WHO_JSON_VERSION 1

struct who_row {
	struct ps_sock s;
	bool remote;	/* matched on the remote port */
	int lease;	/* index in who.leases, or -1 */
	size_t nowners; /* processes holding it */
	size_t first;	/* its first entry in who.owners */
};

struct who_owner {
	size_t row;
	pid_t pid;
	char cmd[PS_CLI_CMD_MAX];
};

struct who {
	uint16_t port;
	enum ps_proto proto;
	bool listening;			 /* --listening: listeners only */
	uint8_t want[PS_REG_NPORTS / 8]; /* ports to look for */
	struct ps_cli_lease *leases;
	size_t nleases;
	struct who_row *rows;
	size_t nrows, caprows;
	struct who_owner *owners;
	size_t nowners, capowners;
	struct ps_netstat_stats st;
	char reg_error[PATH_MAX +
		       640]; /* why leases are not shown; "" if they are */
	bool oom;
};

static void who_want(struct who *w, uint16_t port)
{
	w->want[port / 8] |= (uint8_t)(1u << (port % 8));
}

static bool who_wants(const struct who *w, uint16_t port)
{
	return port != 0 && (w->want[port / 8] & (1u << (port % 8)));
}

/* Grows an array of elements of size sz to hold n + 1; returns 0 or -1. */
static int who_grow(void **v, size_t *cap, size_t n, size_t sz)
{
	void *p;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? *cap * 2 : 32;
	p = realloc(*v, c * sz);
	if (p == NULL)
		return -1;
	*v = p;
	*cap = c;
	return 0;
}

/*
 * Opens the registry without creating one (who only looks), and copies
 * out the lease at real port PORT and every group lease whose virtual
 * port is PORT. What goes wrong is kept in reg_error: the sockets are
 * worth showing anyway.
 */
static void who_leases(struct who *w)
{
	struct ps_reg_error err = { "" };
	struct ps_registry reg;
	struct ps_reg_guard g;
	struct ps_lease *l;
	char path[PATH_MAX];
	struct stat st;
	size_t cap = 0;
	uint32_t port;
	int rc;

	if (ps_cli_registry_file(path, sizeof(path)) != 0) {
		snprintf(w->reg_error, sizeof(w->reg_error),
			 "the registry's folder cannot be used");
		return;
	}
	if (stat(path, &st) != 0 && errno == ENOENT)
		return; /* no registry: no leases */
	rc = ps_registry_open(&reg, path, &err);
	if (rc < 0) {
		snprintf(w->reg_error, sizeof(w->reg_error), "%s",
			 err.msg[0] ? err.msg : strerror(-rc));
		return;
	}
	rc = ps_registry_lock(&reg, &g);
	if (rc < 0) {
		char why[320];

		snprintf(w->reg_error, sizeof(w->reg_error),
			 "cannot lock the registry %s: %s", reg.path,
			 ps_registry_strerror(&reg, &g, rc, why, sizeof(why)));
		return;
	}
	for (port = 1; port < PS_REG_NPORTS; port++) {
		l = ps_registry_at(&reg, (uint16_t)port);
		if (l == NULL)
			continue;
		if (port != w->port &&
		    !(l->kind == PS_KIND_GROUP && l->vport == w->port))
			continue;
		if (who_grow((void **)&w->leases, &cap, w->nleases,
			     sizeof(w->leases[0])) < 0) {
			w->oom = true;
			break;
		}
		memset(&w->leases[w->nleases], 0, sizeof(w->leases[0]));
		w->leases[w->nleases].lease = *l;
		w->leases[w->nleases].real = (uint16_t)port;
		w->nleases++;
	}
	ps_registry_unlock(&reg, &g);
}

static int who_lease_at(const struct who *w, uint16_t real)
{
	size_t i;

	for (i = 0; i < w->nleases; i++) {
		if (w->leases[i].real == real)
			return (int)i;
	}
	return -1;
}

static int who_state_rank(const struct ps_sock *s);

static int who_sock(void *arg, const struct ps_sock *s)
{
	struct who *w = arg;
	struct who_row *r;
	bool local = who_wants(w, s->lport);

	if (!local && !who_wants(w, s->rport))
		return 0;
	if (w->listening && (!local || who_state_rank(s) != 0))
		return 0;
	if (who_grow((void **)&w->rows, &w->caprows, w->nrows,
		     sizeof(w->rows[0])) < 0) {
		w->oom = true;
		return 1;
	}
	r = &w->rows[w->nrows++];
	memset(r, 0, sizeof(*r));
	r->s = *s;
	r->remote = !local;
	r->lease = who_lease_at(w, local ? s->lport : s->rport);
	return 0;
}

/* Rows sorted by inode, for the owner walk's lookups. */
static int who_inode_cmp(const void *a, const void *b)
{
	const struct who_row *x = a, *y = b;

	return x->s.inode < y->s.inode ? -1 : x->s.inode > y->s.inode;
}

static int who_owner(void *arg, pid_t pid, uint64_t inode)
{
	struct who *w = arg;
	struct who_row key, *r;

	if (inode == 0 || w->nrows == 0)
		return 0;
	key.s.inode = inode;
	r = bsearch(&key, w->rows, w->nrows, sizeof(w->rows[0]), who_inode_cmp);
	if (r == NULL)
		return 0;
	if (who_grow((void **)&w->owners, &w->capowners, w->nowners,
		     sizeof(w->owners[0])) < 0) {
		w->oom = true;
		return 1;
	}
	w->owners[w->nowners].row = (size_t)(r - w->rows);
	w->owners[w->nowners].pid = pid;
	w->nowners++;
	return 0;
}

/* Listeners first, then by state, local port, remote port. */
static int who_state_rank(const struct ps_sock *s)
{
	if (s->state == PS_SOCK_LISTEN ||
	    (s->proto == PS_UDP && s->state == PS_SOCK_CLOSE))
		return 0;
	return s->state == PS_SOCK_TIME_WAIT ? 2 : 1;
}

static int who_row_cmp(const void *a, const void *b)
{
	const struct who_row *x = a, *y = b;
	int rx = who_state_rank(&x->s), ry = who_state_rank(&y->s);

	if (x->remote != y->remote)
		return x->remote ? 1 : -1;
	if (rx != ry)
		return rx < ry ? -1 : 1;
	if (x->s.lport != y->s.lport)
		return x->s.lport < y->s.lport ? -1 : 1;
	if (x->s.rport != y->s.rport)
		return x->s.rport < y->s.rport ? -1 : 1;
	return x->s.v6 - y->s.v6;
}

static int who_owner_cmp(const void *a, const void *b)
{
	const struct who_owner *x = a, *y = b;

	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Sockets whose process exists but could not be seen. */
static bool who_hidden(const struct who_row *r)
{
	return r->s.inode != 0 && r->nowners == 0;
}

/*
 * Gathers everything: leases, sockets, owners; then sorts the rows and
 * ties each to its owners. Returns 0, or an exit status after printing
 * why.
 */
static int who_collect(struct who *w)
{
	uint64_t now = ps_now_ns();
	size_t i, j, *map;
	int rc;

	who_want(w, w->port);
	who_leases(w);
	for (i = 0; i < w->nleases; i++) {
		who_want(w, w->leases[i].real);
		ps_cli_lease_describe(&w->leases[i], now);
	}
	rc = ps_netstat_scan(1u << w->proto, who_sock, w);
	if (rc < 0) {
		ps_cli_error("cannot read the socket tables in /proc/net: %s",
			     strerror(-rc));
		return PS_EXIT_NOTFOUND;
	}
	if (w->nrows > 1)
		qsort(w->rows, w->nrows, sizeof(w->rows[0]), who_inode_cmp);
	/* Nothing to look for: the walk through /proc is skipped. */
	rc = w->nrows ? ps_netstat_owners(who_owner, w, 0, &w->st) : 0;
	if (rc < 0) {
		ps_cli_error("cannot read /proc: %s", strerror(-rc));
		return PS_EXIT_NOTFOUND;
	}
	if (w->oom) {
		ps_cli_error("out of memory");
		return PS_EXIT_NOTFOUND;
	}
	/* Sort the rows for display, carrying the owners' row indexes. */
	for (i = 0; i < w->nrows; i++)
		w->rows[i].first = i; /* the old index, for a moment */
	if (w->nrows > 1)
		qsort(w->rows, w->nrows, sizeof(w->rows[0]), who_row_cmp);
	map = calloc(w->nrows ? w->nrows : 1, sizeof(*map));
	if (map == NULL) {
		ps_cli_error("out of memory");
		return PS_EXIT_NOTFOUND;
	}
	for (i = 0; i < w->nrows; i++)
		map[w->rows[i].first] = i;
	for (j = 0; j < w->nowners; j++) {
		w->owners[j].row = map[w->owners[j].row];
		ps_proc_cmdline(w->owners[j].pid, w->owners[j].cmd,
				sizeof(w->owners[j].cmd));
	}
	free(map);
	if (w->nowners > 1)
		qsort(w->owners, w->nowners, sizeof(w->owners[0]),
		      who_owner_cmp);
	for (i = 0; i < w->nrows; i++) {
		w->rows[i].first = 0;
		w->rows[i].nowners = 0;
	}
	for (j = w->nowners; j-- > 0;) {
		w->rows[w->owners[j].row].first = j;
		w->rows[w->owners[j].row].nowners++;
	}
	return 0;
}

/* "g1 8080->24117 12s", "pick 24117 3s", with " dead" when it is. */
static void who_lease_text(const struct ps_cli_lease *v, char *buf, size_t len)
{
	const struct ps_lease *l = &v->lease;
	char age[32], gtext[PS_CLI_GROUP_TEXT];

	ps_cli_format_age(v->age_s, age, sizeof(age));
	if (l->kind == PS_KIND_PICK)
		snprintf(buf, len, "pick %u %s%s", v->real, age,
			 v->alive ? "" : " dead");
	else
		snprintf(buf, len, "%s %u->%u %s%s",
			 ps_cli_group_text(l->group, gtext), l->vport, v->real,
			 age, v->alive ? "" : " dead");
}

/* One line of the table, or (head) the header. */
struct who_line {
	const char *c[6];
	const char *cmd;
};

#define WHO_NCOLS 6

static void who_print_line(const struct who_line *ln, const int *width)
{
	int k;

	for (k = 0; k < WHO_NCOLS; k++)
		printf(k == 4 ? "%*s  " : "%-*s  ", width[k], ln->c[k]);
	printf("%s\n", ln->cmd);
}

/*
 * The lines of the table: one per socket and holding process. Called
 * twice, to measure (print = false) and to print.
 */
static void who_table_pass(const struct who *w, int *width, bool print)
{
	char local[64], remote[64], pid[16], lease[192];
	char hidden[64];
	const struct who_row *r;
	struct who_line ln;
	size_t i, j, n;
	int k, len;

	for (i = 0; i < w->nrows; i++) {
		r = &w->rows[i];
		ps_sock_endpoint(&r->s, false, local, sizeof(local));
		ps_sock_endpoint(&r->s, true, remote, sizeof(remote));
		if (r->lease >= 0)
			who_lease_text(&w->leases[r->lease], lease,
				       sizeof(lease));
		else
			strcpy(lease, "-");
		n = r->nowners ? r->nowners : 1;
		for (j = 0; j < n; j++) {
			ln.c[0] = ps_proto_name(r->s.proto);
			ln.c[1] = ps_sock_state_name(&r->s);
			ln.c[2] = local;
			ln.c[3] = remote;
			ln.c[5] = lease;
			if (r->nowners) {
				snprintf(pid, sizeof(pid), "%d",
					 (int)w->owners[r->first + j].pid);
				ln.c[4] = pid;
				ln.cmd = w->owners[r->first + j].cmd;
			} else if (who_hidden(r)) {
				snprintf(hidden, sizeof(hidden),
					 "(process of uid %u, not visible)",
					 (unsigned)r->s.uid);
				ln.c[4] = "?";
				ln.cmd = hidden;
			} else {
				ln.c[4] = "-";
				ln.cmd = "-";
			}
			if (print) {
				who_print_line(&ln, width);
				continue;
			}
			for (k = 0; k < WHO_NCOLS; k++) {
				len = (int)strlen(ln.c[k]);
				if (len > width[k])
					width[k] = len;
			}
		}
	}
}

/* "pid 42 (python3 -m http.server)", or why no process is named. */
static void who_holder_text(const struct who *w, const struct who_row *r,
			    char *buf, size_t len)
{
	if (r->nowners > 0)
		snprintf(buf, len, "pid %d (%s)%s",
			 (int)w->owners[r->first].pid, w->owners[r->first].cmd,
			 r->nowners > 1 ? " and others" : "");
	else if (who_hidden(r))
		snprintf(buf, len,
			 "a process of uid %u that cannot be "
			 "looked into",
			 (unsigned)r->s.uid);
	else
		snprintf(buf, len, "no process (a kernel socket)");
}

/* What the lease is, for the summary: "lease of group g1 (virtual
 * 8080), real port 20003" or "pick lease of pid 42, real port 20003". */
static void who_lease_summary(const struct ps_cli_lease *v, char *buf,
			      size_t len)
{
	if (v->lease.kind == PS_KIND_PICK)
		snprintf(buf, len, "pick lease of pid %u, real port %u%s",
			 v->lease.holder.pid, v->real,
			 v->alive ? "" : " (its holder is gone)");
	else
		snprintf(buf, len,
			 "lease of group %s (virtual %u), real port "
			 "%u%s",
			 v->lease.group, v->lease.vport, v->real,
			 v->alive ? "" : " (its group is gone)");
}

/*
 * The one-line answer that comes first: who listens on PORT (or on the
 * real port it stands for), under which lease; else the lease with
 * nothing listening; else the connections that still use the port.
 * Empty when nothing holds the port.
 */
static void who_summary(const struct who *w, char *buf, size_t len)
{
	char what[256], holder[PS_CLI_CMD_MAX + 64];
	const struct who_row *r = NULL;
	size_t i, tw = 0, more = 0;

	for (i = 0; i < w->nrows; i++) {
		if (w->rows[i].remote || who_state_rank(&w->rows[i].s) != 0)
			continue;
		if (r == NULL)
			r = &w->rows[i];
		else if (w->rows[i].lease != r->lease ||
			 w->rows[i].s.lport != r->s.lport)
			more++;
	}
	if (r != NULL) {
		who_holder_text(w, r, holder, sizeof(holder));
		if (r->lease >= 0) {
			who_lease_summary(&w->leases[r->lease], what,
					  sizeof(what));
			snprintf(buf, len, "port %u: %s, listening: %s",
				 w->port, what, holder);
		} else {
			snprintf(buf, len,
				 "port %u: held by %s, not under "
				 "portshim",
				 w->port, holder);
		}
	} else if (w->nleases > 0) {
		who_lease_summary(&w->leases[0], what, sizeof(what));
		snprintf(buf, len, "port %u: %s, nothing listening", w->port,
			 what);
		more = w->nleases - 1;
	} else if (w->nrows > 0) {
		for (i = 0; i < w->nrows; i++)
			tw += w->rows[i].s.state == PS_SOCK_TIME_WAIT;
		snprintf(buf, len,
			 "port %u: nothing listens; %zu socket%s "
			 "still use%s it (%zu in TIME_WAIT)",
			 w->port, w->nrows, w->nrows == 1 ? "" : "s",
			 w->nrows == 1 ? "s" : "", tw);
		return;
	} else {
		buf[0] = '\0';
		return;
	}
	if (more > 0) {
		i = strlen(buf);
		snprintf(buf + i, len - i, "; %zu more below", more);
	}
}

static void who_print_table(const struct who *w)
{
	static const struct who_line head = { { "PROTO", "STATE", "LOCAL",
						"REMOTE", "PID", "LEASE" },
					      "COMMAND" };
	int width[WHO_NCOLS], k;

	for (k = 0; k < WHO_NCOLS; k++)
		width[k] = (int)strlen(head.c[k]);
	who_table_pass(w, width, false);
	who_print_line(&head, width);
	who_table_pass(w, width, true);
}

/* Leases that no socket showed: mapped, but nothing is bound there. */
static void who_print_idle_leases(const struct who *w)
{
	char text[192];
	size_t i, j;
	bool seen;

	for (i = 0; i < w->nleases; i++) {
		seen = false;
		for (j = 0; j < w->nrows && !seen; j++)
			seen = w->rows[j].lease == (int)i;
		if (seen)
			continue;
		who_lease_text(&w->leases[i], text, sizeof(text));
		printf("lease %s (made by pid %u): no %s socket at port %u\n",
		       text, w->leases[i].lease.maker.pid,
		       ps_proto_name(w->proto), w->leases[i].real);
	}
}

static void who_json_sock(const struct who *w, const struct who_row *r)
{
	char addr[64];
	size_t j;

	printf("{\"protocol\":\"%s\",\"family\":\"%s\",\"state\":\"%s\"",
	       ps_proto_name(r->s.proto), r->s.v6 ? "ipv6" : "ipv4",
	       ps_sock_state_name(&r->s));
	ps_sock_addr(&r->s, false, addr, sizeof(addr));
	printf(",\"local_address\":\"%s\",\"local_port\":%u", addr, r->s.lport);
	ps_sock_addr(&r->s, true, addr, sizeof(addr));
	printf(",\"remote_address\":\"%s\",\"remote_port\":%u", addr,
	       r->s.rport);
	printf(",\"matched\":\"%s\",\"uid\":%u,\"inode\":%llu",
	       r->remote ? "remote" : "local", r->s.uid,
	       (unsigned long long)r->s.inode);
	printf(",\"processes\":[");
	for (j = 0; j < r->nowners; j++) {
		printf("%s{\"pid\":%d,\"command\":", j ? "," : "",
		       (int)w->owners[r->first + j].pid);
		ps_cli_json_string(w->owners[r->first + j].cmd);
		putchar('}');
	}
	printf("],\"owner_hidden\":%s,\"lease\":",
	       who_hidden(r) ? "true" : "false");
	if (r->lease >= 0)
		ps_cli_json_lease(&w->leases[r->lease]);
	else
		fputs("null", stdout);
	putchar('}');
}

static void who_print_json(const struct who *w, size_t hidden)
{
	size_t i;

	char summary[PS_CLI_CMD_MAX + 512];

	who_summary(w, summary, sizeof(summary));
	printf("{\"version\":%d,\"port\":%u,\"protocol\":\"%s\","
	       "\"listening_only\":%s,\"summary\":",
	       PS_WHO_JSON_VERSION, w->port, ps_proto_name(w->proto),
	       w->listening ? "true" : "false");
	if (summary[0] != '\0')
		ps_cli_json_string(summary);
	else
		fputs("null", stdout);
	printf(",\"sockets\":[");
	for (i = 0; i < w->nrows; i++) {
		printf("%s\n", i ? "," : "");
		who_json_sock(w, &w->rows[i]);
	}
	printf("%s],\"leases\":[", w->nrows ? "\n" : "");
	for (i = 0; i < w->nleases; i++) {
		printf("%s\n", i ? "," : "");
		ps_cli_json_lease(&w->leases[i]);
	}
	printf("%s],\"hidden_sockets\":%zu,\"unreadable_processes\":%u,"
	       "\"root\":%s,\"registry_error\":",
	       w->nleases ? "\n" : "", hidden, w->st.unreadable,
	       geteuid() == 0 ? "true" : "false");
	if (w->reg_error[0])
		ps_cli_json_string(w->reg_error);
	else
		fputs("null", stdout);
	printf("}\n");
}

/* What could not be seen, on stderr (stdout stays the answer). */
static void who_notes(const struct who *w, size_t hidden)
{
	if (w->reg_error[0])
		ps_cli_error("leases not shown: %s", w->reg_error);
	if (hidden == 0)
		return;
	ps_cli_error("%zu socket%s at this port belong%s to processes that "
		     "could not be looked into: the descriptors of %u "
		     "process%s (of other users, or not dumpable) are not "
		     "readable%s",
		     hidden, hidden == 1 ? "" : "s", hidden == 1 ? "s" : "",
		     w->st.unreadable, w->st.unreadable == 1 ? "" : "es",
		     geteuid() == 0 ? "" : "; run as root to see them");
}

static void who_free(struct who *w)
{
	free(w->leases);
	free(w->rows);
	free(w->owners);
	free(w);
}

int ps_cli_who(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "udp", no_argument, NULL, 'u' },
		{ "listening", no_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char summary[PS_CLI_CMD_MAX + 512];
	struct who *w;
	bool json = false, listening = false;
	enum ps_proto proto = PS_TCP;
	size_t i, hidden = 0;
	uint16_t port;
	int c, rc;

	/* No "+": options may also follow PORT ("who 8080 --json"). */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":uljh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listening = true;
			break;
		case 'u':
			proto = PS_UDP;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			return ps_cli_help(who_help);
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	if (optind >= argc)
		return ps_cli_usage_error("who: missing PORT");
	if (optind + 1 < argc)
		return ps_cli_usage_error("who: unexpected argument '%s'",
					  argv[optind + 1]);
	rc = ps_cli_parse_port("port", argv[optind], &port);
	if (rc != 0)
		return rc;

	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		ps_cli_error("out of memory");
		return PS_EXIT_NOTFOUND;
	}
	w->port = port;
	w->proto = proto;
	w->listening = listening;
	rc = who_collect(w);
	if (rc != 0)
		goto out;
	for (i = 0; i < w->nrows; i++)
		hidden += who_hidden(&w->rows[i]);
	if (json) {
		who_print_json(w, hidden);
	} else {
		who_summary(w, summary, sizeof(summary));
		if (summary[0] != '\0')
			printf("%s\n", summary);
		if (w->nrows)
			who_print_table(w);
		who_print_idle_leases(w);
	}
	who_notes(w, hidden);
	rc = PS_EXIT_OK;
	if (w->nrows == 0) {
		if (!json)
			ps_cli_error("nothing %s %s port %u",
				     listening ? "listens on" : "holds",
				     ps_proto_name(proto), port);
		rc = PS_EXIT_NOTFOUND;
	}
out:
	who_free(w);
	return rc;
}
