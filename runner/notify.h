/* notify: tells the outside world that a job ended. Webhook: POST {status, msg?, job_id, input_folder,
 * output_folder} as JSON with the configured headers (libcurl), retried with exponential backoff up to
 * `retries` more times on a connection error, a timeout or a 5xx/429 answer. Email: one RFC 5322 message per
 * address written atomically to <data>/outbox/, then handed to the sendmail-compatible command when one is set
 * (`cmd -t -i`, message on stdin). Neither ever fails the job: outcomes are returned for the job record. */
#ifndef RUNNER_NOTIFY_H
#define RUNNER_NOTIFY_H

#include <jansson.h>

typedef struct notify_cfg {
    const char *outbox_dir;  /* <data>/outbox */
    const char *sendmail;    /* "" = only write to the outbox */
    const char *mail_from;   /* From: address */
    int webhook_retries;     /* retries after the first attempt (7) */
    int webhook_backoff_ms;  /* first retry delay; doubles each time (500) */
    int webhook_timeout_ms;  /* per attempt (10000) */
    /* Webhooks may reach loopback, link-local, private (RFC 1918, shared 100.64/10, IPv6 unique-local),
     * unspecified, multicast and reserved addresses, IPv4-mapped or embedded forms included
     * (IBSOL_WEBHOOK_ALLOW_PRIVATE). Off: a job's settings must not make the server call its own network. */
    int allow_private;
} notify_cfg;

/* Checks settings.webhook_config ({"url": http(s) URL, "headers": {name: string}}) and
 * settings.notification_emails (list of addresses or one comma-separated string; "" entries ignored).
 * The URL's host is resolved now: an address webhooks may not reach (see allow_private) is refused, naming
 * the URL and the address; a name that does not resolve now is let through (delivery checks again, and every
 * address it connects to). 0, or -1 with a message naming the field ("settings.webhook_config.url must be an
 * http:// or https:// URL"). */
int notify_check_settings(const notify_cfg *cfg, const json_t *settings, char *err, size_t errsz);

/* Sends the webhook of a finished job: `event` is the JSON body to POST. Blocks through the retries (call it
 * from a thread that may wait). Every address it is about to connect to is checked as above (so a name that
 * resolves differently now cannot reach what the check refused), and proxy settings of the environment are
 * not used (the address connected to is the one checked). Returns a new object for the job record:
 * {"url", "delivered": bool, "attempts": n, "http_status": s?, "error": "..."?}. */
json_t *notify_webhook(const notify_cfg *cfg, const json_t *webhook_config, const json_t *event);

/* Writes (and sends, when configured) one email per address about the finished job. `job` is the job's
 * public status object (job_id, status, curMsg, run_summary, output_folder...). Returns a new list for the
 * job record: [{"to", "file": outbox file name, "sent": bool, "error"?}]. */
json_t *notify_emails(const notify_cfg *cfg, const json_t *addresses, const json_t *job);

/* Process-wide set-up of libcurl: call notify_global_init once before any thread sends a webhook (the runner's
 * start) and notify_global_cleanup after the last one ended (its stop). Counted, so tests may nest them. */
void notify_global_init(void);
void notify_global_cleanup(void);
/* For shutdown: backoff sleeps end at once, transfers in flight are aborted, nothing more is retried, so every
 * notify_webhook call returns promptly (not delivered, "error" says why). Until the next notify_global_init. */
void notify_abort(void);

#endif
