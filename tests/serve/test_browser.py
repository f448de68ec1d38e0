"""The page in a real browser: headless Debian chromium driven by selenium. Type a review with the
keyboard, submit with Ctrl+Enter, read the label, the probabilities and the coloured tokens from the DOM and
compare them with the API's answer for the same text; a translator's output and alignment matrix; a narrow
screen; a character LM's streamed text (forward and backward); a collection run's forecast plot."""

from __future__ import annotations

import shutil

import pytest
from serve_testing import ThreadServer, call

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or DRIVER is None,
        reason="Debian's chromium and chromium-driver are not installed (scripts/setup.sh installs them)",
    ),
    pytest.mark.usefixtures("one_thread"),
]


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1000,900",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    yield driver
    driver.quit()


def _state(driver, value: str, timeout: float = 15) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.body.dataset.state") == value
    )


def _submit_with_keyboard(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.ID, "input")
    assert driver.switch_to.active_element == box  # the page starts with the text box focused
    box.clear()
    box.send_keys(text)
    driver.execute_script("document.body.dataset.state = 'typing'")
    box.send_keys(Keys.CONTROL, Keys.ENTER)
    _state(driver, "done")


def test_a_review_typed_and_submitted_shows_the_apis_answer(browser, sentiment_server):
    from selenium.webdriver.common.by import By

    text = "这个东西很棒，推荐"
    browser.get(f"http://127.0.0.1:{sentiment_server.port}/")
    _state(browser, "ready")
    _submit_with_keyboard(browser, text)
    (want,) = call(sentiment_server.port, "POST", "/v1/predict", {"texts": [text]})[2]["predictions"]
    assert browser.find_element(By.ID, "label").text == want["label"]
    rows = browser.find_elements(By.CSS_SELECTOR, "#probabilities .prob")
    shown = {r.get_attribute("data-label"): float(r.get_attribute("data-probability")) for r in rows}
    assert shown == pytest.approx(want["probabilities"], abs=1e-6)
    tokens = browser.find_elements(By.CSS_SELECTOR, "#tokens .token")
    assert [t.text for t in tokens] == want["tokens"]
    assert [float(t.get_attribute("data-weight")) for t in tokens] == pytest.approx(
        want["attention"], abs=1e-6
    )
    # coloured: the most attended token is the darkest
    alphas = [
        float(t.value_of_css_property("background-color").rsplit(",", 1)[1].rstrip(")")) for t in tokens
    ]
    assert alphas.index(max(alphas)) == want["attention"].index(max(want["attention"]))
    assert len(browser.find_element(By.ID, "request-id").text) == 32


def test_an_error_is_shown_and_a_narrow_screen_has_no_sideways_scroll(browser, sentiment_server):
    from selenium.webdriver.common.by import By

    browser.set_window_size(360, 800)
    try:
        browser.get(f"http://127.0.0.1:{sentiment_server.port}/")
        _state(browser, "ready")
        _submit_with_keyboard(browser, "长" * 2500)  # over this server's 2,000-character limit
        error = browser.find_element(By.ID, "error")
        assert error.is_displayed() and error.text.startswith("text_too_long:")
        width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1]
    finally:
        browser.set_window_size(1000, 900)


def test_a_translation_shows_its_output_and_alignment(browser, translate_run):
    from selenium.webdriver.common.by import By

    from rnnlab.serve.app import create_app

    server = ThreadServer(create_app(translate_run))
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        _state(browser, "ready")
        _submit_with_keyboard(browser, "March 3, 2001")
        (want,) = call(server.port, "POST", "/v1/predict", {"texts": ["March 3, 2001"]})[2]["predictions"]
    finally:
        server.stop()
    assert browser.find_element(By.ID, "output").text == want["output"]
    cells = browser.find_elements(By.CSS_SELECTOR, "table.alignment tr")
    assert len(cells) == 1 + len(want["target_tokens"])  # a header row, then one row per output token
    weights = [
        [float(td.get_attribute("data-weight")) for td in tr.find_elements(By.TAG_NAME, "td")]
        for tr in cells[1:]
    ]
    assert [w for row in weights for w in row] == pytest.approx([w for row in want["attention"] for w in row])
    assert [len(row) for row in weights] == [len(row) for row in want["attention"]]


TEXT = "".join(f"KENT.\nI have {n} good reasons, my lord; the storm is old.\n\n" for n in range(30))
CHARLM = ["data.batch_size=2", "data.bptt=16", "data.steps_per_epoch=2", "data.eval_batch_size=2",
          "model.hidden_size=16", "model.embedding_dim=8", "train.epochs=1", "train.warmup_steps=0",
          "train.progress=false"]  # fmt: skip


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "backward"])
def test_a_generation_streams_into_the_page(browser, tmp_path, reverse):
    """The page streams a character LM's text as it is drawn; a backward LM's characters go before the
    prime. What it shows is the API's whole answer for the page's options."""
    from selenium.webdriver.common.by import By

    from rnnlab.cli import main
    from rnnlab.serve.app import create_app

    (tmp_path / "text.txt").write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    args = ["train", "charlm", "--data", str(tmp_path / "text.txt"), "--out", str(run), *CHARLM]
    assert main([*args, f"model.reverse={str(reverse).lower()}"]) == 0
    server = ThreadServer(create_app(run))
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        _state(browser, "ready")
        _submit_with_keyboard(browser, "my lord")
        options = {"prime": "my lord", "length": 200, "temperature": 0.8, "seed": 0}
        want = call(server.port, "POST", "/v1/generate", options)[2]["text"]
        shown = browser.find_element(By.ID, "generated").text
    finally:
        server.stop()
    assert shown == (want + "my lord" if reverse else "my lord" + want).strip()  # .text trims the ends


def test_a_collection_runs_forecast_is_plotted(browser, tmp_path, monkeypatch):
    from selenium.webdriver.common.by import By

    import rnnlab.data.sources
    from rnnlab.serve.app import create_app
    from rnnlab.tasks import forecast
    from tiny_series import write_collection

    monkeypatch.setattr(rnnlab.data.sources, "cache_dir", lambda: tmp_path / "cache")
    cfg = forecast.Config()
    cfg.data.dataset = str(write_collection(tmp_path / "long.csv"))
    cfg.data.horizon, cfg.data.baselines, cfg.data.jobs, cfg.data.steps_per_epoch = 6, "Naive2", 1, 2
    cfg.model.hidden_size, cfg.model.ensemble, cfg.train.epochs, cfg.train.progress = 4, 1, 1, False
    forecast.train(cfg, tmp_path / "run")
    history = [100 + 10 * (i % 12) + i for i in range(36)]
    server = ThreadServer(create_app(tmp_path / "run"))
    try:
        browser.get(f"http://127.0.0.1:{server.port}/")
        _state(browser, "ready")
        assert "History of any series" in browser.find_element(By.ID, "input-label").text
        _submit_with_keyboard(browser, ", ".join(map(str, history)))
        want = call(server.port, "POST", "/v1/forecast", {"history": history})[2]
        median = browser.find_element(By.CSS_SELECTOR, "#plot path#median").get_attribute("d")
        end = browser.find_element(By.CSS_SELECTOR, "#plot svg text:last-of-type").text
    finally:
        server.stop()
    assert median.count("L") == len(want["forecast"]) - 1  # one point per forecast step
    assert end == "+6"  # the collection has no dates asked for: the last step is named by its distance
