"""Screenshots of every dashboard view at desktop (1280 px) and phone (390 px) width into docs/screenshots/, over the
demo data (benchmarks/dashboard_demo.py) in Debian's Chromium:

    .venv/bin/python -m benchmarks.dashboard_screenshots
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from selenium.webdriver.common.by import By

from benchmarks.dashboard_demo import Demo, served_demo
from tests.support.browser import DESKTOP, PHONE, shown, sign_in, start_chromium, wait_for

OUT = Path(__file__).resolve().parents[1] / "docs" / "screenshots"


def views(demo: Demo) -> dict[str, tuple[str, str]]:
    """name -> (fragment, what shows once it is drawn)"""
    return {
        "today": (f"today?date={demo.day}", "section.metric"),
        "trends": (f"trends?metric=STEPS&period=day&days=30&end={demo.day}&hour={demo.day}", "#hour-chart .main-svg"),
        "why": (f"why?date={demo.day}&metric=STEPS", "#why-chart .main-svg"),
        "insights": ("insights", "#active-list"),
        "devices": ("devices", "#priority-list li"),
        "sharing": ("sharing", "main h1"),
    }


def main(argv: Sequence[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with served_demo() as demo:
        for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            driver = start_chromium(size)
            try:
                sign_in(driver, demo.base, demo.key)
                for name, (fragment, ready) in views(demo).items():
                    driver.set_window_size(*size)
                    driver.get(f"{demo.base}/#/{fragment}")
                    shown(driver, ready)
                    height = driver.execute_script("return document.documentElement.scrollHeight")
                    driver.set_window_size(size[0], max(size[1], min(int(height) + 140, 4000)))
                    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete")
                    driver.execute_script("window.scrollTo(0, 0)")
                    path = args.out / f"{name}-{size_name}.png"
                    driver.find_element(By.TAG_NAME, "body").screenshot(str(path))
                    written.append(path)
                    print(f"wrote {path}", flush=True)
            finally:
                driver.quit()
    return written


if __name__ == "__main__":
    main()
