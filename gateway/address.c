/*  gateway/address.c: see address.h. */
#include "gateway/address.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t s_mapped [12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

//  One address in text ("192.0.2.1", "2001:db8::1", "[2001:db8::1]") into
//  16 bytes; *v4 says which it was. -1 when it is neither.
static int
s_parse (const char *text, size_t len, uint8_t addr [16], bool *v4)
{
    char buffer [64];
    if (len >= 2 && text [0] == '[' && text [len - 1] == ']') {
        text++;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buffer)
        return -1;
    memcpy (buffer, text, len);
    buffer [len] = 0;
    struct in_addr in4;
    if (inet_pton (AF_INET, buffer, &in4) == 1) {
        memcpy (addr, s_mapped, 12);
        memcpy (addr + 12, &in4, 4);
        *v4 = true;
        return 0;
    }
    if (inet_pton (AF_INET6, buffer, addr) == 1) {
        *v4 = memcmp (addr, s_mapped, 12) == 0;
        return 0;
    }
    return -1;
}

int
rp_proxies_parse (const char *text, rp_proxies_t *proxies, char *err, size_t errlen)
{
    memset (proxies, 0, sizeof *proxies);
    const char *p = text ? text : "";
    while (*p) {
        if (*p == ',' || isspace ((unsigned char) *p)) {
            p++;
            continue;
        }
        size_t len = strcspn (p, ", \t");
        const char *slash = memchr (p, '/', len);
        size_t addr_len = slash ? (size_t) (slash - p) : len;
        rp_net_t net;
        bool v4 = false;
        long prefix = -1;
        if (slash) {
            char *end = NULL;
            prefix = strtol (slash + 1, &end, 10);
            if (end != p + len || slash + 1 == end)
                prefix = -2;
        }
        if (s_parse (p, addr_len, net.addr, &v4) || prefix < -1 || prefix > (v4 ? 32 : 128)) {
            snprintf (err, errlen, "http.trusted_proxies: \"%.*s\" is not an address or a network (10.0.0.0/8)",
                      (int) (len > 64 ? 64 : len), p);
            return -1;
        }
        if (proxies->count == RP_PROXIES_MAX) {
            snprintf (err, errlen, "http.trusted_proxies: at most %d entries", RP_PROXIES_MAX);
            return -1;
        }
        net.prefix = prefix < 0 ? 128 : (int) prefix + (v4 ? 96 : 0);
        proxies->nets [proxies->count++] = net;
        p += len;
    }
    return 0;
}

static bool
s_in (const rp_net_t *net, const uint8_t addr [16])
{
    int bytes = net->prefix / 8, bits = net->prefix % 8;
    if (memcmp (net->addr, addr, (size_t) bytes))
        return false;
    if (bits == 0)
        return true;
    uint8_t mask = (uint8_t) (0xff << (8 - bits));
    return (net->addr [bytes] & mask) == (addr [bytes] & mask);
}

bool
rp_proxies_has (const rp_proxies_t *proxies, const uint8_t addr [16])
{
    for (int i = 0; proxies && i < proxies->count; i++)
        if (s_in (&proxies->nets [i], addr))
            return true;
    return false;
}

bool
rp_address_from_sockaddr (const struct sockaddr *sa, uint8_t addr [16])
{
    if (sa && sa->sa_family == AF_INET) {
        memcpy (addr, s_mapped, 12);
        memcpy (addr + 12, &((const struct sockaddr_in *) sa)->sin_addr, 4);
        return true;
    }
    if (sa && sa->sa_family == AF_INET6) {
        memcpy (addr, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
        return true;
    }
    return false;
}

void
rp_address_client (const rp_proxies_t *proxies, const uint8_t peer [16], const char *xff,
                   uint8_t client [16])
{
    memcpy (client, peer, 16);
    if (!xff || !rp_proxies_has (proxies, peer))
        return;
    //  From the right: skip our own proxies; the first other is the client
    size_t end = strlen (xff);
    uint8_t hop [16];
    bool found = false;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff [start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && isspace ((unsigned char) xff [a]))
            a++;
        while (b > a && isspace ((unsigned char) xff [b - 1]))
            b--;
        bool v4 = false;
        if (s_parse (xff + a, b - a, hop, &v4))
            return;                     //  unreadable: believe the peer only
        found = true;
        if (!rp_proxies_has (proxies, hop))
            break;
        end = start > 0 ? start - 1 : 0;
    }
    if (found)
        memcpy (client, hop, 16);
}

void
rp_address_key (const uint8_t addr [16], char key [RP_ADDRESS_KEY_MAX])
{
    if (memcmp (addr, s_mapped, 12) == 0) {
        inet_ntop (AF_INET, addr + 12, key, RP_ADDRESS_KEY_MAX);
        return;
    }
    uint8_t network [16] = { 0 };
    memcpy (network, addr, 8);
    char text [INET6_ADDRSTRLEN];
    inet_ntop (AF_INET6, network, text, sizeof text);
    snprintf (key, RP_ADDRESS_KEY_MAX, "%s/64", text);
}
