/*  gateway/address.h: who a client is, by address: behind a trusted proxy
    or not, and the key its limits are counted under.

    A connection's peer is the client, unless the peer is one of
    http.trusted_proxies (the load balancers in front). Then the client is
    the right-most address in X-Forwarded-For that is not a trusted proxy:
    each proxy appends the address it took the request from, so entries to
    the right of the last untrusted one were written by our own proxies,
    and anything to its left may be whatever a client chose to send.

    Limits count per client key: an IPv4 address as it is, an IPv6 address
    by its /64 (one subscriber is usually given a whole /64, so counting
    per /128 would give one client 2^64 keys), an IPv4-mapped IPv6 address
    as the IPv4 address it maps.

    Plain functions and data; no state, no HTTP.
*/
#ifndef RP_GATEWAY_ADDRESS_H
#define RP_GATEWAY_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RP_PROXIES_MAX 32
#define RP_ADDRESS_KEY_MAX 64           //  "ffff:ffff:ffff:ffff::/64" and more

//  One address or network: 16 bytes, IPv4 as IPv4-mapped IPv6
typedef struct {
    uint8_t addr [16];
    int prefix;                         //  bits that must match (0..128)
} rp_net_t;

typedef struct {
    rp_net_t nets [RP_PROXIES_MAX];
    int count;
} rp_proxies_t;

//  Parse "10.0.0.0/8, 192.168.1.4, 2001:db8::/32" (addresses or CIDRs,
//  comma- or space-separated; "" is none). 0, or -1 with err naming the
//  entry that is not one.
int rp_proxies_parse (const char *text, rp_proxies_t *proxies, char *err, size_t errlen);

//  Whether an address (16 bytes, IPv4-mapped for IPv4) is a trusted proxy.
bool rp_proxies_has (const rp_proxies_t *proxies, const uint8_t addr [16]);

//  A socket address as 16 bytes (IPv4-mapped for IPv4); false for other families.
bool rp_address_from_sockaddr (const struct sockaddr *sa, uint8_t addr [16]);

//  The client of a request from peer (16 bytes) with X-Forwarded-For xff
//  (may be NULL): peer itself unless it is a trusted proxy; then the
//  right-most entry of xff that is not a trusted proxy, or the left-most
//  one when all are, or peer when xff has none or an entry that is not an
//  address (a proxy that writes what we cannot read is not believed).
void rp_address_client (const rp_proxies_t *proxies, const uint8_t peer [16], const char *xff,
                        uint8_t client [16]);

//  The key limits are counted under, as text (see above).
void rp_address_key (const uint8_t addr [16], char key [RP_ADDRESS_KEY_MAX]);

#endif
