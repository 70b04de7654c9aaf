"""The living specification for SECAS: which scenarios prove each MP134B requirement, and
whether they pass today, as one self-contained HTML page and a Markdown twin.

The source is pytest-bdd's own cucumber JSON (``--cucumberjson``), not a second reading of
the Gherkin: what the page shows is what ran.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from solr_policy import __version__
from solr_policy.policy import PolicySet
from solr_policy.readings import GLOSSARY, READINGS
from solr_policy.readings import markdown as readings_markdown
from solr_policy.requirements import REQUIREMENTS, tag

PROJECT = Path(__file__).resolve().parents[1]


class SpecReportError(Exception):
    """The features could not be run, or their results read: no report, one line saying why."""


@dataclass
class Scenario:
    name: str
    feature: str
    uri: str
    line: int
    passed: bool
    steps: list[tuple[str, str]]  # (keyword + text, status) of the first failing (or first) run
    runs: int = 1  # a Scenario Outline runs once per example row
    runs_passed: int = 1


@dataclass
class RequirementStatus:
    code: str
    text: str
    scenarios: list[Scenario] = field(default_factory=list)

    @property
    def passing(self) -> int:
        return sum(s.passed for s in self.scenarios)

    @property
    def runs(self) -> tuple[int, int]:
        return sum(s.runs_passed for s in self.scenarios), sum(s.runs for s in self.scenarios)

    @property
    def state(self) -> str:
        if not self.scenarios or self.passing == 0:
            return "red"
        return "green" if self.passing == len(self.scenarios) else "amber"


def run_features(cucumber_json: Path, *, project: Path = PROJECT) -> int:
    """Run the Gherkin specifications with pytest-bdd, writing cucumber JSON; pytest's own
    output goes to ``pytest.log`` beside it (what to read when the features did not run)."""
    cucumber_json.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(project) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, "-m", "pytest", "tests/bdd", "-q", "-p", "no:cacheprovider", f"--cucumberjson={cucumber_json.resolve()}"]
    with pytest_log(cucumber_json).open("wb") as log:
        return subprocess.run(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def pytest_log(cucumber_json: Path) -> Path:
    return cucumber_json.with_name("pytest.log")


def read_results(cucumber_json: Path) -> dict[str, RequirementStatus]:
    try:
        features = json.loads(Path(cucumber_json).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecReportError(f"cannot read {cucumber_json}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SpecReportError(f"{cucumber_json} is not cucumber JSON ({exc})") from None
    if not isinstance(features, list):
        raise SpecReportError(f"{cucumber_json} is not cucumber JSON (a list of features)")
    statuses = {code: RequirementStatus(code, text) for code, text in REQUIREMENTS.items()}
    seen: dict[tuple[str, int], Scenario] = {}
    for feature in features:
        for element in feature.get("elements", []):
            if element.get("type") != "scenario":
                continue
            tags = {t["name"].lstrip("@") for t in element.get("tags", [])}
            steps = [(f"{s['keyword']} {s['name']}", s.get("result", {}).get("status", "skipped")) for s in element.get("steps", [])]
            passed = bool(steps) and all(status == "passed" for _, status in steps)
            key = (feature.get("uri", ""), element.get("line", 0))
            if key in seen:  # another example row of the same Scenario Outline
                known = seen[key]
                known.runs += 1
                known.runs_passed += passed
                if known.passed and not passed:
                    known.steps = steps
                known.passed = known.passed and passed
                continue
            scenario = Scenario(
                name=element["name"],
                feature=feature["name"],
                uri=feature.get("uri", ""),
                line=element.get("line", 0),
                passed=passed,
                steps=steps,
                runs_passed=int(passed),
            )
            seen[key] = scenario
            for code in statuses:
                if tag(code) in tags:
                    statuses[code].scenarios.append(scenario)
    # pytest-bdd writes the features in no useful order: a reader finds the requirement's own
    # feature files (R4_*.feature for R4) first, then the others, each in the order it is written.
    for code, status in statuses.items():
        status.scenarios.sort(key=lambda s: (not Path(s.uri).name.startswith(code + "_"), s.uri, s.line))
    return statuses


def _policies(policy_dir: Path) -> list[tuple[str, str, list[str]]]:
    policies = PolicySet.load_dir(policy_dir)
    return [
        (Path(policies.sources[code]).name, f"{p.role.name} ({code}) - {p.policy} v{p.version}", [f"{srv} {rule.name}" for srv, rule in p.srvs.items()])
        for code, p in sorted(policies.by_role.items())
    ]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2733;line-height:1.45}
h1{margin-bottom:.2rem} .meta{color:#5b6673;margin-bottom:1.5rem}
table{border-collapse:collapse;width:100%;margin:1rem 0 2rem} th,td{border:1px solid #d5dbe1;padding:.45rem .6rem;vertical-align:top;text-align:left}
th{background:#f1f4f7} .green{background:#e3f4e6} .amber{background:#fff4d6} .red{background:#fbe0e0;color:#8a1212;font-weight:600}
.pill{display:inline-block;border-radius:999px;padding:.05rem .55rem;font-size:.85rem;font-weight:600}
.pill.pass{background:#2e7d32;color:#fff} .pill.fail{background:#c62828;color:#fff} .pill.reading{background:#ef6c00;color:#fff}
details{margin:.2rem 0} summary{cursor:pointer} .steps{font-family:ui-monospace,Menlo,monospace;font-size:.85rem;color:#37414b;margin:.3rem 0 .3rem 1rem}
.req{font-weight:600;white-space:nowrap} small{color:#5b6673}
"""


