/*
 * fleetportal's claim broker plugin (Mosquitto 2.0 plugin API, version 5).
 *
 * The claim broker is a Mosquitto of its own that serves only fleet provisioning by claim
 * (docs/device-protocol.md §3). This plugin gives it what AWS IoT does and stock Mosquitto
 * does not:
 *
 *  - only claim certificates get in: the certificate's CN must start with "claim." (a name no
 *    device can have), and it becomes the MQTT username, whatever username the client sent;
 *  - every request is tagged with who asked: a claim client's publish on
 *    $aws/certificates/... or $aws/provisioning-templates/... (the ACL lets through nothing
 *    else) is renamed to fleetportal/claim/<hex client id>/<username>/<topic>, which the
 *    broker's bridge carries to the portal;
 *  - every reply reaches only the client that asked: the portal answers on
 *    fleetportal/claim-reply/<hex client id>/<topic>, and the plugin delivers the message to
 *    that one client on <topic>. No other connection, of any template, sees it.
 *
 * The broker must run with per_listener_settings false, so that the plugin also sees the
 * messages its bridge connection brings in.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/x509.h>

#include "mosquitto.h"
#include "mosquitto_broker.h"
#include "mosquitto_plugin.h"

#define CLAIM_PREFIX "claim."
#define REQUEST_PREFIX "fleetportal/claim/"
#define REPLY_PREFIX "fleetportal/claim-reply/"
#define MAX_CLIENT_ID 256

static mosquitto_plugin_id_t *plugin_id = NULL;

static bool starts_with(const char *text, const char *prefix)
{
	return text != NULL && strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Only claim certificates: CN "claim.<template>" becomes the username. */
static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	X509 *certificate;
	char common_name[256];
	int length;

	(void)event;
	(void)userdata;
	certificate = mosquitto_client_certificate(ed->client);
	if(certificate == NULL){
		return MOSQ_ERR_AUTH;
	}
	length = X509_NAME_get_text_by_NID(
			X509_get_subject_name(certificate), NID_commonName, common_name, sizeof(common_name));
	X509_free(certificate);
	if(length <= 0 || (size_t)length != strlen(common_name) || !starts_with(common_name, CLAIM_PREFIX)
			|| strlen(common_name) == strlen(CLAIM_PREFIX)){
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"fleetportal_claims: refused %s: not a claim certificate",
				mosquitto_client_address(ed->client));
		return MOSQ_ERR_AUTH;
	}
	if(mosquitto_set_username(ed->client, common_name) != MOSQ_ERR_SUCCESS){
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_SUCCESS;
}

static void hex_encode(const char *text, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for(; *text; text++){
		*out++ = digits[((unsigned char)*text) >> 4];
		*out++ = digits[((unsigned char)*text) & 0x0f];
	}
	*out = '\0';
}

static int hex_value(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* Decodes the hex client id that ends at the next '/'; returns the rest after it, or NULL. */
static const char *hex_decode(const char *text, char *out, size_t size)
{
	size_t n = 0;
	while(*text && *text != '/'){
		int high = hex_value(text[0]);
		int low = text[1] ? hex_value(text[1]) : -1;
		if(high < 0 || low < 0 || n + 1 >= size){
			return NULL;
		}
		out[n++] = (char)(high << 4 | low);
		text += 2;
	}
	out[n] = '\0';
	return (*text == '/' && n > 0) ? text + 1 : NULL;
}

/* A claim client's request: rename it so the portal knows who asked. */
static int tag_request(struct mosquitto_evt_message *ed, const char *username)
{
	const char *client_id = mosquitto_client_id(ed->client);
	size_t id_length = strlen(client_id);
	size_t size;
	char *hex, *topic;

	if(id_length == 0 || id_length > MAX_CLIENT_ID){
		return MOSQ_ERR_ACL_DENIED;
	}
	hex = mosquitto_malloc(2 * id_length + 1);
	if(hex == NULL){
		return MOSQ_ERR_NOMEM;
	}
	hex_encode(client_id, hex);
	size = strlen(REQUEST_PREFIX) + strlen(hex) + 1 + strlen(username) + 1 + strlen(ed->topic) + 1;
	topic = mosquitto_malloc(size);
	if(topic == NULL){
		mosquitto_free(hex);
		return MOSQ_ERR_NOMEM;
	}
	snprintf(topic, size, "%s%s/%s/%s", REQUEST_PREFIX, hex, username, ed->topic);
	mosquitto_free(hex);
	mosquitto_free(ed->topic);
	ed->topic = topic;
	return MOSQ_ERR_SUCCESS;
}

/* The portal's reply (over the bridge): to the one client that asked, on the real topic. */
static int deliver_reply(struct mosquitto_evt_message *ed)
{
	char client_id[MAX_CLIENT_ID + 1];
	const char *topic = hex_decode(ed->topic + strlen(REPLY_PREFIX), client_id, sizeof(client_id));

	if(topic == NULL || *topic == '\0'){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "fleetportal_claims: bad reply topic %s", ed->topic);
		return MOSQ_ERR_SUCCESS;
	}
	mosquitto_broker_publish_copy(client_id, topic, (int)ed->payloadlen, ed->payload, 1, false, NULL);
	return MOSQ_ERR_SUCCESS;
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	const char *username = mosquitto_client_username(ed->client);

	(void)event;
	(void)userdata;
	if(starts_with(username, CLAIM_PREFIX)){
		return tag_request(ed, username);
	}
	if(starts_with(ed->topic, REPLY_PREFIX)){
		return deliver_reply(ed);
	}
	return MOSQ_ERR_SUCCESS;
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
	(void)options;
	(void)option_count;
	plugin_id = identifier;
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	return MOSQ_ERR_SUCCESS;
}
