"""Config loading over real temp files: defaults, sources of secrets, and one-line errors."""

from __future__ import annotations

import hashlib
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from syncd import config as config_mod
from syncd.config import (
    DEFAULT_IGNORE,
    KNOWN_KEYS,
    Config,
    load_config,
    parse_bwlimit,
    resolve_config_path,
    starter_config_text,
    write_starter_config,
)
from syncd.errors import ConfigError

K1 = ("k1" + "A1b2C3d4" * 8)[:64]  # 64 characters each, easy to spot in a leaked message
K2 = ("k2" + "E5f6G7h8" * 8)[:64]
SHORT_KEY = "S" * 32
PASSWORD = "folder-pass-Xyzzy"
SECRETS = (K1, K2, SHORT_KEY, PASSWORD)
EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
PAIR = '[[pair]]\nlocal = "/srv/photos"\n'


def cfg(
    *,
    top: str = "",
    remote: str = "",
    sync: str = "",
    pairs: str = PAIR,
    api_url: str | None = "https://files.example.com/api/v2",
    keys: bool = True,
) -> str:
    """A config text: a valid minimal one unless the arguments break it."""
    lines = [top, "[remote]"]
    if api_url is not None:
        lines.append(f'api_url = "{api_url}"')
    if keys:
        lines += [f'key1 = "{K1}"', f'key2 = "{K2}"']
    lines += [remote, "[sync]", sync, pairs]
    return "\n".join(lines) + "\n"


