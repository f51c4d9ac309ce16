"""The dashboard in Debian's Chromium against the API served by uvicorn, over the hand-written warehouse of
tests/support/read_api.py: what the page shows is what the API answers, and what it changes the API keeps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By

from api.main import create_app
from pipeline.accounts import register_device
from pipeline.catalog import METRICS
from pipeline.infra.database import psycopg_connection
from tests.support.browser import DESKTOP, PHONE, chromium_or_skip, console_errors, shown, sign_in, wait_for
from tests.support.read_api import ReadWorld
from tests.support.served import served

pytestmark = pytest.mark.slow
DAY = "2024-05-01"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium_or_skip() as driver:
        yield driver


@pytest.fixture(scope="module")
def base(world: ReadWorld, browser: webdriver.Chrome) -> Iterator[str]:
    with served(create_app(world.engine)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def signed_in(browser: webdriver.Chrome, base: str, world: ReadWorld) -> webdriver.Chrome:
    sign_in(browser, base, world.user_key)
    return browser


def api_get(base: str, key: str, path: str, **params: str) -> object:
    answer = httpx.get(base + path, params=params, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def open_view(driver: webdriver.Chrome, base: str, fragment: str, ready: str) -> None:
    driver.get(f"{base}/#/{fragment}")
    try:
        shown(driver, ready)
    except TimeoutException:
        main = driver.find_element(By.TAG_NAME, "main").text
        pytest.fail(f"#/{fragment}: {ready!r} not shown; the page shows {main!r}; console: {console_errors(driver)}")


def test_the_key_is_kept_in_session_storage_and_never_in_the_url(signed_in: webdriver.Chrome, world: ReadWorld) -> None:
    assert signed_in.execute_script("return sessionStorage.getItem('healthpipe.apiKey')") == world.user_key
    assert world.user_key not in signed_in.current_url
    assert signed_in.execute_script("return localStorage.length") == 0


def test_today_without_a_date_opens_on_the_latest_day_with_data_and_offers_today(
    signed_in: webdriver.Chrome, base: str, world: ReadWorld
) -> None:
    # the first user's data ends on 2 May 2024, long before the local today (and its yesterday): the view opens on
    # 2 May, its 9,000 steps, says why, and links to today
    open_view(signed_in, base, "today", "#today-fallback")
    assert signed_in.find_element(By.ID, "today-date").get_attribute("value") == "2024-05-02"
    # no sleep that day: the card says that time in bed alone is not sleep
    assert "in bed alone" in signed_in.find_element(By.CSS_SELECTOR, "section.sleep #sleep-counted").text
    steps = signed_in.find_element(By.CSS_SELECTOR, "section.metric[data-metric=STEPS] .value")
    assert steps.text == "9,000"
    today = dt.datetime.now(ZoneInfo("Europe/Amsterdam")).date().isoformat()
    note = signed_in.find_element(By.ID, "today-fallback")
    assert "latest day with data" in note.text and "2024" in note.text
    assert note.find_element(By.TAG_NAME, "a").get_attribute("href") == f"{base}/#/today?date={today}"
    note.find_element(By.TAG_NAME, "a").click()
    shown(signed_in, "main .card.wide.muted")  # today itself: "No data for this day."
    assert signed_in.find_element(By.ID, "today-date").get_attribute("value") == today
    assert not signed_in.find_elements(By.ID, "today-fallback")


def test_today_shows_the_numbers_the_api_answers(signed_in: webdriver.Chrome, base: str, world: ReadWorld) -> None:
    open_view(signed_in, base, f"today?date={DAY}", "section.metric")
    summary = api_get(base, world.user_key, "/v1/me/summary", date=DAY)
    assert isinstance(summary, dict)
    cards = {c.get_attribute("data-metric"): c for c in signed_in.find_elements(By.CSS_SELECTOR, "section.metric")}
    shown_metrics = [m for m in summary["metrics"] if m["metric"] != "SLEEP_ANALYSIS"]  # sleep has its own card
    assert sorted(cards) == sorted(m["metric"] for m in shown_metrics) == ["ACTIVE_ENERGY", "HEART_RATE", "STEPS"]
    for metric in shown_metrics:
        card = cards[metric["metric"]]
        value = card.find_element(By.CSS_SELECTOR, ".value")
        assert float(value.get_attribute("data-value") or "nan") == metric["value"]
        # a plain count shows no unit ("steps" for steps); the API's unit otherwise
        shown_unit = {"STEPS": "steps"}.get(metric["metric"], "" if metric["unit"] == "count" else metric["unit"])
        assert card.find_element(By.CSS_SELECTOR, ".unit").text == shown_unit
    # the hand-computed numbers of the first user's 1 May: 6,000 of a goal of 8,000 steps, one flagged sample
    steps = cards["STEPS"]
    assert steps.find_element(By.CSS_SELECTOR, ".value").text == "6,000"
    assert steps.find_element(By.CSS_SELECTOR, "[role=progressbar]").get_attribute("aria-valuenow") == "75"
    assert steps.find_element(By.CSS_SELECTOR, ".goal").text == "75 % of the goal of 8,000 steps"
    assert steps.find_element(By.CSS_SELECTOR, ".flag").text == "1 flagged value"
    assert cards["ACTIVE_ENERGY"].find_element(By.CSS_SELECTOR, ".goal").text.startswith("50 %")
    assert cards["HEART_RATE"].find_elements(By.CSS_SELECTOR, ".goal") == []
    sleep = signed_in.find_element(By.CSS_SELECTOR, "section.sleep")
    assert sleep.find_element(By.CSS_SELECTOR, ".value").text == "7 h 0 min"
    stages = {
        li.get_attribute("data-stage"): float(li.get_attribute("data-minutes") or "nan")
        for li in sleep.find_elements(By.CSS_SELECTOR, "li")
    }
    assert (
        stages
        == {s["stage"]: s["minutes"] for s in summary["sleep"]["stages"]}
        == {"core": 90, "deep": 100, "rem": 230}
    )
    score = signed_in.find_element(By.CSS_SELECTOR, "section.score")
    assert score.find_element(By.CSS_SELECTOR, ".value").text.startswith("72.5")
    components = {li.get_attribute("data-component"): li.text for li in score.find_elements(By.CSS_SELECTOR, "li")}
    assert components == {"activity": "activity: 60", "sleep": "sleep: 80", "vitals": "vitals: 77.5"}
    insights = signed_in.find_elements(By.CSS_SELECTOR, "section.insights li")
    assert [li.get_attribute("data-insight") for li in insights] == [str(world.active_insight)]
    # freshness: computed 2024-05-02 23:59 UTC = 3 May 01:59 in Amsterdam (CEST)
    freshness = signed_in.find_element(By.CSS_SELECTOR, ".freshness").text
    assert freshness.startswith("Data as of May 3, 2024, 01:59") and "Europe/Amsterdam" in freshness


def chart_traces(driver: webdriver.Chrome, chart_id: str) -> list[dict[str, object]]:
    wait_for(driver, lambda d: d.execute_script(f"return !!document.getElementById('{chart_id}')?.data"))
    return driver.execute_script(  # type: ignore[no-any-return]
        f"return document.getElementById('{chart_id}').data.map(t => ({{name: t.name, x: t.x, y: t.y}}))"
    )


def test_trends_draw_the_days_with_the_goal_line_and_flagged_values_and_the_hours_of_a_day(
    signed_in: webdriver.Chrome, base: str
) -> None:
    open_view(signed_in, base, f"trends?metric=STEPS&period=day&days=30&end=2024-05-02&hour={DAY}", "#trend-chart")
    traces = {t["name"]: t for t in chart_traces(signed_in, "trend-chart")}
    assert traces["Steps"]["x"] == ["2024-04-30", DAY, "2024-05-02"]
    assert traces["Steps"]["y"] == [3000, 6000, 9000]
    assert traces["goal"]["y"] == [8000, 8000, 8000]  # the user's own goal
    assert (traces["flagged values"]["x"], traces["flagged values"]["y"]) == ([DAY], [6000])
    # the end day's metrics first, then every other type of the catalogue (ACTIVE_ENERGY: only on 1 May)
    options = [o.get_attribute("value") for o in signed_in.find_elements(By.CSS_SELECTOR, "#trend-metric option")]
    assert sorted(options[:2]) == ["HEART_RATE", "STEPS"] and sorted(options) == sorted(METRICS)
    hours = {t["name"]: t for t in chart_traces(signed_in, "hour-chart")}
    assert hours["Steps"]["x"] == ["2024-05-01T08:00:00", "2024-05-01T09:00:00"]  # local wall-clock hours
    assert hours["Steps"]["y"] == [2500, 3500]
    # weekly: the ISO week of Monday 29 April holds 3,000 + 6,000 + 9,000, its goal line 7 x 8,000
    signed_in.get(f"{base}/#/trends?metric=STEPS&period=week&days=30&end=2024-05-02&hour={DAY}")
    wait_for(signed_in, lambda d: "Weekly" in d.find_element(By.CSS_SELECTOR, "main h2").text)
    weekly = {t["name"]: t for t in chart_traces(signed_in, "trend-chart")}
    assert weekly["Steps"]["y"][-1] == 18000 and weekly["goal (daily goal x days)"]["y"][-1] == 56000


def test_why_this_number_sets_what_the_sources_reported_against_what_was_kept(
    signed_in: webdriver.Chrome, base: str
) -> None:
    open_view(signed_in, base, f"why?date={DAY}&metric=STEPS", "#why-chart")
    rows = {
        r.get_attribute("data-source"): [td.text for td in r.find_elements(By.TAG_NAME, "td")]
        for r in signed_in.find_elements(By.CSS_SELECTOR, "main tbody tr")
    }
    assert rows == {
        "Watch": ["Watch", "watch", "5,000", "4,800", "80 %"],
        "Phone": ["Phone", "phone", "3,000", "1,200", "20 %"],
    }
    explained = signed_in.find_element(By.ID, "why-explained").text
    assert (
        "reported 8,000 steps together" in explained
        and "counts 6,000 steps (the day's value: 6,000 steps)" in explained
    )
    bars = {t["name"]: t["y"] for t in chart_traces(signed_in, "why-chart")}
    assert bars == {"Watch (watch)": [5000, 4800], "Phone (phone)": [3000, 1200]}


def test_acknowledging_an_insight_removes_it_from_the_active_list(
    signed_in: webdriver.Chrome, base: str, world: ReadWorld
) -> None:
    open_view(signed_in, base, "insights", "#active-list")
    item = signed_in.find_element(By.CSS_SELECTOR, f"#active-list li[data-insight='{world.active_insight}']")
    assert "step_goal_streak message" in item.text and "step_goal_streak advice" in item.text
    item.find_element(By.TAG_NAME, "button").click()
    shown(signed_in, f"#acknowledged-list li[data-insight='{world.active_insight}']")
    assert signed_in.find_elements(By.CSS_SELECTOR, "#active-list li") == []
    [insight] = api_get(base, world.user_key, "/v1/me/insights")  # type: ignore[misc]
    assert insight["id"] == str(world.active_insight) and insight["acknowledged"] is True
    open_view(signed_in, base, f"today?date={DAY}", "section.insights")
    assert signed_in.find_elements(By.CSS_SELECTOR, "section.insights li") == []


def test_a_source_priority_change_is_saved(signed_in: webdriver.Chrome, base: str, world: ReadWorld) -> None:
    before = api_get(base, world.user_key, "/v1/me/source-priority")
    assert isinstance(before, dict) and before["custom"] is False and before["order"][0] == "watch"
    # a device registered (or imported, as the demo's) but never synced reads "no sync yet", and the page says why
    with psycopg_connection(world.engine) as conn:
        register_device(conn, world.user, "trial-scale", "third_party_scale", "Kitchen scale")
    open_view(signed_in, base, "devices", "#priority-list")
    row = signed_in.find_element(By.CSS_SELECTOR, "#devices tr[data-device='trial-scale']")
    assert [td.text for td in row.find_elements(By.TAG_NAME, "td")] == ["Kitchen scale", "Scale or app", "no sync yet"]
    assert "imported" in signed_in.find_element(By.ID, "sync-note").text
    for _ in range(before["order"].index("phone")):
        signed_in.find_element(By.CSS_SELECTOR, "#priority-list li[data-class='phone'] button.up").click()
    signed_in.find_element(By.ID, "save-priority").click()
    wait_for(signed_in, lambda d: d.find_element(By.ID, "priority-message").text.startswith("Saved"))
    after = api_get(base, world.user_key, "/v1/me/source-priority")
    assert isinstance(after, dict) and after["custom"] is True
    assert after["order"] == ["phone"] + [c for c in before["order"] if c != "phone"]


VIEWS = {
    f"today?date={DAY}": "section.metric",
    f"trends?metric=STEPS&end=2024-05-02&hour={DAY}": "#trend-chart .main-svg",
    f"why?date={DAY}&metric=STEPS": "#why-chart .main-svg",
    "insights": "#active-list",
    "devices": "#priority-list li",
    "sharing": "main h1",
}


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_view_renders_without_console_errors_and_fits_the_width(
    signed_in: webdriver.Chrome, base: str, size: tuple[int, int]
) -> None:
    signed_in.set_window_size(*size)
    try:
        console_errors(signed_in)
        for fragment, ready in VIEWS.items():
            open_view(signed_in, base, fragment, ready)
            assert console_errors(signed_in) == [], fragment
            width = signed_in.execute_script("return document.documentElement.clientWidth")
            assert signed_in.execute_script("return document.documentElement.scrollWidth") <= width, fragment
        # the sources' table of Why this number fits its card, its last column not clipped
        open_view(signed_in, base, f"why?date={DAY}&metric=STEPS", "#why-chart .main-svg")
        wrap = signed_in.find_element(By.CSS_SELECTOR, "main section.card .table-wrap")
        assert signed_in.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", wrap)
    finally:
        signed_in.set_window_size(*DESKTOP)


def test_a_share_shows_only_its_types_and_dates_until_it_is_revoked(
    signed_in: webdriver.Chrome, base: str, world: ReadWorld
) -> None:
    open_view(signed_in, base, "sharing", "#share-form")
    signed_in.find_element(By.ID, "share-recipient").send_keys("Dr. Jansen")
    for field, value in (("share-start", "05/01/2024"), ("share-end", "05/01/2024")):
        signed_in.find_element(By.ID, field).send_keys(value)  # Chromium's date field takes the digits in order
    signed_in.find_element(By.CSS_SELECTOR, "input[data-type='STEPS']").click()
    signed_in.find_element(By.ID, "create-share").click()
    link_field = shown(signed_in, "#share-link")
    link = link_field.get_attribute("value") or ""
    assert link.startswith(base + "/#/shared/")
    # the whole link is shown: the field takes the card's width
    assert signed_in.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", link_field)
    shares = api_get(base, world.user_key, "/v1/me/shares")
    assert isinstance(shares, list) and [s["recipient"] for s in shares] == ["Dr. Jansen"]
    assert (shares[0]["types"], shares[0]["start"], shares[0]["end"]) == (["STEPS"], DAY, DAY)
    # the public page, in the same browser with no key: only STEPS on 1 May
    signed_in.execute_script("sessionStorage.clear()")
    signed_in.get(link)
    shown(signed_in, "section.shared-type")
    assert [s.get_attribute("data-type") for s in signed_in.find_elements(By.CSS_SELECTOR, "section.shared-type")] == [
        "STEPS"
    ]
    assert signed_in.find_element(By.CSS_SELECTOR, "section.shared-type h2").text == "Steps"  # not "Steps (steps)"
    rows = signed_in.find_elements(By.CSS_SELECTOR, "section.shared-type tbody tr")
    assert [r.get_attribute("data-period") for r in rows] == [DAY]
    # the recipient sees no owner's nav and no sign-out
    assert not signed_in.find_element(By.ID, "nav").is_displayed()
    assert not signed_in.find_element(By.ID, "sign-out").is_displayed()
    assert console_errors(signed_in) == []
    sign_in(signed_in, base, world.user_key)
    open_view(signed_in, base, "sharing", "#shares button.revoke")
    signed_in.find_element(By.CSS_SELECTOR, "#shares button.revoke").click()
    wait_for(signed_in, lambda d: not d.find_elements(By.CSS_SELECTOR, "#shares button.revoke"))
    signed_in.get(link)
    assert shown(signed_in, "#shared-error").text.startswith("Not found")


def test_with_the_api_stopped_a_reload_shows_the_last_data_marked_offline(
    browser: webdriver.Chrome, world: ReadWorld
) -> None:
    with served(create_app(world.engine)) as port:  # an origin of its own: its own service worker and storage
        base = f"http://127.0.0.1:{port}"
        sign_in(browser, base, world.user_key)
        open_view(browser, base, f"today?date={DAY}", "section.metric")
        wait_for(browser, lambda d: d.execute_script("return !!navigator.serviceWorker.controller"))
        browser.refresh()  # now through the service worker, which keeps the page, its files and the answers
        shown(browser, "section.metric")
        assert browser.find_element(By.ID, "status").text == ""
    browser.refresh()
    shown(browser, "section.metric")
    status = wait_for(browser, lambda d: d.find_element(By.ID, "status").text)
    assert status.startswith("Offline, data as of ")
    steps = browser.find_element(By.CSS_SELECTOR, "section.metric[data-metric='STEPS'] .value")
    assert steps.text == "6,000"
    # the copies are the first key's: another key on this browser finds none of them
    browser.execute_script("sessionStorage.setItem('healthpipe.apiKey', arguments[0])", world.other_key)
    browser.refresh()
    assert "cannot be reached" in shown(browser, "main p.flag").text
    assert browser.find_elements(By.CSS_SELECTOR, "section.metric") == []
