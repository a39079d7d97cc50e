/* pii.c - keep personal data out of the mirror: a per-installation key and keyed hashes. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
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

/*
 * HMAC's two key blocks (RFC 2104: key ^ ipad, key ^ opad), each hashed once
 * per key and thread: every hash then starts from a copy of those states and
 * costs two SHA-256 blocks instead of four.  One key per thread at a time (a
 * daemon has one); another key replaces it.
 */
struct hmac_pads {
	unsigned char key[PII_KEY_LEN];
	EVP_MD_CTX *pad[2], *work; /* pad[0] inner, pad[1] outer */
	bool ready;
};

static pthread_key_t pads_key;
static bool pads_key_ok;

static void pads_free(void *p)
{
	struct hmac_pads *h = p;
	if (!h)
		return;
	EVP_MD_CTX_free(h->pad[0]);
	EVP_MD_CTX_free(h->pad[1]);
	EVP_MD_CTX_free(h->work);
	OPENSSL_cleanse(h->key, sizeof(h->key));
	free(h);
}

/* Fetched once: HMAC() looks the algorithms up by name on every call, a third of its cost. */
static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	pads_key_ok = pthread_key_create(&pads_key, pads_free) == 0;
}

/* This thread's pads for key, made when the key is new to it; NULL on failure. */
static struct hmac_pads *pads_for(const unsigned char key[PII_KEY_LEN])
{
	if (!sha256 || !pads_key_ok)
		return NULL;
	struct hmac_pads *h = pthread_getspecific(pads_key);
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h)
			return NULL;
		h->pad[0] = EVP_MD_CTX_new();
		h->pad[1] = EVP_MD_CTX_new();
		h->work = EVP_MD_CTX_new();
		if (!h->pad[0] || !h->pad[1] || !h->work || pthread_setspecific(pads_key, h) != 0) {
			pads_free(h);
			return NULL;
		}
	}
	if (h->ready && memcmp(h->key, key, PII_KEY_LEN) == 0)
		return h;
	h->ready = false;
	for (int k = 0; k < 2; k++) {
		unsigned char block[HMAC_BLOCK];
		for (int i = 0; i < HMAC_BLOCK; i++)
			block[i] = (unsigned char)((i < PII_KEY_LEN ? key[i] : 0) ^ (k ? 0x5c : 0x36));
		bool ok = EVP_DigestInit_ex(h->pad[k], sha256, NULL) == 1 &&
			  EVP_DigestUpdate(h->pad[k], block, sizeof(block)) == 1;
		OPENSSL_cleanse(block, sizeof(block));
		if (!ok)
			return NULL;
	}
	memcpy(h->key, key, PII_KEY_LEN);
	h->ready = true;
	return h;
}

/* SHA-256 of the pad's block || a: one half of HMAC.  0, or -1 on failure. */
static int hmac_half(struct hmac_pads *h, int k, const void *a, size_t na, unsigned char *out)
{
	return EVP_MD_CTX_copy_ex(h->work, h->pad[k]) == 1 && EVP_DigestUpdate(h->work, a, na) == 1 &&
	       EVP_DigestFinal_ex(h->work, out, NULL) == 1 ? 0 : -1;
}

void pii_hash(const unsigned char key[PII_KEY_LEN], const char *text, char out[PII_HASH_HEX])
{
	unsigned char inner[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	pthread_once(&sha256_once, sha256_fetch);
	struct hmac_pads *h = pads_for(key);
	if (!h || hmac_half(h, 0, text, strlen(text), inner) < 0 || hmac_half(h, 1, inner, 32, mac) < 0)
		HMAC(EVP_sha256(), key, PII_KEY_LEN, (const unsigned char *)text, strlen(text), mac, &len);
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
