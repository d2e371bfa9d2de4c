"""The dashboard in a real browser: Debian's Chromium driven by Playwright (never a
downloaded browser), headless, against uvicorn on loopback.

Every page is opened in Spanish and English, at desktop and phone width, with a
screenshot kept under ``artifacts/screenshots/`` (gitignored); the language toggle, the
map (mouse, keyboard and search), the keyboard path through a page and the replay mode
are driven as a person would.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright import sync_api as playwright_api

from api_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    SCREENSHOTS,
    live_app,
    replay_app,
    serving,
)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM} (apt-get install chromium)",
                    pytrace=False)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=DESKTOP)
        yield ctx
        ctx.close()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return live_app(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def base_url(app):
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def final_id(app):
    return [s for s in app.state.backend.store.all_snapshots() if s.kind.value == "actas"][
        -1].snapshot_id


@pytest.fixture
def page(browser):
    pg = browser.new_page()
    # the first visit of a page computes its analysis (tens of seconds on a busy 2-core
    # machine); later visits are answered from the cache
    pg.set_default_timeout(180_000)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
          else None)
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    pg.close()


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5_000
    return path


def pages_of(sid: str, jun15: str) -> dict[str, str]:
    return {
        "overview": "/", "snapshots": "/snapshots/", "history": "/history/",
        "map-departments": f"/s/{sid}/map/area1/", "map-provinces": f"/s/{sid}/map/area2/",
        "map-districts": f"/s/{sid}/map/area3/", "projection": f"/s/{sid}/projection/",
        "contested": f"/s/{jun15}/contested/", "verify": f"/s/{sid}/verify/",
        "quickcount": f"/s/{sid}/quickcount/?seed=dados", "forensics": f"/s/{sid}/forensics/",
        "audit": f"/s/{sid}/audit/", "diff": f"/diff/{jun15}/{sid}/", "api": "/api/",
    }


#: axe runs: every page in Spanish at desktop and phone width, and these in English. The
#: district map is the department map's template with 1,874 paths (20 s of axe per run):
#: the department and province maps stand for it.
AXE_ENGLISH = ("overview", "projection", "mesa")
AXE_SKIPPED = ("map-districts",)


def test_every_page_in_both_languages_and_on_a_phone(page, base_url, app, final_id):
    """Every page in Spanish and English, at desktop and phone width: it answers, says its
    language, has one title, does not scroll sideways on a phone, loads nothing from
    outside, and is kept as a screenshot. In the same visit (one page load, not two), the
    WCAG 2.0/2.1 A and AA rules of axe-core: no violation on any page in Spanish at
    desktop and phone width, nor on the English overview, projection and mesa pages."""
    actas = [s for s in app.state.backend.store.all_snapshots() if s.kind.value == "actas"]
    outside: list[str] = []  # offline: every asset comes from the server itself
    page.on("request", lambda r: outside.append(r.url)
            if not r.url.startswith((base_url, "data:")) else None)
    found: dict[str, list] = {}
    n_axe = 0
    paths = pages_of(final_id, actas[-2].snapshot_id)
    for name, path in paths.items():
        for lang in ("es", "en"):
            prefix = "/en" if lang == "en" else ""
            for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                if label == "phone" and lang == "en":
                    continue
                page.set_viewport_size(viewport)
                resp = page.goto(base_url + prefix + path)
                assert resp.status == 200, (prefix + path, resp.status)
                assert page.locator("html").get_attribute("lang") == lang
                h1 = page.locator("main h1")
                assert h1.count() == 1 and h1.inner_text().strip()
                # no horizontal scrolling of the page itself on a phone
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"] + 1, (name, label, width)
                shot(page, f"{name}-{lang}-{label}")
                if name not in AXE_SKIPPED and (lang == "es" or name in AXE_ENGLISH):
                    n_axe += 1
                    if bad := axe_violations(page):
                        found[f"{name}-{lang}-{label}"] = bad
    # the mesa pages (a form, and one mesa), for axe only
    mesa = {"mesa-form": "/mesa/", "mesa": "/mesa/43/"}
    runs = [(name, path, viewport) for viewport in (DESKTOP, PHONE)
            for name, path in mesa.items()]
    runs += [(f"{name}-en", "/en" + mesa[name], DESKTOP) for name in AXE_ENGLISH
             if name in mesa]
    for name, path, viewport in runs:
        page.set_viewport_size(viewport)
        resp = page.goto(base_url + path)
        assert resp.status == 200, path
        n_axe += 1
        if bad := axe_violations(page):
            found[f"{name}-{viewport['width']}"] = bad
    n_pages = len(paths) - len(AXE_SKIPPED) + len(mesa)
    assert n_axe == 2 * n_pages + len(AXE_ENGLISH)
    assert not found, found
    assert not page.errors, page.errors
    assert not outside, outside


def test_language_toggle_keeps_the_page(page, base_url, final_id):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base_url}/s/{final_id}/projection/")
    assert page.locator("main h1").inner_text() == "Proyección del resultado final"
    page.get_by_role("link", name="English").click()
    page.wait_for_url(f"**/en/s/{final_id}/projection/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("main h1").inner_text() == "Projection of the final result"
    shot(page, "toggle-projection-en")
    page.get_by_role("link", name="Español").click()
    page.wait_for_url(f"**/s/{final_id}/projection/")
    assert "/en/" not in page.url and page.locator("html").get_attribute("lang") == "es"
    # the navigation stays in the chosen language
    page.goto(f"{base_url}/en/")
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="History").click()
    page.wait_for_url("**/en/history/")
    assert page.locator("main h1").inner_text() == "Count history"
    assert "Lead change" in page.locator("#lead-changes").inner_text()


def test_map_by_mouse_keyboard_and_search(page, base_url, final_id):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base_url}/s/{final_id}/map/area1/")
    paths = page.locator("#map path")
    assert paths.count() == 25
    detail = page.locator("#map-detail")
    # mouse: Lima
    page.locator('#map path[data-code="140000"]').click()
    assert "LIMA" in detail.inner_text() and "Fujimori" in detail.inner_text()
    assert page.locator("#map path.selected").get_attribute("data-code") == "140000"
    # keyboard: tab into the map, Enter selects the focused department
    page.locator("#unit-search").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.getAttribute('data-name')")
    assert focused, "a department should take the focus after the search box"
    page.keyboard.press("Enter")
    assert focused in detail.inner_text()
    assert page.evaluate("document.activeElement.classList.contains('selected')")
    shot(page, "map-keyboard")
    # search by name
    page.locator("#unit-search").fill("CUSCO")
    page.locator("#unit-search").press("Enter")
    assert page.locator("#map path.selected").get_attribute("data-name") == "CUSCO"
    assert "Castillo" in detail.inner_text()
    # districts: search a district on the district map
    page.goto(f"{base_url}/en/s/{final_id}/map/area3/")
    assert page.locator("#map path").count() > 1800
    page.locator("#unit-search").fill("MIRAFLORES")
    page.locator("#unit-search").press("Enter")
    assert page.locator("#map path.selected").get_attribute("data-name") == "MIRAFLORES"
    assert "of actas counted" in page.locator("#map-detail").inner_text()
    shot(page, "map-district-search-en")
    assert not page.errors, page.errors


def test_keyboard_path_and_labels(page, base_url, final_id):
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base_url}/")
    page.keyboard.press("Tab")
    skip = page.evaluate("document.activeElement.textContent")
    assert skip.strip() == "Saltar al contenido"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    for path in ("/", f"/s/{final_id}/map/area1/", f"/s/{final_id}/verify/",
                 f"/s/{final_id}/quickcount/", f"/s/{final_id}/forensics/"):
        page.goto(base_url + path)
        unlabeled = page.evaluate("""() => [...document.querySelectorAll('input, select')]
            .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)
                    && !e.getAttribute('aria-label')).map(e => e.outerHTML)""")
        assert unlabeled == [], unlabeled
        no_alt = page.evaluate("[...document.images].filter(i => !i.alt).length")
        assert no_alt == 0
        charts = page.locator("svg.chart")
        for i in range(charts.count()):
            assert charts.nth(i).get_attribute("role") == "img"
            assert charts.nth(i).get_attribute("aria-labelledby")


def test_replay_in_the_browser(browser, tmp_path_factory):
    app = replay_app(tmp_path_factory.getbasetemp())
    clock = app.state.backend.clock
    clock.fixed = 0
    page = browser.new_page()
    try:
        with serving(app) as url:
            page.goto(url + "/")
            assert "Repetición" in page.locator("#replay-banner").inner_text()
            assert "Fujimori" in page.locator("#leader").inner_text()
            call = page.locator("#call-status").inner_text()
            assert "ajustado" in call.lower() or "castillo" in call.lower()
            shot(page, "replay-step-01-es")
            clock.fixed = 13  # 16:19 UTC: the raw lead has flipped
            page.reload()
            assert "Castillo" in page.locator("#leader").inner_text()
            assert re.search(r"corte 14 / 52", page.locator("#replay-status").inner_text())
            shot(page, "replay-step-14-es")
            # on a phone, with the banner: the cut, the count and the projection's headline
            # are in the first screen
            page.set_viewport_size(PHONE)
            page.reload()
            for sel in ("#replay-status", "#pct-counted", "#margin", "#leader",
                        "#call-status"):
                box = page.locator(sel).bounding_box()
                assert box is not None and box["y"] + box["height"] <= PHONE["height"], sel
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            shot(page, "replay-step-14-es-phone")
            page.set_viewport_size(DESKTOP)
            page.locator("#replay-pause").click()
            assert page.locator("#replay-pause").get_attribute("aria-pressed") == "true"
            page.goto(url + "/en/history/")
            assert page.locator("#history-table tbody tr").count() == 14
            shot(page, "replay-history-en")
    finally:
        page.close()


# --- the upload forms (parallel tabulation, quick count) ---------------------------------------

def _copies_csv(final, acta_ids: list[str]) -> bytes:
    import polars as pl

    df = (final.filter(pl.col("acta_id").is_in(acta_ids)).sort("acta_id")
          .with_columns(pl.format("obs{}", pl.int_range(pl.len())).alias("observer_id"),
                        pl.lit("2021-06-06T20:00:00-05:00").alias("observed_at"))
          .select("acta_id", "observer_id", "observed_at", "cast", "blank", "null",
                  "v_castillo", "v_fujimori"))
    return df.write_csv().encode()


def _without_our_script(page) -> None:
    """Serve an empty app.js: the forms must work with no script of ours."""
    page.route("**/static/app.js*", lambda route: route.fulfill(
        status=200, content_type="text/javascript", body=""))


def test_pvt_upload_form(page, base_url, app, final_id, tmp_path):
    import polars as pl

    final = app.state.backend.store.load_actas(final_id)
    ids = final.filter(pl.col("status") == "counted")["acta_id"].head(4).to_list()
    text = _copies_csv(final, ids).decode().splitlines()
    cells = text[2].split(",")
    cells[-1] = str(int(cells[-1]) + 25)  # an altered tally on the second copy
    text[2] = ",".join(cells)
    text.append(f"{ids[0]},obs-x,2021-06-06T20:05:00-05:00,10,-1,0,5,4")  # rejected row
    good = tmp_path / "copias.csv"
    good.write_text("\n".join(text) + "\n")
    _without_our_script(page)
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.goto(f"{base_url}/s/{final_id}/verify/")
        page.get_by_label("Archivo de copias de personeros").set_input_files(str(good))
        page.get_by_role("button", name="Comparar con las actas oficiales").click()
        page.wait_for_url(f"**/s/{final_id}/verify/#pvt")
        assert "1 de 4 copias tienen alertas" in page.locator("#pvt-statement").inner_text()
        assert page.locator("#pvt-alarms tbody tr").count() == 1
        assert ids[1] in page.locator("#pvt-alarms").inner_text()
        rejected = page.locator("#pvt-rejected tbody tr")
        assert rejected.count() == 1 and "negative_count" in rejected.inner_text()
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"] + 1
        shot(page, f"pvt-upload-es-{label}")
    # English, a file with the wrong columns: the page says what is missing
    bad = tmp_path / "bad.csv"
    bad.write_text("acta_id,votos\n1,2\n")
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base_url}/en/s/{final_id}/verify/")
    page.get_by_label("File of observers' copies").set_input_files(str(bad))
    page.get_by_role("button", name="Compare with the official actas").click()
    alert = page.get_by_role("alert")
    assert "required columns are missing" in alert.inner_text()
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "pvt-upload-error-en")
    # the refused file is a 422 (which Chromium also logs), and nothing else went wrong
    assert [e for e in page.errors if e.startswith("422 ")] == [
        f"422 {base_url}/en/s/{final_id}/verify/"]
    assert not [e for e in page.errors if "422" not in e], page.errors


def test_quickcount_estimate_form(page, base_url, app, final_id, tmp_path):
    import polars as pl

    b = app.state.backend
    info = next(s for s in b.store.all_snapshots() if s.snapshot_id == final_id)
    sample = b.quickcount(info, "dados").sample["acta_id"].to_list()
    final = b.store.load_actas(final_id)
    outside = final.filter(~pl.col("acta_id").is_in(sample))["acta_id"][0]
    text = _copies_csv(final.filter(pl.col("status") == "counted"), sample)
    text += f"{outside},obs-z,2021-06-06T20:00:00Z,10,1,1,4,4\n".encode()
    reports = tmp_path / "reportes.csv"
    reports.write_bytes(text)
    _without_our_script(page)
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base_url}/s/{final_id}/quickcount/?seed=dados")
    assert page.locator("#qc-est-seed").input_value() == "dados"
    page.locator("#qc-file").set_input_files(str(reports))
    page.get_by_role("button", name="Estimar").click()
    page.wait_for_url(f"**/s/{final_id}/quickcount/#estimate")
    assert "Empate técnico" in page.locator("#qc-call").inner_text()
    assert "de 1,500 mesas sorteadas reportaron" in page.locator("#qc-coverage").inner_text()
    refused = page.locator("#qc-refused tbody tr")
    assert refused.count() == 1 and outside in refused.inner_text()
    assert "not_in_sample" in refused.inner_text()
    assert "dados" in page.locator("#qc-provenance").inner_text()
    assert page.locator("#qc-intervals tbody tr").count() == 3
    shot(page, "quickcount-estimate-es")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1
    shot(page, "quickcount-estimate-es-phone")
    # English, typed by keyboard: seed, file, submit
    page.set_viewport_size(DESKTOP)
    page.goto(f"{base_url}/en/s/{final_id}/quickcount/")
    page.get_by_label("Public seed of the sample").fill("dados")
    page.get_by_label("File of reports of the sampled mesas").set_input_files(str(reports))
    page.get_by_label("File of reports of the sampled mesas").focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/en/s/{final_id}/quickcount/#estimate")
    assert "Technical tie" in page.locator("#qc-call").inner_text()
    assert "official count of this snapshot is already complete" in page.locator(
        "#qc-fusion").inner_text()
    shot(page, "quickcount-estimate-en")
    assert not page.errors, page.errors


# --- phone layout and WCAG 2.1 AA (axe-core from the axe-playwright-python package) ---------

def _axe_source() -> str:
    from importlib import resources

    return resources.files("axe_playwright_python").joinpath("axe.min.js").read_text()


def axe_violations(page) -> list[tuple[str, str, list[str]]]:
    """axe-core's WCAG 2.0/2.1 A and AA rules on the page as it stands."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    return [tuple(v) for v in page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => [v.id, v.impact,
            v.nodes.slice(0, 3).map(n => n.target.join(' '))]); }""")]


def _box(page, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def test_phone_first_screen_shows_the_count_and_the_menu_wraps(page, base_url, final_id):
    """At 390x844: the headline cards, the leader, the margin and the projection are in
    the first screen, nothing scrolls sideways, and every section of the menu is reachable
    without a sideways scroll (folded under a summary; unfolded it wraps)."""
    page.set_viewport_size(PHONE)
    page.goto(base_url + "/")
    for sel in ("#pct-counted", "#pct-processed", "#margin", "#leader", "#call-status",
                "#pwin li"):
        b = _box(page, sel)
        assert b["y"] + b["height"] <= PHONE["height"], (sel, b)
        assert b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"], (sel, b)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "phone-first-screen-es")
    menu = page.locator("#nav-menu")
    assert menu.get_attribute("open") is None  # folded on a phone
    page.locator("#nav-menu > summary").click()
    links = page.locator("#nav-menu a")
    assert links.count() >= 12
    assert page.evaluate("""() => { const u = document.querySelector('#nav-menu ul');
        return u.scrollWidth <= u.clientWidth; }""")
    for i in range(links.count()):
        b = links.nth(i).bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= PHONE["width"]
    shot(page, "phone-menu-open-es")
    # the projection page and a table page: no sideways scroll of the page itself
    for path in (f"/s/{final_id}/projection/", "/history/", "/mesa/43/"):
        page.goto(base_url + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    b = _box(page, "#mesa-status")
    assert b["y"] + b["height"] <= PHONE["height"]
    shot(page, "phone-mesa-es")
    # at desktop width the menu is a plain row of tabs, all visible
    page.set_viewport_size(DESKTOP)
    page.goto(base_url + "/")
    assert page.locator("#nav-menu").get_attribute("open") is not None
    assert page.locator("#nav-menu > summary").is_hidden()
    assert page.locator("#nav-menu a").first.is_visible()
    assert not page.errors, page.errors
