/* config.c - the sections and keys of kleepd.conf and merchants.d/NAME.conf, each mistake as FILE:LINE. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_priv.h"
#include "fit.h"
#include "log.h"
#include "tz.h"

const char *const config_section_names[SEC_COUNT] = {
	[SEC_DAEMON] = "daemon", [SEC_DEFAULTS] = "defaults", [SEC_MERCHANT] = "merchant",
	[SEC_WSHOP] = "wshop", [SEC_SFTP] = "sftp",
	[SEC_FIT] = "fit",
};

void config_section_begin(struct pfile *pf, const char *name)
{
	enum section sec = SEC_UNKNOWN;

	for (int i = SEC_DAEMON; i < SEC_COUNT; i++)
		if (strcmp(config_section_names[i], name) == 0)
			sec = (enum section)i;
	if (pf->is_main && (sec == SEC_MERCHANT || sec == SEC_WSHOP || sec == SEC_SFTP ||
			    sec == SEC_FIT)) {
		config_perr(pf, pf->line, "unknown section [%s] in the main file "
			"(merchant settings go in merchants.d/NAME.conf)", name);
		sec = SEC_UNKNOWN;
	} else if (!pf->is_main && (sec == SEC_DAEMON || sec == SEC_DEFAULTS)) {
		config_perr(pf, pf->line, "unknown section [%s] in a merchant file "
			"(it belongs in the main file)", name);
		sec = SEC_UNKNOWN;
	} else if (sec == SEC_UNKNOWN) {
		config_perr(pf, pf->line, "unknown section [%s] (expected %s)", name,
			pf->is_main ? "[daemon] or [defaults]" : "[merchant], [wshop], [sftp] or [fit]");
	} else if (pf->sec_line[sec]) {
		config_perr(pf, pf->line, "section [%s] appears twice (first at line %d)",
			name, pf->sec_line[sec]);
	} else {
		pf->sec_line[sec] = pf->line;
	}
	pf->sec = sec;
}

/*
 * A merchant's zone: its table is loaded now, before any worker runs, and is
 * trusted only when the zone file exists: a typo would otherwise silently mean
 * UTC in every date conversion.
 */
void config_zone_key(struct pfile *pf, int line, const char *tz)
{
	char err[256];
	int r = tz_get(&pf->ld->c->zones, tz, &pf->m->tz, err, sizeof(err));
	if (r == -ENOENT)
		config_perr(pf, line, "timezone: '%s' is not a known IANA time zone (e.g. Europe/Paris)", tz);
	else if (r == -ENOMEM)
		pf->ld->oom = true;
	else if (r < 0)
		config_perr(pf, line, "timezone: '%s' cannot be read: %s", tz, err);
	else
		config_set_str(pf->ld, &pf->m->timezone, tz);
}

/* ---- keys ---- */

