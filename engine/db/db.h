/*  engine/db/db.h: the metadata store, one interface over two backends.

    "sqlite:<path>" opens the embedded default (WAL mode); "postgresql://..."
    opens PostgreSQL through libpq (prepared statements, every query
    parameterised). Both pass one contract suite (tests/test_db.c).

    A connection belongs to the one actor that opened it: never share an
    rp_db_t between threads. Commands (writes) and queries (reads) are kept
    apart: commands change state, each in one transaction, and return only
    ids and flags; queries return read models as JSON shaped like the API's
    photo JSON (schemas/openapi.yaml, the contract's "A photo").

    Every function returns 0 on success, or a status (engine/status.h)
    with one line in err (no SQL, no internal paths). On failure nothing was
    changed: the transaction was rolled back. The statuses:
      RP_NOT_FOUND  a row the caller names does not exist or is not the
                    user's (isolation: another user's photo is "not found",
                    never "forbidden")
      RP_REFUSED    the caller's input is not what the store takes (a file
                    name that is not UTF-8 text, a malformed tag, batch id,
                    sha256, cursor or status); err names which. Checked
                    before anything runs, the same on both backends (the
                    text rules are PostgreSQL's, engine/utf8.h)
      RP_CONFLICT   a unique constraint refused it, or a conditional change
                    found the row changed (where the function says so)
      RP_BUSY       another holds the lease (where the function says so)
      RP_ERROR (-1) the database failed (unreachable, a commit refused):
                    nothing about the input; trying later may work
*/
#ifndef RP_DB_H
#define RP_DB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/status.h"

#define RP_ID_MAX 40                    //  ids are 32 lowercase hex chars + NUL
#define RP_PASSWORD_HASH_MAX 160        //  room for what rp_password_hash writes
#define RP_SIMILAR_EVENT_MAX 20         //  a complete event names at most this many near-duplicates

typedef struct _rp_db_t rp_db_t;

//  An id as the API takes it: 1..RP_ID_MAX-1 of [A-Za-z0-9_-].
bool rp_db_valid_id (const char *id);

//  ---------------------------------------------------------------------------
//  Connection and schema

//  Open a connection. Returns NULL with the reason in err.
rp_db_t *rp_db_open (const char *url, char *err, size_t errlen);
void rp_db_close (rp_db_t **self_p);
//  "sqlite" or "postgresql".
const char *rp_db_backend (rp_db_t *self);
//  A cheap round trip (SELECT 1), for readiness checks.
int rp_db_ping (rp_db_t *self, char *err, size_t errlen);

