"""/api/v1/ routes of monitoring's alerts part."""

from rest_framework.routers import SimpleRouter

from monitoring.alerts import api

router = SimpleRouter()
router.register("alert-rules", api.AlertRuleViewSet)
router.register("alerts", api.AlertViewSet)
router.register("webhook-deliveries", api.WebhookDeliveryViewSet)

urlpatterns = router.urls
