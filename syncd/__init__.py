"""syncd: keep a local directory tree mirrored, one way, into a "file upload API v2" account."""

__version__ = "0.1.0"
