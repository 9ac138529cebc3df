"""Configuration: TOML + env + $CREDENTIALS_DIRECTORY -> one frozen Config (SPEC §3).

Every problem is a ``ConfigError`` (exit 78) whose message is one line naming the file and
the key, and never the value of a secret. ``STARTER_CONFIG`` documents every accepted key;
``config.example.toml`` at the repo root is a copy of it (a test keeps them equal).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from syncd.errors import ConfigError

DEFAULT_IGNORE = ("*.swp", "*~", ".#*", "*.part", "*.tmp")
SYSTEM_CONFIG = Path("/etc/syncd/config.toml")
KEY_LENGTH = 64  # the site issues 64-character API keys; anything else is a paste error
# The starter config `syncd init` writes (config.example.toml is a copy): every key the
# loader accepts, with its default and what it is for. KNOWN_KEYS is read from it, so the
# loader cannot accept a key this text does not document.
# A plain file beside this module (not importlib.resources: ~10 ms of every start).
STARTER_CONFIG = Path(__file__).with_name("starter_config.toml").read_text(encoding="utf-8")


def _documented_keys(text: str) -> dict[str, tuple[str, ...]]:
    keys: dict[str, tuple[str, ...]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.match(r"\[+(\w+)\]+", line):
            section = m[1]
        elif m := re.match(r"#? ?(\w+) = ", line):
            keys[section] = (*keys.get(section, ()), m[1])
    return keys


KNOWN_KEYS = _documented_keys(STARTER_CONFIG)  # section -> keys, "pair" for [[pair]]
_BW_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}  # binary, like rclone's --bwlimit


@dataclass(frozen=True)
class RemoteConfig:
    api_url: str  # normalised to end with "/"
    key1: str = field(repr=False)
    key2: str = field(repr=False)
    timeout: float = 60.0
    verify_tls: bool = True
    ca_bundle: str | None = None  # PEM file of extra CAs (private CA); None = system store
    allow_http: bool = False


@dataclass(frozen=True)
class SyncConfig:
    state_db: Path
    workers: int = 4
    debounce: float = 2.0
    max_delay: float = 60.0
    rescan_interval: float = 3600.0
    on_delete: str = "keep"  # "keep" | "trash"
    max_delete_ratio: float = 0.5
    follow_symlinks: bool = False
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    bwlimit: int = 0  # bytes per second, 0 = none
    metrics_addr: str = ""


@dataclass(frozen=True)
class PairConfig:
    name: str
    local: Path  # absolute, ~ expanded
    remote_path: str = ""  # POSIX, no leading/trailing "/", "" = account root
    remote_folder_id: str | None = None
    is_public: int = 0
    folder_password: str | None = field(default=None, repr=False)

    @property
    def access_password(self) -> str | None:
        """The folder password as the API wants it (``access_password`` = its MD5)."""
        return _md5(self.folder_password) if self.folder_password else None


@dataclass(frozen=True)
class Config:
    path: Path | None  # the file it was read from
    remote: RemoteConfig
    sync: SyncConfig
    pairs: tuple[PairConfig, ...]
    # One-line problems that are not fatal (e.g. secrets in a world-readable file); the
    # CLI prints them. Returned rather than logged so loading stays free of side effects.
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def pair(self, name: str) -> PairConfig:
        for p in self.pairs:
            if p.name == name:
                return p
        raise KeyError(name)

    def secrets(self) -> list[str]:
        """Every secret value this config holds, for the log redactor (``log.add_secret``)."""
        out = [self.remote.key1, self.remote.key2]
        for p in self.pairs:
            if p.folder_password:
                out += [p.folder_password, _md5(p.folder_password)]
        return [s for s in out if s]


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def _show(value: Any) -> str:
    """A bad value as TOML-ish text for an error message (never called on a secret)."""
    if isinstance(value, list | dict):
        return "an array" if isinstance(value, list) else "a table"
    text = json.dumps(value, ensure_ascii=False, default=lambda v: type(v).__name__)
    return text if len(text) <= 60 else text[:56] + '..."'


class _Table:
    """One TOML table being read: typed getters whose errors name the file, table and key."""

    def __init__(self, file: Path, label: str, data: Any, section: str) -> None:
        self.file, self.label = file, label
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: {label}: expected a table, got {_show(data)}")
        self.data: dict[str, Any] = data
        for key in data:
            if key not in KNOWN_KEYS[section]:
                import difflib

                close = difflib.get_close_matches(key, KNOWN_KEYS[section], n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ConfigError(f"{file}: unknown key {label} {key}{hint}")

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"{self.file}: {self.label} {key}: {message}")

    def text(self, key: str, default: str = "", *, secret: bool = False) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):  # a secret's value is never echoed, whatever its type
            self.fail(key, "expected a string" + ("" if secret else f", got {_show(value)}"))
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_show(value)}")
        return value

    def number(
        self, key: str, default: float, lo: float, hi: float | None = None, *, integer: bool = False
    ) -> float:
        value = self.data.get(key, default)
        kind = "an integer" if integer else "a number"
        want = f"{kind} >= {lo:g}" if hi is None else f"{kind} from {lo:g} to {hi:g}"
        ok = isinstance(value, int if integer else int | float) and not isinstance(value, bool)
        if not ok or value < lo or (hi is not None and value > hi):
            self.fail(key, f"expected {want}, got {_show(value)}")
        return int(value) if integer else float(value)

    def path(self, key: str) -> Path | None:
        """An absolute path (after ~ expansion), or None when unset or ""."""
        raw = self.text(key)
        if not raw:
            return None
        expanded = os.path.expanduser(raw)
        if not os.path.isabs(expanded):
            self.fail(key, f"must be an absolute path, got {_show(raw)}")
        return Path(os.path.normpath(expanded))


def resolve_config_path(option: str | None, env: Mapping[str, str] | None = None) -> Path:
    """``--config``, else ``$SYNCD_CONFIG``, else the user's config, else /etc (SPEC §2);
    if neither of the last two exists, the user's: the one ``syncd init`` would write."""
    env = os.environ if env is None else env
    if option:
        return Path(option).expanduser()
    if env.get("SYNCD_CONFIG"):
        return Path(env["SYNCD_CONFIG"]).expanduser()
    import platformdirs

    user = Path(platformdirs.user_config_dir("syncd")) / "config.toml"
    return SYSTEM_CONFIG if not user.exists() and SYSTEM_CONFIG.exists() else user


