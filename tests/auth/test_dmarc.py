"""DMARC (seawall.auth.dmarc): records, the organisational domain's fallback with sp=,
relaxed and strict alignment, pct sampling, and the DNS failures."""

from __future__ import annotations

from seawall.auth.dmarc import (
    Disposition,
    DmarcRecord,
    aligned,
    evaluate,
    parse_record,
    policy_names,
)
from seawall.dnslists.answer import Answer, Status


def txt(*records: str) -> Answer:
    return Answer(Status.LISTED, records)


NONE = Answer(Status.NOT_LISTED, nxdomain=True)


def test_parse_record() -> None:
    assert parse_record("v=DMARC1; p=reject") == DmarcRecord("reject")
    assert parse_record("v=DMARC1;p=quarantine;sp=none;pct=20;adkim=s;aspf=s;rua=x") == (
        DmarcRecord("quarantine", "none", 20, "s", "s")
    )
    assert parse_record("v=DMARC1; p=bogus") is None  # p= is required and must be known
    assert parse_record("p=reject; v=DMARC1") is None  # v= comes first
    assert parse_record("v=spf1 -all") is None
    assert parse_record("v=DMARC1; p=none; pct=x; adkim=q").pct == 100  # type: ignore[union-attr]


def test_policy_names_and_alignment() -> None:
    assert policy_names("mail.example.co.uk") == (
        "_dmarc.mail.example.co.uk",
        "_dmarc.example.co.uk",
    )
    assert policy_names("example.com") == ("_dmarc.example.com",)
    assert aligned("bounce.example.com", "example.com", "r")
    assert not aligned("bounce.example.com", "example.com", "s")
    assert aligned("Example.COM.", "example.com", "s")
    assert not aligned("example.co.uk", "other.co.uk", "r")


def test_pass_by_spf_or_dkim_and_fail_by_policy() -> None:
    reject = [txt("v=DMARC1; p=reject")]
    passed = evaluate("example.com", reject, spf_pass_domain="mx.example.com", dkim_pass_domains=[])
    assert passed.disposition is Disposition.PASS
    assert passed.aligned == ("spf:mx.example.com",)
    by_dkim = evaluate(
        "example.com", reject, spf_pass_domain=None, dkim_pass_domains=["example.com"]
    )
    assert by_dkim.aligned == ("dkim:example.com",)
    forged = evaluate(
        "example.com", reject, spf_pass_domain="evil.test", dkim_pass_domains=["evil.test"]
    )
    assert forged.disposition is Disposition.REJECT
    for policy in ("quarantine", "none"):
        result = evaluate(
            "example.com",
            [txt(f"v=DMARC1; p={policy}")],
            spf_pass_domain=None,
            dkim_pass_domains=[],
        )
        assert result.disposition.value == policy


def test_strict_alignment() -> None:
    strict = [txt("v=DMARC1; p=reject; adkim=s; aspf=s")]
    result = evaluate(
        "example.com",
        strict,
        spf_pass_domain="mx.example.com",
        dkim_pass_domains=["mail.example.com"],
    )
    assert result.disposition is Disposition.REJECT


def test_organisational_domain_and_subdomain_policy() -> None:
    org = txt("v=DMARC1; p=reject; sp=quarantine")
    result = evaluate("shop.example.com", [NONE, org], spf_pass_domain=None, dkim_pass_domains=[])
    assert result.disposition is Disposition.QUARANTINE
    assert result.policy_domain == "example.com"
    own = evaluate(
        "shop.example.com",
        [txt("v=DMARC1; p=none"), org],
        spf_pass_domain=None,
        dkim_pass_domains=[],
    )
    assert own.disposition is Disposition.NONE


def test_no_policy_ambiguous_and_dns_failures() -> None:
    kw = {"spf_pass_domain": None, "dkim_pass_domains": ()}
    assert evaluate("example.com", [NONE], **kw).disposition is Disposition.NO_POLICY  # type: ignore[arg-type]
    two = txt("v=DMARC1; p=reject", "v=DMARC1; p=none")
    assert evaluate("example.com", [two], **kw).detail == "several DMARC records"  # type: ignore[arg-type]
    assert evaluate("", [], **kw).disposition is Disposition.NO_POLICY  # type: ignore[arg-type]
    failed = evaluate("example.com", [Answer(Status.TIMEOUT)], **kw)  # type: ignore[arg-type]
    assert failed.disposition is Disposition.TEMPERROR
    assert evaluate("example.com", [None], **kw).disposition is Disposition.TEMPERROR  # type: ignore[arg-type]


def test_pct_samples_deterministically() -> None:
    record = [txt("v=DMARC1; p=reject; pct=50")]
    seen = {
        evaluate(
            "example.com",
            record,
            spf_pass_domain=None,
            dkim_pass_domains=[],
            sample_key=str(i).encode(),
        ).disposition
        for i in range(200)
    }
    assert seen == {Disposition.REJECT, Disposition.QUARANTINE}
    again = [
        evaluate(
            "example.com", record, spf_pass_domain=None, dkim_pass_domains=[], sample_key=b"x"
        ).disposition
        for _ in range(3)
    ]
    assert len(set(again)) == 1


def test_the_pct_sample_key_is_made_only_when_a_sample_is_drawn() -> None:
    made: list[int] = []

    def key(i: int) -> bytes:
        made.append(i)
        return str(i).encode()

    def run(text: str, i: int, spf: str | None = None) -> Disposition:
        return evaluate(
            "example.com",
            [txt(text)],
            spf_pass_domain=spf,
            dkim_pass_domains=[],
            sample_key=lambda: key(i),
        ).disposition

    assert run("v=DMARC1; p=reject", 1) is Disposition.REJECT
    assert run("v=DMARC1; p=reject; pct=50", 2, spf="example.com") is Disposition.PASS
    assert run("v=DMARC1; p=none; pct=50", 3) is Disposition.NONE
    assert made == []
    for i in range(50):  # the same draw as the bytes themselves
        lazy = run("v=DMARC1; p=reject; pct=50", i)
        given = evaluate(
            "example.com",
            [txt("v=DMARC1; p=reject; pct=50")],
            spf_pass_domain=None,
            dkim_pass_domains=[],
            sample_key=str(i).encode(),
        ).disposition
        assert lazy is given
    assert made == list(range(50))
