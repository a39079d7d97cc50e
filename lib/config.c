/* config.c - parse kleepd.conf and merchants.d/NAME.conf, reporting each mistake as FILE:LINE. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "fit.h"
#include "log.h"
#include "tz.h"

#ifndef KLEEP_DATADIR
#define KLEEP_DATADIR "/usr/local/share/kleep"
#endif

/* Hard bounds, so that a hostile or mistaken file cannot make the parse slow or huge. */
#define CONFIG_FILE_MAX_BYTES (1024 * 1024)
#define CONFIG_ERRORS_PER_FILE_MAX 50
#define CONFIG_KEYS_PER_FILE_MAX 1000
#define CONFIG_MERCHANTS_MAX 100000
#define CONFIG_DURATION_MAX_SEC (3650ULL * 86400) /* ten years */
#define USEC_PER_SEC 1000000ULL

static const char *const config_languages[CONFIG_LANG_MAX] = {
	"fr", "en", "de", "it", "ja", "ko", "pt", "br", "es", "pl", "sv", "da", "nl", "fi",
};
#define LANGUAGES_TEXT "fr, en, de, it, ja, ko, pt, br, es, pl, sv, da, nl, fi"
#define DURATION_TEXT "a number of seconds, or a number with unit s, m, h or d (e.g. 15m)"

/* Per-stream defaults: orders and returns move fast, reference data hardly at all. */
static const uint64_t default_poll_sec[STREAM_COUNT] = {
	[STREAM_PRODUCTS] = 3600,
	[STREAM_SIZES] = 6 * 3600,
	[STREAM_DEPARTMENTS] = 6 * 3600,
	[STREAM_ATTRIBUTES] = 6 * 3600,
	[STREAM_ORDERS] = 15 * 60,
	[STREAM_RETURNS] = 15 * 60,
	[STREAM_RETURN_REASONS] = 6 * 3600,
	[STREAM_SFTP] = 3600,
};

enum section {
	SEC_NONE,    /* before the first header */
	SEC_UNKNOWN, /* after a bad or unknown header: its keys are skipped quietly */
	SEC_DAEMON, SEC_DEFAULTS, SEC_MERCHANT, SEC_WSHOP, SEC_SFTP, SEC_FIT, SEC_CONTROL,
	SEC_COUNT
};

static const char *const section_names[SEC_COUNT] = {
	[SEC_DAEMON] = "daemon", [SEC_DEFAULTS] = "defaults", [SEC_MERCHANT] = "merchant",
	[SEC_WSHOP] = "wshop", [SEC_SFTP] = "sftp", [SEC_FIT] = "fit", [SEC_CONTROL] = "control",
};

/* State shared by every file of one config_load(). */
struct loader {
	struct config *c;
	FILE *errs;
	int n_errors;        /* over all files; any makes the load fail */
	bool oom;
	char *cwd;           /* to make relative paths absolute; NULL if unknown */
	const char *cred_dir;/* $CREDENTIALS_DIRECTORY, or NULL */
	int *id_lines;       /* line of each merchant's id, parallel to c->merchants */
	size_t cap_merchants;
};

struct seen_key {
	enum section sec;
	char *key;
	int line;
};

/* One file being parsed. */
struct pfile {
	struct loader *ld;
	const char *file;    /* the path as the user will recognise it */
	FILE *in;
	bool is_main;
	int line;            /* physical line last handed to inih */
	int n_errors;
	enum section sec;
	int sec_line[SEC_COUNT]; /* header line of each section seen, 0 when absent */
	struct seen_key *seen;
	size_t n_seen;
	bool seen_full;
	/* merchant files only */
	struct merchant_conf *m;
	int id_line;
	bool poll_set[STREAM_API_COUNT];
	bool sftp_poll_set;
};

__attribute__((format(printf, 3, 4)))
static void perr(struct pfile *pf, int line, const char *fmt, ...)
{
	va_list ap;

	pf->ld->n_errors++;
	if (pf->n_errors++ > CONFIG_ERRORS_PER_FILE_MAX)
		return;
	if (pf->n_errors > CONFIG_ERRORS_PER_FILE_MAX) {
		fprintf(pf->ld->errs, "%s:%d: too many errors, the rest of this file is not checked\n",
			pf->file, line);
		return;
	}
	fprintf(pf->ld->errs, "%s:%d: ", pf->file, line);
	va_start(ap, fmt);
	vfprintf(pf->ld->errs, fmt, ap);
	va_end(ap);
	fputc('\n', pf->ld->errs);
}

static char *xstrdup(struct loader *ld, const char *s)
{
	char *d = strdup(s);
	if (!d)
		ld->oom = true;
	return d;
}

/* Replace *dst with a copy of v; the old value stays on allocation failure. */
static void set_str(struct loader *ld, char **dst, const char *v)
{
	char *d = xstrdup(ld, v);
	if (d) {
		free(*dst);
		*dst = d;
	}
}

/* dir joined with name; name alone when absolute or dir is ".".  Caller frees. */
static char *path_join(struct loader *ld, const char *dir, const char *name)
{
	char *p;
	size_t n = strlen(dir);

	if (name[0] == '/' || strcmp(dir, ".") == 0 || n == 0)
		return xstrdup(ld, name);
	if (asprintf(&p, "%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", name) < 0) {
		ld->oom = true;
		return NULL;
	}
	return p;
}

