"""Storage: Piccolo tables, migrations, the engine and the queries tenure needs."""
