/* SPDX-License-Identifier: MIT */
/*
 * decimal.h - the decimal form of a number, written without snprintf:
 * for the paths that run in a vfork child, in a signal handler's reach,
 * or before libc's locale is set up (log lines, mapping files, claims,
 * /proc paths).
 */
#ifndef PS_DECIMAL_H
#define PS_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

/* The most digits ps_put_u64 writes. */
#define PS_U64_DIGITS 20

/* Writes the digits of v at buf (no NUL); returns how many. */
static inline size_t ps_put_u64(char *buf, uint64_t v)
{
	char tmp[PS_U64_DIGITS];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

#endif
