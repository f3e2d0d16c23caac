/*  engine/buf.c: see buf.h. */
#include "engine/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_FIRST_SIZE 64                 //  the first allocation: most texts are short

void
rp_buf_init (rp_buf_t *self, size_t max)
{
    memset (self, 0, sizeof *self);
    self->max = max;
}

void
rp_buf_free (rp_buf_t *self)
{
    free (self->data);
    rp_buf_init (self, self->max);
}

//  Room for len more bytes and the NUL. 0, or -1 with the error kept.
static int
s_room (rp_buf_t *self, size_t len)
{
    if (self->error)
        return -1;
    if (len > self->max - self->len) {
        self->error = EMSGSIZE;
        return -1;
    }
    size_t need = self->len + len + 1;
    if (need <= self->size)
        return 0;
    //  Double, to keep appends linear, but never past what max allows
    size_t limit = self->max < SIZE_MAX ? self->max + 1 : SIZE_MAX;
    size_t size = self->size ? self->size : S_FIRST_SIZE;
    while (size < need)
        size = size > limit / 2 ? limit : size * 2;
    if (size > limit)
        size = limit;
    char *grown = (char *) realloc (self->data, size);
    if (!grown) {
        self->error = ENOMEM;
        return -1;
    }
    self->data = grown;
    self->size = size;
    return 0;
}

int
rp_buf_append (rp_buf_t *self, const void *bytes, size_t len)
{
    if (s_room (self, len))
        return -1;
    if (len)
        memcpy (self->data + self->len, bytes, len);
    self->len += len;
    self->data [self->len] = 0;
    return 0;
}

int
rp_buf_append_str (rp_buf_t *self, const char *text)
{
    return rp_buf_append (self, text, strlen (text));
}

int
rp_buf_vprintf (rp_buf_t *self, const char *fmt, va_list args)
{
    if (self->error)
        return -1;
    va_list copy;
    va_copy (copy, args);
    int len = vsnprintf (NULL, 0, fmt, copy);
    va_end (copy);
    if (len < 0) {
        self->error = EINVAL;           //  not something our formats do
        return -1;
    }
    if (s_room (self, (size_t) len))
        return -1;
    vsnprintf (self->data + self->len, (size_t) len + 1, fmt, args);
    self->len += (size_t) len;
    return 0;
}

int
rp_buf_printf (rp_buf_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int rc = rp_buf_vprintf (self, fmt, args);
    va_end (args);
    return rc;
}

const char *
rp_buf_data (const rp_buf_t *self)
{
    return self->data ? self->data : "";
}

size_t
rp_buf_len (const rp_buf_t *self)
{
    return self->len;
}

int
rp_buf_error (const rp_buf_t *self)
{
    return self->error;
}

void
rp_buf_reset (rp_buf_t *self)
{
    self->len = 0;
    self->error = 0;
    if (self->data)
        self->data [0] = 0;
}

char *
rp_buf_take (rp_buf_t *self)
{
    if (self->error)
        return NULL;
    char *bytes = self->data ? self->data : (char *) calloc (1, 1);
    rp_buf_init (self, self->max);
    return bytes;
}

size_t
rp_buf_collect (char *bytes, size_t size, size_t count, void *buf)
{
    return rp_buf_append ((rp_buf_t *) buf, bytes, size * count) == 0 ? size * count : 0;
}

size_t
rp_buf_collect_head (char *bytes, size_t size, size_t count, void *buf)
{
    rp_buf_t *self = (rp_buf_t *) buf;
    if (rp_buf_append (self, bytes, size * count) && self->error == ENOMEM)
        return 0;
    return size * count;
}
