"""/api/v1/provisioning-templates/… and /api/v1/bulk-provisioning/…"""

from rest_framework.routers import SimpleRouter

from devices.api.provisioning import BulkProvisioningJobViewSet, ProvisioningTemplateViewSet

router = SimpleRouter()
router.register("provisioning-templates", ProvisioningTemplateViewSet)
router.register("bulk-provisioning", BulkProvisioningJobViewSet)

urlpatterns = router.urls
