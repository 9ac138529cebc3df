"""The "file upload API v2" backend (YetiShare sites): ``UploadApiRemote``.

``wire`` parses the API's JSON and builds upload bodies, ``client`` speaks HTTP and maps
every failure to ``syncd.errors``, ``remote`` implements ``syncd.remote.base.Remote``.
"""

from syncd.remote.uploadapi.client import ApiClient
from syncd.remote.uploadapi.remote import RemoteStats, UploadApiRemote

__all__ = ["ApiClient", "RemoteStats", "UploadApiRemote"]
