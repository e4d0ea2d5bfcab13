/* SPDX-License-Identifier: MIT */
/*
 * fuzz_header.c - libFuzzer target for what the registry reads from a
 * file it does not trust.
 *
 * The first input byte picks the mode:
 *   even  the rest is a header image for ps_registry_check_header (the
 *         second byte says whether to compare the boot id and the PID
 *         namespace, with the image's own or other ones, and which file
 *         size to claim). It must never crash;
 *         it accepts only a header with every field right, and refuses
 *         with one printable, non-empty line.
 *   odd   the rest is written over a valid, empty lease table: bucket
 *         heads, and leases at ports 1..1023 (what a dying or buggy
 *         writer could leave). Lookups, the invariant check, gc,
 *         release and allocation must terminate without touching memory
 *         outside the table, whatever the chains hold (cycles, ports out
 *         of range, garbage states).
 *
 * Build (scripts/fuzz does this):
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc/common \
 *       tests/fuzz/fuzz_header.c (and every .c file of src/common)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TABLE_PORTS 1024

static void check_message(const struct ps_reg_error *err)
{
	size_t n = strnlen(err->msg, sizeof(err->msg));

	if (n == 0 || n == sizeof(err->msg))
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)err->msg[i] < 0x20 || err->msg[i] == 0x7f)
			abort();
}

static void header_mode(const uint8_t *data, size_t size)
{
	static uint8_t img[PS_REG_HEADER_SIZE];
	const struct ps_reg_header *h = (const void *)img;
	struct ps_reg_error err;
	const char *boot = NULL;
	uint64_t ns = 0, fsize = ps_registry_file_size();
	uint8_t how = size > 0 ? data[0] : 0;
	size_t len;
	int rc;

	if (size > 0) {
		data++;
		size--;
	}
	len = size < sizeof(img) ? size : sizeof(img);
	memset(img, 0, sizeof(img));
	memcpy(img, data, len);
	if (len >= sizeof(*h)) {
		/* The image's own boot id and namespace, or other ones. */
		if (how & 1)
			boot = how & 8 ?
				       "00000000-0000-0000-0000-000000000000" :
			       memchr(h->boot_id, '\0', sizeof(h->boot_id)) ?
				       h->boot_id :
				       "x";
		if (how & 2)
			ns = how & 16 ? h->pidns + 1 : h->pidns;
		if (how & 4)
			fsize = h->file_size;
	}
	memset(&err, 0x55, sizeof(err));
	rc = ps_registry_check_header(img, len, fsize, boot, ns, &err);
	if (rc == 0) {
		if (len < sizeof(*h) || h->magic != PS_REG_MAGIC ||
		    h->version != PS_REG_VERSION ||
		    h->abi_word != sizeof(long) ||
		    h->abi_mutex != sizeof(pthread_mutex_t) ||
		    h->file_size != ps_registry_file_size() ||
		    h->nports != PS_REG_NPORTS)
			abort();
		return;
	}
	if (rc != -EUCLEAN && rc != -EPROTO && rc != -ESTALE && rc != -EXDEV)
		abort();
	check_message(&err);
	/* No reason wanted: same verdict. */
	if (ps_registry_check_header(img, len, fsize, boot, ns, NULL) != rc)
		abort();
}

/* One valid, empty table, made once; reset between inputs. */
static struct ps_registry reg;
static uint8_t *table;

static void table_init(void)
{
	struct ps_reg_header *h;

	table = aligned_alloc(4096, ps_registry_file_size());
	if (table == NULL)
		abort();
	memset(table, 0, ps_registry_file_size());
	h = (struct ps_reg_header *)table;
	h->magic = PS_REG_MAGIC;
	h->version = PS_REG_VERSION;
	h->header_size = PS_REG_HEADER_SIZE;
	h->file_size = ps_registry_file_size();
	h->abi_word = sizeof(long);
	h->abi_mutex = sizeof(pthread_mutex_t);
	h->hbuckets = PS_REG_HBUCKETS;
	h->gbuckets = PS_REG_GBUCKETS;
	h->nports = PS_REG_NPORTS;
	h->hbuckets_off = PS_REG_HEADER_SIZE;
	h->gbuckets_off = h->hbuckets_off + PS_REG_HBUCKETS * 4;
	h->leases_off = h->gbuckets_off + PS_REG_GBUCKETS * 4;
	reg.hdr = h;
	reg.hbuckets = (uint32_t *)(table + h->hbuckets_off);
	reg.gbuckets = (uint32_t *)(table + h->gbuckets_off);
	reg.leases = (struct ps_lease *)(table + h->leases_off);
	reg.size = ps_registry_file_size();
	reg.fd = -1;
}

