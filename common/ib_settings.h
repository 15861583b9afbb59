/* ib_settings: the settings every daemon and tool shares (data root, service URLs, message limits, timeouts),
 * declared once as a config table. Defaults put everything on one machine under ./var with ipc:// sockets. */
#ifndef IB_SETTINGS_H
#define IB_SETTINGS_H

#include "ib_config.h"
#include "ib_ops.h"

typedef struct ib_settings {
    char *data;        /* data root, made absolute by ib_settings_finish */
    char *url[IB_SVC_COUNT];
    int dials[IB_SVC_COUNT]; /* 1: the service dials the gateway (runners), 0: it listens */
    char *events_url; /* the gateway's SUB socket; runners' PUB sockets dial it */
    long long max_msg;
    long long connect_timeout_ms; /* how long a request waits for a service to be reachable */
    long long request_timeout_ms; /* how long it waits for the answer */
    long long workers;
    int debug;
    char *tls_cert, *tls_key, *tls_ca; /* PEM files for tls+tcp:// URLs (ib_tls.h) */
} ib_settings;

extern ib_settings ib_set;

/* The shared table, to pass to ib_config_load next to a daemon's own. */
const ib_cfg *ib_settings_table(size_t *count);

/* After loading: makes the data root absolute (creating it and drive/, marketplace/, installed/, jobs/, run/),
 * fills default URLs (ipc://<data>/run/<service>.ipc), checks every URL's scheme and length, and, when a URL is
 * tls+tcp:// or a TLS setting is given, the TLS files (ib_tls_load). -1 with a message naming the setting. */
int ib_settings_finish(char *err, size_t errsz);

/* Checks a URL: ipc://PATH (PATH at most 100 bytes), tcp://HOST:PORT, tls+tcp://HOST:PORT, inproc://NAME. 0 or
 * -1 with a message. */
int ib_url_check(const char *setting, const char *url, char *err, size_t errsz);

/* Data root sub-folders: "<data>/<name>" in buf. */
const char *ib_data_path(const char *name, char *buf, size_t bufsz);

#endif
