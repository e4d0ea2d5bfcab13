/* SPDX-License-Identifier: MIT */
/*
 * registry_peek.c - the registry's lock-free reads: a lease looked up without
 * the lock, on copies that a shrunk file cannot turn into a SIGBUS, and
 * checked against the table's sequence word (registry.h).
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

/* ------------------------------------------------------------ lookup */

/* How many times a lock-free reader retries before taking the lock. */
#define PEEK_TRIES 4

/*
 * A lock-free reader's copy of shared bytes: with ps_reg_copy_in, so that a
 * file shrunk at any moment gives -EIO and never a SIGBUS; with plain
 * loads only where ps_reg_copy_in is not allowed (then the fstat in ps_reg_file_ok is
 * the guard). What is copied may be torn by a writer: the sequence
 * check of the caller throws such a read away.
 */
static int rd(void *dst, const void *src, size_t len)
{
	int rc = ps_reg_copy_in(dst, src, len);

	if (rc == -ENOSYS) {
		const volatile unsigned char *s = src;
		unsigned char *d = dst;

		for (size_t i = 0; i < len; i++)
			d[i] = s[i];
		rc = 0;
	}
	return rc;
}

static int rd2(void *d1, const void *s1, size_t n1, void *d2, const void *s2,
	       size_t n2)
{
	int rc = ps_reg_copy_in2(d1, s1, n1, d2, s2, n2);

	if (rc == -ENOSYS) {
		rc = rd(d1, s1, n1);
		if (rc == 0)
			rc = rd(d2, s2, n2);
	}
	return rc;
}

/*
 * One lock-free walk of the (group, vport) chain, on copies: every word
 * that steers the walk is checked before it is used as an index, so a
 * chain rewritten under our feet can give a wrong answer (which the
 * caller's sequence check throws away) but never an access outside the
 * table. Returns 0 with *port (0: not found) and the lease in *out, or
 * -EIO.
 */
static int peek_chain(struct ps_registry *reg, const char *group, uint32_t gh,
		      uint16_t vport, uint32_t p, uint32_t *port,
		      struct ps_lease *out)
{
	*port = 0;
	for (uint32_t n = 0; p != 0 && p < PS_REG_NPORTS && n < PS_REG_NPORTS;
	     n++) {
		int rc = rd(out, &reg->leases[p], sizeof(*out));

		if (rc)
			return rc;
		if (out->state == PS_LEASE_USED && out->kind == PS_KIND_GROUP &&
		    out->vport == vport && out->ghash == gh &&
		    strncmp(out->group, group, sizeof(out->group)) == 0) {
			*port = p;
			return 0;
		}
		p = out->hnext;
	}
	return 0;
}

/*
 * Why a reader may skip the lock: every change to the table is made under
 * the lock between two increments of the header's sequence word (tx_begin
 * and tx_end; repair too), which is odd while a change is under way. A
 * reader that sees the same even value before and after its walk saw no
 * change at all. Readers never write, so they cannot leave anything
 * half-done, and they hold nothing that a signal handler could wait for.
 * They read through rd(), so a file shrunk under them is an error, not a
 * SIGBUS, at any instant.
 */
int ps_registry_peek_lease(struct ps_registry *reg, const char *group,
			   uint16_t vport, struct ps_reg_glance *out)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t gh = ps_group_hash(group);
	int rc = ps_reg_file_ok(reg);

	if (rc)
		return rc;
	for (int i = 0; i < PEEK_TRIES; i++) {
		struct ps_lease l;
		uint64_t s1, s2;
		uint32_t head, p;

		rc = rd2(&s1, &h->seq, sizeof(s1), &head,
			 &reg->hbuckets[ps_reg_hbucket(gh, vport)],
			 sizeof(head));
		if (rc)
			return rc;
		if (s1 & 1)
			continue;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		rc = peek_chain(reg, group, gh, vport, head, &p, &l);
		if (rc)
			return rc;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		rc = rd(&s2, &h->seq, sizeof(s2));
		if (rc)
			return rc;
		if (s2 != s1)
			continue;
		out->seq = s1;
		if (p == 0)
			return -ENOENT;
		out->real = (uint16_t)p;
		out->protos = l.protos;
		out->maker.pid = l.maker.pid;
		out->maker.pad = 0;
		out->maker.start = l.maker.start;
		return 0;
	}
	return -EAGAIN;
}

int ps_registry_peek_at(struct ps_registry *reg, const char *group,
			uint16_t real, uint16_t *vport)
{
	return ps_registry_peek_vport(reg, group, real, vport, NULL);
}

int ps_registry_peek_vport(struct ps_registry *reg, const char *group,
			   uint16_t real, uint16_t *vport, uint64_t *seq)
{
	struct ps_reg_header *h = reg->hdr;
	uint32_t gh = ps_group_hash(group);
	int rc = ps_reg_file_ok(reg);

	if (rc)
		return rc;
	for (int i = 0; i < PEEK_TRIES; i++) {
		struct ps_lease l;
		uint64_t s1, s2;
		bool ours;

		rc = rd2(&s1, &h->seq, sizeof(s1), &l, &reg->leases[real],
			 sizeof(l));
		if (rc)
			return rc;
		if (s1 & 1)
			continue;
		ours = l.state == PS_LEASE_USED && l.kind == PS_KIND_GROUP &&
		       l.ghash == gh &&
		       strncmp(l.group, group, sizeof(l.group)) == 0;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		rc = rd(&s2, &h->seq, sizeof(s2));
		if (rc)
			return rc;
		if (s2 != s1)
			continue;
		if (seq != NULL)
			*seq = s1;
		if (!ours)
			return -ENOENT;
		*vport = l.vport;
		return 0;
	}
	return -EAGAIN;
}

int ps_registry_peek(struct ps_registry *reg, const char *group, uint16_t vport,
		     uint16_t *real)
{
	struct ps_reg_glance gl;
	int rc = ps_registry_peek_lease(reg, group, vport, &gl);

	if (rc == 0)
		*real = gl.real;
	return rc;
}

int ps_registry_read_seq(const struct ps_registry *reg, uint64_t *seq)
{
	/* Orders the caller's earlier reads and system calls before it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return rd(seq, &reg->hdr->seq, sizeof(*seq));
}

bool ps_registry_unchanged(const struct ps_registry *reg, uint64_t seq)
{
	uint64_t now;

	/* Orders the caller's earlier reads and system calls before it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return rd(&now, &reg->hdr->seq, sizeof(now)) == 0 && now == seq;
}
