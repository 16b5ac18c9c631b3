/* cmd_ingress.c - `hsqb-worker ingress` (see cmd_ingress.h). STUB: being written. */
#include "worker/cmd_ingress.h"

#include <stdio.h>

#include "worker/exitcode.h"

int cmd_ingress(int argc, char **argv, const char *version)
{
    (void)argc;
    (void)argv;
    (void)version;
    fprintf(stderr, "hsqb-worker ingress: not built yet\n");
    return EXIT_USAGE;
}
