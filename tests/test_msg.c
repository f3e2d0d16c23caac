/*  tests/test_msg.c: the message codec, and what it refuses. */
#include <criterion/criterion.h>
#include <msgpack.h>
#include <string.h>

#include "engine/msg.h"

Test (msg, round_trip_keeps_every_field)
{
    rp_msg_t *job = rp_msg_new (RP_MSG_JOB);
    rp_msg_set (&job->job_id, "j-1");
    rp_msg_set (&job->kind, "resize");
    rp_msg_set (&job->src, "/photos/a.jpg");
    rp_msg_set (&job->dest, "/out/a");
    rp_msg_set (&job->photo_id, "photo-\xc3\xa9");     //  UTF-8 passes through
    rp_msg_set (&job->trace, "Root=1-692e7f2d-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1");
    job->attempt = 2;
    job->timeout_ms = 60000;
    zmsg_t *wire = rp_msg_encode (job);
    cr_assert_eq (zmsg_size (wire), 3);
    char err [256];
    rp_msg_t *back = rp_msg_decode (wire, err, sizeof err);
    cr_assert_not_null (back, "%s", err);
    cr_assert_eq (back->command, RP_MSG_JOB);
    cr_assert_str_eq (back->job_id, "j-1");
    cr_assert_str_eq (back->kind, "resize");
    cr_assert_str_eq (back->src, "/photos/a.jpg");
    cr_assert_str_eq (back->dest, "/out/a");
    cr_assert_str_eq (back->photo_id, "photo-\xc3\xa9");
    cr_assert_str_eq (back->trace, "Root=1-692e7f2d-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1");
    cr_assert_eq (back->attempt, 2);
    cr_assert_eq (back->timeout_ms, 60000);
    cr_assert_null (back->error);
    rp_msg_destroy (&back);
    rp_msg_destroy (&job);
    zmsg_destroy (&wire);
}

Test (msg, heartbeat_has_no_body)
{
    rp_msg_t *hb = rp_msg_new (RP_MSG_HEARTBEAT);
    zmsg_t *wire = rp_msg_encode (hb);
    cr_assert_eq (zmsg_size (wire), 2);
    char err [256];
    rp_msg_t *back = rp_msg_decode (wire, err, sizeof err);
    cr_assert_not_null (back, "%s", err);
    cr_assert_eq (back->command, RP_MSG_HEARTBEAT);
    rp_msg_destroy (&back);
    rp_msg_destroy (&hb);
    zmsg_destroy (&wire);
}

static zmsg_t *
s_frames (const char *tag, const char *command, const void *body, size_t size)
{
    zmsg_t *zmsg = zmsg_new ();
    zmsg_addstr (zmsg, tag);
    zmsg_addstr (zmsg, command);
    if (body)
        zmsg_addmem (zmsg, body, size);
    return zmsg;
}

static void
s_expect_malformed (zmsg_t *zmsg, const char *why)
{
    char err [256] = "";
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    cr_assert_null (msg, "accepted a malformed message: %s", why);
    cr_assert_neq (err [0], 0, "no reason given for: %s", why);
    zmsg_destroy (&zmsg);
}

Test (msg, malformed_messages_are_refused_with_a_reason)
{
    //  Wrong tag, unknown command, missing body, garbage body
    s_expect_malformed (s_frames ("XX9", "JOB", "\x80", 1), "wrong tag");
    s_expect_malformed (s_frames ("RP1", "EXPLODE", "\x80", 1), "unknown command");
    s_expect_malformed (s_frames ("RP1", "JOB", NULL, 0), "no body");
    s_expect_malformed (s_frames ("RP1", "JOB", "\xc1\xc1\xc1", 3), "not msgpack");
    s_expect_malformed (s_frames ("RP1", "JOB", "\x93\x01\x02\x03", 4), "an array, not a map");

    //  A known key with the wrong type
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 3);
    msgpack_pack_str (&packer, 6); msgpack_pack_str_body (&packer, "job_id", 6);
    msgpack_pack_int (&packer, 42);                      //  should be a string
    msgpack_pack_str (&packer, 4); msgpack_pack_str_body (&packer, "kind", 4);
    msgpack_pack_str (&packer, 6); msgpack_pack_str_body (&packer, "resize", 6);
    msgpack_pack_str (&packer, 3); msgpack_pack_str_body (&packer, "src", 3);
    msgpack_pack_str (&packer, 1); msgpack_pack_str_body (&packer, "x", 1);
    s_expect_malformed (s_frames ("RP1", "JOB", buffer.data, buffer.size), "job_id is an int");
    msgpack_sbuffer_destroy (&buffer);

    //  A required field missing
    rp_msg_t *job = rp_msg_new (RP_MSG_SUBMIT);
    rp_msg_set (&job->job_id, "j");
    zmsg_t *wire = rp_msg_encode (job);
    s_expect_malformed (wire, "SUBMIT without kind and src");
    rp_msg_destroy (&job);

    //  A body over the limit
    size_t big = RP_MSG_BODY_MAX + 1;
    char *huge = calloc (1, big);
    s_expect_malformed (s_frames ("RP1", "DONE", huge, big), "body over 1 MiB");
    free (huge);
}

Test (msg, unknown_keys_from_newer_peers_are_ignored)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 2);
    msgpack_pack_str (&packer, 4); msgpack_pack_str_body (&packer, "pool", 4);
    msgpack_pack_str (&packer, 4); msgpack_pack_str_body (&packer, "exif", 4);
    msgpack_pack_str (&packer, 7); msgpack_pack_str_body (&packer, "new_key", 7);
    msgpack_pack_array (&packer, 0);
    zmsg_t *zmsg = s_frames ("RP1", "READY", buffer.data, buffer.size);
    char err [256];
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    cr_assert_not_null (msg, "%s", err);
    cr_assert_str_eq (msg->pool, "exif");
    rp_msg_destroy (&msg);
    zmsg_destroy (&zmsg);
    msgpack_sbuffer_destroy (&buffer);
}

