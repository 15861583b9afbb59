/* ib_manifest: checks of a solution's package.json (solution-format.md). Required keys are checked for type
 * and form, known optional keys for type; every key, known or not, is kept untouched in the object. */
#include "ib_manifest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ib_semver.h"
#include "ib_utf8.h"

#include "ib_conv.h"
#include "ib_err.h"

#define fail ib_errf /* fail(err, errsz, fmt, ...): message, then -1 */

const char *ib_solution_name_problem(const char *name)
{
    if (!name || !*name) return "it is empty";
    size_t n = strlen(name);
    if (n > IB_SOLUTION_NAME_MAX) return "it is longer than 128 bytes";
    if (!ib_utf8_valid(name, n)) return "it is not valid UTF-8";
    /* Each name becomes a folder and a file name (<name>-<version>.ibsolution): nothing in it may act as a
     * path. */
    if (!strcmp(name, ".") || !strcmp(name, "..")) return "it is '.' or '..'";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/') return "it holds a '/'";
        if (c == '\\') return "it holds a '\\'";
        /* C0 controls, DEL, and C1 controls (U+0080-U+009F, 0xC2 0x80-0x9F in UTF-8) */
        if (c < 0x20 || c == 0x7f || (c == 0xc2 && i + 1 < n && (unsigned char)name[i + 1] <= 0x9f))
            return "it holds a control character";
    }
    if (name[0] == ' ') return "it starts with a space";
    if (name[n - 1] == ' ') return "it ends with a space";
    return NULL;
}

int ib_solution_name_ok(const char *name)
{
    return ib_solution_name_problem(name) == NULL;
}

/* At most max bytes of s, cut before a character that does not fit whole, so the message stays UTF-8 (JSON
 * needs it). */
static int shown_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max) return (int)n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) n--;
    return (int)n;
}

void ib_solution_name_error(const char *field, const char *name, char *out, size_t outsz)
{
    const char *why = ib_solution_name_problem(name);
    if (!name) name = "";
    /* 160 bytes show any refused name that is not far too long; a longer one is cut and marked. */
    int len = shown_len(name, 160);
    snprintf(out, outsz, "'%s' '%.*s%s' is not a solution name: %s (" IB_SOLUTION_NAME_RULE ")", field, len, name,
             name[len] ? "..." : "", why ? why : "it is refused");
}

const char *ib_solution_dir(const char *name, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s%s", name[0] == '.' ? " " : "", name);
    return out;
}

const char *ib_solution_from_dir(const char *dir, char *out, size_t outsz)
{
    /* Dot names are the folders' own (temporaries, locks); " .x" is the folder of ".x". */
    if (dir[0] == '.') return NULL;
    const char *name = dir[0] == ' ' ? dir + 1 : dir;
    if (dir[0] == ' ' && name[0] != '.') return NULL;
    if (!ib_solution_name_ok(name)) return NULL;
    snprintf(out, outsz, "%s", name);
    return out;
}

/* Strings as the original product writes them. */
static const char *const optional_strings[] = {"long_description", "solution_type", "icon_file", "visibility",
                                               "owner"};
/* Lists of strings in the original product's package.json (["solution"]); one string is still taken, as
 * manifests written for earlier ibsol versions have it. */
static const char *const optional_lists[] = {"accelerator_type", "industry", "business_vertical", "use_case"};

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

/* dependencies.models and dependencies.dev_exchange_packages: lists of "name==version", as the original
 * product's tools split them (name and version each non-empty around the first "=="). Other keys are kept
 * unchecked. */
static int check_dependencies(const json_t *deps, const char *file, char *err, size_t errsz)
{
    static const char *const lists[] = {"models", "dev_exchange_packages"};
    for (size_t i = 0; deps && i < sizeof lists / sizeof *lists; i++) {
        const json_t *l = json_object_get(deps, lists[i]);
        if (!l) continue;
        if (!json_is_array(l))
            return fail(err, errsz, "%s: 'dependencies.%s' must be a list of strings, not %s", file, lists[i],
                        type_word(l));
        for (size_t j = 0; j < json_array_size(l); j++) {
            const json_t *e = json_array_get(l, j);
            if (!json_is_string(e))
                return fail(err, errsz, "%s: 'dependencies.%s'[%zu] must be a string, not %s", file, lists[i], j,
                            type_word(e));
            const char *t = json_string_value(e), *eq = strstr(t, "==");
            if (!eq || eq == t || !eq[2])
                return fail(err, errsz,
                            "%s: 'dependencies.%s'[%zu] \"%.*s\" must be \"name==version\" (e.g. "
                            "\"my_model==0.0.1\")",
                            file, lists[i], j, shown_len(t, 100), t);
        }
    }
    return 0;
}

int ib_manifest_check(const json_t *m, const char *file, char *err, size_t errsz)
{
    const char *s = NULL; /* set by need_string; GCC's -O3 cannot see that and -Werror stops the release build */
    if (!json_is_object(m)) return fail(err, errsz, "%s: must be a JSON object", file);

    if (need_string(m, "name", file, err, errsz, &s)) return -1;
    const char *name = s;
    if (!ib_solution_name_ok(name)) {
        char why[IB_MSG_MAX];
        ib_solution_name_error("name", name, why, sizeof why);
        return fail(err, errsz, "%s: %s", file, why);
    }
    if (need_string(m, "version", file, err, errsz, &s)) return -1;
    if (ib_semver_parse(s, NULL) != 0)
        return fail(err, errsz,
                    "%s: 'version' \"%.*s\" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])",
                    file, shown_len(s, 100), s);
    /* <name>-<version>.ibsolution must be a file name the file system takes (255 bytes). */
    if (strlen(name) + 1 + strlen(s) + strlen(".ibsolution") > 255)
        return fail(err, errsz,
                    "%s: 'name' and 'version' are %zu bytes together; the archive's file name "
                    "<name>-<version>.ibsolution allows at most 243",
                    file, strlen(name) + strlen(s));
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
    for (size_t i = 0; i < sizeof optional_lists / sizeof *optional_lists; i++) {
        const char *key = optional_lists[i];
        const json_t *v = json_object_get(m, key);
        if (!v || json_is_string(v)) continue;
        if (!json_is_array(v))
            return fail(err, errsz, "%s: '%s' must be a list of strings, not %s", file, key, type_word(v));
        for (size_t j = 0; j < json_array_size(v); j++)
            if (!json_is_string(json_array_get(v, j)))
                return fail(err, errsz, "%s: '%s'[%zu] must be a string, not %s", file, key, j,
                            type_word(json_array_get(v, j)));
    }
    const json_t *v = json_object_get(m, "beta");
    if (v && !json_is_boolean(v))
        return fail(err, errsz, "%s: 'beta' must be a boolean, not %s", file, type_word(v));
    v = json_object_get(m, "encryption_config");
    if (v && !json_is_object(v))
        return fail(err, errsz, "%s: 'encryption_config' must be an object, not %s", file, type_word(v));
    v = json_object_get(m, "dependencies");
    if (v && !json_is_object(v))
        return fail(err, errsz, "%s: 'dependencies' must be an object, not %s", file, type_word(v));
    return check_dependencies(v, file, err, errsz);
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
