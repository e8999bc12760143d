"""The detectors, in the order they run.  The registry is explicit: no package walking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall.detectors.base import Context, Detector, Hit

if TYPE_CHECKING:
    from seawall.campaigns.client import TrackerClient
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.policy.scores import Scores
    from seawall.store import Store

__all__ = ["Context", "Detector", "Hit", "build_detectors"]


def build_detectors(
    config: Config,
    classifier: Classifier | None,
    *,
    scores: Scores | None = None,
    tracker: TrackerClient | None = None,
    store: Store | None = None,
) -> tuple[Detector, ...]:
    """The enabled detectors for ``config``; the classifier is opened by the caller.

    Without a ``tracker``, campaigns are tracked in this process.  ``scores`` gives the
    threshold at which a message's content counts as spam for its campaign.
    """
    from seawall.detectors.classifier import ClassifierDetector
    from seawall.detectors.headers import HeadersDetector
    from seawall.detectors.hostnames import Providers
    from seawall.detectors.language import LanguageDetector
    from seawall.detectors.received import ReceivedDetector
    from seawall.detectors.urls import UrlsDetector

    settings = config.detectors
    found: list[Detector] = []
    if settings.classifier.enabled and classifier is not None:
        found.append(ClassifierDetector(settings.classifier, classifier))
    providers = Providers(settings.headers.providers)
    if settings.headers.enabled:
        found.append(HeadersDetector(settings.headers, providers))
    if settings.received.enabled:
        found.append(ReceivedDetector(settings.received, config.isp, providers))
    if settings.urls.enabled:
        found.append(UrlsDetector(settings.urls))
    if settings.attachments.enabled:
        from seawall.detectors.attachments import AttachmentsDetector

        found.append(AttachmentsDetector(settings.attachments))
    if settings.language.enabled:
        found.append(LanguageDetector(settings.language))
    if settings.campaigns.enabled:
        found.append(_campaigns(config, scores, tracker))
    if settings.dnsbl.enabled:
        from seawall.detectors.dnsbl import DnsblDetector

        found.append(
            DnsblDetector(settings.dnsbl, config.trusted, io_timeout_s=config.engine.io_timeout_s)
        )
    if settings.clamav.enabled:
        from seawall.detectors.clamav import ClamavDetector

        found.append(ClamavDetector(settings.clamav, io_timeout_s=config.engine.io_timeout_s))
    if settings.reputation.enabled:
        found.append(_reputation(config, scores, store))
    return tuple(found)


def spam_threshold(scores: Scores | None) -> float:
    """The lowest score with a spam action: where a message's content counts as spam."""
    threshold = None
    if scores is not None:
        spam_actions = [v for a, v in scores.thresholds if a.is_spam]
        threshold = min(spam_actions) if spam_actions else None
    if threshold is None:
        threshold = scores.required if scores is not None else 15.0
    return threshold


def _reputation(config: Config, scores: Scores | None, store: Store | None) -> Detector:
    from seawall.detectors.reputation import ReputationDetector
    from seawall.store import open_store

    def opener() -> Store:
        return store if store is not None else open_store(config)

    return ReputationDetector(config, opener, spam_threshold=spam_threshold(scores))


def _campaigns(config: Config, scores: Scores | None, tracker: TrackerClient | None) -> Detector:
    from seawall.campaigns.client import LocalTracker
    from seawall.campaigns.tracker import Tracker
    from seawall.detectors.campaign import CampaignDetector

    if tracker is None:
        tracker = LocalTracker(Tracker(config.detectors.campaigns))
    return CampaignDetector(
        config.detectors.campaigns, config.isp, tracker, spam_threshold=spam_threshold(scores)
    )
