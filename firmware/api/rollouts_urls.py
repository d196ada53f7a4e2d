"""Rollout routes: /rollouts/ with its actions, a wave's manual gate and a rollout's devices."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from firmware.api import rollouts as views

router = SimpleRouter()
router.register("rollouts", views.RolloutViewSet)

ROLLOUT = "rollouts/<str:rollout_id>"
urlpatterns = [
    *router.urls,
    path(
        f"{ROLLOUT}/waves/<int:number>/approve/",
        views.WaveApproveView.as_view(),
        name="rollout-wave-approve",
    ),
    path(f"{ROLLOUT}/devices/", views.RolloutDevicesView.as_view(), name="rollout-devices"),
    path(
        f"{ROLLOUT}/devices/<str:device_id>/reset-retries/",
        views.ResetRetriesView.as_view(),
        name="rollout-device-reset-retries",
    ),
]
