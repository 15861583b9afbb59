/* ib_package: checks of an .ibsolution (see ib_package.h). */
#include "ib_package.h"

#include "ib_flow.h"
#include "ib_manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MANIFEST_MAX (1u << 20)

json_t *ib_package_verify(int fd, const ib_zip_limits *lim, char *err, size_t errsz)
{
    char e[768], entry[IB_SOLUTION_NAME_MAX + 16];
    json_t *manifest = NULL;
    char *text = NULL, *bin = NULL;
    ib_flow *flow = NULL;
    size_t len;
    zip_t *za = ib_zip_open_verified(fd, lim, err, errsz);
    if (!za) return NULL;
    if (zip_name_locate(za, "package.json", ZIP_FL_ENC_RAW) < 0) {
        snprintf(err, errsz, "archive has no 'package.json'");
        goto out;
    }
    if (!(text = ib_zip_read_entry(za, "package.json", MANIFEST_MAX, &len, err, errsz)) ||
        !(manifest = ib_manifest_parse(text, len, "package.json", err, errsz)))
        goto out;
    const char *name = json_string_value(json_object_get(manifest, "name"));
    const char *version = json_string_value(json_object_get(manifest, "version"));
    snprintf(entry, sizeof entry, "%s.ibflowbin", name);
    if (zip_name_locate(za, entry, ZIP_FL_ENC_RAW) < 0) {
        snprintf(err, errsz, "archive has no '%s'", entry);
        goto fail;
    }
    if (!(bin = ib_zip_read_entry(za, entry, IB_FLOW_MAX_BIN, &len, err, errsz))) goto fail;
    if (!(flow = ib_flow_decode(bin, len, e, sizeof e))) {
        snprintf(err, errsz, "'%s' is not a valid compiled flow: %s", entry, e);
        goto fail;
    }
    /* A compiled flow copied in from another solution would run under the wrong name. */
    if (!flow->name || !flow->version || strcmp(flow->name, name) != 0 || strcmp(flow->version, version) != 0) {
        snprintf(err, errsz,
                 "'%s' was compiled for solution '%.64s' version '%.64s', not for '%s' version '%s' of package.json",
                 entry, flow->name ? flow->name : "?", flow->version ? flow->version : "?", name, version);
        goto fail;
    }
    goto out;
fail:
    json_decref(manifest);
    manifest = NULL;
out:
    ib_flow_free(flow);
    free(bin);
    free(text);
    zip_discard(za);
    return manifest;
}
