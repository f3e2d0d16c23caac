/*  engine/alloc.c: see alloc.h (the out-of-memory policy). */
#include "engine/alloc.h"
#include "engine/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  The one way out: rp_log writes from the stack, so it works with no heap.
void
rp_out_of_memory (size_t size)
{
    rp_error ("alloc", "out of memory allocating %zu bytes: stopping", size);
    abort ();
}

void *
rp_alloc (size_t size)
{
    void *mem = calloc (1, size ? size : 1);
    if (!mem)
        rp_out_of_memory (size);
    return mem;
}

void *
rp_realloc (void *ptr, size_t size)
{
    void *mem = realloc (ptr, size ? size : 1);
    if (!mem)
        rp_out_of_memory (size);
    return mem;
}

char *
rp_strndup (const char *text, size_t len)
{
    if (!text)
        return NULL;
    char *copy = strndup (text, len);
    if (!copy)
        rp_out_of_memory (len + 1);
    return copy;
}

char *
rp_strdup (const char *text)
{
    return text ? rp_strndup (text, strlen (text)) : NULL;
}

char *
rp_vstrdupf (const char *fmt, va_list args)
{
    char *text = NULL;
    if (vasprintf (&text, fmt, args) < 0)
        rp_out_of_memory (strlen (fmt));
    return text;
}
