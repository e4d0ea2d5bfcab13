/* SPDX-License-Identifier: MIT */
/*
 * config.c - every PORTSHIM_* variable, parsed once into struct ps_config.
 *
 * Values come from the environment of whatever program the shim is loaded
 * into, so they are treated as hostile: lengths are bounded, nothing is
 * allocated, and any piece of a value quoted in an error is truncated and
 * stripped of control characters, so that each invalid variable gives
 * exactly one line whatever it contains.
 *
 * An empty value counts as unset, for every variable. Shells, CI templates
 * and wrappers commonly produce "VAR=" for "not configured"
 * (VAR=${X:-}), and `VAR= cmd` is the usual way to neutralise an inherited
 * setting; for each variable the default is also the natural meaning of
 * "nothing given" (no ports: inert; no group: a fresh one; no map file;
 * the default range, registry, log file; keep-env off; no owner). Refusing
 * empty values would turn those common, harmless cases into errors.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "envvars.h"
#include "reglock.h"

/* Characters of a value shown inside quotes in an error message. */
#define QUOTE_SHOWN 48
/* Two quotes, the shown characters, "..." and the NUL. */
#define QUOTE_BUF (QUOTE_SHOWN + 6)

/* What a group name may be, with %d for PS_GROUP_MAX. */
#define GROUP_EXPECTED "1-%d characters of A-Z a-z 0-9 . _ -"

/* The errors collected by one ps_config_load. */
struct errsink {
	char *buf; /* NULL: count only */
	size_t cap;
	size_t len; /* bytes used in buf, without the NUL */
	int count;
	bool start; /* ps_config_load_start: check the ports only */
};

/* A keyword a variable accepts, and the enum value it stands for. */
struct keyword {
	const char *name;
	int value;
};

/*
 * Writes value into buf as 'text', shortened to QUOTE_SHOWN characters
 * (then followed by "...") and with control characters turned into '?'.
 * Returns buf, for use as a printf argument.
 */
