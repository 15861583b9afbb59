/* ib_ops: the op table of every service (names, owners, argument fields). */
#include "ib_ops.h"

#include "ib_fs.h"
#include "ib_settings.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const service_names[IB_SVC_COUNT] = {"packager", "marketplace", "runner"};

const char *ib_service_name(ib_service svc)
{
    return (svc >= 0 && svc < IB_SVC_COUNT) ? service_names[svc] : "?";
}

static const ib_field_spec f_none[] = {{NULL, 0, 0}};
static const ib_field_spec f_create[] = {
    {"content_folder", IB_A_STRING, 1}, {"output_folder", IB_A_STRING, 1}, {NULL, 0, 0}};
static const ib_field_spec f_publish[] = {{"ibsolution_path", IB_A_STRING, 1}, {NULL, 0, 0}};
static const ib_field_spec f_name_version[] = {{"name", IB_A_STRING, 1}, {"version", IB_A_STRING, 1}, {NULL, 0, 0}};
static const ib_field_spec f_info[] = {{"name", IB_A_STRING, 1}, {"version", IB_A_STRING, 0}, {NULL, 0, 0}};
static const ib_field_spec f_run[] = {{"input_folder", IB_A_STRING, 1}, {"name", IB_A_STRING, 0},
                                      {"version", IB_A_STRING, 0},      {"solution_path", IB_A_STRING, 0},
                                      {"settings", IB_A_OBJECT, 0},     {NULL, 0, 0}};
static const ib_field_spec f_run_sync[] = {
    {"name", IB_A_STRING, 0},    {"version", IB_A_STRING, 0},    {"solution_path", IB_A_STRING, 0},
    {"files", IB_A_ARRAY, 1},    {"output_dir", IB_A_STRING, 0}, {"options", IB_A_OBJECT, 0},
    {"repo_name", IB_A_STRING, 0}, {NULL, 0, 0}};
static const ib_field_spec f_job[] = {{"job_id", IB_A_STRING, 1}, {"type", IB_A_STRING, 0}, {NULL, 0, 0}};
/* jobs.list: query-string values, so both are strings ("limit=20"); the runner checks them. */
static const ib_field_spec f_list[] = {{"limit", IB_A_STRING, 0}, {"cursor", IB_A_STRING, 0}, {NULL, 0, 0}};
static const ib_field_spec f_copy[] = {{"src_path", IB_A_STRING, 1}, {"dst_path", IB_A_STRING, 1}, {NULL, 0, 0}};
/* extract: without dst_path the archive unpacks beside itself, into its path without the extension */
static const ib_field_spec f_extract[] = {{"src_path", IB_A_STRING, 1}, {"dst_path", IB_A_STRING, 0}, {NULL, 0, 0}};
/* flow.compile: the original product's flow_binary/compile body; solution_path comes from its URL */
static const ib_field_spec f_flow_compile[] = {
    {"solution_path", IB_A_STRING, 1},          {"flow_project_root", IB_A_STRING, 1},
    {"settings", IB_A_OBJECT, 1},               {"predefined_binary_path", IB_A_STRING, 0},
    {"binary_type", IB_A_STRING, 0},            {NULL, 0, 0}};

/* the original product's deployed solutions and Flow Binary API */
static const ib_field_spec f_deploy[] = {{"solution_path", IB_A_STRING, 1}, {NULL, 0, 0}};
static const ib_field_spec f_run_binary[] = {{"input_dir", IB_A_STRING, 1},
                                             {"binary_path", IB_A_STRING, 1},
                                             {"settings", IB_A_OBJECT, 0},
                                             {NULL, 0, 0}};
static const ib_field_spec f_flow_results[] = {{"ibresults_path", IB_A_STRING, 1},
                                               {"options", IB_A_OBJECT, 0},
                                               {"file_offset", IB_A_INT, 0},
                                               {NULL, 0, 0}};

/* pages.render: query-string values (GET pages?path=&page=&dpi=), so page and dpi are strings; the runner checks
 * them */
static const ib_field_spec f_pages[] = {
    {"path", IB_A_STRING, 1}, {"page", IB_A_STRING, 0}, {"dpi", IB_A_STRING, 0}, {NULL, 0, 0}};

#define CATALOG_STAMP "run/catalog.stamp"

