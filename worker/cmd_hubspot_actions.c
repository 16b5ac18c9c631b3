/* cmd_hubspot_actions.c - `hsqb-worker hubspot-actions sync` (see cmd_hubspot_actions.h).
 * STUB: being written. */
#include "worker/cmd_hubspot_actions.h"

#include <stdio.h>

#include "worker/exitcode.h"

int cmd_hubspot_actions(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "hsqb-worker hubspot-actions: not built yet\n");
    return EXIT_USAGE;
}
