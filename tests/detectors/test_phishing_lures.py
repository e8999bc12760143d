"""The lures that need no brand link (detectors/phishing_lures.py), through the phishing
detector: crafted minimal messages for each symbol and what must stay quiet, real Phishing
Pot messages that carry them, and the ham corpora on which none fires."""

from __future__ import annotations

import pytest
from tests.detectors.conftest import msg, scan

from seawall import corpus
from seawall.config import load_config
from seawall.detectors.base import Parts
from seawall.detectors.phishing import PhishingDetector
from seawall.detectors.phishing_lures import bitcoin_address, large_sum, mixed_script_words
from seawall.message.parse import parse_message
from seawall.sources import units_of_file

LURES = {
    "PHISH_MIXED_SCRIPT",
    "PHISH_BITCOIN_ADDRESS",
    "PHISH_ADVANCE_FEE",
    "PHISH_INVISIBLE_CHARS",
}
PLAIN = b"MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"


@pytest.fixture(scope="module")
def detector() -> PhishingDetector:
    return PhishingDetector.build(Parts(load_config(None)))


def test_mixed_script_words() -> None:
    # a Greek capital M and Cyrillic a's among Latin letters; Latin small capitals
    assert mixed_script_words("Dear user, your w\u0430llet \u039cetam\u0430sk") == [
        "w\u0430llet",
        "\u039cetam\u0430sk",
    ]
    assert mixed_script_words("\u1d0d\u1d04\u1d00\ua730\u1d07\u1d07 alert") == [
        "\u1d0d\u1d04\u1d00\ua730\u1d07\u1d07"
    ]
    # whole words of one script, accents, and UTF-8 read as windows-1251 stay quiet
    assert mixed_script_words("caf\u0413\u00a9 attach\u043f\u0457\u0405") == []
    assert mixed_script_words("\u041f\u0440\u0438\u0432\u0435\u0442 world, M\u00fcller") == []
    assert mixed_script_words("plain ascii text") == []


def test_bitcoin_addresses_count_only_with_their_checksum() -> None:
    assert bitcoin_address("pay 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa now") == (
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
    )
    segwit = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"
    assert bitcoin_address(f"wallet: {segwit}.") == segwit
    assert bitcoin_address("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb") is None  # one letter off
    assert bitcoin_address("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdp") is None
    assert bitcoin_address("order 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNL0 shipped") is None


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("the sum of $10.5million USD", "$10.5million"),
        ("US$ 2.500.000 (dois milhões)", "US$ 2.500.000"),
        ("valued at $650,000.00.", "$650,000.00"),
        ("2.5 million dollars", "2.5 million dollars"),
        ("1.200.000 EUR", "1.200.000 EUR"),
    ],
)
def test_large_sums(text: str, amount: str) -> None:
    assert large_sum(text) == amount


def test_small_sums_are_not_large() -> None:
    assert large_sum("Your order of $1529.20 and R$4.593,21 ships today") is None


async def test_mixed_script_in_the_display_name(detector: PhishingDetector) -> None:
    raw = PLAIN + "From: \u039cetam\u0430sk <a@b.example>\nSubject: hi\n\nhello\n".encode()
    hits = await scan(detector, msg(raw))
    assert hits["PHISH_MIXED_SCRIPT"].options == ("\u039cetam\u0430sk",)


async def test_invisible_characters_inside_the_senders_name_and_the_subject(
    detector: PhishingDetector,
) -> None:
    raw = (
        PLAIN
        + (
            "From: L\U000e0139ed\U000e0139ger <support@wallet-care.example>\n"
            "Subject: Ve\u200brify your re\u2060covery phrase\n\n"
            "Check it now: https://wallet-care.example/verify\n"
        ).encode()
    )
    hits = await scan(detector, msg(raw))
    assert hits["PHISH_INVISIBLE_CHARS"].options == ("Ledger", "Verify", "recovery")
    assert "PHISH_ACCOUNT_ALERT" in hits  # the subject's words read as the reader reads them


@pytest.mark.parametrize(
    "header",
    [
        "From: Caf\u00e9 M\u00fcller <a@b.example>\nSubject: caf\u00e9 \u2615\ufe0f",  # emoji
        "From: Team <a@b.example>\nSubject: \U0001f3f4\U000e0067\U000e0062\U000e007f go",  # flag
        "From: \u200bNews <a@b.example>\nSubject: plain \u200b words",  # between words
        "From: \u0633\u0644\u200c\u0627\u0645 <a@b.example>\nSubject: hi",  # Persian ZWNJ
    ],
)
async def test_invisible_characters_outside_latin_words_stay_quiet(
    detector: PhishingDetector, header: str
) -> None:
    raw = PLAIN + f"{header}\n\nhello\n".encode()
    assert "PHISH_INVISIBLE_CHARS" not in await scan(detector, msg(raw))


async def test_bitcoin_address_in_the_text(detector: PhishingDetector) -> None:
    raw = PLAIN + (
        b"From: a@b.example\nSubject: I know your secret\n\n"
        b"Send 0.1 BTC to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq within 48 hours.\n"
    )
    assert "PHISH_BITCOIN_ADDRESS" in await scan(detector, msg(raw))


ADVANCE = (
    b"Subject: Greetings\n\nI am the widow of the late Mr. Smith. I wish to donate the sum of "
    b"US$4,500,000.00 to charity through you as the beneficiary.\n"
)


async def test_advance_fee_from_a_free_mailbox(detector: PhishingDetector) -> None:
    hits = await scan(detector, msg(PLAIN + b"From: Mrs Smith <smith1958@gmail.com>\n" + ADVANCE))
    assert hits["PHISH_ADVANCE_FEE"].options == (
        "US$4,500,000.00",
        "beneficiary",
        "charity",
        "from gmail.com",
    )


