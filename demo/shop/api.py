"""The shop's Django-Ninja API, mounted at /api/: async endpoints protected by API keys.

Every endpoint needs a valid key: one made by staff (``APIKey``: the admin, ``createapikey``)
or one a customer made on "My API keys" (``CustomerAPIKey``). Reading and placing orders also
need the scopes ``orders:read`` and ``orders:write``. ``/api/keys`` is that page's API: the
signed-in customer's own keys (session and CSRF token, no API key).
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F
from django.http import HttpRequest
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError

from async_api_key.ninja import APIKeyAuth, register_error_handler
from async_api_key.selfservice.ninja import APIKeyRouter

from .keys import policy
from .models import CustomerAPIKey, Order, Product


def key_auth(*scopes: str) -> list[APIKeyAuth]:
    """A staff key or a customer's key, either granting ``scopes``."""
    return [APIKeyAuth(scopes=scopes), APIKeyAuth(model=CustomerAPIKey, scopes=scopes)]


api = NinjaAPI(
    title="Demo shop",
    version="1.0",
    description="Send your key as `Authorization: Api-Key <key>` or `X-API-Key: <key>`.",
    auth=key_auth(),
    urls_namespace="shop-api",
)
# A missing scope answers 403 with {"detail", "code", "missing_scopes"}.
register_error_handler(api)
# The signed-in customer's own keys (Django's session, with the CSRF token).
api.add_router("/keys", APIKeyRouter(policy))


class ProductOut(Schema):
    id: int
    sku: str
    name: str
    price: Decimal
    stock: int


class OrderOut(Schema):
    id: int
    product_id: int
    quantity: int
    status: str
    placed_by: str


class OrderIn(Schema):
    product_id: int
    quantity: int = 1


class KeyOut(Schema):
    name: str
    prefix: str
    scopes: list[str]


@api.get("/me", response=KeyOut, summary="The API key making this request")
async def me(request: HttpRequest) -> object:
    return request.auth


@api.get("/products", response=list[ProductOut])
async def list_products(request: HttpRequest) -> list[Product]:
    return [product async for product in Product.objects.all()]


@api.get("/products/{product_id}", response=ProductOut)
async def get_product(request: HttpRequest, product_id: int) -> Product:
    product = await Product.objects.filter(pk=product_id).afirst()
    if product is None:
        raise HttpError(404, "No such product.")
    return product


@api.get("/orders", response=list[OrderOut], auth=key_auth("orders:read"))
async def list_orders(request: HttpRequest) -> list[Order]:
    return [order async for order in Order.objects.all()]


@api.post("/orders", response={201: OrderOut}, auth=key_auth("orders:write"))
async def place_order(request: HttpRequest, payload: OrderIn) -> tuple[int, Order]:
    if payload.quantity < 1:
        raise HttpError(422, "Quantity must be at least 1.")
    reserved = await Product.objects.filter(
        pk=payload.product_id, stock__gte=payload.quantity
    ).aupdate(stock=F("stock") - payload.quantity)
    if not reserved:
        raise HttpError(409, "Unknown product or not enough stock.")
    order = await Order.objects.acreate(
        product_id=payload.product_id,
        quantity=payload.quantity,
        placed_by=request.auth.name,
    )
    return 201, order
