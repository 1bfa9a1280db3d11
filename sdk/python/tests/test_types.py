"""mypy refuses what the API would refuse: misspelt fields, missing ones, unknown values."""

from __future__ import annotations

from pathlib import Path

from mypy import api

GOOD = """
from iof import IOFClient
client = IOFClient()
journey = client.omni.journeys.create(template_id="t", customer_id="c", channel="web",
                                      context={"anything": {"goes": ["here"]}})
journey_id: str = journey.id
client.omni.journeys.advance(journey_id, completed_step_id="step_kyc", step_outcome="passed")
for item in client.omni.timeline.get(entity_id="c", entity_type="customer"):
    item.event_type.upper()
"""

BAD = {
    "misspelt field": 'client.omni.journeys.create(template_id="t", customer_id="c", asignee_id="u")',
    "missing field": 'client.omni.journeys.advance("j", step_outcome="passed")',
    "unknown value": 'client.omni.journeys.advance("j", completed_step_id="s", step_outcome="maybe")',
    "unknown entity": 'client.omni.timeline.get(entity_id="x", entity_type="planet")',
    "no such attribute": 'client.omni.journeys.get("j").template_name',
}


def check(tmp_path: Path, source: str) -> tuple[str, int]:
    path = tmp_path / "snippet.py"
    path.write_text(source)
    cache = Path(__file__).resolve().parents[3] / "target" / "mypy-cache"
    out, err, status = api.run([str(path), "--cache-dir", str(cache), "--no-error-summary"])
    return out + err, status


def test_good_calls_type_check(tmp_path: Path) -> None:
    out, status = check(tmp_path, GOOD)
    assert status == 0, out


def test_bad_calls_do_not(tmp_path: Path) -> None:
    for what, line in BAD.items():
        out, status = check(tmp_path, "from iof import IOFClient\nclient = IOFClient()\n" + line + "\n")
        assert status == 1 and "error" in out, f"{what}: {out}"


def test_the_package_itself_type_checks() -> None:
    package = Path(__file__).resolve().parents[1] / "iof"
    cache = Path(__file__).resolve().parents[3] / "target" / "mypy-cache"
    out, err, status = api.run([str(package), "--cache-dir", str(cache)])
    assert status == 0, out + err
