"""`batchops-daemon`: arq worker settings, process lifecycle (signals, systemd, health), `--once`.

Task bodies live in `batchops_core.worker.tasks` so the embedded worker runs the very same code.
"""
