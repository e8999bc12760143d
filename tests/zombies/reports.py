"""ARF, X-ARF and feed files for the zombie tests, written as other networks send them."""

from __future__ import annotations

import time

ORIGINAL = (
    "Received: from pc-10-1-2-3.dsl.example.net ([10.1.2.3]) by mx.receiver.example\r\n"
    'From: "Pharmacy" <deals@shop.example>\r\n'
    "To: victim@receiver.example\r\n"
    "Subject: =?UTF-8?B?Q2hlYXAgbWVkcyB0b2RheQ==?=\r\n"
    "Message-ID: <{msgid}>\r\n"
    "Date: Sun, 06 Dec 2026 06:00:00 +0000\r\n"
    "\r\n"
    "Buy now\r\n"
)


def arf(ip: str, msgid: str, *, feedback: str = "abuse", when: float | None = None) -> bytes:
    """An RFC 5965 feedback report about mail from ``ip``."""
    arrival = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(when or time.time()))
    return (
        "From: <fbl@receiver.example>\r\n"
        "To: <abuse@example.net>\r\n"
        "Subject: FW: Cheap meds today\r\n"
        "Date: Sun, 06 Dec 2026 07:00:00 +0000\r\n"
        f"Message-ID: <report-{msgid}>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is an email abuse report for an email message received from IP\r\n"
        f"{ip} on {arrival}.\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: message/feedback-report\r\n"
        "\r\n"
        f"Feedback-Type: {feedback}\r\n"
        "User-Agent: ReceiverFBL/1.0\r\n"
        "Version: 1\r\n"
        "Original-Mail-From: <deals@shop.example>\r\n"
        "Original-Rcpt-To: <victim@receiver.example>\r\n"
        f"Arrival-Date: {arrival}\r\n"
        "Reporting-MTA: dns; mx.receiver.example\r\n"
        f"Source-IP: {ip}\r\n"
        "Incidents: 1\r\n"
        "\r\n"
        "--b1\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Disposition: inline\r\n"
        "\r\n" + ORIGINAL.format(msgid=msgid) + "\r\n"
        "--b1--\r\n"
    ).encode()


def xarf(ip: str, *, report_type: str = "spam", when: str = "2026-12-06T06:30:00Z") -> bytes:
    """An X-ARF v0.2 report about ``ip``."""
    return (
        "From: <abuse-reports@other.example>\r\n"
        "To: <abuse@example.net>\r\n"
        f"Subject: abuse report about {ip}\r\n"
        "Date: Sun, 06 Dec 2026 07:00:00 +0000\r\n"
        "X-ARF: YES\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="xb"\r\n'
        "\r\n"
        "--xb\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        f"Dear abuse team, {ip} sent us spam.\r\n"
        "--xb\r\n"
        'Content-Type: text/plain; charset=utf-8; name="report.txt"\r\n'
        "\r\n"
        "---\r\n"
        "Reported-From: abuse-reports@other.example\r\n"
        "Category: abuse\r\n"
        f"Report-Type: {report_type}\r\n"
        "Service: smtp\r\n"
        "Version: 0.2\r\n"
        "User-Agent: OtherNet reporter\r\n"
        f"Date: '{when}'\r\n"
        f"Source: {ip}\r\n"
        "Source-Type: ipv4\r\n"
        "Port: 25\r\n"
        "--xb\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n" + ORIGINAL.format(msgid=f"x-{ip}@shop.example") + "\r\n"
        "--xb--\r\n"
    ).encode()


DRONE_CSV = (
    '"timestamp","ip","port","asn","geo","region","city","hostname","type","infection",'
    '"url","agent","cc","cc_port"\n'
    '"2026-12-06 05:01:02","10.1.2.3",1034,64500,"XX","","","","tcp","necurs","","","","80"\n'
    '"2026-12-06 05:03:00","10.1.2.3",1035,64500,"XX","","","","tcp","necurs","","","","80"\n'
    '"2026-12-06 05:04:00","198.51.100.9",4444,64501,"YY","","","","tcp","mirai","","","",""\n'
    '"not a time","10.1.2.4",1,1,"","","","","","x","","","",""\n'
)
SINKHOLE_CSV = (
    "timestamp,protocol,src_ip,src_port,dst_ip,dst_port,infection,tag\n"
    "2026-12-06T05:10:00Z,tcp,10.1.2.3,50000,192.0.2.80,80,andromeda,sinkhole\n"
)
