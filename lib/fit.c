/* fit.c - classify return reasons by their code and labels (lib/fit/phrases.json) or the merchant's [fit].
 *
 * Text is folded before it is searched: ASCII, Latin-1 and Latin Extended-A
 * letters to lower case, every other ASCII character (punctuation, '_', '-',
 * the apostrophe) and typographic apostrophes to one space, other characters
 * (Japanese, Korean...) kept.  A phrase that starts with a Latin letter must
 * start a word; one in another script may sit anywhere, as those scripts do
 * not separate words by spaces.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "fit.h"

/* lib/fit/phrases.json, built in by lib/fit/embed.sh. */
extern const char fit_phrases_json[];

static const char *const class_names[FIT_CLASS_COUNT] = {
	[FIT_TOO_SMALL] = "too_small", [FIT_TOO_LARGE] = "too_large",
	[FIT_OTHER_FIT] = "other_fit", [FIT_NOT_FIT] = "not_fit",
};

const char *fit_class_name(enum fit_class f)
{
	return f >= 0 && f < FIT_CLASS_COUNT ? class_names[f] : NULL;
}

enum fit_class fit_class_from_name(const char *s)
{
	for (int i = 0; i < FIT_CLASS_COUNT; i++)
		if (s && strcmp(s, class_names[i]) == 0)
			return (enum fit_class)i;
	return FIT_NONE;
}

/* ---- folding ---- */

static void put_space(char *out, size_t *n)
{
	if (*n && out[*n - 1] != ' ')
		out[(*n)++] = ' ';
}

/* Lower case of a Latin-1 or Latin Extended-A letter U+00C0..U+017F, as its code point. */
static unsigned latin_lower(unsigned cp)
{
	if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
		return cp + 0x20;
	bool even_upper = (cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177);
	bool odd_upper = (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
	if ((even_upper && cp % 2 == 0) || (odd_upper && cp % 2 == 1))
		return cp + 1;
	return cp;
}

/*
 * s folded into out (size bytes), between single spaces: " trop petit ".
 * Text past FIT_TEXT_MAX or what does not fit is dropped.
 */
static void fold(const char *s, char *out, size_t size)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	out[n++] = ' ';
	for (size_t i = 0; p[i] && i < FIT_TEXT_MAX && n + 5 < size; ) {
		unsigned c = p[i];
		if (c < 0x80) {
			if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
				out[n++] = (char)c;
			else if (c >= 'A' && c <= 'Z')
				out[n++] = (char)(c + 32);
			else
				put_space(out, &n);
			i++;
		} else if ((c == 0xC2 && p[i + 1] == 0xA0) ||
			   (c == 0xE2 && p[i + 1] == 0x80 && (p[i + 2] == 0x98 || p[i + 2] == 0x99))) {
			put_space(out, &n); /* no-break space, typographic apostrophes */
			i += c == 0xC2 ? 2 : 3;
		} else if (c >= 0xC3 && c <= 0xC5 && (p[i + 1] & 0xC0) == 0x80) {
			unsigned cp = latin_lower(((c & 0x1F) << 6) | (p[i + 1] & 0x3F));
			out[n++] = (char)(0xC0 | (cp >> 6));
			out[n++] = (char)(0x80 | (cp & 0x3F));
			i += 2;
		} else {
			out[n++] = (char)c;
			i++;
		}
	}
	put_space(out, &n);
	out[n] = 0;
}

/* ---- the phrases ---- */

struct phrase {
	char *text;           /* folded; starts with ' ' when it must start a word */
	enum fit_class fit;
};

static struct phrase *phrases;
static size_t n_phrases;
static pthread_once_t phrases_once = PTHREAD_ONCE_INIT;

static bool latin_start(const char *folded)
{
	unsigned char c = (unsigned char)folded[1];
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 0xC3 && c <= 0xC5);
}

static void phrases_load(void)
{
	json_t *root = json_loads(fit_phrases_json, JSON_REJECT_DUPLICATES, NULL);
	size_t cap = 0;

	for (int f = 0; root && f < FIT_CLASS_COUNT; f++) {
		const char *lang;
		json_t *list;
		json_object_foreach(json_object_get(root, class_names[f]), lang, list) {
			size_t i;
			json_t *v;
			json_array_foreach(list, i, v) {
				char buf[FIT_TEXT_MAX + 8];
				if (!json_string_length(v))
					continue;
				if (n_phrases == cap) {
					size_t grown_cap = cap ? cap * 2 : 512;
					struct phrase *g = realloc(phrases, grown_cap * sizeof(*g));
					if (!g)
						goto out;
					phrases = g, cap = grown_cap;
				}
				fold(json_string_value(v), buf, sizeof(buf));
				buf[strlen(buf) - 1] = 0; /* a phrase may end inside a word: a stem */
				phrases[n_phrases].text = strdup(latin_start(buf) ? buf : buf + 1);
				phrases[n_phrases].fit = (enum fit_class)f;
				if (phrases[n_phrases].text)
					n_phrases++;
			}
		}
	}
out:
	json_decref(root);
}

/* Add the classes whose phrases occur in text to seen[]. */
static void match(const char *text, bool seen[FIT_CLASS_COUNT])
{
	char folded[FIT_TEXT_MAX * 2 + 8];
	if (!text)
		return;
	fold(text, folded, sizeof(folded));
	for (size_t i = 0; i < n_phrases; i++)
		if (!seen[phrases[i].fit] && strstr(folded, phrases[i].text))
			seen[phrases[i].fit] = true;
}

