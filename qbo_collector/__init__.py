"""qbo-collector: polite, once-only collections for QuickBooks Online companies."""

__version__ = "0.1.0"
