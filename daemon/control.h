/* control.h - the control socket (DESIGN.md §7): clients on the loop, their peers
 * checked, requests answered through the runtime's API. */
#ifndef KLEEP_CONTROL_H
#define KLEEP_CONTROL_H

#include <stddef.h>

#include <systemd/sd-event.h>

#include "runtime.h"

struct control;

/*
 * Serve the socket listen_fd (socket activation: systemd made it; -1 when
 * not) or else bind path, on loop e, for runtime rt (borrowed: it must
 * outlive the control).  NULL on failure, with err said.
 */
struct control *control_new(sd_event *e, struct runtime *rt, int listen_fd, const char *path,
			    char *err, size_t errlen);
/* The configuration was reloaded: look up the groups of the roles again. */
void control_reconfigured(struct control *c);
/* Close every client (their waits cancelled) and the socket. */
void control_free(struct control *c);

#endif
