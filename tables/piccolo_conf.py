"""Piccolo's configuration module (PICCOLO_CONF=tables.piccolo_conf).

`DB` is looked up at each use: the engine bound by tenure, or else one built from
TENURE_DATABASE_URL (for the `piccolo` command line).
"""

from piccolo.conf.apps import AppRegistry

APP_REGISTRY = AppRegistry(apps=["tables.piccolo_app"])


def __getattr__(name: str):
    if name == "DB":
        from runtime.settings import Settings
        from tables import engine

        if engine._current is None:
            engine.bind(engine.make_engine(Settings.from_env().database_url))
        return engine.current()
    raise AttributeError(name)
