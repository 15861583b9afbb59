/* ibsol-op: sends one op with JSON arguments to a daemon and prints the reply as JSON, so any service can be
 * talked to without the gateway:  ibsol-op marketplace marketplace.list
 *                                 ibsol-op --url ipc:///tmp/p.ipc packager solution.create '{"content_folder":..}'
 * The service's address comes from the same settings as the daemons (IBSOL_DATA, IBSOL_<SERVICE>_URL, ...).
 * A service that dials (runners) cannot be reached at its URL, where the gateway listens: each runner also
 * listens on DATA/run/runner-<instance>.ipc (ib_daemon.h), and the tool dials every such socket on this host
 * (any runner answers for any job), or the one of --instance NAME. */
#include "ib_client.h"
#include "ib_config.h"
#include "ib_daemon.h"
#include "ib_log.h"
#include "ib_settings.h"
#include "ib_tls.h"

#include <glob.h>
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *op_user, *op_role, *op_url, *op_instance;
static long long op_timeout;

static const ib_cfg op_cfg[] = {
    {"user", IB_CFG_STR, "admin", 0, 0, &op_user, "user the op runs as"},
    {"role", IB_CFG_STR, "admin", 0, 0, &op_role, "role the op runs as (admin or user)"},
    {"url", IB_CFG_STR, "", 0, 0, &op_url, "service URL to dial (default: from the settings)"},
    {"instance", IB_CFG_STR, "", 0, 0, &op_instance,
     "runner: the one named so (its IBSOL_INSTANCE), else any runner on this host with this data root"},
    {"timeout_ms", IB_CFG_INT, "60000", 1, 86400000, &op_timeout, "how long to wait for the reply"},
};

/* The control socket(s) of a dialing service: the one of --instance, or every one in DATA/run (more in *found;
 * the first is returned, written into buf). NULL after saying why none can be used. */
static const char *control_urls(ib_service svc, glob_t *found, char *buf, size_t bufsz)
{
    const char *name = ib_service_name(svc);
    if (op_instance[0]) {
        if (ib_control_url(svc, op_instance, buf, bufsz)) return buf;
        fprintf(stderr, "ibsol-op: --instance '%s': its socket path under %s/run is too long for ipc\n", op_instance,
                ib_set.data);
        return NULL;
    }
    char pattern[4200];
    snprintf(pattern, sizeof pattern, "%s/run/%s-*.ipc", ib_set.data, name);
    if (glob(pattern, 0, NULL, found) != 0 || found->gl_pathc == 0) {
        fprintf(stderr,
                "ibsol-op: no %s to reach: no %s (each %s on this host with this data root listens there; give "
                "--url for another host)\n",
                name, pattern, name);
        return NULL;
    }
    snprintf(buf, bufsz, "ipc://%s", found->gl_pathv[0]);
    return buf;
}

int main(int argc, char **argv)
{
    size_t nshared;
    const ib_cfg *shared = ib_settings_table(&nshared);
    const ib_cfg *tables[2] = {shared, op_cfg};
    size_t counts[2] = {nshared, sizeof op_cfg / sizeof op_cfg[0]};
    char err[1024];
    int rest = 0;
    ib_log_init("op", 0);
    int rc = ib_config_load(tables, counts, 2, argc, argv, "ibsol-op",
                            "send one op to a service: ibsol-op [options] SERVICE OP [JSON-ARGS]. A runner is reached through the "
                            "socket each runner listens on, DATA/run/runner-INSTANCE.ipc: any runner on this host, or "
                            "the one given by --instance", &rest, err,
                            sizeof err);
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "ibsol-op: %s\n", err);
        ib_config_free(tables, counts, 2);
        return rc < 0 ? 2 : 0;
    }
    int code = 2;
    json_t *args = NULL;
    if (rest < 3 || rest > 4) {
        fprintf(stderr, "usage: ibsol-op [options] SERVICE OP [JSON-ARGS]   (SERVICE: packager, marketplace, runner)\n");
        goto out;
    }
    ib_service svc = IB_SVC_NONE;
    for (int s = 0; s < IB_SVC_COUNT; s++)
        if (!strcmp(argv[1], ib_service_name((ib_service)s))) svc = (ib_service)s;
    if (svc == IB_SVC_NONE) {
        fprintf(stderr, "ibsol-op: unknown service '%s' (packager, marketplace, runner)\n", argv[1]);
        goto out;
    }
    if (ib_settings_finish(err, sizeof err) < 0) {
        fprintf(stderr, "ibsol-op: %s\n", err);
        goto out;
    }
    if (rest == 4) {
        json_error_t jerr;
        args = json_loads(argv[3], JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(args)) {
            fprintf(stderr, "ibsol-op: arguments must be a JSON object: %s\n", args ? "not an object" : jerr.text);
            goto out;
        }
    }
    ib_client cl;
    glob_t found = {0};
    char ctl[256];
    const char *url = op_url[0] ? op_url : ib_set.url[svc];
    if (!op_url[0] && ib_set.dials[svc] && !(url = control_urls(svc, &found, ctl, sizeof ctl))) goto out;
    int opened = ib_client_open(&cl, svc, url, 0, err, sizeof err) == 0;
    /* every other runner's socket too: the request goes to one that is connected (a stale file never is) */
    for (size_t i = 1; opened && i < found.gl_pathc; i++) {
        snprintf(ctl, sizeof ctl, "ipc://%s", found.gl_pathv[i]);
        if (ib_endpoint_start(cl.sock, ctl, 0, "--instance", err, sizeof err) < 0) {
            ib_client_close(&cl);
            opened = 0;
        }
    }
    globfree(&found);
    if (!opened) {
        fprintf(stderr, "ibsol-op: %s\n", err);
        goto out;
    }
    ib_caller who = {op_user, op_role, "op-tool"};
    ib_reply rep;
    ib_reply_init(&rep);
    ib_client_call(&cl, argv[2], &who, args, (int)op_timeout, &rep);
    json_t *out = json_object();
    json_object_set_new(out, "status", json_string(rep.code == IB_OK ? "OK" : "ERROR"));
    if (rep.code != IB_OK) {
        json_object_set_new(out, "code", json_string(ib_code_word(rep.code)));
        json_object_set_new(out, "msg", json_string(rep.msg));
    } else if (rep.data) {
        json_object_update(out, rep.data);
    }
    char *text = json_dumps(out, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
    json_decref(out);
    code = rep.code == IB_OK ? 0 : 1;
    ib_reply_clear(&rep);
    /* No nng_fini(): libnng 1.5.2 tears its queues down while a reconnect of the closed socket may still run,
     * and then aborts ("pthread_mutex_lock: Invalid argument") or waits forever; the process ends here anyway. */
    ib_client_close(&cl);
out:
    json_decref(args);
    ib_config_free(tables, counts, 2);
    return code;
}
