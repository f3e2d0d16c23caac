/*  engine/db/db_timeline.c: the gallery by date taken or by upload time,
    with from/to bounds (rp_db_photo_timeline, see db.h).

    DESIGN
    - The sort key. sort=created_at: created_at, the upload time.
      sort=taken_at: coalesce (taken_sort, created_at), where taken_sort is
      taken_at (the camera's local time, "YYYY-MM-DDTHH:MM:SS[+HH:MM]")
      normalised to UTC in created_at's form; a taken_at without an offset
      is taken as it is (read as UTC: nothing better is known). Schema V8
      keeps taken_sort in step with taken_at by triggers, on both backends,
      and indexes (user_id, key DESC, id DESC), with a status variant. A
      photo without a date taken, or not processed yet, sorts by its upload
      time; its key moves to its date taken when its EXIF result commits.
    - Keyset pagination, newest first on (key, id): a page is the rows
      strictly below the last row of the previous one, so a photo arriving
      while a client pages (its upload time is now) never shifts, repeats or
      hides a row it has not seen yet. The cursor is the last row's key and
      id (as rp_db_cursor_encode writes them); a taken_at cursor is prefixed
      "t." so that neither sort takes the other's cursor. A created_at
      cursor is exactly rp_db_photo_list's: clients paging across an
      upgrade keep working.
    - from/to are ISO 8601 instants (a date, or a date and a time, with an
      optional fraction and Z/+HH:MM/-HH:MM; none means UTC), normalised here
      to the key's form; they bound the key half-open: from <= key < to. The
      cursor and `to` are one upper bound in SQL: the lower of the two.
*/
#include "engine/db/db_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_LIST_DEFAULT   50
#define S_LIST_MAX       500
#define S_TAKEN_PREFIX   "t."

//  Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's)
static int64_t
s_days_from_civil (int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void
s_civil_from_days (int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (mp < 10 ? 0 : 1) + yoe + era * 400;
}

//  `n` digits at *p into *value, advancing *p; false if not digits
static bool
s_digits (const char **p, int n, int *value)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p) [i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *value = v;
    return true;
}

int
rp_db_instant_parse (const char *text, char out [32], char *err, size_t errlen)
{
    int year, month, day, hour = 0, minute = 0, second = 0, ms = 0, sign = 0, oh = 0, om = 0;
    const char *p = text;
    if (!text || strlen (text) > 40)
        goto bad;
    if (!s_digits (&p, 4, &year) || *p++ != '-' || !s_digits (&p, 2, &month) || *p++ != '-'
    ||  !s_digits (&p, 2, &day))
        goto bad;
    if (*p == 'T' || *p == 't') {
        p++;
        if (!s_digits (&p, 2, &hour) || *p++ != ':' || !s_digits (&p, 2, &minute))
            goto bad;
        if (*p == ':') {
            p++;
            if (!s_digits (&p, 2, &second))
                goto bad;
            if (*p == '.' || *p == ',') {
                p++;
                int n = 0;
                for (; *p >= '0' && *p <= '9'; p++, n++)
                    if (n < 3)
                        ms = ms * 10 + (*p - '0');
                if (n == 0 || n > 9)
                    goto bad;
                for (; n < 3; n++)
                    ms *= 10;
            }
        }
        //  A '+' left unescaped in a query string arrives as a space
        if (*p == 'Z' || *p == 'z')
            p++;
        else
        if (*p == '+' || *p == ' ' || *p == '-') {
            sign = *p == '-' ? -1 : 1;
            p++;
            if (!s_digits (&p, 2, &oh))
                goto bad;
            if (*p == ':')
                p++;
            if (!s_digits (&p, 2, &om) || oh > 23 || om > 59)
                goto bad;
        }
    }
    if (*p)
        goto bad;
    static const int month_days [] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12 || day < 1 || day > month_days [month - 1]
    ||  (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 59)
        goto bad;
    int64_t seconds = s_days_from_civil (year, month, day) * 86400
                    + hour * 3600 + minute * 60 + second - sign * (oh * 3600 + om * 60);
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;
    int64_t y;
    int m, d;
    s_civil_from_days (days, &y, &m, &d);
    if (y < 1 || y > 9999)          //  PostgreSQL has no year 0
        goto bad;
    snprintf (out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int) y, m, d, (int) (rest / 3600),
              (int) (rest % 3600 / 60), (int) (rest % 60), ms);
    return 0;
bad:
    rp_db_err (err, errlen, "not an ISO 8601 date or time (2024-06-01, 2024-06-01T18:30:00Z, "
                            "2024-06-01T20:30:00+02:00)");
    return RP_REFUSED;
}

//  An upper bound in SQL: (key, id) < (key, id); the lower of a and b
static void
s_lower_bound (const char *a_key, const char *a_id, const char *b_key, const char *b_id,
               const char **key, const char **id)
{
    int order = strcmp (a_key, b_key);
    if (order < 0 || (order == 0 && strcmp (a_id, b_id) < 0)) {
        *key = a_key;
        *id = a_id;
    }
    else {
        *key = b_key;
        *id = b_id;
    }
}

