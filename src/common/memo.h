/* SPDX-License-Identifier: MIT */
/*
 * memo.h - the last answers of the lock-free registry reads, per thread.
 *
 * A repeat bind, a connect or a getsockname to a port whose lease has not
 * changed asks the same question of the same table again. The table's
 * sequence word changes with every change to it (registry.h), so an
 * answer remembered with the sequence word of its read is still the
 * answer while the word has that value: one read of the word (one
 * system call) instead of a walk of a chain (several).
 *
 * The memo is thread-local: no lock, no atomic, nothing shared that
 * another thread could tear. A signal handler of the same thread may
 * interrupt a write or a read; each entry has a version word, odd while
 * it is written, so a reader never takes a half-written entry. No
 * allocation: a few fixed slots, overwritten.
 */
#ifndef PORTSHIM_MEMO_H
#define PORTSHIM_MEMO_H

#include <stdbool.h>
#include <stdint.h>

#include "registry.h"

enum ps_memo_kind {
	PS_MEMO_BIND = 1, /* port: vport; answer: the lease, maker too */
	PS_MEMO_CONNECT,  /* port: vport; answer: real (0: no lease) */
	PS_MEMO_REVERSE,  /* port: real; answer: vport (0: none) */
};

/* Which table and which group an answer is about. */
struct ps_memo_scope {
	uint32_t serial; /* ps_registry.serial: one open of one file */
	uint32_t ghash;	 /* ps_group_hash of the group */
};

/* What is remembered: a glance (registry.h) under a key. */
bool ps_memo_get(const struct ps_memo_scope *s, enum ps_memo_kind kind,
		 uint16_t port, struct ps_reg_glance *out);
void ps_memo_put(const struct ps_memo_scope *s, enum ps_memo_kind kind,
		 uint16_t port, const struct ps_reg_glance *in);

#endif
