/* money.c - convert a price's decimal text to integer minor units, exactly (no floating point). */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "money.h"

int money_parse_minor(const char *text, int exponent, int64_t *out)
{
	const char *p = text, *frac = NULL;
	bool neg = false;
	size_t n_int = 0, n_frac = 0;

	if (!text || exponent < 0 || exponent > 4)
		return -EINVAL;
	while (*p == ' ')
		p++;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	for (; isdigit((unsigned char)p[n_int]); n_int++)
		;
	if (n_int == 0)
		return -EINVAL;
	const char *end = p + n_int;
	if (*end == '.' || *end == ',') {
		frac = end + 1;
		for (; isdigit((unsigned char)frac[n_frac]); n_frac++)
			;
		if (n_frac == 0)
			return -EINVAL;
		end = frac + n_frac;
	}
	while (*end == ' ')
		end++;
	if (*end || n_int + (size_t)exponent > MONEY_DIGITS_MAX)
		return -EINVAL;
	int64_t v = 0;
	for (size_t i = 0; i < n_int; i++)
		v = v * 10 + (p[i] - '0');
	for (int i = 0; i < exponent; i++)
		v = v * 10 + ((size_t)i < n_frac ? frac[i] - '0' : 0);
	/* Half away from zero: the first dropped digit alone decides. */
	if ((size_t)exponent < n_frac && frac[exponent] >= '5')
		v++;
	*out = neg ? -v : v;
	return 0;
}

static const char *SQL_EXPONENT = "SELECT exponent FROM currencies WHERE currency = ?1";

static int exponent_of(struct store *st, struct money_memo *memo, const char *currency,
		       int *exponent)
{
	bool memoable = memo && strlen(currency) < sizeof(memo->currency);
	if (memoable && strcmp(memo->currency, currency) == 0) {
		*exponent = memo->exponent;
		return 0;
	}
	sqlite3_stmt *q = store_stmt(st, SQL_EXPONENT);
	if (!q)
		return -EIO;
	sqlite3_bind_text(q, 1, currency, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	*exponent = rc == SQLITE_ROW ? sqlite3_column_int(q, 0) : -1;
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return -EIO;
	if (memoable) {
		strcpy(memo->currency, currency);
		memo->exponent = *exponent;
	}
	return 0;
}

int money_minor_text(struct store *st, struct money_memo *memo, const char *price,
		     const char *currency, char buf[MONEY_TEXT_LEN], const char **out)
{
	int exponent;
	*out = NULL;
	if (!price || !currency)
		return 0;
	if (exponent_of(st, memo, currency, &exponent) < 0)
		return -EIO;
	int64_t v;
	if (exponent >= 0 && money_parse_minor(price, exponent, &v) == 0) {
		snprintf(buf, MONEY_TEXT_LEN, "%" PRId64, v);
		*out = buf;
	}
	return 0;
}
