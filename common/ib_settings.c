/* ib_settings: shared settings table and data root layout. */
#include "ib_settings.h"

#include "ib_fs.h"
#include "ib_tls.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ib_settings ib_set;

static const ib_cfg shared_table[] = {
    {"data", IB_CFG_STR, "./var", 0, 0, &ib_set.data, "data root: drive/, marketplace/, installed/, jobs/"},
    {"packager_url", IB_CFG_STR, "", 0, 0, &ib_set.url[IB_SVC_PACKAGER],
     "packager socket URL (default ipc://DATA/run/packager.ipc)"},
    {"packager_dials", IB_CFG_BOOL, "false", 0, 0, &ib_set.dials[IB_SVC_PACKAGER],
     "the packager dials the gateway instead of listening"},
    {"marketplace_url", IB_CFG_STR, "", 0, 0, &ib_set.url[IB_SVC_MARKETPLACE],
     "marketplace socket URL (default ipc://DATA/run/marketplace.ipc)"},
    {"marketplace_dials", IB_CFG_BOOL, "false", 0, 0, &ib_set.dials[IB_SVC_MARKETPLACE],
     "the marketplace dials the gateway instead of listening"},
    {"runner_url", IB_CFG_STR, "", 0, 0, &ib_set.url[IB_SVC_RUNNER],
     "runner socket URL (default ipc://DATA/run/runner.ipc)"},
    {"runner_dials", IB_CFG_BOOL, "true", 0, 0, &ib_set.dials[IB_SVC_RUNNER],
     "runners dial the gateway (so any number can attach)"},
    {"events_url", IB_CFG_STR, "", 0, 0, &ib_set.events_url,
     "job progress socket URL, gateway SUB listens (default ipc://DATA/run/events.ipc)"},
    {"max_msg", IB_CFG_INT, "100663296", 1024, 1LL << 31, &ib_set.max_msg, "largest message between daemons, bytes"},
    {"connect_timeout_ms", IB_CFG_INT, "3000", 10, 600000, &ib_set.connect_timeout_ms,
     "how long a request waits for its service to be reachable"},
    {"request_timeout_ms", IB_CFG_INT, "120000", 10, 86400000, &ib_set.request_timeout_ms,
     "how long a request waits for its answer"},
    {"workers", IB_CFG_INT, "0", 0, 256, &ib_set.workers, "concurrent requests per daemon (0 = number of cores)"},
    {"debug", IB_CFG_BOOL, "false", 0, 0, &ib_set.debug, "log debug lines (every message)"},
    {"tls_cert", IB_CFG_STR, "", 0, 0, &ib_set.tls_cert,
     "this daemon's certificate (PEM) for tls+tcp:// URLs, signed by the CA of --tls-ca"},
    {"tls_key", IB_CFG_STR, "", 0, 0, &ib_set.tls_key, "the private key of --tls-cert (PEM, unencrypted)"},
    {"tls_ca", IB_CFG_STR, "", 0, 0, &ib_set.tls_ca,
     "CA certificate(s) (PEM): a tls+tcp:// peer must present a certificate signed by it"},
};

const ib_cfg *ib_settings_table(size_t *count)
{
    *count = sizeof shared_table / sizeof shared_table[0];
    return shared_table;
}

int ib_url_check(const char *setting, const char *url, char *err, size_t errsz)
{
    if (!strncmp(url, "ipc://", 6)) {
        if (strlen(url + 6) == 0 || strlen(url + 6) > 100) {
            snprintf(err, errsz, "%s: ipc path '%s' must be 1 to 100 bytes long (a socket path limit)", setting,
                     url + 6);
            return -1;
        }
        return 0;
    }
    if (!strncmp(url, "inproc://", 9) && url[9]) return 0;
    if (!strncmp(url, "tcp://", 6) || !strncmp(url, "tcp4://", 7) || !strncmp(url, "tcp6://", 7) ||
        ib_url_is_tls(url)) {
        const char *hp = strstr(url, "://") + 3;
        const char *colon = strrchr(hp, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || colon == hp || !colon[1] || *end || port < 0 || port > 65535) {
            snprintf(err, errsz, "%s: '%s' is not %s://HOST:PORT", setting, url,
                     ib_url_is_tls(url) ? "tls+tcp" : "tcp");
            return -1;
        }
        return 0;
    }
    snprintf(err, errsz,
             "%s: '%s' is not a URL this server speaks (ipc://PATH, tcp://HOST:PORT, tls+tcp://HOST:PORT, "
             "inproc://NAME)",
             setting, url);
    return -1;
}

