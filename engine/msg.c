/*  engine/msg.c: see msg.h. The field table below is the single place that
    maps names on the wire to struct fields; schemas/messages.md describes it
    for people.

    A body comes from another process, so the decoder allocates nothing
    whose size the body declares before checking it (engine/alloc.h):
    the frame is at most RP_MSG_BODY_MAX, every length and count the
    msgpack declares is checked against the bytes that hold it
    (s_check_sizes) before msgpack's unpacker builds its tree, each string
    kept is at most S_STRING_MAX, and every allocation is checked. */
#include "engine/msg.h"
#include "engine/alloc.h"
#include "engine/log.h"

#include <msgpack.h>
#include <stdarg.h>
#include <string.h>

static const char *s_command_names [] = {
    NULL, "READY", "JOB", "DONE", "FAILED", "HEARTBEAT", "DISCONNECT", "SUBMIT", "RESULT",
    "STATUS"
};
#define S_COMMAND_MAX RP_MSG_STATUS

typedef struct {
    const char *name;
    size_t offset;
    int is_string;
} s_field_t;

#define SF(f) { #f, offsetof (rp_msg_t, f), 1 }
#define IF(f) { #f, offsetof (rp_msg_t, f), 0 }
static const s_field_t s_fields [] = {
    SF (job_id), SF (kind), SF (pool), SF (worker), SF (src), SF (dest), SF (photo_id), SF (trace),
    SF (status), SF (result), SF (error),
    IF (attempt), IF (timeout_ms), IF (duration_ms), IF (pid), IF (retry),
};
#define S_FIELD_COUNT (sizeof s_fields / sizeof s_fields [0])

#define S_STRING_MAX (512 * 1024)           //  any single string value

//  The body frame crosses threads through libzmq's lock-free pipes, which
//  ThreadSanitizer cannot see (libzmq is not built with it): czmq copies the
//  body into the frame in the sending actor's thread, the receiving actor
//  reads it in its own. In a -DRP_TSAN=ON build the sender releases the
//  frame's bytes and the receiver acquires them, the happens-before edge the
//  pipe really provides; a report whose writing stack TSan has forgotten
//  under load could otherwise match no suppression. Elsewhere, nothing.
#if defined (__SANITIZE_THREAD__)
void __tsan_acquire (void *addr);
void __tsan_release (void *addr);
#   define s_handover_release(frame) __tsan_release (zframe_data (frame))
#   define s_handover_acquire(frame) __tsan_acquire (zframe_data (frame))
#else
#   define s_handover_release(frame) ((void) (frame))
#   define s_handover_acquire(frame) ((void) (frame))
#endif

rp_msg_t *
rp_msg_new (rp_command_t command)
{
    rp_msg_t *self = (rp_msg_t *) rp_alloc (sizeof (rp_msg_t));
    self->command = command;
    return self;
}

void
rp_msg_destroy (rp_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    rp_msg_t *self = *self_p;
    for (size_t i = 0; i < S_FIELD_COUNT; i++)
        if (s_fields [i].is_string)
            free (*(char **) ((char *) self + s_fields [i].offset));
    free (self);
    *self_p = NULL;
}

void
rp_msg_set (char **field, const char *value)
{
    free (*field);
    *field = rp_strdup (value);
}

void
rp_msg_setf (char **field, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = rp_vstrdupf (fmt, args);
    va_end (args);
    free (*field);
    *field = text;
}

rp_msg_t *
rp_msg_dup (const rp_msg_t *self)
{
    rp_msg_t *copy = rp_msg_new (self->command);
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const char *from = (const char *) self + s_fields [i].offset;
        char *to = (char *) copy + s_fields [i].offset;
        if (s_fields [i].is_string)
            rp_msg_set ((char **) to, *(char *const *) from);
        else
            *(int64_t *) to = *(const int64_t *) from;
    }
    return copy;
}

const char *
rp_command_name (rp_command_t command)
{
    if (command < 1 || command > S_COMMAND_MAX)
        return "?";
    return s_command_names [command];
}

