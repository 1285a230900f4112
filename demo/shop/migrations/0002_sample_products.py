"""Sample products, so the demo API has something to show."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import migrations

PRODUCTS = [
    ("MUG-001", "Enamel mug", Decimal("12.50"), 40),
    ("TEE-002", "Organic T-shirt", Decimal("24.00"), 25),
    ("CAP-003", "Baseball cap", Decimal("18.90"), 12),
]


def add_products(apps: Any, schema_editor: Any) -> None:
    product_model = apps.get_model("shop", "Product")
    for sku, name, price, stock in PRODUCTS:
        product_model.objects.get_or_create(
            sku=sku, defaults={"name": name, "price": price, "stock": stock}
        )


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [migrations.RunPython(add_products, migrations.RunPython.noop)]