enum fit_class fit_classify(const char *code, const char *const *labels, size_t n)
{
	bool seen[FIT_CLASS_COUNT] = { false };

	pthread_once(&phrases_once, phrases_load);
	match(code, seen);
	for (size_t i = 0; i < n; i++)
		match(labels[i], seen);
	/* One direction says it; both, or a fit problem of another kind, say other_fit. */
	if (seen[FIT_TOO_SMALL] != seen[FIT_TOO_LARGE])
		return seen[FIT_TOO_SMALL] ? FIT_TOO_SMALL : FIT_TOO_LARGE;
	if (seen[FIT_TOO_SMALL] || seen[FIT_OTHER_FIT])
		return FIT_OTHER_FIT;
	return seen[FIT_NOT_FIT] ? FIT_NOT_FIT : FIT_NONE;
}

/* ---- the merchant's [fit] section ---- */

const char *fit_list_next(const char *list, char *tok, size_t len)
{
	if (!list || !*list)
		return NULL;
	const char *comma = strchr(list, ',');
	const char *end = comma ? comma : list + strlen(list);
	while (list < end && (*list == ' ' || *list == '\t'))
		list++;
	const char *last = end;
	while (last > list && (last[-1] == ' ' || last[-1] == '\t'))
		last--;
	snprintf(tok, len, "%.*s", (int)(last - list), list);
	/* "a," ends with an empty item, which the caller reports. */
	return comma ? comma + 1 : end;
}

bool fit_list_has(const char *list, const char *name)
{
	char tok[FIT_TEXT_MAX];
	const char *p = list;
	while (name && (p = fit_list_next(p, tok, sizeof(tok))))
		if (*tok && strcasecmp(tok, name) == 0)
			return true;
	return false;
}

enum fit_class fit_override(char *const overrides[FIT_CLASS_COUNT], const char *reason_id,
			    const char *code)
{
	for (int f = 0; overrides && f < FIT_CLASS_COUNT; f++)
		if (fit_list_has(overrides[f], reason_id))
			return (enum fit_class)f;
	for (int f = 0; overrides && f < FIT_CLASS_COUNT; f++)
		if (fit_list_has(overrides[f], code))
			return (enum fit_class)f;
	return FIT_NONE;
}

/* ---- the mirror ---- */

#define FIT_LABELS_MAX 64 /* labels of one reason read: fourteen languages and then some */

static const char *SQL_REASON =
	"SELECT code, label FROM return_reasons WHERE reason_id = ?1";
static const char *SQL_REASON_LABELS =
	"SELECT value FROM labels WHERE entity = 'return_reason' AND entity_id = ?1"
	" AND field = 'label' ORDER BY lang LIMIT 64";
static const char *SQL_SET_FIT =
	"UPDATE return_reasons SET fit = ?2, fit_source = ?3"
	" WHERE reason_id = ?1 AND (fit IS NOT ?2 OR fit_source IS NOT ?3)";
static const char *SQL_NEXT_REASON =
	"SELECT reason_id FROM return_reasons WHERE reason_id > ?1 ORDER BY reason_id LIMIT 1";

/* Copies of one statement's text rows (col 0 and maybe col 1) into texts[]; n grows. */
static int read_texts(struct store *st, const char *sql, const char *id, int cols, char **texts,
		      size_t *n, size_t cap)
{
	sqlite3_stmt *q = store_stmt(st, sql);
	int rc;
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		for (int c = 0; c < cols && *n < cap; c++) {
			const char *v = (const char *)sqlite3_column_text(q, c);
			texts[(*n)++] = v ? strdup(v) : NULL;
		}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

int fit_reason_update(struct store *st, char *const overrides[FIT_CLASS_COUNT], const char *reason_id)
{
	char *texts[FIT_LABELS_MAX + 2]; /* code, label, then the labels in every language */
	size_t n = 0;
	int r = read_texts(st, SQL_REASON, reason_id, 2, texts, &n, 2);
	if (r == 0 && n == 0)
		return 0; /* no such reason (any more) */
	if (r == 0)
		r = read_texts(st, SQL_REASON_LABELS, reason_id, 1, texts, &n, FIT_LABELS_MAX + 2);
	if (r == 0) {
		const char *source = "config";
		enum fit_class f = fit_override(overrides, reason_id, texts[0]);
		if (f == FIT_NONE) {
			source = "default";
			f = fit_classify(texts[0], (const char *const *)texts + 1, n - 1);
		}
		sqlite3_stmt *q = store_stmt(st, SQL_SET_FIT);
		if (!q) {
			r = -EIO;
		} else {
			sqlite3_bind_text(q, 1, reason_id, -1, SQLITE_STATIC);
			if (f != FIT_NONE) {
				sqlite3_bind_text(q, 2, fit_class_name(f), -1, SQLITE_STATIC);
				sqlite3_bind_text(q, 3, source, -1, SQLITE_STATIC);
			}
			r = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
			sqlite3_reset(q);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(texts[i]);
	return r;
}

int fit_refresh(struct store *st, char *const overrides[FIT_CLASS_COUNT])
{
	char *id[1] = { strdup("") }; /* reasons in id order, from the one after id */
	size_t n = 1;
	int r = id[0] ? 0 : -ENOMEM;

	while (r == 0 && n == 1) {
		char *last = id[0];
		n = 0;
		r = read_texts(st, SQL_NEXT_REASON, last, 1, id, &n, 1);
		free(last);
		if (r == 0 && n == 1)
			r = fit_reason_update(st, overrides, id[0]);
	}
	if (n == 1)
		free(id[0]);
	return r;
}
