"""The API against its own OpenAPI document, with requests drawn from it by schemathesis and Hypothesis.

The application is the real one, serving a small reported org in-process (ASGI, no socket). Every
operation the document lists is called with requests drawn from its parameters' schemas — valid
ones and, where a parameter can be given a wrong value, invalid ones — with the real study's hash
and version, and KPIs of the catalogue, mixed into the draws so that the answers with data are
exercised as well as the refusals. With an analyst's token (an admin's for the admin area's
operations on users, the audit log and ingests, which refuse an analyst with the documented 403) no answer
may be a server error (5xx), and every answer must match the document (its schema and content type
for that status). Without a token, or with a wrong one, every operation but ``/api/v1/health`` must
answer 401 whatever the request. The draws are bounded (``EXAMPLES`` per operation and kind) so the file runs in well
under a minute.

Two divergences the draws found are written as failing tests, marked as expected to fail until the
routes are fixed: a version beyond SQLite's 64-bit integers is a server error, and the KPI route's
own refusals (an unknown KPI, an empty period) answer 422 with a ``detail`` the document does not
allow for 422 (a string where FastAPI's validation errors are a list).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import polars as pl
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.web.conftest import ReportedOrg
from tests.web.state import CHEAP
from training_roi.measure import CATALOGUE
from training_roi.web import ingest_records
from training_roi.web.app import create_app
from training_roi.web.auth import add_user
from training_roi.web.store import Store

EXAMPLES = 12
"""Requests drawn per operation and kind (valid, invalid): enough to reach every filter, few enough to stay fast."""

PUBLIC = "/api/v1/health"
KPIS = "/api/v1/kpis"
ADMIN = "schema-admin-7"
"""The admin whose token draws the admin area's requests: a name no draw comes upon, so none removes or demotes it."""
KEPT, REMOVED = "dora", "erin"


def _archive(members: dict[str, bytes]) -> bytes:
    """A zip archive of ``members``, every one in a folder the ingest never reads (so no draw loads data)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(f"notes/{name}", content)
    return buffer.getvalue()


# The archives an admin's drawn ingests send: bytes that are no archive, or an archive of nothing the ingest reads.
_ARCHIVES = st.one_of(st.binary(max_size=512), st.dictionaries(
    st.text(alphabet="abcdefghij./_-", min_size=1, max_size=12), st.binary(max_size=64), max_size=3).map(_archive))
for _zip in ("application/zip", "application/x-zip-compressed"):
    schemathesis.openapi.media_type(_zip, _ARCHIVES)


@pytest.fixture(scope="module")
def served(reported_org: ReportedOrg, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The application over the reported org, its OpenAPI operations, an analyst's token, the study's hash."""
    store = Store(tmp_path_factory.mktemp("schema-state") / "state.sqlite", hasher=CHEAP)
    _, token = add_user(store, "ana", "analyst")
    _, admin = add_user(store, ADMIN, "admin")
    for name in (KEPT, REMOVED):  # users the admin's drawn requests may read, change and remove
        add_user(store, name, "viewer")
    app = create_app(reported_org.db, store, results=[reported_org.out], snapshot_every=0.0,
                     snapshot_in_background=False)
    document = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    # An ingest the admin's drawn requests may read (sending a real archive is tests/web/test_ingests.py's).
    sent = ingest_records.queue(store, "export.zip", 1_024, ADMIN)
    ingest_records.update(store, sent.id, status="failed", error="the server stopped before the ingest finished")
    study_hash = reported_org.result["study"]["hash"]
    # Real values for the drill-down's path (a team, one of its reps, one of the rep's attributed deals).
    client = TestClient(app)  # not as a context: its end would stop the application's runner of studies
    auth = {"Authorization": f"Bearer {token}"}
    team = client.get(f"/api/v1/studies/{study_hash}/drill", headers=auth).json()["teams"][0]["team"]
    unit = client.get(f"/api/v1/studies/{study_hash}/drill/teams/{team}", headers=auth).json()["reps"][0]["key"]
    touches = pl.read_csv(reported_org.out / "attribution.csv", infer_schema_length=None)
    deal = touches["opportunity_id"][0]
    return {"app": app, "document": document, "operations": [r.ok() for r in document.get_all_operations()],
            "token": token, "admin": admin, "hash": study_hash,
            "real": {"study_hash": study_hash, "version": 1, "team": team, "unit": unit, "opportunity": deal,
                     "ingest_id": sent.id}}


def _admins(operation: Any) -> bool:
    """Whether the operation is the admin area's (users, the audit log, ingests): drawn with an admin's token."""
    return operation.path.startswith(("/api/v1/users", "/api/v1/audit", "/api/v1/ingests"))


def _known(operation: Any, real: dict[str, Any]) -> dict[str, Any]:
    """Real values for the operation's path: a user to remove for DELETE, another to read and change elsewhere."""
    return {**real, "name": REMOVED if operation.method.upper() == "DELETE" else KEPT}


def _spoilable(operation: Any) -> list[str]:
    """The parameters of ``operation`` an invalid request can spoil: not the token, not a free string in the path."""
    return [p["name"] for p in operation.definition.raw.get("parameters", [])
            if p["name"].lower() != "authorization" and p["schema"].get("type") != "string"]


