/* floor: the anchor for solution/run over a folder (issue 12, item 1). What no batch can do without: each file
 * read and loaded by the engine's document loader (Poppler for a PDF, one text pass giving its words and boxes;
 * Tesseract for a page without a text layer or an image, as the flow's OCR setting asks), on every core at
 * once, in one process: no daemons, no jobs, no records, no claims, no output folder, no fsync.
 *
 *   tests/bench/run.sh builds it against build-bench's engine library (see there);
 *   ./floor [--threads N] [--ocr] FOLDER
 * Prints one JSON line: {"files", "pages", "failed", "seconds", "threads"}. N defaults to the cores. */
#include "ib_doc.h"
#include "ib_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char **names;
static size_t nnames;
static int dirfd_in, ocr;
static atomic_size_t next_file, pages, failed;

static void *work(void *arg)
{
    (void)arg;
    for (size_t i; (i = atomic_fetch_add(&next_file, 1)) < nnames;) {
        size_t len = 0;
        char *bytes = ib_read_file_at(dirfd_in, names[i], (size_t)256 << 20, &len);
        char err[512];
        ib_doc_opts o = {.ocr = ocr};
        ib_doc *doc = bytes ? ib_doc_load(names[i], bytes, len, &o, err, sizeof err) : NULL;
        if (doc)
            atomic_fetch_add(&pages, doc->npages);
        else
            atomic_fetch_add(&failed, 1);
        ib_doc_free(doc);
        free(bytes);
    }
    ib_doc_thread_cleanup();
    return NULL;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    long threads = sysconf(_SC_NPROCESSORS_ONLN);
    const char *folder = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atol(argv[++i]);
        else if (!strcmp(argv[i], "--ocr"))
            ocr = 1;
        else
            folder = argv[i];
    }
    if (!folder || threads < 1 || threads > 256) {
        fprintf(stderr, "usage: %s [--threads N] [--ocr] FOLDER\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(folder);
    if (!d || (dirfd_in = open(folder, O_RDONLY | O_DIRECTORY)) < 0) {
        perror(folder);
        return 1;
    }
    size_t cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (nnames == cap && !(names = realloc(names, (cap = cap ? cap * 2 : 256) * sizeof *names))) return 1;
        if (!(names[nnames++] = strdup(e->d_name))) return 1;
    }
    closedir(d);
    qsort(names, nnames, sizeof *names, by_name);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t tid[256];
    for (long t = 0; t < threads; t++) pthread_create(&tid[t], NULL, work, NULL);
    for (long t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("{\"files\": %zu, \"pages\": %zu, \"failed\": %zu, \"seconds\": %.4f, \"threads\": %ld}\n", nnames,
           atomic_load(&pages), atomic_load(&failed), (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
           threads);
    for (size_t i = 0; i < nnames; i++) free(names[i]);
    free(names);
    close(dirfd_in);
    return 0;
}
