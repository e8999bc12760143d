"""The detectors, in the order they run.  The registry is explicit: no package walking.

``REGISTRY`` is a tuple with one :class:`Entry` per detector: its name, which is also its
``[detectors.<name>]`` section, and where its class lives, imported when first needed so
that a detector with heavy imports costs nothing while it is off.  Each class builds itself
from the configuration (``Detector.build``).  A new detector is one module and one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from seawall.detectors.base import Context, Detector, Hit, Parts

if TYPE_CHECKING:
    from seawall.campaigns.client import TrackerClient
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.policy.scores import Scores
    from seawall.store import Store

__all__ = ["REGISTRY", "Context", "Detector", "Entry", "Hit", "Parts", "build_detectors"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One detector: ``name`` is its config section, ``target`` is ``"module:Class"``."""

    name: str
    target: str

    def load(self) -> type[Detector]:
        """The detector's class (imports its module)."""
        module, _, attr = self.target.partition(":")
        cls: type[Detector] = getattr(importlib.import_module(module), attr)
        return cls

    def enabled(self, config: Config) -> bool:
        return bool(getattr(config.detectors, self.name).enabled)


REGISTRY: tuple[Entry, ...] = (
    Entry("classifier", "seawall.detectors.classifier:ClassifierDetector"),
    Entry("headers", "seawall.detectors.headers:HeadersDetector"),
    Entry("received", "seawall.detectors.received:ReceivedDetector"),
    Entry("urls", "seawall.detectors.urls:UrlsDetector"),
    Entry("phishing", "seawall.detectors.phishing:PhishingDetector"),
    Entry("markup", "seawall.detectors.markup:MarkupDetector"),
    Entry("mimeshape", "seawall.detectors.mimeshape:MimeShapeDetector"),
    Entry("attachments", "seawall.detectors.attachments:AttachmentsDetector"),
    Entry("language", "seawall.detectors.language:LanguageDetector"),
    Entry("campaigns", "seawall.detectors.campaign:CampaignDetector"),
    Entry("dnsbl", "seawall.detectors.dnsbl:DnsblDetector"),
    Entry("auth", "seawall.detectors.auth:AuthDetector"),
    Entry("clamav", "seawall.detectors.clamav:ClamavDetector"),
    Entry("reputation", "seawall.detectors.reputation:ReputationDetector"),
)


def build_detectors(
    config: Config,
    classifier: Classifier | None,
    *,
    scores: Scores | None = None,
    tracker: TrackerClient | None = None,
    store: Store | None = None,
) -> tuple[Detector, ...]:
    """The enabled detectors for ``config``, in ``REGISTRY`` order; the classifier is opened
    by the caller.

    Without a ``tracker``, campaigns are tracked in this process.  ``scores`` gives the
    threshold at which a message's content counts as spam for its campaign.
    """
    parts = Parts(config, classifier, scores, tracker, store)
    built = (entry.load().build(parts) for entry in REGISTRY if entry.enabled(config))
    return tuple(d for d in built if d is not None)