def _cases(operation: Any, mode: GenerationMode, headers: dict[str, str], known: dict[str, Any]) -> Any:
    """Requests for ``operation`` drawn from its schemas; some name the real study (its team, rep, deal) or a KPI."""
    def drawn(**fixed: Any) -> Any:
        return operation.as_strategy(generation_mode=mode, headers=headers, **fixed)

    choices = [drawn()]
    real = {k: v for k, v in known.items() if f"{{{k}}}" in operation.path}
    if real:
        choices.append(drawn(path_parameters=real))
    if operation.path == KPIS and mode is GenerationMode.POSITIVE:
        choices.append(st.lists(st.sampled_from(list(CATALOGUE)), min_size=1, max_size=3)
                       .flatmap(lambda kpis: drawn(query={"kpi": kpis})))
    return st.one_of(choices)


def test_no_request_is_a_server_error_and_every_answer_matches_the_document(served: dict[str, Any]) -> None:
    operations = served["operations"]
    assert {f"GET {p}" for p in (PUBLIC, "/api/v1/programs", KPIS, "/api/v1/quality", "/api/v1/studies/{study_hash}",
                                 "/api/v1/studies/{study_hash}/versions/{version}")} <= {
        f"{op.method.upper()} {op.path}" for op in operations}
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        headers = {"authorization": f"Bearer {served['admin' if _admins(operation) else 'token']}"}
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if _spoilable(operation) else [])
        for mode in modes:

            @given(case=_cases(operation, mode, headers, _known(operation, served["real"])))
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
            def answers(case: Any) -> None:
                response = case.call_and_validate(checks=[not_a_server_error, content_type_conformance,
                                                          response_schema_conformance])
                statuses.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)

            answers()
    # The draws reached the answers with data, not only the refusals.
    # (Running a study is left to tests/web/test_runs.py, sending an archive to tests/web/test_ingests.py:
    # a drawn body is never a valid study or zip archive, and a valid one would start a run per draw.)
    missed = {k: v for k, v in statuses.items() if not v & {200, 201, 202}
              and k not in ("POST /api/v1/studies", "POST /api/v1/ingests")}
    assert not missed, missed
    assert {f"{m} /api/v1/users{p}" for m, p in (("GET", ""), ("POST", ""), ("GET", "/{name}"), ("PATCH", "/{name}"),
                                                 ("DELETE", "/{name}"))} | {
        "GET /api/v1/audit", "GET /api/v1/ingests", "GET /api/v1/ingests/{ingest_id}"} <= set(statuses)
    assert 422 in statuses["POST /api/v1/ingests"]  # a drawn body is refused with the reason, never a server error
    assert 404 in statuses["GET /api/v1/studies/{study_hash}"] and 422 in statuses[f"GET {KPIS}"]


def _refused(operation: Any, headers: dict[str, str], known: dict[str, Any]) -> None:
    """Requests drawn for ``operation`` with ``headers`` (no token, or a wrong one) answer 401, health aside."""

    @given(case=_cases(operation, GenerationMode.POSITIVE, headers, known))
    @settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    def refused(case: Any) -> None:
        if not headers:  # no token at all, not even one the draw made up
            case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        response = case.call()
        if case.path == PUBLIC:
            assert response.status_code == 200
        else:
            assert response.status_code == 401, (case.method, case.formatted_path, response.status_code)
            assert response.headers["www-authenticate"] == ["Bearer"]

    refused()


def test_every_data_operation_refuses_a_request_without_a_valid_token(served: dict[str, Any]) -> None:
    data = [op for op in served["operations"] if op.path != PUBLIC]
    assert len(data) >= 6
    for operation in served["operations"]:
        for headers in ({}, {"authorization": "Bearer not-a-token"}, {"authorization": "not-even-bearer"}):
            _refused(operation, headers, _known(operation, served["real"]))


def test_the_admin_areas_operations_refuse_an_analyst_as_the_document_says(served: dict[str, Any]) -> None:
    admins = [op for op in served["operations"] if _admins(op)]
    assert len(admins) == 9
    headers = {"authorization": f"Bearer {served['token']}"}
    for operation in admins:

        @given(case=_cases(operation, GenerationMode.POSITIVE, headers, _known(operation, served["real"])))
        @settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
        def refused(case: Any) -> None:
            response = case.call_and_validate(checks=[response_schema_conformance])
            assert response.status_code == 403, (case.method, case.formatted_path, response.status_code)

        refused()


def test_a_version_beyond_sqlites_integers_is_refused_not_a_server_error(served: dict[str, Any]) -> None:
    with TestClient(served["app"], raise_server_exceptions=False) as client:
        response = client.get(f"/api/v1/studies/{served['hash']}/versions/{2**63}",
                              headers={"Authorization": f"Bearer {served['token']}"})
    assert response.status_code in (404, 422), response.status_code


@pytest.mark.parametrize("query", [{"kpi": ["no_such_kpi"]}, {"since": "2025-03-01", "until": "2025-02-01"}],
                         ids=["unknown-kpi", "empty-period"])
def test_the_kpi_routes_own_refusals_match_the_documented_422(served: dict[str, Any], query: dict[str, Any]) -> None:
    operation = served["document"][KPIS]["GET"]
    case = operation.Case(query=query, headers={"authorization": f"Bearer {served['token']}"})
    response = case.call()
    assert response.status_code == 422
    case.validate_response(response, checks=[response_schema_conformance])
