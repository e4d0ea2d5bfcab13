/* SPDX-License-Identifier: MIT */
/*
 * registry_int.h - what the files of the registry share and nothing else
 * sees: registry.c (transactions, lock and repair, the table),
 * registry_file.c (the file: layout, creation, validation), registry_peek.c (lock-free reads), registry_alloc.c (allocation and
 * gc) and registry_check.c (the consistency check).
 */
#ifndef PS_REGISTRY_INT_H
#define PS_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>

#include <stdbool.h>

#include "registry.h"

/* The buckets of the (group, vport) index and of the group index. */
static inline uint32_t ps_reg_hbucket(uint32_t ghash, uint16_t vport)
{
	uint32_t h = ghash ^ ((uint32_t)vport * 0x9e3779b1u);

	h ^= h >> 15;
	return h & (PS_REG_HBUCKETS - 1);
}

static inline uint32_t ps_reg_gbucket(uint32_t ghash)
{
	return (ghash ^ (ghash >> 13)) & (PS_REG_GBUCKETS - 1);
}

/* err's text, printf-style (err may be NULL). */
void ps_reg_seterr(struct ps_reg_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reads a small file (a /proc entry) into buf, NUL-terminated. Returns 0
 * or -errno. */
int ps_reg_read_small(const char *path, char *buf, size_t len);

/* Writes tmpl into the free slot of real port port, linked into the
 * indexes, inside a transaction. */
void ps_reg_insert_lease(struct ps_registry *reg, uint32_t port,
			 const struct ps_lease *tmpl);

/* Whether lease l of slot port is well-formed (repair, check). */
bool ps_reg_lease_ok(const struct ps_lease *l, uint32_t port);

/* Frees lease l as part of bulk change b (gc, group release). */
void ps_reg_bulk_free_one(struct ps_registry *reg, struct ps_reg_bulk *b,
			  struct ps_lease *l);

/* Copies shared bytes without a fault: -EIO if the file shrank under
 * them, -ENOSYS where the kernel cannot (then plain loads, guarded by
 * ps_reg_file_ok). */
int ps_reg_copy_in(void *dst, const void *src, size_t len);
int ps_reg_copy_in2(void *d1, const void *s1, size_t n1, void *d2,
		    const void *s2, size_t n2);

/* Whether the file under reg's mapping is still whole (or was reopened
 * after its descriptor was lost). Returns 0 or -errno. */
int ps_reg_file_ok(struct ps_registry *reg);

#endif