static int
s_has_body (rp_command_t command)
{
    return command != RP_MSG_HEARTBEAT && command != RP_MSG_DISCONNECT;
}

//  msgpack's sbuffer reports a failed realloc instead of stopping; the
//  body is ours (its strings were bounded when they came in), so out of
//  memory is fatal, as for any allocation of ours
static int
s_sbuffer_write (void *data, const char *bytes, size_t len)
{
    if (msgpack_sbuffer_write (data, bytes, len))
        rp_out_of_memory (len);
    return 0;
}

zmsg_t *
rp_msg_encode (const rp_msg_t *self)
{
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addstr (zmsg, RP_PROTOCOL);
    zmsg_addstr (zmsg, rp_command_name (self->command));
    if (!s_has_body (self->command))
        return zmsg;

    //  Count the fields present, then pack them as one map
    size_t present = 0;
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const char *field = (const char *) self + s_fields [i].offset;
        if (s_fields [i].is_string ? *(char *const *) field != NULL : *(const int64_t *) field != 0)
            present++;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, s_sbuffer_write);
    msgpack_pack_map (&packer, present);
    for (size_t i = 0; i < S_FIELD_COUNT; i++) {
        const char *field = (const char *) self + s_fields [i].offset;
        if (s_fields [i].is_string) {
            const char *value = *(char *const *) field;
            if (!value)
                continue;
            size_t klen = strlen (s_fields [i].name), vlen = strlen (value);
            msgpack_pack_str (&packer, klen);
            msgpack_pack_str_body (&packer, s_fields [i].name, klen);
            msgpack_pack_str (&packer, vlen);
            msgpack_pack_str_body (&packer, value, vlen);
        }
        else {
            int64_t value = *(const int64_t *) field;
            if (value == 0)
                continue;
            size_t klen = strlen (s_fields [i].name);
            msgpack_pack_str (&packer, klen);
            msgpack_pack_str_body (&packer, s_fields [i].name, klen);
            msgpack_pack_int64 (&packer, value);
        }
    }
    zmsg_addmem (zmsg, buffer.data, buffer.size);
    s_handover_release (zmsg_last (zmsg));
    msgpack_sbuffer_destroy (&buffer);
    return zmsg;
}

static const s_field_t *
s_field_find (const char *key, size_t len)
{
    for (size_t i = 0; i < S_FIELD_COUNT; i++)
        if (strlen (s_fields [i].name) == len && memcmp (s_fields [i].name, key, len) == 0)
            return &s_fields [i];
    return NULL;
}

