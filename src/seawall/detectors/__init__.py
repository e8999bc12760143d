"""The detectors, in the order they run.  The registry is explicit: no package walking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall.detectors.base import Context, Detector, Hit

if TYPE_CHECKING:
    from seawall.campaigns.client import TrackerClient
    from seawall.classifier import Classifier
    from seawall.config import Config
    from seawall.policy.scores import Scores

__all__ = ["Context", "Detector", "Hit", "build_detectors"]


def build_detectors(
    config: Config,
    classifier: Classifier | None,
    *,
    scores: Scores | None = None,
    tracker: TrackerClient | None = None,
) -> tuple[Detector, ...]:
    """The enabled detectors for ``config``; the classifier is opened by the caller.

    Without a ``tracker``, campaigns are tracked in this process.  ``scores`` gives the
    threshold at which a message's content counts as spam for its campaign.
    """
    from seawall.detectors.classifier import ClassifierDetector
    from seawall.detectors.headers import HeadersDetector
    from seawall.detectors.language import LanguageDetector
    from seawall.detectors.urls import UrlsDetector

    settings = config.detectors
    found: list[Detector] = []
    if settings.classifier.enabled and classifier is not None:
        found.append(ClassifierDetector(settings.classifier, classifier))
    if settings.headers.enabled:
        found.append(HeadersDetector(settings.headers))
    if settings.urls.enabled:
        found.append(UrlsDetector(settings.urls))
    if settings.language.enabled:
        found.append(LanguageDetector(settings.language))
    if settings.campaigns.enabled:
        found.append(_campaigns(config, scores, tracker))
    return tuple(found)


def _campaigns(config: Config, scores: Scores | None, tracker: TrackerClient | None) -> Detector:
    from seawall.campaigns.client import LocalTracker
    from seawall.campaigns.tracker import Tracker
    from seawall.detectors.campaign import CampaignDetector

    if tracker is None:
        tracker = LocalTracker(Tracker(config.detectors.campaigns))
    threshold = None
    if scores is not None:
        spam_actions = [v for a, v in scores.thresholds if a.is_spam]
        threshold = min(spam_actions) if spam_actions else None
    if threshold is None:
        threshold = scores.required if scores is not None else 15.0
    return CampaignDetector(
        config.detectors.campaigns, config.isp, tracker, spam_threshold=threshold
    )
