/* config_load.c - the files of a configuration: the main file, merchants.d, defaults, required keys. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <ini.h>

#include "config_priv.h"
#include "fit.h"
#include "tz.h"

#ifndef KLEEP_DATADIR
#define KLEEP_DATADIR "/usr/local/share/kleep"
#endif

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

void config_perr(struct pfile *pf, int line, const char *fmt, ...)
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

char *config_strdup(struct loader *ld, const char *s)
{
	char *d = strdup(s);
	if (!d)
		ld->oom = true;
	return d;
}

void config_set_str(struct loader *ld, char **dst, const char *v)
{
	char *d = config_strdup(ld, v);
	if (d) {
		free(*dst);
		*dst = d;
	}
}

char *config_path_join(struct loader *ld, const char *dir, const char *name)
{
	char *p;
	size_t n = strlen(dir);

	if (name[0] == '/' || strcmp(dir, ".") == 0 || n == 0)
		return config_strdup(ld, name);
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

char *config_path_abs(struct loader *ld, const char *shown)
{
	if (shown[0] == '/' || !ld->cwd)
		return config_strdup(ld, shown);
	return config_path_join(ld, ld->cwd, shown);
}

static void merchant_defaults(struct loader *ld, struct merchant_conf *m)
{
	memset(m, 0, sizeof(*m));
	m->environment = ENV_PRODUCTION;
	memcpy(m->languages[0], "fr", 3);
	m->n_languages = 1;
	m->timezone = config_strdup(ld, "Europe/Paris");
	m->product_id_field = config_strdup(ld, "id");
	m->parent_reference_field = config_strdup(ld, "parent_reference");
	m->wshop.profile = config_strdup(ld, "default");
	m->wshop.rate_limit = 2;
	m->sftp.port = 22;
	m->sftp.root = config_strdup(ld, ".");
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
		config_perr(pf, pf->sec_line[sec], "required key '%s' missing in [%s]",
			key, config_section_names[sec]);
}

/* After a merchant file: required keys, and defaults from [defaults]. */
static void merchant_finish(struct pfile *pf)
{
	struct merchant_conf *m = pf->m;
	const struct daemon_conf *d = &pf->ld->c->daemon;

	m->has_wshop = pf->sec_line[SEC_WSHOP] != 0;
	m->has_sftp = pf->sec_line[SEC_SFTP] != 0;
	if (!pf->sec_line[SEC_MERCHANT])
		config_perr(pf, 0, "no [merchant] section (every merchant file needs one, with the id)");
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
		config_perr(pf, pf->sec_line[SEC_MERCHANT], "merchant has neither [wshop] nor [sftp]; "
			"it needs one of them or both");
	for (int s = 0; s < STREAM_API_COUNT; s++)
		if (!pf->poll_set[s])
			m->wshop.poll_usec[s] = d->poll_usec[s];
	if (!pf->sftp_poll_set)
		m->sftp.poll_usec = d->poll_usec[STREAM_SFTP];
	if (!m->tz && !key_seen(pf, SEC_MERCHANT, "timezone"))
		config_zone_key(pf, 0, m->timezone); /* the default zone */
}

/* Append a parsed merchant to the config; on failure it is freed here. */
static void merchant_add(struct pfile *pf, struct merchant_conf *m)
{
	struct loader *ld = pf->ld;
	struct config *c = ld->c;

	if (c->n_merchants >= CONFIG_MERCHANTS_MAX) {
		config_perr(pf, 0, "too many merchants (more than %d)", CONFIG_MERCHANTS_MAX);
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
		config_perr(&pf, 0, "not a regular file");
		return;
	}
	if (st.st_size > CONFIG_FILE_MAX_BYTES) {
		config_perr(&pf, 0, "file too large (more than %d bytes)", CONFIG_FILE_MAX_BYTES);
		return;
	}
	if (!is_main) {
		merchant_defaults(ld, &m);
		m.file = config_strdup(ld, file);
		pf.m = &m;
	}
	r = ini_parse_stream(config_reader, &pf, config_handler, &pf);
	if (r == -2)
		ld->oom = true;
	else if (r > 0) /* the reader blanks every bad line it knows; this is one it did not */
		config_perr(&pf, r, "syntax error");
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
	char *dir = config_path_join(ld, ld->c->dir, "merchants.d"), **names = NULL;
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
			config_perr(&dirpf, 0, "cannot read the folder: %s", strerror(errno));
		goto out;
	}
	while ((de = readdir(d))) {
		if (!is_conf_name(de->d_name))
			continue;
		if (n >= CONFIG_MERCHANTS_MAX) {
			config_perr(&dirpf, 0, "too many files (more than %d)", CONFIG_MERCHANTS_MAX);
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
		if (!(names[n] = config_strdup(ld, de->d_name)))
			goto out;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n && !ld->oom; i++) {
		char *file = config_path_join(ld, dir, names[i]);
		FILE *in;
		if (!file)
			break;
		in = fopen(file, "r");
		if (!in) {
			struct pfile fpf = { .ld = ld, .file = file };
			config_perr(&fpf, 0, "cannot open: %s", strerror(errno));
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
	d->state_dir = config_strdup(ld, "/var/lib/kleep");
	d->runtime_dir = config_strdup(ld, "/run/kleep");
	d->profile_dir = config_strdup(ld, KLEEP_DATADIR "/profiles");
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
	c->path = config_strdup(&ld, path);
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
