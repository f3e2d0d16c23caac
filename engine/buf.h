/*  engine/buf.h: a growable byte buffer with a hard maximum, after libcurl's
    dynbuf. Every body we collect (an HTTP answer, a form we build, a text we
    sign) goes through one of these.

    The maximum is set when the buffer is made; it bounds the bytes held
    (the NUL the buffer keeps after them is not counted). Going over it, or
    running out of memory while growing, is an ordinary error: the append
    returns -1, the bytes already held stay as they were, and the buffer
    remembers why (rp_buf_error: EMSGSIZE or ENOMEM). The error is sticky:
    every later append fails too, until rp_buf_reset, so a text built from
    many appends can be checked once at the end and is never missing a
    middle piece. The bytes always end with a NUL, so a text collected
    here is a C string.

    The struct lives where its owner wants it (on the stack, in a struct);
    its fields are the buffer's own: read them through the functions.
    Self-contained (libc only), so tools outside the engine (bench/load.c)
    build it too. Not thread-safe: one owner at a time.

        rp_buf_t body;
        rp_buf_init (&body, 64 * 1024);
        rp_buf_append (&body, data, len);     //  -1 past 64 KiB
        ... rp_buf_data (&body), rp_buf_len (&body) ...
        rp_buf_free (&body);
*/
#ifndef RP_BUF_H
#define RP_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data;                         //  the bytes and a NUL; NULL until the first append
    size_t len;                         //  bytes held, at most max
    size_t size;                        //  bytes allocated (len + 1 at least, once data is set)
    size_t max;                         //  the hard maximum of len, set by rp_buf_init
    int error;                          //  0, or why an append failed (EMSGSIZE, ENOMEM) until reset
} rp_buf_t;

//  Make an empty buffer that holds at most max bytes. Allocates nothing.
void rp_buf_init (rp_buf_t *self, size_t max);
//  Free the bytes: the buffer is empty again, as after rp_buf_init with
//  the same maximum. Safe on a buffer already freed.
void rp_buf_free (rp_buf_t *self);

//  Append len bytes. 0, or -1 when they would take it over its maximum or
//  memory runs out (then nothing is appended, and the error is kept), or
//  when an earlier append failed.
int rp_buf_append (rp_buf_t *self, const void *bytes, size_t len);
//  Append a string (without its NUL). As rp_buf_append.
int rp_buf_append_str (rp_buf_t *self, const char *text);
//  Append text formatted as printf does. As rp_buf_append.
int rp_buf_printf (rp_buf_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
int rp_buf_vprintf (rp_buf_t *self, const char *fmt, va_list args) __attribute__ ((format (printf, 2, 0)));

//  The bytes held, followed by a NUL: "" when there are none. Valid until
//  the next call that changes the buffer.
const char *rp_buf_data (const rp_buf_t *self);
size_t rp_buf_len (const rp_buf_t *self);
//  0 while every append succeeded, else the first failure's reason:
//  EMSGSIZE (over the maximum) or ENOMEM (out of memory).
int rp_buf_error (const rp_buf_t *self);

//  Empty the buffer and forget its error; the memory is kept for reuse.
void rp_buf_reset (rp_buf_t *self);
//  The bytes, NUL-terminated, for the caller to free; the buffer is empty
//  after (as after rp_buf_free). A buffer that holds nothing gives a new "".
//  NULL when the buffer has an error (it is left as it was), or when
//  memory runs out making the "".
char *rp_buf_take (rp_buf_t *self);

//  A CURLOPT_WRITEFUNCTION (fwrite's shape) that appends what curl
//  receives to the rp_buf_t given as CURLOPT_WRITEDATA. Past the maximum
//  it returns 0, which stops the transfer (CURLE_WRITE_ERROR);
//  rp_buf_error tells why.
size_t rp_buf_collect (char *bytes, size_t size, size_t count, void *buf);
//  The same, but past the maximum the rest of the answer is read and
//  dropped (rp_buf_error says EMSGSIZE), so the transfer ends normally and
//  its status can be read: the buffer keeps the answer's start. It stops
//  the transfer only when memory runs out.
size_t rp_buf_collect_head (char *bytes, size_t size, size_t count, void *buf);

#endif