def load_config(
    path: Path, env: Mapping[str, str] | None = None, *, require_keys: bool = True
) -> Config:
    """Read and validate ``path``; the result is complete and needs no further checks.

    Precedence for key1/key2: ``$SYNCD_KEY1`` > ``$CREDENTIALS_DIRECTORY/key1`` >
    ``key1_file`` > inline ``key1`` (the environment is how a unit or a one-off run overrides
    a shared file; setting both ``key1`` and ``key1_file`` in the file is an error).
    ``state_db`` = "" means ``$STATE_DIRECTORY/state.db`` (first of its ':'-separated
    dirs), else the user state dir. ``env`` (default ``os.environ``) is only consulted for
    SYNCD_KEY1/2, CREDENTIALS_DIRECTORY and STATE_DIRECTORY. ``require_keys=False`` lets
    offline commands (status, ls) run without credentials: missing keys become "".
    """
    env = os.environ if env is None else env
    data, mode = _read_toml(path)
    for name in data:
        if name not in KNOWN_KEYS:
            kind = "section" if isinstance(data[name], dict | list) else "key"
            raise ConfigError(
                f"{path}: unknown {kind} {name} (expected [remote], [sync], [[pair]])"
            )
    # Shape and unknown keys of every table first: a typo is the likeliest cause of the rest.
    remote_t = _Table(path, "[remote]", data.get("remote", {}), "remote")
    sync_t = _Table(path, "[sync]", data.get("sync", {}), "sync")
    raw_pairs = data.get("pair", [])
    if not isinstance(raw_pairs, list):
        raise ConfigError(f"{path}: [[pair]]: expected an array of tables, not [pair]")
    if not raw_pairs:
        raise ConfigError(f"{path}: [[pair]]: missing (at least one pair is needed)")
    tables = [_Table(path, f"[[pair]] #{n}", raw, "pair") for n, raw in enumerate(raw_pairs, 1)]
    remote, sync = _remote(remote_t, env, require_keys), _sync(sync_t, env)
    pairs = tuple(_pair(t) for t in tables)
    _check_pairs(tables, pairs)

    inline = [k for k in ("key1", "key2") if remote_t.data.get(k)]
    inline += [f"{t.label} folder_password" for t in tables if t.data.get("folder_password")]
    warn = f"{path}: readable by other users (mode {mode & 0o777:04o}) but holds secrets"
    warnings = (f"{warn} ({', '.join(inline)}): chmod 600 {path}",) if mode & 0o044 else ()
    return Config(path, remote, sync, pairs, warnings if inline else ())


