"""The sync's configuration and command line: mistakes are one clear message, secrets never leave their place."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.sync.conftest import run_sync
from training_roi.cli import app
from training_roi.cli.sync import parse_every
from training_roi.errors import SyncConfigError
from training_roi.sync.config import load_config
from training_roi.sync.http import retry_after

runner = CliRunner()


def _write(path: Path, source: dict[str, object]) -> Path:
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    return path


def _lrs(**auth: object) -> dict[str, object]:
    return {"name": "lrs-main", "kind": "lrs", "endpoint": "https://lrs.example.com/xAPI/",
            "auth": {"method": "basic", "username": "roi", **auth}}


def test_a_password_written_in_the_file_is_refused_without_being_echoed(tmp_path: Path):
    config = _write(tmp_path / "sync.yaml", _lrs(password="hunter2-correct-horse"))
    done = runner.invoke(app, ["sync", "--config", str(config), "--db", str(tmp_path / "roi.duckdb")])
    assert done.exit_code == 2
    assert "sources[0].auth.password" in done.output and str(config) in done.output
    assert "password_env" in done.output
    assert "hunter2-correct-horse" not in done.output
    assert "Traceback" not in done.output
    assert not (tmp_path / "roi.duckdb").exists()


def test_a_secret_put_where_a_variable_name_goes_is_refused_without_being_echoed(tmp_path: Path):
    config = _write(tmp_path / "sync.yaml", _lrs(password_env="s3cr3t-Value!"))
    with pytest.raises(SyncConfigError) as caught:
        load_config(config)
    assert "sources[0].auth.password_env" in str(caught.value)
    assert "s3cr3t-Value!" not in str(caught.value)


def test_credentials_in_the_endpoint_are_refused(tmp_path: Path):
    source = {**_lrs(password_env="LRS_PASSWORD"), "endpoint": "https://roi:pw-in-url@lrs.example.com/xAPI/"}
    with pytest.raises(SyncConfigError) as caught:
        load_config(_write(tmp_path / "sync.yaml", source))
    assert "sources[0].endpoint" in str(caught.value) and "pw-in-url" not in str(caught.value)


@pytest.mark.parametrize(("change", "field"), [
    ({"kind": "pipedrive"}, "sources[0].kind"),
    ({"version": "0.95"}, "sources[0].version"),
    ({"page_size": 0}, "sources[0].page_size"),
    ({"pagesize": 10}, "sources[0].pagesize"),
    ({"name": "LRS main"}, "sources[0].name"),
    ({"auth": {"method": "digest"}}, "sources[0].auth.method"),
    ({"auth": {"method": "basic", "username": "roi"}}, "sources[0].auth.password"),
])
def test_each_mistake_names_its_field(tmp_path: Path, change: dict[str, object], field: str):
    source = {**_lrs(password_env="LRS_PASSWORD"), **change}
    with pytest.raises(SyncConfigError) as caught:
        load_config(_write(tmp_path / "sync.yaml", source))
    assert f"{tmp_path / 'sync.yaml'}: {field}:" in str(caught.value)


def test_a_missing_or_broken_file_is_one_message(tmp_path: Path):
    missing = runner.invoke(app, ["sync", "--config", str(tmp_path / "none.yaml"), "--db", str(tmp_path / "w.duckdb")])
    assert missing.exit_code == 2 and "no sync configuration at" in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("sources: [\n  - name: x\n", encoding="utf-8")
    done = runner.invoke(app, ["sync", "--config", str(broken), "--db", str(tmp_path / "w.duckdb")])
    assert done.exit_code == 2 and "not valid YAML at line" in done.output


def test_an_unset_variable_is_named_before_any_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ROI_TEST_UNSET_PASSWORD", raising=False)
    config = _write(tmp_path / "sync.yaml", _lrs(password_env="ROI_TEST_UNSET_PASSWORD"))
    done = runner.invoke(app, ["sync", "--config", str(config), "--db", str(tmp_path / "roi.duckdb")])
    assert done.exit_code == 2
    assert "ROI_TEST_UNSET_PASSWORD, which is not set" in done.output


def test_an_unreachable_lrs_fails_its_run_naming_the_url_without_credentials(tmp_path: Path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = {**_lrs(password_env="LRS_PASSWORD"), "endpoint": f"http://127.0.0.1:{port}/xAPI/", "retries": 1,
              "backoff": 0.01}
    config = _write(tmp_path / "sync.yaml", source)
    done = run_sync("--config", str(config), "--db", str(tmp_path / "roi.duckdb"),
                    env={"LRS_PASSWORD": "pw-never-shown-123"})
    assert done.returncode == 1
    assert f"http://127.0.0.1:{port}/xAPI/statements: cannot be reached" in done.stderr
    assert "after 2 attempts" in done.stderr
    assert "pw-never-shown-123" not in done.stdout + done.stderr and "Traceback" not in done.stderr


def test_retry_after_is_read_as_seconds_or_as_a_date():
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after("7", now) == 7.0
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now) == 90.0
    assert retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now) == 0.0
    assert retry_after("soon", now) is None
    assert retry_after(None, now) is None


def test_every_takes_an_interval_with_its_unit():
    assert parse_every("24h") == 86400
    assert parse_every("30m") == 1800
    assert parse_every("90s") == 90
    assert parse_every("1.5d") == 129600
    for wrong in ("24", "0h", "-1h", "daily"):
        done = runner.invoke(app, ["sync", "--every", wrong])
        assert done.exit_code == 2 and f"--every {wrong}" in done.output
