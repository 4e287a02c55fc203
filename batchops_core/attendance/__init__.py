"""Attendance: punches to a daily register (rules, processing, corrections, register, services).

`rules.py` holds the pure rules; `processing.py` applies them to whole arrays; the database side
is `models.py` and the service modules, the only door for the TUI, the CLI and the daemon.
"""