def _read_toml(path: Path) -> tuple[dict[str, Any], int]:
    """The parsed file and its permission bits, read through one descriptor."""
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            raw = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (create one: syncd init {path})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(raw.decode("utf-8")), mode
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _remote(t: _Table, env: Mapping[str, str], require_keys: bool) -> RemoteConfig:
    allow_http = t.flag("allow_http", False)
    ca_bundle = t.path("ca_bundle")
    if ca_bundle is not None and not ca_bundle.is_file():
        t.fail("ca_bundle", f"no such file {ca_bundle}")
    return RemoteConfig(
        api_url=_api_url(t, allow_http),
        key1=_key(t, "key1", env, require_keys),
        key2=_key(t, "key2", env, require_keys),
        timeout=t.number("timeout", 60.0, 1),
        verify_tls=t.flag("verify_tls", True),
        ca_bundle=str(ca_bundle) if ca_bundle else None,
        allow_http=allow_http,
    )


def _api_url(t: _Table, allow_http: bool) -> str:
    url = t.text("api_url").strip()
    if not url:
        t.fail("api_url", "missing (the site's API base, e.g. https://files.example.com/api/v2/)")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        t.fail("api_url", f"expected an http(s):// URL, got {_show(url)}")
    if parts.username or parts.password:
        t.fail("api_url", "must not contain a user name or password")
    try:
        import ipaddress

        loopback = ipaddress.ip_address(host).is_loopback  # 127.0.0.0/8, ::1
    except ValueError:
        loopback = host.lower() == "localhost"
    if parts.scheme == "http" and not allow_http and not loopback:
        fix = "use https:// or set allow_http = true"
        t.fail("api_url", f"plain http:// to {host} would send the keys in clear; {fix}")
    return url if url.endswith("/") else url + "/"


def _key(t: _Table, name: str, env: Mapping[str, str], required: bool) -> str:
    """key1/key2 from the first source that has it; errors name the source, not the value."""
    inline, key_file = t.text(name, secret=True), t.path(f"{name}_file")
    if inline and key_file:
        t.fail(name, f"set {name} or {name}_file, not both")
    var, creds = f"SYNCD_{name.upper()}", env.get("CREDENTIALS_DIRECTORY", "")
    cred_file = Path(creds, name) if creds else None
    if env.get(var):
        value, where = env[var], f"{name} (from ${var})"
    elif cred_file is not None and cred_file.is_file():
        value, where = _read_secret(t, name, cred_file), f"{name} (from {cred_file})"
    elif key_file is not None:
        value, where = _read_secret(t, f"{name}_file", key_file), f"{name}_file ({key_file})"
    elif inline:
        value, where = inline, name
    elif not required:
        return ""
    else:
        how = f"set {name} or {name}_file, or ${var}, or $CREDENTIALS_DIRECTORY/{name}"
        t.fail(name, f"missing ({how})")
    value = value.strip()
    if len(value) != KEY_LENGTH:
        t.fail(where, f"must be {KEY_LENGTH} characters (got {len(value)})")
    if any(c.isspace() or not c.isprintable() for c in value):
        t.fail(where, "must not contain blanks or control characters")
    return value


