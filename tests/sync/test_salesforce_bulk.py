"""Syncing Salesforce objects through Bulk API 2.0 query jobs: the same warehouse as the REST path and a file ingest."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.sync import test_salesforce_sync as rest
from tests.sync.salesforce_server import Org
from tests.sync.test_salesforce_sync import count, ingested, kill_when_held, run, sync_cli, tables, write_config
from training_roi.errors import SyncConfigError
from training_roi.sync import load_config, open_sources, sync
from training_roi.warehouse.connection import connect

# The REST tests' org (seeded from the simulated export of conftest) and secrets, as fixtures of this module too.
org, _secrets = rest.org, rest._secrets

EVERY = ["User", "Account", "Contact", "Opportunity", "OpportunityHistory", "Lead", "Task", "Event", "Case",
         "Campaign", "CampaignMember"]


def bulk_config(path: Path, org: Org, **settings: Any) -> Path:
    """A configuration reading every object (or those given) through bulk jobs of 100 records a set."""
    objects = settings.pop("objects", EVERY)
    return write_config(path, org, objects=objects, **{"bulk_objects": objects, "bulk_page_size": 100,
                                                       "bulk_poll": 0, **settings})


def _newest(rows: list[dict[str, str]]) -> dict[str, str]:
    return max(rows, key=lambda r: (r["SystemModstamp"], r["Id"]))


def test_bulk_and_rest_give_the_warehouse_a_file_ingest_gives(org: Org, tmp_path: Path):
    for obj in ("Lead", "Opportunity"):  # records in the recycle bin reach both paths through queryAll
        for row in list(org.tables[obj].values())[3:5]:
            row["IsDeleted"] = "true"
    rest, bulk = tmp_path / "rest.duckdb", tmp_path / "bulk.duckdb"
    assert run(write_config(tmp_path / "rest.yaml", org), rest).ok
    asked = len(org.log)
    info = run(bulk_config(tmp_path / "bulk.yaml", org), bulk)
    assert info.ok, [s.error for s in info.sources]
    expected = ingested(org, tmp_path / "export")
    assert tables(bulk) == tables(rest) == expected

    # Figures computed from the org's own rows.
    opps = list(org.tables["Opportunity"].values())
    amounts = sum(Decimal(r["Amount"]) for r in opps if r["Amount"])
    got = count(bulk, "SELECT count(*) AS n, sum(amount) AS total, count(*) FILTER (WHERE is_deleted) AS gone "
                      "FROM crm_opportunity")[0]
    assert got["n"] == len(opps) and got["gone"] == 2
    assert Decimal(str(got["total"])).quantize(Decimal("0.01")) == amounts
    history = count(bulk, "SELECT count(*) AS n FROM crm_opportunity_history")[0]["n"]
    assert history == len(org.tables["OpportunityHistory"])
    # One job per object, each read in sets of 100 and deleted once read; no REST query for records.
    jobs = org.bulk
    assert len(jobs.created) == len(EVERY) and sorted(jobs.deleted) == sorted(jobs.created) and not jobs.jobs
    sets = [n for job, _, n in jobs.results if job == jobs.created[EVERY.index("OpportunityHistory")]]
    size = len(org.tables["OpportunityHistory"])
    assert sets == [100] * (size // 100) + [size % 100]
    assert not any(kind == "query" for kind, _ in org.log[asked:])
    assert all(" ORDER BY " not in q for kind, q in org.log if kind == "bulk")
    marks = count(bulk, "SELECT source, watermark FROM sync_state ORDER BY source")
    newest = _newest(opps)["SystemModstamp"].replace("Z", "")
    assert {m["source"]: m["watermark"].strftime("%Y-%m-%dT%H:%M:%S") for m in marks}["sf.Opportunity"] == newest



def test_a_job_is_deleted_only_after_its_last_set_is_loaded(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    sources = open_sources(load_config(bulk_config(tmp_path / "sync.yaml", org, objects=["Account"])),
                           sleep=lambda _s: None)
    con = connect(str(db))
    try:
        info = sync(con, sources, tmp_path / "staging")
        assert info.ok
        # Loaded, watermark moved, the job still there: a sync killed up to this point reads on from it.
        (job,) = org.bulk.created
        assert job in org.bulk.jobs and not org.bulk.deleted
        assert con.sql("SELECT count(*) AS n FROM crm_account").to_pyarrow().to_pylist()[0]["n"] == len(
            org.tables["Account"])
    finally:
        for source in sources:
            source.close()
        con.disconnect()
    assert org.bulk.deleted == [job] and job not in org.bulk.jobs


def test_changes_and_deletions_arrive_in_the_next_bulk_sync_and_a_third_changes_nothing(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = bulk_config(tmp_path / "sync.yaml", org)
    assert run(config, db).ok
    opp = _newest(list(org.tables["Opportunity"].values()))["Id"]  # at the watermark: skipped, then changed
    contact = next(r for r, row in org.tables["Contact"].items() if row["IsDeleted"] == "false")
    org.touch("Opportunity", opp, StageName="Closed Won", IsClosed="true", IsWon="true", Amount="99999.50")
    org.delete("Contact", contact)
    org.touch("Account", "001Dn0000NEWACCT1", Name="New Account", IsDeleted="false",
              CreatedDate="2025-06-02T08:00:00.000Z")
    before = len(org.bulk.created)
    info = run(config, db)
    assert info.ok
    assert {s.source: s.statements for s in info.sources if s.statements} == {
        "sf.Opportunity": 1, "sf.Contact": 1, "sf.Account": 1}
    asked = [q for kind, q in org.log if kind == "bulk"][before:]
    assert all(("WHERE SystemModstamp > " in q) == bool(org.tables[q.split(" FROM ")[1].split()[0]]) for q in asked)
    expected = ingested(org, tmp_path / "export")
    assert tables(db) == expected
    assert count(db, f"SELECT stage_name, amount FROM crm_opportunity WHERE opportunity_id = '{opp}'") == [
        {"stage_name": "Closed Won", "amount": Decimal("99999.50")}]
    assert count(db, f"SELECT is_deleted FROM crm_contact WHERE contact_id = '{contact}'") == [{"is_deleted": True}]

    again = run(config, db)
    assert again.ok and sum(s.statements for s in again.sources) == 0
    assert tables(db) == expected


def test_the_size_switch_chooses_bulk_only_above_the_threshold(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    threshold = 100
    config = write_config(tmp_path / "sync.yaml", org, bulk_above=threshold, bulk_page_size=100, bulk_poll=0)
    assert run(config, db).ok
    large = sorted(o for o, t in org.tables.items() if len(t) > threshold)
    assert large == ["Contact", "Opportunity", "OpportunityHistory", "Task"]
    bulked = sorted(q.split(" FROM ")[1].split()[0] for kind, q in org.log if kind == "bulk")
    assert bulked == large
    counted = [q for q in org.queries() if q.startswith("SELECT COUNT() FROM ")]
    assert len(counted) == len(org.tables)
    assert tables(db) == ingested(org, tmp_path / "export")
    # The next sync has one changed opportunity to read: counted, it goes over the REST API.
    org.touch("Opportunity", next(iter(org.tables["Opportunity"])), StageName="Negotiation")
    jobs = len(org.bulk.created)
    info = run(config, db)
    assert info.ok and {s.source: s.statements for s in info.sources if s.statements} == {"sf.Opportunity": 1}
    assert len(org.bulk.created) == jobs
    assert any(" FROM Opportunity WHERE SystemModstamp > " in q and q.endswith("ORDER BY SystemModstamp, Id")
               for q in org.queries())
    assert tables(db) == ingested(org, tmp_path / "export2")


def test_faults_in_a_bulk_chain_are_retried_and_the_result_is_the_same(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = bulk_config(tmp_path / "sync.yaml", org, objects=["Opportunity", "OpportunityHistory"], retries=6)
    org.token_life = 3  # every token expires after three requests
    # The job's creation, its polls and its sets meet a 429 storm, a 503, and sets cut short.
    org.faults = [(429, {"Retry-After": "1"})] * 3 + [None, (503, {"Retry-After": "0"}), None, None, "truncate",
                                                     None, "truncate"]
    info = run(config, db)
    assert info.ok, [s.error for s in info.sources]
    assert not org.faults and org.token_requests >= 4
    expected, got = ingested(org, tmp_path / "export"), tables(db)
    assert all(got[t] == expected[t] for t in ("crm_opportunity", "crm_opportunity_history"))


def test_a_failed_job_fails_the_sync_with_its_message_and_a_non_zero_exit(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = bulk_config(tmp_path / "sync.yaml", org, objects=["Account", "Opportunity"],
                         bulk_objects=["Opportunity"])
    org.bulk.fail = "InvalidBatch : Failed to process query: too many records to chunk"
    proc = sync_cli(config, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err
    assert "ended Failed: InvalidBatch : Failed to process query" in " ".join((out + err).split())
    assert "Traceback" not in out + err
    # Account went on over the REST API; Opportunity loaded nothing and keeps no watermark.
    assert count(db, "SELECT count(*) AS n FROM crm_account")[0]["n"] == len(org.tables["Account"])
    assert count(db, "SELECT count(*) AS n FROM crm_opportunity")[0]["n"] == 0
    assert count(db, "SELECT source FROM sync_state WHERE kind <> 'links'") == [{"source": "sf.Account"}]


def test_a_job_that_does_not_complete_in_time_is_aborted(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    org.bulk.polls = 1_000
    info = run(bulk_config(tmp_path / "sync.yaml", org, objects=["Opportunity"], bulk_poll=1, bulk_timeout=20), db)
    assert not info.ok
    assert "not complete after 20 s (bulk_timeout 20)" in (info.sources[0].error or "")
    (job,) = org.bulk.jobs.values()
    assert job.info["state"] == "Aborted" and job.polls == 5  # waits of 1, 2, 4, 8 and the 5 s left


def test_a_results_set_failing_after_every_retry_fails_the_sync_without_a_traceback(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = bulk_config(tmp_path / "sync.yaml", org, objects=["Opportunity"], retries=1)
    org.faults = [None, None, None, (503, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]
    proc = sync_cli(config, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1 and "Traceback" not in out + err
    assert "/results: answered 503" in " ".join((out + err).split())


@pytest.mark.parametrize("job_gone", [False, True])
def test_killed_mid_results_then_run_again_gives_the_uninterrupted_warehouse(org: Org, tmp_path: Path,
                                                                             job_gone: bool):
    db = tmp_path / "roi.duckdb"
    # A load every 50 records: some of the chain is in the warehouse when it is killed.
    config = bulk_config(tmp_path / "sync.yaml", org, objects=["OpportunityHistory"], load_every=50)
    org.faults = [None, None, None, None, None, ("hold", None)]  # create, two polls, two sets, then held
    kill_when_held(config, db, org)
    loaded = count(db, "SELECT count(*) AS n FROM crm_opportunity_history")[0]["n"]
    assert 0 < loaded < len(org.tables["OpportunityHistory"])
    # The results come in no order of SystemModstamp: the watermark waits for the whole job.
    assert count(db, "SELECT count(*) AS n FROM sync_state WHERE kind <> 'links'")[0]["n"] == 0
    if job_gone:
        org.bulk.jobs.clear()  # expired: the next sync starts a new job from the records loaded
    proc = sync_cli(config, db)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert len(org.bulk.created) == (2 if job_gone else 1)
    expected = ingested(org, tmp_path / "export")
    assert tables(db)["crm_opportunity_history"] == expected["crm_opportunity_history"]
    assert count(db, "SELECT count(*) AS n FROM quarantine")[0]["n"] == 0
    newest = _newest(list(org.tables["OpportunityHistory"].values()))["SystemModstamp"].replace("Z", "")
    stored = count(db, "SELECT watermark FROM sync_state WHERE kind <> 'links'")[0]["watermark"]
    assert stored.strftime("%Y-%m-%dT%H:%M:%S") == newest


@pytest.mark.parametrize(("change", "field"), [
    ({"bulk_objects": ["Invoice__c"]}, "sources[0].bulk_objects"),
    ({"objects": ["Account"], "bulk_objects": ["Opportunity"]}, "sources[0].bulk_objects"),
    ({"bulk_above": -1}, "sources[0].bulk_above"),
    ({"bulk_page_size": 0}, "sources[0].bulk_page_size"),
    ({"bulk_timeout": "long"}, "sources[0].bulk_timeout"),
])
def test_each_mistake_in_the_bulk_settings_names_its_field(tmp_path: Path, change: dict[str, Any], field: str):
    source = {"name": "sf", "kind": "salesforce", "instance_url": "https://example.my.salesforce.com",
              "auth": {"client_id": "3MVG-consumer-key", "refresh_token_env": "SF_REFRESH_TOKEN"}, **change}
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump({"sources": [source]}), encoding="utf-8")
    with pytest.raises(SyncConfigError) as caught:
        load_config(path)
    assert f"{field}:" in str(caught.value)


def test_a_jobs_requests_count_against_the_daily_limit(org: Org, tmp_path: Path):
    db = tmp_path / "roi.duckdb"
    config = bulk_config(tmp_path / "sync.yaml", org, objects=["Opportunity"], limit_share=1)
    sets = -(-len(org.tables["Opportunity"]) // 100)
    polls = org.bulk.polls - 1  # InProgress, then JobComplete
    before = org.used
    assert run(config, db).ok
    assert org.used - before == 1 + 1 + polls + sets + 1  # describe, create, polls, sets, delete
    # With five requests left the job is created, polled and its first set read, then the sync stops.
    org.allowed = org.used + 1 + 1 + polls + 1
    db2 = tmp_path / "again.duckdb"
    info = run(config, db2)
    assert not info.ok and "limit_share 1" in (info.sources[0].error or "")
    assert org.used == org.allowed
    assert count(db2, "SELECT count(*) AS n FROM sync_state WHERE kind <> 'links'")[0]["n"] == 0
