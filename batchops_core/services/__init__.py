"""Service layer: async functions the TUI, CLI and daemon call with an actor.

Each service checks permissions first and returns frozen dataclasses (plain data),
never live ORM objects.
"""