/* False, after saying so, when key already appeared in this section of this file. */
static bool first_time(struct pfile *pf, const char *key)
{
	struct seen_key *grown;

	for (size_t i = 0; i < pf->n_seen; i++)
		if (pf->seen[i].sec == pf->sec && strcmp(pf->seen[i].key, key) == 0) {
			config_perr(pf, pf->line, "duplicate key '%s' in [%s] (first at line %d)",
				key, config_section_names[pf->sec], pf->seen[i].line);
			return false;
		}
	if (pf->n_seen >= CONFIG_KEYS_PER_FILE_MAX) {
		if (!pf->seen_full)
			config_perr(pf, pf->line, "too many keys in one file (more than %d)",
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
	pf->seen[pf->n_seen].key = config_strdup(pf->ld, key);
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
	config_perr(pf, pf->line, "unknown key '%s' in [%s]%s", key, config_section_names[pf->sec], hint);
}

static void set_duration(struct pfile *pf, const char *key, const char *v, bool positive,
			 uint64_t *dst)
{
	uint64_t usec;

	if (config_parse_duration(v, &usec) < 0)
		config_perr(pf, pf->line, "%s: expected %s, got '%s'", key, DURATION_TEXT, v);
	else if (positive && usec == 0)
		config_perr(pf, pf->line, "%s: must be more than 0", key);
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
	char *shown = config_path_join(pf->ld, pf->ld->c->dir, v), *abs;
	struct stat st;

	if (!shown)
		return;
	abs = config_path_abs(pf->ld, shown);
	if (abs && what) {
		if (stat(abs, &st) < 0)
			config_perr(pf, pf->line, "%s %s: %s", what, shown, strerror(errno));
		else if (!S_ISREG(st.st_mode))
			config_perr(pf, pf->line, "%s %s is not a regular file", what, shown);
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
	char *shown = config_path_join(pf->ld, base, v), *abs = NULL;
	struct stat st;

	if (!shown)
		return;
	abs = config_path_abs(pf->ld, shown);
	if (!abs)
		goto out;
	if (stat(abs, &st) < 0)
		config_perr(pf, pf->line, "%s %s: %s", what, shown, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		config_perr(pf, pf->line, "%s %s is not a regular file", what, shown);
	else if (st.st_mode & 0007)
		config_perr(pf, pf->line, "%s %s is readable by others (chmod 600 it)", what, shown);
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
			config_perr(pf, pf->line, "%s: '%s' must not contain spaces", key, v);
			return false;
		}
	config_set_str(pf->ld, dst, v);
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
			config_perr(pf, pf->line, "core_dumps: expected yes or no, got '%s'", v);
	} else if (strcmp(key, "workers") == 0) {
		if (!config_parse_int(v, 1, 64, &d->workers))
			config_perr(pf, pf->line, "workers: expected an integer from 1 to 64, got '%s'", v);
	} else if (strcmp(key, "log_level") == 0) {
		level = log_level_parse(v);
		if (level < 0)
			config_perr(pf, pf->line, "log_level: expected err, warning, notice, info or debug, "
				"got '%s'", v);
		else
			d->log_level = level;
	} else
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
		if (!config_parse_int(v, 1, 100000000, &d->keep_runs))
			config_perr(pf, pf->line, "keep_runs: expected an integer from 1 to 100000000, got '%s'", v);
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

		len = (size_t)(end - p);
		config_trim(&p, &len);
		if (len == 0) {
			config_perr(pf, pf->line, "languages: empty entry in '%s'", v);
			bad = true;
		} else if (len >= sizeof(lang)) {
			config_perr(pf, pf->line, "language '%.*s' is not supported (expected one of %s)",
				(int)len, p, LANGUAGES_TEXT);
			bad = true;
		} else {
			memcpy(lang, p, len);
			lang[len] = '\0';
			bool dup = false;
			for (int i = 0; i < n; i++)
				dup |= strcmp(langs[i], lang) == 0;
			if (!config_language_valid(lang)) {
				config_perr(pf, pf->line, "language '%s' is not supported (expected one of %s)",
					lang, LANGUAGES_TEXT);
				bad = true;
			} else if (dup) {
				config_perr(pf, pf->line, "language '%s' is listed twice", lang);
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
			config_perr(pf, pf->line, "id: '%s' is not a valid merchant id "
				"(expected [a-z0-9][a-z0-9_-]{0,63})", v);
			return;
		}
		for (size_t i = 0; i < ld->c->n_merchants; i++)
			if (strcmp(ld->c->merchants[i].id, v) == 0) {
				config_perr(pf, pf->line, "duplicate merchant id '%s' (first defined in %s:%d)",
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
			config_perr(pf, pf->line, "environment: expected production or preprod, got '%s'", v);
	} else if (strcmp(key, "languages") == 0) {
		languages_key(pf, v);
	} else if (strcmp(key, "timezone") == 0) {
		config_zone_key(pf, pf->line, v);
	} else if (strcmp(key, "product_id_field") == 0) {
		set_word(pf, key, v, &m->product_id_field);
	} else if (strcmp(key, "parent_reference_field") == 0) {
		set_word(pf, key, v, &m->parent_reference_field);
	} else
		unknown_key(pf, key);
}

static void add_override(struct pfile *pf, const char *key, const char *v)
{
	struct wshop_conf *w = &pf->m->wshop;
	struct profile_override *grown, *o;

	if (!config_profile_path_valid(key)) {
		config_perr(pf, pf->line, "profile.%s: expected a dotted path of words, "
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
	o->key = config_strdup(pf->ld, key);
	o->value = config_strdup(pf->ld, v);
	o->file = config_strdup(pf->ld, pf->file);
	o->line = pf->line;
	w->n_overrides++;
}

static void wshop_key(struct pfile *pf, const char *key, const char *v)
{
	struct wshop_conf *w = &pf->m->wshop;
	int s;

	if (strcmp(key, "api_url") == 0) {
		bool scheme = strncmp(v, "https://", 8) == 0 || strncmp(v, "http://", 7) == 0;
		const char *host = scheme ? strstr(v, "//") + 2 : v;
		if (config_url_has_userinfo(v))
			config_perr(pf, pf->line, "api_url: the URL holds a user name or password; "
			     "credentials belong in username and password_file");
		else if (!scheme || !*host || *host == '/')
			config_perr(pf, pf->line, "api_url: expected an http:// or https:// URL, got '%s'", v);
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
		if (!config_parse_decimal(v, &r) || r <= 0)
			config_perr(pf, pf->line, "rate_limit: expected requests per second, a decimal "
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
		if (!config_parse_int(v, 1, 65535, &s->port))
			config_perr(pf, pf->line, "port: expected an integer from 1 to 65535, got '%s'", v);
	} else if (strcmp(key, "user") == 0) {
		set_word(pf, key, v, &s->user);
	} else if (strcmp(key, "key_file") == 0) {
		set_secret(pf, "key file", v, &s->key_file);
	} else if (strcmp(key, "known_hosts") == 0) {
		set_path(pf, "known_hosts file", v, &s->known_hosts);
	} else if (strcmp(key, "root") == 0) {
		config_set_str(pf->ld, &s->root, v);
	} else if (strcmp(key, "poll") == 0) {
		set_duration(pf, key, v, true, &s->poll_usec);
		pf->sftp_poll_set = true;
	} else if (strcmp(key, "settle") == 0) {
		set_duration(pf, key, v, false, &s->settle_usec);
	} else if (strcmp(key, "max_reject_ratio") == 0) {
		double r;
		if (!config_parse_decimal(v, &r) || r > 1)
			config_perr(pf, pf->line, "max_reject_ratio: expected a decimal from 0 to 1 "
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
		config_perr(pf, pf->line, "unknown key '%s' in [fit] (expected too_small, too_large, "
			"other_fit or not_fit)", key);
		return;
	}
	for (const char *p = v; (p = fit_list_next(p, tok, sizeof(tok)));) {
		if (!*tok) {
			config_perr(pf, pf->line, "%s: an empty item in '%s' (expected reason codes or ids "
				"separated by commas)", key, v);
			return;
		}
		for (int g = 0; g < FIT_CLASS_COUNT; g++)
			if (fit_list_has(pf->m->fit[g], tok)) {
				config_perr(pf, pf->line, "%s: '%s' is already listed in %s", key, tok,
					fit_class_name(g));
				return;
			}
	}
	config_set_str(pf->ld, &pf->m->fit[f], v);
}

/* inih's handler: section and name as inih saw them; we trust our own section. */
int config_handler(void *user, const char *section, const char *name, const char *value)
{
	struct pfile *pf = user;

	(void)section;
	if (pf->sec == SEC_NONE) {
		config_perr(pf, pf->line, "key '%s' is outside any section", name);
		return 1;
	}
	if (pf->sec == SEC_UNKNOWN || !first_time(pf, name))
		return 1; /* an unknown section was reported once, at its header */
	if (!*value) {
		config_perr(pf, pf->line, "%s: no value", name);
		return 1;
	}
	switch (pf->sec) {
	case SEC_DAEMON: daemon_key(pf, name, value); break;
	case SEC_DEFAULTS: defaults_key(pf, name, value); break;
	case SEC_MERCHANT: merchant_key(pf, name, value); break;
	case SEC_WSHOP: wshop_key(pf, name, value); break;
	case SEC_SFTP: sftp_key(pf, name, value); break;
	case SEC_FIT: fit_key(pf, name, value); break;
	default: break;
	}
	/* always go on: every error has been reported, and inih would report only its first */
	return 1;
}
