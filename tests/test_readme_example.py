"""The README's worked example (steps 4-6 of "A newcomer's path", issue 12 item 6): its one script runs verbatim in
an empty folder, prints exactly what the README shows below it, and the verdicts the README explains are those in
the store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from empirics.store import Store

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00")


def _example() -> tuple[str, str]:
    """(the script, the output the README shows for it): the only python block of steps 4-6 and the text block
    after it."""
    section = README.read_text().split("## A newcomer's path", 1)[1].split("\n## ", 1)[0]
    steps = section.split("**4–6.", 1)[1].split("**7.", 1)[0]
    (script,) = re.findall(r"^```python\n(.*?)^```$", steps, flags=re.S | re.M)
    (printed,) = re.findall(r"^```text\n(.*?)^```$", steps, flags=re.S | re.M)
    return script, printed


def test_readme_example_runs_verbatim_and_prints_what_the_readme_shows(tmp_path: Path) -> None:
    script, printed = _example()
    assert "one Python script" in README.read_text()
    (tmp_path / "ridge_example.py").write_text(script)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "UNITHEORY_PROGRESS": "0"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "ridge_example.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""  # not one warning
    assert _TIME.sub("<time>", done.stdout) == _TIME.sub("<time>", printed)
    with Store(tmp_path / "my-store", create=False) as store:
        assert len(store.runs()) == 18  # 6 ridge strengths x 3 seeds
        (payload,) = store.results("verdict")
    verdicts = {v["hypothesis"]: v for v in payload["verdicts"]}
    tests = payload["tests"]

    def row(hypothesis: str, test: str, role: str = "quantity", subject: str = "weight_sq") -> dict:
        (found,) = [t for t in tests if (t["hypothesis"], t["test"], t["role"], t["subject"], t["environment"])
                    == (hypothesis, test, role, subject, "all")]  # fmt: skip
        return found

    # the first claim is falsified by its Kendall row: significantly of the wrong sign after Holm
    falsified = verdicts["small-weights-low-test-loss"]
    kendall = row("small-weights-low-test-loss", "kendall")
    assert falsified["verdict"] == "falsified" and falsified["decided_by"]["test"] == "kendall"
    assert kendall["statistic"] < 0 and kendall["p_holm"] < 0.05 and kendall["outcome"] == "fail"
    explained = README.read_text().split("Both verdicts are the intended outcome", 1)[1].split("\n\n", 1)[0]
    assert f"τ = {kendall['statistic']:.3f}".replace("-", "−") in explained
    assert f"Holm-adjusted p against = {kendall['p_holm']:.3g}" in explained
    # the second passes both tests but does not beat the prime count, which decides it
    tied = verdicts["small-weights-high-train-loss"]
    assert tied["verdict"] == "inconclusive"
    decided = {"test": "kendall", "subject": "prime_count", "role": "comparison", "environment": "all"}
    assert tied["decided_by"] == decided
    assert {row("small-weights-high-train-loss", t)["outcome"] for t in ("kendall", "psi")} == {"pass"}
    comparison = row("small-weights-high-train-loss", "kendall", "comparison", "prime_count")
    assert comparison["low"] <= 0 < comparison["high"]
    assert (tmp_path / "reports" / "ridge" / "report.html").is_file()
