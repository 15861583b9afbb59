/* ib_manifest: package.json of a solution. Required: name (1-64 of [A-Za-z0-9._-], starting with a letter or
 * digit), version (semver), short_description (string), authors (non-empty list of strings). Optional keys are
 * type-checked (strings, `beta` bool, `dependencies` object) and every key is kept as it is. */
#ifndef IB_MANIFEST_H
#define IB_MANIFEST_H

#include <jansson.h>
#include <stddef.h>

int ib_solution_name_ok(const char *name);

/* 0 when m is a valid manifest; -1 with a message naming `file` and the field, e.g.
 * "package.json: 'version' \"1.0\" is not a semantic version (MAJOR.MINOR.PATCH[-prerelease])". */
int ib_manifest_check(const json_t *m, const char *file, char *err, size_t errsz);

/* Parses bytes as a JSON object (duplicate keys refused) and checks it; NULL with a message on error
 * ("package.json: invalid JSON at line 3 column 5: ..."). */
json_t *ib_manifest_parse(const char *bytes, size_t len, const char *file, char *err, size_t errsz);

#endif
