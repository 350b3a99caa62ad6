"""Config loading: defaults, the example file, environment overrides and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import (
    TELEGRAM_API_URL,
    ConfigError,
    WebhookConfig,
    check_webhook_mode,
    load_config,
    schema_keys,
)

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_with_token_from_environment() -> None:
    config = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "1:abc"})
    assert config.telegram.token == "1:abc"
    assert config.telegram.api_url == TELEGRAM_API_URL
    assert config.telegram.file_url == "https://api.telegram.org/file/bot"
    assert config.storage.database == "hashguard.sqlite3"
    assert config.matching.pdq_max_distance == 31
    assert config.matching.phash_auto_delete is False


def test_example_file_documents_every_key_with_its_default() -> None:
    text = (REPO / "config.example.toml").read_text()
    config = load_config(REPO / "config.example.toml", environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})
    defaults = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})
    assert config == defaults
    for section, keys in schema_keys().items():
        assert f"[{section}]" in text
        for key in keys:
            assert re.search(rf"^{key} = ", text, re.M), f"{section}.{key} is not documented"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[telegram]\ntoken = "file"\n[matching]\npdq_max_distance = 20\n')
    config = load_config(
        path,
        environ={
            "HASHGUARD_TELEGRAM_TOKEN": "env",
            "HASHGUARD_MATCHING_PDQ_MAX_DISTANCE": "25",
            "HASHGUARD_MATCHING_PHASH_AUTO_DELETE": "yes",
        },
    )
    assert config.telegram.token == "env"
    assert config.matching.pdq_max_distance == 25
    assert config.matching.phash_auto_delete is True


def test_missing_token_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"telegram\.token is missing.*HASHGUARD_TELEGRAM_TOKEN"):
        load_config(None, environ={})


@pytest.mark.parametrize(
    ("text", "env", "pattern"),
    [
        (
            "[matching]\npdq_max_distance = 300\n",
            {},
            r"matching\.pdq_max_distance = 300 .*0 to 128",
        ),
        ('[matching]\npdq_max_distance = "31"\n', {}, r"pdq_max_distance.*integer"),
        ("[matching]\nphash_auto_delete = 1\n", {}, r"phash_auto_delete.*true or false"),
        (
            "[matching]\npdq_threshold = 3\n",
            {},
            r"unknown config key matching\.pdq_threshold.*"
            r"matching\.pdq_max_distance",
        ),
        ("[telegrm]\n", {}, r"unknown config section \[telegrm\].*telegram"),
        ("[media]\ncrop_queue_size = 0\n", {}, r"media\.crop_queue_size = 0 .*1 to 1000000"),
        ('[telegram]\napi_url = "ftp://x"\n', {}, r"api_url.*http://"),
        ('[logging]\nlevel = "LOUD"\n', {}, r"logging\.level = 'LOUD'.*DEBUG, INFO"),
        (
            "",
            {"HASHGUARD_MEDIA_WORKERS": "many"},
            r"HASHGUARD_MEDIA_WORKERS \(for media\.workers\)"
            r" = 'many'.*integer",
        ),
        ("not toml ][", {}, r"not valid TOML"),
    ],
)
def test_bad_values_name_key_value_and_accepted(
    tmp_path: Path, text: str, env: dict[str, str], pattern: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern):
        load_config(path, environ={"HASHGUARD_TELEGRAM_TOKEN": "x", **env})


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})


def test_operator_list_files_must_make_distinct_banks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(
            None,
            environ={"HASHGUARD_BANKS_FILES": "a/ncii.txt, b/NCII.csv"},
            require_token=False,
        )
    assert "'a/ncii.txt' and 'b/NCII.csv'" in str(raised.value)
    assert "operator:ncii" in str(raised.value)
    config = load_config(
        None, environ={"HASHGUARD_BANKS_FILES": "a/one.txt,b/two.csv"}, require_token=False
    )
    assert config.banks.files == ("a/one.txt", "b/two.csv")


def test_webhook_defaults_listen_locally_and_set_the_webhook() -> None:
    config = load_config(None, environ={"HASHGUARD_TELEGRAM_TOKEN": "x"})
    assert config.webhook == WebhookConfig(
        listen="127.0.0.1",
        port=8443,
        url_path="telegram",
        public_url="",
        secret_token="",
        set_webhook=True,
    )


def test_every_webhook_key_is_overridden_from_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, '[webhook]\nport = 9000\nsecret_token = "from_file_0123456789"\n')
    config = load_config(
        path,
        environ={
            "HASHGUARD_TELEGRAM_TOKEN": "x",
            "HASHGUARD_WEBHOOK_LISTEN": "0.0.0.0",
            "HASHGUARD_WEBHOOK_PORT": "8080",
            "HASHGUARD_WEBHOOK_URL_PATH": "hooks/tg-1",
            "HASHGUARD_WEBHOOK_PUBLIC_URL": "https://bot.example.org/hooks/tg-1",
            "HASHGUARD_WEBHOOK_SECRET_TOKEN": "A-z_09" * 40,
            "HASHGUARD_WEBHOOK_SET_WEBHOOK": "off",
        },
    )
    assert config.webhook == WebhookConfig(
        listen="0.0.0.0",
        port=8080,
        url_path="hooks/tg-1",
        public_url="https://bot.example.org/hooks/tg-1",
        secret_token="A-z_09" * 40,
        set_webhook=False,
    )


@pytest.mark.parametrize(
    ("text", "env", "pattern"),
    [
        ("[webhook]\nport = 0\n", {}, r"webhook\.port = 0 is not valid; expected .*1 to 65535"),
        (
            "",
            {"HASHGUARD_WEBHOOK_PORT": "https"},
            r"HASHGUARD_WEBHOOK_PORT \(for webhook\.port\) = 'https'.*integer",
        ),
        (
            '[webhook]\nsecret_token = "pass word"\n',
            {},
            # A secret is never echoed, even a wrong one.
            r"webhook\.secret_token = \(hidden\) is not valid; expected empty or 16 to 256 "
            r"characters of A-Z, a-z, 0-9, _ and -",
        ),
        (
            "",
            {"HASHGUARD_WEBHOOK_SECRET_TOKEN": "a" * 257},
            r"HASHGUARD_WEBHOOK_SECRET_TOKEN \(for webhook\.secret_token\) = \(hidden\).*"
            r"16 to 256 characters",
        ),
        (
            # Guessable: refused, and neither echoed nor its length given away.
            "",
            {"HASHGUARD_WEBHOOK_SECRET_TOKEN": "Short_secret-15"},
            r"^HASHGUARD_WEBHOOK_SECRET_TOKEN \(for webhook\.secret_token\) = \(hidden\) is "
            r"not valid; expected empty or 16 to 256 characters of A-Z, a-z, 0-9, _ and - "
            r"\(at least 16 so it cannot be guessed[^)]*\)$",
        ),
        (
            '[webhook]\npublic_url = "http://bot.example.org/telegram"\n',
            {},
            r"webhook\.public_url = 'http://bot\.example\.org/telegram' is not valid; expected "
            r"empty or a URL starting with https://",
        ),
        (
            '[webhook]\nurl_path = "tele gram"\n',
            {},
            r"webhook\.url_path = 'tele gram' is not valid; expected a path of A-Z, a-z, 0-9, "
            r"_ and - segments separated by /",
        ),
        ('[webhook]\nurl_path = "a//b"\n', {}, r"webhook\.url_path = 'a//b'"),
        ('[webhook]\nlisten = " "\n', {}, r"webhook\.listen = ' ' .*an IP address or host"),
        (
            "",
            {"HASHGUARD_WEBHOOK_SET_WEBHOOK": "maybe"},
            r"HASHGUARD_WEBHOOK_SET_WEBHOOK \(for webhook\.set_webhook\) = 'maybe'.*"
            r"true or false",
        ),
        (
            "[webhook]\nsecret = 1\n",
            {},
            r"unknown config key webhook\.secret; expected one of: .*webhook\.secret_token",
        ),
    ],
)
def test_bad_webhook_values_name_key_value_and_accepted(
    tmp_path: Path, text: str, env: dict[str, str], pattern: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=pattern):
        load_config(path, environ={"HASHGUARD_TELEGRAM_TOKEN": "x", **env})


def test_url_path_may_start_with_a_slash() -> None:
    config = load_config(
        None, environ={"HASHGUARD_WEBHOOK_URL_PATH": "/telegram"}, require_token=False
    )
    assert config.webhook.url_path == "/telegram"


def test_webhook_mode_needs_a_secret_and_a_public_url_unless_set_elsewhere() -> None:
    def webhook(**env: str) -> WebhookConfig:
        environ = {f"HASHGUARD_WEBHOOK_{k.upper()}": v for k, v in env.items()}
        return load_config(None, environ=environ, require_token=False).webhook

    # Polling ignores the section: the defaults load without a secret.
    with pytest.raises(ConfigError) as raised:
        check_webhook_mode(webhook(public_url="https://bot.example.org/telegram"))
    assert str(raised.value).startswith("webhook.secret_token is missing;")
    assert "HASHGUARD_WEBHOOK_SECRET_TOKEN" in str(raised.value)
    assert "A-Z, a-z, 0-9, _ and -" in str(raised.value)

    with pytest.raises(ConfigError) as raised:
        check_webhook_mode(webhook(secret_token="s3cret_0123456789"))
    assert str(raised.value).startswith("webhook.public_url is missing;")
    assert "webhook.set_webhook = false" in str(raised.value)

    check_webhook_mode(webhook(secret_token="s3cret_0123456789", set_webhook="false"))
    check_webhook_mode(
        webhook(secret_token="s3cret_0123456789", public_url="https://bot.example.org/telegram")
    )
