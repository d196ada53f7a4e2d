"""Job routes: /jobs/, /job-templates/, and a device's executions under the devices' path
(served by this app: devices must not import firmware)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from firmware.api import jobs as views

router = SimpleRouter()
router.register("jobs", views.JobViewSet)
router.register("job-templates", views.JobTemplateViewSet)

JOB = "<str:job_id>"
urlpatterns = [
    *router.urls,
    path(f"jobs/{JOB}/executions/", views.JobExecutionsView.as_view(), name="job-executions"),
    path(
        "devices/<str:device_id>/jobs/",
        views.DeviceJobExecutionsView.as_view(),
        name="device-job-executions",
    ),
    path(
        f"devices/<str:device_id>/jobs/{JOB}/cancel/",
        views.ExecutionCancelView.as_view(),
        name="job-execution-cancel",
    ),
]
