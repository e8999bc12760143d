"""The detectors, in the order they run.  The registry is explicit: no package walking."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seawall.detectors.base import Context, Detector, Hit

if TYPE_CHECKING:
    from seawall.classifier import Classifier
    from seawall.config import Config

__all__ = ["Context", "Detector", "Hit", "build_detectors"]


def build_detectors(config: Config, classifier: Classifier | None) -> tuple[Detector, ...]:
    """The enabled detectors for ``config``; the classifier is opened by the caller."""
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
    return tuple(found)
