/*
 * fleetportal's per-device rate limit at the broker (Mosquitto 2.0 plugin API, version 5).
 *
 * Loaded on the device listener only. Each device (client id) has a token bucket of
 * `messages_per_second`, holding at most `burst`. A message over the rate is not delivered to
 * anyone: the plugin turns it into an empty message on a topic nobody subscribes to, so the
 * device still gets its PUBACK and stays connected, and the portal's bridge never has to read
 * the flood. At most once a second the plugin publishes what it dropped, per device, as
 * {"seconds": s, "dropped": {"<device id>": n, ...}} on fleetportal/broker/throttled, which the
 * bridge records as `throttled` events (device ids need no JSON escaping: [a-zA-Z0-9:_-]).
 *
 * A device that keeps flooding — `disconnect_after` messages over its rate within one second —
 * is disconnected, so the flood stops costing the broker and the other devices CPU, and is then
 * banned for `ban_seconds`: it may reconnect (the TLS handshake happens before any plugin can
 * see it), but its first message on a banned connection is dropped and ends that connection too,
 * so a device that floods again after each reconnect costs the broker one packet per
 * connection instead of another `disconnect_after`. Its drops are reported as above.
 *
 * Options: plugin_opt_messages_per_second, plugin_opt_burst, plugin_opt_disconnect_after
 * (0 = never disconnect), plugin_opt_ban_seconds (0 = no ban).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mosquitto.h"
#include "mosquitto_broker.h"
#include "mosquitto_plugin.h"

#define REPORT_TOPIC "fleetportal/broker/throttled"
#define DROPPED_TOPIC "fleetportal/broker/dropped"
#define BUCKETS 65536
#define REPORT_BYTES 65536

struct bucket {
	char *client_id;
	double tokens;
	double last;
	unsigned long dropped;
	double window_start; /* the second whose drops count towards disconnect_after */
	unsigned long window_drops;
	double banned_until; /* disconnected for flooding: each message before this ends the connection */
	bool gone; /* disconnected with drops not yet reported or banned: freed after a later report */
	struct bucket *next;
};

static mosquitto_plugin_id_t *plugin_id = NULL;
static void report_drops(double now);
static struct bucket *table[BUCKETS];
static double rate = 100.0, burst = 100.0;
static unsigned long disconnect_after = 0;
static double ban_seconds = 0.0;
static double last_report = 0.0;
static unsigned long dropped_total = 0;

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static unsigned long hash(const char *text)
{
	unsigned long h = 5381;
	for(; *text; text++){
		h = h * 33 + (unsigned char)*text;
	}
	return h % BUCKETS;
}

static struct bucket *find(const char *client_id, bool create)
{
	unsigned long slot = hash(client_id);
	struct bucket *entry;

	for(entry = table[slot]; entry; entry = entry->next){
		if(strcmp(entry->client_id, client_id) == 0){
			return entry;
		}
	}
	if(!create){
		return NULL;
	}
	entry = mosquitto_calloc(1, sizeof(*entry));
	if(entry == NULL){
		return NULL;
	}
	entry->client_id = mosquitto_strdup(client_id);
	if(entry->client_id == NULL){
		mosquitto_free(entry);
		return NULL;
	}
	entry->tokens = burst;
	entry->last = now_seconds();
	entry->next = table[slot];
	table[slot] = entry;
	return entry;
}

