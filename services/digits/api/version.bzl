"""The digits API version, for targets whose file names carry it (the SDK wheel).

It must equal API_VERSION in services/digits/handler.py (the contract's
info.version); the SDK build fails with a message when they differ.
"""

API_VERSION = "1.0"
