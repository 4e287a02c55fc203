"""BatchOps core: everything that is true without a screen or a worker."""

import logging

__version__ = "0.1.0"

# A library does not print its log: without this, Python's last-resort handler writes warnings to
# stderr of the CLI next to its one-sentence error. Entry points that want logs configure them.
logging.getLogger(__name__).addHandler(logging.NullHandler())
