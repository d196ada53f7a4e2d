"""The bridge: the portal's only MQTT client (`manage.py runbridge`)."""
