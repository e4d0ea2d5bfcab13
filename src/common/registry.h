/* SPDX-License-Identifier: MIT */
/*
 * registry.h - the shared lease registry.
 *
 * One file per user on tmpfs, mapped MAP_SHARED by every process that
 * needs it, for that process's whole life (never munmap'd: a holder that
 * unmapped and then died could not be recovered by the kernel). Layout:
 *
 *   [header, 4096 bytes, holds the robust mutex]
 *   [hash heads by (group, vport): PS_REG_HBUCKETS x uint32]
 *   [hash heads by group:          PS_REG_GBUCKETS x uint32]
 *   [leases: 65536 x struct ps_lease, indexed by REAL port]
 *
 * Indexing the leases by real port makes "a real port is never in two
 * leases" true by construction and makes real -> virtual lookups O(1).
 * Lookups by (group, vport) go through a chained hash; chains are derived
 * data and are rebuilt from the leases after an owner death.
 *
 * Crash safety: every change to a lease is a small transaction. The old
 * lease is copied to the header's undo slot, undo_port is published, the
 * lease is changed, and undo_port is cleared. A process that dies inside
 * leaves undo_port set; the next locker (which gets EOWNERDEAD) rolls the
 * lease back, validates every lease, rebuilds the chains and only then
 * calls pthread_mutex_consistent().
 *
 * All fields are fixed-width; tests assert every offset.
 */
#ifndef PS_REGISTRY_H
#define PS_REGISTRY_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/types.h>

#include "config.h"
#include "proc.h"
#include "reglock.h"

#define PS_REG_MAGIC 0x3167657274687370ULL /* "pshtreg1" little-endian */
#define PS_REG_VERSION 1u
#define PS_REG_HEADER_SIZE 4096u
#define PS_REG_HBUCKETS 16384u
#define PS_REG_GBUCKETS 4096u
#define PS_REG_NPORTS 65536u

/* Lease states (the whole word, so that garbage is detectable). */
#define PS_LEASE_FREE 0u
#define PS_LEASE_USED 0x4c534531u /* "LSE1" */

/* Lease kinds. */
#define PS_KIND_GROUP 1u /* (group, vport) -> real, made by a bind */
#define PS_KIND_PICK 2u	 /* a port handed out by pick/API/portserver */

/* Protocol bits: which protocols have bound the real port. */
#define PS_PROTO_BIT(p) (1u << (p))

struct ps_lease {
	uint32_t state; /* PS_LEASE_FREE or PS_LEASE_USED */
	uint16_t vport; /* virtual port; 0 for pick leases */
	uint8_t kind;	/* PS_KIND_* */
	uint8_t protos; /* PS_PROTO_BIT set of protocols bound */
	uint32_t hnext; /* next real port in the (group,vport) chain */
	uint32_t gnext; /* next real port in the group chain */
	uint32_t ghash; /* hash of group, to skip strcmp */
	uint32_t pad0;
	struct ps_ident maker;	/* the process that made or last bound it */
	struct ps_ident holder; /* the process whose life keeps it */
	uint64_t created_ns;	/* CLOCK_REALTIME */
	uint64_t expires_ns;	/* CLOCK_BOOTTIME; 0 = never (see
				 * ps_lease_dead for older files) */
	char group[PS_GROUP_MAX + 1];
};

struct ps_reg_header {
	uint64_t magic; /* written last at creation */
	uint32_t version;
	uint32_t header_size;
	uint64_t file_size;
	uint32_t abi_word;  /* sizeof(long) */
	uint32_t abi_mutex; /* sizeof(pthread_mutex_t) */
	uint64_t pidns;	    /* inode of /proc/self/ns/pid */
	uint32_t uid;
	uint32_t hbuckets;
	uint32_t gbuckets;
	uint32_t nports;
	uint64_t hbuckets_off;
	uint64_t gbuckets_off;
	uint64_t leases_off;
	char boot_id[40]; /* /proc/sys/kernel/random/boot_id */
	uint64_t created_ns;
	uint64_t seq;	    /* bumped by every change; odd while changing */
	uint32_t undo_port; /* real port + 1 of the lease being changed */
	uint32_t next_hint; /* where the next allocation starts looking */
	uint32_t nleases;
	uint32_t recoveries;  /* how many times EOWNERDEAD was repaired */
	struct ps_lease undo; /* the lease as it was before the change */
	uint64_t lock_gen;    /* bumped by every taker of the lock: a
				 * waiter sees progress (reglock.h) */
	uint8_t reserved0[1024 - 296];
	union {
		pthread_mutex_t mutex;
		uint8_t bytes[128];
	} lock; /* at offset 1024 */
};

