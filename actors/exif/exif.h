/*  actors/exif/exif.h: read a photo's identity and EXIF metadata.

    rp_exif_read is the work of the exif job kind (actors/actors.c's
    handler calls rp_exif_read_stored on a worker's thread): it reads the
    file (bounded by max_bytes), computes its SHA-256 (or takes it from the
    store address the file was found by), decides its type by
    its bytes, and extracts EXIF with libexif. Malformed EXIF yields what can
    still be read; no EXIF yields nulls. Stateless and thread-safe.
*/
#ifndef RP_EXIF_H
#define RP_EXIF_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

//  On success returns 0 and sets *result (caller owns) to
//      {"sha256":"<hex>","bytes":N,"content_type":"image/jpeg"|null,
//       "width":W|null,"height":H|null,      // as displayed, after orientation
//       "taken_at":"2019-07-01T12:00:00+02:00"|"2019-07-01T12:00:00"|null,
//       "exif":{"make","model","lens","exposure_time","f_number","iso",
//               "focal_length","orientation","gps":{"lat","lon","alt"}|null}}
//  (every exif field may be null). Returns -1 with a readable reason in err
//  only when the file cannot be read at all or is larger than max_bytes.
int rp_exif_read (const char *src, int64_t max_bytes, json_t **result,
                  char *err, size_t errlen);

//  rp_exif_read on bytes in memory (data: borrowed, size bytes), as for a
//  file holding them; name is the file's, for the log line (NULL: none).
//  Returns -1 only when the digest fails or memory runs out.
int rp_exif_read_buffer (const unsigned char *data, size_t size, const char *name, json_t **result,
                         char *err, size_t errlen);

//  rp_exif_read, and on success, when timings is not NULL, *timings (caller
//  owns) = {"read_ms","hash_ms","exif_ms"}: where the time went, for the
//  stage breakdown. Kept apart so the result stays the same for the same file.
int rp_exif_read_timed (const char *src, int64_t max_bytes, json_t **result,
                        json_t **timings, char *err, size_t errlen);

//  rp_exif_read_timed for an original in the blob store, whose SHA-256 is
//  its address (64 lowercase hex digits), checked when its bytes went in:
//  the bytes are not hashed again, "sha256" is that address and hash_ms 0.
//  sha256 NULL: hashed, as rp_exif_read_timed.
int rp_exif_read_stored (const char *src, const char *sha256, int64_t max_bytes, json_t **result,
                         json_t **timings, char *err, size_t errlen);

#endif
