"""The "My API keys" page: plain HTML and a little JavaScript over the JSON API at /api/keys."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from .keys import CUSTOMER_SCOPES, policy


@login_required
def my_api_keys(request: HttpRequest) -> HttpResponse:
    lifetime = policy.lifetime_limit
    return render(
        request,
        "shop/my_api_keys.html",
        {
            "keys_url": reverse("shop-api:api_keys-list"),
            "scopes": sorted(CUSTOMER_SCOPES),
            "max_days": None if lifetime is None else lifetime.days,
        },
    )
