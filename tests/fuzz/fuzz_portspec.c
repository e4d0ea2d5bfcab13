/* SPDX-License-Identifier: MIT */
/*
 * fuzz_portspec.c - libFuzzer target for the PORTSHIM_PORTS parser.
 *
 * Differential: every input is parsed by ps_portspec_parse and by a
 * small reference parser written here from the grammar in portspec.h,
 * which sets bits one at a time (the real one sets whole bytes). They
 * must agree on success, "all" and every bit. On failure the spec must be
 * empty and the message one printable, non-empty line that fits the
 * buffer; tiny and missing buffers must be safe. ps_parse_uint is
 * checked against a plain reading of the digits.
 *
 * Build (scripts/fuzz does this):
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc/common \
 *       tests/fuzz/fuzz_portspec.c (and every .c file of src/common)
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portspec.h"

#define TEXT_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct ps_portspec spec;
static const struct ps_portspec zero;
static uint8_t ref[PS_NPROTO][65536 / 8];

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static void trim(const char **b, const char **e)
{
	while (*b < *e && blank(**b))
		(*b)++;
	while (*e > *b && blank((*e)[-1]))
		(*e)--;
}

/* A port: 1 to 10 digits, value 1..65535. */
static bool ref_port(const char *s, const char *e, unsigned *out)
{
	uint64_t v = 0;

	if (e - s < 1 || e - s > 10)
		return false;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*out = (unsigned)v;
	return true;
}

static bool ref_item(const char *b, const char *e)
{
	const char *colon = memchr(b, ':', (size_t)(e - b));
	const char *dash;
	bool tcp = true, udp = true;
	unsigned lo, hi;

	if (colon != NULL) {
		if (colon - b == 3 && memcmp(b, "tcp", 3) == 0)
			udp = false;
		else if (colon - b == 3 && memcmp(b, "udp", 3) == 0)
			tcp = false;
		else
			return false;
		b = colon + 1;
	}
	dash = memchr(b, '-', (size_t)(e - b));
	if (dash != NULL) {
		if (!ref_port(b, dash, &lo) || !ref_port(dash + 1, e, &hi) ||
		    lo > hi)
			return false;
	} else {
		if (!ref_port(b, e, &lo))
			return false;
		hi = lo;
	}
	for (unsigned p = lo; p <= hi; p++) {
		if (tcp)
			ref[PS_TCP][p >> 3] |= (uint8_t)(1u << (p & 7));
		if (udp)
			ref[PS_UDP][p >> 3] |= (uint8_t)(1u << (p & 7));
	}
	return true;
}

/* Returns 0 (ok, *all set) or -1. */
static int ref_parse(const char *text, bool *all)
{
	size_t len = strnlen(text, TEXT_MAX + 1);
	const char *b = text, *e = text + len, *end = text + len, *p;

	memset(ref, 0, sizeof(ref));
	*all = false;
	if (len > TEXT_MAX)
		return -1;
	trim(&b, &e);
	if (b == e)
		return -1;
	if (e - b == 3 && memcmp(b, "all", 3) == 0) {
		*all = true;
		return 0;
	}
	for (p = text;; p = e + 1) {
		const char *ib, *ie;

		e = memchr(p, ',', (size_t)(end - p));
		if (e == NULL)
			e = end;
		ib = p;
		ie = e;
		trim(&ib, &ie);
		if (ib == ie || (ie - ib == 3 && memcmp(ib, "all", 3) == 0))
			return -1;
		if (!ref_item(ib, ie))
			return -1;
		if (e == end)
			break;
	}
	return 0;
}

static void check_message(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen);

	if (n == errlen || n == 0)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)err[i] < 0x20 || err[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[TEXT_MAX + 64];
	char err[200], tiny[1];
	unsigned long v;
	bool all;
	int rc, want;

	if (size >= sizeof(text))
		size = sizeof(text) - 1;
	memcpy(text, data, size);
	text[size] = '\0';

	rc = ps_portspec_parse(&spec, text, err, sizeof(err));
	want = ref_parse(text, &all);
	if ((rc == 0) != (want == 0))
		abort();
	if (rc != 0) {
		if (rc != -EINVAL)
			abort();
		if (memcmp(&spec, &zero, sizeof(spec)) != 0)
			abort();
		check_message(err, sizeof(err));
	} else {
		if (!spec.any || spec.all != all)
			abort();
		if (!all) {
			if (memcmp(spec.bits, ref, sizeof(ref)) != 0)
				abort();
			for (size_t i = 0; i < sizeof(spec.either); i++)
				if (spec.either[i] !=
				    (uint8_t)(spec.bits[0][i] |
					      spec.bits[1][i]))
					abort();
		}
		if (ps_portspec_has(&spec, PS_TCP, 0) ||
		    ps_portspec_maybe(&spec, 0))
			abort();
	}

	/* Small and missing buffers: same verdict, no overflow. */
	tiny[0] = 'x';
	if (ps_portspec_parse(&spec, text, tiny, sizeof(tiny)) != rc ||
	    (rc != 0 && tiny[0] != '\0'))
		abort();
	if (ps_portspec_parse(&spec, text, NULL, 0) != rc)
		abort();

	/* ps_parse_uint: digits only, exact value, range respected. */
	rc = ps_parse_uint(text, 0, ULONG_MAX, &v);
	{
		size_t n = strlen(text), i;
		bool digits = n > 0 && n <= 19;

		for (i = 0; i < n && digits; i++)
			digits = text[i] >= '0' && text[i] <= '9';
		if (digits && (rc != 0 || v != strtoul(text, NULL, 10)))
			abort();
		if (rc == 0 && strspn(text, "0123456789") != n)
			abort();
		if (rc == 0) {
			unsigned long w;

			if (ps_parse_uint(text, v, v, &w) != 0 || w != v)
				abort();
			if (v < ULONG_MAX &&
			    ps_parse_uint(text, v + 1, ULONG_MAX, &w) == 0)
				abort();
		}
	}
	return 0;
}
