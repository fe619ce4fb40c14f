"""Live sync: pulling sources incrementally into the warehouse (``training-roi sync``).

Where ``ingest`` reads a folder of exports a user made by hand, ``sync`` asks the systems
themselves for what changed since the last time, and puts it through the same validation,
quarantine and merge by key. The modules:

- :mod:`.config`: ``sync.yaml``, its sources and where their secrets are kept;
- :mod:`.secrets`: secrets read from the environment or a keyring, never shown;
- :mod:`.http`: JSON over HTTP with retries, backoff and ``Retry-After``;
- :mod:`.source`: what the runner needs of a source;
- :mod:`.lrs`: an LRS over the xAPI Statement API;
- :mod:`.salesforce`: a Salesforce org over the REST API, object by object;
- :mod:`.salesforce_bulk`: Bulk API 2.0 query jobs for its large objects;
- :mod:`.hubspot`: a HubSpot account over the CRM API, object by object;
- :mod:`.staging`: pages on disk until they are loaded, and the cursor to the next one;
- :mod:`.state`: the watermark and run log in the warehouse;
- :mod:`.runner`: one sync of every source;
- :mod:`.lock`: one sync of a warehouse at a time;
- :mod:`.push`: training facts written back into a CRM (``training-roi push``), and its audit;
- :mod:`.salesforce_push`: Salesforce as the CRM a push writes to;
- :mod:`.hubspot_push`: HubSpot as the CRM a push writes to (contacts).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from training_roi.sync.config import (
    DEFAULT_CONFIG,
    HubSpotConfig,
    LrsConfig,
    SalesforceConfig,
    SyncConfig,
    load_config,
)
from training_roi.sync.hubspot import open_hubspot
from training_roi.sync.hubspot_push import HubSpotTarget
from training_roi.sync.lock import SyncLock
from training_roi.sync.lrs import LrsSource
from training_roi.sync.push import PushConfig, PushTarget
from training_roi.sync.runner import SourceSync, SyncInfo, sync
from training_roi.sync.salesforce import SalesforceObject, open_salesforce
from training_roi.sync.salesforce_push import SalesforceTarget
from training_roi.sync.source import Page, Source

__all__ = [
    "DEFAULT_CONFIG",
    "PUSH_TARGETS",
    "LrsSource",
    "Page",
    "SalesforceObject",
    "Source",
    "SourceSync",
    "SyncConfig",
    "SyncInfo",
    "SyncLock",
    "load_config",
    "open_push_target",
    "open_sources",
    "sync",
]


def open_sources(config: SyncConfig, **options: object) -> list[Source]:
    """The configured sources, with their secrets read (an unset variable fails here, before any request)."""
    sources: list[Source] = []
    for c in config.sources:
        if isinstance(c, LrsConfig):
            sources.append(LrsSource(c, str(config.path), **options))
        elif isinstance(c, HubSpotConfig):
            sources.extend(open_hubspot(c, str(config.path), **options))
        else:
            sources.extend(open_salesforce(c, str(config.path), **options))
    return sources


def _salesforce_target(source: Any, push: PushConfig, config_path: str, **options: Any) -> PushTarget:
    assert isinstance(source, SalesforceConfig)
    return SalesforceTarget(source, push, config_path, **options)


def _hubspot_target(source: Any, push: PushConfig, config_path: str, **options: Any) -> PushTarget:
    assert isinstance(source, HubSpotConfig)
    return HubSpotTarget(source, push, config_path, **options)


PUSH_TARGETS: dict[str, Callable[..., PushTarget]] = {"salesforce": _salesforce_target, "hubspot": _hubspot_target}
"""Source kind → how to open it as a push target (source config, push config, config path, options)."""


def open_push_target(config: SyncConfig, push: PushConfig, **options: Any) -> PushTarget:
    """The source ``push.target`` names, opened for writing (its secrets read here, before any request)."""
    source = next(s for s in config.sources if s.name == push.target)
    return PUSH_TARGETS[source.kind](source, push, str(config.path), **options)