struct ps_registry {
	struct ps_reg_header *hdr;
	uint32_t *hbuckets;
	uint32_t *gbuckets;
	struct ps_lease *leases;
	size_t size;
	int fd;	   /* for fstat only; reopened if lost */
	dev_t dev; /* the mapped file, to know it again */
	ino_t ino;
	uint32_t lock_timeout_ms;	   /* PORTSHIM_LOCK_TIMEOUT */
	struct ps_lock_holder last_holder; /* of the last -ETIMEDOUT */
	bool created;	 /* this process initialised the file */
	uint32_t serial; /* this mapping's number in this process */
	char path[4096];
};

/* Why an open failed: the one-line reason names the file and the fix. */
struct ps_reg_error {
	char msg[512];
};

/*
 * Opens the registry at path (NULL or "" = "registry" in the per-user
 * state directory), creating it race-free if it does not exist (temp
 * file, posix_fallocate, initialise, magic last, link to the final name).
 * Validates owner, mode, link count, size, magic, version, ABI, boot id
 * and PID namespace before touching the mutex. Returns 0 or -errno with a
 * reason in err. The mapping is never unmapped.
 */
int ps_registry_open(struct ps_registry *reg, const char *path,
		     struct ps_reg_error *err);

/*
 * Validates a header image of len bytes as ps_registry_open would (the
 * pure part: magic, version, sizes, ABI, boot id and PID namespace given
 * as arguments). Returns 0 or -errno with a reason. Used by the opener,
 * `portshim gc --reset` and the fuzz target.
 */
int ps_registry_check_header(const void *image, size_t len, uint64_t file_size,
			     const char *boot_id, uint64_t pidns,
			     struct ps_reg_error *err);

/* Saved state between lock and unlock (signal mask of the thread). */
struct ps_reg_guard {
	sigset_t oldmask;
	struct ps_lock_holder holder; /* who held it, on -ETIMEDOUT */
};

/*
 * Takes the registry lock with all signals blocked in this thread (a
 * signal handler calling bind() must not find us holding the lock).
 * While it waits, the caller's mask is restored every few milliseconds,
 * so the caller stays killable. Repairs the table on EOWNERDEAD before
 * marking the mutex consistent. Returns 0, or -errno: -EIO if the file
 * was shrunk under us, -ESTALE if it was removed, -ETIMEDOUT if nobody
 * took the lock for reg->lock_timeout_ms (g->holder names the holder),
 * -ENOLCK in a process or thread that cannot hold a robust mutex (a
 * vfork or raw clone child), -EUCLEAN if the mutex is garbage. On error
 * the lock is not held and the mask is restored.
 * ps_registry_strerror says any of these in words.
 */
int ps_registry_lock(struct ps_registry *reg, struct ps_reg_guard *g);

/*
 * One line (without the registry's path) saying why ps_registry_lock
 * returned rc: for -ETIMEDOUT, who holds the lock and in what state
 * (from g, or with g NULL from the last time out of this process).
 * Returns buf.
 */
const char *ps_registry_strerror(const struct ps_registry *reg,
				 const struct ps_reg_guard *g, int rc,
				 char *buf, size_t len);

/* Releases the lock and restores the signal mask. */
void ps_registry_unlock(struct ps_registry *reg, struct ps_reg_guard *g);