def render_html(statuses: dict[str, RequirementStatus], policies: list[tuple[str, str, list[str]]], *, generated: datetime) -> str:
    e = html.escape
    rows = []
    for status in statuses.values():
        verdict = {"green": "all scenarios pass", "amber": "some scenarios fail", "red": "NOT PROVEN: no passing scenario"}[status.state]
        items = []
        for s in status.scenarios:
            pill = '<span class="pill pass">pass</span>' if s.passed else '<span class="pill fail">fail</span>'
            steps = "<br>".join(f"{e(text)}" + ("" if st == "passed" else f" <b>[{e(st)}]</b>") for text, st in s.steps)
            runs = f" <small>{s.runs_passed} of {s.runs} examples pass</small>" if s.runs > 1 else ""
            items.append(f"<details><summary>{pill} {e(s.name)}{runs} <small>({e(s.uri)}:{s.line})</small></summary><div class='steps'>{steps}</div></details>")
        rows.append(
            f"<tr class='{status.state}'><td class='req'>{e(status.code)}</td><td>{e(status.text)}<br><small>{e(verdict)}: "
            f"{status.passing} of {len(status.scenarios)} passing</small></td><td>{''.join(items) or '<i>no scenario</i>'}</td></tr>"
        )
    policy_rows = "".join(
        f"<tr><td>{e(name)}</td><td>{e(role)}</td><td>{'<br>'.join(e(s) for s in srvs)}</td></tr>" for name, role, srvs in policies
    )
    readings = "".join(
        f"<tr><td>{e(r.topic)}</td><td class='req'>{e(r.requirement)}</td><td>{e(r.sec_text)}</td>"
        f"<td><span class='pill reading'>this project's reading</span> {e(r.our_reading)}</td><td>{e(r.question)}</td></tr>"
        for r in READINGS
    )
    glossary = "".join(f"<tr><td><b>{e(term)}</b></td><td>{e(text)}</td></tr>" for term, text in GLOSSARY.items())
    unique = {(sc.uri, sc.line): sc for s in statuses.values() for sc in s.scenarios}
    total = len(unique)
    passing = sum(sc.passed for sc in unique.values())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>solr-policy: MP134B specification report</title>
