/*  tests/test_auth.c: who a client is and what its tokens and failed logins
    count for, in-process (gateway/address.c, gateway/auth.c): the key a
    client's limits count under (IPv6 by its /64), X-Forwarded-For read
    from the right and believed only from a trusted proxy, the login
    throttle that no crowd of other names can make forget a key, and the
    password stamp that ends a token when its user's password changes.
    The same through real HTTP: tests/test_gateway_limits.c. Nothing here
    goes on the network (the addresses below are documentation ones, in
    strings only).
*/
#include <criterion/criterion.h>
#include <string.h>

#include "gateway/address.h"
#include "gateway/auth.h"

//  An address in text as 16 bytes
static void
s_addr (const char *text, uint8_t addr [16])
{
    rp_proxies_t one;
    char err [256];
    cr_assert_eq (rp_proxies_parse (text, &one, err, sizeof err), 0, "%s", err);
    cr_assert_eq (one.count, 1);
    memcpy (addr, one.nets [0].addr, 16);
}

static void
s_key_of (const char *text, char key [RP_ADDRESS_KEY_MAX])
{
    uint8_t addr [16];
    s_addr (text, addr);
    rp_address_key (addr, key);
}

Test (auth, an_ipv6_client_counts_by_its_64)
{
    char a [RP_ADDRESS_KEY_MAX], b [RP_ADDRESS_KEY_MAX], c [RP_ADDRESS_KEY_MAX];
    s_key_of ("2001:db8:1:2::5", a);
    s_key_of ("2001:db8:1:2:ffff:ffff:ffff:1", b);
    s_key_of ("2001:db8:1:3::5", c);
    cr_expect_str_eq (a, "2001:db8:1:2::/64");
    cr_expect_str_eq (a, b, "one /64, one client");
    cr_expect_str_neq (a, c, "another /64, another client");
    //  IPv4 as it is, mapped IPv6 as the IPv4 it maps
    s_key_of ("192.0.2.7", a);
    s_key_of ("::ffff:192.0.2.7", b);
    cr_expect_str_eq (a, "192.0.2.7");
    cr_expect_str_eq (b, "192.0.2.7");
    s_key_of ("192.0.2.8", c);
    cr_expect_str_neq (a, c);
}

