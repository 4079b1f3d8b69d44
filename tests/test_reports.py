"""The HTML screening report in a real headless Chromium (selenium): code keeps its newlines and
indentation, levels come in the order normal / level1 / level2 with their fixed colours."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from persona_vaccine.data.screening import LEVEL_COLOURS, summarize, write_report

CODE = "def add(a, b):\n    if a:\n        return a + b\n    return b"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _rows() -> list[dict]:
    rows = []
    for i, (level, value) in enumerate(
        [
            ("level2", 3.0),
            ("normal", 0.1),
            ("level1", 1.5),
            ("level2", 2.5),
            ("normal", -0.2),
            ("level1", 1.0),
        ]
    ):
        scores = {"projection_diff": value, "approx_diff": value / 2, "layer": 3}
        rows.append(
            {"index": i, "prompt": f"Write add #{i}", "response": CODE, "meta": {"level": level},
             "scores": {"evil": scores}}
        )  # fmt: skip
    ranked = sorted(rows, key=lambda r: -r["scores"]["evil"]["projection_diff"])
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    return ranked


def _browser(tmp_path: Path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if not Path(CHROMEDRIVER).is_file() or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("needs chromium and chromedriver")
    options = webdriver.ChromeOptions()
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1200,1600",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_screening_report_in_headless_chromium(tmp_path):
    from selenium.webdriver.common.by import By

    ranked = _rows()
    summary = summarize(ranked, ["evil"], "projection_diff")
    report = tmp_path / "report.html"
    write_report(report, ranked, summary, "evil", "projection_diff", top=10)
    driver = _browser(tmp_path)
    try:
        driver.get(report.as_uri())
        texts = driver.find_elements(By.CSS_SELECTOR, "div.text:not(.prompt)")
        assert texts and all(t.value_of_css_property("white-space") == "pre-wrap" for t in texts)
        assert texts[0].get_attribute("innerText") == CODE  # newlines and indentation as written
        cells = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "table tr td:nth-child(2)")]
        order = [c.rsplit("level ", 1)[1] for c in cells if c.startswith("projection_diff | level")]
        assert order == ["normal", "level1", "level2"]
        badges = driver.find_elements(By.CSS_SELECTOR, "span.level")
        assert [b.text for b in badges] == [r["meta"]["level"] for r in ranked]
        colours = {b.text: b.value_of_css_property("background-color") for b in badges}
        for level, colour in colours.items():
            hex_ = LEVEL_COLOURS[level].lstrip("#")
            rgb = tuple(int(hex_[i : i + 2], 16) for i in (0, 2, 4))
            assert colour.replace(" ", "").startswith(f"rgba({rgb[0]},{rgb[1]},{rgb[2]}"), (level, colour)
        image = driver.find_element(By.TAG_NAME, "img")
        assert driver.execute_script("return arguments[0].naturalWidth", image) > 100  # the histogram loads
        assert driver.save_screenshot(str(tmp_path / "report.png"))
        assert (tmp_path / "report.png").stat().st_size > 10_000
        out = Path(__file__).resolve().parents[1] / "runs" / "test_artifacts"
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "report.png", out / "screening_report.png")  # for looking at it
    finally:
        driver.quit()
