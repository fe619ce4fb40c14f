"""After a sync, learners are linked again only when it loaded a table the links are made from."""

from __future__ import annotations

import json
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


def _sync(tmp_path: Path, org: Org, objects: list[str]) -> dict[str, object]:
    source = {"name": "sf", "kind": "salesforce", "instance_url": org.url, "api_version": "62.0",
              "objects": objects, "clock_skew": 0,
              "auth": {"grant": "refresh_token", "client_id": CLIENT_ID, "client_secret_env": "SF_CLIENT_SECRET",
                       "refresh_token_env": "SF_REFRESH_TOKEN"}}
    config = tmp_path / f"sync-{'-'.join(objects)}.yaml"
    config.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
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
