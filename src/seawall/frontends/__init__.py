"""Front ends: each translates one wire protocol to ``Scanner.check`` and renders the Verdict.

milter/   Sendmail/Postfix milter protocol v6 (codec + server)
spamd/    SpamAssassin's SPAMC/SPAMD protocol (codec + server)
http/     Rspamd-compatible /checkv2 and Seawall's JSON API (Starlette)
policy/   Postfix policy delegation (codec + server + rate windows)
render.py one function per wire: Verdict -> headers, replies, reports
"""
