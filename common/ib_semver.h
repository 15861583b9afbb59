/* ib_semver: semantic versions MAJOR.MINOR.PATCH[-prerelease] (semver.org 2.0 precedence; "+build" is refused
 * because the marketplace keys versions by their exact text). */
#ifndef IB_SEMVER_H
#define IB_SEMVER_H

#include <stdint.h>

typedef struct ib_semver {
    uint64_t major, minor, patch;
    char pre[64]; /* "" when none */
} ib_semver;

/* 0 when s is a valid version (no leading zeros in numeric parts, identifiers [0-9A-Za-z-]); -1 otherwise. */
int ib_semver_parse(const char *s, ib_semver *out);
/* <0, 0, >0 by precedence (1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0). */
int ib_semver_cmp(const ib_semver *a, const ib_semver *b);
/* Compares two version strings; invalid strings sort before valid ones, then by strcmp. For qsort-like use. */
int ib_semver_cmp_str(const char *a, const char *b);

#endif