/*
 * The real port of (group, vport), read WITHOUT the lock, for callers
 * that only look (a connect's destination): a sequence-checked read that
 * retries a few times while writers change the table. Checks the file's
 * size and link count first, as ps_registry_lock does. Returns 0 and
 * *real, -ENOENT if the group has no such lease, -EAGAIN if writers kept
 * the table changing (or a dead writer left it mid-change: the caller
 * then takes the lock, which repairs it), or -EIO/-ESTALE as the lock.
 * Blocks no signal and is safe in a signal handler.
 */
int ps_registry_peek(struct ps_registry *reg, const char *group, uint16_t vport,
		     uint16_t *real);

/* What ps_registry_peek_lease saw of a lease, and when. */
struct ps_reg_glance {
	uint16_t real;	       /* the lease's real port */
	uint8_t protos;	       /* its PS_PROTO_BIT set */
	struct ps_ident maker; /* the process that made or last bound it */
	uint64_t seq;	       /* the table's sequence word at the read */
};

/*
 * ps_registry_peek, with more of the lease: for a repeat bind that may
 * need to write nothing. Same checks, same results; out->seq is also set
 * for -ENOENT (the answer "no lease" held at that sequence word).
 */
int ps_registry_peek_lease(struct ps_registry *reg, const char *group,
			   uint16_t vport, struct ps_reg_glance *out);

/*
 * The virtual port of the group lease of group at real port, read
 * WITHOUT the lock, as ps_registry_peek (same checks). Returns 0 and
 * *vport, -ENOENT if real is not a lease of the group, -EAGAIN if
 * writers kept the table changing, or -EIO/-ESTALE.
 */
int ps_registry_peek_at(struct ps_registry *reg, const char *group,
			uint16_t real, uint16_t *vport);

/* ps_registry_peek_at, with the sequence word of the read in *seq (also
 * for -ENOENT: then the answer "none" held at *seq). */
int ps_registry_peek_vport(struct ps_registry *reg, const char *group,
			   uint16_t real, uint16_t *vport, uint64_t *seq);

/*
 * True if no change has been made to the table since a peek that read
 * sequence word seq: what the peek saw still holds. Lock-free.
 */
bool ps_registry_unchanged(const struct ps_registry *reg, uint64_t seq);

/* Reads the table's sequence word, lock-free and without a fault (one
 * system call). Returns 0 or -EIO (the file shrank). */
int ps_registry_read_seq(const struct ps_registry *reg, uint64_t *seq);

/*
 * The following need the lock held.
 */

/* The lease of (group, vport), or NULL. O(chain length). */
struct ps_lease *ps_registry_find(struct ps_registry *reg, const char *group,
				  uint16_t vport);

/* The lease at real port, or NULL if free. */
struct ps_lease *ps_registry_at(struct ps_registry *reg, uint16_t real);

/* Real port of a lease pointer. */
static inline uint16_t ps_registry_port(const struct ps_registry *reg,
					const struct ps_lease *l)
{
	return (uint16_t)(l - reg->leases);
}

/*
 * Tries to bind a real port; returns 0, or -errno (-EADDRINUSE means
 * "taken by someone else, try another").
 */
typedef int (*ps_try_bind_fn)(void *arg, uint16_t real);

/*
 * Allocates a real port in [lo, hi] for a new lease described by tmpl
 * (kind, vport, group, maker, holder, protos, expires_ns). Skips ports
 * with a lease, ports in ip_local_reserved_ports (reserved may be NULL),
 * ports that another registry claims (claims.h: another user's, say),
 * and ports for which try_bind returns -EADDRINUSE (a foreign process has
 * them). The port leased is claimed for reg; ps_registry_free drops the
 * claim. When the range is full, reclaims dead leases once and tries
 * again. Returns 0 and the port in *real, -EADDRNOTAVAIL when the range is
 * exhausted, or try_bind's other errors.
 */
int ps_registry_alloc(struct ps_registry *reg, const struct ps_lease *tmpl,
		      uint16_t lo, uint16_t hi, const uint8_t *reserved,
		      ps_try_bind_fn try_bind, void *arg, uint16_t *real);

/*
 * Transactionally replaces the lease at its port with *nl (same port;
 * chains are fixed up if group or vport changed). Returns 0.
 */
int ps_registry_update(struct ps_registry *reg, struct ps_lease *l,
		       const struct ps_lease *nl);

