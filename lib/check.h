/* check.h - the onboarding check of one merchant (DOMAIN.md §4): can it go live? */
#ifndef KLEEP_CHECK_H
#define KLEEP_CHECK_H

#include <stdatomic.h>

#include <jansson.h>

#include "config.h"
#include "merchant.h"

/*
 * Probe merchant m as an operator onboarding it would: the WSHOP credentials,
 * each of the eight endpoints, the SFTP server and folders when configured,
 * and the readiness of the data already mirrored.  Blocking network calls:
 * run it off the event loop.  Returns 0 and *report (owned by the caller):
 *   {"merchant", "go_live": bool,
 *    "credentials": {"status": "accepted"|"refused"|"failing"|"not_configured", "http", "message"},
 *    "endpoints": [{"endpoint", "stream", "status": "authorized"|"unauthorized"|"failing"|"not_checked",
 *                   "http", "message"}],
 *    "needs_sftp": [stream...],
 *    "sftp": {"status": "ok"|"unreachable"|"host_key"|"auth"|"failing"|"not_configured",
 *             "message", "folders": {"products": bool, ...}},
 *    "readiness": [{"check", "count", "examples": [...], "message"}],   (warnings)
 *    "blocking": [{"item", "what_to_do"}]}
 * or a negative errno-style code when the merchant's mirror cannot be opened.
 * shop: the merchant's shared rate cap and token (merchant_open), or NULL.
 */
int check_run(const struct config *c, const struct merchant_conf *m, const struct merchant_shop *shop,
	      atomic_bool *stop, json_t **report);

#endif
