/* gw meta: what the gateway says about itself. GET /openapi.json (docs/openapi.yaml, turned into JSON and
 * built in by gateway/openapi_embed.py), GET /api/v1/version, which routes need no token, and `ibsol-gateway
 * --print-routes`, the route table as JSON, which tests/blackbox/test_openapi.py compares with
 * docs/openapi.yaml so that neither can drift from the other. */
#include "gw.h"

#include "ib_log.h"
#include "ib_ops.h"
#include "ib_version.h"

#include <stdio.h>
#include <string.h>

extern const char gw_openapi_json[]; /* generated: build/gateway/openapi_json.c */
extern const size_t gw_openapi_json_len;

/* "/x", "/api/v1/x" and "/api/v2/x" are the same route (see gw_route_request); NULL for the files API. */
static const char *bare_path(const char *uri)
{
    static const char *const prefixes[] = {"/api/v1/", "/api/v2/", "/"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(uri, prefixes[i], strlen(prefixes[i]))) return uri + strlen(prefixes[i]);
    return NULL;
}

int gw_meta_public(const char *uri)
{
    /* healthz for load balancers; version and this document are what a client reads before it has a token,
     * and they tell nothing a token protects. */
    const char *p = bare_path(uri);
    return p && (!strcmp(p, "healthz") || !strcmp(p, "version") || !strcmp(p, "openapi.json"));
}

void gw_meta_openapi(gw_req *r)
{
    gw_reply_text(r, 200, gw_openapi_json, gw_openapi_json_len);
}

void gw_meta_version(gw_req *r)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "status", "OK", "version", IB_VERSION, "api",
                             IB_API_VERSION, "build_type", IB_BUILD_TYPE);
    if (!body) return gw_reply_error(r, IB_INTERNAL, "out of memory");
    json_object_set_new(body, "git", IB_GIT_COMMIT[0] ? json_string(IB_GIT_COMMIT) : json_null());
    gw_reply_json(r, 200, body);
}

/* --- --print-routes ------------------------------------------------------------------------------------- */

static const char *type_name(ib_arg_type t)
{
    switch (t) {
    case IB_A_STRING:
        return "string";
    case IB_A_OBJECT:
        return "object";
    case IB_A_ARRAY:
        return "array";
    case IB_A_BOOL:
        return "boolean";
    case IB_A_INT:
        return "integer";
    case IB_A_STRING_OR_ARRAY:
        return "string|array";
    }
    return "?";
}

/* One route: its method, its path without prefix (OpenAPI templates for the parts taken from the URL), and
 * the fields of its op's table, where the request carries them: the query string of a GET, else the JSON
 * body. A field named by a {template} comes from the URL and is left out. */
static void add_route(json_t *out, const char *method, const char *path, const char *op)
{
    json_t *rt = json_pack("{s:s, s:s}", "method", method, "path", path);
    const ib_op_spec *spec = op ? ib_op_find(op) : NULL;
    if (spec) {
        json_t *fields = json_array();
        for (const ib_field_spec *f = spec->fields; f->name; f++) {
            char tmpl[128];
            snprintf(tmpl, sizeof tmpl, "{%s}", f->name);
            if (strstr(path, tmpl)) continue;
            json_array_append_new(fields, json_pack("{s:s, s:s, s:b}", "name", f->name, "type",
                                                    type_name(f->type), "required", f->required));
        }
        json_object_set_new(rt, "in", json_string(!strcmp(method, "GET") ? "query" : "body"));
        json_object_set_new(rt, "fields", fields);
    }
    json_array_append_new(out, rt);
}

/* The routes gw_route_request serves by prefix rather than from the table: each mirrors a branch there (and
 * the methods files.c and web.c answer), so a change to those branches must change this list too;
 * test_openapi.py then asks for the matching change in docs/openapi.yaml. */
static const struct {
    const char *method, *path, *op;
} prefix_routes[] = {
    {"HEAD", "healthz", NULL},
    {"POST", "flow_binary/compile/{solution_path}", IB_OP_FLOW_COMPILE},
    {"GET", "files/{path}", NULL},
    {"HEAD", "files/{path}", NULL},
    {"PUT", "files/{path}", NULL},
    {"PATCH", "files/{path}", NULL},
    {"POST", "files/{path}", NULL},
    {"DELETE", "files/{path}", NULL},
    {"GET", "drives/{path}", NULL},
    {"HEAD", "drives/{path}", NULL},
    {"POST", "drives/{path}/copy", NULL},
    {"GET", "", NULL}, /* the web page (web.c), at the bare paths only */
    {"HEAD", "", NULL},
    {"GET", "web/{file}", NULL},
    {"HEAD", "web/{file}", NULL},
};

int gw_meta_main(int argc, char **argv)
{
    /* Anything else is refused as the daemon skeleton refuses an argument it does not know. */
    for (int a = 1; a < argc; a++)
        if (strcmp(argv[a], "--print-routes") != 0 || a > 1) {
            ib_error(NULL, "unknown argument '%s' (see --help)", argv[a]);
            return 1;
        }
    json_t *out = json_array();
    const char *method, *path, *op;
    for (int i = 0; gw_route_at(i, &method, &path, &op); i++)
        if (strcmp(method, "*") != 0)
            add_route(out, method, path, op); /* "*": the files API's metrics slot */
    for (size_t i = 0; i < sizeof prefix_routes / sizeof prefix_routes[0]; i++)
        add_route(out, prefix_routes[i].method, prefix_routes[i].path, prefix_routes[i].op);
    int rc = json_dumpf(out, stdout, JSON_INDENT(1)) == 0 && putchar('\n') != EOF ? 0 : 1;
    json_decref(out);
    return rc;
}
