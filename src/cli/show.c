/* SPDX-License-Identifier: MIT */
/*
 * show.c - what the commands share to show leases: the real port of a
 * group's virtual port (`port`, `wait`); for `ls` and `who`, a lease's
 * liveness, age and maker's command, its age as text, and JSON output
 * (strings that stay valid JSON whatever bytes they hold, and the lease
 * object).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "netstat.h"
#include "proc.h"

/*
 * Length of the valid UTF-8 sequence at s (1-4), or 0 if the bytes there
 * are not one (overlong forms, surrogates and values past U+10FFFF are
 * invalid too).
 */
static size_t json_utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

/* Command lines are arbitrary bytes: invalid UTF-8 becomes U+FFFD so
 * that the document stays valid JSON. */
const char *ps_cli_group_text(const char *group, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strnlen(group, PS_GROUP_MAX + 1), k = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)group[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-') {
			out[k++] = (char)c;
		} else {
			out[k++] = '\\';
			out[k++] = 'x';
			out[k++] = hex[c >> 4];
			out[k++] = hex[c & 15];
		}
	}
	out[k] = '\0';
	return out;
}

void ps_cli_json_string(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	putchar('"');
	while (*p != '\0') {
		switch (*p) {
		case '"':
			fputs("\\\"", stdout);
			break;
		case '\\':
			fputs("\\\\", stdout);
			break;
		case '\n':
			fputs("\\n", stdout);
			break;
		case '\r':
			fputs("\\r", stdout);
			break;
		case '\t':
			fputs("\\t", stdout);
			break;
		case '\b':
			fputs("\\b", stdout);
			break;
		case '\f':
			fputs("\\f", stdout);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				printf("\\u%04x", *p);
				break;
			}
			n = json_utf8_len(p);
			if (n == 0) {
				fputs("\\ufffd", stdout);
				break;
			}
			fwrite(p, 1, n, stdout);
			p += n;
			continue;
		}
		p++;
	}
	putchar('"');
}

int ps_cli_lookup(struct ps_registry *reg, const char *group, uint16_t vport,
		  uint16_t *real)
{
	struct ps_reg_guard g;
	struct ps_lease *l;
	int rc;

	rc = ps_cli_lock_registry(reg, &g);
	if (rc < 0)
		return rc;
	l = ps_registry_find(reg, group, vport);
	if (l != NULL)
		*real = ps_registry_port(reg, l);
	ps_registry_unlock(reg, &g);
	return l != NULL;
}

void ps_cli_lease_describe(struct ps_cli_lease *v, uint64_t now_ns)
{
	const struct ps_lease *l = &v->lease;
	struct ps_netstat_holder h;

	v->alive = !ps_lease_dead(l, ps_boot_ns());
	v->age_s = now_ns > l->created_ns ?
			   (now_ns - l->created_ns) / 1000000000u :
			   0;
	/* Only a process with the same start time is the one that made the
	 * lease: a reused pid would show a stranger's command line. */
	v->pid = (pid_t)l->maker.pid;
	if (l->maker.pid != 0 && ps_proc_alive(&l->maker) == 1) {
		ps_proc_cmdline((pid_t)l->maker.pid, v->cmd, sizeof(v->cmd));
		return;
	}
	strcpy(v->cmd, "-");
	/*
	 * The maker is gone but the group lives: a daemon made the lease
	 * before it forked (nginx, pg_ctl). Show the process that holds the
	 * lease's socket now.
	 */
	if (v->alive && l->kind == PS_KIND_GROUP && l->protos != 0 &&
	    ps_netstat_holder(l->protos & PS_PROTO_BIT(PS_TCP) ? PS_TCP :
								 PS_UDP,
			      v->real, &h) == 0 &&
	    h.pid > 0) {
		v->pid = h.pid;
		ps_proc_cmdline(h.pid, v->cmd, sizeof(v->cmd));
	}
}

void ps_cli_format_age(uint64_t s, char *buf, size_t len)
{
	if (s < 60)
		snprintf(buf, len, "%llus", (unsigned long long)s);
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
			 (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, len, "%lluh%02llum",
			 (unsigned long long)(s / 3600),
			 (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, len, "%llud%02lluh",
			 (unsigned long long)(s / 86400),
			 (unsigned long long)(s % 86400 / 3600));
}

void ps_cli_json_lease(const struct ps_cli_lease *v)
{
	char gtext[PS_CLI_GROUP_TEXT];
	const struct ps_lease *l = &v->lease;
	bool tcp = l->protos & PS_PROTO_BIT(PS_TCP);
	bool udp = l->protos & PS_PROTO_BIT(PS_UDP);

	printf("{\"group\":");
	ps_cli_json_string(ps_cli_group_text(l->group, gtext));
	printf(",\"kind\":\"%s\",\"protocols\":[%s%s%s]",
	       l->kind == PS_KIND_PICK ? "pick" : "group", tcp ? "\"tcp\"" : "",
	       tcp && udp ? "," : "", udp ? "\"udp\"" : "");
	if (l->kind == PS_KIND_PICK || l->vport == 0)
		printf(",\"virtual\":null");
	else
		printf(",\"virtual\":%u", l->vport);
	printf(",\"real\":%u,\"pid\":%u,\"process\":%ld,"
	       "\"holder_pid\":%u,\"alive\":%s,\"age_seconds\":%llu,"
	       "\"command\":",
	       v->real, l->maker.pid, (long)v->pid, l->holder.pid,
	       v->alive ? "true" : "false", (unsigned long long)v->age_s);
	/* null: the process that made the lease is gone, and no process
	 * is seen holding its socket. */
	if (strcmp(v->cmd, "-") == 0)
		fputs("null", stdout);
	else
		ps_cli_json_string(v->cmd);
	putchar('}');
}
