/* cmd_validate.c - the `validate` subcommand.
 *
 * A thin loop over files: read with a hard cap (one byte more than EVENT_MAX_BYTES, so an
 * oversized file is reported as the decoder reports an oversized message, not as an I/O
 * error), decode, print. Output for --json goes through jbuf so file names and reasons
 * are escaped and always valid UTF-8; the plain form prints names as given, like other
 * command-line tools.
 */
#include "worker/cmd_validate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "worker/event.h"
#include "worker/exitcode.h"

#define VALIDATE_READ_MAX ((size_t)EVENT_MAX_BYTES + 1)

struct validate_opts {
    int quiet, json;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: hsqb-worker validate [-q|--quiet] [--json] [--] FILE...\n"
               "  Decode each FILE (\"-\" = standard input) as an hsqb.actions message value.\n"
               "  -q, --quiet  print nothing for valid files\n"
               "  --json       one JSON object per line instead of text\n"
               "  Exit status: 0 all valid, 1 some invalid, 2 usage or I/O error.\n");
}

/* Read at most max bytes of fd into a new buffer. Returns 0 with *out (caller frees) and
 * *len, or -1 with errno set. */
static int read_capped(int fd, size_t max, char **out, size_t *len)
{
    char *buf = malloc(max ? max : 1);
    size_t n = 0;

    if (!buf)
        return -1;
    while (n < max) {
        ssize_t r = read(fd, buf + n, max - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = buf;
    *len = n;
    return 0;
}

static void print_json_line(struct jbuf *jb)
{
    const char *s = jbuf_cstr(jb);
    if (s)
        printf("%s\n", s);
    else
        printf("{\"valid\":false,\"error\":\"output too large\"}\n");
}

static void report_io_error(const struct validate_opts *o, const char *file, int err)
{
    fprintf(stderr, "hsqb-worker validate: %s: %s\n", file, strerror(err));
    if (o->json) {
        struct jbuf jb;
        jbuf_init(&jb, 0);
        jbuf_obj_open(&jb);
        jbuf_kv_str(&jb, "file", file);
        jbuf_kv_bool(&jb, "valid", 0);
        jbuf_kv_bool(&jb, "io_error", 1);
        jbuf_kv_str(&jb, "error", strerror(err));
        jbuf_obj_close(&jb);
        print_json_line(&jb);
        jbuf_release(&jb);
    }
}

static void report(const struct validate_opts *o, const char *file, const char *buf, size_t len,
                   enum event_status st, const struct action_event *ev, const char *err)
{
    struct jbuf jb;
    char id[EVENT_ID_MAX + 1];

    if (!o->json) {
        if (st == EVENT_OK && !o->quiet)
            printf("%s: valid %s key=%s\n", file, event_action_name(ev->action), ev->key);
        else if (st != EVENT_OK)
            printf("%s: invalid: %s\n", file, err);
        return;
    }
    if (st == EVENT_OK && o->quiet)
        return;
    jbuf_init(&jb, 0);
    jbuf_obj_open(&jb);
    jbuf_kv_str(&jb, "file", file);
    jbuf_kv_bool(&jb, "valid", st == EVENT_OK);
    if (st == EVENT_OK) {
        jbuf_kv_str(&jb, "id", ev->id);
        jbuf_kv_str(&jb, "action", event_action_name(ev->action));
        jbuf_kv_str(&jb, "key", ev->key);
        jbuf_kv_int(&jb, "portal_id", ev->portal_id);
        jbuf_kv_str(&jb, "object_type", object_type_name(ev->object_type));
        jbuf_kv_int(&jb, "object_id", ev->object_id);
        jbuf_kv_str(&jb, "realm_id", ev->in.realm_id);
    } else {
        jbuf_kv_str(&jb, "code", hsqb_error_name(event_status_error(st)));
        jbuf_kv_str(&jb, "error", err);
        if (event_peek_id(buf, len, id, sizeof id) == 0)
            jbuf_kv_str(&jb, "id", id);
    }
    jbuf_obj_close(&jb);
    print_json_line(&jb);
    jbuf_release(&jb);
}

/* Returns EXIT_OK (valid), EXIT_FAIL (invalid) or EXIT_USAGE (I/O error). */
static int validate_one(const struct validate_opts *o, const char *file)
{
    int fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC);
    char *buf = NULL, err[EVENT_ERRSTR_SIZE];
    size_t len = 0;
    struct action_event ev = {0};
    enum event_status st;

    if (fd < 0) {
        report_io_error(o, file, errno);
        return EXIT_USAGE;
    }
    if (read_capped(fd, VALIDATE_READ_MAX, &buf, &len) < 0) {
        int e = errno;
        if (fd != STDIN_FILENO)
            close(fd);
        report_io_error(o, file, e);
        return EXIT_USAGE;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    st = event_decode(buf, len, &ev, err, sizeof err);
    report(o, file, buf, len, st, &ev, err);
    event_release(&ev);
    free(buf);
    return st == EVENT_OK ? EXIT_OK : EXIT_FAIL;
}

int cmd_validate(int argc, char **argv)
{
    struct validate_opts o = {0};
    int i, rc = EXIT_OK, any_file = 0;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
        } else if (strcmp(a, "--json") == 0) {
            o.json = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EXIT_OK;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "hsqb-worker validate: unknown option %s\n", a);
            usage(stderr);
            return EXIT_USAGE;
        } else {
            break;
        }
    }
    for (; i < argc; i++) {
        int r = validate_one(&o, argv[i]);
        any_file = 1;
        if (r > rc)
            rc = r;
    }
    if (!any_file) {
        fprintf(stderr, "hsqb-worker validate: no FILE given\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    fflush(stdout);
    return rc;
}
