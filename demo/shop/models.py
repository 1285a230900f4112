"""A small shop: products, the orders placed for them, and the API keys customers make."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from async_api_key.models import AbstractAPIKey


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("sku",)

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Order(models.Model):
    class Status(models.TextChoices):
        PLACED = "placed", "Placed"
        SHIPPED = "shipped", "Shipped"

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLACED)
    #: The name of the API key that placed the order (its public prefix is in the key's row).
    placed_by = models.CharField(max_length=50, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created",)

    def __str__(self) -> str:
        return f"Order #{self.pk}: {self.quantity} x {self.product.sku}"


class CustomerAPIKey(AbstractAPIKey):
    """A key a customer made for themself on the "My API keys" page (/account/keys/)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )

    class Meta(AbstractAPIKey.Meta):
        abstract = False
        verbose_name = "customer API key"
