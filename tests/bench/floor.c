/* floor: the anchor for solution/run over a folder (issue 12, item 1). What no batch can do without: each file
 * read and loaded by the engine's document loader (Poppler for a PDF, one text pass giving its words and boxes;
 * Tesseract for a page without a text layer or an image, as the flow's OCR setting asks), on every core at
 * once: no daemons, no jobs, no records, no claims, no output folder, no fsync.
 *
 *   tests/bench/run.sh builds it against build-bench's engine library (see there);
 *   ./floor [--procs N] [--ocr] FOLDER
 * Prints one JSON line: {"files", "pages", "failed", "seconds", "procs"}. N defaults to the cores. The workers are
 * processes, as the runners are (nothing process-wide in Poppler or the allocator is shared between them, in the
 * floor or in what it is compared with), taking files from one shared counter. Before the clock starts, every
 * worker loads the folder's first file (and, with --ocr, its first image) once, untimed: the runners are warm
 * (fontconfig and Poppler set up, an OCR engine per worker), and a cold start would put a good part of a second
 * of set-up into a floor of a few tenths. */
#include "ib_doc.h"
#include "ib_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char **names;
static size_t nnames, warm[2], nwarm;
static int dirfd_in, ocr;
/* shared by the worker processes (an anonymous shared mapping made before they fork) */
static struct shared {
    atomic_size_t next_file, pages, failed;
    pthread_barrier_t ready;
} *sh;

/* Loads file i; its pages, or -1 when it cannot be loaded. */
static long load(size_t i)
{
    size_t len = 0;
    char *bytes = ib_read_file_at(dirfd_in, names[i], (size_t)256 << 20, &len);
    char err[512];
    ib_doc_opts o = {.ocr = ocr};
    ib_doc *doc = bytes ? ib_doc_load(names[i], bytes, len, &o, err, sizeof err) : NULL;
    long n = doc ? (long)doc->npages : -1;
    ib_doc_free(doc);
    free(bytes);
    return n;
}

static void work(void)
{
    for (size_t k = 0; k < nwarm; k++) load(warm[k]);
    pthread_barrier_wait(&sh->ready);
    for (size_t i; (i = atomic_fetch_add(&sh->next_file, 1)) < nnames;) {
        long n = load(i);
        if (n >= 0)
            atomic_fetch_add(&sh->pages, (size_t)n);
        else
            atomic_fetch_add(&sh->failed, 1);
    }
    ib_doc_thread_cleanup();
}

static int is_image(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".tif") || !strcasecmp(dot, ".tiff") ||
                   !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    long procs = sysconf(_SC_NPROCESSORS_ONLN);
    const char *folder = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--procs") && i + 1 < argc)
            procs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--ocr"))
            ocr = 1;
        else
            folder = argv[i];
    }
    if (!folder || procs < 1 || procs > 256) {
        fprintf(stderr, "usage: %s [--procs N] [--ocr] FOLDER\n", argv[0]);
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
    if (nnames) warm[nwarm++] = 0;
    for (size_t i = 0; ocr && i < nnames; i++)
        if (is_image(names[i])) {
            warm[nwarm++] = i;
            break;
        }
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_barrierattr_t ba;
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    if (sh == MAP_FAILED || pthread_barrier_init(&sh->ready, &ba, (unsigned)procs + 1) != 0) {
        perror("floor: shared state");
        return 1;
    }
    for (long k = 0; k < procs; k++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("floor: fork");
            return 1;
        }
        if (pid == 0) {
            work();
            _exit(0);
        }
    }
    pthread_barrier_wait(&sh->ready); /* every worker warm */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int status, bad = 0;
    while (wait(&status) > 0) bad |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (bad) {
        fprintf(stderr, "floor: a worker process failed\n");
        return 1;
    }
    printf("{\"files\": %zu, \"pages\": %zu, \"failed\": %zu, \"seconds\": %.4f, \"procs\": %ld}\n", nnames,
           atomic_load(&sh->pages), atomic_load(&sh->failed),
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9, procs);
    pthread_barrier_destroy(&sh->ready);
    pthread_barrierattr_destroy(&ba);
    munmap(sh, sizeof *sh);
    for (size_t i = 0; i < nnames; i++) free(names[i]);
    free(names);
    close(dirfd_in);
    return 0;
}
