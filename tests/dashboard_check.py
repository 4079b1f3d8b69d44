"""`python tests/dashboard_check.py URL PNG`: a running server's dashboard answers 200 (page and script)
and renders in headless chromium (its script connects and shows the model); writes a screenshot."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import urllib.request


def fetch_ok(url: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as response:
        body = response.read().decode()
        if response.status != 200 or not body.strip():
            raise SystemExit(f"{url}: status {response.status}, {len(body)} characters")


def render(url: str, png: str, timeout_s: float = 60.0) -> str:
    """Open the dashboard in headless chromium; the model name it shows once its script has connected."""
    from browser import headless_chromium
    from selenium.webdriver.common.by import By

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    driver = headless_chromium(profile)
    try:
        driver.get(url + "/dashboard")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = driver.find_element(By.ID, "status").text
            model = driver.find_element(By.ID, "model").text
            if "live" in status and model and model != "connecting...":
                driver.save_screenshot(png)
                return model
            time.sleep(0.5)
        raise SystemExit(f"the dashboard did not connect in {timeout_s:.0f} s: {driver.page_source[:500]}")
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main(url: str, png: str) -> int:
    fetch_ok(url + "/dashboard")
    fetch_ok(url + "/dashboard/dashboard.js")
    print(f"dashboard rendered for model {render(url, png)!r}: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
