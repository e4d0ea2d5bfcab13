/* SPDX-License-Identifier: MIT */
/*
 * cmd_pick.c - `portshim pick` and `portshim release`: free ports for
 * programs that take a port argument, leased in the registry to a holder
 * process until it dies, their time runs out, or they are released.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "pick.h"
#include "portspec.h"
#include "proc.h"
#include "registry.h"

/* Long options without a short form. */
enum {
	OPT_HOLD = 256,
	OPT_FOR,
};

/* The longest --for: ten years, in seconds. */
#define PICK_FOR_MAX 315360000ul

/* How far up the process tree `release` looks for the holder. */
#define PICK_ANCESTORS_MAX 64

static const char pick_help[] =
	"Usage: portshim pick [--tcp | --udp] [--count N] [--group G] [--hold PID]\n"
	"                     [--for SECONDS]\n"
	"Print free ports, one a line, for programs that take a port argument.\n"
	"Each port is bindable now (TCP and UDP, IPv4 and IPv6) and leased in the\n"
	"registry: no other pick, portserver, program using libportshim or\n"
	"program run by 'portshim run' gets it until the lease ends, which is\n"
	"when the holder process dies, when --for runs out, or at\n"
	"'portshim release'. No daemon is involved.\n"
	"\n"
	"  -t, --tcp         the ports only need to be free for TCP\n"
	"  -u, --udp         the ports only need to be free for UDP\n"
	"  -n, --count N     print N ports (default 1, at most 1024)\n"
	"  -g, --group G     label the leases with G, for 'portshim ls --group G'\n"
	"      --hold PID    the lease belongs to process PID (default: the\n"
	"                    parent, i.e. the shell or script that runs pick;\n"
	"                    its subshells, as in $(...) or pipelines, count\n"
	"                    as the shell itself)\n"
	"      --for S       the lease also ends after S seconds\n"
	"  -h, --help        show this help\n"
	"\n"
	"Ports come from PORTSHIM_RANGE (default 20000-32767), skipping\n"
	"ip_local_reserved_ports and ports in use.\n"
	"Example:  port=$(portshim pick) && ./server --port \"$port\"\n"
	"\n"
	"Exit status: 0 success, 1 no free port left (or the registry cannot be\n"
	"used, or the holder is gone), 2 bad usage.\n";

static const char release_help[] =
	"Usage: portshim release [--force] [--hold PID] PORT...\n"
	"End leases made by 'portshim pick' (or the C API, or the portserver).\n"
	"Without --force, only leases whose holder is this command's parent or\n"
	"one of that process's ancestors (or PID, with --hold) are ended.\n"
	"\n"
	"  -f, --force       end the leases whoever holds them\n"
	"      --hold PID    end the leases held by process PID\n"
	"  -h, --help        show this help\n"
	"\n"
	"Exit status: 0 every lease was ended, 1 a port had no pick lease or one\n"
	"held by someone else, 2 bad usage.\n";

/* Parses --hold's PID and reads its identity. Returns 0 or an exit
 * status after saying why. */
static int pick_parse_hold(const char *text, struct ps_ident *out)
{
	unsigned long pid;
	int rc;

	if (ps_parse_uint(text, 1, INT_MAX, &pid) < 0)
		return ps_cli_usage_error("invalid --hold '%s': not a process"
					  " id",
					  text);
	rc = ps_proc_ident((pid_t)pid, out);
	if (rc < 0) {
		ps_cli_error("--hold %lu: %s", pid,
			     rc == -ESRCH ? "no such process" : strerror(-rc));
		return PS_EXIT_NOTFOUND;
	}
	return 0;
}

/* Parent of pid from /proc/PID/stat (field 4), or -errno. */
static pid_t pick_parent_of(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;
	FILE *f;
	size_t n;
	long ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (f == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold anything, ')' included: skip to the
	 * last one. */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %*c %ld", &ppid) != 1)
		return -EIO;
	return (pid_t)ppid;
}

/*
 * Reads what /proc/PID/leaf holds (a link's target, for "exe") into buf;
 * returns its length, or -1.
 */
static ssize_t pick_proc_read(pid_t pid, const char *leaf, char *buf,
			      size_t len)
{
	char path[64];
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, leaf);
	if (strcmp(leaf, "exe") == 0)
		return readlink(path, buf, len);
	f = fopen(path, "re");
	if (f == NULL)
		return -1;
	n = (ssize_t)fread(buf, 1, len, f);
	fclose(f);
	return n;
}

