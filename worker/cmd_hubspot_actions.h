/* cmd_hubspot_actions.h - `hsqb-worker hubspot-actions sync`: create or update the six
 * workflow action definitions (deploy/hubspot/) in a HubSpot app. */
#ifndef HSQB_CMD_HUBSPOT_ACTIONS_H
#define HSQB_CMD_HUBSPOT_ACTIONS_H

/* argv[0] is "hubspot-actions". Returns an exit status (worker/exitcode.h). */
int cmd_hubspot_actions(int argc, char **argv);

#endif