//  A body that declares more than it holds: refused by the size check
//  before msgpack's unpacker would allocate the slots a count asks for
//  (a map32 of 2^32 - 1 entries is 200 GB of slots; in the ASan build that
//  allocation would abort the test). The reason names the check, so a
//  refusal by anything else (msgpack running out of memory) fails here.
static void
s_expect_oversized (const char *body, size_t size, const char *why)
{
    char err [256] = "";
    zmsg_t *zmsg = s_frames ("RP1", "JOB", body, size);
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    cr_assert_null (msg, "accepted: %s", why);
    cr_assert (strstr (err, "declares more than"), "%s: refused for another reason: %s", why, err);
    zmsg_destroy (&zmsg);
}

Test (msg, declared_sizes_past_the_body_are_refused_before_any_allocation)
{
    //  The body itself: a map32 of 4294967295 entries in 5 bytes
    s_expect_oversized ("\xdf\xff\xff\xff\xff", 5, "a map of 2^32 - 1 entries");
    s_expect_oversized ("\xde\xff\xff", 3, "a map16 of 65535 entries");
    //  A known field whose string declares 4 GiB, and one 1 byte longer than what follows
    s_expect_oversized ("\x81\xa6job_id\xdb\xff\xff\xff\xff", 13, "a str32 of 4 GiB");
    s_expect_oversized ("\x81\xa6job_id\xa3" "ab", 11, "a fixstr one byte short");
    //  Nested in an unknown key, where nothing would read it
    s_expect_oversized ("\x82\xa3src\xa1x\xa3new\xdd\x7f\xff\xff\xff", 15, "an array32 of 2^31 - 1");
    s_expect_oversized ("\x81\xa3new\x91\x91\x91\x92\x01", 9, "arrays nested, one element short");
    s_expect_oversized ("\x81\xa3new\xc6\x00\x10\x00\x00", 9, "a bin32 of 1 MiB");
    //  Each element takes a byte: 3 entries need at least 6 bytes after the header
    s_expect_oversized ("\x83\xc0\xc0\xc0\xc0", 5, "a map of 3 in 4 bytes");
}

Test (msg, every_msgpack_type_under_an_unknown_key_is_accepted)
{
    //  The size check walks every type msgpack has, and steps over them
    //  exactly as the unpacker does
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    char long_text [70000];
    memset (long_text, 'a', sizeof long_text);
    msgpack_pack_map (&packer, 3);
    msgpack_pack_str (&packer, 4); msgpack_pack_str_body (&packer, "pool", 4);
    msgpack_pack_str (&packer, 4); msgpack_pack_str_body (&packer, "exif", 4);
    msgpack_pack_str (&packer, 7); msgpack_pack_str_body (&packer, "new_key", 7);
    msgpack_pack_array (&packer, 23);
    msgpack_pack_nil (&packer);
    msgpack_pack_true (&packer);
    msgpack_pack_false (&packer);
    msgpack_pack_int8 (&packer, -100);
    msgpack_pack_int16 (&packer, -30000);
    msgpack_pack_int32 (&packer, -2000000000);
    msgpack_pack_int64 (&packer, INT64_MIN);
    msgpack_pack_uint8 (&packer, 200);
    msgpack_pack_uint16 (&packer, 60000);
    msgpack_pack_uint32 (&packer, 4000000000u);
    msgpack_pack_uint64 (&packer, UINT64_MAX);
    msgpack_pack_float (&packer, 1.5f);
    msgpack_pack_double (&packer, 2.5);
    msgpack_pack_str (&packer, 100); msgpack_pack_str_body (&packer, long_text, 100);          //  str8
    msgpack_pack_str (&packer, 300); msgpack_pack_str_body (&packer, long_text, 300);          //  str16
    msgpack_pack_str (&packer, sizeof long_text); msgpack_pack_str_body (&packer, long_text, sizeof long_text);
    msgpack_pack_bin (&packer, 3); msgpack_pack_bin_body (&packer, "\x00\x01\x02", 3);
    msgpack_pack_ext (&packer, 4, 1); msgpack_pack_ext_body (&packer, "abcd", 4);           //  fixext4
    msgpack_pack_ext (&packer, 5, 2); msgpack_pack_ext_body (&packer, "abcde", 5);          //  ext8
    msgpack_pack_ext (&packer, 16, 3); msgpack_pack_ext_body (&packer, long_text, 16);      //  fixext16
    msgpack_pack_map (&packer, 1);
    msgpack_pack_str (&packer, 1); msgpack_pack_str_body (&packer, "k", 1);
    msgpack_pack_array (&packer, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_int (&packer, i);
    msgpack_pack_array (&packer, 0);
    msgpack_pack_map (&packer, 0);
    msgpack_pack_str (&packer, 6); msgpack_pack_str_body (&packer, "worker", 6);
    msgpack_pack_str (&packer, 2); msgpack_pack_str_body (&packer, "w1", 2);
    zmsg_t *zmsg = s_frames ("RP1", "READY", buffer.data, buffer.size);
    char err [256];
    rp_msg_t *msg = rp_msg_decode (zmsg, err, sizeof err);
    cr_assert_not_null (msg, "%s", err);
    cr_assert_str_eq (msg->pool, "exif");
    cr_assert_str_eq (msg->worker, "w1", "the key after the unknown one is read");
    rp_msg_destroy (&msg);
    zmsg_destroy (&zmsg);
    msgpack_sbuffer_destroy (&buffer);
}