static void forget(const char *client_id)
{
	struct bucket **link = &table[hash(client_id)];
	while(*link){
		struct bucket *entry = *link;
		if(strcmp(entry->client_id, client_id) == 0){
			if(entry->dropped || entry->banned_until > now_seconds()){
				entry->gone = true; /* reported, then freed, at a report after its ban */
				return;
			}
			*link = entry->next;
			mosquitto_free(entry->client_id);
			mosquitto_free(entry);
			return;
		}
		link = &entry->next;
	}
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	const char *client_id = mosquitto_client_id(ed->client);
	struct bucket *entry;
	double now;
	char *topic;
	bool banned;

	(void)event;
	(void)userdata;
	if(client_id == NULL || (entry = find(client_id, true)) == NULL){
		return MOSQ_ERR_SUCCESS;
	}
	entry->gone = false;
	now = now_seconds();
	entry->tokens += (now - entry->last) * rate;
	if(entry->tokens > burst){
		entry->tokens = burst;
	}
	entry->last = now;
	banned = entry->banned_until > now;
	if(entry->tokens >= 1.0 && !banned){
		entry->tokens -= 1.0;
		report_drops(now);
		return MOSQ_ERR_SUCCESS;
	}
	/* Over the rate or banned: acknowledged, delivered to nobody. */
	topic = mosquitto_strdup(DROPPED_TOPIC);
	if(topic == NULL){
		return MOSQ_ERR_SUCCESS;
	}
	mosquitto_free(ed->topic); /* the broker takes the new topic as it is */
	ed->topic = topic;
	ed->payload = NULL; /* the broker frees the old payload when it sees a new one */
	ed->payloadlen = 0;
	ed->retain = false;
	if(dropped_total == 0 && now - last_report >= 1.0){
		last_report = now - 1.0; /* the first drop after a quiet while is reported at once */
	}
	entry->dropped++;
	dropped_total++;
	report_drops(now);
	if(now - entry->window_start >= 1.0){
		entry->window_start = now;
		entry->window_drops = 0;
	}
	if(banned){
		/* Still banned: this connection ends at its first message (logged at the ban). */
		mosquitto_kick_client_by_clientid(client_id, true);
	}else if(disconnect_after > 0 && ++entry->window_drops >= disconnect_after){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"fleetportal_limits: disconnecting %s: %lu messages over its rate within 1 s; "
				"banned for %.0f s", client_id, entry->window_drops, ban_seconds);
		entry->window_drops = 0;
		entry->banned_until = now + ban_seconds;
		/* Mosquitto 2.0.11 ignores a message callback's error, so end the connection here; the
		 * context is freed only after this packet, and its will is sent as for any lost client. */
		mosquitto_kick_client_by_clientid(client_id, true);
	}
	return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	const char *client_id = mosquitto_client_id(ed->client);

	(void)event;
	(void)userdata;
	if(client_id != NULL){
		forget(client_id);
	}
	report_drops(now_seconds());
	return MOSQ_ERR_SUCCESS;
}

/* At most once a second, what was dropped since the last report; a full report waits for the
 * next. Mosquitto 2.0.11 sends MOSQ_EVT_TICK to no listener's plugin, so this runs on the
 * listener's own events: each message and each disconnection. */
static void report_drops(double now)
{
	char *report;
	size_t used;
	bool first = true;

	if(dropped_total == 0 || now - last_report < 1.0){
		return;
	}
	report = mosquitto_malloc(REPORT_BYTES);
	if(report == NULL){
		return;
	}
	used = (size_t)snprintf(report, REPORT_BYTES, "{\"seconds\": %.1f, \"dropped\": {",
			last_report > 0 ? now - last_report : 1.0);
	dropped_total = 0;
	for(int slot = 0; slot < BUCKETS; slot++){
		struct bucket **link = &table[slot];
		while(*link){
			struct bucket *entry = *link;
			if(entry->dropped && used + strlen(entry->client_id) + 32 >= REPORT_BYTES){
				dropped_total += entry->dropped; /* next time */
			}else if(entry->dropped){
				used += (size_t)snprintf(report + used, REPORT_BYTES - used, "%s\"%s\": %lu",
						first ? "" : ", ", entry->client_id, entry->dropped);
				first = false;
				entry->dropped = 0;
			}
			if(entry->gone && entry->dropped == 0 && entry->banned_until <= now){
				*link = entry->next;
				mosquitto_free(entry->client_id);
				mosquitto_free(entry);
			}else{
				link = &entry->next;
			}
		}
	}
	used += (size_t)snprintf(report + used, REPORT_BYTES - used, "}}");
	last_report = now;
	if(mosquitto_broker_publish(NULL, REPORT_TOPIC, (int)used, report, 1, false, NULL)
			!= MOSQ_ERR_SUCCESS){
		mosquitto_free(report);
	}
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for(int i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5){
			return 5;
		}
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	int rc;

	(void)userdata;
	for(int i = 0; i < option_count; i++){
		if(strcmp(options[i].key, "messages_per_second") == 0){
			rate = atof(options[i].value);
		}else if(strcmp(options[i].key, "burst") == 0){
			burst = atof(options[i].value);
		}else if(strcmp(options[i].key, "disconnect_after") == 0){
			disconnect_after = strtoul(options[i].value, NULL, 10);
		}else if(strcmp(options[i].key, "ban_seconds") == 0){
			ban_seconds = atof(options[i].value);
		}
	}
	if(rate <= 0.0 || burst < 1.0 || ban_seconds < 0.0){
		mosquitto_log_printf(MOSQ_LOG_ERR,
				"fleetportal_limits: needs a rate > 0, a burst >= 1 and a ban of 0 s or more");
		return MOSQ_ERR_INVAL;
	}
	plugin_id = identifier;
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	return MOSQ_ERR_SUCCESS;
}
