"""Writes the ARC corpus fixtures (run by hand; the output is committed, static).

    PYTHONPATH=<authres> .venv/bin/python -m tests.auth.make_arc_fixtures

A bank's statement, DKIM-signed by example.com (p=reject), passes through a mailing list
at lists.example.org that tags the subject and appends a footer (breaking the signature),
records what it saw in an Authentication-Results field and ARC-seals the message with the
test RSA key (selector "arc").  ``auth_arc_broken.eml`` is the sealed message with its body
changed afterwards.  dkimpy's arc_sign needs the ``authres`` package, which Seawall itself
does not.
"""

from __future__ import annotations

from pathlib import Path

import dkim
from tests.auth.signing import RSA_PRIVATE, sign

OUT = Path(__file__).parent.parent / "corpus" / "eml"
LIST = b"lists.example.org"
ORIGINAL = (
    b"From: Example Bank <service@example.com>\r\n"
    b"To: members@lists.example.org\r\n"
    b"Subject: Branch opening hours over the holidays\r\n"
    b"Date: Fri, 27 Nov 2026 09:00:00 +0000\r\n"
    b"Message-ID: <hours-1126@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"Dear members,\r\n"
    b"\r\n"
    b"our branches close at noon on 24 and 31 December.\r\n"
    b"\r\n"
    b"Your bank\r\n"
)
FOOTER = b"--\r\nmembers mailing list: https://lists.example.org/members\r\n"
RECEIVED = (
    b"Authentication-Results: lists.example.org; spf=pass smtp.mailfrom=example.com;\r\n"
    b" dkim=pass header.d=example.com header.s=rsa; dmarc=pass header.from=example.com\r\n"
)


def main() -> None:
    signed = sign(ORIGINAL, "example.com")
    listed = signed.replace(b"Subject: Branch", b"Subject: [members] Branch") + FOOTER
    listed = RECEIVED + listed
    arc_set = dkim.arc_sign(
        listed,
        b"arc",
        LIST,
        RSA_PRIVATE,
        LIST,
        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"],
        timestamp=1764234000,
    )
    assert arc_set, "arc_sign found no Authentication-Results of lists.example.org"
    sealed = b"".join(arc_set) + listed
    (OUT / "auth_arc_list.eml").write_bytes(sealed)
    broken = sealed.replace(b"close at noon", b"are closed, use https://bank.example.info")
    (OUT / "auth_arc_broken.eml").write_bytes(broken)


if __name__ == "__main__":
    main()
