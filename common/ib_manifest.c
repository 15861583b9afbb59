/* ib_manifest: checks of a solution's package.json (solution-format.md). Required keys are checked for type
 * and form, known optional keys for type; every key, known or not, is kept untouched in the object. */
#include "ib_manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ib_semver.h"

#include "ib_conv.h"
#include "ib_err.h"

#define fail ib_errf /* fail(err, errsz, fmt, ...): message, then -1 */

int ib_solution_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return 0;
    }
    return 1;
}

static const char *const optional_strings[] = {"long_description", "solution_type",     "accelerator_type",
                                               "industry",         "business_vertical", "use_case",
                                               "icon_file",        "visibility"};

static const char *type_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static int need_string(const json_t *m, const char *key, const char *file, char *err, size_t errsz,
                       const char **val)
{
    const json_t *v = json_object_get(m, key);
    if (!v) return fail(err, errsz, "%s: '%s' is missing", file, key);
    if (!json_is_string(v))
        return fail(err, errsz, "%s: '%s' must be a string, not %s", file, key, type_word(v));
    *val = json_string_value(v);
    return 0;
}

int ib_manifest_check(const json_t *m, const char *file, char *err, size_t errsz)
{
    const char *s;
    if (!json_is_object(m)) return fail(err, errsz, "%s: must be a JSON object", file);

    if (need_string(m, "name", file, err, errsz, &s)) return -1;
    if (!ib_solution_name_ok(s))
        return fail(
            err, errsz,
            "%s: 'name' \"%.100s\" is not a valid solution name (1-64 of A-Za-z0-9._-, starting with a "
            "letter or digit)",
            file, s);
    if (need_string(m, "version", file, err, errsz, &s)) return -1;
    if (ib_semver_parse(s, NULL) != 0)
        return fail(err, errsz,
                    "%s: 'version' \"%.100s\" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])",
                    file, s);
    if (need_string(m, "short_description", file, err, errsz, &s)) return -1;

    const json_t *authors = json_object_get(m, "authors");
    if (!authors) return fail(err, errsz, "%s: 'authors' is missing", file);
    if (!json_is_array(authors) || json_array_size(authors) == 0)
        return fail(err, errsz, "%s: 'authors' must be a non-empty list of strings", file);
    for (size_t i = 0; i < json_array_size(authors); i++)
        if (!json_is_string(json_array_get(authors, i)))
            return fail(err, errsz, "%s: 'authors'[%zu] must be a string, not %s", file, i,
                        type_word(json_array_get(authors, i)));

    for (size_t i = 0; i < sizeof optional_strings / sizeof *optional_strings; i++) {
        const json_t *v = json_object_get(m, optional_strings[i]);
        if (v && !json_is_string(v))
            return fail(err, errsz, "%s: '%s' must be a string, not %s", file, optional_strings[i],
                        type_word(v));
    }
    const json_t *v = json_object_get(m, "beta");
    if (v && !json_is_boolean(v))
        return fail(err, errsz, "%s: 'beta' must be a boolean, not %s", file, type_word(v));
    v = json_object_get(m, "dependencies");
    if (v && !json_is_object(v))
        return fail(err, errsz, "%s: 'dependencies' must be an object, not %s", file, type_word(v));
    return 0;
}

json_t *ib_manifest_parse(const char *bytes, size_t len, const char *file, char *err, size_t errsz)
{
    json_error_t jerr;
    json_t *m = ib_json_loadb(bytes, len, JSON_REJECT_DUPLICATES, &jerr); /* depth-bounded */
    if (!m) {
        fail(err, errsz, "%s: invalid JSON at line %d column %d: %s", file, jerr.line, jerr.column,
             jerr.text);
        return NULL;
    }
    if (ib_manifest_check(m, file, err, errsz) != 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}
