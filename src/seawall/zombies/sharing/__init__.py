"""Sharing with other networks: the DNS zone of active zombies and abuse reports (ARF, X-ARF).

zone.py   the rbldnsd ip4set zone, rewritten atomically, entries expiring
arf.py    ARF (RFC 5965/6650) and X-ARF reports to the abuse contacts of external zombies
"""
