/*  engine/alloc.h: what the code does when memory runs out, decided once.

    THE POLICY. There are two kinds of allocation, and each has one answer.

    1.  A size that comes from outside: the network (HTTP bodies, messages
        from another process, S3 and SQS answers), a file, an upload, a SQL
        result. It is bounded before anything is allocated: checked against
        a named maximum (RP_MSG_BODY_MAX, a buffer's max, a file size limit)
        and refused past it. Then it is allocated with malloc/calloc, or
        collected in an rp_buf_t (engine/buf.h), and the result is checked:
        a failure is an ordinary error (-1 or NULL with err, "out of memory")
        that reaches the caller like any other refusal. Nothing from outside
        can make the process allocate without bound, or stop it.

    2.  A small allocation of our own: a struct, a copy of a name, a path, a
        string already held in memory (its size was bounded when it came
        in). These use rp_alloc, rp_realloc, rp_strdup, rp_strndup and
        rp_vstrdupf below, which never return NULL: when one fails the process
        cannot do anything useful, so it writes one log line and aborts (as
        redis's zmalloc_oom_handler does). czmq's zmalloc and czmq's own
        constructors (zmsg_new, zframe_new, zhash_new ...) abort the same way,
        so they follow the policy too; our code calls rp_alloc.

    A call whose result may not be NULL is never left unchecked: it is
    either of kind 1 and checked, or of kind 2 and one of the functions
    below. Code that already turns a small failed allocation into an error
    (a constructor returning NULL with "out of memory") may keep doing so.
*/
#ifndef RP_ALLOC_H
#define RP_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

//  size zeroed bytes (at least 1). Never NULL: out of memory aborts.
void *rp_alloc (size_t size);
//  realloc that never returns NULL: out of memory aborts.
void *rp_realloc (void *ptr, size_t size);
//  A copy of text; NULL only when text is NULL. Out of memory aborts.
char *rp_strdup (const char *text);
//  A copy of at most len bytes of text, NUL-terminated; NULL only when text
//  is NULL. Out of memory aborts.
char *rp_strndup (const char *text, size_t len);
//  A new string formatted as vprintf does. Never NULL: out of memory aborts.
char *rp_vstrdupf (const char *fmt, va_list args) __attribute__ ((format (printf, 1, 0)));

//  For a library that reports a failed allocation of ours instead of
//  returning it (msgpack's sbuffer): log one line and abort.
void rp_out_of_memory (size_t size) __attribute__ ((noreturn));

#endif