async def test_advance_fee_asking_for_replies_elsewhere(detector: PhishingDetector) -> None:
    raw = PLAIN + b"From: Bank <info@bank.example>\nReply-To: agent@mail.example\n" + ADVANCE
    hits = await scan(detector, msg(raw))
    assert hits["PHISH_ADVANCE_FEE"].options[-1] == "replies to mail.example"


async def test_a_company_naming_sums_and_charity_is_quiet(detector: PhishingDetector) -> None:
    # its own domain, replies to itself: an annual report, not an offer
    raw = PLAIN + b"From: News <news@bank.example>\nReply-To: desk@bank.example\n" + ADVANCE
    assert "PHISH_ADVANCE_FEE" not in await scan(detector, msg(raw))
    listed = PLAIN + (
        b"From: Ann <ann@uni.example>\nReply-To: talk@lists.example\n"
        b"List-Post: <mailto:talk@lists.example>\n" + ADVANCE
    )
    assert "PHISH_ADVANCE_FEE" not in await scan(detector, msg(listed))  # a list's Reply-To


async def test_a_brand_in_the_name_without_links(detector: PhishingDetector) -> None:
    raw = PLAIN + b'From: "Microsoft account team" <qnlvr@g1bhzg0r4g.example>\n\nCall us.\n'
    hit = (await scan(detector, msg(raw)))["PHISH_BRAND_SENDER"]
    assert hit.weight == 0.5
    assert hit.options == ("microsoft in name", "from g1bhzg0r4g.example", "no link")
    own = PLAIN + b'From: "Microsoft account team" <account@microsoft.com>\n\nHello.\n'
    assert "PHISH_BRAND_SENDER" not in await scan(detector, msg(own))


async def test_a_bulk_senders_unsubscribe_does_not_hide_a_brand(
    detector: PhishingDetector,
) -> None:
    raw = PLAIN + (
        b'From: "Trust Wallet" <news@uni.example>\n'
        b"List-Unsubscribe: <https://esp.example/u/1>\n\n"
        b"Unlock your wallet to avoid suspension: https://esp.example/c/2\n"
    )
    assert "PHISH_BRAND_SENDER" in await scan(detector, msg(raw))


def _pot(name: str) -> bytes:
    return (corpus.unpack(corpus.PHISHING_POT) / "email" / name).read_bytes()


@pytest.mark.parametrize(
    ("name", "symbol", "evidence"),
    [
        ("sample-72.eml", "PHISH_MIXED_SCRIPT", "\u039cetam\u0430sk"),  # the display name
        (
            "sample-1040.eml",
            "PHISH_MIXED_SCRIPT",
            "\U0001d55a\u2102\U0001d55d\U0001d560\U0001d566\U0001d555",
        ),
        ("sample-1796.eml", "PHISH_BITCOIN_ADDRESS", "bc1qe326j9z2ym3wfdn0kdqvk4pf5vdljl9fh0gz2l"),
        ("sample-1928.eml", "PHISH_BITCOIN_ADDRESS", "1BGg1sb9gL7cL76ScJATzY8Lh73kr4A87T"),
        ("sample-6586.eml", "PHISH_INVISIBLE_CHARS", "warning"),  # zero-width spaces
        ("sample-5393.eml", "PHISH_INVISIBLE_CHARS", "ALERTA"),  # joiners of four kinds
        ("sample-1023.eml", "PHISH_ADVANCE_FEE", "from gmail.com"),
        ("sample-1006.eml", "PHISH_ADVANCE_FEE", "replies to gmail.com"),
    ],
)
async def test_real_phishing_pot_lures(
    detector: PhishingDetector, name: str, symbol: str, evidence: str
) -> None:
    hits = await scan(detector, parse_message(_pot(name)))
    assert evidence in hits[symbol].options


@pytest.mark.parametrize("source", [corpus.SPAMASSASSIN, corpus.ENRON_HAM, corpus.CSDMC])
async def test_no_lure_on_real_ham(detector: PhishingDetector, source: str) -> None:
    units = [
        unit
        for item in corpus.items(source)
        if item.label == "ham"
        for unit in units_of_file(str(item.path))
    ]
    fired = []
    for unit in units[::3]:
        hits = await scan(detector, parse_message(unit.read()))
        fired += [(unit.path, s) for s in LURES & set(hits)]
    assert len(units[::3]) > 900
    assert fired == []


async def test_a_brand_name_before_a_comma_and_the_address(detector: PhishingDetector) -> None:
    # parseaddr reads "Amazon Gutschein, <...>" as two addresses; the name is still read
    raw = PLAIN + (
        b"From: Amazon Gutschein, <service@friends.example>\nSubject: Gewinn\n\n"
        b"Jetzt teilnehmen: https://survey.example/a\n"
    )
    hit = (await scan(detector, msg(raw)))["PHISH_BRAND_SENDER"]
    assert hit.options == ("amazon in name", "from friends.example", "survey.example")


async def test_prize_lure_words_beside_a_link_away(detector: PhishingDetector) -> None:
    raw = PLAIN + (
        b"From: Team <win@shop.example>\nSubject: Herzlichen Gl\xc3\xbcckwunsch!\n\n"
        b"Sie wurden ausgew\xc3\xa4hlt: ein Gutschein wartet. https://claim.example/x\n"
    )
    hit = (await scan(detector, msg(raw)))["PHISH_PRIZE"]
    assert hit.options == ("herzlichen glückwunsch", "ausgewählt", "gutschein")
    own = raw.replace(b"claim.example", b"shop.example")
    assert "PHISH_PRIZE" not in await scan(detector, msg(own))  # the shop's own site
