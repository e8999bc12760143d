"""`seawall demo`'s summary line says what the table shows: ham greylisted is not hidden."""

from __future__ import annotations

from collections import Counter

from seawall.demo import at_the_actions


def test_ham_held_back_is_named_beside_the_share_flagged() -> None:
    table = Counter({("ham", "no action"): 688, ("ham", "greylist"): 1, ("spam", "reject"): 300})
    line = at_the_actions(table, 0.9712, 0.0)
    assert line == (
        "  at the default actions: 97.1% of spam flagged (add header or worse), 0.00% of ham"
        " flagged; 1 ham greylisted (delayed, not flagged)"
    )
    table[("ham", "soft reject")] = 2
    assert at_the_actions(table, 0.9712, 0.0).endswith(
        "; 1 ham greylisted, 2 ham soft rejected (delayed, not flagged)"
    )


def test_nothing_is_added_when_no_ham_was_held_back() -> None:
    table = Counter({("ham", "no action"): 10, ("ham", "add header"): 1, ("spam", "greylist"): 4})
    assert at_the_actions(table, 0.5, 0.0909).endswith("9.09% of ham flagged")