def _read_secret(t: _Table, key: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        t.fail(key, f"{path} is not UTF-8 text")
    except OSError as exc:
        t.fail(key, f"cannot read {path}: {exc.strerror or exc}")


def _sync(t: _Table, env: Mapping[str, str]) -> SyncConfig:
    state_db = t.path("state_db")
    if state_db is None:
        state_dir = env.get("STATE_DIRECTORY", "").split(":")[0]
        if not state_dir:
            import platformdirs

            state_dir = platformdirs.user_state_dir("syncd")
        state_db = Path(state_dir) / "state.db"
    debounce = t.number("debounce", 2.0, 0)
    max_delay = t.number("max_delay", 60.0, 0)
    if max_delay < debounce:
        t.fail("max_delay", f"must be >= debounce ({debounce:g}), got {max_delay:g}")
    on_delete = t.text("on_delete", "keep")
    if on_delete not in ("keep", "trash"):
        t.fail("on_delete", f'expected "keep" or "trash", got {_show(on_delete)}')
    bwlimit = parse_bwlimit(t.data.get("bwlimit", ""))
    if bwlimit is None:
        t.fail("bwlimit", f'expected bytes/s like "2M" or "", got {_show(t.data["bwlimit"])}')
    addr = t.text("metrics_addr").strip()
    host, _, port = addr.rpartition(":")
    if addr and not (host and port.isdigit() and 0 < int(port) < 65536):
        t.fail("metrics_addr", f'expected "host:port" like "127.0.0.1:9464", got {_show(addr)}')
    ignore = t.data.get("ignore", list(DEFAULT_IGNORE))
    if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
        t.fail("ignore", f"expected an array of strings, got {_show(ignore)}")
    return SyncConfig(
        state_db=state_db,
        workers=int(t.number("workers", 4, 1, integer=True)),
        debounce=debounce,
        max_delay=max_delay,
        rescan_interval=t.number("rescan_interval", 3600.0, 0),
        on_delete=on_delete,
        max_delete_ratio=t.number("max_delete_ratio", 0.5, 0, 1),
        follow_symlinks=t.flag("follow_symlinks", False),
        ignore=tuple(ignore),
        bwlimit=bwlimit,
        metrics_addr=addr,
    )


def parse_bwlimit(value: object) -> int | None:
    """ "2M" -> 2 MiB/s in bytes/s (K/M/G: 1024 multiples); an integer is bytes/s; "" -> 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    text = value.strip() if isinstance(value, str) else "?"
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMG]?)", text or "0", re.IGNORECASE)
    return int(float(m[1]) * _BW_UNITS[m[2].upper()]) if m else None


def _pair(t: _Table) -> PairConfig:
    local = t.path("local")
    if local is None:
        t.fail("local", "missing (the absolute path of the tree to mirror)")
    name = t.text("name").strip() or local.name
    if not name:
        t.fail("name", f"missing (cannot default to the basename of {local})")
    folder_id_raw = t.data.get("remote_folder_id", "")
    if isinstance(folder_id_raw, bool) or not isinstance(folder_id_raw, str | int):
        t.fail("remote_folder_id", f"expected a string or integer, got {_show(folder_id_raw)}")
    folder_id = str(folder_id_raw).strip() or None
    # Slashes stripped and collapsed; "." / ".." / "\\" refused rather than resolved.
    raw_path = t.text("remote_path")
    remote_path = "/".join(part for part in raw_path.strip().split("/") if part)
    if {".", ".."} & set(remote_path.split("/")) or "\\" in remote_path:
        t.fail("remote_path", f'must not contain ".", ".." or "\\", got {_show(raw_path)}')
    if folder_id and remote_path:
        t.fail("remote_folder_id", "set remote_path or remote_folder_id, not both")
    password = t.text("folder_password", secret=True)
    password_file = t.path("folder_password_file")
    if password and password_file:
        t.fail("folder_password", "set folder_password or folder_password_file, not both")
    if password_file is not None:
        password = _read_secret(t, "folder_password_file", password_file)
        if not password:
            t.fail("folder_password_file", f"{password_file} is empty")
    is_public = int(t.number("is_public", 0, 0, 2, integer=True))
    return PairConfig(name, local, remote_path, folder_id, is_public, password or None)


def _check_pairs(tables: list[_Table], pairs: tuple[PairConfig, ...]) -> None:
    """Names unique; local roots disjoint (a file must belong to exactly one pair)."""
    real = [Path(os.path.realpath(p.local)) for p in pairs]
    for i, (t, p) in enumerate(zip(tables, pairs, strict=True)):
        for j in range(i):
            if pairs[j].name == p.name:
                t.fail("name", f"{_show(p.name)} is already used by {tables[j].label}")
            a, b = real[i], real[j]
            if a == b or a in b.parents or b in a.parents:
                other = f"{tables[j].label} local {pairs[j].local}"
                t.fail("local", f"{p.local} overlaps {other} (pairs must not nest)")


def starter_config_text() -> str:
    """The commented starter config ``syncd init`` writes (== config.example.toml)."""
    return STARTER_CONFIG


def write_starter_config(path: Path, force: bool) -> None:
    """Write the starter config with mode 0600, atomically; never clobber without force."""
    if path.exists() and not force:
        raise ConfigError(f"{path}: already exists; use --force to overwrite it")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # exact, whatever the umask
            f.write(STARTER_CONFIG)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None