<style>{_CSS}</style></head><body>
<h1>MP134B SoLR Contingency User Role: specification report</h1>
<div class="meta">solr-policy {e(__version__)} &middot; generated {e(generated.strftime('%Y-%m-%d %H:%M UTC'))} &middot;
{passing} of {total} scenarios passing. Each requirement lists the Gherkin scenarios (in <code>features/</code>) that prove it;
a requirement with no passing scenario is shown in red.</div>
<table><thead><tr><th>Req.</th><th>Business requirement</th><th>Scenarios (click for the steps)</th></tr></thead><tbody>
{''.join(rows)}
</tbody></table>
<h2>Policies in force</h2>
<table><thead><tr><th>File</th><th>User Role</th><th>Allowed SRVs</th></tr></thead><tbody>{policy_rows}</tbody></table>
<h2>SEC text and this project's reading</h2>
<p>No public MP134B document was found beyond its working-group summary. Each row says what public text says, what the
engine does (<b>this project's reading</b>), and the question for SECAS.</p>
<table><thead><tr><th>Topic</th><th>Req.</th><th>SEC text</th><th>This project's reading</th><th>Open question for SECAS</th></tr></thead>
<tbody>{readings}</tbody></table>
<h2>Glossary</h2>
<table><tbody>{glossary}</tbody></table>
</body></html>
"""


def render_markdown(statuses: dict[str, RequirementStatus], policies: list[tuple[str, str, list[str]]], *, generated: datetime) -> str:
    lines = [
        "# MP134B SoLR Contingency User Role: specification report",
        "",
        f"solr-policy {__version__}, generated {generated.strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        "| Req. | Status | Passing | Requirement |",
        "| --- | --- | --- | --- |",
    ]
    for s in statuses.values():
        mark = {"green": "PASS", "amber": "PARTLY FAILING", "red": "**NOT PROVEN**"}[s.state]
        lines.append(f"| {s.code} | {mark} | {s.passing}/{len(s.scenarios)} | {s.text} |")
    for s in statuses.values():
        lines += ["", f"## {s.code}", "", s.text, ""]
        lines += [
            f"- {'pass' if sc.passed else '**FAIL**'}: {sc.name}" + (f" ({sc.runs_passed}/{sc.runs} examples)" if sc.runs > 1 else "") + f" (`{sc.uri}:{sc.line}`)"
            for sc in s.scenarios
        ] or ["- no scenario"]
    lines += ["", "## Policies in force", "", "| File | User Role | Allowed SRVs |", "| --- | --- | --- |"]
    lines += [f"| {name} | {role} | {', '.join(srvs)} |" for name, role, srvs in policies]
    lines += ["", "## SEC text and this project's reading", "",
              "No public MP134B document was found beyond its working-group summary.", "", readings_markdown()]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, *, cucumber_json: Path | None = None, policy_dir: Path | None = None) -> tuple[Path, dict[str, RequirementStatus]]:
    """Run the features (unless ``cucumber_json`` is given) and write ``spec-report.html`` and ``.md``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if cucumber_json is None:
        cucumber_json = out_dir / "cucumber.json"
        # A previous run's results (and the pages made from them) must never stand in for this one's.
        for previous in (cucumber_json, out_dir / "spec-report.html", out_dir / "spec-report.md"):
            previous.unlink(missing_ok=True)
        code = run_features(cucumber_json)
        # pytest's 0 and 1: the features ran (all passed, some failed); 2-5: interrupted, an
        # internal or usage error, nothing collected: there are no results to report.
        if code not in (0, 1) or not cucumber_json.exists():
            raise SpecReportError(f"the features did not run (pytest exit status {code}): see {pytest_log(cucumber_json)}")
    statuses = read_results(cucumber_json)
    policies = _policies(policy_dir or PROJECT / "policies")
    generated = datetime.now(timezone.utc)
    page = out_dir / "spec-report.html"
    page.write_text(render_html(statuses, policies, generated=generated), encoding="utf-8")
    (out_dir / "spec-report.md").write_text(render_markdown(statuses, policies, generated=generated), encoding="utf-8")
    return page, statuses