static const ib_op_spec op_specs[] = {
    {IB_OP_SOLUTION_CREATE, IB_SVC_PACKAGER, f_create, NULL, NULL, 0},
    {IB_OP_MARKET_PUBLISH, IB_SVC_MARKETPLACE, f_publish, NULL, CATALOG_STAMP, 0},
    {IB_OP_MARKET_INSTALL, IB_SVC_MARKETPLACE, f_name_version, NULL, CATALOG_STAMP, 0},
    {IB_OP_MARKET_UNINSTALL, IB_SVC_MARKETPLACE, f_name_version, NULL, CATALOG_STAMP, 0},
    {IB_OP_MARKET_UNPUBLISH, IB_SVC_MARKETPLACE, f_name_version, NULL, CATALOG_STAMP, 0},
    {IB_OP_MARKET_LIST, IB_SVC_MARKETPLACE, f_none, CATALOG_STAMP, NULL, 1},
    {IB_OP_MARKET_INFO, IB_SVC_MARKETPLACE, f_info, CATALOG_STAMP, NULL, 1},
    {IB_OP_SOLUTION_RUN, IB_SVC_RUNNER, f_run, NULL, NULL, 0},
    {IB_OP_SOLUTION_RUN_SYNC, IB_SVC_RUNNER, f_run_sync, NULL, NULL, 0},
    {IB_OP_JOBS_STATUS, IB_SVC_RUNNER, f_job, NULL, NULL, 1},
    {IB_OP_JOBS_RESULTS, IB_SVC_RUNNER, f_job, NULL, NULL, 1},
    {IB_OP_JOBS_CANCEL, IB_SVC_RUNNER, f_job, NULL, NULL, 0},
    {IB_OP_JOBS_LIST, IB_SVC_RUNNER, f_list, NULL, NULL, 1},
    {IB_OP_FILES_COPY, IB_SVC_RUNNER, f_copy, NULL, NULL, 0},
    {IB_OP_FILES_EXTRACT, IB_SVC_RUNNER, f_extract, NULL, NULL, 0},
    {IB_OP_FLOW_COMPILE, IB_SVC_PACKAGER, f_flow_compile, NULL, NULL, 0},
    {IB_OP_PAGES_RENDER, IB_SVC_RUNNER, f_pages, NULL, NULL, 1},
    {IB_OP_SOLUTION_DEPLOY, IB_SVC_RUNNER, f_deploy, NULL, NULL, 0},
    {IB_OP_SOLUTION_DEPLOYED, IB_SVC_RUNNER, f_none, NULL, NULL, 1},
    {IB_OP_FLOW_RUN_BINARY, IB_SVC_RUNNER, f_run_binary, NULL, NULL, 0},
    {IB_OP_FLOW_RESULTS, IB_SVC_RUNNER, f_flow_results, NULL, NULL, 1},
};

const ib_op_spec *ib_op_find(const char *op)
{
    for (size_t i = 0; op && i < sizeof op_specs / sizeof op_specs[0]; i++)
        if (!strcmp(op_specs[i].op, op)) return &op_specs[i];
    return NULL;
}

static const char *type_word(ib_arg_type t)
{
    switch (t) {
    case IB_A_STRING: return "a string";
    case IB_A_OBJECT: return "an object";
    case IB_A_ARRAY: return "a list";
    case IB_A_BOOL: return "true or false";
    case IB_A_INT: return "a whole number";
    case IB_A_STRING_OR_ARRAY: return "a string or a list";
    }
    return "?";
}

static int type_ok(ib_arg_type t, const json_t *v)
{
    switch (t) {
    case IB_A_STRING: return json_is_string(v);
    case IB_A_OBJECT: return json_is_object(v);
    case IB_A_ARRAY: return json_is_array(v);
    case IB_A_BOOL: return json_is_boolean(v);
    case IB_A_INT: return json_is_integer(v);
    case IB_A_STRING_OR_ARRAY: return json_is_string(v) || json_is_array(v);
    }
    return 0;
}

ib_code ib_args_check(const ib_op_spec *spec, const json_t *args, ib_reply *rep)
{
    if (!json_is_object(args)) return ib_fail(rep, IB_BAD_REQUEST, "the request body must be a JSON object");
    for (const ib_field_spec *f = spec->fields; f->name; f++) {
        const json_t *v = json_object_get(args, f->name);
        if (!v || json_is_null(v)) {
            if (f->required) return ib_fail(rep, IB_BAD_REQUEST, "'%s' is required", f->name);
            continue;
        }
        if (!type_ok(f->type, v))
            return ib_fail(rep, IB_BAD_REQUEST, "'%s' must be %s", f->name, type_word(f->type));
        if (f->type == IB_A_STRING && f->required && json_string_length(v) == 0)
            return ib_fail(rep, IB_BAD_REQUEST, "'%s' must not be empty", f->name);
    }
    return IB_OK;
}

int ib_op_retry_safe(const char *op)
{
    if (op && !strcmp(op, IB_OP_PING)) return 1;
    const ib_op_spec *spec = ib_op_find(op);
    return spec && spec->retry_safe;
}

const char *ib_arg_str(const json_t *args, const char *name)
{
    return json_string_value(json_object_get(args, name));
}

int ib_stamp_touch(const char *stamp)
{
    char path[4096], line[64];
    ib_data_path(stamp, path, sizeof path);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int n = snprintf(line, sizeof line, "%lld.%09ld %d\n", (long long)ts.tv_sec, ts.tv_nsec, (int)getpid());
    int rc = ib_write_atomic(dirfd, slash + 1, line, (size_t)n);
    close(dirfd);
    return rc;
}
