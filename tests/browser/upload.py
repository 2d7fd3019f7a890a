"""A real browser uses the lab: headless Debian Chromium opens the home page, picks a photo in the
upload form, submits it (no JavaScript needed) and reads the result page.

Usage: upload.py --url http://127.0.0.1:PORT --photo PATH --expect LABEL [--screenshot PNG]
Exits 1 with a message saying what was missing; the screenshot shows the page either way.
"""

import argparse
import os
import pathlib
import sys
import tempfile

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser(profile: str) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The machine has no network but loopback: keep Chromium from dialling out.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1100,1400",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    # The console, to see what the page's Content-Security-Policy blocked.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def policy_problems(driver: webdriver.Chrome, page: str) -> list[str]:
    """What the page's CSP got in the way of: console reports of blocked loads, and whether the
    stylesheet applied at all (a blocked sheet has no rules). The check runs through WebDriver,
    which the page's CSP does not govern."""
    problems = [
        f"{page}: {entry['message']}"
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Content-Security-Policy" in entry["message"]
    ]
    styled = driver.execute_script(
        "return Array.from(document.styleSheets).some(s => { try { return s.cssRules.length > 0 } "
        "catch (e) { return false } })"
    )
    if not styled:
        problems.append(f"{page}: the stylesheet did not apply")
    return problems


# Exit codes: 0 pass; 3 the page loaded with the served-by trail but does not name the expected
# text (what scripts/test.sh's negative check asserts); 1 any other failure (crash, driver, form).
EXIT_PASS = 0
EXIT_FAILED = 1
EXIT_EXPECTED_TEXT_NOT_FOUND = 3


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--photo", required=True, type=pathlib.Path)
    parser.add_argument("--expect", required=True)
    parser.add_argument("--screenshot", type=pathlib.Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as profile:
        driver = browser(profile)
        try:
            driver.set_page_load_timeout(30)
            driver.get(args.url + "/")
            problems = policy_problems(driver, "upload page")
            form = driver.find_element(By.CSS_SELECTOR, "form[action='/analyze']")
            if form.get_attribute("enctype") != "multipart/form-data":
                print("FAIL: the upload form is not multipart/form-data")
                return 1
            field = form.find_element(By.CSS_SELECTOR, "input[type=file][name=image]")
            label = driver.find_elements(By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']")
            if not label:
                print("FAIL: the file input has no <label>")
                return 1
            field.send_keys(str(args.photo.resolve()))
            form.find_element(By.CSS_SELECTOR, "button[type=submit], input[type=submit]").click()
            WebDriverWait(driver, 30).until(expected_conditions.url_contains("/analyze"))
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script("return document.readyState") == "complete"
            )
            text = driver.find_element(By.TAG_NAME, "body").text
            if args.screenshot:
                os.makedirs(args.screenshot.parent, exist_ok=True)
                driver.save_screenshot(str(args.screenshot))
            problems += policy_problems(driver, "result page")
            if problems:
                print("FAIL: the Content-Security-Policy blocks what the pages use:")
                print("\n".join(problems))
                return EXIT_FAILED
            if "frontend/" not in text or "ml/" not in text:
                print("FAIL: the result page does not show the served-by trail")
                print(text[:2000])
                return EXIT_FAILED
            if args.expect.lower() not in text.lower():
                print(f"FAIL: expected text not found: the result page does not name {args.expect!r}")
                print(text[:2000])
                return EXIT_EXPECTED_TEXT_NOT_FOUND
            print(f"PASS: the browser uploaded {args.photo.name} and the result page names {args.expect!r}")
            return EXIT_PASS
        except WebDriverException as error:
            print(f"FAIL: browser error: {error.msg}")
            return 1
        finally:
            driver.quit()


if __name__ == "__main__":
    sys.exit(main())
