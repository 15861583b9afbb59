/* ib_events: progress and heartbeat messages between runners and the gateway. */
#include "ib_events.h"

#include "ib_conv.h"

#include <string.h>

int ib_event_encode(nng_msg *msg, const char *topic, const json_t *body)
{
    if (nng_msg_append(msg, topic, strlen(topic) + 1) != 0) return -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, msg, ib_msg_write);
    return ib_json_pack(&pk, body, ib_conv_default_limits.max_depth);
}

int ib_event_decode(const void *buf, size_t len, char *topic, size_t topicsz, json_t **body)
{
    const char *p = buf, *nul = memchr(p, '\0', len);
    if (!nul || (size_t)(nul - p) >= topicsz) return -1;
    memcpy(topic, p, (size_t)(nul - p) + 1);
    char err[128];
    static const ib_conv_limits limits = {.max_depth = 16, .max_items = 4096, .max_str = 1 << 16};
    json_t *j = ib_msgpack_decode_json(nul + 1, len - (size_t)(nul - p) - 1, &limits, err, sizeof err);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    *body = j;
    return 0;
}
