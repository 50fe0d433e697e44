/*
 * proto.c -- names of the imsg types, for log lines.
 */

#include <stdio.h>

#include "proto.h"

static const char *const imsg_names[] = {
	[IMSG_NONE] = "NONE",
	[IMSG_CONF_START] = "CONF_START",
	[IMSG_CONF_LISTENER] = "CONF_LISTENER",
	[IMSG_CONF_PKI] = "CONF_PKI",
	[IMSG_CONF_PKI_PEM] = "CONF_PKI_PEM",
	[IMSG_CONF_DOMAIN] = "CONF_DOMAIN",
	[IMSG_CONF_STATIC_USER] = "CONF_STATIC_USER",
	[IMSG_CONF_NETWORK] = "CONF_NETWORK",
	[IMSG_CONF_CONTROL] = "CONF_CONTROL",
	[IMSG_CTL_HELLO] = "CTL_HELLO",
	[IMSG_CTL_TEST] = "CTL_TEST",
	[IMSG_CTL_STATS] = "CTL_STATS",
	[IMSG_CTL_STATS_REPLY] = "CTL_STATS_REPLY",
	[IMSG_CTL_RELOAD] = "CTL_RELOAD",
	[IMSG_CTL_END] = "CTL_END",
	[IMSG_CTL_KEYS] = "CTL_KEYS",
	[IMSG_CTL_KEY] = "CTL_KEY",
	[IMSG_CTL_REFRESH] = "CTL_REFRESH",
	[IMSG_CTL_REFRESHED] = "CTL_REFRESHED",
	[IMSG_AUTH_REQUEST] = "AUTH_REQUEST",
	[IMSG_AUTH_CANCEL] = "AUTH_CANCEL",
	[IMSG_AUTH_VERDICT] = "AUTH_VERDICT",
	[IMSG_CONF_CHECKER] = "CONF_CHECKER",
	[IMSG_CONF_SPOOL] = "CONF_SPOOL",
	[IMSG_CONF_END] = "CONF_END",
	[IMSG_CHILD_READY] = "CHILD_READY",
	[IMSG_CTL_SHUTDOWN] = "CTL_SHUTDOWN",
	[IMSG_CTL_VERBOSE] = "CTL_VERBOSE",
	[IMSG_AUTHD_CHANNEL] = "AUTHD_CHANNEL",
	[IMSG_PING] = "PING",
	[IMSG_PONG] = "PONG",
	[IMSG_PING_RESULT] = "PING_RESULT",
	[IMSG_TLS_TICKET_KEYS] = "TLS_TICKET_KEYS",
	[IMSG_KEYS_START] = "KEYS_START",
	[IMSG_KEYS_PEM] = "KEYS_PEM",
	[IMSG_KEYS_COMMIT] = "KEYS_COMMIT",
	[IMSG_KEYS_CHANNEL] = "KEYS_CHANNEL",
	[IMSG_KEYS_SIGN] = "KEYS_SIGN",
	[IMSG_KEYS_SIGNED] = "KEYS_SIGNED",
};

const char *
imsg_type_name(uint32_t type)
{
	static char	 unknown[32];

	if (type < sizeof(imsg_names) / sizeof(imsg_names[0]) &&
	    imsg_names[type] != NULL)
		return imsg_names[type];
	snprintf(unknown, sizeof(unknown), "UNKNOWN(%u)", type);
	return unknown;
}
