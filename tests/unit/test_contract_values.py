"""The API states its accepted values as Literals (so the OpenAPI document lists them inline);
the stored values are the enums'. These keep each pair one list, so that a kind or a state
added on one side cannot be forgotten on the other."""

from typing import get_args, get_type_hints

from rules.catalog import Kind
from rules.lifecycle import State
from web.routes import products as product_routes
from web.schemas.products import PurchaseIn


def test_the_product_kinds_the_api_accepts_are_the_kinds_sold():
    assert sorted(get_args(get_type_hints(PurchaseIn)["kind"])) == sorted(Kind)
    assert sorted(get_args(product_routes.ProductKind)) == sorted(Kind)


def test_the_product_states_the_api_filters_by_are_the_lifecycle_states():
    assert list(get_args(product_routes.ProductState)) == list(State)