int
rp_db_photo_timeline (rp_db_t *self, const char *user_id, const rp_db_timeline_t *query,
                      json_t **page, char *err, size_t errlen)
{
    *page = NULL;
    int limit = query->limit <= 0 ? S_LIST_DEFAULT : query->limit > S_LIST_MAX ? S_LIST_MAX : query->limit;
    //  An empty parameter is no parameter
    const char *cursor = query->cursor && *query->cursor ? query->cursor : NULL;
    const char *tag = query->tag && *query->tag ? query->tag : NULL;
    const char *status = query->status && *query->status ? query->status : NULL;
    const char *sort = query->sort && *query->sort ? query->sort : "created_at";
    const char *from = query->from && *query->from ? query->from : NULL;
    const char *to = query->to && *query->to ? query->to : NULL;
    bool taken = strcmp (sort, "taken_at") == 0;
    if (!taken && strcmp (sort, "created_at") != 0) {
        rp_db_err (err, errlen, "sort: use created_at (upload time) or taken_at (date taken)");
        return RP_REFUSED;
    }
    char why [192];
    char from_key [32], to_key [32], after_key [32], after_id [RP_ID_MAX], clean_tag [65];
    if (from && rp_db_instant_parse (from, from_key, why, sizeof why)) {
        rp_db_err (err, errlen, "from: %s", why);
        return RP_REFUSED;
    }
    if (to && rp_db_instant_parse (to, to_key, why, sizeof why)) {
        rp_db_err (err, errlen, "to: %s", why);
        return RP_REFUSED;
    }
    if (from && to && strcmp (from_key, to_key) >= 0) {
        rp_db_err (err, errlen, "from must be before to (from is inclusive, to exclusive)");
        return RP_REFUSED;
    }
    if (cursor) {
        bool prefixed = strncmp (cursor, S_TAKEN_PREFIX, strlen (S_TAKEN_PREFIX)) == 0;
        int refused = rp_db_cursor_decode (cursor + (prefixed ? strlen (S_TAKEN_PREFIX) : 0),
                                           after_key, after_id, err, errlen);
        if (refused)
            return refused;
        if (prefixed != taken) {
            rp_db_err (err, errlen, "cursor: it belongs to sort=%s: pass the same sort as the first page",
                       prefixed ? "taken_at" : "created_at");
            return RP_REFUSED;
        }
    }
    if (status && !rp_db_valid_status (status)) {
        rp_db_err (err, errlen, "status: use uploading, queued, processing, complete or failed");
        return RP_REFUSED;
    }
    if (tag) {
        int refused = rp_db_tag_clean (tag, strlen (tag), clean_tag, err, errlen);
        if (refused)
            return refused;
    }
    json_t *result = json_object ();
    json_object_set_new (result, "items", json_array ());
    json_object_set_new (result, "next_cursor", json_null ());
    if (!rp_db_valid_id (user_id)) {
        *page = result;             //  nobody's library is empty
        return 0;
    }
    const char *before_key = NULL, *before_id = NULL;
    if (cursor && to)
        s_lower_bound (after_key, after_id, to_key, "", &before_key, &before_id);
    else
    if (cursor) {
        before_key = after_key;
        before_id = after_id;
    }
    else
    if (to) {
        before_key = to_key;
        before_id = "";             //  (key, id) < (to, ""): key < to
    }
    //  One row more than asked tells whether there is a next page
    char fetch [16];
    snprintf (fetch, sizeof fetch, "%d", limit + 1);
    const char *params [] = { user_id, tag ? clean_tag : NULL, fetch, before_key, before_id,
                              from ? from_key : NULL, status };
    rp_sql_t sql = taken ? (status ? RP_SQL_TIMELINE_TAKEN_STATUS : RP_SQL_TIMELINE_TAKEN)
                         : (status ? RP_SQL_TIMELINE_CREATED_STATUS : RP_SQL_TIMELINE_CREATED);
    rp_rows_t rows = { 0 };
    if (rp_db_exec (self, sql, params, status ? 7 : 6, &rows, err, errlen)) {
        json_decref (result);
        return -1;
    }
    json_t *items = json_array ();
    char last_key [32] = "", last_id [RP_ID_MAX] = "";
    int r;
    for (r = 0; r < rows.rows && r < limit; r++) {
        json_t *photo = rows.cols > RP_PC_COUNT ? rp_db_photo_json (&rows, r, err, errlen) : NULL;
        const char *key = rp_rows_get (&rows, r, RP_PC_COUNT);
        const char *id = rp_rows_get (&rows, r, RP_PC_ID);
        if (!photo || !key || !id || strlen (key) >= sizeof last_key) {
            json_decref (photo);
            break;
        }
        snprintf (last_key, sizeof last_key, "%s", key);
        snprintf (last_id, sizeof last_id, "%s", id);
        json_array_append_new (items, photo);
    }
    bool failed = r < rows.rows && r < limit;
    bool more = rows.rows > limit;
    rp_rows_clear (&rows);
    json_object_set_new (result, "items", items);
    char next [200];
    size_t prefix = taken ? strlen (S_TAKEN_PREFIX) : 0;
    snprintf (next, sizeof next, "%s", taken ? S_TAKEN_PREFIX : "");
    if (failed || (more && rp_db_cursor_encode (last_key, last_id, next + prefix, sizeof next - prefix))) {
        json_decref (result);
        rp_db_err (err, errlen, "unreadable photo row");
        return -1;
    }
    if (more)
        json_object_set_new (result, "next_cursor", json_string (next));
    *page = result;
    return 0;
}
