/* ib_manifest: package.json of a solution, as the original product writes it. Required: name (see
 * IB_SOLUTION_NAME_RULE), version (semver), short_description (string), authors (non-empty list of strings).
 * Optional keys are type-checked (accelerator_type, industry, business_vertical, use_case: a list of strings or
 * one string; encryption_config: an object; owner, visibility, icon_file, ...: strings; beta: a boolean;
 * dependencies: {models: ["name==version"], dev_exchange_packages: [...]}) and every key is kept as it is. */
#ifndef IB_MANIFEST_H
#define IB_MANIFEST_H

#include <jansson.h>
#include <stddef.h>

/* Solution names as the original product has them ("Demo Solution", "Müller & Söhne (EU)"). */
#define IB_SOLUTION_NAME_MAX 128
#define IB_SOLUTION_NAME_RULE                                                                                \
    "names are 1-128 bytes of printable UTF-8 without '/' or '\\', not starting or ending with a space, "   \
    "not '.' or '..'"

/* NULL when name is a solution name; else why not, e.g. "it holds a '/'" or "it is longer than 128 bytes". */
const char *ib_solution_name_problem(const char *name);
int ib_solution_name_ok(const char *name);

/* The whole refusal: "'name' 'a/b' is not a solution name: it holds a '/' (names are ...)". The name is shown
 * whole (a longer one cut at a character boundary), so the caller sees which value was refused. */
void ib_solution_name_error(const char *field, const char *name, char *out, size_t outsz);

/* The folder name a solution is kept under in marketplace/ and installed/. It is the name itself, except that a
 * name starting with '.' gets one leading space (no name starts with a space): those folders hold dot-named
 * temporaries and locks, which a solution's folder must never look like. Returns out. */
const char *ib_solution_dir(const char *name, char *out, size_t outsz);
/* The solution name a folder of marketplace/ or installed/ is kept for, or NULL for a folder that is no
 * solution's (temporaries, locks). Returns out. */
const char *ib_solution_from_dir(const char *dir, char *out, size_t outsz);

/* 0 when m is a valid manifest; -1 with a message naming `file` and the field, e.g.
 * "package.json: 'version' \"1.0\" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])". */
int ib_manifest_check(const json_t *m, const char *file, char *err, size_t errsz);

/* Parses bytes as a JSON object (duplicate keys refused) and checks it; NULL with a message on error
 * ("package.json: invalid JSON at line 3 column 5: ..."). */
json_t *ib_manifest_parse(const char *bytes, size_t len, const char *file, char *err, size_t errsz);

#endif
