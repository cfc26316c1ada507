"""Every attack on the update path is refused with its typed error while the device serves
(tests/update_attacks.py holds the repository, the server and the attacks)."""

from __future__ import annotations

from tiny_bundle import TINY_ITEM_IDS
from update_attacks import ATTACKS, run_attack_suite

pytest_plugins = ["conftest_bundle"]


def test_every_attack_is_refused_while_the_device_keeps_serving(tmp_path, tiny_bundle_dir,
                                                                  other_bundle_dir):
    result = run_attack_suite(tmp_path, tiny_bundle_dir, other_bundle_dir,
                              history=TINY_ITEM_IDS[2:6])
    outcomes = {o.name: o for o in result["outcomes"]}
    assert list(outcomes) == [attack.name for attack in ATTACKS]
    for attack in ATTACKS:
        outcome = outcomes[attack.name]
        assert outcome.refused, f"{attack.name}: expected {attack.refused_with.__name__}, got {outcome.error}: {outcome.reason}"
        assert outcome.state_kept, f"{attack.name}: the device's bundle or files changed"
    assert result["attacks_refused"] == result["attacks_tried"] == len(ATTACKS)
    assert result["request_failures"] == 0
    assert result["requests_served"] > 0
