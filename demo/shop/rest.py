"""The same shop data through Django REST framework, mounted at /drf/, and the signed-in
customer's own keys at /drf/keys/ (the same rules as /api/keys)."""

from __future__ import annotations

from rest_framework import routers, serializers, viewsets
from rest_framework.authentication import SessionAuthentication

from async_api_key.drf import APIKeyAuthentication, HasAPIKey, HasScopes
from async_api_key.selfservice.drf import APIKeyViewSet

from .keys import policy
from .models import Order, Product


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ("id", "sku", "name", "price", "stock")


class OrderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = ("id", "product", "quantity", "status", "placed_by", "created")


class ProductViewSet(viewsets.ReadOnlyModelViewSet):
    """Products; any valid API key may read them."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasAPIKey,)


class OrderViewSet(viewsets.ReadOnlyModelViewSet):
    """Orders; the key needs the scope ``orders:read``."""

    queryset = Order.objects.select_related("product")
    serializer_class = OrderSerializer
    authentication_classes = (APIKeyAuthentication,)
    permission_classes = (HasScopes.require("orders:read"),)


class MyAPIKeyViewSet(APIKeyViewSet):
    """The signed-in customer's API keys."""

    policy = policy
    authentication_classes = (SessionAuthentication,)


router = routers.DefaultRouter()
router.register("products", ProductViewSet)
router.register("orders", OrderViewSet)
router.register("keys", MyAPIKeyViewSet, basename="customer-key")
