/* ib_events: what runners publish on their PUB socket and the gateway reads on its SUB socket.
 * A message is the topic ("job.<job_id>" or "runner.<instance>"), one NUL byte, then a msgpack map made from a
 * JSON object by the one converter. Job events carry the job's public status fields (state, status, index,
 * total, curMsg, curProgress, user, ...); heartbeats carry the runner's instance, pid, pool size and load. */
#ifndef IB_EVENTS_H
#define IB_EVENTS_H

#include <jansson.h>
#include <nng/nng.h>
#include <stddef.h>

#define IB_TOPIC_JOB "job."
#define IB_TOPIC_RUNNER "runner."

/* Appends topic + NUL + body to msg. 0 or -1. */
int ib_event_encode(nng_msg *msg, const char *topic, const json_t *body);
/* Splits a received message; *body is a new reference (an object). 0, or -1 when malformed. */
int ib_event_decode(const void *buf, size_t len, char *topic, size_t topicsz, json_t **body);

#endif
