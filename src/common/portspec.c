/* SPDX-License-Identifier: MIT */
/*
 * portspec.c - the PORTSHIM_PORTS language (grammar in portspec.h).
 *
 * The text comes from the environment of whatever program the shim is
 * loaded into, so it is treated as hostile: its length is bounded, nothing
 * is allocated, and every piece of it quoted in an error message is
 * truncated and stripped of control characters, so that the message stays
 * on one line.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "portspec.h"

/*
 * Longest text accepted. Real lists are a few dozen characters; the bound
 * keeps the parse time small whatever the environment holds.
 */
#define PORTSPEC_TEXT_MAX 4096

/* Characters of user text shown inside quotes in an error message. */
#define QUOTE_SHOWN 40
/* Two quotes, the shown characters, "..." and the NUL. */
#define QUOTE_BUF (QUOTE_SHOWN + 6)

/*
 * A port written with more digits than this is not a port, whatever its
 * value ("0000000000000080" is refused, "00080" is accepted as 80).
 */
#define PORT_DIGITS_MAX 10

/* White space allowed around items: blanks only, never newlines. */
static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * Writes the n bytes at s into buf as 'text', shortened to QUOTE_SHOWN
 * characters (then followed by "...") and with control characters turned
 * into '?', so that a hostile value can neither flood nor split a line.
 */
