"""The symbols of sender authentication, and the hits each check's result gives.

Declared by :class:`seawall.detectors.auth.AuthDetector` (with the domain reputation's
of :mod:`seawall.auth.standing`); their scores are in scores.toml.
"""

from __future__ import annotations

from seawall.auth import arc as arc_
from seawall.auth import dkim as dkim_
from seawall.auth import dmarc as dmarc_
from seawall.auth.spf import Result, SpfResult
from seawall.policy.model import Hit

MAX_OPTIONS = 5

SPF_SYMBOLS = {
    "SPF_PASS": "SPF: the client may send for the MAIL FROM domain",
    "SPF_FAIL": "SPF: the MAIL FROM domain says the client may not send for it (-all)",
    "SPF_SOFTFAIL": "SPF: the MAIL FROM domain says the client probably may not send (~all)",
    "SPF_NEUTRAL": "SPF: the MAIL FROM domain makes no assertion about the client (?all)",
    "SPF_NONE": "SPF: the MAIL FROM domain publishes no SPF record",
    "SPF_TEMPFAIL": "SPF: the MAIL FROM domain's record could not be checked (DNS failure)",
    "SPF_PERMFAIL": "SPF: the MAIL FROM domain's record is broken (syntax, too many lookups)",
    "SPF_HELO_FAIL": "SPF: the HELO name says the client may not use it (-all)",
}
DKIM_SYMBOLS = {
    "DKIM_PASS": "DKIM: a signature verifies and covers the whole body",
    "DKIM_FAIL": "DKIM: a signature does not verify (body or signed headers changed)",
    "DKIM_TEMPFAIL": "DKIM: a signing key could not be fetched (DNS failure)",
    "DKIM_PERMFAIL": "DKIM: a signature is malformed, its algorithm unsupported, or its key "
    "missing, revoked or bad",
    "DKIM_NONE": "DKIM: the message is not signed",
    "DKIM_PARTIAL_BODY": "DKIM: a signature verifies but its l= leaves unsigned content at the "
    "end of the body (not a pass for DMARC)",
}
DMARC_SYMBOLS = {
    "DMARC_PASS": "DMARC: SPF or DKIM passed for a domain aligned with From",
    "DMARC_POLICY_REJECT": "DMARC: no aligned pass, and the From domain's policy is reject",
    "DMARC_POLICY_QUARANTINE": "DMARC: no aligned pass, and the From domain's policy is quarantine",
    "DMARC_POLICY_NONE": "DMARC: no aligned pass, and the From domain's policy is none "
    "(monitoring)",
    "DMARC_NA": "DMARC: no policy applies (no DMARC record, or no single From domain)",
    "DMARC_TEMPFAIL": "DMARC: the policy, SPF or a DKIM key could not be fetched (DNS "
    "failure), so no policy verdict",
}

ARC_SYMBOLS = {
    "ARC_PASS": "ARC: the forwarders' chain of seals validates (options: the latest sealer)",
    "ARC_FAIL": "ARC: the chain of seals is broken (changed after sealing, bad or missing key)",
    "ARC_NONE": "ARC: the message has no ARC seal",
    "ARC_TRUSTED_FORWARDER": "ARC: a trusted forwarder sealed the chain, and the results it "
    "first recorded pass DMARC where the live ones fail",
}

SPF = {
    Result.PASS: "SPF_PASS",
    Result.FAIL: "SPF_FAIL",
    Result.SOFTFAIL: "SPF_SOFTFAIL",
    Result.NEUTRAL: "SPF_NEUTRAL",
    Result.NONE: "SPF_NONE",
    Result.TEMPERROR: "SPF_TEMPFAIL",
    Result.PERMERROR: "SPF_PERMFAIL",
}
DKIM = {
    dkim_.DkimStatus.PASS: "DKIM_PASS",
    dkim_.DkimStatus.FAIL: "DKIM_FAIL",
    dkim_.DkimStatus.TEMPERROR: "DKIM_TEMPFAIL",
    dkim_.DkimStatus.PERMERROR: "DKIM_PERMFAIL",
}
DMARC = {
    dmarc_.Disposition.PASS: "DMARC_PASS",
    dmarc_.Disposition.REJECT: "DMARC_POLICY_REJECT",
    dmarc_.Disposition.QUARANTINE: "DMARC_POLICY_QUARANTINE",
    dmarc_.Disposition.NONE: "DMARC_POLICY_NONE",
    dmarc_.Disposition.NO_POLICY: "DMARC_NA",
    dmarc_.Disposition.TEMPERROR: "DMARC_TEMPFAIL",
}
DMARC_FAILED = frozenset({"DMARC_POLICY_REJECT", "DMARC_POLICY_QUARANTINE", "DMARC_POLICY_NONE"})


def arc_hits(chain: arc_.ArcResult) -> list[Hit]:
    if chain.status is arc_.ArcStatus.PASS:
        return [Hit("ARC_PASS", options=(chain.sealer, f"i={chain.instances}"))]
    if chain.status is arc_.ArcStatus.FAIL:
        options = (chain.sealer, chain.detail) if chain.sealer else (chain.detail,)
        return [Hit("ARC_FAIL", options=tuple(o for o in options if o))]
    if chain.status is arc_.ArcStatus.NONE:
        return [Hit("ARC_NONE")]
    return []  # a key not fetched in time: no verdict on the chain


def spf_hit(result: SpfResult) -> Hit:
    detail = result.mechanism or result.detail
    options = (result.domain, detail) if detail else (result.domain,)
    return Hit(SPF[result.result], options=tuple(o for o in options if o))


_DKIM_NONE = Hit("DKIM_NONE")  # a hit is immutable: one for every unsigned message


def dkim_hits(results: list[dkim_.DkimResult]) -> list[Hit]:
    if not results:
        return [_DKIM_NONE]
    found: dict[str, list[str]] = {}
    for r in results:
        symbol = (
            "DKIM_PARTIAL_BODY"
            if r.status is dkim_.DkimStatus.PASS and r.partial
            else (DKIM[r.status])
        )
        found.setdefault(symbol, []).append(f"{r.domain}:s={r.selector}")
    return [Hit(s, options=tuple(dict.fromkeys(o))[:MAX_OPTIONS]) for s, o in found.items()]