//  Walk one msgpack object at the start of size bytes, allocating nothing,
//  and check every length it declares against the bytes left: a string's
//  or binary's bytes must be there, and each element a map or array
//  declares takes at least one byte, so the objects still to read never
//  outnumber the bytes left. The unpacker allocates a container's slots
//  when it reads the container's count: after this walk the whole tree
//  holds at most one object per byte of the body. 0, or -1 when a length
//  runs past the end or a byte is no msgpack type (trailing bytes after
//  the object are left to the caller).
static int
s_check_sizes (const unsigned char *bytes, size_t size)
{
    const unsigned char *p = bytes, *end = bytes + size;
    uint64_t pending = 1;               //  objects still to read
    while (pending > 0) {
        if (pending > (uint64_t) (end - p))
            return -1;
        unsigned char type = *p++;
        pending--;
        uint64_t length = 0;            //  from the type byte, or the length field
        size_t width = 0;               //  bytes of the length field after the type
        uint64_t extra = 0;             //  bytes after it besides those it counts
        enum { S_SCALAR, S_BYTES, S_ITEMS, S_PAIRS } counts = S_SCALAR;
        if (type <= 0x7f || type >= 0xe0 || type == 0xc0 || type == 0xc2 || type == 0xc3)
            ;                           //  fixint, nil, false, true: the byte is all
        else
        if (type <= 0x8f)
            counts = S_PAIRS, length = type & 0x0f;         //  fixmap
        else
        if (type <= 0x9f)
            counts = S_ITEMS, length = type & 0x0f;         //  fixarray
        else
        if (type <= 0xbf)
            counts = S_BYTES, length = type & 0x1f;         //  fixstr
        else
        switch (type) {
            case 0xc4: case 0xd9: counts = S_BYTES, width = 1; break;              //  bin8, str8
            case 0xc5: case 0xda: counts = S_BYTES, width = 2; break;              //  bin16, str16
            case 0xc6: case 0xdb: counts = S_BYTES, width = 4; break;              //  bin32, str32
            case 0xc7: counts = S_BYTES, width = 1, extra = 1; break;              //  ext8: and its type
            case 0xc8: counts = S_BYTES, width = 2, extra = 1; break;              //  ext16
            case 0xc9: counts = S_BYTES, width = 4, extra = 1; break;              //  ext32
            case 0xcc: case 0xd0: extra = 1; break;                                //  uint8, int8
            case 0xcd: case 0xd1: extra = 2; break;                                //  uint16, int16
            case 0xca: case 0xce: case 0xd2: extra = 4; break;                     //  float32, (u)int32
            case 0xcb: case 0xcf: case 0xd3: extra = 8; break;                     //  float64, (u)int64
            case 0xd4: extra = 2; break;                                           //  fixext1 .. fixext16:
            case 0xd5: extra = 3; break;                                           //  a type, then the data
            case 0xd6: extra = 5; break;
            case 0xd7: extra = 9; break;
            case 0xd8: extra = 17; break;
            case 0xdc: counts = S_ITEMS, width = 2; break;                         //  array16
            case 0xdd: counts = S_ITEMS, width = 4; break;                         //  array32
            case 0xde: counts = S_PAIRS, width = 2; break;                         //  map16
            case 0xdf: counts = S_PAIRS, width = 4; break;                         //  map32
            default: return -1;                                                    //  0xc1: never used
        }
        if (width > (size_t) (end - p))
            return -1;
        for (size_t i = 0; i < width; i++)
            length = length << 8 | *p++;            //  big-endian
        uint64_t skip = extra + (counts == S_BYTES ? length : 0);
        if (skip > (uint64_t) (end - p))
            return -1;
        p += skip;
        pending += counts == S_ITEMS ? length : counts == S_PAIRS ? 2 * length : 0;
    }
    return 0;
}

