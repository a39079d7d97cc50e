/* fuzz_ctl.c - libFuzzer target: any bytes as a control request line must parse or be refused,
 * and the reply to it must be well-formed JSON, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_request rq;
	const char *code;
	char err[512];
	char *reply;

	if (size > CTL_REQUEST_MAX)
		return 0;
	if (ctl_request_parse((const char *)data, size, &rq, &code, err, sizeof(err)) == 0) {
		reply = ctl_reply_ok(json_pack("{s:s}", "cmd", rq.cmd));
		ctl_request_free(&rq);
	} else {
		reply = ctl_reply_error(code, "%s", err);
	}
	if (!reply || !strchr(reply, '\n'))
		abort();
	json_t *back = json_loads(reply, JSON_DISABLE_EOF_CHECK, NULL);
	if (!back)
		abort();
	json_decref(back);
	free(reply);
	return 0;
}
