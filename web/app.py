"""The Litestar application factory. Nothing happens at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from rules.price_list import CURRENCIES
from runtime.settings import Settings
from tables import access_cache, engine, secrets_at_rest
from web.access import provide_account
from web.contract import render_plugins
from web.edge import edge_checks
from web.errors import EXCEPTION_HANDLERS
from web.idempotent_posts import IdempotentPosts, document_idempotency_key
from web.lean_accept import LeanPurchases
from web.metrics import PROMETHEUS, MetricsController, refresher
from web.outbox import Outbox
from web.ratelimit import Limiter, RouteLimits, check_settings
from web.routes.accounts import AccountController
from web.routes.activity import ActivityController
from web.routes.billing import BillingController, catalog
from web.routes.clients import ClientController
from web.routes.inbound import InboundController
from web.routes.keys import KeyController
from web.routes.operations import list_operations
from web.routes.ops import OpsController, health, ready
from web.routes.ops_page import ops_router
from web.routes.organizations import OrganizationController
from web.routes.product_operations import ProductOperationController
from web.routes.products import ProductController
from web.routes.statements import list_transactions, statement
from web.routes.test_clocks import TestClockController
from web.routes.webhooks import WebhookEndpointController
from worker.broker import make_broker
from worker.monitoring import monitor_for
from worker.queue import Sender
from worker.webhooks.addresses import resolve


def create_app(settings: Settings, *, sender: Sender | None = None, extra_lifespans: list | None = None) -> Litestar:
    """The API. `sender` enqueues to a broker (built from settings if not given);
    `extra_lifespans` run embedded parts (workers, scheduler) with the app."""
    check_settings(settings)
    unpriced = sorted(set(settings.accepted_currencies) - CURRENCIES)
    if unpriced:
        raise ValueError(
            f"TENURE_CURRENCIES lists {', '.join(unpriced)} but rules/price_list.toml "
            f"prices only {', '.join(sorted(CURRENCIES))}"
        )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine.bind(engine.for_url(settings.database_url))
        access_cache.configure(settings.auth_cache_seconds)
        if settings.secret_key or not secrets_at_rest.configured():
            secrets_at_rest.configure(settings)  # `tenure web` did, unless the app is made elsewhere
        app.state.sender = sender or Sender(make_broker(settings))
        app.state.monitor = monitor_for(app.state.sender.broker)
        app.state.limiter = Limiter(settings)
        await engine.start_pool()
        app.state.outbox = Outbox(app.state.sender)
        app.state.outbox.start()
        try:
            yield
        finally:
            await app.state.outbox.close()
            await engine.close_pool()
            await app.state.limiter.close()

    app = Litestar(
        route_handlers=[
            health,
            ready,
            catalog,
            OpsController,
            MetricsController,
            AccountController,
            KeyController,
            OrganizationController,
            BillingController,
            ClientController,
            ProductController,
            ProductOperationController,
            WebhookEndpointController,
            InboundController,
            TestClockController,
            ops_router,
            list_operations,
            list_transactions,
            ActivityController,
            statement,
        ],
        dependencies={"account": Provide(provide_account)},
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=edge_checks,
        logging_config=None,  # logging is configured once per process (worker.logs), JSON lines
        lifespan=[lifespan, refresher, *(extra_lifespans or [])],
        middleware=[PROMETHEUS.middleware, RouteLimits(), IdempotentPosts(), LeanPurchases()],
        openapi_config=OpenAPIConfig(
            title="tenure",
            version="1.0.0",
            path="/schema",
            render_plugins=render_plugins(),  # the generated document, completed by web.contract
            use_handler_docstrings=True,
            security=[{"BearerAuth": []}],
            components=Components(
                security_schemes={
                    "BearerAuth": SecurityScheme(
                        type="http", scheme="bearer", description="Authorization: Bearer <api key>"
                    ),
                    "OpsToken": SecurityScheme(
                        type="http", scheme="bearer", description="Authorization: Bearer <TENURE_OPS_TOKEN>"
                    ),
                }
            ),
        ),
    )
    document_idempotency_key(app)
    app.state.settings = settings
    app.state.resolver = resolve  # webhook hosts' addresses (tests answer their own)
    return app
