"""Test infrastructure for MQTT: a real Mosquitto per test session and device clients."""
