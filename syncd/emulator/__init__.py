"""The bundled emulator of a YetiShare 4.x "file upload API v2" site.

A real HTTP server (stdlib ``http.server``, keep-alive, one thread per connection) with an
on-disk store and fault injection, so that syncd's tests, demo and benchmarks exercise
the same HTTP client code that talks to live sites. See ``EmulatorServer``.
"""

from syncd.emulator.options import DEMO_KEY1, DEMO_KEY2, EmulatorOptions, Faults
from syncd.emulator.server import EmulatorServer

__all__ = ["DEMO_KEY1", "DEMO_KEY2", "EmulatorOptions", "EmulatorServer", "Faults"]
