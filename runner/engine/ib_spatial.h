/* ib_spatial: the spatial formula functions (scan_right, scan_below, scan_box) over an ib_doc. They find an
 * anchor phrase on the page and return references to the words around it, so the evaluator can build both the
 * text value and its provenance (page and bounding box) from one result.
 *
 * Return codes: 0 the anchor was found (the word list may still be empty: nothing right of / below / in the
 * box), 1 the anchor does not occur (or is empty), -1 out of memory or a NULL argument. */
#ifndef IB_SPATIAL_H
#define IB_SPATIAL_H

#include "ib_doc.h"

#include <stddef.h>
#include <stdint.h>

/* A column gap: a horizontal gap between two words wider than this many typical character widths of the
 * line (the median width per character of the line's words; 1 for plain text, so 3 or more spaces). */
#define IB_SPATIAL_GAP_CHARS 2.5

typedef struct ib_wref {
    uint32_t page, word; /* index into doc->pages, and into that page's words */
} ib_wref;

typedef struct ib_wlist {
    ib_wref *refs; /* malloc'd, NULL when n == 0; in reading order of the result: by line, then by x */
    size_t n;
} ib_wlist;

typedef struct ib_anchor {
    uint32_t page, line;  /* where it matched */
    uint32_t first, last; /* positions in that line's words[] (not page word indices), inclusive */
    ib_bbox box;          /* union of the matched words' boxes */
} ib_anchor;

/* Finds the first occurrence of anchor in reading order: pages in order, lines top to bottom, left to right
 * on a line. The anchor's words (split on white space) are matched against consecutive words of one visual
 * line with white space ignored, so "Name:" matches the words "Name" ":" and "Due Date" matches "DueDate".
 * The match must start at the start of a word and end at the end of a word, except that characters of the
 * first or last matched word left outside the match may be punctuation (no letters or digits): "Name"
 * matches the word "Name:", "Total" matches "(Total", but "Total" does not match "Totals". The whole document
 * is searched case-sensitively first; only if that finds nothing, case-insensitively (simple per-character
 * lower-casing). Returns 0 / 1 / -1. */
int ib_anchor_find(const ib_doc *doc, const char *anchor, ib_anchor *out);

/* The words right of the anchor on its visual line: the first word after the anchor whatever its distance
 * (labels and values are often far apart in forms), then the following words up to the first gap wider than
 * IB_SPATIAL_GAP_CHARS character widths (the next column). */
int ib_scan_right(const ib_doc *doc, const char *anchor, ib_wlist *out);

/* The words under the anchor: on the first line below the anchor's line (same page) that has a word
 * horizontally overlapping the anchor's x-range, the overlapping words (a partial overlap takes the whole
 * word), extended left and right over neighbouring words of that line closer than a column gap, so a value
 * wider than its header ("Due Date" over "March 15, 2024") comes back whole. The widening never takes in a
 * word ending in ':' (a label: under "12345" in "Date: 03/15/2024" only the date is taken). Lines whose
 * middle is not below the anchor's bottom edge are skipped. */
int ib_scan_below(const ib_doc *doc, const char *anchor, ib_wlist *out);

/* The words whose centre lies in the box x in [anchor.x0, anchor.x1 + right], y in [anchor.y0, anchor.y1 +
 * below] on the anchor's page, the anchor's own words excluded. right and below are in the document's box
 * units: points for PDF and images, character columns and lines for plain text (so below = 2 takes the two
 * lines under the anchor's line). Negative values count as 0. */
int ib_scan_box(const ib_doc *doc, const char *anchor, double right, double below, ib_wlist *out);

void ib_wlist_free(ib_wlist *l); /* frees refs and empties the list; NULL is fine */

/* The words as text: words of one line joined by a single space, lines (and pages) by "\n". Returns a
 * malloc'd string ("" for an empty list) or NULL on out of memory. */
char *ib_wlist_text(const ib_doc *doc, const ib_wlist *l);

typedef struct ib_pbox {
    uint32_t page;
    ib_bbox box;
} ib_pbox;

/* The union bounding box of the words on each page, in page order (provenance). *out is malloc'd (NULL
 * when the list is empty), *n its length. Returns 0 or -1. */
int ib_wlist_bboxes(const ib_doc *doc, const ib_wlist *l, ib_pbox **out, size_t *n);

#endif