/* The folder part of path: "." when it has none.  Caller frees. */
static char *path_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* shown made absolute against the current folder, so a later chdir changes nothing. */
static char *path_abs(struct loader *ld, const char *shown)
{
	if (shown[0] == '/' || !ld->cwd)
		return xstrdup(ld, shown);
	return path_join(ld, ld->cwd, shown);
}

/* ---- value parsers shared with the tests ---- */

int config_parse_duration(const char *s, uint64_t *usec)
{
	uint64_t n = 0, mult;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		if (n > CONFIG_DURATION_MAX_SEC)
			return -EINVAL;
	}
	switch (*s) {
	case '\0': mult = 1; break;
	case 's': mult = 1; s++; break;
	case 'm': mult = 60; s++; break;
	case 'h': mult = 3600; s++; break;
	case 'd': mult = 86400; s++; break;
	default: return -EINVAL;
	}
	if (*s != '\0' || n * mult > CONFIG_DURATION_MAX_SEC)
		return -EINVAL;
	*usec = n * mult * USEC_PER_SEC;
	return 0;
}

bool config_merchant_id_valid(const char *id)
{
	size_t n = 0;

	if (!id || !(islower((unsigned char)id[0]) || isdigit((unsigned char)id[0])))
		return false;
	for (; id[n]; n++) {
		unsigned char ch = (unsigned char)id[n];
		/* islower/isdigit are locale-bound; the id grammar is plain ASCII */
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			(n > 0 && (ch == '_' || ch == '-'));
		if (!ok || n >= CONFIG_MERCHANT_ID_MAX)
			return false;
	}
	return true;
}

bool config_language_valid(const char *lang)
{
	if (!lang)
		return false;
	for (int i = 0; i < CONFIG_LANG_MAX; i++)
		if (strcmp(config_languages[i], lang) == 0)
			return true;
	return false;
}

/* An integer in [lo, hi], nothing else on the line. */
static bool parse_int(const char *s, long lo, long hi, int *out)
{
	char *end;
	long v;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = (int)v;
	return true;
}

/* A plain decimal ("2", "0.5"): no sign, exponent, hex, inf or nan, which strtod would take. */
static bool parse_decimal(const char *s, double *out)
{
	int dots = 0, digits = 0;
	char *end;

	for (const char *p = s; *p; p++) {
		if (*p == '.')
			dots++;
		else if (isdigit((unsigned char)*p))
			digits++;
		else
			return false;
	}
	if (dots > 1 || digits == 0)
		return false;
	*out = strtod(s, &end);
	return *end == '\0' && isfinite(*out);
}

/*
 * A merchant's zone: its table is loaded now, before any worker runs, and is
 * trusted only when the zone file exists: a typo would otherwise silently mean
 * UTC in every date conversion.
 */
static void zone_key(struct pfile *pf, int line, const char *tz)
{
	char err[256];
	int r = tz_get(&pf->ld->c->zones, tz, &pf->m->tz, err, sizeof(err));
	if (r == -ENOENT)
		perr(pf, line, "timezone: '%s' is not a known IANA time zone (e.g. Europe/Paris)", tz);
	else if (r == -ENOMEM)
		pf->ld->oom = true;
	else if (r < 0)
		perr(pf, line, "timezone: '%s' cannot be read: %s", tz, err);
	else
		set_str(pf->ld, &pf->m->timezone, tz);
}

/* ---- reading lines for inih ---- */

/* inih's own scan for a delimiter that stops at an inline comment (" ;"). */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
	bool was_space = false;

	while (*s && !strchr(chars, *s) && !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return s;
}

static void section_begin(struct pfile *pf, const char *name);

/*
 * The reader inih calls for each line.  It exists because inih alone cannot
 * tell the handler which line it is on, silently cuts long lines, stops a
 * string at a NUL byte, reports only its first syntax error, and never calls
 * the handler for a section header.  So here every physical line is read whole
 * (one call per line, keeping our count equal to inih's), a bad line is
 * reported and handed on blank, leading blanks are dropped (which also turns
 * off inih's indented continuation lines), and section headers are noted.
 */
