/* ib_tls: the TLS settings, checked once with OpenSSL (clear messages: which file, what is wrong), then handed
 * to nng as two configurations (client for dialers, server for listeners) that every tls+tcp endpoint shares. */
#include "ib_tls.h"

#include "ib_err.h"
#include "ib_settings.h"

#include <errno.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fail ib_errf
#define PEM_MAX (1 << 20) /* a certificate chain or key file; far above any real one */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int loaded;                 /* 0: not yet, 1: ok, -1: failed (load_err says why) */
static char load_err[1024];
static nng_tls_config *cfg[2];     /* [0] client (dialers), [1] server (listeners) */

int ib_url_is_tls(const char *url)
{
    return !strncmp(url, "tls+tcp://", 10) || !strncmp(url, "tls+tcp4://", 11) || !strncmp(url, "tls+tcp6://", 11);
}

/* The whole file, NUL-terminated (mbedTLS parses PEM text up to its NUL), or NULL with a message. */
static char *read_pem(const char *setting, const char *path, char *err, size_t errsz)
{
    if (!path || !path[0]) {
        fail(err, errsz, "%s is not set: tls+tcp:// URLs need IBSOL_TLS_CERT, IBSOL_TLS_KEY and IBSOL_TLS_CA (PEM "
                         "files)", setting);
        return NULL;
    }
    FILE *fp = fopen(path, "re");
    if (!fp) {
        fail(err, errsz, "%s: cannot open '%s': %s", setting, path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf ? fread(buf, 1, PEM_MAX + 1, fp) : 0;
    int bad = !buf || ferror(fp) || n > PEM_MAX;
    if (bad)
        fail(err, errsz, "%s: cannot read '%s': %s", setting, path,
             !buf ? "out of memory" : n > PEM_MAX ? "larger than 1 MiB" : strerror(errno));
    fclose(fp);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static const char *ssl_why(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    return why ? why : "no PEM data";
}

/* The OpenSSL checks: parse each file, match the key, verify the certificate against the CA. */
static int check(const char *cert_pem, const char *key_pem, const char *ca_pem, char *err, size_t errsz)
{
    const char *cert_path = ib_set.tls_cert, *key_path = ib_set.tls_key, *ca_path = ib_set.tls_ca;
    int rc = -1;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *b = NULL;
    ERR_clear_error();
    if (!store || !ctx || !chain) {
        fail(err, errsz, "IBSOL_TLS_CERT: out of memory");
        goto out;
    }
    b = BIO_new_mem_buf(cert_pem, -1);
    if (!b || !(cert = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        fail(err, errsz, "IBSOL_TLS_CERT: '%s' holds no PEM certificate (%s)", cert_path, ssl_why());
        goto out;
    }
    for (X509 *more; (more = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL;) /* intermediates, if any */
        if (!sk_X509_push(chain, more)) X509_free(more);
    BIO_free(b);
    b = NULL;
    ERR_clear_error();
    /* An empty passphrase callback: an encrypted key fails here instead of prompting on the terminal. */
    b = BIO_new_mem_buf(key_pem, -1);
    if (!b || !(key = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)""))) {
        fail(err, errsz, "IBSOL_TLS_KEY: '%s' holds no unencrypted PEM private key (%s)", key_path, ssl_why());
        goto out;
    }
    BIO_free(b);
    b = NULL;
    if (X509_check_private_key(cert, key) != 1) {
        fail(err, errsz, "IBSOL_TLS_KEY: '%s' is not the key of the certificate in IBSOL_TLS_CERT '%s'", key_path,
             cert_path);
        goto out;
    }
    b = BIO_new_mem_buf(ca_pem, -1);
    int ncas = 0;
    for (X509 *ca; b && (ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL; X509_free(ca))
        if (X509_STORE_add_cert(store, ca) == 1) ncas++;
    if (ncas == 0) {
        fail(err, errsz, "IBSOL_TLS_CA: '%s' holds no PEM certificate", ca_path);
        goto out;
    }
    if (X509_STORE_CTX_init(ctx, store, cert, chain) != 1 || X509_verify_cert(ctx) != 1) {
        fail(err, errsz, "IBSOL_TLS_CERT: '%s' is not trusted by the CA in IBSOL_TLS_CA '%s': %s", cert_path, ca_path,
             X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    /* Each daemon both listens and dials with the one certificate. */
    if (X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0) != 1 ||
        X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0) != 1) {
        fail(err, errsz, "IBSOL_TLS_CERT: '%s' cannot serve as both TLS server and client (its extendedKeyUsage "
                         "must allow serverAuth and clientAuth, or be absent)", cert_path);
        goto out;
    }
    rc = 0;
out:
    BIO_free(b);
    X509_free(cert);
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    ERR_clear_error();
    return rc;
}

static void free_configs(void)
{
    for (int i = 0; i < 2; i++)
        if (cfg[i]) {
            nng_tls_config_free(cfg[i]);
            cfg[i] = NULL;
        }
}

static int make_configs(const char *cert_pem, const char *key_pem, const char *ca_pem, char *err, size_t errsz)
{
    static const nng_tls_mode modes[2] = {NNG_TLS_MODE_CLIENT, NNG_TLS_MODE_SERVER};
    for (int i = 0; i < 2; i++) {
        int rv = nng_tls_config_alloc(&cfg[i], modes[i]);
        if (rv != 0) {
            /* NNG_ENOTSUP: a libnng built without TLS; Debian 12's libnng1 has it (mbedTLS) */
            cfg[i] = NULL;
            return fail(err, errsz, "tls+tcp:// needs libnng with TLS: %s", nng_strerror(rv));
        }
        if ((rv = nng_tls_config_auth_mode(cfg[i], NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
            (rv = nng_tls_config_ca_chain(cfg[i], ca_pem, NULL)) != 0)
            return fail(err, errsz, "IBSOL_TLS_CA: mbedTLS refused '%s': %s", ib_set.tls_ca, nng_strerror(rv));
        if ((rv = nng_tls_config_own_cert(cfg[i], cert_pem, key_pem, NULL)) != 0)
            return fail(err, errsz, "IBSOL_TLS_CERT, IBSOL_TLS_KEY: mbedTLS refused '%s' with '%s' (an Ed25519 key? "
                                    "use an EC P-256 or RSA key): %s", ib_set.tls_cert, ib_set.tls_key,
                        nng_strerror(rv));
    }
    return 0;
}

int ib_tls_load(char *err, size_t errsz)
{
    pthread_mutex_lock(&mu);
    if (!loaded) {
        char *cert = read_pem("IBSOL_TLS_CERT", ib_set.tls_cert, load_err, sizeof load_err);
        char *key = cert ? read_pem("IBSOL_TLS_KEY", ib_set.tls_key, load_err, sizeof load_err) : NULL;
        char *ca = key ? read_pem("IBSOL_TLS_CA", ib_set.tls_ca, load_err, sizeof load_err) : NULL;
        loaded = ca && check(cert, key, ca, load_err, sizeof load_err) == 0 &&
                         make_configs(cert, key, ca, load_err, sizeof load_err) == 0
                     ? 1
                     : -1;
        if (key) memset(key, 0, strlen(key)); /* the private key does not linger in freed memory */
        free(cert);
        free(key);
        free(ca);
        if (loaded < 0) free_configs();
    }
    int rc = loaded > 0 ? 0 : fail(err, errsz, "%s", load_err);
    pthread_mutex_unlock(&mu);
    return rc;
}

int ib_endpoint_start(nng_socket s, const char *url, int listen, const char *setting, char *err, size_t errsz)
{
    int rv;
    if (!ib_url_is_tls(url)) {
        rv = listen ? nng_listen(s, url, NULL, 0) : nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK);
    } else {
        char why[1024];
        if (ib_tls_load(why, sizeof why) < 0) return fail(err, errsz, "%s '%s': %s", setting, url, why);
        if (listen) {
            nng_listener l = NNG_LISTENER_INITIALIZER;
            rv = nng_listener_create(&l, s, url);
            if (rv == 0 && (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg[1])) == 0)
                rv = nng_listener_start(l, 0);
            if (rv != 0 && nng_listener_id(l) > 0) nng_listener_close(l);
        } else {
            nng_dialer d = NNG_DIALER_INITIALIZER;
            rv = nng_dialer_create(&d, s, url);
            if (rv == 0 && (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg[0])) == 0)
                rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
            if (rv != 0 && nng_dialer_id(d) > 0) nng_dialer_close(d);
        }
    }
    if (rv != 0)
        return fail(err, errsz, "%s: cannot %s '%s': %s", setting, listen ? "listen on" : "dial", url,
                    nng_strerror(rv));
    return 0;
}

void ib_tls_free(void)
{
    pthread_mutex_lock(&mu);
    free_configs();
    loaded = 0;
    pthread_mutex_unlock(&mu);
}
