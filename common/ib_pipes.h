/* ib_pipes: which TCP peers a socket is connected to, by address. nng's TCP pipes stay "up" while a peer's host
 * is cut off (the kernel retransmits for many minutes), so a REQ socket keeps sending a share of its requests
 * into the void. Runners report the local addresses of their connections in their heartbeats; when a runner
 * falls silent, the gateway closes the pipes coming from those addresses, and nng routes around them. Only
 * tcp pipes are tracked: an ipc peer that dies closes its connection by itself. */
#ifndef IB_PIPES_H
#define IB_PIPES_H

#include <nng/nng.h>
#include <stddef.h>

#define IB_ADDR_MAX 64

/* Starts tracking the pipes of s, by their local (`local` set) or remote address. 0 or an nng error. */
int ib_pipes_watch(nng_socket s, int local);
/* The tracked addresses of s ("10.0.0.5:41234", "[fd00::5]:41234"), at most max. */
size_t ib_pipes_addrs(nng_socket s, char (*out)[IB_ADDR_MAX], size_t max);
/* Closes every pipe of s with this address; returns how many. */
int ib_pipes_close_addr(nng_socket s, const char *addr);

#endif
