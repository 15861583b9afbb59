/* ib_pipes: a small table of (socket, pipe, address), filled by nng's pipe notifications. */
#include "ib_pipes.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_PIPES 1024

typedef struct entry {
    int sock, local; /* sock 0: free */
    nng_pipe pipe;
    char addr[IB_ADDR_MAX];
} entry;

static entry table[MAX_PIPES];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int format_addr(const nng_sockaddr *sa, char *out, size_t outsz)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->s_family == NNG_AF_INET) {
        if (!inet_ntop(AF_INET, &sa->s_in.sa_addr, ip, sizeof ip)) return -1;
        snprintf(out, outsz, "%s:%u", ip, (unsigned)ntohs(sa->s_in.sa_port));
        return 0;
    }
    if (sa->s_family == NNG_AF_INET6) {
        if (!inet_ntop(AF_INET6, sa->s_in6.sa_addr, ip, sizeof ip)) return -1;
        snprintf(out, outsz, "[%s]:%u", ip, (unsigned)ntohs(sa->s_in6.sa_port));
        return 0;
    }
    return -1; /* ipc, inproc: not tracked */
}

static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    int local = arg != NULL;
    nng_socket s = nng_pipe_socket(p);
    int sid = nng_socket_id(s);
    pthread_mutex_lock(&mu);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        nng_sockaddr sa;
        char addr[IB_ADDR_MAX];
        if (nng_pipe_get_addr(p, local ? NNG_OPT_LOCADDR : NNG_OPT_REMADDR, &sa) == 0 &&
            format_addr(&sa, addr, sizeof addr) == 0)
            for (int i = 0; i < MAX_PIPES; i++)
                if (!table[i].sock) {
                    table[i] = (entry){sid, local, p, ""};
                    snprintf(table[i].addr, sizeof table[i].addr, "%s", addr);
                    break;
                }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        for (int i = 0; i < MAX_PIPES; i++)
            if (table[i].sock == sid && nng_pipe_id(table[i].pipe) == nng_pipe_id(p)) table[i].sock = 0;
    }
    pthread_mutex_unlock(&mu);
}

int ib_pipes_watch(nng_socket s, int local)
{
    /* the callback's argument carries which address to keep: non-NULL for local */
    void *arg = local ? (void *)&table : NULL;
    int rv = nng_pipe_notify(s, NNG_PIPE_EV_ADD_POST, on_pipe, arg);
    if (rv == 0) rv = nng_pipe_notify(s, NNG_PIPE_EV_REM_POST, on_pipe, arg);
    return rv;
}

size_t ib_pipes_addrs(nng_socket s, char (*out)[IB_ADDR_MAX], size_t max)
{
    size_t n = 0;
    int sid = nng_socket_id(s);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_PIPES && n < max; i++)
        if (table[i].sock == sid) memcpy(out[n++], table[i].addr, IB_ADDR_MAX);
    pthread_mutex_unlock(&mu);
    return n;
}

int ib_pipes_close_addr(nng_socket s, const char *addr)
{
    nng_pipe found[16];
    int n = 0, sid = nng_socket_id(s);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < MAX_PIPES && n < 16; i++)
        if (table[i].sock == sid && !strcmp(table[i].addr, addr)) found[n++] = table[i].pipe;
    pthread_mutex_unlock(&mu);
    /* outside the lock: closing runs the REM_POST notification, which takes it */
    for (int i = 0; i < n; i++) nng_pipe_close(found[i]);
    return n;
}