//  Apply the migrations this binary carries (schemas/<backend>/V<n>__*.sql,
//  compiled in) that the database lacks, in order, each in a transaction,
//  recording each in flyway_schema_history with Flyway's columns
//  (installed_rank, version, description, type 'SQL', script, checksum
//  (CRC32 of the script, as Flyway computes it), installed_by, installed_on,
//  execution_time, success). Safe to call from several processes at once.
//  *applied is set to how many were applied now.
int rp_db_migrate (rp_db_t *self, int *applied, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Users (commands and queries)

//  Create a user. password_hash is already hashed (see rp_password_hash).
//  RP_CONFLICT ("user NAME exists") when the name is taken.
int rp_db_user_add (rp_db_t *self, const char *name, const char *password_hash,
                    char id [RP_ID_MAX], char *err, size_t errlen);
int rp_db_user_set_password (rp_db_t *self, const char *name, const char *password_hash,
                             char *err, size_t errlen);
//  Find a user by name: id and password hash (hash may be NULL if unwanted).
int rp_db_user_find (rp_db_t *self, const char *name, char id [RP_ID_MAX],
                     char *hash, size_t hashlen, char *err, size_t errlen);
//  [{"id","name","created_at","photos"}...] ordered by name. Caller owns.
int rp_db_user_list (rp_db_t *self, json_t **users, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Photo commands: the state machine
//      uploading -> queued -> processing -> complete | failed
//                             processing -> queued (retry, after backoff)

typedef struct _rp_tus_new_t rp_tus_new_t;

//  A step on stored bytes that must happen under their address's lock (see
//  "Stored bytes" below): run by the command inside its transaction, after
//  the lock is taken. 0, or a status with err: the command then rolls back
//  and returns that status.
typedef int (rp_db_bytes_fn) (void *arg, const char *sha256, char *err, size_t errlen);
typedef struct {
    rp_db_bytes_fn *fn;
    void *arg;
} rp_db_bytes_hook_t;

typedef struct {
    const char *user_id;
    const char *batch_id;       //  NULL: a new batch is made; else made if absent
    const char *filename;       //  as the client named it (stored as given, sanitised by caller)
    const char *sha256;         //  of the original bytes, lowercase hex
    int64_t bytes;
    const char *content_type;   //  by magic bytes; may be NULL
    const char *status;         //  "queued" (bytes durable) or "uploading"
    const char *tags;           //  NULL or comma-separated
    //  A resumable upload made with the photo, in its transaction (schema
    //  V3). Then status is "uploading" and sha256 is NULL: the photo holds
    //  the placeholder "pending:<id>" until its bytes are in.
    const rp_tus_new_t *upload;
    //  Run under the address's lock before the row is written (NULL: none):
    //  an ingest makes sure its bytes are at the address (a collection may
    //  have taken them since they were stored). Its failure is the call's.
    const rp_db_bytes_hook_t *hook;
} rp_photo_new_t;

//  Create a photo row (and its batch when new) in one transaction, which
//  holds the lock on the photo's address and drops its tombstone. When the
//  user already has a photo with this sha256, nothing is created: *duplicate
//  is set and id is the existing photo's. batch_id receives the batch used
//  (for a duplicate: the caller's batch_id, or a new id that is made into a
//  batch only when a photo is created with it). A batch_id that is another
//  user's is RP_NOT_FOUND. Tags as in rp_db_photo_tags_set (empty pieces
//  of the list are skipped). A file name that is not 1..1024 bytes of
//  UTF-8 text, a malformed batch id, tag or sha256, or Upload-Metadata
//  that is not text is RP_REFUSED, naming which.
int rp_db_photo_create (rp_db_t *self, const rp_photo_new_t *photo,
                        char id [RP_ID_MAX], char batch_id [RP_ID_MAX], bool *duplicate,
                        char *err, size_t errlen);

//  Claim up to `max` photos that are queued and due (next_attempt_at <= now)
//  for processing: each moves to processing, attempts + 1, in one
//  transaction. *claimed is a JSON array of {"id","user_id","sha256",
//  "filename","attempts","batch_id"}; caller owns. Safe across processes:
//  two engines never claim the same photo.
int rp_db_photo_claim (rp_db_t *self, int max, json_t **claimed, char *err, size_t errlen);

//  processing -> complete, with what the actors found. `result` is an object
//  {"content_type","width","height","taken_at","exif":{...},"thumbhash",
//  "phash"}; thumbhash is a placeholder's base64 (engine/thumbhash.h);
//  absent or null fields are stored as null (content_type: kept). The last
//  error is cleared. phash (16 lowercase hex, engine/phash.h) is stored
//  with its search bands, and the complete event gets "similar": the ids
//  of the user's photos within RP_PHASH_THRESHOLD of it (the nearest
//  RP_SIMILAR_EVENT_MAX), found in the same
//  transaction ([] without a phash). RP_NOT_FOUND when the photo is not
//  processing (already finished, deleted).
int rp_db_photo_complete (rp_db_t *self, const char *id, json_t *result, char *err, size_t errlen);

//  processing -> queued again with next_attempt_at = now + retry_in_ms when
//  retry_in_ms > 0, else processing -> failed with `reason`. The reason is
//  kept in both cases (last error). RP_NOT_FOUND as above.
int rp_db_photo_fail (rp_db_t *self, const char *id, const char *reason, int64_t retry_in_ms,
                      char *err, size_t errlen);

//  Recovery: every photo left processing, unchanged for older_than_ms (0:
//  all of them), goes back to queued, due now. *requeued is how many.
//  With one engine, all of them at its start-up; with several sharing the
//  database, only those stuck longer than any live engine would take (an
//  engine that died mid-photo), from every engine's pipeline.
int rp_db_photo_requeue_processing (rp_db_t *self, int64_t older_than_ms, int *requeued,
                                    char *err, size_t errlen);

//  processing -> queued, due now, attempts - 1: an engine that stops gives
//  back a photo it claimed (as attempt `attempts`) and did not finish, as
//  if it had never claimed it; the last error is kept. RP_NOT_FOUND when
//  the photo is no longer processing as that claim (finished, deleted,
//  or queued again and claimed by another engine meanwhile).
int rp_db_photo_release (rp_db_t *self, const char *id, int attempts, char *err, size_t errlen);

//  uploading -> queued, due now: the bytes of a presigned or resumable upload
//  have arrived and are durable. RP_NOT_FOUND when the photo is not
//  uploading.
int rp_db_photo_uploaded (rp_db_t *self, const char *id, char *err, size_t errlen);

//  Delete a user's photo, in one transaction holding its address's lock.
//  When no photo row (of any user) refers to its sha256 any more, a
//  tombstone is recorded for the address in the same transaction and
//  *sha_unreferenced is set: the bytes may be collected
//  (rp_db_bytes_collect). An upload's placeholder is never unreferenced.
int rp_db_photo_delete (rp_db_t *self, const char *user_id, const char *id,
                        char sha256 [65], bool *sha_unreferenced, char *err, size_t errlen);

//  Tags: replace all, add some, remove one. Tags are trimmed, 1..64 bytes
//  of UTF-8 without control characters, stored as given (case kept), unique
//  per photo, at most 100 per photo (RP_REFUSED otherwise). RP_NOT_FOUND
//  when the photo is not the user's; removing a tag the photo does not have
//  succeeds.
int rp_db_photo_tags_set (rp_db_t *self, const char *user_id, const char *id,
                          const char *const *tags, size_t count, char *err, size_t errlen);
int rp_db_photo_tags_add (rp_db_t *self, const char *user_id, const char *id,
                          const char *const *tags, size_t count, char *err, size_t errlen);
int rp_db_photo_tag_remove (rp_db_t *self, const char *user_id, const char *id,
                            const char *tag, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Photo queries (read models)

//  One photo as the API shows it:
//  {"id","filename","status","error","sha256","bytes","content_type","width",
//   "height","taken_at","exif","tags":[...],"batch_id","created_at","attempts",
//   "thumbhash","phash"}
//  (no "urls": the gateway adds those). RP_NOT_FOUND if not the user's.
int rp_db_photo_get (rp_db_t *self, const char *user_id, const char *id, json_t **photo,
                     char *err, size_t errlen);

//  The user's complete photos whose perceptual hash is within max_distance
//  bits (0..11; engine/phash.h's RP_PHASH_THRESHOLD is the measured one)
//  of photo id's, nearest first (ties by id), each its read model with
//  "distance": bits; at most `limit` (1..100, else 100). The photo itself
//  is never among them; a photo with no hash yet has none. *examined (may
//  be NULL): the candidates the band indexes handed back, for the
//  benchmark. RP_NOT_FOUND if not the user's photo.
int rp_db_photo_similar (rp_db_t *self, const char *user_id, const char *id, int max_distance,
                         int limit, json_t **items, int *examined, char *err, size_t errlen);

//  Newest first (created_at, then id: stable when times are equal). limit:
//  1..500 (0 or less: 50). cursor: NULL or an opaque string from a previous
//  page; a malformed one, an unknown status or a malformed tag is
//  RP_REFUSED with a reason fit for a 400. tag, status: NULL (or "") for
//  any; cursor "" is the first page.
//  *page = {"items":[photo...],"next_cursor":str|null}.
int rp_db_photo_list (rp_db_t *self, const char *user_id, int limit, const char *cursor,
                      const char *tag, const char *status, json_t **page,
                      char *err, size_t errlen);

//  The gallery by upload time or date taken (engine/db/db_timeline.c).
//  sort: "created_at" (default) or "taken_at" (the date taken normalised
//  to UTC, an offset-less one read as UTC; the upload time when a photo has
//  none); newest first, then id. from/to: ISO 8601 (date, or date and time
//  with optional fraction and Z/+HH:MM; none means UTC), from <= key < to.
//  cursor: opaque, from the previous page of the same sort. Every field
//  may be NULL or "" (none). A bad one is RP_REFUSED, err naming the
//  parameter ("sort: ...", "from: ...", "to: ...", "cursor: ...", ...).
//  *page = {"items":[photo...],"next_cursor":str|null}.
typedef struct {
    int limit;                  //  1..500 (0 or less: 50)
    const char *cursor, *tag, *status, *sort, *from, *to;
} rp_db_timeline_t;
int rp_db_photo_timeline (rp_db_t *self, const char *user_id, const rp_db_timeline_t *query,
                          json_t **page, char *err, size_t errlen);

//  An ISO 8601 date or instant (as from/to above) into created_at's form,
//  "2024-06-01T16:30:00.000Z" (UTC, milliseconds). RP_REFUSED, with a
//  reason, when it is not one.
int rp_db_instant_parse (const char *text, char out [32], char *err, size_t errlen);

//  {"id","total","counts":{"uploading","queued","processing","complete","failed"},
//   "photos":[photo...]}: counts are counted from the rows, so always true;
//  photos in upload order, at most the first 1000. RP_NOT_FOUND when the
//  batch is not the user's or does not exist (a batch exists from its first
//  photo's creation on).
int rp_db_batch_get (rp_db_t *self, const char *user_id, const char *batch_id,
                     json_t **batch, char *err, size_t errlen);

//  The user's photo with these bytes: id receives it. RP_NOT_FOUND when
//  the user has none (other users' photos are never seen); RP_REFUSED when
//  sha256 is not 64 lowercase hex characters.
int rp_db_photo_find_sha (rp_db_t *self, const char *user_id, const char *sha256,
                          char id [RP_ID_MAX], char *err, size_t errlen);

//  How many rows refer to a sha256 (any user), for storage garbage checks.
int rp_db_sha_references (rp_db_t *self, const char *sha256, int64_t *count,
                          char *err, size_t errlen);

//  Counts of photos by status across all users, for metrics and tests:
//  {"uploading":n,"queued":n,"processing":n,"complete":n,"failed":n}.
int rp_db_status_counts (rp_db_t *self, json_t **counts, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Events (schema V2): every photo state change (create, claim, complete,
//  fail or retry, recovery requeue, uploaded) records one event in the same
//  transaction, so what a reader sees is exactly what was committed.

//  The user's events with id > after_id, oldest first, at most limit
//  (1..1000): [{"event_id","id" (photo),"batch_id","status","error"}...],
//  with "received" and "length" on upload progress (status "uploading")
//  and "duplicate_of" on a resumable upload that was a duplicate (status
//  "duplicate").
int rp_db_events_after (rp_db_t *self, const char *user_id, int64_t after_id, int limit,
                        json_t **events, char *err, size_t errlen);
//  The newest event id of a user (user_id NULL: of anyone); 0 when none.
int rp_db_events_last (rp_db_t *self, const char *user_id, int64_t *last_id,
                       char *err, size_t errlen);
//  Write transactions this process has committed so far (any connection,
//  any thread). A photo's state changes and their events are written by
//  one, so a reader in the same process that sees the count move knows
//  there may be news to look for now, without waiting for its next poll;
//  events written by another process are seen at that poll only.
int64_t rp_db_write_commits (void);
//  The users with events after after_id, at most limit of them, and the
//  newest event id of each: {"<user id>": <id>, ...}. Caller owns.
int rp_db_events_users (rp_db_t *self, int64_t after_id, int limit, json_t **users,
                        char *err, size_t errlen);
//  A user's password hash by id (for the stamp in their tokens).
//  RP_NOT_FOUND when there is no such user.
int rp_db_user_hash (rp_db_t *self, const char *id, char *hash, size_t hashlen, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Resumable uploads (tus 1.0, schema V3). An upload is made with its photo
//  (rp_db_photo_create with .upload set; the upload's id is the photo's).
//  Its bytes arrive as parts, each a file the gateway wrote and committed
//  here; appends hold a lease (lock_owner until lock_until_ms) so one
//  request appends at a time, and a lease that ran out is taken over.
//  Times are milliseconds since the epoch. RP_BUSY: the lease is held.

struct _rp_tus_new_t {
    int64_t length;             //  -1: deferred (creation-defer-length)
    const char *metadata;       //  Upload-Metadata as sent (NULL: none)
    int64_t now_ms;
    int64_t expires_ms;
};

typedef struct {
    char id [RP_ID_MAX];
    char user_id [RP_ID_MAX];
    int64_t length;             //  -1 while deferred
    int64_t received;           //  the durable offset
    int64_t expires_ms;
    char *metadata;             //  owned; NULL when none (rp_db_tus_clear)
    char lock_owner [128];      //  "" when free
    int64_t lock_until_ms;
    bool done;                  //  the photo left "uploading"
    char photo_id [RP_ID_MAX];  //  when done: the photo (the existing one for a duplicate)
    bool duplicate;
} rp_tus_t;

//  An upload, when it is the user's (user_id NULL: anyone's). RP_NOT_FOUND.
int rp_db_tus_get (rp_db_t *self, const char *user_id, const char *id, rp_tus_t *upload,
                   char *err, size_t errlen);
void rp_db_tus_clear (rp_tus_t *upload);

//  Take the lease for `owner` until until_ms: free, already ours, run out
//  (lock_until_ms < now_ms), or held by `stale_owner` (non-NULL: an owner
//  the caller knows is dead). RP_BUSY when another holds it,
//  RP_NOT_FOUND when the upload is gone.
int rp_db_tus_lock (rp_db_t *self, const char *id, const char *owner, const char *stale_owner,
                    int64_t now_ms, int64_t until_ms, char *err, size_t errlen);
//  Give the lease up (only when `owner` holds it).
int rp_db_tus_unlock (rp_db_t *self, const char *id, const char *owner, char *err, size_t errlen);

//  Commit a part, in one transaction: the part starting at `start` now
//  holds `length` bytes of file `name` (made or grown), and the upload's
//  durable offset moves from `expected` to start + length. new_length >= 0
//  sets a deferred length. The lease is renewed until until_ms. Records an
//  "uploading" progress event. RP_CONFLICT when the lease is not
//  owner's or the offset is no longer `expected` (nothing changes).
int rp_db_tus_append (rp_db_t *self, const char *id, const char *owner, int64_t expected,
                      int64_t start, int64_t length, const char *name, int64_t new_length,
                      int64_t until_ms, char *err, size_t errlen);
//  The parts in order: [{"start","length","name"}...]. Caller owns.
int rp_db_tus_parts (rp_db_t *self, const char *id, json_t **parts, char *err, size_t errlen);

//  Every byte is in and durable under sha256: the photo goes uploading ->
//  queued with its real sha256, size and type, and the upload is done, in
//  one transaction holding the address's lock (hook as rp_photo_new_t's).
//  When the user already has these bytes, the uploading photo is removed
//  (a "duplicate" event names the one they have) and *duplicate is set.
//  photo_id receives the photo. owner: the request holding the upload's
//  lease (NULL: no lease is held, as for a presigned upload). Nothing
//  changes, and:
//    RP_CONFLICT   the upload is done already (another call finished it),
//                  or owner no longer holds the lease (it was taken over)
//    RP_NOT_FOUND  there is no such upload, or its photo is no longer
//                  uploading (deleted meanwhile)
int rp_db_tus_finish (rp_db_t *self, const char *id, const char *owner, const char *sha256,
                      int64_t bytes, const char *content_type, const rp_db_bytes_hook_t *hook,
                      char photo_id [RP_ID_MAX], bool *duplicate, char *err, size_t errlen);
//  The upload is refused (not an image, expired): its photo, when still
//  uploading, goes to failed with `reason`, and the upload's rows go.
int rp_db_tus_fail (rp_db_t *self, const char *id, const char *reason, char *err, size_t errlen);
//  Termination: the upload's rows go, and its photo with them when it is
//  still uploading. RP_NOT_FOUND when not the user's (user_id NULL: any).
int rp_db_tus_delete (rp_db_t *self, const char *user_id, const char *id, char *err, size_t errlen);
//  Uploads whose expiry passed: [{"id","done"}...], at most limit. Caller owns.
int rp_db_tus_expired (rp_db_t *self, int64_t now_ms, int limit, json_t **uploads,
                       char *err, size_t errlen);
//  How many unfinished uploads (resumable or presigned) of a user have not
//  expired at now_ms.
int rp_db_tus_open (rp_db_t *self, const char *user_id, int64_t now_ms, int64_t *count,
                    char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  The AWS bridges (schema V4, db_bridges.c)

//  A photo's status ("uploading" ... "failed") by id alone, for the ingest
//  bridge watching the photos its messages made. RP_NOT_FOUND when gone.
int rp_db_photo_status (rp_db_t *self, const char *id, char status [16], char *err, size_t errlen);

//  The photo an S3 object (bucket, key, ETag) became, if it was taken in.
//  RP_NOT_FOUND when not.
int rp_db_s3_object_find (rp_db_t *self, const char *bucket, const char *key, const char *etag,
                          char photo_id [RP_ID_MAX], char *err, size_t errlen);
//  Remember that the object became photo_id (kept when already known).
int rp_db_s3_object_record (rp_db_t *self, const char *bucket, const char *key, const char *etag,
                            const char *photo_id, char *err, size_t errlen);

//  An outbox publisher (by name) takes its lease until until_ms, and reads
//  up to limit complete/failed events after where it got to: *events is
//  [{"event_id","id","user_id","user","batch_id","status","error","sha256",
//  "bytes"}...], *cursor the event id it last recorded. Events come in
//  the order their transactions committed, and only once no transaction
//  that could still add an earlier one is running, so an event whose
//  transaction commits late is never passed over (PostgreSQL: by
//  transaction id, schema V6; SQLite commits in id order). A new publisher
//  starts at the newest event (history is not replayed). RP_BUSY while
//  another owner holds the lease.
int rp_db_outbox_claim (rp_db_t *self, const char *name, const char *owner, int64_t now_ms,
                        int64_t until_ms, int limit, int64_t *cursor, json_t **events,
                        char *err, size_t errlen);
//  The events up to and including event id `cursor`, in the order claim
//  gave them, are published. RP_CONFLICT when owner no longer holds the
//  lease (another publisher took over: nothing changes).
int rp_db_outbox_advance (rp_db_t *self, const char *name, const char *owner, int64_t cursor,
                          char *err, size_t errlen);
//  owner gives its lease on the outbox `name` up (nothing when it does not
//  hold it), so another publisher takes over at once rather than when the
//  lease runs out: for a process about to be frozen (Lambda).
int rp_db_outbox_release (rp_db_t *self, const char *name, const char *owner, char *err, size_t errlen);
//  Whether the outcome events (complete, failed) of photo_id are still to
//  be published by the outbox publisher `name`: *pending true while one
//  lies past its cursor, or while the publisher has not started (no
//  cursor yet). For `rapidphoto lambda`, which answers a batch only once
//  its photos' events are out (or its deadline nears).
int rp_db_outbox_pending (rp_db_t *self, const char *name, const char *photo_id, bool *pending,
                          char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Stored bytes (schema V5, db_bytes.c)
//
//  Bytes live once per SHA-256 (the address) and are shared by every photo
//  with it, of any user. The database is the lock on an address: whatever
//  removes bytes and whatever commits a row that needs them does so in one
//  transaction holding the address's lock (PostgreSQL: an advisory lock on
//  the address, to the end of the transaction; SQLite: the database's
//  write lock, which every write transaction takes first), so a removal
//  and a commit of a row referring to the address never interleave. The
//  work on the bytes themselves is the library's: it comes in as a hook
//  (rp_db_bytes_hook_t) that the command runs inside its transaction.
//  Tombstones mark addresses that may have become unreferenced; they are
//  hints, checked again under the lock before anything goes.

//  Record a tombstone for sha256 (kept when there is one): the bytes may
//  be unreferenced (an ingest undone, a photo deleted while processing).
int rp_db_bytes_tombstone (rp_db_t *self, const char *sha256, char *err, size_t errlen);
//  The addresses with a tombstone, oldest first, at most limit (1..1000):
//  a JSON array of sha256 strings. Caller owns.
int rp_db_bytes_tombstones (rp_db_t *self, int limit, json_t **list, char *err, size_t errlen);
//  Collect sha256, in one transaction holding its lock: when no photo
//  refers to it, remove->fn removes the bytes (*removed set); then the
//  address's tombstone, if any, goes. When remove fails, its status is
//  returned and nothing changes (the tombstone stays for another try).
//  Any address may be collected, tombstone or not (the start-up sweep).
int rp_db_bytes_collect (rp_db_t *self, const char *sha256, const rp_db_bytes_hook_t *remove,
                         bool *removed, char *err, size_t errlen);

//  ---------------------------------------------------------------------------
//  Fault hook (tests): RP_FAULT_DB_COMMIT=N makes the Nth commit of the
//  process fail (and roll back) as if the database refused it. Commits of
//  commands (writes) are counted only while the hook is set, and the count
//  is never reset (engine/fault.h).

//  ---------------------------------------------------------------------------
//  Passwords: scrypt (OpenSSL EVP_PBE_scrypt) with a random salt, encoded as
//  "scrypt$N$r$p$<salt hex>$<hash hex>".

//  Hash a password into out. 0 or -1.
int rp_password_hash (const char *password, char *out, size_t outlen);
//  True when password matches the stored hash (constant-time compare).
bool rp_password_verify (const char *password, const char *stored);

//  A new random id (32 lowercase hex characters) into id.
void rp_db_new_id (char id [RP_ID_MAX]);

//  ---------------------------------------------------------------------------
//  Bit-rot checks (schema V10, db_integrity.c): what `rapidphoto scrub` and
//  the background scrub found. Integrity belongs to an address (the bytes
//  are shared), so a mark applies to every photo with that sha256; photo
//  JSON shows it as "integrity" ("ok" | "damaged" | null: never checked)
//  and "checked_at".

//  Up to limit (1..1000) addresses of complete photos to check, as
//  [{"sha256","bytes","id"}...] (id: one photo with them, for log lines).
//  after_sha256 non-NULL: every address after it (NULL or "": from the
//  first), by sha256: a whole pass. after_sha256 NULL and older_than_ms
//  >= 0: those never checked, or checked more than older_than_ms ago,
//  never checked first then the oldest check (the background scrub,
//  which so resumes where it was). Caller owns *due.
int rp_db_scrub_due (rp_db_t *self, const char *after_sha256, int64_t older_than_ms, int limit,
                     json_t **due, char *err, size_t errlen);
//  Record a check of an address: integrity "ok" or "damaged", checked_at
//  now, on every photo with sha256. *marked: how many photos (0 when none
//  refers to it any more). RP_REFUSED for another integrity or sha256.
int rp_db_scrub_mark (rp_db_t *self, const char *sha256, const char *integrity, int64_t *marked,
                      char *err, size_t errlen);
//  Take a due address for a check, so that engines sharing the database
//  (several pipelines, each with a background scrub) do not check it at
//  once: its checked_at moves to now when it is still due (never checked,
//  or more than older_than_ms ago). *claimed false: another took it. An
//  engine that dies mid-check leaves the address checked_at without a
//  verdict; the next pass comes recheck later.
int rp_db_scrub_claim (rp_db_t *self, const char *sha256, int64_t older_than_ms, bool *claimed,
                       char *err, size_t errlen);
//  Complete photos by what their last check found:
//  {"ok":n,"damaged":n,"unchecked":n}.
int rp_db_scrub_counts (rp_db_t *self, json_t **counts, char *err, size_t errlen);

#endif
