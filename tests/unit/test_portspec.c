/* SPDX-License-Identifier: MIT */
/*
 * test_portspec.c - the PORTSHIM_PORTS parser and ps_parse_uint.
 *
 * Valid specs are checked port by port, for both protocols and for the
 * "either" map, against the ranges the test expects; invalid specs must
 * fail with a one-line message quoting the offending text and leave an
 * empty spec behind.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "portspec.h"

#define TCP 1
#define UDP 2
#define BOTH (TCP | UDP)

struct range {
	int protos; /* TCP, UDP or BOTH; 0 ends the list */
	unsigned lo, hi;
};

struct valid_case {
	const char *text;
	bool all;
	struct range r[6];
};

/* The spec is 24 KiB: keep it out of cmocka's stack. */
static struct ps_portspec spec;
static const struct ps_portspec zero_spec;

/* 4096 characters of valid items, and one more: set up in main(). */
static char max_text[4096 + 1];
static char over_text[4097 + 1];

static const struct valid_case valid_cases[] = {
	{ "8080", false, { { BOTH, 8080, 8080 } } },
	{ "8080,9000-9010,udp:5353,tcp:6379",
	  false,
	  { { BOTH, 8080, 8080 },
	    { BOTH, 9000, 9010 },
	    { UDP, 5353, 5353 },
	    { TCP, 6379, 6379 } } },
	{ " 8080 , 9000 ",
	  false,
	  { { BOTH, 8080, 8080 }, { BOTH, 9000, 9000 } } },
	{ "\t8080\t,\tudp:53 ",
	  false,
	  { { BOTH, 8080, 8080 }, { UDP, 53, 53 } } },
	{ "1", false, { { BOTH, 1, 1 } } },
	{ "65535", false, { { BOTH, 65535, 65535 } } },
	{ "1-65535", false, { { BOTH, 1, 65535 } } },
	{ "udp:1-65535", false, { { UDP, 1, 65535 } } },
	{ "tcp:80,udp:80", false, { { BOTH, 80, 80 } } },
	{ "tcp:80-90,udp:85-95", false, { { TCP, 80, 90 }, { UDP, 85, 95 } } },
	{ "00080", false, { { BOTH, 80, 80 } } },
	{ "9000-9000", false, { { BOTH, 9000, 9000 } } },
	{ "100-200,150-250", false, { { BOTH, 100, 250 } } },
	/* Ranges that start and end on and off byte boundaries. */
	{ "7-9", false, { { BOTH, 7, 9 } } },
	{ "8-15", false, { { BOTH, 8, 15 } } },
	{ "1-8", false, { { BOTH, 1, 8 } } },
	{ "tcp:15-17", false, { { TCP, 15, 17 } } },
	{ "udp:65528-65535", false, { { UDP, 65528, 65535 } } },
	{ "tcp:1000-2000,udp:1500-1507",
	  false,
	  { { TCP, 1000, 2000 }, { UDP, 1500, 1507 } } },
	{ "all", true, { { 0 } } },
	{ " all ", true, { { 0 } } },
	{ "\tall", true, { { 0 } } },
	{ max_text, false, { { BOTH, 80, 80 } } },
};

static bool expected(const struct valid_case *vc, int proto, unsigned port)
{
	size_t i;

	if (port == 0)
		return false;
	if (vc->all)
		return true;
	for (i = 0; i < sizeof(vc->r) / sizeof(vc->r[0]) && vc->r[i].protos;
	     i++)
		if ((vc->r[i].protos & proto) && port >= vc->r[i].lo &&
		    port <= vc->r[i].hi)
			return true;
	return false;
}

static bool raw_bit(const uint8_t *bits, unsigned port)
{
	return (bits[port >> 3] >> (port & 7)) & 1;
}

static void test_portspec_valid(void **state)
{
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
		const struct valid_case *vc = &valid_cases[i];
		unsigned port;
		int rc;

		memset(err, 'x', sizeof(err));
		rc = ps_portspec_parse(&spec, vc->text, err, sizeof(err));
		if (rc != 0)
			print_error("case %zu '%.40s': %s\n", i, vc->text, err);
		assert_int_equal(rc, 0);
		assert_string_equal(err, "");
		assert_true(spec.any);
		assert_int_equal(spec.all, vc->all);

		for (port = 0; port <= 65535; port++) {
			bool t = expected(vc, TCP, port);
			bool u = expected(vc, UDP, port);

			assert_int_equal(ps_portspec_has(&spec, PS_TCP, port),
					 t);
			assert_int_equal(ps_portspec_has(&spec, PS_UDP, port),
					 u);
			assert_int_equal(ps_portspec_maybe(&spec, port),
					 t || u);
			if (vc->all)
				continue;
			/* The maps themselves, as other modules read them. */
			assert_int_equal(raw_bit(spec.bits[PS_TCP], port), t);
			assert_int_equal(raw_bit(spec.bits[PS_UDP], port), u);
			assert_int_equal(raw_bit(spec.either, port), t || u);
		}
	}
}

struct invalid_case {
	const char *text;
	const char *in_err; /* must appear in the message */
};