static void table_reset(void)
{
	struct ps_reg_header *h = reg.hdr;

	memset(reg.hbuckets, 0, PS_REG_HBUCKETS * 4);
	memset(reg.gbuckets, 0, PS_REG_GBUCKETS * 4);
	memset(reg.leases, 0, TABLE_PORTS * sizeof(struct ps_lease));
	h->seq = 0;
	h->undo_port = 0;
	h->next_hint = 0;
	h->nleases = 0;
}

static void count(void *arg, struct ps_lease *l)
{
	(void)l;
	(*(size_t *)arg)++;
}

/*
 * The input, in records of 4 bytes: a 16-bit target and a 16-bit value.
 * Targets below 0x8000 write the value into a bucket head (hbuckets,
 * then gbuckets; values are ports, possibly out of range when the top
 * bit is set); the others write 2 bytes into the lease area of ports
 * 0..1023 at the given offset.
 */
static void table_mode(const uint8_t *data, size_t size)
{
	static const char *groups[] = { "a", "b", "g1", "storm1", "" };
	struct ps_lease t;
	uint8_t *leases = (uint8_t *)reg.leases;
	size_t area = TABLE_PORTS * sizeof(struct ps_lease), n = 0;
	uint16_t real;

	if (table == NULL)
		table_init();
	table_reset();
	for (size_t i = 0; i + 4 <= size; i += 4) {
		uint16_t target = (uint16_t)(data[i] | data[i + 1] << 8);
		uint16_t value = (uint16_t)(data[i + 2] | data[i + 3] << 8);
		uint32_t v = value & 0x8000 ? 0x10000u + value : value;

		if (target < 0x8000) {
			uint32_t b =
				target % (PS_REG_HBUCKETS + PS_REG_GBUCKETS);

			if (b < PS_REG_HBUCKETS)
				reg.hbuckets[b] =
					v % TABLE_PORTS + (v >> 16) * 70000;
			else
				reg.gbuckets[b - PS_REG_HBUCKETS] =
					v % TABLE_PORTS + (v >> 16) * 70000;
		} else {
			size_t off =
				((size_t)(target & 0x7fff) * 5) % (area - 1);

			memcpy(leases + off, &value, 2);
		}
		if (i % 64 == 0)
			reg.hdr->nleases += value & 3;
	}

	/* Read-only walks first. */
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		for (uint16_t vp = 0; vp < 8; vp++)
			ps_registry_find(&reg, groups[g], vp);
		ps_registry_each_group(&reg, groups[g], count, &n);
	}
	for (uint32_t p = 0; p < TABLE_PORTS; p++)
		ps_registry_at(&reg, (uint16_t)p);

	/* Then the writers, confined to ports below TABLE_PORTS. */
	ps_registry_release_group(&reg, "a");
	memset(&t, 0, sizeof(t));
	t.kind = PS_KIND_GROUP;
	t.vport = 80;
	memcpy(t.group, "b", 2);
	ps_registry_alloc(&reg, &t, 1, TABLE_PORTS - 1, NULL, NULL, NULL,
			  &real);
	{
		struct ps_lease *l = ps_registry_find(&reg, "b", 80);

		if (l != NULL) {
			struct ps_lease nl = *l;

			memcpy(nl.group, "g1", 3);
			ps_registry_update(&reg, l, &nl);
			ps_registry_free(&reg, l);
		}
	}
	ps_registry_check(&reg, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		table_mode(data + 1, size - 1);
	else
		header_mode(data + 1, size - 1);
	return 0;
}
