/*  engine/utf8.h: UTF-8 as PostgreSQL takes it.

    One definition of valid text for everything that reaches the database
    or a person: well-formed sequences only, no overlong forms (C0 AF for
    "/"), no UTF-16 surrogates (U+D800..U+DFFF, ED A0 80...), nothing past
    U+10FFFF, no NUL. SQLite would store anything; PostgreSQL refuses the
    rest, so both backends are held to this.
*/
#ifndef RP_UTF8_H
#define RP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

//  The length (1..4) of the valid character at the start of s (len bytes
//  available), or 0 when what starts there is not one.
size_t rp_utf8_char (const char *s, size_t len);

//  True when all len bytes of text are valid characters.
bool rp_utf8_valid (const char *text, size_t len);

#endif
