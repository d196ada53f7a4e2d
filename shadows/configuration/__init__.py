"""Layered configuration, delivered as the desired state of each device's `config` shadow.

- `keys`: what a key and a value may be, and whether a configuration fits a shadow (pure);
- `layering`: a device's effective configuration from its own values and its groups' (pure);
- `services`: set and remove values, render them into the shadows, mark them applied, drift.
"""

CONFIG_SHADOW = "config"
