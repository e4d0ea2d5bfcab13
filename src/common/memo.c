/* SPDX-License-Identifier: MIT */
/*
 * memo.c - the last answers of the lock-free registry reads, per thread.
 * See memo.h for why an answer stays true while the table's sequence
 * word is unchanged.
 */
#include <string.h>

#include "memo.h"

/* Direct-mapped: a server's few ports and its clients' fit. */
#define MEMO_SLOTS 8u

struct memo_entry {
	uint32_t version; /* odd while written */
	uint8_t kind;
	uint16_t port;
	struct ps_memo_scope scope;
	struct ps_reg_glance answer;
};

static __thread struct memo_entry memo[MEMO_SLOTS]
	__attribute__((tls_model("initial-exec")));

/* Orders this thread's own accesses against a signal handler's. */
#define BARRIER() __atomic_signal_fence(__ATOMIC_SEQ_CST)

static struct memo_entry *slot(enum ps_memo_kind kind, uint16_t port)
{
	return &memo[((uint32_t)port * 3u + (uint32_t)kind) % MEMO_SLOTS];
}

bool ps_memo_get(const struct ps_memo_scope *s, enum ps_memo_kind kind,
		 uint16_t port, struct ps_reg_glance *out)
{
	struct memo_entry *e = slot(kind, port);
	uint32_t v = e->version;
	bool hit;

	BARRIER();
	if (v & 1u)
		return false;
	hit = e->kind == (uint8_t)kind && e->port == port &&
	      e->scope.serial == s->serial && e->scope.ghash == s->ghash;
	if (hit)
		*out = e->answer;
	BARRIER();
	return hit && e->version == v;
}

void ps_memo_put(const struct ps_memo_scope *s, enum ps_memo_kind kind,
		 uint16_t port, const struct ps_reg_glance *in)
{
	struct memo_entry *e = slot(kind, port);
	uint32_t v = e->version;

	/* Odd: we are a signal handler that interrupted this thread's
	 * own write of the slot; it is left to finish. */
	if (v & 1u)
		return;
	e->version = v + 1;
	BARRIER();
	e->kind = (uint8_t)kind;
	e->port = port;
	e->scope = *s;
	e->answer = *in;
	BARRIER();
	e->version = v + 2;
}