/*
 * True if pid looks like a subshell of its parent pp: the same program
 * with the same arguments. A shell forks for $(...) with more than one
 * command in it, for pipelines and for ( ... ), and such a subshell
 * exits as soon as its output is read: as a holder it would end the
 * lease at once. A script that runs itself again with the same
 * arguments is mistaken for its own subshell; its lease then lives as
 * long as the outer one, longer rather than shorter.
 */
static bool pick_is_subshell(pid_t pid, pid_t pp)
{
	static char a[4096], b[4096];
	ssize_t na, nb;

	na = pick_proc_read(pid, "exe", a, sizeof(a));
	nb = pick_proc_read(pp, "exe", b, sizeof(b));
	if (na <= 0 || na != nb || memcmp(a, b, (size_t)na) != 0)
		return false;
	na = pick_proc_read(pid, "cmdline", a, sizeof(a));
	nb = pick_proc_read(pp, "cmdline", b, sizeof(b));
	return na > 0 && na == nb && memcmp(a, b, (size_t)na) == 0;
}

/*
 * The default holder: the caller's parent, the shell or script that ran
 * this command, climbing out of its subshells.
 */
static int pick_parent(struct ps_ident *out)
{
	pid_t pid = getppid();
	int rc;

	for (int i = 0; i < PICK_ANCESTORS_MAX && pid > 1; i++) {
		pid_t pp = pick_parent_of(pid);

		if (pp <= 1 || !pick_is_subshell(pid, pp))
			break;
		pid = pp;
	}
	rc = ps_proc_ident(pid, out);
	if (rc < 0) {
		ps_cli_error("cannot identify the parent process %d: %s",
			     (int)pid, strerror(-rc));
		return PS_EXIT_NOTFOUND;
	}
	return 0;
}