@pytest.fixture
def write(tmp_path: Path) -> Any:
    def write(text: str, mode: int = 0o600, name: str = "config.toml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        path.chmod(mode)
        return path

    return write


@pytest.fixture
def load(write: Any) -> Any:
    def load(text: str, env: dict[str, str] | None = None, **kw: Any) -> Config:
        return load_config(write(text), env=env or {}, **kw)

    return load


def error_of(path: Path, env: dict[str, str] | None = None) -> str:
    """The ConfigError message, checked to be one line naming the file and no secret."""
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    for secret in SECRETS:
        assert secret not in message
    assert info.value.exit_code == 78
    return message


# -- defaults (SPEC §3) -------------------------------------------------------------------


def test_minimal_config_gets_every_spec_default(
    load: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    c = load(cfg())
    assert c.remote.api_url == "https://files.example.com/api/v2/"
    assert (c.remote.key1, c.remote.key2) == (K1, K2)
    assert (c.remote.timeout, c.remote.verify_tls, c.remote.allow_http) == (60, True, False)
    assert c.remote.ca_bundle is None
    s = c.sync
    assert s.state_db == tmp_path / "state" / "syncd" / "state.db"
    assert (s.workers, s.debounce, s.max_delay, s.rescan_interval) == (4, 2.0, 60.0, 3600)
    assert (s.on_delete, s.max_delete_ratio, s.follow_symlinks) == ("keep", 0.5, False)
    assert s.ignore == DEFAULT_IGNORE == ("*.swp", "*~", ".#*", "*.part", "*.tmp")
    assert (s.bwlimit, s.metrics_addr) == (0, "")
    (p,) = c.pairs
    assert (p.name, p.local, p.remote_path) == ("photos", Path("/srv/photos"), "")
    assert (p.remote_folder_id, p.is_public, p.folder_password) == (None, 0, None)
    assert c.warnings == ()
    assert c.pair("photos") is p


def test_every_key_set_explicitly(load: Any, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("PEM")
    c = load(
        cfg(
            remote=f'timeout = 10.5\nverify_tls = false\nca_bundle = "{ca}"\nallow_http = true',
            sync='state_db = "/var/lib/x/s.db"\nworkers = 8\ndebounce = 0\nmax_delay = 5\n'
            'rescan_interval = 0\non_delete = "trash"\nmax_delete_ratio = 1\n'
            'follow_symlinks = true\nignore = []\nbwlimit = "1M"\n'
            'metrics_addr = "127.0.0.1:9464"',
            pairs='[[pair]]\nname = "pics"\nlocal = "/srv/photos/"\nremote_path = "/b//p/"\n'
            f'is_public = 2\nfolder_password = "{PASSWORD}"\n'
            '[[pair]]\nlocal = "/srv/docs"\nremote_folder_id = 125\n',
            api_url="http://files.example.com/api/v2/",
        )
    )
    assert (c.remote.timeout, c.remote.verify_tls, c.remote.ca_bundle) == (10.5, False, str(ca))
    assert c.remote.allow_http and c.remote.api_url == "http://files.example.com/api/v2/"
    s = c.sync
    assert (s.state_db, s.workers, s.debounce, s.max_delay) == (Path("/var/lib/x/s.db"), 8, 0, 5)
    assert (s.rescan_interval, s.on_delete, s.max_delete_ratio) == (0, "trash", 1.0)
    assert (s.follow_symlinks, s.ignore, s.bwlimit) == (True, (), 1024 * 1024)
    assert s.metrics_addr == "127.0.0.1:9464"
    pics, docs = c.pairs
    assert (pics.name, pics.local, pics.remote_path, pics.is_public) == (
        "pics",
        Path("/srv/photos"),
        "b/p",
        2,
    )
    assert pics.access_password == hashlib.md5(PASSWORD.encode()).hexdigest()
    assert (docs.name, docs.remote_folder_id, docs.remote_path) == ("docs", "125", "")
    assert sorted(c.secrets()) == sorted([K1, K2, PASSWORD, pics.access_password])
    assert PASSWORD not in repr(c) and K1 not in repr(c)


def test_tilde_is_expanded(load: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/ann")
    c = load(cfg(sync='state_db = "~/s.db"', pairs='[[pair]]\nlocal = "~/Photos"\n'))
    assert c.sync.state_db == Path("/home/ann/s.db")
    assert c.pairs[0].local == Path("/home/ann/Photos") and c.pairs[0].name == "Photos"


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("", ""),
        ("/", ""),
        ("backups/photos", "backups/photos"),
        ("/backups//photos/", "backups/photos"),
        (" a/b ", "a/b"),
    ],
)
def test_remote_path_is_normalised(load: Any, raw: str, normalised: str) -> None:
    c = load(cfg(pairs=f'[[pair]]\nlocal = "/srv/a"\nremote_path = "{raw}"\n'))
    assert c.pairs[0].remote_path == normalised


# -- errors: one line, naming the file and the key, never a secret --------------------------

ERRORS: list[tuple[str, dict[str, Any], str]] = [
    (
        "workers word",
        {"sync": 'workers = "four"'},
        '[sync] workers: expected an integer >= 1, got "four"',
    ),
    ("workers zero", {"sync": "workers = 0"}, "[sync] workers: expected an integer >= 1, got 0"),
    (
        "workers bool",
        {"sync": "workers = true"},
        "[sync] workers: expected an integer >= 1, got true",
    ),
    ("workers float", {"sync": "workers = 2.5"}, "[sync] workers: expected an integer"),
    ("debounce negative", {"sync": "debounce = -1"}, "[sync] debounce: expected a number >= 0"),
    (
        "max_delay < debounce",
        {"sync": "debounce = 10\nmax_delay = 5"},
        "[sync] max_delay: must be >= debounce (10), got 5",
    ),
    (
        "rescan word",
        {"sync": 'rescan_interval = "1h"'},
        "[sync] rescan_interval: expected a number",
    ),
    (
        "on_delete",
        {"sync": 'on_delete = "purge"'},
        '[sync] on_delete: expected "keep" or "trash", got "purge"',
    ),
    (
        "ratio > 1",
        {"sync": "max_delete_ratio = 1.5"},
        "[sync] max_delete_ratio: expected a number from 0 to 1, got 1.5",
    ),
    (
        "follow_symlinks string",
        {"sync": 'follow_symlinks = "yes"'},
        '[sync] follow_symlinks: expected true or false, got "yes"',
    ),
    ("ignore string", {"sync": 'ignore = "*.tmp"'}, "[sync] ignore: expected an array of strings"),
    ("ignore ints", {"sync": "ignore = [1]"}, "[sync] ignore: expected an array of strings"),
    ("bwlimit word", {"sync": 'bwlimit = "fast"'}, "[sync] bwlimit: expected bytes/s like"),
    ("bwlimit negative", {"sync": "bwlimit = -1"}, "[sync] bwlimit: expected bytes/s"),
    ("bwlimit terabytes", {"sync": 'bwlimit = "2T"'}, "[sync] bwlimit:"),
    ("metrics no port", {"sync": 'metrics_addr = "9464"'}, "[sync] metrics_addr: expected"),
    ("metrics bad port", {"sync": 'metrics_addr = "h:99999"'}, "[sync] metrics_addr:"),
    (
        "state_db relative",
        {"sync": 'state_db = "state.db"'},
        '[sync] state_db: must be an absolute path, got "state.db"',
    ),
    ("sync typo", {"sync": "wrokers = 4"}, "unknown key [sync] wrokers (did you mean workers?)"),
    ("typo reported first", {"sync": "wrokers = 4", "keys": False}, "unknown key [sync] wrokers"),
    ("api_url missing", {"api_url": None}, "[remote] api_url: missing"),
    ("api_url empty", {"api_url": ""}, "[remote] api_url: missing"),
    ("api_url not http", {"api_url": "ftp://x/api/"}, "[remote] api_url: expected an http(s)://"),
    ("api_url no host", {"api_url": "https:///api"}, "[remote] api_url: expected an http(s)://"),
    (
        "api_url credentials",
        {"api_url": "https://u:pw@x/api/"},
        "[remote] api_url: must not contain a user name or password",
    ),
    (
        "plain http",
        {"api_url": "http://files.example.com/api/v2/"},
        "[remote] api_url: plain http:// to files.example.com",
    ),
    ("timeout zero", {"remote": "timeout = 0"}, "[remote] timeout: expected a number >= 1, got 0"),
    ("verify_tls string", {"remote": 'verify_tls = "no"'}, "[remote] verify_tls: expected true"),
    (
        "ca_bundle missing",
        {"remote": 'ca_bundle = "/nonexistent/ca.pem"'},
        "[remote] ca_bundle: no such file /nonexistent/ca.pem",
    ),
    ("ca_bundle relative", {"remote": 'ca_bundle = "ca.pem"'}, "[remote] ca_bundle: must be an"),
    ("remote typo", {"remote": "key3 = 1"}, "unknown key [remote] key3"),
    (
        "key1 missing",
        {"keys": False, "remote": f'key2 = "{K2}"'},
        "[remote] key1: missing (set key1 or key1_file, or $SYNCD_KEY1, or "
        "$CREDENTIALS_DIRECTORY/key1)",
    ),
    ("key2 missing", {"keys": False, "remote": f'key1 = "{K1}"'}, "[remote] key2: missing"),
    (
        "key1 short",
        {"keys": False, "remote": f'key1 = "{SHORT_KEY}"\nkey2 = "{K2}"'},
        "[remote] key1: must be 64 characters (got 32)",
    ),
    (
        "key2 long",
        {"keys": False, "remote": f'key1 = "{K1}"\nkey2 = "{K2}{SHORT_KEY}"'},
        "[remote] key2: must be 64 characters (got 96)",
    ),
    (
        "key1 blank inside",
        {"keys": False, "remote": f'key1 = "{K1[:30]} {K1[31:]}"\nkey2 = "{K2}"'},
        "[remote] key1: must not contain blanks",
    ),
    (
        "key1 not a string",
        {"keys": False, "remote": f'key1 = 123456789\nkey2 = "{K2}"'},
        "[remote] key1: expected a string",
    ),
    (
        "key1 and key1_file",
        {"remote": 'key1_file = "/run/k1"'},
        "[remote] key1: set key1 or key1_file, not both",
    ),
    (
        "key1_file missing",
        {"keys": False, "remote": f'key1_file = "/nonexistent/k1"\nkey2 = "{K2}"'},
        "[remote] key1_file: cannot read /nonexistent/k1: No such file or directory",
    ),
    ("no pairs", {"pairs": ""}, "[[pair]]: missing (at least one pair is needed)"),
    (
        "pair as table",
        {"pairs": '[pair]\nlocal = "/srv/a"'},
        "[[pair]]: expected an array of tables",
    ),
    ("local missing", {"pairs": '[[pair]]\nname = "a"'}, "[[pair]] #1 local: missing"),
    (
        "second local missing",
        {"pairs": PAIR + '[[pair]]\nname = "b"'},
        "[[pair]] #2 local: missing",
    ),
    (
        "local relative",
        {"pairs": '[[pair]]\nlocal = "photos"'},
        '[[pair]] #1 local: must be an absolute path, got "photos"',
    ),
    (
        "local ~user unknown",
        {"pairs": '[[pair]]\nlocal = "~nosuchuser_zz/x"'},
        "[[pair]] #1 local: must be an absolute path",
    ),
    (
        "local root has no basename",
        {"pairs": '[[pair]]\nlocal = "/"'},
        "[[pair]] #1 name: missing (cannot default to the basename of /)",
    ),
    (
        "duplicate names",
        {"pairs": PAIR + '[[pair]]\nname = "photos"\nlocal = "/data/photos"'},
        '[[pair]] #2 name: "photos" is already used by [[pair]] #1',
    ),
    (
        "duplicate default names",
        {"pairs": PAIR + '[[pair]]\nlocal = "/data/photos"'},
        "[[pair]] #2 name:",
    ),
    (
        "nested pairs",
        {"pairs": PAIR + '[[pair]]\nlocal = "/srv/photos/2024"'},
        "[[pair]] #2 local: /srv/photos/2024 overlaps [[pair]] #1 local /srv/photos",
    ),
    (
        "enclosing pair",
        {"pairs": PAIR + '[[pair]]\nname="all"\nlocal = "/srv"'},
        "[[pair]] #2 local: /srv overlaps [[pair]] #1",
    ),
    (
        "same local",
        {"pairs": PAIR + '[[pair]]\nname = "b"\nlocal = "/srv/photos/"'},
        "[[pair]] #2 local: /srv/photos overlaps",
    ),
    (
        "dotdot remote_path",
        {"pairs": PAIR + 'remote_path = "a/../b"'},
        "[[pair]] #1 remote_path: must not contain",
    ),
    ("dot remote_path", {"pairs": PAIR + 'remote_path = "./b"'}, "[[pair]] #1 remote_path:"),
    (
        "is_public 3",
        {"pairs": PAIR + "is_public = 3"},
        "[[pair]] #1 is_public: expected an integer from 0 to 2, got 3",
    ),
    (
        "folder id and path",
        {"pairs": PAIR + 'remote_path = "a"\nremote_folder_id = "5"'},
        "[[pair]] #1 remote_folder_id: set remote_path or remote_folder_id, not both",
    ),
    (
        "folder id float",
        {"pairs": PAIR + "remote_folder_id = 1.5"},
        "[[pair]] #1 remote_folder_id: expected a string or integer, got 1.5",
    ),
    (
        "password twice",
        {"pairs": PAIR + f'folder_password = "{PASSWORD}"\nfolder_password_file = "/run/pw"'},
        "[[pair]] #1 folder_password: set folder_password or folder_password_file, not both",
    ),
    (
        "password not a string",
        {"pairs": PAIR + "folder_password = 12345678"},
        "[[pair]] #1 folder_password: expected a string",
    ),
    ("pair typo", {"pairs": PAIR + 'lcoal = "/x"'}, "unknown key [[pair]] #1 lcoal (did you mean"),
    (
        "pair not a table",
        {"top": "pair = [1]", "pairs": ""},
        "[[pair]] #1: expected a table, got 1",
    ),
    ("unknown section", {"pairs": PAIR + "[extra]\nx = 1"}, "unknown section extra"),
    ("top-level key", {"top": "workers = 4"}, "unknown key workers (expected [remote]"),
]


@pytest.mark.parametrize(("kw", "expected"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_config_error_names_file_and_key(write: Any, kw: dict[str, Any], expected: str) -> None:
    path = write(cfg(**kw))
    assert f"{path}: {expected}" in error_of(path)


def test_section_of_the_wrong_type(write: Any) -> None:
    path = write('remote = 1\n[[pair]]\nlocal = "/a"\n')
    assert error_of(path) == f"{path}: [remote]: expected a table, got 1"
    path = write('sync = ["x"]\n[remote]\napi_url = "https://x/"\n' + PAIR)
    assert error_of(path).startswith(f"{path}: [sync]: expected a table, got an array")


def test_invalid_toml_gives_line_and_column_not_the_value(write: Any) -> None:
    path = write(f"[remote]\napi_url = 'x'\nkey1 = {K1}\n")
    message = error_of(path)
    assert message.startswith(f"{path}: invalid TOML: ") and "line 3" in message


def test_missing_file_suggests_init(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert error_of(path) == (f"{path}: no such file (create one: syncd init {path})")


def test_unreadable_file(tmp_path: Path) -> None:
    assert "cannot read: Is a directory" in error_of(tmp_path)


def test_non_utf8_file(write: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b"[remote]\napi_url = '\xff'\n")
    assert error_of(path) == f"{path}: not UTF-8 text"


# -- api_url and plain http ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow", "ok"),
    [
        ("https://files.example.com/api/v2", False, True),
        ("http://127.0.0.1:8080/api/v2/", False, True),
        ("http://127.5.6.7/api/v2/", False, True),
        ("http://[::1]:9000/api/v2/", False, True),
        ("http://localhost:9000/api/v2/", False, True),
        ("http://LocalHost/api/v2/", False, True),
        ("http://files.example.com/api/v2/", False, False),
        ("http://10.0.0.5/api/v2/", False, False),
        ("http://[::2]/api/v2/", False, False),
        ("http://localhost.example.com/", False, False),
        ("http://files.example.com/api/v2/", True, True),
    ],
)
def test_plain_http_only_to_loopback_unless_allowed(
    write: Any, url: str, allow: bool, ok: bool
) -> None:
    path = write(cfg(api_url=url, remote=f"allow_http = {str(allow).lower()}"))
    if ok:
        api_url = load_config(path, env={}).remote.api_url
        assert api_url.endswith("/") and api_url.rstrip("/") == url.rstrip("/")
    else:
        assert "allow_http = true" in error_of(path)


# -- where the keys come from --------------------------------------------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> Any:
    def make(name: str, value: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")  # a trailing newline, as `echo` leaves it
        return path

    return make


OTHER1, OTHER2, OTHER3 = ("e" * 64, "c" * 64, "f" * 64)


def test_env_overrides_inline_keys(load: Any) -> None:
    c = load(cfg(), env={"SYNCD_KEY1": OTHER1, "SYNCD_KEY2": OTHER2})
    assert (c.remote.key1, c.remote.key2) == (OTHER1, OTHER2)


def test_empty_env_var_is_ignored(load: Any) -> None:
    assert load(cfg(), env={"SYNCD_KEY1": ""}).remote.key1 == K1


def test_env_alone_supplies_keys_and_no_warning(write: Any) -> None:
    path = write(cfg(keys=False), mode=0o644)
    c = load_config(path, env={"SYNCD_KEY1": K1, "SYNCD_KEY2": K2})
    assert (c.remote.key1, c.remote.key2, c.warnings) == (K1, K2, ())


def test_key_files(load: Any, secret_file: Any) -> None:
    f1, f2 = secret_file("k/key1", K1), secret_file("k/key2", K2)
    c = load(cfg(keys=False, remote=f'key1_file = "{f1}"\nkey2_file = "{f2}"'))
    assert (c.remote.key1, c.remote.key2) == (K1, K2)


def test_credentials_directory(load: Any, secret_file: Any, tmp_path: Path) -> None:
    secret_file("creds/key1", OTHER1)
    secret_file("creds/key2", OTHER2)
    c = load(cfg(), env={"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")})
    assert (c.remote.key1, c.remote.key2) == (OTHER1, OTHER2)


def test_precedence_env_then_credentials_then_key_file(
    load: Any, secret_file: Any, tmp_path: Path
) -> None:
    f1, f2 = secret_file("k/key1", K1), secret_file("k/key2", K2)
    secret_file("creds/key1", OTHER1)  # no creds/key2: key2 falls through to key2_file
    text = cfg(keys=False, remote=f'key1_file = "{f1}"\nkey2_file = "{f2}"')
    creds = {"CREDENTIALS_DIRECTORY": str(tmp_path / "creds")}
    c = load(text, env=creds)
    assert (c.remote.key1, c.remote.key2) == (OTHER1, K2)
    c = load(text, env=creds | {"SYNCD_KEY1": OTHER3})
    assert c.remote.key1 == OTHER3


def test_bad_key_from_env_or_credentials_names_the_source(
    write: Any, secret_file: Any, tmp_path: Path
) -> None:
    path = write(cfg())
    message = error_of(path, env={"SYNCD_KEY2": SHORT_KEY})
    assert f"{path}: [remote] key2 (from $SYNCD_KEY2): must be 64 characters (got 32)" in message
    cred = secret_file("creds/key1", SHORT_KEY)
    message = error_of(path, env={"CREDENTIALS_DIRECTORY": str(cred.parent)})
    assert f"[remote] key1 (from {cred}): must be 64 characters (got 32)" in message


def test_bad_key_file_names_key_file(write: Any, secret_file: Any) -> None:
    f1 = secret_file("key1", SHORT_KEY)
    path = write(cfg(keys=False, remote=f'key1_file = "{f1}"\nkey2 = "{K2}"'))
    assert f"[remote] key1_file ({f1}): must be 64 characters (got 32)" in error_of(path)


def test_keys_optional_for_offline_commands(load: Any) -> None:
    c = load(cfg(keys=False), require_keys=False)
    assert (c.remote.key1, c.remote.key2, c.secrets()) == ("", "", [])


def test_folder_password_file(load: Any, secret_file: Any) -> None:
    pw = secret_file("pw", PASSWORD)
    c = load(cfg(pairs=PAIR + f'folder_password_file = "{pw}"'))
    assert c.pairs[0].folder_password == PASSWORD
    assert PASSWORD in c.secrets()


# -- state_db ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state_directory", "expected"),
    [
        ("/var/lib/syncd", "/var/lib/syncd/state.db"),
        ("/var/lib/syncd:/var/lib/other", "/var/lib/syncd/state.db"),
    ],
)
def test_state_directory(load: Any, state_directory: str, expected: str) -> None:
    c = load(cfg(), env={"STATE_DIRECTORY": state_directory})
    assert c.sync.state_db == Path(expected)


def test_explicit_state_db_wins_over_state_directory(load: Any) -> None:
    c = load(cfg(sync='state_db = "/srv/s.db"'), env={"STATE_DIRECTORY": "/var/lib/syncd"})
    assert c.sync.state_db == Path("/srv/s.db")


# -- bwlimit -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("  ", 0),
        ("0", 0),
        ("100", 100),
        ("512K", 512 * 1024),
        ("512k", 512 * 1024),
        ("2M", 2 * 1024**2),
        ("1.5M", 1536 * 1024),
        ("1G", 1024**3),
        (" 2 M ", 2 * 1024**2),
        ("fast", None),
        ("2T", None),
        ("-1", None),
        ("M", None),
        ("2MB/s", None),
    ],
)
def test_parse_bwlimit(text: str, expected: int | None) -> None:
    assert parse_bwlimit(text) == expected


def test_bwlimit_as_integer_bytes(load: Any) -> None:
    assert load(cfg(sync="bwlimit = 250000")).sync.bwlimit == 250000


# -- permissions warning ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "warned"),
    [(0o600, False), (0o400, False), (0o640, True), (0o644, True), (0o604, True)],
)
def test_secrets_in_readable_file_warn(write: Any, mode: int, warned: bool) -> None:
    path = write(cfg(), mode=mode)
    warnings = load_config(path, env={}).warnings
    assert bool(warnings) is warned
    for w in warnings:
        assert str(path) in w and "chmod 600" in w and "key1, key2" in w
        assert K1 not in w and "\n" not in w


