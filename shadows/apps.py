from django.apps import AppConfig


class ShadowsConfig(AppConfig):
    name = "shadows"