int ps_cli_pick(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tcp", no_argument, NULL, 't' },
		{ "udp", no_argument, NULL, 'u' },
		{ "count", required_argument, NULL, 'n' },
		{ "group", required_argument, NULL, 'g' },
		{ "hold", required_argument, NULL, OPT_HOLD },
		{ "for", required_argument, NULL, OPT_FOR },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct ps_config cfg;
	static uint8_t reserved[PS_REG_NPORTS / 8];
	const char *hold = NULL;
	struct ps_pick_req req;
	struct ps_registry reg;
	unsigned long count = 1, secs = 0;
	uint16_t *ports = NULL;
	int c, rc;

	memset(&req, 0, sizeof(req));
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":tun:g:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			req.protos |= PS_PROTO_BIT(PS_TCP);
			break;
		case 'u':
			req.protos |= PS_PROTO_BIT(PS_UDP);
			break;
		case 'n':
			if (ps_parse_uint(optarg, 1, PS_PICK_MAX, &count) < 0)
				return ps_cli_usage_error(
					"invalid --count '%s': use 1-%d",
					optarg, PS_PICK_MAX);
			break;
		case 'g':
			rc = ps_cli_parse_group("--group", optarg, req.group);
			if (rc != 0)
				return rc;
			break;
		case OPT_HOLD:
			hold = optarg;
			break;
		case OPT_FOR:
			if (ps_parse_uint(optarg, 1, PICK_FOR_MAX, &secs) < 0)
				return ps_cli_usage_error(
					"invalid --for '%s': use whole "
					"seconds, 1-%lu",
					optarg, PICK_FOR_MAX);
			break;
		case 'h':
			return ps_cli_help(pick_help);
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	if (optind < argc)
		return ps_cli_usage_error("pick: unexpected argument '%s'",
					  argv[optind]);
	rc = ps_cli_range_config(&cfg);
	if (rc != 0)
		return rc;
	rc = hold != NULL ? pick_parse_hold(hold, &req.holder) :
			    pick_parent(&req.holder);
	if (rc != 0)
		return rc;
	if (secs != 0)
		req.expires_ns = ps_boot_ns() + (uint64_t)secs * 1000000000ull;
	req.lo = cfg.range_lo;
	req.hi = cfg.range_hi;
	ps_reserved_ports_load(reserved);
	req.reserved = reserved;

	ports = calloc(count, sizeof(*ports));
	if (ports == NULL) {
		ps_cli_error("out of memory");
		return PS_EXIT_NOTFOUND;
	}
	if (ps_cli_open_registry(&reg) < 0) {
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	rc = ps_pick(&reg, &req, ports, (unsigned)count);
	if (rc == -EADDRNOTAVAIL) {
		ps_cli_error("no free port left in PORTSHIM_RANGE %u-%u for %lu"
			     " port%s (the others are leased or in use); "
			     "widen the range or release ports",
			     (unsigned)req.lo, (unsigned)req.hi, count,
			     count == 1 ? "" : "s");
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	if (rc == -ESRCH) {
		ps_cli_error("the holder, process %u, has exited",
			     req.holder.pid);
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	if (rc < 0) {
		char why[320];

		ps_cli_error(
			"cannot pick a port: %s",
			ps_registry_strerror(&reg, NULL, rc, why, sizeof(why)));
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	for (unsigned long i = 0; i < count; i++) {
		printf("%u\n", (unsigned)ports[i]);
		PS_INFO("pick -> %u holder=%u", (unsigned)ports[i],
			req.holder.pid);
	}
	/*
	 * Ports the caller never saw (stdout closed or full) would stay
	 * leased for nothing until the holder exits: give them back.
	 */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		for (unsigned long i = 0; i < count; i++)
			ps_pick_release(&reg, ports[i], NULL, 0, true, NULL);
		rc = PS_EXIT_NOTFOUND;
		goto out;
	}
	rc = PS_EXIT_OK;
out:
	free(ports);
	return rc;
}

/*
 * The processes whose leases `release` may end without --force: the
 * parent and its ancestors, up to PICK_ANCESTORS_MAX. Returns how many.
 */
static size_t release_ancestors(struct ps_ident *out, size_t max)
{
	pid_t pid = getppid();
	size_t n = 0;

	while (pid > 0 && n < max) {
		if (ps_proc_ident(pid, &out[n]) < 0)
			break;
		n++;
		if (pid == 1)
			break;
		pid = pick_parent_of(pid);
	}
	return n;
}

int ps_cli_release(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "hold", required_argument, NULL, OPT_HOLD },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ps_ident owners[PICK_ANCESTORS_MAX];
	struct ps_registry reg;
	struct ps_lease old;
	const char *hold = NULL;
	bool force = false;
	size_t n = 0;
	uint16_t port;
	int status = PS_EXIT_OK;
	int c, rc;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fh", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			force = true;
			break;
		case OPT_HOLD:
			hold = optarg;
			break;
		case 'h':
			return ps_cli_help(release_help);
		default:
			return ps_cli_bad_option(c, argv);
		}
	}
	if (optind >= argc)
		return ps_cli_usage_error("release: missing PORT");
	for (int i = optind; i < argc; i++) {
		rc = ps_cli_parse_port("port", argv[i], &port);
		if (rc != 0)
			return rc;
	}
	if (hold != NULL) {
		rc = pick_parse_hold(hold, &owners[0]);
		if (rc != 0)
			return rc;
		n = 1;
	} else if (!force) {
		n = release_ancestors(owners, PICK_ANCESTORS_MAX);
	}
	if (ps_cli_open_registry(&reg) < 0)
		return PS_EXIT_NOTFOUND;
	for (int i = optind; i < argc; i++) {
		ps_cli_parse_port("port", argv[i], &port);
		rc = ps_pick_release(&reg, port, owners, n, force, &old);
		switch (rc) {
		case 0:
			continue;
		case -ENOENT:
			ps_cli_error("port %u has no lease", (unsigned)port);
			break;
		case -EINVAL:
			ps_cli_error("port %u is group %s's port for %u, made "
				     "by a bind; it ends with its group",
				     (unsigned)port, old.group,
				     (unsigned)old.vport);
			break;
		case -EPERM:
			ps_cli_error("port %u is held by process %u, not by "
				     "%s; use --force to release it anyway",
				     (unsigned)port, old.holder.pid,
				     hold != NULL ?
					     "--hold's process" :
					     "this shell or its parents");
			break;
		default:
			ps_cli_error("cannot release port %u: %s",
				     (unsigned)port, strerror(-rc));
			break;
		}
		status = PS_EXIT_NOTFOUND;
	}
	return status;
}
