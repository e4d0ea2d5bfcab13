/* SPDX-License-Identifier: MIT */
/*
 * registry_check.c - the registry's full consistency check (portshim doctor,
 * the tests): every lease, chain and index against the others.
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

/* ------------------------------------------------------------ checks */

int ps_registry_check(struct ps_registry *reg, struct ps_reg_error *err)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t used = 0, hlinked = 0, glinked = 0;

	if (h->undo_port != 0) {
		ps_reg_seterr(err, "an undo record is pending for port %u",
			      h->undo_port - 1);
		return -EUCLEAN;
	}
	if (h->seq & 1) {
		ps_reg_seterr(err,
			      "the sequence word is odd (a change is open)");
		return -EUCLEAN;
	}
	for (uint32_t p = 0; p < PS_REG_NPORTS; p++) {
		const struct ps_lease *l = &reg->leases[p];

		if (l->state == PS_LEASE_FREE)
			continue;
		if (l->state != PS_LEASE_USED || !ps_reg_lease_ok(l, p)) {
			ps_reg_seterr(err, "lease at port %u is malformed", p);
			return -EUCLEAN;
		}
		if (l->ghash != ps_group_hash(l->group)) {
			ps_reg_seterr(err, "lease at port %u has a stale hash",
				      p);
			return -EUCLEAN;
		}
		used++;
	}
	if (used != h->nleases) {
		ps_reg_seterr(err, "%u leases in use but the header says %u",
			      used, h->nleases);
		return -EUCLEAN;
	}
	for (uint32_t b = 0; b < PS_REG_HBUCKETS; b++) {
		for (uint32_t p = reg->hbuckets[b], n = 0; p; n++) {
			const struct ps_lease *l = &reg->leases[p];

			if (p >= PS_REG_NPORTS || n > used ||
			    l->state != PS_LEASE_USED ||
			    l->kind != PS_KIND_GROUP ||
			    ps_reg_hbucket(l->ghash, l->vport) != b) {
				ps_reg_seterr(err,
					      "vport chain %u is corrupt at %u",
					      b, p);
				return -EUCLEAN;
			}
			hlinked++;
			p = l->hnext;
		}
	}
	for (uint32_t b = 0; b < PS_REG_GBUCKETS; b++) {
		for (uint32_t p = reg->gbuckets[b], n = 0; p; n++) {
			const struct ps_lease *l = &reg->leases[p];

			if (p >= PS_REG_NPORTS || n > used ||
			    l->state != PS_LEASE_USED ||
			    ps_reg_gbucket(l->ghash) != b) {
				ps_reg_seterr(err,
					      "group chain %u is corrupt at %u",
					      b, p);
				return -EUCLEAN;
			}
			glinked++;
			p = l->gnext;
		}
	}
	if (glinked != used) {
		ps_reg_seterr(err, "%u leases but %u on group chains", used,
			      glinked);
		return -EUCLEAN;
	}
	uint32_t groups = 0;

	for (uint32_t p = 0; p < PS_REG_NPORTS; p++)
		if (reg->leases[p].state == PS_LEASE_USED &&
		    reg->leases[p].kind == PS_KIND_GROUP)
			groups++;
	if (hlinked != groups) {
		ps_reg_seterr(err, "%u group leases but %u on vport chains",
			      groups, hlinked);
		return -EUCLEAN;
	}
	/* (group, vport) is unique. */
	for (uint32_t p = 0; p < PS_REG_NPORTS; p++) {
		const struct ps_lease *l = &reg->leases[p];

		if (l->state != PS_LEASE_USED || l->kind != PS_KIND_GROUP)
			continue;
		if (ps_registry_port(reg, ps_registry_find(reg, l->group,
							   l->vport)) != p) {
			ps_reg_seterr(err,
				      "group %s has two leases for port %u",
				      l->group, l->vport);
			return -EUCLEAN;
		}
	}
	return 0;
}