const char *ib_data_path(const char *name, char *buf, size_t bufsz)
{
    snprintf(buf, bufsz, "%s/%s", ib_set.data, name);
    return buf;
}

int ib_settings_finish(char *err, size_t errsz)
{
    static const char *const folders[] = {"drive", "marketplace", "installed", "jobs", "run"};
    char abs[PATH_MAX], sub[PATH_MAX + 32];
    if (ib_mkdirs(ib_set.data, 0755) < 0 || !realpath(ib_set.data, abs)) {
        snprintf(err, errsz, "IBSOL_DATA: cannot create data root '%s': %s", ib_set.data, strerror(errno));
        return -1;
    }
    free(ib_set.data);
    ib_set.data = strdup(abs);
    for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++)
        if (ib_mkdirs(ib_data_path(folders[i], sub, sizeof sub), 0755) < 0) {
            snprintf(err, errsz, "IBSOL_DATA: cannot create '%s': %s", sub, strerror(errno));
            return -1;
        }
    if (access(ib_set.data, W_OK) < 0) {
        snprintf(err, errsz, "IBSOL_DATA: data root '%s' is not writable: %s", ib_set.data, strerror(errno));
        return -1;
    }
    static const char *const url_settings[IB_SVC_COUNT] = {"IBSOL_PACKAGER_URL", "IBSOL_MARKETPLACE_URL",
                                                           "IBSOL_RUNNER_URL"};
    for (int s = 0; s < IB_SVC_COUNT; s++) {
        if (!ib_set.url[s][0]) {
            free(ib_set.url[s]);
            snprintf(sub, sizeof sub, "ipc://%s/run/%s.ipc", ib_set.data, ib_service_name((ib_service)s));
            ib_set.url[s] = strdup(sub);
        }
        if (ib_url_check(url_settings[s], ib_set.url[s], err, errsz) < 0) return -1;
    }
    if (!ib_set.events_url[0]) {
        free(ib_set.events_url);
        snprintf(sub, sizeof sub, "ipc://%s/run/events.ipc", ib_set.data);
        ib_set.events_url = strdup(sub);
    }
    if (ib_url_check("IBSOL_EVENTS_URL", ib_set.events_url, err, errsz) < 0) return -1;
    for (int a = 0; a < IB_SVC_COUNT; a++)
        for (int b = a + 1; b < IB_SVC_COUNT; b++)
            if (!strcmp(ib_set.url[a], ib_set.url[b])) {
                snprintf(err, errsz, "%s and %s are both '%s': each service needs its own address",
                         url_settings[a], url_settings[b], ib_set.url[a]);
                return -1;
            }
    /* The TLS files are checked at start, not at the first connection: a bad one is a start error. */
    const char *tls_url = NULL, *tls_setting = NULL;
    for (int s = 0; s < IB_SVC_COUNT && !tls_url; s++)
        if (ib_url_is_tls(ib_set.url[s])) tls_url = ib_set.url[s], tls_setting = url_settings[s];
    if (!tls_url && ib_url_is_tls(ib_set.events_url)) tls_url = ib_set.events_url, tls_setting = "IBSOL_EVENTS_URL";
    if (tls_url || ib_set.tls_cert[0] || ib_set.tls_key[0] || ib_set.tls_ca[0]) {
        char why[1024];
        if (ib_tls_load(why, sizeof why) < 0) {
            if (tls_url)
                snprintf(err, errsz, "%s '%s': %s", tls_setting, tls_url, why);
            else
                snprintf(err, errsz, "%s", why);
            return -1;
        }
    }
    if (ib_set.workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        ib_set.workers = n > 0 ? n : 2;
    }
    return 0;
}
