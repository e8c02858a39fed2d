from rest_framework.routers import SimpleRouter

from annotate.datasets.api import DatasetViewSet

router = SimpleRouter()
# Prefixed: the pages own the plain names (dataset-list, dataset-detail).
router.register("datasets", DatasetViewSet, basename="api-dataset")

urlpatterns = router.urls