static char *config_reader(char *str, int num, void *user)
{
	struct pfile *pf = user;
	size_t limit = num > 1 ? (size_t)num - 1 : 0, len = 0, stored = 0;
	bool any = false, nul = false, ctrl = false;
	int ch, last = 0;
	char *s;

	while ((ch = getc(pf->in)) != EOF) {
		any = true;
		if (ch == '\n')
			break;
		if (ch == '\0')
			nul = true;
		if (len < limit)
			str[stored++] = (char)ch;
		len++;
		last = ch;
	}
	if (!any) {
		if (ferror(pf->in))
			perr(pf, pf->line, "read error: %s", strerror(errno));
		return NULL;
	}
	pf->line++;
	if (last == '\r') /* CRLF files read like LF files */
		len--, stored = stored > len ? len : stored;
	str[stored] = '\0';
	for (size_t i = 0; i < stored; i++) {
		unsigned char c = (unsigned char)str[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			ctrl = true;
	}
	if (len > limit) {
		perr(pf, pf->line, "line too long (more than %zu characters)", limit);
		goto blank;
	}
	if (nul) {
		perr(pf, pf->line, "NUL byte in line");
		goto blank;
	}
	if (ctrl) {
		perr(pf, pf->line, "control character in line");
		goto blank;
	}
	if (pf->line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
		memmove(str, str + 3, strlen(str + 3) + 1);
	s = str;
	while (isspace((unsigned char)*s))
		s++;
	memmove(str, s, strlen(s) + 1);

	if (str[0] == '\0' || str[0] == ';' || str[0] == '#')
		return str;
	if (str[0] == '[') {
		const char *end = find_chars_or_comment(str + 1, "]");
		char name[64];
		const char *a = str + 1, *rest;
		size_t n;

		if (*end != ']') {
			perr(pf, pf->line, "expected ']' to close the section name");
			pf->sec = SEC_UNKNOWN; /* its keys would only add confusing errors */
			goto blank;
		}
		while (a < end && isspace((unsigned char)*a))
			a++;
		n = (size_t)(end - a);
		while (n > 0 && isspace((unsigned char)a[n - 1]))
			n--;
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, a, n);
		name[n] = '\0';
		for (rest = end + 1; isspace((unsigned char)*rest); rest++)
			;
		if (*rest && *rest != ';' && *rest != '#')
			perr(pf, pf->line, "unexpected text after [%s]", name);
		section_begin(pf, name);
		return str;
	}
	{
		const char *eq = find_chars_or_comment(str, "=:");
		if (*eq != '=' && *eq != ':') {
			perr(pf, pf->line, "expected 'key = value', '[section]' or a comment");
			goto blank;
		}
		if (eq == str) {
			perr(pf, pf->line, "missing key name before '%c'", *eq);
			goto blank;
		}
	}
	return str;
blank:
	str[0] = '\0';
	return str;
}

static void section_begin(struct pfile *pf, const char *name)
{
	enum section sec = SEC_UNKNOWN;

	for (int i = SEC_DAEMON; i < SEC_COUNT; i++)
		if (strcmp(section_names[i], name) == 0)
			sec = (enum section)i;
	if (pf->is_main && (sec == SEC_MERCHANT || sec == SEC_WSHOP || sec == SEC_SFTP ||
			    sec == SEC_FIT)) {
		perr(pf, pf->line, "unknown section [%s] in the main file "
			"(merchant settings go in merchants.d/NAME.conf)", name);
		sec = SEC_UNKNOWN;
	} else if (!pf->is_main && (sec == SEC_DAEMON || sec == SEC_DEFAULTS || sec == SEC_CONTROL)) {
		perr(pf, pf->line, "unknown section [%s] in a merchant file "
			"(it belongs in the main file)", name);
		sec = SEC_UNKNOWN;
	} else if (sec == SEC_UNKNOWN) {
		perr(pf, pf->line, "unknown section [%s] (expected %s)", name,
			pf->is_main ? "[daemon], [defaults] or [control]" : "[merchant], [wshop], [sftp] or [fit]");
	} else if (pf->sec_line[sec]) {
		perr(pf, pf->line, "section [%s] appears twice (first at line %d)",
			name, pf->sec_line[sec]);
	} else {
		pf->sec_line[sec] = pf->line;
	}
	pf->sec = sec;
}

/* ---- keys ---- */

/* False, after saying so, when key already appeared in this section of this file. */
static bool first_time(struct pfile *pf, const char *key)
{
	struct seen_key *grown;

	for (size_t i = 0; i < pf->n_seen; i++)
		if (pf->seen[i].sec == pf->sec && strcmp(pf->seen[i].key, key) == 0) {
			perr(pf, pf->line, "duplicate key '%s' in [%s] (first at line %d)",
				key, section_names[pf->sec], pf->seen[i].line);
			return false;
		}
	if (pf->n_seen >= CONFIG_KEYS_PER_FILE_MAX) {
		if (!pf->seen_full)
			perr(pf, pf->line, "too many keys in one file (more than %d)",
				CONFIG_KEYS_PER_FILE_MAX);
		pf->seen_full = true;
		return false;
	}
	grown = realloc(pf->seen, (pf->n_seen + 1) * sizeof(*pf->seen));
	if (!grown) {
		pf->ld->oom = true;
		return false;
	}
	pf->seen = grown;
	pf->seen[pf->n_seen].sec = pf->sec;
	pf->seen[pf->n_seen].line = pf->line;
	pf->seen[pf->n_seen].key = xstrdup(pf->ld, key);
	if (!pf->seen[pf->n_seen].key)
		return false;
	pf->n_seen++;
	return true;
}

static void unknown_key(struct pfile *pf, const char *key)
{
	/* a secret never sits in the config itself: point to where it goes instead */
	const char *hint = strcmp(key, "password") == 0 ?
		" (put it in a file named by password_file)" : "";
	perr(pf, pf->line, "unknown key '%s' in [%s]%s", key, section_names[pf->sec], hint);
}

static void set_duration(struct pfile *pf, const char *key, const char *v, bool positive,
			 uint64_t *dst)
{
	uint64_t usec;

	if (config_parse_duration(v, &usec) < 0)
		perr(pf, pf->line, "%s: expected %s, got '%s'", key, DURATION_TEXT, v);
	else if (positive && usec == 0)
		perr(pf, pf->line, "%s: must be more than 0", key);
	else
		*dst = usec;
}

/*
 * A path relative to the main file's folder, stored absolute.  When what is
 * set, the path names a file that must exist now (what names it in errors);
 * folders are made by the daemon or systemd and need not exist yet.
 */
static void set_path(struct pfile *pf, const char *what, const char *v, char **dst)
{
	char *shown = path_join(pf->ld, pf->ld->c->dir, v), *abs;
	struct stat st;

	if (!shown)
		return;
	abs = path_abs(pf->ld, shown);
	if (abs && what) {
		if (stat(abs, &st) < 0)
			perr(pf, pf->line, "%s %s: %s", what, shown, strerror(errno));
		else if (!S_ISREG(st.st_mode))
			perr(pf, pf->line, "%s %s is not a regular file", what, shown);
	}
	if (abs) {
		free(*dst);
		*dst = abs;
	}
	free(shown);
}

/*
 * A password or private key file.  Under systemd LoadCredential= puts it in
 * $CREDENTIALS_DIRECTORY; run by hand it sits beside the main file.  A secret
 * others can read is refused here rather than at first use, so that
 * --check-config catches it at onboarding.  The file is never opened.
 */
static void set_secret(struct pfile *pf, const char *what, const char *v, char **dst)
{
	const char *base = pf->ld->cred_dir ? pf->ld->cred_dir : pf->ld->c->dir;
	char *shown = path_join(pf->ld, base, v), *abs = NULL;
	struct stat st;

	if (!shown)
		return;
	abs = path_abs(pf->ld, shown);
	if (!abs)
		goto out;
	if (stat(abs, &st) < 0)
		perr(pf, pf->line, "%s %s: %s", what, shown, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		perr(pf, pf->line, "%s %s is not a regular file", what, shown);
	else if (st.st_mode & 0007)
		perr(pf, pf->line, "%s %s is readable by others (chmod 600 it)", what, shown);
	free(*dst);
	*dst = abs;
	abs = NULL;
out:
	free(abs);
	free(shown);
}

/* Free text for names and fields: no blank inside, since none of them can hold one. */
static bool set_word(struct pfile *pf, const char *key, const char *v, char **dst)
{
	for (const char *p = v; *p; p++)
		if (isspace((unsigned char)*p)) {
			perr(pf, pf->line, "%s: '%s' must not contain spaces", key, v);
			return false;
		}
	set_str(pf->ld, dst, v);
	return true;
}

static void daemon_key(struct pfile *pf, const char *key, const char *v)
{
	struct daemon_conf *d = &pf->ld->c->daemon;
	int level;

	if (strcmp(key, "state_dir") == 0)
		set_path(pf, NULL, v, &d->state_dir);
	else if (strcmp(key, "runtime_dir") == 0)
		set_path(pf, NULL, v, &d->runtime_dir);
	else if (strcmp(key, "profile_dir") == 0)
		set_path(pf, NULL, v, &d->profile_dir);
	else if (strcmp(key, "core_dumps") == 0) {
		if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0)
			d->core_dumps = strcmp(v, "yes") == 0;
		else
			perr(pf, pf->line, "core_dumps: expected yes or no, got '%s'", v);
	} else if (strcmp(key, "workers") == 0) {
		if (!parse_int(v, 1, 64, &d->workers))
			perr(pf, pf->line, "workers: expected an integer from 1 to 64, got '%s'", v);
	} else if (strcmp(key, "log_level") == 0) {
		level = log_level_parse(v);
		if (level < 0)
			perr(pf, pf->line, "log_level: expected err, warning, notice, info or debug, "
				"got '%s'", v);
		else
			d->log_level = level;
	} else
		unknown_key(pf, key);
}

/* [control]: who may change things through the control socket. */
static void control_key(struct pfile *pf, const char *key, const char *v)
{
	if (strcmp(key, "admin_group") == 0)
		set_word(pf, key, v, &pf->ld->c->daemon.admin_group);
	else
		unknown_key(pf, key);
}

static void defaults_key(struct pfile *pf, const char *key, const char *v)
{
	struct daemon_conf *d = &pf->ld->c->daemon;
	int s;

	if (strncmp(key, "poll_", 5) == 0 && (s = stream_from_name(key + 5)) >= 0)
		set_duration(pf, key, v, true, &d->poll_usec[s]);
	else if (strcmp(key, "lookback") == 0)
		set_duration(pf, key, v, false, &d->lookback_usec);
	else if (strcmp(key, "full_every") == 0)
		set_duration(pf, key, v, false, &d->full_every_usec);
	else if (strcmp(key, "keep_runs") == 0) {
		if (!parse_int(v, 1, 100000000, &d->keep_runs))
			perr(pf, pf->line, "keep_runs: expected an integer from 1 to 100000000, got '%s'", v);
	} else
		unknown_key(pf, key);
}

static void languages_key(struct pfile *pf, const char *v)
{
	struct merchant_conf *m = pf->m;
	char langs[CONFIG_LANG_MAX][3] = { { 0 } };
	const char *p = v;
	int n = 0;
	bool bad = false;

	for (;;) {
		const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
		char lang[8];
		size_t len;

		while (p < end && isspace((unsigned char)*p))
			p++;
		len = (size_t)(end - p);
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		if (len == 0) {
			perr(pf, pf->line, "languages: empty entry in '%s'", v);
			bad = true;
		} else if (len >= sizeof(lang)) {
			perr(pf, pf->line, "language '%.*s' is not supported (expected one of %s)",
				(int)len, p, LANGUAGES_TEXT);
			bad = true;
		} else {
			memcpy(lang, p, len);
			lang[len] = '\0';
			bool dup = false;
			for (int i = 0; i < n; i++)
				dup |= strcmp(langs[i], lang) == 0;
			if (!config_language_valid(lang)) {
				perr(pf, pf->line, "language '%s' is not supported (expected one of %s)",
					lang, LANGUAGES_TEXT);
				bad = true;
			} else if (dup) {
				perr(pf, pf->line, "language '%s' is listed twice", lang);
				bad = true;
			} else {
				/* valid and distinct, so at most CONFIG_LANG_MAX of them */
				memcpy(langs[n++], lang, 3);
			}
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	if (!bad) {
		memcpy(m->languages, langs, sizeof(langs));
		m->n_languages = n;
	}
}

static void merchant_key(struct pfile *pf, const char *key, const char *v)
{
	struct loader *ld = pf->ld;
	struct merchant_conf *m = pf->m;

	if (strcmp(key, "id") == 0) {
		if (!config_merchant_id_valid(v)) {
			perr(pf, pf->line, "id: '%s' is not a valid merchant id "
				"(expected [a-z0-9][a-z0-9_-]{0,63})", v);
			return;
		}
		for (size_t i = 0; i < ld->c->n_merchants; i++)
			if (strcmp(ld->c->merchants[i].id, v) == 0) {
				perr(pf, pf->line, "duplicate merchant id '%s' (first defined in %s:%d)",
					v, ld->c->merchants[i].file, ld->id_lines[i]);
				return;
			}
		snprintf(m->id, sizeof(m->id), "%s", v);
		pf->id_line = pf->line;
	} else if (strcmp(key, "environment") == 0) {
		if (strcmp(v, "production") == 0)
			m->environment = ENV_PRODUCTION;
		else if (strcmp(v, "preprod") == 0)
			m->environment = ENV_PREPROD;
		else
			perr(pf, pf->line, "environment: expected production or preprod, got '%s'", v);
	} else if (strcmp(key, "languages") == 0) {
		languages_key(pf, v);
	} else if (strcmp(key, "timezone") == 0) {
		zone_key(pf, pf->line, v);
	} else if (strcmp(key, "product_id_field") == 0) {
		set_word(pf, key, v, &m->product_id_field);
	} else if (strcmp(key, "parent_reference_field") == 0) {
		set_word(pf, key, v, &m->parent_reference_field);
	} else
		unknown_key(pf, key);
}

/* "profile.a.b_c" names a key path in the profile JSON: dot-separated words. */
static bool profile_path_valid(const char *p)
{
	bool word = false;

	for (; *p; p++) {
		if (*p == '.') {
			if (!word)
				return false;
			word = false;
		} else if (isalnum((unsigned char)*p) || *p == '_' || *p == '-') {
			word = true;
		} else {
			return false;
		}
	}
	return word;
}

static void add_override(struct pfile *pf, const char *key, const char *v)
{
	struct wshop_conf *w = &pf->m->wshop;
	struct profile_override *grown, *o;

	if (!profile_path_valid(key)) {
		perr(pf, pf->line, "profile.%s: expected a dotted path of words, "
			"e.g. profile.auth.path", key);
		return;
	}
	grown = realloc(w->overrides, (w->n_overrides + 1) * sizeof(*w->overrides));
	if (!grown) {
		pf->ld->oom = true;
		return;
	}
	w->overrides = grown;
	o = &w->overrides[w->n_overrides];
	o->key = xstrdup(pf->ld, key);
	o->value = xstrdup(pf->ld, v);
	o->file = xstrdup(pf->ld, pf->file);
	o->line = pf->line;
	w->n_overrides++;
}

/* Whether a URL carries user-info ("user:pw@"), which must never be printed. */
static bool url_has_userinfo(const char *v)
{
	const char *a = strstr(v, "//");
	a = a ? a + 2 : v;
	size_t n = strcspn(a, "/?#");
	return memchr(a, '@', n) != NULL;
}

static void wshop_key(struct pfile *pf, const char *key, const char *v)
{
	struct wshop_conf *w = &pf->m->wshop;
	int s;

	if (strcmp(key, "api_url") == 0) {
		bool scheme = strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0;
		const char *host = scheme ? strstr(v, "//") + 2 : v;
		if (url_has_userinfo(v))
			perr(pf, pf->line, "api_url: the URL holds a user name or password; "
			     "credentials belong in username and password_file");
		else if (!scheme || !*host || *host == '/')
			perr(pf, pf->line, "api_url: expected an http:// or https:// URL, got '%s'", v);
		else
			set_word(pf, key, v, &w->api_url);
	} else if (strcmp(key, "username") == 0) {
		set_word(pf, key, v, &w->username);
	} else if (strcmp(key, "password_file") == 0) {
		set_secret(pf, "password file", v, &w->password_file);
	} else if (strcmp(key, "profile") == 0) {
		set_word(pf, key, v, &w->profile);
	} else if (strcmp(key, "rate_limit") == 0) {
		double r;
		if (!parse_decimal(v, &r) || r <= 0)
			perr(pf, pf->line, "rate_limit: expected requests per second, a decimal "
				"more than 0 (e.g. 2 or 0.5), got '%s'", v);
		else
			w->rate_limit = r;
	} else if (strncmp(key, "poll_", 5) == 0 && (s = stream_from_name(key + 5)) >= 0 &&
		   s < STREAM_API_COUNT) {
		set_duration(pf, key, v, true, &w->poll_usec[s]);
		pf->poll_set[s] = true;
	} else if (strncmp(key, "profile.", 8) == 0) {
		add_override(pf, key + 8, v);
	} else
		unknown_key(pf, key);
}

static void sftp_key(struct pfile *pf, const char *key, const char *v)
{
	struct sftp_conf *s = &pf->m->sftp;

	if (strcmp(key, "host") == 0) {
		set_word(pf, key, v, &s->host);
	} else if (strcmp(key, "port") == 0) {
		if (!parse_int(v, 1, 65535, &s->port))
			perr(pf, pf->line, "port: expected an integer from 1 to 65535, got '%s'", v);
	} else if (strcmp(key, "user") == 0) {
		set_word(pf, key, v, &s->user);
	} else if (strcmp(key, "key_file") == 0) {
		set_secret(pf, "key file", v, &s->key_file);
	} else if (strcmp(key, "known_hosts") == 0) {
		set_path(pf, "known_hosts file", v, &s->known_hosts);
	} else if (strcmp(key, "root") == 0) {
		set_str(pf->ld, &s->root, v);
	} else if (strcmp(key, "poll") == 0) {
		set_duration(pf, key, v, true, &s->poll_usec);
		pf->sftp_poll_set = true;
	} else if (strcmp(key, "settle") == 0) {
		set_duration(pf, key, v, false, &s->settle_usec);
	} else if (strcmp(key, "max_reject_ratio") == 0) {
		double r;
		if (!parse_decimal(v, &r) || r > 1)
			perr(pf, pf->line, "max_reject_ratio: expected a decimal from 0 to 1 "
				"(e.g. 0.05), got '%s'", v);
		else
			s->max_reject_ratio = r;
	} else
		unknown_key(pf, key);
}

/*
 * [fit] too_small = R07, 2: return reason codes or ids the merchant puts in a
 * fit class, over the default classification (fit.c).  An item may be in one
 * list only.
 */
static void fit_key(struct pfile *pf, const char *key, const char *v)
{
	enum fit_class f = fit_class_from_name(key);
	char tok[FIT_TEXT_MAX];

	if (f == FIT_NONE) {
		perr(pf, pf->line, "unknown key '%s' in [fit] (expected too_small, too_large, "
			"other_fit or not_fit)", key);
		return;
	}
	for (const char *p = v; (p = fit_list_next(p, tok, sizeof(tok)));) {
		if (!*tok) {
			perr(pf, pf->line, "%s: an empty item in '%s' (expected reason codes or ids "
				"separated by commas)", key, v);
			return;
		}
		for (int g = 0; g < FIT_CLASS_COUNT; g++)
			if (fit_list_has(pf->m->fit[g], tok)) {
				perr(pf, pf->line, "%s: '%s' is already listed in %s", key, tok,
					fit_class_name(g));
				return;
			}
	}
	set_str(pf->ld, &pf->m->fit[f], v);
}

/* inih's handler: section and name as inih saw them; we trust our own section. */
static int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct pfile *pf = user;

	(void)section;
	if (pf->sec == SEC_NONE) {
		perr(pf, pf->line, "key '%s' is outside any section", name);
		return 1;
	}
	if (pf->sec == SEC_UNKNOWN || !first_time(pf, name))
		return 1; /* an unknown section was reported once, at its header */
	if (!*value) {
		perr(pf, pf->line, "%s: no value", name);
		return 1;
	}
	switch (pf->sec) {
	case SEC_DAEMON: daemon_key(pf, name, value); break;
	case SEC_DEFAULTS: defaults_key(pf, name, value); break;
	case SEC_CONTROL: control_key(pf, name, value); break;
	case SEC_MERCHANT: merchant_key(pf, name, value); break;
	case SEC_WSHOP: wshop_key(pf, name, value); break;
	case SEC_SFTP: sftp_key(pf, name, value); break;
	case SEC_FIT: fit_key(pf, name, value); break;
	default: break;
	}
	/* always go on: every error has been reported, and inih would report only its first */
	return 1;
}

/* ---- files ---- */

static void merchant_defaults(struct loader *ld, struct merchant_conf *m)
{
	memset(m, 0, sizeof(*m));
	m->environment = ENV_PRODUCTION;
	memcpy(m->languages[0], "fr", 3);
	m->n_languages = 1;
	m->timezone = xstrdup(ld, "Europe/Paris");
	m->product_id_field = xstrdup(ld, "id");
	m->parent_reference_field = xstrdup(ld, "parent_reference");
	m->wshop.profile = xstrdup(ld, "default");
	m->wshop.rate_limit = 2;
	m->sftp.port = 22;
	m->sftp.root = xstrdup(ld, ".");
	m->sftp.settle_usec = 5 * 60 * USEC_PER_SEC;
	m->sftp.max_reject_ratio = 0.05;
}

static void merchant_free(struct merchant_conf *m)
{
	free(m->file);
	free(m->timezone);
	free(m->product_id_field);
	free(m->parent_reference_field);
	free(m->wshop.api_url);
	free(m->wshop.username);
	free(m->wshop.password_file);
	free(m->wshop.profile);
	for (size_t i = 0; i < m->wshop.n_overrides; i++) {
		free(m->wshop.overrides[i].key);
		free(m->wshop.overrides[i].value);
		free(m->wshop.overrides[i].file);
	}
	free(m->wshop.overrides);
	free(m->sftp.host);
	free(m->sftp.user);
	free(m->sftp.key_file);
	free(m->sftp.known_hosts);
	free(m->sftp.root);
	for (int f = 0; f < CONFIG_FIT_CLASSES; f++)
		free(m->fit[f]);
}

/* Whether key appeared in sec of this file, valid or not (a bad value was reported already). */
static bool key_seen(const struct pfile *pf, enum section sec, const char *key)
{
	for (size_t i = 0; i < pf->n_seen; i++)
		if (pf->seen[i].sec == sec && strcmp(pf->seen[i].key, key) == 0)
			return true;
	return false;
}

static void require(struct pfile *pf, enum section sec, const char *key)
{
	if (!key_seen(pf, sec, key))
		perr(pf, pf->sec_line[sec], "required key '%s' missing in [%s]",
			key, section_names[sec]);
}

/* After a merchant file: required keys, and defaults from [defaults]. */
static void merchant_finish(struct pfile *pf)
{
	struct merchant_conf *m = pf->m;
	const struct daemon_conf *d = &pf->ld->c->daemon;

	m->has_wshop = pf->sec_line[SEC_WSHOP] != 0;
	m->has_sftp = pf->sec_line[SEC_SFTP] != 0;
	if (!pf->sec_line[SEC_MERCHANT])
		perr(pf, 0, "no [merchant] section (every merchant file needs one, with the id)");
	else
		require(pf, SEC_MERCHANT, "id");
	if (m->has_wshop) {
		require(pf, SEC_WSHOP, "api_url");
		require(pf, SEC_WSHOP, "username");
		require(pf, SEC_WSHOP, "password_file");
	}
	if (m->has_sftp) {
		require(pf, SEC_SFTP, "host");
		require(pf, SEC_SFTP, "user");
		require(pf, SEC_SFTP, "key_file");
		require(pf, SEC_SFTP, "known_hosts");
	}
	if (!m->has_wshop && !m->has_sftp)
		perr(pf, pf->sec_line[SEC_MERCHANT], "merchant has neither [wshop] nor [sftp]; "
			"it needs one of them or both");
	for (int s = 0; s < STREAM_API_COUNT; s++)
		if (!pf->poll_set[s])
			m->wshop.poll_usec[s] = d->poll_usec[s];
	if (!pf->sftp_poll_set)
		m->sftp.poll_usec = d->poll_usec[STREAM_SFTP];
	if (!m->tz && !key_seen(pf, SEC_MERCHANT, "timezone"))
		zone_key(pf, 0, m->timezone); /* the default zone */
}

/* Append a parsed merchant to the config; on failure it is freed here. */
static void merchant_add(struct pfile *pf, struct merchant_conf *m)
{
	struct loader *ld = pf->ld;
	struct config *c = ld->c;

	if (c->n_merchants >= CONFIG_MERCHANTS_MAX) {
		perr(pf, 0, "too many merchants (more than %d)", CONFIG_MERCHANTS_MAX);
		goto fail;
	}
	if (c->n_merchants == ld->cap_merchants) {
		size_t cap = ld->cap_merchants ? ld->cap_merchants * 2 : 16;
		struct merchant_conf *ms = realloc(c->merchants, cap * sizeof(*ms));
		int *lines;
		if (!ms)
			goto oom;
		c->merchants = ms;
		lines = realloc(ld->id_lines, cap * sizeof(*lines));
		if (!lines)
			goto oom;
		ld->id_lines = lines;
		ld->cap_merchants = cap;
	}
	c->merchants[c->n_merchants] = *m;
	ld->id_lines[c->n_merchants] = pf->id_line;
	c->n_merchants++;
	return;
oom:
	ld->oom = true;
fail:
	merchant_free(m);
}

/*
 * Parse one open file.  A merchant file's merchant joins the list when it has
 * an id, even with other errors, so that a later file reusing the id is told
 * where the first one is.
 */
static void parse_file(struct loader *ld, const char *file, FILE *in, bool is_main)
{
	struct pfile pf = { .ld = ld, .file = file, .in = in, .is_main = is_main };
	struct merchant_conf m;
	struct stat st;
	int r;

	if (fstat(fileno(in), &st) < 0 || !S_ISREG(st.st_mode)) {
		perr(&pf, 0, "not a regular file");
		return;
	}
	if (st.st_size > CONFIG_FILE_MAX_BYTES) {
		perr(&pf, 0, "file too large (more than %d bytes)", CONFIG_FILE_MAX_BYTES);
		return;
	}
	if (!is_main) {
		merchant_defaults(ld, &m);
		m.file = xstrdup(ld, file);
		pf.m = &m;
	}
	r = ini_parse_stream(config_reader, &pf, config_handler, &pf);
	if (r == -2)
		ld->oom = true;
	else if (r > 0) /* the reader blanks every bad line it knows; this is one it did not */
		perr(&pf, r, "syntax error");
	if (!is_main) {
		merchant_finish(&pf);
		if (m.id[0])
			merchant_add(&pf, &m);
		else
			merchant_free(&m);
	}
	for (size_t i = 0; i < pf.n_seen; i++)
		free(pf.seen[i].key);
	free(pf.seen);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_conf_name(const char *name)
{
	size_t n = strlen(name);
	return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".conf") == 0;
}

/* Every merchants.d/NAME.conf beside the main file, in byte order of NAME; no folder is fine. */
static void parse_merchants(struct loader *ld)
{
	char *dir = path_join(ld, ld->c->dir, "merchants.d"), **names = NULL;
	size_t n = 0, cap = 0;
	struct pfile dirpf = { .ld = ld };
	struct dirent *de;
	DIR *d = NULL;

	if (!dir)
		return;
	dirpf.file = dir;
	d = opendir(dir);
	if (!d) {
		if (errno != ENOENT)
			perr(&dirpf, 0, "cannot read the folder: %s", strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		if (!is_conf_name(de->d_name))
			continue;
		if (n >= CONFIG_MERCHANTS_MAX) {
			perr(&dirpf, 0, "too many files (more than %d)", CONFIG_MERCHANTS_MAX);
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **grown = realloc(names, ncap * sizeof(*names));
			if (!grown) {
				ld->oom = true;
				goto out;
			}
			names = grown;
			cap = ncap;
		}
		if (!(names[n] = xstrdup(ld, de->d_name)))
			goto out;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && !ld->oom; i++) {
		char *file = path_join(ld, dir, names[i]);
		FILE *in;
		if (!file)
			break;
		in = fopen(file, "r");
		if (!in) {
			struct pfile fpf = { .ld = ld, .file = file };
			perr(&fpf, 0, "cannot open: %s", strerror(errno));
		} else {
			parse_file(ld, file, in, false);
			fclose(in);
		}
		free(file);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (d)
		closedir(d);
	free(dir);
}

static void daemon_defaults(struct loader *ld, struct daemon_conf *d)
{
	d->state_dir = xstrdup(ld, "/var/lib/kleep");
	d->runtime_dir = xstrdup(ld, "/run/kleep");
	d->profile_dir = xstrdup(ld, KLEEP_DATADIR "/profiles");
	d->admin_group = xstrdup(ld, "kleep-admin");
	d->workers = 4;
	d->log_level = LOG_INFO;
	for (int s = 0; s < STREAM_COUNT; s++)
		d->poll_usec[s] = default_poll_sec[s] * USEC_PER_SEC;
	d->lookback_usec = 10 * 60 * USEC_PER_SEC;
	d->full_every_usec = 24 * 3600 * USEC_PER_SEC;
	d->keep_runs = 1000;
}

int config_load(const char *path, struct config **out, FILE *errs)
{
	struct loader ld = { .errs = errs ? errs : stderr };
	const char *cred = getenv("CREDENTIALS_DIRECTORY");
	struct config *c;
	FILE *in = NULL;
	int r = 0;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	ld.c = c;
	ld.cred_dir = cred && *cred ? cred : NULL;
	ld.cwd = getcwd(NULL, 0);
	c->path = xstrdup(&ld, path);
	c->dir = path_dir(path);
	if (!c->dir)
		ld.oom = true;
	daemon_defaults(&ld, &c->daemon);
	if (ld.oom)
		goto out;

	in = fopen(path, "r");
	if (!in) {
		r = -errno;
		fprintf(ld.errs, "%s:0: cannot open: %s\n", path, strerror(-r));
		goto out;
	}
	parse_file(&ld, path, in, true);
	fclose(in);
	if (!ld.oom)
		parse_merchants(&ld);
out:
	if (!r && ld.oom)
		r = -ENOMEM;
	else if (!r && ld.n_errors)
		r = -EINVAL;
	free(ld.cwd);
	free(ld.id_lines);
	if (r < 0)
		config_free(c);
	else
		*out = c;
	return r;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_merchants; i++)
		merchant_free(&c->merchants[i]);
	free(c->merchants);
	tz_free(c->zones);
	free(c->daemon.state_dir);
	free(c->daemon.runtime_dir);
	free(c->daemon.profile_dir);
	free(c->daemon.admin_group);
	free(c->path);
	free(c->dir);
	free(c);
}

const struct merchant_conf *config_merchant(const struct config *c, const char *id)
{
	for (size_t i = 0; c && id && i < c->n_merchants; i++)
		if (strcmp(c->merchants[i].id, id) == 0)
			return &c->merchants[i];
	return NULL;
}

void config_merchant_summary(const struct merchant_conf *m, FILE *f)
{
	fprintf(f, "%s: %s, languages ", m->id,
		m->environment == ENV_PREPROD ? "preprod" : "production");
	for (int i = 0; i < m->n_languages; i++)
		fprintf(f, "%s%s", i ? "," : "", m->languages[i]);
	fprintf(f, ", tz %s, product_id=%s", m->timezone, m->product_id_field);
	if (strcmp(m->parent_reference_field, "parent_reference") != 0)
		fprintf(f, ", parent_reference=%s", m->parent_reference_field);
	if (m->has_wshop) {
		fprintf(f, ", wshop %s as %s (profile %s", m->wshop.api_url, m->wshop.username,
			m->wshop.profile);
		if (m->wshop.n_overrides)
			fprintf(f, " with %zu override%s", m->wshop.n_overrides,
				m->wshop.n_overrides == 1 ? "" : "s");
		fprintf(f, ", %g req/s)", m->wshop.rate_limit);
	}
	if (m->has_sftp)
		fprintf(f, ", sftp %s@%s:%d root %s", m->sftp.user, m->sftp.host, m->sftp.port,
			m->sftp.root);
	const char *sep = ", fit";
	for (int c = 0; c < CONFIG_FIT_CLASSES; c++)
		if (m->fit[c]) {
			fprintf(f, "%s %s=[%s]", sep, fit_class_name(c), m->fit[c]);
			sep = "";
		}
	fputc('\n', f);
}
