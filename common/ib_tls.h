/* ib_tls: trust between daemons. Every socket between daemons (service REQ/REP, the runners' dial to the
 * gateway, the events PUB/SUB) is started here: a tls+tcp://HOST:PORT URL gets nng's TLS transport (mbedTLS in
 * Debian's libnng) with mutual authentication: each side presents IBSOL_TLS_CERT (with IBSOL_TLS_KEY) and
 * requires the peer's certificate to be signed by IBSOL_TLS_CA. A peer without a certificate, or with one from
 * another CA, never gets a connection, so it cannot send an envelope claiming any user or role. The CA is the
 * trust: sign certificates only for ibsol daemons and the hosts that run ibsol-op (host names are not checked,
 * so one certificate may serve a host under any of its addresses). Other URLs (ipc://, tcp://, inproc://) are
 * started as they are. */
#ifndef IB_TLS_H
#define IB_TLS_H

#include <nng/nng.h>
#include <stddef.h>

/* Reads and checks IBSOL_TLS_CERT, IBSOL_TLS_KEY and IBSOL_TLS_CA (once; later calls return the first
 * answer): each set, readable, PEM; the key matches the certificate; the certificate is signed by the CA,
 * valid now, and usable as TLS server and client. 0, or -1 with a message naming the setting and file. */
int ib_tls_load(char *err, size_t errsz);

/* Whether url uses the TLS transport (tls+tcp://, tls+tcp4://, tls+tcp6://). */
int ib_url_is_tls(const char *url);

/* Listens on (listen set) or dials (in the background, re-dialing until closed) url on s, with the TLS
 * settings for a tls+tcp:// URL. setting names the URL's setting in messages ("IBSOL_RUNNER_URL: cannot dial
 * '...': ..."). 0 or -1. */
int ib_endpoint_start(nng_socket s, const char *url, int listen, const char *setting, char *err, size_t errsz);

/* Drops this module's references to its TLS configurations (sockets hold their own); before nng_fini(). */
void ib_tls_free(void);

#endif
