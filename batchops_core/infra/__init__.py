"""Infrastructure: settings, the database and its unit of work, events, mail, metrics, clock.

Nothing here knows a domain rule; domain modules and services build on it, never the reverse.
"""