def test_readable_file_without_inline_secrets_does_not_warn(write: Any) -> None:
    path = write(cfg(keys=False), mode=0o644)
    assert load_config(path, env={"SYNCD_KEY1": K1, "SYNCD_KEY2": K2}).warnings == ()


def test_inline_folder_password_warns(write: Any) -> None:
    path = write(cfg(keys=False, pairs=PAIR + f'folder_password = "{PASSWORD}"'), mode=0o644)
    (w,) = load_config(path, env={"SYNCD_KEY1": K1, "SYNCD_KEY2": K2}).warnings
    assert "[[pair]] #1 folder_password" in w and PASSWORD not in w


# -- resolve_config_path ---------------------------------------------------------------------


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    user = tmp_path / "xdg" / "syncd" / "config.toml"
    system = tmp_path / "etc" / "syncd" / "config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(config_mod, "SYSTEM_CONFIG", system)
    return user, system


def test_resolve_order(dirs: tuple[Path, Path]) -> None:
    user, system = dirs
    assert resolve_config_path("/x/c.toml", env={"SYNCD_CONFIG": "/y"}) == Path("/x/c.toml")
    assert resolve_config_path(None, env={"SYNCD_CONFIG": "/y/c.toml"}) == Path("/y/c.toml")
    assert resolve_config_path(None, env={}) == user  # neither exists: the one init writes
    system.parent.mkdir(parents=True)
    system.write_text("")
    assert resolve_config_path(None, env={}) == system
    user.parent.mkdir(parents=True)
    user.write_text("")
    assert resolve_config_path(None, env={}) == user