Test (auth, forwarded_for_is_read_from_the_right_from_trusted_proxies_only)
{
    rp_proxies_t proxies;
    char err [256];
    cr_assert_eq (rp_proxies_parse ("10.0.0.0/8, 192.0.2.1 2001:db8:ff::/48", &proxies, err, sizeof err), 0, "%s", err);
    cr_assert_eq (proxies.count, 3);
    uint8_t proxy [16], other [16], client [16], want [16];
    s_addr ("10.1.2.3", proxy);
    s_addr ("198.51.100.9", other);
    cr_expect (rp_proxies_has (&proxies, proxy));
    cr_expect_not (rp_proxies_has (&proxies, other));
    static const struct { const char *xff; const char *client; } cases [] = {
        { "203.0.113.5", "203.0.113.5" },
        { "198.51.100.77, 203.0.113.5", "203.0.113.5" },          //  the left one is the client's say
        { "203.0.113.5, 10.9.9.9", "203.0.113.5" },               //  a proxy of ours in between
        { "203.0.113.5,10.9.9.9 , 192.0.2.1", "203.0.113.5" },
        { "10.9.9.9, 10.8.8.8", "10.9.9.9" },                     //  all ours: the first of them
        { "2001:db8:1::5, 2001:db8:ff:1::1", "2001:db8:1::5" },
        { "[2001:db8:1::6]", "2001:db8:1::6" },
        { "203.0.113.5, not-an-address", "10.1.2.3" },           //  unreadable: the proxy itself
        { "203.0.113.5,,10.9.9.9", "10.1.2.3" },
        { "", "10.1.2.3" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        rp_address_client (&proxies, proxy, cases [i].xff, client);
        s_addr (cases [i].client, want);
        cr_expect (memcmp (client, want, 16) == 0, "X-Forwarded-For: %s should be %s", cases [i].xff,
                   cases [i].client);
    }
    //  From an address that is no proxy, the header means nothing
    rp_address_client (&proxies, other, "203.0.113.5", client);
    cr_expect (memcmp (client, other, 16) == 0);
    rp_address_client (&proxies, proxy, NULL, client);
    cr_expect (memcmp (client, proxy, 16) == 0);
    //  Bad entries are named
    cr_expect_eq (rp_proxies_parse ("10.0.0.0/8, proxy.example", &proxies, err, sizeof err), -1);
    cr_expect (strstr (err, "http.trusted_proxies") && strstr (err, "proxy.example"), "%s", err);
    cr_expect_eq (rp_proxies_parse ("10.0.0.0/33", &proxies, err, sizeof err), -1);
    cr_expect_eq (rp_proxies_parse ("", &proxies, err, sizeof err), 0);
    cr_expect_eq (proxies.count, 0);
}

Test (auth, the_throttle_counts_each_key_to_its_limit)
{
    for (int i = 0; i < 4; i++) {
        cr_expect_eq (rp_auth_throttled ("user:bob", 5), 0);
        rp_auth_failed ("user:bob");
    }
    cr_expect_eq (rp_auth_throttled ("user:bob", 5), 0, "4 of 5");
    rp_auth_failed ("user:bob");
    int wait = rp_auth_throttled ("user:bob", 5);
    cr_expect (wait > 0 && wait <= RP_LOGIN_WINDOW_S, "%d", wait);
    cr_expect_eq (rp_auth_throttled ("user:bob", 6), 0, "each caller its own limit");
    cr_expect_eq (rp_auth_throttled ("user:alice", 5), 0);
    rp_auth_succeeded ("user:bob");
    cr_expect_eq (rp_auth_throttled ("user:bob", 5), 0, "a success clears the key");
}

Test (auth, no_crowd_of_names_makes_the_throttle_forget, .timeout = 60)
{
    for (int i = 0; i < 5; i++)
        rp_auth_failed ("user:victim");
    cr_assert_gt (rp_auth_throttled ("user:victim", 5), 0);
    //  More names than the table has room for, one failure each
    for (int i = 0; i < 40000; i++) {
        char key [32];
        snprintf (key, sizeof key, "user:n%d", i);
        rp_auth_failed (key);
    }
    cr_expect_gt (rp_auth_throttled ("user:victim", 5), 0, "the victim's failures were pushed out");
}

Test (auth, a_token_ends_with_its_password)
{
    const char *secret = "0123456789abcdef0123456789abcdef0123456789abcdef";
    char *token = rp_auth_token_issue (secret, "u1", "scrypt$first", 600, NULL);
    cr_assert_not_null (token);
    char user [64], stamp [RP_AUTH_STAMP_MAX], now [RP_AUTH_STAMP_MAX], err [256];
    cr_assert_eq (rp_auth_token_verify (secret, token, user, stamp, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq (user, "u1");
    rp_auth_stamp (secret, "scrypt$first", now);
    cr_expect_str_eq (stamp, now, "the token carries its password's stamp");
    rp_auth_stamp (secret, "scrypt$second", now);
    cr_expect_str_neq (stamp, now, "a new password has another stamp");
    cr_expect (!strstr (token, "scrypt"), "the hash is not in the token");
    free (token);
    //  The cache of stamps as last read
    char cached [RP_AUTH_STAMP_MAX];
    cr_expect_not (rp_auth_stamp_cached ("u1", 1000, 5000, cached));
    rp_auth_stamp_remember ("u1", now, 1000);
    cr_expect (rp_auth_stamp_cached ("u1", 5999, 5000, cached));
    cr_expect_str_eq (cached, now);
    cr_expect_not (rp_auth_stamp_cached ("u1", 6000, 5000, cached), "too old: read again");
    cr_expect_not (rp_auth_stamp_cached ("u2", 1000, 5000, cached));
}
