"""After a sync, learners are linked again only when it loaded a table the links are made from."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.sync.conftest import run_sync
from tests.sync.salesforce_server import Org, serve
from training_roi.linking import LINK_INPUTS
from training_roi.simulate import simulate

CLIENT_ID, SECRET, REFRESH = ("x-" + uuid.uuid4().hex for _ in range(3))


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    simulate(tmp_path / "sim", reps=5, months=6, seed=5)
    o = Org(CLIENT_ID, SECRET, REFRESH)
    o.seed(tmp_path / "sim")
    yield from serve(o)


def _config(tmp_path: Path, org: Org, objects: list[str]) -> Path:
    source = {"name": "sf", "kind": "salesforce", "instance_url": org.url, "api_version": "62.0",
              "objects": objects, "clock_skew": 0,
              "auth": {"grant": "refresh_token", "client_id": CLIENT_ID, "client_secret_env": "SF_CLIENT_SECRET",
                       "refresh_token_env": "SF_REFRESH_TOKEN"}}
    config = tmp_path / f"sync-{'-'.join(objects)}.yaml"
    config.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    return config


def _sync(tmp_path: Path, org: Org, objects: list[str]) -> dict[str, object]:
    config = _config(tmp_path, org, objects)
    done = run_sync("--config", str(config), "--db", str(tmp_path / "roi.duckdb"), "--json",
                    env={"SF_CLIENT_SECRET": SECRET, "SF_REFRESH_TOKEN": REFRESH})
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_sync_of_deals_alone_leaves_the_links_and_one_of_users_makes_them(org: Org, tmp_path: Path):
    deals = _sync(tmp_path, org, ["Opportunity"])
    assert deals["sync"]["sources"][0]["tables"] == ["crm_opportunity"]  # type: ignore[index]
    assert "crm_opportunity" not in LINK_INPUTS and deals["link"] is None
    users = _sync(tmp_path, org, ["User"])
    assert users["sync"]["sources"][0]["tables"] == ["crm_user"]  # type: ignore[index]
    assert users["link"] is not None


def _lms_only(tmp_path: Path, db: Path) -> None:
    """A warehouse holding the simulated export's LMS files alone (no CRM users yet)."""
    from training_roi.ingest.folder import ingest_folder
    from training_roi.warehouse.connection import connect

    folder = tmp_path / f"lms-{db.stem}"
    shutil.copytree(tmp_path / "sim" / "lms", folder / "lms")
    con = connect(str(db))
    try:
        ingest_folder(folder, con)
    finally:
        con.disconnect()


def _links(db: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    from training_roi.warehouse.connection import connect

    con = connect(str(db))
    try:
        return tuple(  # type: ignore[return-value]
            sorted(con.table(name).to_pyarrow().to_pylist(), key=lambda r: json.dumps(r, sort_keys=True, default=str))
            for name in ("learner_identity", "learning_record")
        )
    finally:
        con.disconnect()


def test_a_sync_stopped_before_linking_leaves_the_next_sync_to_link(
        org: Org, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from training_roi.linking import LINK_INPUTS
    from training_roi.sync import load_config, open_sources, sync
    from training_roi.warehouse.connection import connect

    # Uninterrupted: the LMS files, then a sync of the CRM users that links.
    whole = tmp_path / "whole"
    whole.mkdir()
    shutil.copytree(tmp_path / "sim", whole / "sim")
    _lms_only(whole, whole / "roi.duckdb")
    done = _sync(whole, org, ["User"])
    assert done["link"] is not None
    expected = _links(whole / "roi.duckdb")
    assert expected[0] and expected[1]

    # Stopped: the same sync's load, as a stop between load and link leaves it, then the sync again.
    db = tmp_path / "roi.duckdb"
    _lms_only(tmp_path, db)
    config = _config(tmp_path, org, ["User"])
    monkeypatch.setenv("SF_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("SF_REFRESH_TOKEN", REFRESH)
    sources = open_sources(load_config(config))
    con = connect(str(db))
    try:
        stopped = sync(con, sources, tmp_path / "staging-stopped", link_inputs=LINK_INPUTS)
    finally:
        for s in sources:
            s.close()
        con.disconnect()
    assert stopped.sources[0].tables == ["crm_user"]
    assert _links(db)[0] == []

    again = _sync(tmp_path, org, ["User"])
    assert again["sync"]["sources"][0]["loaded"] == 0  # type: ignore[index]
    assert again["link"] is not None
    assert _links(db) == expected
    assert _sync(tmp_path, org, ["User"])["link"] is None  # linked once, not on every sync after
