"""The five-stage pipeline: standardize → validate → transform → summarize → publish.

Pure library code: every stage takes plain picklable inputs (paths, dicts, settings values) so that
the runner can execute it in a warm process pool and the event loop never blocks. `stages.py` is
the entry point the runner calls; the other modules hold one concern each.
"""
