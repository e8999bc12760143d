"""The phishing detector on crafted minimal messages: each symbol, and what must stay quiet."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.detectors.conftest import corpus_messages, msg, scan

from seawall import corpus
from seawall.config import PhishingSettings, load_config
from seawall.detectors.base import Hit, Parts
from seawall.detectors.phishing import PhishingDetector, load_lexicon
from seawall.errors import ConfigError
from seawall.message.parse import ParseLimits


@pytest.fixture
def detector() -> PhishingDetector:
    return PhishingDetector.build(Parts(load_config(None)))


HTML = b"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n"


async def test_display_name_of_a_brand_from_another_domain(detector: PhishingDetector) -> None:
    hits = await scan(
        detector,
        msg(
            b'From: "PayPal" <alerts@secure-pp.example>\nSubject: hello\n\n'
            b"See http://secure-pp.example/x\n"
        ),
    )
    assert hits["PHISH_BRAND_SENDER"].weight == 1.0
    assert hits["PHISH_BRAND_SENDER"].options[:2] == ("paypal in name", "from secure-pp.example")


@pytest.mark.parametrize(
    ("sender", "brand"),
    [
        ("TrustedViagra Pfizer e-shop <byhaouvye2552@chello.example>", "pfizer"),
        ("PfizerClassicViagra <panyqeie6375@fastweb.example>", "pfizer"),  # run together
        ("VIAGRA \u00ae Reseller <hibody@csmining.example>", "pfizer"),
        ("Cialis Store <shop@pills.example>", "lilly"),
        ("TrustWallet Support <help@wallet-verify.example>", "trustwallet"),
        ('"Pay.Pal." <m0n1ca@isp-q.example>', "paypal"),  # joined by dots
        ("Mercado.Pago <mpvalidesac@mail.example>", "mercadolivre"),
        ("eBay <member@ebay-notice.example>", "ebay"),  # the name as written still counts
        ("Pfizer Medical Information <medinfo@pfizer.com>", None),  # the maker itself
        ("Lockergnome Tech Specialist <subscriptions@lockergnome.example>", None),
        ("JohnCialdini <john@example.org>", None),
    ],
)
async def test_medicines_and_names_run_together(
    detector: PhishingDetector, sender: str, brand: str | None
) -> None:
    raw = f"From: {sender}\nSubject: offer\n\nSee http://shop.example.net/x\n".encode()
    hits = await scan(detector, msg(raw))
    if brand is None:
        assert "PHISH_BRAND_SENDER" not in hits
    else:
        assert hits["PHISH_BRAND_SENDER"].options[0] == f"{brand} in name"


async def test_the_brand_writing_about_itself_is_quiet(detector: PhishingDetector) -> None:
    own = msg(
        b'From: "PayPal" <service@paypal.com>\nSubject: Verify your account\n\n'
        b"Please verify your account at https://www.paypal.com/signin\n"
    )
    assert "PHISH_BRAND_SENDER" not in await scan(detector, own)


async def test_forged_brand_domain_with_every_link_elsewhere(detector: PhishingDetector) -> None:
    forged = msg(
        b'From: "eBay" <aw-confirm@ebay.com>\nSubject: Account suspended\n\n'
        b"Your account is suspended. Verify your account: http://192.0.2.7/ebay/\n"
    )
    hits = await scan(detector, forged)
    assert hits["PHISH_BRAND_SENDER"].options[0] == "ebay in name, forged From"


async def test_links_all_to_the_brand_are_a_forwarded_notice(detector: PhishingDetector) -> None:
    forwarded = msg(
        b"From: Bob <bob@example.org>\nSubject: Fwd: your Amazon order, please confirm your\n\n"
        b"Confirm your account order: https://www.amazon.com/gp/your-account\n"
    )
    assert not {"PHISH_BRAND_SENDER", "PHISH_BRAND_BODY"} & set(await scan(detector, forwarded))


async def test_mailing_lists_discuss_brands(detector: PhishingDetector) -> None:
    listed = msg(
        b'From: "Microsoft news" <news@list.example>\nList-Id: <tech.list.example>\n\n'
        b"Microsoft wants you to update your password http://list.example/a\n"
    )
    hits = await scan(detector, listed)
    assert "PHISH_BRAND_SENDER" not in hits
    assert "PHISH_ACCOUNT_ALERT" in hits  # the words are there all the same


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"Your account has been suspended", ("suspended", "account")),
        (b"Ihr Konto wurde gesperrt", ("gesperrt", "konto")),
        (b"Votre compte est suspendu, veuillez confirmer", ("suspendu", "compte")),
        (b"Su cuenta ha sido bloqueada", ("bloqueada", "cuenta")),
        (b"Sua conta foi bloqueada, atualize sua senha", ("bloqueada", "conta")),
        (b"Il tuo conto \xc3\xa8 stato sospeso", ("sospeso", "conto")),
        (b"Uw rekening is geblokkeerd", ("geblokkeerd", "rekening")),
    ],
)
async def test_account_alert_words_in_many_languages(
    detector: PhishingDetector, text: bytes, words: tuple[str, str]
) -> None:
    raw = b"From: a@b.example\nContent-Type: text/plain; charset=utf-8\n\n" + text
    hits = await scan(detector, msg(raw + b"\nhttp://b.example/x\n"))
    assert set(hits["PHISH_ACCOUNT_ALERT"].options) == set(words)
    assert "PHISH_ACCOUNT_ALERT" not in await scan(detector, msg(raw))  # no link: no lure


async def test_password_field_and_form_to_an_address(detector: PhishingDetector) -> None:
    raw = HTML + (
        b"From: bank@bank.example\n\n<form action='http://203.0.113.5/p.php'>"
        b"<input name=user><input type='password' name=pw></form>"
    )
    hits = await scan(detector, msg(raw))
    assert hits["PHISH_FORM_FOREIGN"].options == ("203.0.113.5",)
    assert "PHISH_SECRET_FIELD" in hits


async def test_card_fields_by_name(detector: PhishingDetector) -> None:
    raw = HTML + b"\n<form action='/x'><input type=text name='cc_cardnumber'></form>"
    assert "PHISH_SECRET_FIELD" in await scan(detector, msg(raw))


async def test_a_newsletter_search_box_is_not_a_foreign_form(detector: PhishingDetector) -> None:
    raw = HTML + (
        b"From: news@online.example\n\n<p>This week's news</p>"
        b"<form action='http://search.example/q'><input name=q></form>"
        b"<a href='http://online.example/a'>more</a>"
    )
    hits = await scan(detector, msg(raw))
    assert not {"PHISH_FORM_FOREIGN", "PHISH_SECRET_FIELD"} & set(hits)


async def test_a_form_to_the_sending_services_own_site_beside_alert_words(
    detector: PhishingDetector,
) -> None:
    # A newsletter sent by a mailing service whose subscribe form posts to that service,
    # beside words an account alert uses.
    body = (
        b"From: editor@news.example.net\n\n<p>Your subscription is locked? Update your "
        b"credit card.</p><form action='http://www.mailservice.example.com/subscribe'>"
        b"<input name=email></form><a href='http://news.example.net/a'>more</a>"
    )
    hop = (
        b"Received: from eng.mailservice.example.com (mta4.mailservice.example.com "
        b"[192.0.2.17])\n\tby mx.example.org (Postfix); Tue, 01 Jul 2003 10:52:40 +0200\n"
    )
    assert "PHISH_ACCOUNT_ALERT" in await scan(detector, msg(hop + HTML + body))
    assert "PHISH_FORM_FOREIGN" not in await scan(detector, msg(hop + HTML + body))
    # Only the receiver's lookup names the service: an unnamed client's form is foreign.
    unnamed = hop.replace(b"mta4.mailservice.example.com ", b"unknown ")
    hits = await scan(detector, msg(unnamed + HTML + body))
    assert hits["PHISH_FORM_FOREIGN"].options == ("www.mailservice.example.com",)


async def test_hidden_text_beyond_a_preview_line(detector: PhishingDetector) -> None:
    salad = b"lorem ipsum dolor sit amet " * 12
    raw = HTML + b"\n<p>Hello</p><div style='display: none'>" + salad + b"</div>"
    assert "PHISH_HIDDEN_TEXT" in await scan(detector, msg(raw))
    preview = HTML + b"\n<span style='display:none'>Our autumn sale starts today</span><p>Hi</p>"
    assert "PHISH_HIDDEN_TEXT" not in await scan(detector, msg(preview))
    nested = HTML + b"\n<div style='font-size:0'><span style='display:none'>" + salad
    hits = await scan(detector, msg(nested + b"</span></div>"))
    assert hits["PHISH_HIDDEN_TEXT"].options == ("264 letters",)  # counted once


async def test_text_in_the_background_colour(detector: PhishingDetector) -> None:
    text = b"<p>Your account statement is ready, please read it today.</p>"
    filler = b"<font color='#FFFFF1'>William yes sure Ford Halloween Sable</font>"
    hits = await scan(detector, msg(HTML + b"\n" + text + filler))
    assert hits["PHISH_HIDDEN_TEXT"].options == ("32 letters in the background's colour",)
    # A preview line before the text, as newsletters write one, is not a trick...
    preview = b"<font color=white>Our autumn sale starts today, see inside</font>"
    assert "PHISH_HIDDEN_TEXT" not in await scan(detector, msg(HTML + b"\n" + preview + text))
    # ... nor is light text on a dark cell, or too little of it.
    dark = b"<table><tr><td bgcolor='#003366'>" + filler + b"</td></tr></table>"
    assert "PHISH_HIDDEN_TEXT" not in await scan(detector, msg(HTML + b"\n" + text + dark))
    few = b"<font color=white>a few words</font>"
    assert "PHISH_HIDDEN_TEXT" not in await scan(detector, msg(HTML + b"\n" + text + few))
    # A preview line longer than any: hidden text all the same.
    long_lead = b"<font color=white>" + b"lorem ipsum dolor sit amet " * 10 + b"</font>"
    hits = await scan(detector, msg(HTML + b"\n" + long_lead + text))
    assert hits["PHISH_HIDDEN_TEXT"].options == ("220 letters in the background's colour",)


# Measured on all 22,175 ham of the shared corpora: none has text in its background's
# colour beyond a preview (Enron's has no HTML); 127 spam do and no hidden style besides
# (Phishing Pot 65, Nazario 38, SpamAssassin 18, CSDMC 6).  No ham has a brand's name in
# its From but not the brand's domain; 257 spam name Pfizer or Viagra there (CSDMC 219).
async def test_hidden_text_and_brand_names_on_real_mail(detector: PhishingDetector) -> None:
    for source, step in ((corpus.SPAMASSASSIN, 1), (corpus.CSDMC, 1), (corpus.ENRON_HAM, 4)):
        for raw in corpus_messages(source, "ham", step=step):
            hits = await scan(detector, msg(raw))
            assert not _camouflage(hits), raw[:300]
            assert "PHISH_BRAND_SENDER" not in hits, raw[:300]
    spam = corpus_messages(corpus.NAZARIO, "spam")
    assert sum([bool(_camouflage(await scan(detector, msg(raw)))) for raw in spam]) >= 30
    pharmacy = [
        hits["PHISH_BRAND_SENDER"].options[0]
        for raw in corpus_messages(corpus.CSDMC, "spam", step=2)
        if "PHISH_BRAND_SENDER" in (hits := await scan(detector, msg(raw)))
    ]
    assert pharmacy.count("pfizer in name") > 80


def _camouflage(hits: dict[str, Hit]) -> bool:
    hit = hits.get("PHISH_HIDDEN_TEXT")
    return hit is not None and "background" in hit.options[0]


async def test_image_only_with_a_link(detector: PhishingDetector) -> None:
    raw = HTML + b"\n<a href='http://x.example/'><img src='http://x.example/a.png'></a>"
    assert "PHISH_IMAGE_ONLY" in await scan(detector, msg(raw))
    texty = (
        HTML
        + b"\n<a href='http://x.example/'><img src='http://x.example/a.png'></a>"
        + (b"<p>A letter with a real paragraph of text for its readers to read.</p>")
    )
    assert "PHISH_IMAGE_ONLY" not in await scan(detector, msg(texty))


async def test_html_attachment_forms_are_read(detector: PhishingDetector) -> None:
    raw = (
        b"From: a@b.example\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        b"Content-Type: text/plain\n\nSee the attachment\n--B\n"
        b"Content-Type: text/html; name=login.html\nContent-Disposition: attachment;"
        b" filename=login.html\nContent-Transfer-Encoding: base64\n\n"
        b"PGZvcm0+PGlucHV0IHR5cGU9cGFzc3dvcmQ+PC9mb3JtPg==\n--B--\n"
    )
    assert "PHISH_SECRET_FIELD" in await scan(detector, msg(raw))


async def test_a_site_adds_its_own_brand(tmp_path: Path) -> None:
    site = tmp_path / "brands.toml"
    site.write_text('[brands.ourisp]\nnames = ["Example Net"]\ndomains = ["example.net"]\n')
    lexicon = load_lexicon(str(site))
    detector = PhishingDetector(PhishingSettings(), lexicon, ParseLimits())
    raw = b'From: "Example Net Billing" <billing@pay-now.example>\n\nhttp://pay-now.example/\n'
    hits = await scan(detector, msg(raw))
    assert hits["PHISH_BRAND_SENDER"].options[0] == "ourisp in name"
    assert "paypal" in {b.key for b in lexicon.brands.values()}  # merged over the shipped


def test_a_broken_brands_file_is_a_config_error(tmp_path: Path) -> None:
    site = tmp_path / "brands.toml"
    site.write_text("[brands.x]\nnames = 'not a list'\n")
    with pytest.raises(ConfigError, match="brands.x"):
        load_lexicon(str(site))


# Measured on all the shared corpora: 3 ham carried PHISH_FORM_FOREIGN before, 2 of them
# newsletters whose forms post to their sending service (CNET's, iMakeNews'); none of the
# 90 spam hits was alike.
async def test_foreign_forms_on_real_mail(detector: PhishingDetector) -> None:
    ham = corpus_messages(corpus.SPAMASSASSIN, "ham")
    fired = [raw for raw in ham if "PHISH_FORM_FOREIGN" in await scan(detector, msg(raw))]
    assert len(fired) <= 1, [raw[:300] for raw in fired]
    spam = corpus_messages(corpus.SPAMASSASSIN, "spam")
    assert sum(["PHISH_FORM_FOREIGN" in await scan(detector, msg(raw)) for raw in spam]) > 60
