from django.urls import include, path

from shadows.api import views

# device_id segment as in the device routes; the shadow segment is a name or "~classic".
urlpatterns = [
    path(
        "devices/<str:device_id>/shadows/",
        views.ShadowListView.as_view(),
        name="shadow-list",
    ),
    path(
        "devices/<str:device_id>/shadows/<str:name>/",
        views.ShadowDetailView.as_view(),
        name="shadow-detail",
    ),
    path(
        "devices/<str:device_id>/shadows/<str:name>/history/",
        views.ShadowHistoryView.as_view(),
        name="shadow-history",
    ),
    path("", include("shadows.api.config_urls")),
]
