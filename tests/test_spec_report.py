"""The SECAS specification report: every requirement has scenarios, and the page says so."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pytest_bdd.feature import get_features

from solr_policy.requirements import REQUIREMENTS, tag
from solr_policy.spec_report import read_results, render_html, render_markdown, run_features, write_report

PROJECT = Path(__file__).resolve().parents[1]
FEATURES = PROJECT / "features"


def test_every_requirement_has_scenarios_and_every_scenario_a_requirement():
    # Read with pytest-bdd's own parser, not by hand.
    features = get_features([str(FEATURES)])
    by_requirement: dict[str, int] = {code: 0 for code in REQUIREMENTS}
    for feature in features:
        for scenario in feature.scenarios.values():
            tags = scenario.tags
            matched = [code for code in REQUIREMENTS if tag(code) in tags]
            assert matched, f"{feature.filename}: scenario {scenario.name!r} carries no @MP134B-Rn tag"
            for code in matched:
                by_requirement[code] += 1
    missing = [code for code, count in by_requirement.items() if count == 0]
    assert not missing, f"requirements with no scenario: {missing}"


def test_features_open_with_their_requirement_and_hide_technical_detail():
    for feature in get_features([str(FEATURES)]):
        codes = [c for c in REQUIREMENTS if tag(c) in feature.tags]
        assert codes, f"{feature.filename} has no requirement tag"
        for scenario in feature.scenarios.values():
            for step in scenario.steps:
                text = re.sub(r"<[a-z_ ]+>", "", step.name)  # Scenario Outline placeholders are fine
                for forbidden in ("sr:", "<", "0x", "R5.", "R6.", "E12", "90-B3", "xpath", "/"):
                    assert forbidden not in text, f"{feature.filename}: step {text!r} shows technical detail {forbidden!r}"


def _cucumber(tmp_path: Path, results: dict[str, list[bool]]) -> Path:
    elements = []
    for n, (code, outcomes) in enumerate(results.items()):
        for i, passed in enumerate(outcomes):
            elements.append(
                {
                    "type": "scenario",
                    "name": f"{code} scenario {i}",
                    "line": 100 * n + i,
                    "tags": [{"name": tag(code), "line": 1}],
                    "steps": [{"keyword": "Then", "name": "it works", "result": {"status": "passed" if passed else "failed"}}],
                }
            )
    path = tmp_path / "cucumber.json"
    path.write_text(json.dumps([{"name": "F", "uri": "features/f.feature", "elements": elements}]))
    return path


def test_outline_examples_count_as_one_scenario(tmp_path):
    path = _cucumber(tmp_path, {"R1": [True]})
    data = json.loads(path.read_text())
    data[0]["elements"].append({**data[0]["elements"][0], "steps": [{"keyword": "Then", "name": "x", "result": {"status": "failed"}}]})
    path.write_text(json.dumps(data))
    scenario = read_results(path)["R1"].scenarios
    assert len(scenario) == 1 and (scenario[0].runs, scenario[0].runs_passed, scenario[0].passed) == (2, 1, False)


def test_a_requirement_lists_its_own_features_first_each_in_written_order(tmp_path):
    def feature(uri: str, *lines: int) -> dict:
        scenarios = [{"type": "scenario", "name": f"{uri}:{line}", "line": line, "tags": [{"name": tag("R2"), "line": 1}],
                      "steps": [{"keyword": "Then", "name": "it works", "result": {"status": "passed"}}]} for line in lines]
        return {"name": uri, "uri": uri, "elements": scenarios}

    path = tmp_path / "cucumber.json"
    order = [feature("features/R6_governance.feature", 20, 9), feature("features/R2_certificates.feature", 30, 12), feature("features/R1_readings.feature", 5)]
    path.write_text(json.dumps(order))
    assert [s.name for s in read_results(path)["R2"].scenarios] == [
        "features/R2_certificates.feature:12", "features/R2_certificates.feature:30",
        "features/R1_readings.feature:5", "features/R6_governance.feature:9", "features/R6_governance.feature:20",
    ]


def test_a_requirement_without_passing_scenarios_is_red(tmp_path):
    statuses = read_results(_cucumber(tmp_path, {"R1": [True, True], "R2": [False], "R3": [True, False]}))
    assert statuses["R1"].state == "green"
    assert statuses["R2"].state == "red"
    assert statuses["R3"].state == "amber"
    assert statuses["R7"].state == "red" and statuses["R7"].scenarios == []
    from datetime import datetime, timezone

    page = render_html(statuses, [("p.yaml", "Role", ["1.6 Update Payment Mode"])], generated=datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert "<tr class='red'><td class='req'>R2</td>" in page
    assert "NOT PROVEN" in page and "2026-11-22" in page and "1.6 Update Payment Mode" in page
    markdown = render_markdown(statuses, [], generated=datetime(2026, 11, 22, tzinfo=timezone.utc))
    assert "| R2 | **NOT PROVEN** | 0/1 |" in markdown


def test_report_from_a_real_run_of_the_features(tmp_path):
    cucumber = tmp_path / "cucumber.json"
    assert run_features(cucumber) == 0
    page, statuses = write_report(tmp_path / "out", cucumber_json=cucumber)
    assert all(s.state == "green" for s in statuses.values()), {c: s.state for c, s in statuses.items()}
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "http" not in html.split("</style>")[0]  # self-contained
    assert (tmp_path / "out" / "spec-report.md").exists()
    for code in REQUIREMENTS:
        assert f"<td class='req'>{code}</td>" in html


def test_the_readme_readings_are_the_reports_own():
    from solr_policy.readings import GLOSSARY, READINGS, markdown

    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n", readme.index("<!-- readings:begin")) + 1
    assert readme[start : readme.index("<!-- readings:end")] == markdown()
    for term in ("SRV", "CV", "ADT", "SRO", "ARO", "SRP", "SMETS", "GBCS", "Pre-Command", "I99", "E1", "E4", "E12", "AD1"):
        assert term in GLOSSARY
    assert {r.topic for r in READINGS} >= {"Role code SC", "The 1.6-only allowlist", "ADT rules for the role", "Cancellations", "Pre-Command signers", "File formats"}


def test_the_report_marks_each_reading_with_its_question(tmp_path):
    from solr_policy.readings import READINGS
    from solr_policy.spec_report import _policies

    statuses = read_results(_cucumber(tmp_path, {code: [True] for code in REQUIREMENTS}))
    generated = __import__("datetime").datetime(2026, 11, 22)
    page = render_html(statuses, _policies(PROJECT / "policies"), generated=generated)
    text = render_markdown(statuses, _policies(PROJECT / "policies"), generated=generated)
    assert page.count("this project's reading</span>") == len(READINGS)
    for reading in READINGS:
        assert reading.question.replace('"', "&quot;").replace("'", "&#x27;") in page and reading.question in text
    assert "<h2>Glossary</h2>" in page and "| Pre-Command |" in text


def test_features_that_do_not_run_give_no_report_not_the_last_runs(tmp_path, monkeypatch):
    """A stale cucumber.json must never stand in for this run's results: when pytest writes
    none (not installed, no tests/bdd beside the package), there is no report, and one line says why."""
    from click.testing import CliRunner

    from solr_policy import spec_report
    from solr_policy.cli import cli

    out = tmp_path / "out"
    write_report(out, cucumber_json=_cucumber(tmp_path, {code: [True] for code in REQUIREMENTS}))
    (out / "cucumber.json").write_text((tmp_path / "cucumber.json").read_text())  # the last run's, all green
    # The real runner, on a folder with no features in it.
    monkeypatch.setattr(spec_report, "run_features", lambda path: run_features(path, project=tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli, ["spec", "report", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "no report: the features did not run (pytest exit status" in result.output and "pytest.log" in result.output
    assert "Traceback" not in result.output and "R1  green" not in result.output
    assert not (out / "spec-report.html").exists() and not (out / "spec-report.md").exists()  # not the last run's pages
    assert "tests/bdd" in (out / "pytest.log").read_text()  # pytest's own words, kept for the operator


def test_an_unreadable_cucumber_json_is_one_line(tmp_path):
    from click.testing import CliRunner

    from solr_policy.cli import cli

    for text in ("{not json", '{"a": 1}'):
        given = tmp_path / "given.json"
        given.write_text(text)
        result = CliRunner().invoke(cli, ["spec", "report", "--out", str(tmp_path / "out"), "--from-json", str(given)])
        assert result.exit_code == 2 and "is not cucumber JSON" in result.output, result.output
        assert "Traceback" not in result.output