/* Transactionally frees the lease. */
void ps_registry_free(struct ps_registry *reg, struct ps_lease *l);

/* Where ps_registry_next is; start from { 0 }. */
struct ps_reg_cursor {
	uint32_t bucket; /* next group chain to start */
	uint32_t port;	 /* next lease on the current chain */
	uint32_t steps;	 /* on the current chain (cycle guard) */
};

/*
 * The next lease in use, in no particular order, or NULL when all have
 * been visited. Walks the group chains, so a walk costs O(leases in use)
 * and touches only their pages, where a loop over the 65536 slots faults
 * in the whole file (tens of milliseconds in a fresh process, under the
 * lock). The lease returned may be freed before the next call.
 */
struct ps_lease *ps_registry_next(struct ps_registry *reg,
				  struct ps_reg_cursor *cur);

/*
 * Calls fn for every lease of group (any kind), in chain order. fn may
 * free the lease it is given (the walk has read its link already), and
 * change nothing else. Returns the number of leases visited.
 */
size_t ps_registry_each_group(struct ps_registry *reg, const char *group,
			      void (*fn)(void *arg, struct ps_lease *l),
			      void *arg);

/*
 * Frees many leases at once: each ps_registry_bulk_free only marks its
 * lease free; ps_registry_bulk_end rebuilds the chains once. Between
 * the two, only ps_registry_next, ps_registry_at and ps_registry_each_group
 * (which reads each link before its callback frees) may be used (the
 * chains are stale). Linear where freeing one by one is quadratic in
 * the length of a chain. Lock held.
 */
struct ps_reg_bulk {
	bool open;
	size_t n;
};

void ps_registry_bulk_free(struct ps_registry *reg, struct ps_reg_bulk *b,
			   struct ps_lease *l);
void ps_registry_bulk_end(struct ps_registry *reg, struct ps_reg_bulk *b);

/* Frees every lease of group; returns how many. */
size_t ps_registry_release_group(struct ps_registry *reg, const char *group);

/*
 * True if a lease is dead: its holder is gone (pid + start time), or it
 * has expired at boot_ns (ps_boot_ns()).
 */
bool ps_lease_dead(const struct ps_lease *l, uint64_t boot_ns);

/* True if the lease has an expiry and it has passed at boot_ns. */
bool ps_lease_expired(const struct ps_lease *l, uint64_t boot_ns);

/*
 * Frees every dead lease (dry_run: only reports). fn (may be NULL) is
 * called for each, before it is freed. Returns how many.
 */
size_t ps_registry_gc(struct ps_registry *reg, bool dry_run,
		      void (*fn)(void *arg, const struct ps_lease *l,
				 uint16_t real),
		      void *arg);

/*
 * Checks every invariant of the table (states valid, chains consistent
 * with leases, nleases right, no undo pending, seq even). Returns 0 or
 * -EUCLEAN with the first violation in err. Used by tests and `doctor`.
 */
int ps_registry_check(struct ps_registry *reg, struct ps_reg_error *err);

/*
 * Links followed by this process to unlink leases from their chains, a
 * measure of the work of freeing (tests compare it with the number of
 * leases freed). Not synchronised: a statistic.
 */
extern unsigned long ps_registry_unlink_steps;

/* Size of the registry file for this layout version. */
size_t ps_registry_file_size(void);

/* Hash of a group name (FNV-1a); never 0. */
uint32_t ps_group_hash(const char *group);

/* CLOCK_REALTIME in nanoseconds. */
uint64_t ps_now_ns(void);

/*
 * CLOCK_BOOTTIME in nanoseconds: the clock of lease expiry. It counts
 * suspend, never jumps with the wall clock, and is one clock for every
 * process of the host (outside time namespaces, which may offset it).
 */
uint64_t ps_boot_ns(void);

/*
 * Loads /proc/sys/net/ipv4/ip_local_reserved_ports into a 65536-bit map
 * (8192 bytes). Returns 0 or -errno (map then all clear).
 */
int ps_reserved_ports_load(uint8_t *map);

#endif
