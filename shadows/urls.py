"""Operator pages of the shadows app outside the admin (mounted at /config/)."""

from django.urls import path

from shadows import views

app_name = "shadows"

urlpatterns = [
    path("drift/", views.drift, name="config-drift"),
]