static const char *quote(char *buf, const char *value)
{
	size_t i, o = 0;

	buf[o++] = '\'';
	for (i = 0; value[i] != '\0' && i < QUOTE_SHOWN; i++) {
		unsigned char c = (unsigned char)value[i];

		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (value[i] != '\0') {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '\'';
	buf[o] = '\0';
	return buf;
}

/*
 * Appends "VAR: <message>\n" to the sink and counts one error. The line is
 * formatted apart first and any control character left in it becomes '?':
 * the messages already quote values safely, and this makes "one line per
 * invalid variable" hold even for text we did not format ourselves (the
 * port spec parser's message). When the buffer is full the line is cut,
 * but the buffer always stays NUL-terminated.
 */
static void report(struct errsink *es, const char *var, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(struct errsink *es, const char *var, const char *fmt, ...)
{
	char line[PS_LOG_LINE_MAX];
	va_list ap;
	size_t n, i;
	int w;

	es->count++;
	if (!es->buf || es->cap == 0)
		return;

	w = snprintf(line, sizeof(line), "%s: ", var);
	if (w < 0)
		return;
	n = (size_t)w;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	n = strlen(line);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	/* Room for the newline: give up the line's last character if full. */
	if (n == sizeof(line) - 1)
		n--;
	line[n++] = '\n';
	line[n] = '\0';

	if (es->len + 1 >= es->cap)
		return;
	n = strlen(line);
	if (n > es->cap - 1 - es->len)
		n = es->cap - 1 - es->len;
	memcpy(es->buf + es->len, line, n);
	es->len += n;
	es->buf[es->len] = '\0';
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Group names: [A-Za-z0-9._-]. */
static bool is_group_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* Environment variable names: [A-Za-z_][A-Za-z0-9_]*. */
static bool is_env_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !first && c >= '0' && c <= '9';
}

/*
 * Looks value up in a table of n keywords (exact, case-sensitive match:
 * the accepted spellings are exactly the documented ones). Returns the
 * keyword's value, or -1 if none matches.
 */
static int lookup(const struct keyword *kw, size_t n, const char *value)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(kw[i].name, value) == 0)
			return kw[i].value;
	return -1;
}

static void load_ports(struct ps_config *cfg, const char *name,
		       const char *value, struct errsink *es)
{
	char perr[PS_LOG_LINE_MAX / 2];

	if (ps_portspec_parse(es->start ? NULL : &cfg->ports, value, perr,
			      sizeof(perr)) != 0) {
		/* The parser left the spec empty: the shim stays inert. */
		report(es, name,
		       "%s, expected a list like 8080,9000-9010,udp:5353 "
		       "or all",
		       perr);
		return;
	}
	cfg->enabled = true;
}

static void load_group(struct ps_config *cfg, const char *name,
		       const char *value, struct errsink *es)
{
	char q[QUOTE_BUF];
	size_t len = strnlen(value, PS_GROUP_MAX + 1);

	if (len > PS_GROUP_MAX) {
		report(es, name, "%s is too long, expected " GROUP_EXPECTED,
		       quote(q, value), PS_GROUP_MAX);
		return;
	}
	if (!ps_group_valid(value)) {
		report(es, name,
		       "%s has a character not allowed in a group name, "
		       "expected " GROUP_EXPECTED,
		       quote(q, value), PS_GROUP_MAX);
		return;
	}
	memcpy(cfg->group, value, len + 1);
}

/*
 * PORTSHIM_GROUP_FROM: comma-separated variable names, blanks allowed
 * around each. The names are collected apart and copied only when the
 * whole value is valid, so an invalid value leaves the default (none).
 */
static void load_group_from(struct ps_config *cfg, const char *name,
			    const char *value, struct errsink *es)
{
	char names[PS_GROUP_FROM_MAX][PS_ENV_NAME_MAX + 1];
	char q[QUOTE_BUF], qv[QUOTE_BUF];
	const char *p = value, *b, *e, *c;
	unsigned n = 0;
	size_t len;

	for (;;) {
		c = strchr(p, ',');
		e = c ? c : p + strlen(p);
		b = p;
		while (b < e && is_blank(*b))
			b++;
		while (e > b && is_blank(e[-1]))
			e--;
		len = (size_t)(e - b);
		if (len == 0) {
			report(es, name,
			       "empty name in %s, expected comma-separated "
			       "variable names",
			       quote(qv, value));
			return;
		}
		if (n == PS_GROUP_FROM_MAX) {
			report(es, name,
			       "%s names too many variables, "
			       "expected at most %d",
			       quote(qv, value), PS_GROUP_FROM_MAX);
			return;
		}
		if (len > PS_ENV_NAME_MAX) {
			report(es, name,
			       "a name in %s is too long, expected names "
			       "of at most %d characters",
			       quote(qv, value), PS_ENV_NAME_MAX);
			return;
		}
		memcpy(names[n], b, len);
		names[n][len] = '\0';
		for (const char *s = b; s < e; s++) {
			if (!is_env_char(*s, s == b)) {
				report(es, name,
				       "%s in %s is not a variable name, "
				       "expected names like PARALLEL_SEQ "
				       "([A-Za-z_][A-Za-z0-9_]*)",
				       quote(q, names[n]), quote(qv, value));
				return;
			}
		}
		n++;
		if (!c)
			break;
		p = c + 1;
	}
	memcpy(cfg->group_from, names, sizeof(names[0]) * n);
	cfg->n_group_from = n;
}

/* Paths: any non-empty text shorter than PATH_MAX. */
static void load_path(char *dst, const char *name, const char *value,
		      struct errsink *es)
{
	char q[QUOTE_BUF];
	size_t len = strnlen(value, PATH_MAX);

	if (len >= PATH_MAX) {
		report(es, name,
		       "%s is too long, expected a path shorter than %d bytes",
		       quote(q, value), PATH_MAX);
		return;
	}
	memcpy(dst, value, len + 1);
}

static void load_map_file(struct ps_config *cfg, const char *name,
			  const char *value, struct errsink *es)
{
	load_path(cfg->map_file, name, value, es);
}

/* The registry: an absolute path. A relative one would name a different
 * file in every working directory, and processes meant to share one
 * registry would hand out the same ports; refused, the default registry
 * (shared by all) stays. */
static void load_registry(struct ps_config *cfg, const char *name,
			  const char *value, struct errsink *es)
{
	char q[QUOTE_BUF];

	if (value[0] != '/') {
		report(es, name,
		       "%s is a relative path, expected an "
		       "absolute one (starting with /)",
		       quote(q, value));
		return;
	}
	load_path(cfg->registry, name, value, es);
}

static void load_report(struct ps_config *cfg, const char *name,
			const char *value, struct errsink *es)
{
	char q[QUOTE_BUF];

	if (value[0] != '/') {
		report(es, name,
		       "%s is not an absolute path, expected one "
		       "starting with '/'",
		       quote(q, value));
		return;
	}
	load_path(cfg->report_file, name, value, es);
}

static void load_log_file(struct ps_config *cfg, const char *name,
			  const char *value, struct errsink *es)
{
	load_path(cfg->log_file, name, value, es);
}

/*
 * PORTSHIM_RANGE: "LO-HI", strict (no blanks, no signs), 1 <= LO <= HI <=
 * 65535. Any port may be handed out, even below 1024: whether it can be
 * bound is the kernel's business, and a user who asks for one knows why.
 */
static void load_range(struct ps_config *cfg, const char *name,
		       const char *value, struct errsink *es)
{
	char q[QUOTE_BUF], part[8];
	const char *dash = strchr(value, '-');
	unsigned long lo, hi;
	size_t nlo;

	if (!dash)
		goto bad;
	nlo = (size_t)(dash - value);
	if (nlo == 0 || nlo >= sizeof(part))
		goto bad;
	memcpy(part, value, nlo);
	part[nlo] = '\0';
	if (ps_parse_uint(part, 1, 65535, &lo) != 0 ||
	    ps_parse_uint(dash + 1, 1, 65535, &hi) != 0)
		goto bad;
	if (lo > hi) {
		report(es, name,
		       "%s is a reversed range, expected LO-HI with LO <= HI",
		       quote(q, value));
		return;
	}
	cfg->range_lo = (uint16_t)lo;
	cfg->range_hi = (uint16_t)hi;
	return;
bad:
	report(es, name,
	       "%s is not a port range, "
	       "expected LO-HI with 1 <= LO <= HI <= 65535",
	       quote(q, value));
}

/*
 * A keyword variable: returns the value of the keyword that matches, or
 * reports one line listing the accepted spellings and returns -1.
 */
static int load_keyword(const struct keyword *kw, size_t n,
			const char *expected, const char *name,
			const char *value, struct errsink *es)
{
	char q[QUOTE_BUF];
	int v = lookup(kw, n, value);

	if (v < 0)
		report(es, name, "%s is not a valid value, expected %s",
		       quote(q, value), expected);
	return v;
}

#define LOAD_KEYWORD(kw, expected, name, value, es)                          \
	load_keyword((kw), sizeof(kw) / sizeof((kw)[0]), (expected), (name), \
		     (value), (es))

static void load_unmapped(struct ps_config *cfg, const char *name,
			  const char *value, struct errsink *es)
{
	static const struct keyword kw[] = {
		{ "refuse", PS_UNMAPPED_REFUSE },
		{ "pass", PS_UNMAPPED_PASS },
	};
	int v = LOAD_KEYWORD(kw, "refuse or pass", name, value, es);

	if (v >= 0)
		cfg->unmapped = (enum ps_unmapped)v;
}

static void load_on_error(struct ps_config *cfg, const char *name,
			  const char *value, struct errsink *es)
{
	static const struct keyword kw[] = {
		{ "fail", PS_ON_ERROR_FAIL },
		{ "pass", PS_ON_ERROR_PASS },
	};
	int v = LOAD_KEYWORD(kw, "fail or pass", name, value, es);

	if (v >= 0)
		cfg->on_error = (enum ps_on_error)v;
}

/*
 * PORTSHIM_LOG. "none" is accepted too, to silence even error lines;
 * since PS_LOG_NONE is negative, the table stores level + 1.
 */
static void load_log(struct ps_config *cfg, const char *name, const char *value,
		     struct errsink *es)
{
	static const struct keyword kw[] = {
		{ "none", PS_LOG_NONE + 1 },
		{ "error", PS_LOG_ERROR + 1 },
		{ "info", PS_LOG_INFO + 1 },
		{ "debug", PS_LOG_DEBUG + 1 },
	};
	int v = LOAD_KEYWORD(kw, "error, info, debug or none", name, value, es);

	if (v >= 0)
		cfg->log_level = (enum ps_log_level)(v - 1);
}

static void load_bypass(struct ps_config *cfg, const char *name,
			const char *value, struct errsink *es)
{
	static const struct keyword kw[] = {
		{ "warn", PS_BYPASS_WARN },
		{ "fail", PS_BYPASS_FAIL },
		{ "ignore", PS_BYPASS_IGNORE },
		{ "supervise", PS_BYPASS_SUPERVISE },
	};
	int v = LOAD_KEYWORD(kw, "warn, fail, ignore or supervise", name, value,
			     es);

	if (v >= 0)
		cfg->bypass = (enum ps_bypass)v;
}

static void load_keep_env(struct ps_config *cfg, const char *name,
			  const char *value, struct errsink *es)
{
	static const struct keyword kw[] = {
		{ "0", 0 },
		{ "1", 1 },
	};
	int v = LOAD_KEYWORD(kw, "0 or 1", name, value, es);

	if (v >= 0)
		cfg->keep_env = v == 1;
}

static void load_group_owner(struct ps_config *cfg, const char *name,
			     const char *value, struct errsink *es)
{
	char q[QUOTE_BUF];
	struct ps_ident id;

	if (ps_ident_parse(value, &id) != 0) {
		report(es, name,
		       "%s is not a process identity, expected PID:START",
		       quote(q, value));
		return;
	}
	cfg->owner = id;
}

/*
 * The registry reads the value itself when it opens (reglock.h): only
 * its validity is checked here, so that a bad one gets its line.
 */
static void load_lock_timeout(struct ps_config *cfg, const char *name,
			      const char *value, struct errsink *es)
{
	char q[QUOTE_BUF];
	uint32_t ms;

	(void)cfg;
	if (ps_reglock_timeout_parse(value, &ms) != 0)
		report(es, name,
		       "%s is not a number of seconds in 0.001-%u; using %u",
		       quote(q, value), PS_LOCK_TIMEOUT_MAX_S,
		       PS_LOCK_TIMEOUT_DEFAULT_MS / 1000);
}

/*
 * PORTSHIM_KEEPER (set by `portshim run`): the name of the keeper's
 * abstract socket, "portshim-keeper-PID-HEX" (keeper.h).
 */
static void load_keeper(struct ps_config *cfg, const char *name,
			const char *value, struct errsink *es)
{
	static const char prefix[] = "portshim-keeper-";
	char q[QUOTE_BUF];
	size_t n = strlen(value);

	if (strncmp(value, prefix, sizeof(prefix) - 1) != 0 ||
	    n >= sizeof(cfg->keeper) ||
	    strspn(value + sizeof(prefix) - 1, "0123456789abcdef-") !=
		    n - (sizeof(prefix) - 1)) {
		report(es, name,
		       "%s is not a keeper's name, expected "
		       "portshim-keeper-PID-HEX",
		       quote(q, value));
		return;
	}
	memcpy(cfg->keeper, value, n + 1);
}

/* Every variable that the configuration holds (envvars.h). */
#define PS_ENV_LOADER(n, l, s) { n, l, s },
static const struct {
	const char *name;
	void (*load)(struct ps_config *cfg, const char *name, const char *value,
		     struct errsink *es);
	bool start; /* read by ps_config_load_start too */
} variables[] = { PS_ENV_VARIABLES(PS_ENV_LOADER) };
#undef PS_ENV_LOADER

/*
 * Only the variables marked start, into fields set to their defaults
 * one by one: the rest of cfg, the port bitmaps above all, is not
 * touched, so that its pages are never faulted in.
 */
void ps_config_load_start(struct ps_config *cfg, ps_getenv_fn get)
{
	struct errsink es = { .start = true };
	size_t i;

	cfg->enabled = false;
	cfg->registry[0] = '\0';
	cfg->log_level = PS_LOG_ERROR;
	cfg->log_file[0] = '\0';
	cfg->bypass = PS_BYPASS_WARN;
	cfg->keep_env = false;
	for (i = 0; i < sizeof(variables) / sizeof(variables[0]); i++) {
		const char *value;

		if (!variables[i].start)
			continue;
		value = get(variables[i].name);
		if (value && value[0] != '\0')
			variables[i].load(cfg, variables[i].name, value, &es);
	}
}

const char *ps_env_secure(const char *name)
{
	return secure_getenv(name);
}

void ps_config_each_error(const char *errs, ps_config_error_fn fn, void *arg)
{
	const char *p = errs, *nl;

	while (*p != '\0') {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (nl > p)
			fn(arg, p, (int)(nl - p));
		p = *nl != '\0' ? nl + 1 : nl;
	}
}

/*
 * Fills cfg with the defaults, then with each variable get returns
 * non-empty. Each loader either stores a fully valid value or reports one
 * line and leaves the default in place. Returns the number of invalid
 * variables.
 */
int ps_config_load(struct ps_config *cfg, ps_getenv_fn get, char *err,
		   size_t errlen)
{
	struct errsink es = { .buf = err, .cap = errlen };
	size_t i;

	if (err && errlen > 0)
		err[0] = '\0';

	memset(cfg, 0, sizeof(*cfg));
	cfg->range_lo = PS_RANGE_LO_DEFAULT;
	cfg->range_hi = PS_RANGE_HI_DEFAULT;
	cfg->unmapped = PS_UNMAPPED_DEFAULT;
	cfg->on_error = PS_ON_ERROR_FAIL;
	cfg->log_level = PS_LOG_ERROR;
	cfg->bypass = PS_BYPASS_WARN;

	for (i = 0; i < sizeof(variables) / sizeof(variables[0]); i++) {
		const char *value;

		if (variables[i].load == NULL)
			continue;
		value = get(variables[i].name);
		if (value && value[0] != '\0')
			variables[i].load(cfg, variables[i].name, value, &es);
	}

	/*
	 * "all" tags ports the user never thought about (a database client's
	 * 5432, say): refusing those would break programs, so they pass. An
	 * explicit list names ports meant to stay inside the group. An
	 * invalid or absent PORTSHIM_PORTS counts as a list (the shim is
	 * inert then anyway).
	 */
	if (cfg->unmapped == PS_UNMAPPED_DEFAULT)
		cfg->unmapped = cfg->enabled && cfg->ports.all ?
					PS_UNMAPPED_PASS :
					PS_UNMAPPED_REFUSE;
	return es.count;
}

/* True if name is 1..PS_GROUP_MAX characters of [A-Za-z0-9._-]. */
bool ps_group_valid(const char *name)
{
	size_t i;

	if (!name || name[0] == '\0')
		return false;
	for (i = 0; name[i] != '\0'; i++)
		if (i >= PS_GROUP_MAX || !is_group_char(name[i]))
			return false;
	return true;
}

/*
 * Builds base + ".<value>" for each PORTSHIM_GROUP_FROM variable with a
 * non-empty value, sanitised, in a local buffer first so that out may
 * alias base and holds "" rather than a partial name on failure.
 */
int ps_config_group_resolve(const struct ps_config *cfg, ps_getenv_fn get,
			    const char *base, char *out)
{
	char buf[PS_GROUP_MAX + 1];
	size_t len = strnlen(base, PS_GROUP_MAX + 1);
	unsigned i;
	int rc = 0;

	if (len > PS_GROUP_MAX) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	memcpy(buf, base, len + 1);

	for (i = 0; i < cfg->n_group_from && i < PS_GROUP_FROM_MAX; i++) {
		const char *v = get(cfg->group_from[i]);
		size_t j;

		if (!v || v[0] == '\0')
			continue;
		if (len + 1 > PS_GROUP_MAX) {
			rc = -ENAMETOOLONG;
			goto out;
		}
		buf[len++] = '.';
		for (j = 0; v[j] != '\0'; j++) {
			if (len + 1 > PS_GROUP_MAX) {
				rc = -ENAMETOOLONG;
				goto out;
			}
			buf[len++] = is_group_char(v[j]) ? v[j] : '_';
		}
		buf[len] = '\0';
	}
out:
	if (rc == 0)
		memcpy(out, buf, len + 1);
	else
		out[0] = '\0';
	return rc;
}