rp_msg_t *
rp_msg_decode (zmsg_t *zmsg, char *err, size_t errlen)
{
    size_t frames = zmsg_size (zmsg);
    if (frames < 2) {
        snprintf (err, errlen, "message has %zu frames, expected at least 2", frames);
        return NULL;
    }
    zframe_t *tag = zmsg_first (zmsg);
    if (!zframe_streq (tag, RP_PROTOCOL)) {
        snprintf (err, errlen, "message does not start with protocol tag %s", RP_PROTOCOL);
        return NULL;
    }
    zframe_t *name = zmsg_next (zmsg);
    rp_command_t command = 0;
    for (int c = 1; c <= S_COMMAND_MAX; c++)
        if (zframe_streq (name, s_command_names [c]))
            command = (rp_command_t) c;
    if (!command) {
        snprintf (err, errlen, "unknown command (%zu bytes)", zframe_size (name));
        return NULL;
    }
    rp_msg_t *self = rp_msg_new (command);
    if (!s_has_body (command)) {
        if (frames != 2) {
            snprintf (err, errlen, "%s carries %zu frames, expected 2", rp_command_name (command), frames);
            rp_msg_destroy (&self);
        }
        return self;
    }
    zframe_t *body = zmsg_next (zmsg);
    if (!body || frames != 3) {
        snprintf (err, errlen, "%s needs exactly one body frame", rp_command_name (command));
        rp_msg_destroy (&self);
        return NULL;
    }
    s_handover_acquire (body);
    if (zframe_size (body) > RP_MSG_BODY_MAX) {
        snprintf (err, errlen, "%s body of %zu bytes is over the %d byte limit",
                  rp_command_name (command), zframe_size (body), RP_MSG_BODY_MAX);
        rp_msg_destroy (&self);
        return NULL;
    }
    if (s_check_sizes (zframe_data (body), zframe_size (body))) {
        snprintf (err, errlen, "%s body is not valid msgpack, or declares more than its %zu bytes hold", rp_command_name (command),
                  zframe_size (body));
        rp_msg_destroy (&self);
        return NULL;
    }
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (&unpacked, (const char *) zframe_data (body),
                                                    zframe_size (body), &offset);
    int ok = 0;
    if (rc != MSGPACK_UNPACK_SUCCESS) {
        snprintf (err, errlen, "%s body is not valid msgpack", rp_command_name (command));
        goto done;
    }
    if (offset != zframe_size (body)) {
        snprintf (err, errlen, "%s body has trailing bytes", rp_command_name (command));
        goto done;
    }
    msgpack_object root = unpacked.data;
    if (root.type != MSGPACK_OBJECT_MAP) {
        snprintf (err, errlen, "%s body is not a map", rp_command_name (command));
        goto done;
    }
    for (uint32_t i = 0; i < root.via.map.size; i++) {
        msgpack_object key = root.via.map.ptr [i].key;
        msgpack_object value = root.via.map.ptr [i].val;
        if (key.type != MSGPACK_OBJECT_STR) {
            snprintf (err, errlen, "%s body has a key that is not a string", rp_command_name (command));
            goto done;
        }
        const s_field_t *field = s_field_find (key.via.str.ptr, key.via.str.size);
        if (!field)
            continue;                   //  From a newer peer: ignore
        char *slot = (char *) self + field->offset;
        if (field->is_string) {
            if (value.type != MSGPACK_OBJECT_STR || value.via.str.size > S_STRING_MAX
            ||  memchr (value.via.str.ptr, 0, value.via.str.size)) {
                snprintf (err, errlen, "%s field %s must be a string without NULs, under %d bytes",
                          rp_command_name (command), field->name, S_STRING_MAX);
                goto done;
            }
            char **target = (char **) slot;
            free (*target);
            *target = strndup (value.via.str.ptr, value.via.str.size);     //  bounded above
            if (!*target) {
                snprintf (err, errlen, "%s field %s: out of memory", rp_command_name (command), field->name);
                goto done;
            }
        }
        else {
            if (value.type == MSGPACK_OBJECT_POSITIVE_INTEGER && value.via.u64 <= INT64_MAX)
                *(int64_t *) slot = (int64_t) value.via.u64;
            else
            if (value.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                *(int64_t *) slot = value.via.i64;
            else {
                snprintf (err, errlen, "%s field %s must be an integer",
                          rp_command_name (command), field->name);
                goto done;
            }
        }
    }
    //  Each command's required fields
    switch (command) {
        case RP_MSG_READY:
            ok = self->pool != NULL;
            break;
        case RP_MSG_JOB:
        case RP_MSG_SUBMIT:
            ok = self->job_id && self->kind && self->src;
            break;
        case RP_MSG_DONE:
            ok = self->job_id && self->result;
            break;
        case RP_MSG_FAILED:
            ok = self->job_id && self->error;
            break;
        case RP_MSG_RESULT:
            ok = self->job_id && self->status;
            break;
        default:
            ok = 1;
    }
    if (!ok)
        snprintf (err, errlen, "%s lacks a required field", rp_command_name (command));
done:
    msgpack_unpacked_destroy (&unpacked);
    if (!ok)
        rp_msg_destroy (&self);
    return self;
}

int
rp_msg_send (const rp_msg_t *self, void *socket, zframe_t *identity)
{
    zmsg_t *zmsg = rp_msg_encode (self);
    if (identity)
        zmsg_prepend (zmsg, &(zframe_t *) { zframe_dup (identity) });
    int rc = zmsg_send (&zmsg, socket);
    if (rc)
        zmsg_destroy (&zmsg);
    return rc;
}
