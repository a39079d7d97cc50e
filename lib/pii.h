/* pii.h - personal data: the installation's hash key, keyed hashes, and scrubbing records. */
#ifndef KLEEP_PII_H
#define KLEEP_PII_H

#include <jansson.h>

#include "profile.h"

#define PII_KEY_LEN 32
#define PII_HASH_HEX 33 /* 128 bits of HMAC-SHA256 as hex, plus NUL */

/*
 * Load the installation's secret from <state_dir>/pii.key, creating it
 * (random, mode 0600) the first time.  0 or a negative errno; err says why.
 */
int pii_key_load(const char *state_dir, unsigned char key[PII_KEY_LEN], char *err, size_t errlen);

/* HMAC-SHA256 of text under key, truncated to 128 bits, as lowercase hex. */
void pii_hash(const unsigned char key[PII_KEY_LEN], const char *text, char out[PII_HASH_HEX]);

/*
 * Apply the profile's personal-data rules of one stream to rec, in place,
 * before anything of it is written or logged: "drop" removes the field,
 * "hash" replaces it by the keyed hash of its `key` member (or of itself
 * when it is a scalar).  When hash_out is not NULL it receives the first
 * hash made (the customer hash), or "" when none.  0, or -EINVAL when a field
 * to hash has nothing hashable (the field is then dropped anyway).
 */
int pii_scrub(const struct profile *p, enum stream s, const unsigned char key[PII_KEY_LEN],
	      json_t *rec, char hash_out[PII_HASH_HEX]);

#endif
