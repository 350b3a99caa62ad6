"""Config loading: defaults, the example file, environment overrides and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import TELEGRAM_API_URL, ConfigError, load_config, schema_keys

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
