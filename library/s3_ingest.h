/*  library/s3_ingest.h: S3 event notifications taken in as photos, the one
    way every consumer of them does it: the SQS ingest bridge
    (actors/bridges/sqs_ingest.c), which polls the queue itself, and
    `rapidphoto lambda` (app/cmd_lambda.c), to which Lambda's SQS event
    source hands the same message bodies. What a body means, which keys
    are ours, how an object becomes a photo and how a notification
    delivered twice finds its photo again are written once, here.

    A body is S3's notification (engine/aws/s3_event.h). Each
    ObjectCreated record:
      - for another bucket, or a key outside storage.s3_prefix, or neither
        under uploads/ nor incoming/, or a folder marker: nothing to do;
      - <prefix>uploads/<photo id>: a presigned upload arrived;
        rp_library_adopt_upload checks and queues it (refused: the photo
        is failed with the reason, an outcome; no such upload: nothing);
      - <prefix>incoming/<username>/.../<name>: an operator's bulk import;
        the object becomes a queued photo of that user named after the
        key's last segment, cleaned as every file name is
        (library/filename.h), by rp_library_ingest. A key with an empty,
        "." or ".." segment is refused (an S3 key is a name, not a path:
        incoming/alice/../bob/x.jpg is neither alice's file nor bob's).
        Remembered in s3_objects by (bucket, key, ETag), so a notification
        delivered twice, or to two consumers, finds its photo instead of
        making one.
    Anything that cannot be taken in now (not a notification at all, an
    unknown user, an object that is not an image, S3 or the database
    away) is RP_S3_INGEST_RETRY with the reason: the caller lets the
    message come back, and the queue's redrive policy ends it in the
    dead-letter queue for an operator.

    The caller passes its own blob store (S3) and database connection;
    nothing here keeps state.
*/
#ifndef RP_S3_INGEST_H
#define RP_S3_INGEST_H

#include <stddef.h>

#include "engine/aws/s3_event.h"
#include "engine/config.h"
#include "engine/db/db.h"
#include "library/blobstore.h"

typedef enum {
    RP_S3_INGEST_NOTHING = 0,       //  nothing of ours to take in (a test event, another bucket ...)
    RP_S3_INGEST_PHOTO,             //  a photo was made, or found made before
    RP_S3_INGEST_RETRY              //  not taken in now: err says why
} rp_s3_ingest_outcome_t;

//  One ObjectCreated record: RP_S3_INGEST_PHOTO with photo_id (made or
//  found), RP_S3_INGEST_NOTHING, or RP_S3_INGEST_RETRY with err. source
//  names the caller in log lines ("sqs-ingest", "lambda").
rp_s3_ingest_outcome_t rp_s3_ingest_record (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                                            const char *source, const rp_s3_object_event_t *event,
                                            char photo_id [RP_ID_MAX], char *err, size_t errlen);

//  A whole message body, record by record: RP_S3_INGEST_NOTHING (no
//  object created, or none of ours), RP_S3_INGEST_PHOTO with the photos
//  of its records (up to max of them in photos, *count set), or
//  RP_S3_INGEST_RETRY with err (not a notification, or a record that
//  could not be taken in; the records before it were, and are found
//  again when the message comes back).
rp_s3_ingest_outcome_t rp_s3_ingest_body (rp_blobstore_t *blobs, rp_db_t *db, const rp_config_t *config,
                                          const char *source, const char *body,
                                          char (*photos) [RP_ID_MAX], int max, int *count,
                                          char *err, size_t errlen);

#endif
