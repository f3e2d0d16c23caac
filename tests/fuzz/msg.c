/*  tests/fuzz/msg.c: rp_msg_decode on arbitrary frames (engine/msg.c).

    The input is the frames of one message, split at each 0xC1 byte: 0xC1
    is the one byte msgpack never uses and never occurs in UTF-8, so the
    split costs the fuzzer nothing it could use in a tag, a command or a
    body. A message may come from another process, so whatever the frames,
    the decoder must refuse them with a reason or give a message; and what
    it gives must encode and decode again to the same fields (a message we
    accept is one we can forward: the broker copies SUBMIT into JOB, a
    worker's DONE into RESULT).

    Seeds: tests/fuzz/corpus/msg (one of each command, and broken ones);
    dictionary: tests/fuzz/msg.dict.
*/
#include "engine/msg.h"
#include "tests/fuzz/fuzz.h"

#include <stddef.h>

//  The string fields, by name and place
static const struct {
    const char *name;
    size_t offset;
} s_strings [] = {
#define S_FIELD(f) { #f, offsetof (rp_msg_t, f) }
    S_FIELD (job_id), S_FIELD (kind), S_FIELD (pool), S_FIELD (worker), S_FIELD (src),
    S_FIELD (dest), S_FIELD (photo_id), S_FIELD (trace), S_FIELD (status), S_FIELD (result), S_FIELD (error),
};

static const char *
s_field (const rp_msg_t *msg, size_t i)
{
    return *(char *const *) ((const char *) msg + s_strings [i].offset);
}

static void
s_check_same (const rp_msg_t *a, const rp_msg_t *b)
{
    RP_FUZZ_CHECK (a->command == b->command, "command %d became %d", a->command, b->command);
    for (size_t i = 0; i < sizeof s_strings / sizeof s_strings [0]; i++) {
        const char *fa = s_field (a, i), *fb = s_field (b, i);
        RP_FUZZ_CHECK ((fa == NULL) == (fb == NULL), "field %s present once only", s_strings [i].name);
        RP_FUZZ_CHECK (!fa || strcmp (fa, fb) == 0, "field %s changed", s_strings [i].name);
    }
    RP_FUZZ_CHECK (a->attempt == b->attempt && a->timeout_ms == b->timeout_ms
                   && a->duration_ms == b->duration_ms && a->pid == b->pid, "an integer field changed");
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    rp_fuzz_in_t in = rp_fuzz_in (data, size);
    zmsg_t *zmsg = rp_fuzz_frames (&in);

    char err [256] = "";
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    RP_FUZZ_CHECK (msg || err [0], "refused without a reason");
    if (msg) {
        RP_FUZZ_CHECK (strcmp (rp_command_name (msg->command), "?") != 0, "unknown command %d", msg->command);
        zmsg_t *wire = rp_msg_encode (msg);
        rp_msg_t *back = rp_msg_decode (wire, err, sizeof err);
        RP_FUZZ_CHECK (back, "a message it accepted does not read back: %s", err);
        s_check_same (msg, back);
        rp_msg_t *copy = rp_msg_dup (msg);
        s_check_same (msg, copy);
        rp_msg_destroy (&copy);
        rp_msg_destroy (&back);
        zmsg_destroy (&wire);
        rp_msg_destroy (&msg);
    }
    zmsg_destroy (&zmsg);
    return 0;
}
