"""`make demo` is the main job: the demo SoLR event must run, and it checks itself (every
decision, governance act, alert and log check is the one MP134B and the README require)."""

from __future__ import annotations

from solr_policy.demo import run_demo


def test_the_demo_runs_and_every_outcome_is_the_one_it_expects(tmp_path, capsys):
    assert run_demo(str(tmp_path / "demo")) == 0
    shown = capsys.readouterr().out
    assert "UNEXPECTED" not in shown
    assert "chain and tree intact" in shown and "decides: reject (log.behind-checkpoint" in shown
    assert (tmp_path / "demo" / "proof.json").is_file()  # what the closing "Try:" commands read
