/*  engine/link.c: see link.h. */
#include "engine/link.h"

#include <string.h>

bool
rp_curve_key_valid (const char *text, size_t len)
{
    if (!text || len != RP_CURVE_KEY_LEN)
        return false;
    char copy [RP_CURVE_KEY_LEN + 1];
    memcpy (copy, text, len);
    copy [len] = 0;
    uint8_t bytes [32];
    return zmq_z85_decode (bytes, copy) != NULL;
}

bool
rp_curve_available (void)
{
    return zmq_has ("curve") != 0;
}

int
rp_curve_public (const char *secret_key, char public_key [RP_CURVE_KEY_LEN + 1])
{
    if (!secret_key || !rp_curve_key_valid (secret_key, strlen (secret_key)))
        return -1;
    return zmq_curve_public (public_key, secret_key) == 0 ? 0 : -1;
}

bool
rp_link_has_handshake (const char *endpoint)
{
    return strncmp (endpoint, "tcp://", 6) == 0 || strncmp (endpoint, "ipc://", 6) == 0;
}

bool
rp_link_is_loopback (const char *endpoint)
{
    if (strncmp (endpoint, "inproc://", 9) == 0 || strncmp (endpoint, "ipc://", 6) == 0)
        return true;
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *host = endpoint + 6;
    //  tcp://[source;]host:port: a source address names where we connect
    //  from, so only the part after it is where we listen
    const char *semicolon = strchr (host, ';');
    if (semicolon)
        host = semicolon + 1;
    const char *colon = strrchr (host, ':');
    if (!colon)
        return false;
    size_t len = (size_t) (colon - host);
    if (len > 4 && strncmp (host, "127.", 4) == 0) {
        //  127.0.0.0/8: four dotted numbers, the first 127
        int dots = 0;
        for (size_t i = 0; i < len; i++) {
            if (host [i] == '.')
                dots++;
            else
            if (host [i] < '0' || host [i] > '9')
                return false;
        }
        return dots == 3;
    }
    return (len == 5 && strncmp (host, "[::1]", 5) == 0)
        || (len == 9 && strncmp (host, "localhost", 9) == 0);
}

void
rp_link_limits (zsock_t *socket)
{
    zsock_set_maxmsgsize (socket, RP_LINK_FRAME_MAX);
}

zsock_t *
rp_link_connect (int type, const char *endpoint, const rp_config_t *config, int flags,
                 char *err, size_t errlen)
{
    zsock_t *socket = zsock_new (type);
    rp_link_limits (socket);
    zsock_set_sndtimeo (socket, 0);
    if (flags & RP_LINK_UNQUEUED) {
        zsock_set_sndhwm (socket, 0);
        zsock_set_rcvhwm (socket, 0);
    }
    if (config && *config->broker_curve_server_key && rp_link_has_handshake (endpoint)) {
        char public_key [RP_CURVE_KEY_LEN + 1];
        if (!rp_curve_available ()
        ||  rp_curve_public (config->broker_curve_client_secret_key, public_key)) {
            snprintf (err, errlen, "cannot use CURVE to %s: %s", endpoint,
                      rp_curve_available () ? "broker.curve_client_secret_key is not a secret key"
                                            : "this libzmq was built without CURVE");
            zsock_destroy (&socket);
            return NULL;
        }
        zsock_set_curve_serverkey (socket, config->broker_curve_server_key);
        zsock_set_curve_publickey (socket, public_key);
        zsock_set_curve_secretkey (socket, config->broker_curve_client_secret_key);
    }
    if (zsock_connect (socket, "%s", endpoint)) {
        snprintf (err, errlen, "cannot connect to %s: %s", endpoint, zmq_strerror (zmq_errno ()));
        zsock_destroy (&socket);
        return NULL;
    }
    return socket;
}