static const struct invalid_case invalid_cases[] = {
	{ "", "'' is an empty port list" },
	{ "   ", "'   ' is an empty port list" },
	{ "8080,,9000", "empty item in '8080,,9000'" },
	{ "8080,", "empty item in '8080,'" },
	{ ",8080", "empty item in ',8080'" },
	{ "8080, ,9000", "empty item in '8080, ,9000'" },
	{ "0", "'0' is not a port (1-65535)" },
	{ "65536", "'65536' is not a port (1-65535)" },
	{ "70000", "'70000' is not a port (1-65535)" },
	{ "99999999999999999999999", "'99999999999999999999999' is not" },
	{ "18446744073709551696", "'18446744073709551696' is not" },
	{ "0000000000080", "'0000000000080' is not a port" },
	{ "8080,70000", "'70000' is not a port" },
	{ "0-100", "'0' in '0-100' is not a port" },
	{ "100-70000", "'70000' in '100-70000' is not a port" },
	{ "9010-9000", "'9010-9000' is a reversed range" },
	{ "udp:9010-9000", "'udp:9010-9000' is a reversed range" },
	{ "sctp:80", "unknown protocol 'sctp' in 'sctp:80'" },
	{ "TCP:80", "unknown protocol 'TCP'" },
	{ ":80", "unknown protocol '' in ':80'" },
	{ "tcp :80", "unknown protocol 'tcp '" },
	{ "udp:tcp:80", "'tcp:80' in 'udp:tcp:80' is not a port" },
	{ "tcp:", "'' in 'tcp:' is not a port" },
	{ "abc", "'abc' is not a port" },
	{ "80a", "'80a' is not a port" },
	{ "0x50", "'0x50' is not a port" },
	{ "+80", "'+80' is not a port" },
	{ "-80", "'' in '-80' is not a port" },
	{ "80-", "'' in '80-' is not a port" },
	{ "1-2-3", "'2-3' in '1-2-3' is not a port" },
	{ "8 0", "'8 0' is not a port" },
	{ "80 -90", "'80 ' in '80 -90' is not a port" },
	{ "80- 90", "' 90' in '80- 90' is not a port" },
	{ "tcp: 80", "' 80' in 'tcp: 80' is not a port" },
	{ "80\n", "'80?' is not a port" },
	{ "80\r\n,90", "'80?"
		       "?' is not a port" },
	{ "all,8080", "'all' in 'all,8080' cannot be combined" },
	{ "8080, all", "'all' in '8080, all' cannot be combined" },
	{ "all,all", "'all' in 'all,all' cannot be combined" },
	{ "ALL", "'ALL' is not a port" },
	{ "allx", "'allx' is not a port" },
	{ over_text, "' is too long (more than 4096 characters)" },
};

/* A message is one line: no newline, no control character at all. */
static void assert_one_line(const char *msg)
{
	for (; *msg != '\0'; msg++)
		assert_false((unsigned char)*msg < 0x20 ||
			     (unsigned char)*msg == 0x7f);
}

static void test_portspec_invalid(void **state)
{
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		const struct invalid_case *ic = &invalid_cases[i];
		int rc;

		/* Leave garbage behind: a failed parse must clear it. */
		memset(&spec, 0xa5, sizeof(spec));
		rc = ps_portspec_parse(&spec, ic->text, err, sizeof(err));
		if (rc != -EINVAL || !strstr(err, ic->in_err))
			print_error("case %zu '%.40s': rc %d, '%s'\n", i,
				    ic->text, rc, err);
		assert_int_equal(rc, -EINVAL);
		assert_non_null(strstr(err, ic->in_err));
		assert_one_line(err);
		assert_memory_equal(&spec, &zero_spec, sizeof(spec));
		assert_false(ps_portspec_maybe(&spec, 80));
	}
}

/* With no spec, the text is only checked: same verdicts, same words. */
static void test_portspec_check_only(void **state)
{
	char err[256], err2[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(invalid_cases) / sizeof(invalid_cases[0]); i++) {
		const struct invalid_case *ic = &invalid_cases[i];

		assert_int_equal(
			ps_portspec_parse(NULL, ic->text, err, sizeof(err)),
			-EINVAL);
		assert_int_equal(
			ps_portspec_parse(&spec, ic->text, err2, sizeof(err2)),
			-EINVAL);
		assert_string_equal(err, err2);
	}
	assert_int_equal(ps_portspec_parse(NULL, "8080, udp:53,9000-9010", err,
					   sizeof(err)),
			 0);
	assert_int_equal(ps_portspec_parse(NULL, "all", err, sizeof(err)), 0);
}