# -- starter config and config.example.toml -------------------------------------------------


def fill_keys(text: str) -> str:
    return text.replace('key1 = ""', f'key1 = "{K1}"').replace('key2 = ""', f'key2 = "{K2}"')


def test_write_starter_config(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    write_starter_config(path, force=False)
    assert path.read_text() == starter_config_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "[remote] key1: missing" in error_of(path)  # `check` right after `init` says why
    path.write_text(fill_keys(path.read_text()))
    c = load_config(path, env={})
    assert (c.remote.key1, c.pairs[0].local, c.warnings) == (K1, Path("/srv/data"), ())


def test_starter_config_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("mine")
    with pytest.raises(ConfigError) as info:
        write_starter_config(path, force=False)
    assert str(path) in str(info.value) and "--force" in str(info.value)
    assert path.read_text() == "mine"


def test_starter_config_force_overwrites_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("mine")
    path.chmod(0o644)
    write_starter_config(path, force=True)
    assert path.read_text() == starter_config_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp file left


def test_example_file_is_the_starter_config() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == starter_config_text()


def test_example_loads_with_spec_defaults(write: Any, load: Any) -> None:
    example = load(fill_keys(EXAMPLE.read_text()))
    minimal = load(cfg())
    assert example.sync == minimal.sync
    assert example.remote.timeout == 60 and example.remote.verify_tls is True
    assert example.pairs[0].is_public == 0


SPEC_KEYS = {  # SPEC §3, plus the alternatives it mentions in comments, plus ca_bundle
    "remote": {
        "api_url",
        "key1",
        "key1_file",
        "key2",
        "key2_file",
        "timeout",
        "verify_tls",
        "ca_bundle",
        "allow_http",
    },
    "sync": {
        "state_db",
        "workers",
        "debounce",
        "max_delay",
        "rescan_interval",
        "on_delete",
        "max_delete_ratio",
        "follow_symlinks",
        "ignore",
        "bwlimit",
        "metrics_addr",
    },
    "pair": {
        "name",
        "local",
        "remote_path",
        "remote_folder_id",
        "is_public",
        "folder_password",
        "folder_password_file",
    },
}


def documented_keys(text: str) -> dict[str, set[str]]:
    """section -> keys written (or commented out) as `key = …` in that section."""
    found: dict[str, set[str]] = {}
    section = ""
    for line in text.splitlines():
        if m := re.match(r"^\[+(\w+)\]+", line):
            section = m[1]
        elif m := re.match(r"^#?\s*(\w+)\s*=", line):
            found.setdefault(section, set()).add(m[1])
    return found


def test_loader_accepts_exactly_the_spec_keys() -> None:
    assert {section: set(keys) for section, keys in KNOWN_KEYS.items()} == SPEC_KEYS


def test_example_documents_every_accepted_key() -> None:
    assert documented_keys(EXAMPLE.read_text()) == SPEC_KEYS


def test_every_documented_key_is_accepted(load: Any, tmp_path: Path) -> None:
    """Uncomment everything in the example (alternatives made consistent): it still loads."""
    for name in ("key1", "key2", "pw", "ca.pem"):
        (tmp_path / name).write_text({"key1": K1, "key2": K2}.get(name, "x" * 8))
    text = re.sub(r"(?m)^# (\w+ = )", r"\1", EXAMPLE.read_text())
    text = re.sub(r'(?m)^(key[12]) = ""', r"# \1", text)
    text = re.sub(r"(?m)^remote_path = .*$", "", text)
    text = re.sub(r"(?m)^folder_password = .*$", "", text)
    for key, name in (
        ("key1_file", "key1"),
        ("key2_file", "key2"),
        ("folder_password_file", "pw"),
        ("ca_bundle", "ca.pem"),
    ):
        text = re.sub(rf'(?m)^{key} = "[^"]*"', f'{key} = "{tmp_path / name}"', text)
    c = load(text)
    assert (c.remote.key1, c.remote.ca_bundle) == (K1, str(tmp_path / "ca.pem"))
    assert (c.pairs[0].name, c.pairs[0].remote_folder_id) == ("data", "125")
