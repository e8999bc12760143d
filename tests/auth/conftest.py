"""The authoritative DNS server (NSD) and its per-test records, for every test here."""

from tests.auth.dns_server import auth_dns, dns_records

__all__ = ["auth_dns", "dns_records"]
