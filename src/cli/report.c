/* SPDX-License-Identifier: MIT */
/*
 * report.c - `portshim run --report`: the file in which the group's
 * processes note the ports they bind and connect to (src/common/report.h),
 * and what run prints from it when CMD ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "report.h"
#include "statedir.h"

int ps_cli_state_file(const char *registry, const char *group, const char *ext,
		      char *path, size_t len, bool quiet)
{
	char dir[PATH_MAX], why[512];
	const char *base;
	int dfd, fd;

	if (registry != NULL && registry[0] != '\0') {
		/* Next to the registry, as the default mapping files. */
		dfd = ps_open_parent(registry, &base);
		if ((size_t)snprintf(dir, sizeof(dir), "%.*s",
				     (int)(base - registry - 1),
				     registry) >= sizeof(dir) &&
		    dfd >= 0) {
			close(dfd);
			dfd = -ENAMETOOLONG;
		}
		snprintf(why, sizeof(why),
			 "cannot open the registry's "
			 "folder: %s",
			 strerror(dfd < 0 ? -dfd : 0));
	} else {
		dfd = ps_statedir_open(ps_cli_getenv, dir, sizeof(dir), why,
				       sizeof(why));
	}
	if (dfd < 0) {
		if (!quiet)
			ps_cli_error("%s", why);
		return -1;
	}
	if ((size_t)snprintf(path, len, "%s/%s.%s", dir, group, ext) >= len) {
		close(dfd);
		if (!quiet)
			ps_cli_error("the state directory's path is too long");
		return -1;
	}
	/* A fresh, empty file of ours: a left-over of a run with the same
	 * group name (given with --group) must not add to this one. */
	base = path + strlen(dir) + 1;
	unlinkat(dfd, base, 0);
	fd = openat(dfd, base,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	close(dfd);
	if (fd < 0) {
		if (!quiet)
			ps_cli_error("cannot create %s: %s", path,
				     strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* Reads the whole report; NULL (and nothing printed) if it cannot. */
static char *report_slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() ||
	    (buf = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	*len = got;
	return buf;
}

/* Appends ",item" (or "item" first) to the --ports suggestion. */
static void suggest_add(char *out, size_t len, const char *item)
{
	size_t used = strlen(out);

	snprintf(out + used, len - used, "%s%s", used > 0 ? "," : "", item);
}

void ps_cli_report_print(const char *path, const char *group)
{
	static uint8_t flags[PS_NPROTO][65536];
	static char ports[65536 * 2 * 7];
	char item[16];
	unsigned port, p, bound, count = 0;
	size_t len = 0;
	char *text;

	text = report_slurp(path, &len);
	unlink(path);
	if (text == NULL) {
		ps_cli_error("--report: cannot read %s", path);
		return;
	}
	memset(flags, 0, sizeof(flags));
	ps_report_parse(text, len, flags);
	free(text);
	ports[0] = '\0';
	for (port = 1; port < 65536; port++)
		for (p = 0; p < PS_NPROTO; p++)
			count += flags[p][port] != 0;
	fprintf(stderr,
		"portshim: report of group %s (with its workers and "
		"jobs): %u tagged port%s bound or connected to\n",
		group, count, count == 1 ? "" : "s");
	for (port = 1; port < 65536; port++) {
		bound = 0;
		for (p = 0; p < PS_NPROTO; p++) {
			uint8_t f = flags[p][port];

			if (f == 0)
				continue;
			fprintf(stderr, "portshim:   %s %u %s\n",
				ps_proto_name(p), port,
				f == (PS_REPORT_F_BOUND |
				      PS_REPORT_F_CONNECTED) ?
					"bound, connected to" :
				f == PS_REPORT_F_BOUND ?
					"bound" :
					"connected to, not bound in the group");
			if (f & PS_REPORT_F_BOUND)
				bound |= 1u << p;
		}
		if (bound == 0)
			continue;
		/* Both protocols: the plain number tags both. */
		if (bound == 3)
			snprintf(item, sizeof(item), "%u", port);
		else
			snprintf(item, sizeof(item), "%s:%u",
				 ps_proto_name(bound == 1 ? PS_TCP : PS_UDP),
				 port);
		suggest_add(ports, sizeof(ports), item);
	}
	if (ports[0] != '\0')
		fprintf(stderr,
			"portshim: the bound ones, to tag only them: "
			"--ports %s\n",
			ports);
}
