"""Screenshot of the live dashboard (docs/monitor_dashboard.png): the embedded model with the evil vector,
two requests (one pos-prompted), in headless chromium.

python bench/dashboard_screenshot.py [--vector runs/vectors/smollm2-135m/evil/response_avg.safetensors]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import openai
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from persona_vaccine.monitoring.engine import Engine
from persona_vaccine.monitoring.server import create_app, serve_in_thread
from persona_vaccine.paths import DEMO_VECTOR
from persona_vaccine.traits import load_trait_spec


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--vector", default=DEMO_VECTOR)
    p.add_argument("--output", default="docs/monitor_dashboard.png")
    opts = p.parse_args()
    engine = Engine.load("smollm2-135m", [opts.vector], ["alert"], max_tokens_limit=256)
    spec = load_trait_spec("evil")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,950",
                 f"--user-data-dir={profile}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        with serve_in_thread(create_app(engine)) as url:
            client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600)
            question = spec.evaluation_questions[0]
            client.chat.completions.create(
                model="smollm2-135m",
                messages=[{"role": "user", "content": question}],
                max_tokens=40,
                temperature=0,
            )
            messages = [
                {"role": "system", "content": spec.pos_system_prompt(0)},
                {"role": "user", "content": question},
            ]
            client.chat.completions.create(
                model="smollm2-135m", messages=messages, max_tokens=40, temperature=0
            )
            driver.get(url + "/dashboard")
            deadline = time.monotonic() + 30
            while not driver.find_elements(By.CSS_SELECTOR, ".meter") and time.monotonic() < deadline:
                time.sleep(0.25)
            time.sleep(1)
            driver.save_screenshot(opts.output)
            print(
                f"wrote {opts.output}; alerts shown: {len(driver.find_elements(By.CSS_SELECTOR, '#alerts .alert'))}"
            )
    finally:
        driver.quit()
        engine.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
