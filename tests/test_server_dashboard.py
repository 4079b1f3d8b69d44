"""The live dashboard in a real headless chromium (selenium, Debian's chromium and chromedriver)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import openai
import pytest
from browser import CHROMEDRIVER, headless_chromium
from helpers import random_vector
from server_helpers import running

from persona_vaccine.monitoring.engine import Engine
from persona_vaccine.monitoring.server import create_app
from persona_vaccine.steering.vector import PersonaVector

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (shutil.which("chromium") and Path(CHROMEDRIVER).exists()),
        reason="needs chromium and chromedriver (apt-get install chromium chromium-driver; .ci/run does it)",
    ),
]


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError("timed out waiting for the dashboard")


def test_dashboard_shows_meters_tokens_and_alerts(tiny_chat_model, tiny_tokenizer, tmp_path):
    from selenium.webdriver.common.by import By

    evil = random_vector(tiny_chat_model, "evil", seed=3)
    syco = random_vector(tiny_chat_model, "sycophantic", seed=4)
    paths = [str(evil.save(tmp_path / "evil.safetensors")), str(syco.save(tmp_path / "syco.safetensors"))]
    vectors = [(PersonaVector.load(p), p) for p in paths]
    # evil alerts on every request, sycophantic never does
    engine = Engine(
        tiny_chat_model,
        tiny_tokenizer,
        vectors,
        {"evil": "cap", "sycophantic": "alert"},
        {"evil": (-1e3, -0.01), "sycophantic": (1e3, 1e3)},
        model_name="tiny",
        max_tokens_limit=64,
    )
    user_data = tempfile.mkdtemp(prefix="chromium-profile-")
    driver = None
    try:
        with running(create_app(engine, None)) as url:
            driver = headless_chromium(user_data)
            driver.get(url + "/dashboard")
            _wait(lambda: "live" in driver.find_element(By.ID, "status").text)
            assert not driver.find_elements(By.CSS_SELECTOR, "#alerts .alert")
            client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
            messages = [{"role": "user", "content": "Say something nice."}]
            first = client.chat.completions.create(
                model="tiny", messages=messages, max_tokens=12, temperature=0
            )
            follow_up = [*messages, {"role": "assistant", "content": first.choices[0].message.content}]
            follow_up.append({"role": "user", "content": "And now?"})
            client.chat.completions.create(model="tiny", messages=follow_up, max_tokens=12, temperature=0)
            meters = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".meter"))
            assert {m.get_attribute("id") for m in meters} == {"meter-evil", "meter-sycophantic"}
            assert _wait(lambda: driver.find_element(By.ID, "meter-evil").get_attribute("data-value"))
            alerts = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#alerts .alert"))
            assert {a.get_attribute("data-trait") for a in alerts} == {"evil"}
            assert {"early_warning", "running_mean"} <= {a.text.split()[1] for a in alerts}
            tokens = driver.find_elements(By.CSS_SELECTOR, "#answer .tok")
            assert len(tokens) >= 2
            assert "rgba" in tokens[0].value_of_css_property("background-color")
            assert len(driver.find_elements(By.CSS_SELECTOR, ".conv")) == 1  # one conversation, two requests
            assert _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".req")) == 2)  # the next poll
            rows = {
                r.find_elements(By.TAG_NAME, "td")[0].text: [
                    c.text for c in r.find_elements(By.TAG_NAME, "td")
                ]
                for r in driver.find_elements(By.CSS_SELECTOR, "#traits tr")[1:]
            }
            heads = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#traits th")]
            rolling = heads.index("alerts, last 50")
            assert rows["evil"][rolling] == "100.0%" and rows["sycophantic"][rolling] == "0.0%"
            assert driver.save_screenshot(str(tmp_path / "dashboard.png"))
    finally:
        if driver is not None:
            driver.quit()
        engine.close()
        shutil.rmtree(user_data, ignore_errors=True)
