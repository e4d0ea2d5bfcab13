/* SPDX-License-Identifier: MIT */
/*
 * registry_alloc.c - the registry's allocation of new leases and its reclaiming
 * of dead and expired ones (gc), and the host's reserved ports.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "claims.h"
#include "proc.h"
#include "registry.h"
#include "registry_int.h"

/* ------------------------------------------------------- reclaiming */

/*
 * Registries made before expiry followed CLOCK_BOOTTIME kept the wall
 * clock there: nanoseconds since 1970, 2001 or later, which no boot
 * clock reaches (31 years of uptime). Those are still compared with the
 * wall clock.
 */
#define WALL_CLOCK_EXPIRY_NS 1000000000000000000ull

bool ps_lease_expired(const struct ps_lease *l, uint64_t boot_ns)
{
	if (l->expires_ns == 0)
		return false;
	if (l->expires_ns >= WALL_CLOCK_EXPIRY_NS)
		return ps_now_ns() >= l->expires_ns;
	return boot_ns >= l->expires_ns;
}

bool ps_lease_dead(const struct ps_lease *l, uint64_t boot_ns)
{
	if (ps_lease_expired(l, boot_ns))
		return true;
	return !ps_proc_alive(&l->holder);
}

/* Answers about holders, so that each is looked up in /proc once. */
#define HOLDER_CACHE 64

struct holder_cache {
	struct ps_ident id[HOLDER_CACHE];
	bool dead[HOLDER_CACHE];
};

static bool holder_dead(struct holder_cache *c, const struct ps_ident *h)
{
	uint32_t k = (h->pid * 2654435761u) % HOLDER_CACHE;

	if (c->id[k].pid == h->pid && c->id[k].start == h->start && h->pid != 0)
		return c->dead[k];
	c->id[k] = *h;
	c->dead[k] = !ps_proc_alive(h);
	return c->dead[k];
}

size_t ps_registry_gc(struct ps_registry *reg, bool dry_run,
		      void (*fn)(void *arg, const struct ps_lease *l,
				 uint16_t real),
		      void *arg)
{
	uint64_t now = ps_boot_ns();
	struct holder_cache cache;
	struct ps_reg_bulk bulk = { false, 0 };
	size_t count = 0;

	memset(&cache, 0, sizeof(cache));
	/*
	 * One pass over the table, each holder looked up once (most leases
	 * share a holder with many others), every free a bulk free: linear
	 * in the table's size, whatever the leases.
	 */
	for (uint32_t p = 1; p < PS_REG_NPORTS; p++) {
		struct ps_lease *l = &reg->leases[p];

		if (l->state != PS_LEASE_USED)
			continue;
		if (!ps_lease_expired(l, now) &&
		    !holder_dead(&cache, &l->holder))
			continue;
		if (fn)
			fn(arg, l, (uint16_t)p);
		if (!dry_run)
			ps_reg_bulk_free_one(reg, &bulk, l);
		count++;
	}
	ps_registry_bulk_end(reg, &bulk);
	return count;
}

/* ------------------------------------------------------- allocation */

static bool bit_set(const uint8_t *map, uint32_t p)
{
	return map != NULL && ((map[p >> 3] >> (p & 7)) & 1);
}

int ps_registry_alloc(struct ps_registry *reg, const struct ps_lease *tmpl,
		      uint16_t lo, uint16_t hi, const uint8_t *reserved,
		      ps_try_bind_fn try_bind, void *arg, uint16_t *real)
{
	uint32_t n;
	uint32_t start;

	if (lo == 0)
		lo = 1;
	if (hi < lo)
		return -EINVAL;
	n = (uint32_t)hi - lo + 1;
	for (int pass = 0; pass < 2; pass++) {
		start = reg->hdr->next_hint;
		if (start < lo || start > hi)
			start = lo;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t p = lo + (start - lo + i) % n;
			int rc;

			if (reg->leases[p].state != PS_LEASE_FREE ||
			    bit_set(reserved, p))
				continue;
			/* Another registry's, another user's maybe. */
			if (ps_claim_take(reg, (uint16_t)p, &tmpl->holder) ==
			    -EADDRINUSE)
				continue;
			rc = try_bind ? try_bind(arg, (uint16_t)p) : 0;
			if (rc < 0)
				ps_claim_drop(reg, (uint16_t)p);
			if (rc == -EADDRINUSE)
				continue; /* a foreign process has it */
			if (rc < 0)
				return rc;
			ps_reg_insert_lease(reg, p, tmpl);
			reg->hdr->next_hint = p + 1 > hi ? lo : p + 1;
			*real = (uint16_t)p;
			return 0;
		}
		/* The range is full: reclaim dead leases once, then retry. */
		if (pass == 0 && ps_registry_gc(reg, false, NULL, NULL) == 0)
			break;
	}
	return -EADDRNOTAVAIL;
}

/* ------------------------------------------------- reserved ports */

int ps_reserved_ports_load(uint8_t *map)
{
	char buf[8192];
	char *s;
	int rc;

	memset(map, 0, PS_REG_NPORTS / 8);
	rc = ps_reg_read_small("/proc/sys/net/ipv4/ip_local_reserved_ports",
			       buf, sizeof(buf));
	if (rc)
		return rc;
	s = buf;
	while (*s) {
		char *end;
		unsigned long lo, hi;

		while (*s == ',' || *s == ' ' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		lo = strtoul(s, &end, 10);
		if (end == s)
			return -EINVAL;
		hi = lo;
		s = end;
		if (*s == '-') {
			hi = strtoul(s + 1, &end, 10);
			if (end == s + 1)
				return -EINVAL;
			s = end;
		}
		for (unsigned long p = lo; p <= hi && p < PS_REG_NPORTS; p++)
			map[p >> 3] |= (uint8_t)(1u << (p & 7));
	}
	return 0;
}
