/* SPDX-License-Identifier: MIT */
/*
 * report.c - the notes behind `portshim run --report` (see report.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "report.h"

/*
 * What this process has noted already: one bit per (kind, protocol,
 * port), 32 KiB of zeroed static storage. Threads may race on a byte and
 * note a port twice; the reader counts each port once anyway. A child
 * after fork() inherits the bits: its parent's notes are in the file.
 */
static uint8_t noted[2][PS_NPROTO][65536 / 8];

static const char *const kind_names[] = { "bind", "connect" };

void ps_report_note(const struct ps_config *cfg, enum ps_report_kind kind,
		    enum ps_proto proto, uint16_t vport)
{
	uint8_t *byte, bit = (uint8_t)(1u << (vport & 7));
	char line[32];
	int saved, fd, n;

	if (cfg == NULL || cfg->report_file[0] == '\0' ||
	    (unsigned)kind > PS_REPORT_CONNECT || (unsigned)proto >= PS_NPROTO)
		return;
	byte = &noted[kind][proto][vport >> 3];
	if (__atomic_load_n(byte, __ATOMIC_RELAXED) & bit)
		return;
	__atomic_fetch_or(byte, bit, __ATOMIC_RELAXED);
	saved = errno;
	n = snprintf(line, sizeof(line), "%s %s %u\n", kind_names[kind],
		     ps_proto_name(proto), (unsigned)vport);
	/* O_NOFOLLOW: the file is ours, in our state directory. Never
	 * created here: run made it, and a process that outlives the run
	 * must not leave a new one behind. */
	fd = open(cfg->report_file,
		  O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) != n) {
			/* Nothing to do: the report misses a line. */
		}
		close(fd);
	}
	errno = saved;
}

size_t ps_report_parse(const char *text, size_t len,
		       uint8_t flags[PS_NPROTO][65536])
{
	const char *p = text, *end = text + len, *nl;
	char line[40], kind[16], proto[8];
	unsigned long port;
	size_t used = 0, n;
	int k, pr, got;

	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break; /* a line without its end: cut short */
		n = (size_t)(nl - p);
		if (n >= sizeof(line))
			continue;
		memcpy(line, p, n);
		line[n] = '\0';
		got = 0;
		if (sscanf(line, "%15s %7s %lu%n", kind, proto, &port, &got) !=
			    3 ||
		    got != (int)n || port == 0 || port > 65535)
			continue;
		if (strcmp(kind, "bind") == 0)
			k = PS_REPORT_F_BOUND;
		else if (strcmp(kind, "connect") == 0)
			k = PS_REPORT_F_CONNECTED;
		else
			continue;
		pr = ps_proto_parse(proto);
		if (pr < 0)
			continue;
		flags[pr][port] |= (uint8_t)k;
		used++;
	}
	return used;
}