static void quote(char *buf, const char *s, size_t n)
{
	size_t i, o = 0;

	buf[o++] = '\'';
	for (i = 0; i < n && i < QUOTE_SHOWN; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
}

/*
 * Formats an error into err, if the caller gave room for one. Returns
 * -EINVAL so that callers can write "return fail(...)".
 */
static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Parses the n bytes at s as a port 1..65535. Returns 0 or -EINVAL. */
static int parse_port(const char *s, size_t n, unsigned *out)
{
	char buf[PORT_DIGITS_MAX + 1];
	unsigned long v;
	int rc;

	if (n == 0 || n > PORT_DIGITS_MAX)
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	rc = ps_parse_uint(buf, 1, 65535, &v);
	if (rc == 0)
		*out = (unsigned)v;
	return rc;
}

/* Sets bits lo..hi (inclusive, hi <= 65535), whole bytes at a time. */
static void set_range(uint8_t *bits, unsigned lo, unsigned hi)
{
	while (lo <= hi && (lo & 7) != 0) {
		bits[lo >> 3] |= (uint8_t)(1u << (lo & 7));
		lo++;
	}
	if (lo + 7 <= hi) {
		memset(bits + (lo >> 3), 0xff, (hi + 1 - lo) >> 3);
		lo += (hi + 1 - lo) & ~7u;
	}
	while (lo <= hi) {
		bits[lo >> 3] |= (uint8_t)(1u << (lo & 7));
		lo++;
	}
}

/*
 * Parses one item, the n bytes at s with the surrounding blanks already
 * removed, into spec. Returns 0 or -EINVAL with err filled.
 */
static int parse_item(struct ps_portspec *spec, const char *s, size_t n,
		      char *err, size_t errlen)
{
	char qitem[QUOTE_BUF], qpart[QUOTE_BUF];
	const char *colon, *dash, *num = s, *bad;
	size_t nnum = n, nbad;
	unsigned lo, hi;
	bool tcp = true, udp = true;

	quote(qitem, s, n);
	colon = memchr(s, ':', n);
	if (colon) {
		size_t np = (size_t)(colon - s);

		if (np == 3 && memcmp(s, "tcp", 3) == 0) {
			udp = false;
		} else if (np == 3 && memcmp(s, "udp", 3) == 0) {
			tcp = false;
		} else {
			quote(qpart, s, np);
			return fail(err, errlen,
				    "unknown protocol %s in %s (tcp or udp)",
				    qpart, qitem);
		}
		num = colon + 1;
		nnum = n - np - 1;
	}

	dash = memchr(num, '-', nnum);
	if (dash) {
		size_t nlo = (size_t)(dash - num);

		bad = num;
		nbad = nlo;
		if (parse_port(num, nlo, &lo) != 0)
			goto bad_port;
		bad = dash + 1;
		nbad = nnum - nlo - 1;
		if (parse_port(dash + 1, nbad, &hi) != 0)
			goto bad_port;
		if (lo > hi)
			return fail(err, errlen,
				    "%s is a reversed range (LO-HI, LO <= HI)",
				    qitem);
	} else {
		bad = num;
		nbad = nnum;
		if (parse_port(num, nnum, &lo) != 0)
			goto bad_port;
		hi = lo;
	}

	if (spec != NULL && tcp)
		set_range(spec->bits[PS_TCP], lo, hi);
	if (spec != NULL && udp)
		set_range(spec->bits[PS_UDP], lo, hi);
	return 0;

bad_port:
	quote(qpart, bad, nbad);
	if (nbad == n)
		return fail(err, errlen, "%s is not a port (1-65535)", qpart);
	return fail(err, errlen, "%s in %s is not a port (1-65535)", qpart,
		    qitem);
}

/*
 * Parses text into spec. On failure spec is left all zero (no port
 * tagged), so that a caller that ignores the error gets an inert spec
 * rather than half a list.
 */
int ps_portspec_parse(struct ps_portspec *spec, const char *text, char *err,
		      size_t errlen)
{
	char qtext[QUOTE_BUF];
	const char *p, *end, *b, *e;
	size_t len, i;
	int rc = -EINVAL;

	if (spec != NULL)
		memset(spec, 0, sizeof(*spec));
	if (err && errlen > 0)
		err[0] = '\0';
	if (!text) {
		rc = fail(err, errlen, "no port list given");
		goto out;
	}

	len = strnlen(text, PORTSPEC_TEXT_MAX + 1);
	quote(qtext, text, len);
	if (len > PORTSPEC_TEXT_MAX) {
		rc = fail(err, errlen,
			  "%s is too long (more than %d characters)", qtext,
			  PORTSPEC_TEXT_MAX);
		goto out;
	}

	/* The whole text, trimmed: empty, or "all" on its own? */
	b = text;
	e = text + len;
	while (b < e && is_blank(*b))
		b++;
	while (e > b && is_blank(e[-1]))
		e--;
	if (b == e) {
		rc = fail(err, errlen, "%s is an empty port list", qtext);
		goto out;
	}
	if (e - b == 3 && memcmp(b, "all", 3) == 0) {
		if (spec != NULL) {
			spec->all = true;
			spec->any = true;
		}
		rc = 0;
		goto out;
	}

	/*
	 * Items, separated by commas: p is where the current item starts,
	 * e the comma (or the end) after it, and b..ie the item trimmed.
	 */
	end = text + len;
	for (p = text; p <= end; p = e + 1) {
		const char *ie;

		e = memchr(p, ',', (size_t)(end - p));
		if (!e)
			e = end;
		b = p;
		ie = e;
		while (b < ie && is_blank(*b))
			b++;
		while (ie > b && is_blank(ie[-1]))
			ie--;
		if (b == ie) {
			rc = fail(err, errlen, "empty item in %s", qtext);
			goto out;
		}
		if (ie - b == 3 && memcmp(b, "all", 3) == 0) {
			rc = fail(err, errlen,
				  "'all' in %s cannot be combined with "
				  "other ports",
				  qtext);
			goto out;
		}
		rc = parse_item(spec, b, (size_t)(ie - b), err, errlen);
		if (rc != 0)
			goto out;
	}

	if (spec != NULL) {
		for (i = 0; i < sizeof(spec->either); i++)
			spec->either[i] =
				spec->bits[PS_TCP][i] | spec->bits[PS_UDP][i];
		spec->any = true;
	}
	rc = 0;
out:
	if (rc != 0 && spec != NULL)
		memset(spec, 0, sizeof(*spec));
	return rc;
}

/*
 * Strict decimal: only the digits 0-9, at least one, nothing else (no
 * sign, no blanks, no "0x"). Leading zeros are decimal, never octal.
 * Overflow is detected before it happens, so a huge number is simply out
 * of range. *out is written only on success.
 */
int ps_parse_uint(const char *text, unsigned long min, unsigned long max,
		  unsigned long *out)
{
	unsigned long v = 0;
	const char *p;

	if (!text || *text == '\0')
		return -EINVAL;
	for (p = text; *p != '\0'; p++) {
		unsigned long d;

		if (*p < '0' || *p > '9')
			return -EINVAL;
		d = (unsigned long)(*p - '0');
		if (v > (ULONG_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int ps_proto_parse(const char *name)
{
	if (strcmp(name, "tcp") == 0)
		return PS_TCP;
	if (strcmp(name, "udp") == 0)
		return PS_UDP;
	return -1;
}
