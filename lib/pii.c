/* pii.c - keep personal data out of the mirror: a per-installation key and keyed hashes. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hex.h"
#include "pii.h"

static int read_full(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return -EIO;
		got += (size_t)r;
	}
	return 0;
}

/* The key is read from a regular file only: a symlink there is refused, not followed. */
static int key_load(const char *state_dir, unsigned char key[PII_KEY_LEN], char *err, size_t errlen,
		    bool may_create)
{
	char path[4096];
	if (snprintf(path, sizeof(path), "%s/pii.key", state_dir) >= (int)sizeof(path)) {
		snprintf(err, errlen, "state_dir is too long");
		return -ENAMETOOLONG;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		int r = read_full(fd, key, PII_KEY_LEN);
		close(fd);
		if (r < 0)
			snprintf(err, errlen, "%s: shorter than %d bytes; restore it from a backup "
				 "(a new key would change every customer hash)", path, PII_KEY_LEN);
		return r;
	}
	if (errno != ENOENT || !may_create) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path,
			 e == ELOOP ? "is a symbolic link; the key must be a regular file" : strerror(e));
		return -e;
	}
	/* Create it under a temporary name and link it in place, so two
	 * processes starting together agree on one key. */
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -errno;
	}
	/* Keep the errno: a full disk is ENOSPC, not a vague EIO. */
	int r = 0;
	ssize_t n;
	errno = 0;
	if (getrandom(key, PII_KEY_LEN, 0) != PII_KEY_LEN)
		r = -EIO;
	else if ((n = write(fd, key, PII_KEY_LEN)) != PII_KEY_LEN)
		r = n < 0 ? -errno : -ENOSPC; /* a short write of a regular file: no room */
	else if (fchmod(fd, 0600) < 0 || fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r == 0 && link(tmp, path) < 0)
		r = errno == EEXIST ? 1 : -errno;
	unlink(tmp);
	if (r == 1) /* someone else won: use theirs (or the name is taken by something else) */
		return key_load(state_dir, key, err, errlen, false);
	if (r < 0)
		snprintf(err, errlen, "%s: cannot create: %s", path, strerror(-r));
	return r;
}

#define HMAC_BLOCK 64 /* bytes: SHA-256's block; a key no longer than it is used as it is */

static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

/* Fetched once: HMAC() looks the algorithms up by name on every call, a third of its cost. */
static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 of (key ^ pad) || a || b: one half of HMAC (RFC 2104).  0, or -1 on failure. */
static int hmac_half(EVP_MD_CTX *c, const unsigned char *key, unsigned char pad,
		     const void *a, size_t na, unsigned char *out)
{
	unsigned char block[HMAC_BLOCK];
	for (int i = 0; i < HMAC_BLOCK; i++)
		block[i] = (unsigned char)((i < PII_KEY_LEN ? key[i] : 0) ^ pad);
	return EVP_DigestInit_ex(c, sha256, NULL) == 1 && EVP_DigestUpdate(c, block, sizeof(block)) == 1 &&
	       EVP_DigestUpdate(c, a, na) == 1 && EVP_DigestFinal_ex(c, out, NULL) == 1 ? 0 : -1;
}

void pii_hash(const unsigned char key[PII_KEY_LEN], const char *text, char out[PII_HASH_HEX])
{
	unsigned char inner[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	pthread_once(&sha256_once, sha256_fetch);
	EVP_MD_CTX *c = sha256 ? EVP_MD_CTX_new() : NULL;
	if (!c || hmac_half(c, key, 0x36, text, strlen(text), inner) < 0 ||
	    hmac_half(c, key, 0x5c, inner, 32, mac) < 0)
		HMAC(EVP_sha256(), key, PII_KEY_LEN, (const unsigned char *)text, strlen(text), mac, &len);
	EVP_MD_CTX_free(c);
	hex_encode(mac, (PII_HASH_HEX - 1) / 2, out);
}

/* A scalar as text for hashing: strings as they are, numbers in JSON form. */
static int scalar_text(json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return snprintf(buf, size, "%s", json_string_value(v)) < (int)size ? 0 : -EINVAL;
	if (json_is_integer(v))
		return snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v)), 0;
	return -EINVAL;
}

int pii_scrub(const struct profile *p, enum stream s, const unsigned char key[PII_KEY_LEN],
	      json_t *rec, char hash_out[PII_HASH_HEX])
{
	size_t i;
	json_t *rule;
	int r = 0;

	if (hash_out)
		hash_out[0] = 0;
	json_array_foreach(p->streams[s].personal, i, rule) {
		const char *field = profile_field(p, json_string_value(json_object_get(rule, "field")));
		const char *action = json_string_value(json_object_get(rule, "action"));
		json_t *v = json_object_get(rec, field);
		if (!v)
			continue;
		if (strcmp(action, "hash") != 0 || json_is_null(v)) {
			json_object_del(rec, field);
			continue;
		}
		const char *k = json_string_value(json_object_get(rule, "key"));
		json_t *src = json_is_object(v) && k ? json_object_get(v, profile_field(p, k)) : v;
		char text[256], hex[PII_HASH_HEX];
		if (!src || scalar_text(src, text, sizeof(text)) < 0) {
			json_object_del(rec, field);
			r = -EINVAL;
			continue;
		}
		pii_hash(key, text, hex);
		json_object_set_new(rec, field, json_string(hex));
		if (hash_out && !hash_out[0])
			memcpy(hash_out, hex, PII_HASH_HEX);
	}
	return r;
}

int pii_key_load(const char *state_dir, unsigned char key[PII_KEY_LEN], char *err, size_t errlen)
{
	return key_load(state_dir, key, err, errlen, true);
}
