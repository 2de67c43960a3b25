"""CLI commands, one module per area; each module's ``register(groups)`` adds its commands."""
