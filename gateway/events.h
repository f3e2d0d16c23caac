/*  gateway/events.h: live status streams (see events.c). */
#ifndef RP_GATEWAY_EVENTS_H
#define RP_GATEWAY_EVENTS_H

#include "gateway/gateway_private.h"

//  GET /api/v1/events for an authenticated request.
enum MHD_Result rp_events_route (struct MHD_Connection *c, rp_req_t *req, const char *method);
//  From the gateway actor's thread, every tick: wake streams that have news
//  or owe a heartbeat. db is the actor's own connection (may be NULL).
void rp_events_tick (rp_db_t *db);
//  Before the server stops: end every stream.
void rp_events_stop (void);
//  Open streams, for metrics; *reads (unless NULL) receives how many times
//  a stream has read its events from the database.
int rp_events_streams (uint64_t *reads);

#endif
