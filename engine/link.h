/*  engine/link.h: the sockets that carry engine messages, made one way.

    Every socket of ours that speaks to a broker (a worker's DEALER, every
    producer's: the pipeline, `rapidphoto process`, a status query) is
    made by rp_link_connect, and the broker's ROUTERs get the same limits
    through rp_link_limits, so none is forgotten:
    - ZMQ_MAXMSGSIZE a little over RP_MSG_BODY_MAX: libzmq drops a bigger
      frame (and the connection that sent it) before buffering it, so no
      peer can make us hold a frame the codec would refuse anyway;
    - over tcp:// and ipc:// (the transports with a handshake), when
      broker.curve_server_key is set, CURVE: the broker is authenticated
      by its public key, we by our key pair (broker.curve_client_secret_key,
      whose public half the broker lists in broker.curve_clients), and the
      traffic is encrypted. inproc:// has no handshake and needs no keys.

    Keys are Z85 text (40 characters for 32 bytes), as `rapidphoto keygen`
    prints them and libzmq takes them.
*/
#ifndef RP_LINK_H
#define RP_LINK_H

#include <czmq.h>
#include <stdbool.h>
#include "engine/config.h"
#include "engine/msg.h"

//  The largest frame any of our sockets takes from a peer: a body at the
//  codec's limit and room for the other frames' few bytes.
#define RP_LINK_FRAME_MAX (RP_MSG_BODY_MAX + 64 * 1024)

//  A Z85 key is this many characters.
#define RP_CURVE_KEY_LEN 40

//  True when text is a Z85 key: 40 characters that decode to 32 bytes.
bool rp_curve_key_valid (const char *text, size_t len);

//  The public key of a Z85 secret key into public_key (41 bytes). 0 or -1
//  (not a key, or libzmq built without CURVE).
int rp_curve_public (const char *secret_key, char public_key [RP_CURVE_KEY_LEN + 1]);

//  True when this libzmq can do CURVE (built with libsodium or tweetnacl).
bool rp_curve_available (void);

//  True for endpoints with a handshake, where CURVE applies: tcp://, ipc://.
bool rp_link_has_handshake (const char *endpoint);

//  True when only this machine can reach the endpoint: inproc://, ipc://,
//  and tcp:// on 127.0.0.0/8, [::1] or localhost. Anything else (0.0.0.0,
//  *, an interface name, another address or host name) is the network.
bool rp_link_is_loopback (const char *endpoint);

//  Set the limits every socket of ours has (ZMQ_MAXMSGSIZE); before it
//  binds or connects.
void rp_link_limits (zsock_t *socket);

//  rp_link_connect's flags: queue without limit both ways (ZMQ_SNDHWM and
//  ZMQ_RCVHWM 0), for a producer that must lose no SUBMIT or RESULT and a
//  worker that must lose no answer.
#define RP_LINK_UNQUEUED 1

//  A new socket of `type` connected to `endpoint`, with rp_link_limits and,
//  over tcp/ipc with config's broker.curve_server_key set, CURVE client
//  keys (config may be NULL: no keys). Its sends never block (ZMQ_SNDTIMEO
//  0): a message that cannot be queued fails with EAGAIN. Until the broker
//  is there, messages queue; once it has refused our keys, there is no
//  peer to queue for, and a blocking send would wait for ever. Caller owns
//  it. NULL with err when the keys are unusable or the endpoint cannot be
//  parsed.
zsock_t *rp_link_connect (int type, const char *endpoint, const rp_config_t *config, int flags,
                          char *err, size_t errlen);

#endif
