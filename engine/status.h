/*  engine/status.h: what a call's outcome was, one set for every layer.

    Functions return 0 (RP_OK) on success, RP_ERROR (-1) on a failure with
    nothing more to say about it, or one of the statuses below where the
    caller has a reason to act differently. In every case but RP_OK, err
    holds one line written by the function that found the trouble (callers
    pass it on; they do not write another). Each function's comment names
    the statuses it may return; any other non-zero value is to be taken as
    RP_ERROR.

    How the HTTP gateway answers them: RP_NOT_FOUND 404, RP_REFUSED 400
    (or the more precise 4xx the route documents), RP_CONFLICT 409,
    RP_BUSY 423, RP_NOT_YET 409, RP_UNAVAILABLE and RP_ERROR 503 with
    Retry-After.
*/
#ifndef RP_STATUS_H
#define RP_STATUS_H

typedef enum {
    RP_OK = 0,
    //  It failed: the database or the disk refused, a bug. err says why.
    //  Nothing the caller sent was at fault, so trying later may work.
    RP_ERROR = -1,
    //  What the caller names does not exist (a row, an S3 object), or is
    //  another user's (isolation: never "forbidden").
    RP_NOT_FOUND = 1,
    //  A unique constraint refused the change, or a conditional change
    //  found its row changed by someone else (nothing was changed).
    RP_CONFLICT = 2,
    //  Another holder has the lease (a resumable upload, the outbox):
    //  try again once it is given up or runs out.
    RP_BUSY = 3,
    //  A service we depend on cannot be reached or refuses us (S3, the
    //  database): nothing was acknowledged; try again later.
    RP_UNAVAILABLE = 4,
    //  The input is wrong (not an image, a malformed tag, not what was
    //  declared): trying again with it changes nothing. err names what.
    RP_REFUSED = 5,
    //  What the call waits for has not happened yet (an object is not in
    //  the bucket yet): try again once it has.
    RP_NOT_YET = 6
} rp_status_t;

#endif