/* Long items are quoted shortened, and the message stays one line. */
static void test_portspec_invalid_long_item(void **state)
{
	char text[300], err[128];
	int rc;

	memset(text, '7', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	rc = ps_portspec_parse(&spec, text, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_non_null(strstr(err, "7777...' is not a port"));
	assert_true(strlen(err) < 100);
	assert_one_line(err);
}

/* NULL text, no error buffer, a tiny error buffer. */
static void test_portspec_error_buffers(void **state)
{
	char err[8];
	int rc;

	memset(err, 'x', sizeof(err));
	rc = ps_portspec_parse(&spec, NULL, err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(strlen(err), sizeof(err) - 1);

	rc = ps_portspec_parse(&spec, "70000", NULL, 0);
	assert_int_equal(rc, -EINVAL);

	memset(err, 'x', sizeof(err));
	rc = ps_portspec_parse(&spec, "70000", err, 1);
	assert_int_equal(rc, -EINVAL);
	assert_int_equal(err[0], '\0');
	assert_int_equal(err[1], 'x');

	memset(err, 'x', sizeof(err));
	rc = ps_portspec_parse(&spec, "70000", err, sizeof(err));
	assert_int_equal(rc, -EINVAL);
	assert_string_equal(err, "'70000'");

	rc = ps_portspec_parse(&spec, "80", NULL, 0);
	assert_int_equal(rc, 0);
	assert_true(ps_portspec_has(&spec, PS_UDP, 80));
}

/* A parse replaces the previous spec entirely. */
static void test_portspec_overwrites(void **state)
{
	int rc;

	rc = ps_portspec_parse(&spec, "all", NULL, 0);
	assert_int_equal(rc, 0);
	rc = ps_portspec_parse(&spec, "tcp:8080", NULL, 0);
	assert_int_equal(rc, 0);
	assert_false(spec.all);
	assert_true(ps_portspec_has(&spec, PS_TCP, 8080));
	assert_false(ps_portspec_has(&spec, PS_UDP, 8080));
	assert_false(ps_portspec_maybe(&spec, 8081));
	rc = ps_portspec_parse(&spec, "udp:53", NULL, 0);
	assert_int_equal(rc, 0);
	assert_false(ps_portspec_has(&spec, PS_TCP, 8080));
	assert_false(ps_portspec_maybe(&spec, 8080));
	assert_true(ps_portspec_has(&spec, PS_UDP, 53));
}

static void test_parse_uint(void **state)
{
	static const struct {
		const char *text;
		unsigned long min, max;
		int rc;
		unsigned long value;
	} cases[] = {
		{ "0", 0, 10, 0, 0 },
		{ "10", 0, 10, 0, 10 },
		{ "11", 0, 10, -EINVAL, 0 },
		{ "0", 1, 10, -EINVAL, 0 },
		{ "1", 1, 10, 0, 1 },
		{ "007", 0, 10, 0, 7 },
		{ "65535", 1, 65535, 0, 65535 },
		{ "65536", 1, 65535, -EINVAL, 0 },
		{ "18446744073709551615", 0, ULONG_MAX, 0, ULONG_MAX },
		{ "18446744073709551616", 0, ULONG_MAX, -EINVAL, 0 },
		{ "18446744073709551620", 0, ULONG_MAX, -EINVAL, 0 },
		{ "99999999999999999999999999", 0, ULONG_MAX, -EINVAL, 0 },
		{ "", 0, 10, -EINVAL, 0 },
		{ "+1", 0, 10, -EINVAL, 0 },
		{ "-1", 0, ULONG_MAX, -EINVAL, 0 },
		{ "-0", 0, 10, -EINVAL, 0 },
		{ " 1", 0, 10, -EINVAL, 0 },
		{ "1 ", 0, 10, -EINVAL, 0 },
		{ "\t1", 0, 10, -EINVAL, 0 },
		{ "0x1", 0, 10, -EINVAL, 0 },
		{ "1e3", 0, 10000, -EINVAL, 0 },
		{ "1.0", 0, 10, -EINVAL, 0 },
		{ "1\n", 0, 10, -EINVAL, 0 },
		{ "5", 6, 4, -EINVAL, 0 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned long v = 12345;
		int rc;

		rc = ps_parse_uint(cases[i].text, cases[i].min, cases[i].max,
				   &v);
		if (rc != cases[i].rc)
			print_error("case %zu '%s': rc %d\n", i, cases[i].text,
				    rc);
		assert_int_equal(rc, cases[i].rc);
		/* On failure the output is left alone. */
		assert_int_equal(v, rc == 0 ? cases[i].value : 12345);
	}
	assert_int_equal(ps_parse_uint(NULL, 0, 10, &(unsigned long){ 0 }),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_portspec_valid),
		cmocka_unit_test(test_portspec_invalid),
		cmocka_unit_test(test_portspec_check_only),
		cmocka_unit_test(test_portspec_invalid_long_item),
		cmocka_unit_test(test_portspec_error_buffers),
		cmocka_unit_test(test_portspec_overwrites),
		cmocka_unit_test(test_parse_uint),
	};
	size_t i;

	/*
	 * "80,80,...,80" padded with blanks to exactly 4096 characters, the
	 * longest text accepted; then the same with one character more.
	 */
	memset(max_text, ' ', 4096);
	for (i = 0; i + 3 + 2 <= 4096; i += 3)
		memcpy(max_text + i, "80,", 3);
	memcpy(max_text + i, "80", 2);
	max_text[4096] = '\0';
	memcpy(over_text, max_text, 4096);
	over_text[4096] = ' ';
	over_text[4097] = '\0';

	return cmocka_run_group_tests(tests, NULL, NULL);
}
