"""The live view in real headless Chromium (Debian's chromium + chromium-driver through Selenium), fed by the
real aggregator process over ZeroMQ: the page loads, the chart and previews update as messages arrive, and a
lost camera shows as lost. Select with ``-m browser``."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from agg_helpers import AggregatorProcess, score, write_config

from core.messages import CameraState, EndOfStream, Frame, encode_camera_state, encode_eos, encode_preview
from core.messages import encode_window as encode_score
from inference.preview import PreviewThrottle

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
COUNTERS = {"frames_sent": 250, "frames_dropped_injected": 0, "send_drops": 2, "reconnects": 0}


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        message = "chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--window-size=1200,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, script: str, timeout_s: float = 15):
    """Until the JavaScript expression ``script`` is truthy; returns its value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def _preview(view: str, seq: int):
    image = np.full((480, 640, 3), 90, np.uint8)
    frame = Frame(view=view, seq=seq, capture_mono_ns=seq * 10**9, capture_wall_ns=0, image=image)
    return PreviewThrottle(rate_hz=2.0, width_px=320).offer(frame, (200, 100, 440, 460), 1)


def _crops(view: str, window: int):
    import cv2

    from core.messages import Preview

    jpeg = cv2.imencode(".jpg", np.full((128, 1024, 3), 60, np.uint8))[1].tobytes()
    return Preview(view=view, seq=window, capture_mono_ns=window * 10**9, width=1024, height=128, box_xyxy=None,
                   track_id=None, jpeg=jpeg, preview_width=1024, preview_height=128, kind="crops")


def test_live_view_loads_updates_and_shows_a_lost_camera(tmp_path, scores_pub, browser):
    config = write_config(tmp_path)
    agg = AggregatorProcess(config, tmp_path)
    try:
        browser.get(agg.url())
        assert browser.title == "dualgait live view"
        _wait(browser, "document.querySelector('#connection').textContent === 'live'")
        assert browser.find_element("id", "session-status").text == "no session yet"
        for view in ("front", "side"):
            scores_pub.send_multipart(encode_camera_state(CameraState(view=view, state="connected",
                                                                      counters=COUNTERS)))
            scores_pub.send_multipart(encode_preview(_preview(view, 7)))
        for i in range(3):
            scores_pub.send_multipart(encode_score(score(i, 0.6 + 0.1 * i, synthetic=True)))
        assert _wait(browser, "document.querySelector('#chart').dataset.windows === '3'")
        assert len(browser.find_elements("css selector", "#chart circle.pt")) == 3
        assert browser.find_element("id", "cumulative").text == "0.700"
        assert browser.find_element("id", "decision").text == "not enough data"
        assert "simulated walkers" in browser.find_element("id", "notes").text
        # the previews are drawn, with the patient box (green) where the box is: x 200/640 of the width
        _wait(browser, "document.querySelector('#cam-side canvas').dataset.seq === '7'")
        pixel = browser.execute_script(
            "const c = document.querySelector('#cam-front canvas');"
            "return Array.from(c.getContext('2d').getImageData(100, 120, 1, 1).data);")
        assert pixel[1] > 200 and pixel[0] < 60 and pixel[2] < 60, pixel  # on the box's left edge
        inside = browser.execute_script(
            "const c = document.querySelector('#cam-front canvas');"
            "return Array.from(c.getContext('2d').getImageData(160, 120, 1, 1).data);")
        assert abs(inside[1] - 90) < 12, inside  # the frame itself, grey
        # more scores arrive: the chart follows, an invalid window becomes a grey bar
        scores_pub.send_multipart(encode_score(score(3, code="skew", synthetic=True)))
        scores_pub.send_multipart(encode_score(score(4, 0.9, synthetic=True)))
        _wait(browser, "document.querySelector('#chart').dataset.windows === '5'")
        assert len(browser.find_elements("css selector", "#chart circle.pt")) == 4
        assert len(browser.find_elements("css selector", "#chart rect.invalid")) == 1
        assert browser.find_element("id", "invalid").text == "skew ×1"
        # the crops panel: the last window's model input of each view, captioned with its verdict
        for view in ("front", "side"):
            scores_pub.send_multipart(encode_preview(_crops(view, 4)))
        _wait(browser, "document.querySelector('#crops-side img').naturalWidth === 1024")
        assert browser.execute_script("return document.querySelector('#crops-front img').naturalHeight;") == 128
        assert browser.find_element("id", "crops-caption").text.startswith("window 4: p_asd 0.900")
        # the side camera is lost
        assert "lost" not in browser.find_element("id", "cam-side").get_attribute("class")
        scores_pub.send_multipart(encode_camera_state(CameraState(view="side", state="reconnecting", attempt=2,
                                                                  reason="read failed", counters=COUNTERS)))
        _wait(browser, "document.querySelector('#cam-side').classList.contains('lost')")
        assert browser.find_element("css selector", "#cam-side .state").text == "LOST (reconnecting, attempt 2)"
        assert "lost" not in browser.find_element("id", "cam-front").get_attribute("class")
        # the operator ends the session from the page
        browser.find_element("id", "end-session").click()
        _wait(browser, "document.querySelector('#session-status').textContent === 'ended (operator)'")
        # a second walkway appears: the selector lists it, and picking it shows its own session and cameras
        from selenium.webdriver.support.ui import Select

        scores_pub.send_multipart(encode_score(score(0, 0.3, stream="east-1", walkway="east", synthetic=True)))
        _wait(browser, "document.querySelectorAll('#walkway option').length === 2")
        picker = Select(browser.find_element("id", "walkway"))
        assert [o.text for o in picker.options] == ["main", "east"] and picker.first_selected_option.text == "main"
        picker.select_by_value("east")
        _wait(browser, "document.querySelector('#session-id').textContent === '2'")
        assert browser.find_element("id", "session-status").text == "open"
        assert browser.find_element("id", "cumulative").text == "0.300"
        assert _wait(browser, "document.querySelector('#chart').dataset.windows === '1'")
        assert browser.find_element("css selector", "#cam-side .state").text == "no data"  # not main's LOST side
        browser.get(agg.url() + "?walkway=east")  # a page (e.g. one screen per walkway) can open on its walkway
        _wait(browser, "document.querySelector('#session-id').textContent === '2'")
        assert Select(browser.find_element("id", "walkway")).first_selected_option.text == "east"
        scores_pub.send_multipart(encode_eos(EndOfStream(source="inference", walkway="east")))
        scores_pub.send_multipart(encode_eos(EndOfStream(source="inference")))
        assert agg.wait() == 0
    finally:
        agg.kill()
