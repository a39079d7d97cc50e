/* config_value.c - the config's value parsers: durations, ids, languages, numbers, paths, URLs. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config_priv.h"

static const char *const config_languages[CONFIG_LANG_MAX] = {
	"fr", "en", "de", "it", "ja", "ko", "pt", "br", "es", "pl", "sv", "da", "nl", "fi",
};

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

bool config_parse_int(const char *s, long lo, long hi, int *out)
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

bool config_parse_decimal(const char *s, double *out)
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

bool config_profile_path_valid(const char *p)
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

bool config_url_has_userinfo(const char *v)
{
	const char *a = strstr(v, "//");
	a = a ? a + 2 : v;
	size_t n = strcspn(a, "/?#");
	return memchr(a, '@', n) != NULL;
}

void config_trim(const char **s, size_t *n)
{
	while (*n > 0 && isspace((unsigned char)**s))
		(*s)++, (*n)--;
	while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}
