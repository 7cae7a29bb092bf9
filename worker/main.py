"""Entry module for Dramatiq's worker command (`tenure worker` runs it).

Dramatiq imports this module in every worker process; building the broker here,
from the environment, is what its command line expects.
"""

import dramatiq

from runtime.settings import Settings
from tables import secrets_at_rest
from worker.actors import declare
from worker.broker import make_broker
from worker.logs import configure
from worker.queue import Sender

settings = Settings.from_env()
configure(level=settings.log_level)
if settings.broker_url is None:
    raise SystemExit(
        "tenure worker needs TENURE_BROKER_URL (redis:// or amqp://); "
        "without one, `tenure demo` runs the workers in-process"
    )
try:
    secrets_at_rest.configure(settings)  # webhook deliveries read the endpoints' secrets
except secrets_at_rest.SecretKeyProblem as exc:
    raise SystemExit(f"tenure worker: {exc}") from None
# Its exposition port (TENURE_WORKER_METRICS_PORT) is put in the environment by `tenure worker`.
from dramatiq.middleware.prometheus import Prometheus  # noqa: E402

broker = make_broker(settings)
broker.add_middleware(Prometheus())
dramatiq.set_broker(broker)
actors = declare(broker, Sender(broker), settings)
