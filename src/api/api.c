/* SPDX-License-Identifier: MIT */
/*
 * api.c - libportshim-api.so.0, the C API of portshim.h: portshim_pick and
 * portshim_release on top of pick.c.
 *
 * Installed in $(libdir) as libportshim-api.so.0, so that `-lportshim-api` finds
 * it. The preload library has the same base name but lives in
 * $(pkglibdir) as a module that nothing links: the two never meet on a
 * linker's path. Only the portshim_* names are exported (version
 * script); the internal library inside is hidden, so a program using the
 * API under the preload library carries two private copies of it, each
 * with its own mapping of the one registry.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "pick.h"
#include "portshim.h"
#include "registry.h"

#define API_EXPORT __attribute__((visibility("default")))

/*
 * What the first call sets up, under api_once, and never changes
 * afterwards: the configuration, the registry mapping (kept for the
 * life of the process, as the registry requires) and the reserved ports.
 * The registry lock serialises the threads of this process as it does
 * processes, so nothing else needs a lock.
 */
static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static struct ps_config api_cfg;
static struct ps_registry api_reg;
static uint8_t api_reserved[PS_REG_NPORTS / 8];
static int api_err; /* -errno of a failed setup; 0 = ready */

static void api_setup(void)
{
	struct ps_reg_error err = { "" };
	char cfg_err[1024];
	int rc;

	/*
	 * Invalid variables take their defaults, as in the preload library;
	 * the lines explaining them go to the log.
	 */
	cfg_err[0] = '\0';
	ps_config_load(&api_cfg, ps_env_secure, cfg_err, sizeof(cfg_err));
	ps_log_setup(api_cfg.log_level, api_cfg.log_file);
	for (char *line = cfg_err, *end; *line != '\0'; line = end) {
		end = line + strcspn(line, "\n");
		if (*end == '\n')
			*end++ = '\0';
		PS_ERROR("%s", line);
	}
	rc = ps_registry_open(&api_reg, api_cfg.registry, &err);
	if (rc) {
		PS_ERROR("portshim_pick: registry unusable: %s", err.msg);
		api_err = rc;
		return;
	}
	ps_reserved_ports_load(api_reserved);
}

/* Sets up once; returns 0 or the -errno of the failed setup. */
static int api_ready(void)
{
	int rc = pthread_once(&api_once, api_setup);

	return rc ? -rc : api_err;
}

API_EXPORT int portshim_pick(int flags, uint16_t *port)
{
	int saved = errno;
	struct ps_pick_req req;
	int rc;

	if (port == NULL ||
	    (flags & ~(PORTSHIM_PICK_TCP | PORTSHIM_PICK_UDP)) != 0)
		return -EINVAL;
	rc = api_ready();
	if (rc)
		goto out;
	memset(&req, 0, sizeof(req));
	if (flags & PORTSHIM_PICK_TCP)
		req.protos |= PS_PROTO_BIT(PS_TCP);
	if (flags & PORTSHIM_PICK_UDP)
		req.protos |= PS_PROTO_BIT(PS_UDP);
	req.lo = api_cfg.range_lo;
	req.hi = api_cfg.range_hi;
	req.reserved = api_reserved;
	rc = ps_proc_self(&req.holder);
	if (rc)
		goto out;
	rc = ps_pick(&api_reg, &req, port, 1);
	if (rc == 0)
		PS_INFO("pick -> %u holder=%u", (unsigned)*port,
			req.holder.pid);
	else if (rc == -EADDRNOTAVAIL)
		PS_INFO("pick failed: no free port left in PORTSHIM_RANGE"
			" %u-%u",
			(unsigned)req.lo, (unsigned)req.hi);
out:
	errno = saved;
	return rc;
}

API_EXPORT int portshim_release(uint16_t port)
{
	int saved = errno;
	struct ps_ident self;
	int rc;

	rc = api_ready();
	if (rc)
		goto out;
	rc = ps_proc_self(&self);
	if (rc)
		goto out;
	rc = ps_pick_release(&api_reg, port, &self, 1, false, NULL);
	/* A group lease (made by a bind) is not the caller's to end. */
	if (rc == -EINVAL)
		rc = -EPERM;
	if (rc == 0)
		PS_INFO("release %u", (unsigned)port);
out:
	errno = saved;
	return rc;
}
