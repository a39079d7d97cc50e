/* config_priv.h - what the files of the config parser share; not for use outside lib/config*.c. */
#ifndef KLEEP_CONFIG_PRIV_H
#define KLEEP_CONFIG_PRIV_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* Hard bounds, so that a hostile or mistaken file cannot make the parse slow or huge. */
#define CONFIG_FILE_MAX_BYTES (1024 * 1024)
#define CONFIG_ERRORS_PER_FILE_MAX 50
#define CONFIG_KEYS_PER_FILE_MAX 1000
#define CONFIG_MERCHANTS_MAX 100000
#define CONFIG_DURATION_MAX_SEC (3650ULL * 86400) /* ten years */
#define USEC_PER_SEC 1000000ULL

#define LANGUAGES_TEXT "fr, en, de, it, ja, ko, pt, br, es, pl, sv, da, nl, fi"
#define DURATION_TEXT "a number of seconds, or a number with unit s, m, h or d (e.g. 15m)"

enum section {
	SEC_NONE,    /* before the first header */
	SEC_UNKNOWN, /* after a bad or unknown header: its keys are skipped quietly */
	SEC_DAEMON, SEC_DEFAULTS, SEC_MERCHANT, SEC_WSHOP, SEC_SFTP, SEC_FIT,
	SEC_COUNT
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

/* config.c: sections and keys */
extern const char *const config_section_names[SEC_COUNT];
/* A "[name]" header at pf's current line: the section its keys go to from now on. */
void config_section_begin(struct pfile *pf, const char *name);
/* inih's handler for "key = value" (user is the struct pfile). */
int config_handler(void *user, const char *section, const char *name, const char *value);
/* Load the merchant's zone tz (reported at line), or say why it cannot be used. */
void config_zone_key(struct pfile *pf, int line, const char *tz);

/* config_read.c: lines for inih */
/* inih's reader (user is the struct pfile): one physical line, checked, with headers noted. */
char *config_reader(char *str, int num, void *user);

/* config_load.c: the loader's state, errors and paths */
/* Report "FILE:LINE: message" for pf (LINE 0: the whole file); counts toward failing the load. */
__attribute__((format(printf, 3, 4)))
void config_perr(struct pfile *pf, int line, const char *fmt, ...);
/* strdup that marks the load out of memory on failure. */
char *config_strdup(struct loader *ld, const char *s);
/* Replace *dst with a copy of v; the old value stays on allocation failure. */
void config_set_str(struct loader *ld, char **dst, const char *v);
/* dir joined with name; name alone when absolute or dir is ".".  Caller frees. */
char *config_path_join(struct loader *ld, const char *dir, const char *name);
/* shown made absolute against the current folder, so a later chdir changes nothing. */
char *config_path_abs(struct loader *ld, const char *shown);

/* config_value.c: value parsers (the public ones are in config.h) */
/* An integer in [lo, hi], nothing else on the line. */
bool config_parse_int(const char *s, long lo, long hi, int *out);
/* A plain decimal ("2", "0.5"): no sign, exponent, hex, inf or nan, which strtod would take. */
bool config_parse_decimal(const char *s, double *out);
/* "a.b_c" names a key path in the profile JSON: dot-separated words. */
bool config_profile_path_valid(const char *p);
/* *s (*n bytes) without the blanks at either end. */
void config_trim(const char **s, size_t *n);
/* Whether a URL carries user-info ("user:pw@"), which must never be printed. */
bool config_url_has_userinfo(const char *v);

#endif
