/* money.h - prices as exact integers in their currency's minor unit (sql/008: currencies). */
#ifndef KLEEP_MONEY_H
#define KLEEP_MONEY_H

#include <stdint.h>

#include "store.h"

#define MONEY_DIGITS_MAX 18 /* digits of a scaled amount: every one fits an int64 */
#define MONEY_TEXT_LEN 24   /* an int64 as text, with its sign */

/*
 * text ("19.90", "19,90", "-5", "1500": a sign, digits, then '.' or ',' and
 * digits) times 10^exponent, rounded half away from zero when it has more
 * decimals than that.  0, or -EINVAL when text is not such a number or has
 * more than MONEY_DIGITS_MAX digits once scaled.  The migration to schema 8
 * converts existing prices with the same rule, in SQL.
 */
int money_parse_minor(const char *text, int exponent, int64_t *out);

/*
 * The last currency money_minor_text looked up and its exponent: a shop sells
 * in one currency or a few, and every line of every order asks.  Zeroed
 * before first use; it lives as long as one connection to one mirror.
 */
struct money_memo {
	char currency[8];
	int exponent;
};

/*
 * The unit price of an order line as canonical text for canon_put: price in
 * currency's minor unit, its exponent read from the mirror's currencies
 * table, or from memo when it holds that currency (memo may be NULL).  *out
 * points into buf, or is NULL when price is NULL, currency is NULL or
 * unknown, or price does not convert (the text stays in the raw layer).  0,
 * or -EIO when the mirror cannot be read.
 */
int money_minor_text(struct store *st, struct money_memo *memo, const char *price,
		     const char *currency, char buf[MONEY_TEXT_LEN], const char **out);

#endif
