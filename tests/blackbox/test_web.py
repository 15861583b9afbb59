"""The web page at /: its static files are served with no token, with their content types, and nothing outside the
page's folder can be reached; and, in a real browser (headless Chromium through Debian's chromium-driver and
python3-selenium), a user logs in with a token, browses the catalog, publishes an .ibsolution as admin, installs
it, runs a PDF in the playground and sees each field's box drawn where the field is. Screenshots go to
$IBSOL_BIN/screenshots/."""
import http.client
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from conftest import ADMIN_TOKEN, ALICE_TOKEN, BIN, SOURCE, assert_error

EXAMPLE = os.path.join(SOURCE, "docs/example-solution")
DEMO = os.path.join(EXAMPLE, "demo_data")
SHOTS = os.path.join(BIN, "screenshots")


def raw_get(stack, path, method="GET", headers=None):
    """A request sent with its path exactly as written (no client-side dot-segment cleaning)."""
    c = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body


# ---- static files ---------------------------------------------------------------------------------------------


def test_page_and_its_files_need_no_token(stack):
    for path in ("/", "/web/", "/web/index.html"):
        st, h, body = raw_get(stack, path)
        assert st == 200, (path, st, body[:200])
        assert h["content-type"] == "text/html; charset=utf-8"
        assert b"<title>ibsol</title>" in body
        assert "default-src 'self'" in h["content-security-policy"]  # nothing from another site
        assert h["x-content-type-options"] == "nosniff"
    with open(os.path.join(SOURCE, "web/app.js"), "rb") as f:
        js = f.read()
    st, h, body = raw_get(stack, "/web/app.js")
    assert (st, h["content-type"], body) == (200, "text/javascript; charset=utf-8", js)
    assert raw_get(stack, "/web/style.css")[1]["content-type"] == "text/css; charset=utf-8"
    assert raw_get(stack, "/web/favicon.svg")[1]["content-type"] == "image/svg+xml"
    st, h, body = raw_get(stack, "/", method="HEAD")
    assert st == 200 and body == b"" and int(h["content-length"]) > 500
    # a token is not needed, and a wrong one changes nothing
    assert raw_get(stack, "/", headers={"Authorization": "Bearer wrong"})[0] == 200
    # the API beside it still asks for one
    assert raw_get(stack, "/marketplace/list")[0] == 401


@pytest.mark.parametrize("path", [
    "/web/../tokens", "/web/../d/tokens", "/web/%2e%2e/tokens", "/web/%2E%2E%2Ftokens", "/web/..%2ftokens",
    "/web/.hidden", "/web/a//b.js", "/web/missing.js", "/web/app.js%00.html", "/web/app.exe", "/web/index.html/",
    "/web/C:\\x.js",
])
def test_nothing_outside_the_page_folder(stack, path):
    st, h, body = raw_get(stack, path)
    assert st == 404, (path, st, body)
    assert b'"code":"not_found"' in body and b"is not a file of the web page" in body, body


def test_folders_are_not_listed_and_symlinks_not_followed(stack_factory):
    root = tempfile.mkdtemp(prefix="ibsol-web-")
    try:
        os.makedirs(os.path.join(root, "img"))
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<title>ibsol</title>")
        with open(os.path.join(root, "img", "a.png"), "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n")
        secret = os.path.join(root, "..", os.path.basename(root) + "-secret.txt")
        with open(secret, "w") as f:
            f.write("secret")
        os.symlink(secret, os.path.join(root, "leak.txt"))
        s = stack_factory({"IBSOL_WEB_ROOT": root})
        assert raw_get(s, "/")[2] == b"<title>ibsol</title>"
        assert raw_get(s, "/web/img/a.png")[1]["content-type"] == "image/png"
        for path in ("/web/img", "/web/img/", "/web/leak.txt"):
            st, _, body = raw_get(s, path)
            assert st == 404 and b"is not a file of the web page" in body, (path, st, body)
        st, _, body = raw_get(s, "/", method="POST")
        assert st == 405 and b"method POST is not allowed on the web page" in body
        os.unlink(secret)
    finally:
        shutil.rmtree(root)


def test_a_missing_web_root_is_refused_at_start(stack_factory):
    s = stack_factory({"IBSOL_WEB_ROOT": "/nonexistent/ibsol-web"}, start=False)
    p = s.start("gateway")
    assert p.wait(timeout=30) != 0
    s.procs.pop("gateway")
    assert "IBSOL_WEB_ROOT: cannot open the web page's folder '/nonexistent/ibsol-web'" in s.log("gateway")


# ---- in a browser ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        pytest.skip("python3-selenium is not installed: %s" % e)
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
              "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        opts.add_argument(a)
    if os.path.exists("/usr/bin/chromium"):
        opts.binary_location = "/usr/bin/chromium"
    try:
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    except Exception as e:  # no chromium or chromedriver, or it cannot start here
        pytest.skip("headless Chromium cannot start: %s" % str(e).splitlines()[0])
    driver.set_page_load_timeout(20)
    os.makedirs(SHOTS, exist_ok=True)
    yield driver
    driver.quit()


def shot(driver, name):
    driver.save_screenshot(os.path.join(SHOTS, "web-%s.png" % name))


def wait(driver, what, fn, timeout=20):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # the element is not there yet
            last = e
        time.sleep(0.1)
    shot(driver, "timeout")
    raise AssertionError("timed out waiting for %s (last: %r); message: %r" %
                         (what, last, driver.execute_script("return document.getElementById('message-text').textContent")))


def css(driver, sel):
    return driver.find_element("css selector", sel)


def visible_message(driver):
    m = css(driver, "#message")
    return m.is_displayed() and css(driver, "#message-text").text


def login(driver, url, token):
    driver.get(url + "/")
    driver.execute_script("sessionStorage.clear()")  # a fresh session: the last test's token is forgotten
    driver.get(url + "/")
    field = css(driver, "#token")
    field.clear()
    field.send_keys(token)
    css(driver, "#login-btn").click()


@pytest.fixture(scope="module")
def package(stack):
    """An .ibsolution of the example solution, packaged by the server and downloaded, as a publisher has one."""
    stack.put_tree("/admin/web_src", EXAMPLE)
    r = stack.post("/solution/create", {"content_folder": "/admin/web_src", "output_folder": "/admin/web_build"})
    assert r.status_code == 200, r.text
    data = stack.get("/api/v2/files" + r.json()["ibsolution_path"].replace(" ", "%20")).content
    d = tempfile.mkdtemp(prefix="ibsol-web-")
    path = os.path.join(d, "invoice_demo-1.0.0.ibsolution")
    with open(path, "wb") as f:
        f.write(data)
    yield path
    shutil.rmtree(d)


def ensure_installed(s, package):
    """invoice_demo 1.0.0 published (from the package, when a test runs alone) and installed on stack s."""
    if s.get("/marketplace/info?name=invoice_demo").status_code == 404:
        with open(package, "rb") as f:
            s.put_file("/admin/web_pub/demo.ibsolution", f.read())
        assert s.post("/marketplace/publish", {"ibsolution_path": "/admin/web_pub/demo.ibsolution"}).status_code == 200
    assert s.post("/marketplace/install", {"name": "invoice_demo", "version": "1.0.0"}).status_code == 200


def run_in_playground(driver, solution, document, ready_js, timeout=60):
    """Picks the installed solution ("name version"), drops the document and runs it; waits until ready_js is
    true in the page."""
    from selenium.webdriver.support.ui import Select
    wait(driver, "%s in the playground" % solution, lambda: solution in css(driver, "#pg-solution").text)
    Select(css(driver, "#pg-solution")).select_by_visible_text(solution)
    css(driver, "#pg-file").send_keys(document)
    wait(driver, "the run button", lambda: css(driver, "#pg-run").is_enabled())
    css(driver, "#pg-run").click()
    wait(driver, "the run's page", lambda: driver.execute_script(ready_js), timeout=timeout)


def test_wrong_token_shows_a_message(stack, browser):
    login(browser, stack.url, "not-a-token")
    msg = wait(browser, "the refusal", lambda: visible_message(browser))
    assert "That token was refused by the server" in msg and "unknown token" in msg, msg
    assert css(browser, "#login").is_displayed() and not css(browser, "#tabs").is_displayed()
    shot(browser, "wrong-token")


def test_publish_install_and_run_a_pdf(stack, browser, package):
    login(browser, stack.url, ADMIN_TOKEN)
    wait(browser, "the catalog", lambda: css(browser, "#catalog").is_displayed())
    assert css(browser, "#me-name").text == "admin" and css(browser, "#me-role").text == "admin"
    wait(browser, "the empty catalog", lambda: css(browser, "#apps-empty").is_displayed())

    # publish, as admin, from the file on this machine
    css(browser, "#publish-file").send_keys(package)
    css(browser, "#publish-btn").click()
    card = wait(browser, "the published card", lambda: css(browser, 'article.card[data-name="invoice_demo"]'))
    assert "Reads invoices" in card.text and "1.0.0" in card.text
    assert "Published invoice_demo 1.0.0" in visible_message(browser)
    assert stack.get("/marketplace/info?name=invoice_demo").json()["version"] == "1.0.0"
    shot(browser, "catalog-published")

    # install from the card
    card.find_element("css selector", "button.install").click()
    wait(browser, "the installed badge",
         lambda: "installed" in css(browser, 'article.card[data-name="invoice_demo"] .versions').text)
    assert stack.get("/marketplace/info?name=invoice_demo").json()["installed"] is True
    card = css(browser, 'article.card[data-name="invoice_demo"]')
    assert not card.find_element("css selector", "button.install").is_enabled()
    # uninstall from the card; the solution page installs it again below
    card.find_element("css selector", "button.uninstall").click()
    wait(browser, "the uninstalled card", lambda: "installed" not in css(
        browser, 'article.card[data-name="invoice_demo"] .versions').text)
    assert stack.get("/marketplace/info?name=invoice_demo").json()["installed"] is False

    # the solution page: manifest, versions, sha256
    css(browser, 'article.card[data-name="invoice_demo"] button.open').click()
    wait(browser, "the solution page", lambda: css(browser, "#solution").is_displayed())
    info = stack.get("/marketplace/info?name=invoice_demo").json()
    facts = wait(browser, "the facts", lambda: css(browser, "#solution-facts").text)
    assert info["sha256"] in facts
    assert '"short_description": "Reads invoices: number, vendor, dates, total and line items"' in css(browser, "#solution-manifest").text
    readme = css(browser, "#solution-readme")  # the archive's README.md, as headings and paragraphs
    assert readme.find_element("css selector", "h3").text == "invoice_demo"
    assert "An example ibsol solution: classifies each document" in readme.text
    shot(browser, "solution-page")

    # the playground: a PDF, run, fields beside the page with their boxes; the solution page's button installs
    # the version and opens the playground with it
    css(browser, "#solution-actions button").click()
    wait(browser, "the playground", lambda: css(browser, "#playground").is_displayed())
    assert stack.get("/marketplace/info?name=invoice_demo").json()["installed"] is True
    run_in_playground(browser, "invoice_demo 1.0.0", os.path.join(DEMO, "invoice-1002.pdf"),
                      "const i = document.getElementById('page-img'); return i.complete && i.naturalWidth > 0 && "
                      "document.querySelectorAll('#boxes .box').length > 0")
    row = css(browser, 'tr.field[data-key="total"]')
    assert "1180.5" in row.text
    fid = row.get_attribute("data-field")
    # the field's box where the field is: its bbox (PDF points) scaled to the image as shown
    rec = stack.post("/api/v1/solution/run_sync", {"name": "invoice_demo", "version": "1.0.0", "files": [{
        "file_name": "x.pdf", "file_content": __import__("base64").b64encode(
            open(os.path.join(DEMO, "invoice-1002.pdf"), "rb").read()).decode()}]}).json()["records"][0]
    total = [f for f in rec["results"] if f["key"] == "total"][0]
    x0, y0, x1, y1 = total["bbox"]
    img = browser.execute_script("const r = document.getElementById('page-img').getBoundingClientRect();"
                                 "return [r.left, r.top, r.width, r.height];")
    box = browser.execute_script("const r = document.querySelector('#boxes [data-box=\"%s\"]').getBoundingClientRect();"
                                 "return [r.left, r.top, r.width, r.height];" % fid)
    scale = img[2] / 612.0  # a letter page: 612 points wide
    assert abs(img[3] / 792.0 - scale) < 0.01
    want = [img[0] + x0 * scale, img[1] + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale]
    for got, exp in zip(box, want):
        assert abs(got - exp) < 2.5, (box, want, total)
    # hovering the field highlights its box
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(browser).move_to_element(row).perform()
    wait(browser, "the highlighted box", lambda: "hot" in css(browser, '#boxes [data-box="%s"]' % fid).get_attribute("class"))
    shot(browser, "playground-pdf")

    # the jobs tab lists the run and shows its results
    css(browser, '.tab[data-tab="jobs"]').click()
    jobrow = wait(browser, "the job row", lambda: css(browser, "#jobs-table tbody tr"))
    jobrow.find_element("css selector", "button").click()
    wait(browser, "the job's results", lambda: "total = 1180.5" in css(browser, "#job-results").text)
    shot(browser, "jobs")


def test_playground_text_and_a_failing_document(stack, browser, package):
    ensure_installed(stack, package)
    login(browser, stack.url, ALICE_TOKEN)
    wait(browser, "the catalog", lambda: css(browser, "#catalog").is_displayed())
    assert not css(browser, "#publish").is_displayed()  # a user is not offered to publish
    css(browser, '.tab[data-tab="playground"]').click()
    run_in_playground(browser, "invoice_demo 1.0.0", os.path.join(DEMO, "invoice-1001.txt"),
                      "return document.querySelectorAll('#boxes .box').length > 0 && "
                      "document.getElementById('page-img').naturalWidth > 0")
    assert "INV-1001" in css(browser, 'tr.field[data-key="invoice_no"]').text
    shot(browser, "playground-text")
    # a document the solution cannot read: a visible message, the page still there
    bad = os.path.join(tempfile.mkdtemp(prefix="ibsol-web-"), "broken.pdf")
    with open(bad, "wb") as f:
        f.write(b"%PDF-1.4\nthis is not a PDF\n")
    css(browser, "#pg-file").send_keys(bad)
    css(browser, "#pg-run").click()
    msg = wait(browser, "the failure message", lambda: visible_message(browser), timeout=60)
    assert msg.startswith("The document failed: broken.pdf: damaged PDF"), msg
    assert css(browser, "#playground").is_displayed() and css(browser, "#fields").is_displayed()
    assert not css(browser, "#page").is_displayed()  # no stale page of the last document
    assert "broken.pdf: damaged PDF" in css(browser, "#fields").text
    shot(browser, "playground-failed")
    # only the latest try's document stays on the drive
    from conftest import wait_for
    wait_for("the earlier upload's removal", lambda: len(stack.get(
        "/api/v2/files/alice/.ibsol/web/playground", token=ALICE_TOKEN).json()["nodes"]) == 1)
    # a file past what the playground takes: said before anything is sent
    big = os.path.join(os.path.dirname(bad), "big.pdf")
    with open(big, "wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: nothing is written
    css(browser, "#message-close").click()
    css(browser, "#pg-file").send_keys(big)
    wait(browser, "the run button", lambda: "big.pdf" in css(browser, "#drop-text").text)
    css(browser, "#pg-run").click()
    msg = wait(browser, "the size message", lambda: visible_message(browser))
    assert msg == ("'big.pdf' is 65.0 MiB: the playground takes documents up to 64.0 MiB. "
                   "Run larger ones as a job (solution/run)."), msg
    shutil.rmtree(os.path.dirname(bad))


# ---- what the solution page shows: marketplace/info's readme and icon ------------------------------------------------


def test_info_gives_the_readme_and_the_icon(stack_factory):
    import base64
    import json
    s = stack_factory()
    icon = b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8"/></svg>'
    with open(os.path.join(EXAMPLE, "package.json")) as f:
        manifest = json.load(f)
    s.put_tree("/admin/plain", EXAMPLE)
    s.put_tree("/admin/iconic", EXAMPLE)
    s.put_file("/admin/iconic/package.json", json.dumps(dict(manifest, version="2.0.0", icon_file="img/icon.svg")))
    s.put_file("/admin/iconic/img/icon.svg", icon)
    s.call("DELETE", "/api/v2/files/admin/plain/README.md")
    s.put_file("/admin/plain/package.json", json.dumps(dict(manifest, version="1.5.0", icon_file="missing.png")))
    for folder in ("plain", "iconic"):
        r = s.post("/solution/create", {"content_folder": "/admin/" + folder, "output_folder": "/admin/out"})
        assert r.status_code == 200, r.text
        assert s.post("/marketplace/publish", {"ibsolution_path": r.json()["ibsolution_path"]}).status_code == 200
    info = s.get("/marketplace/info?name=invoice_demo&version=2.0.0", token=ALICE_TOKEN).json()
    with open(os.path.join(EXAMPLE, "README.md")) as f:
        assert info["readme"] == f.read()
    assert info["icon"] == "data:image/svg+xml;base64," + base64.b64encode(icon).decode()
    # a version without README.md, whose icon_file is not in its archive: neither key, and no error
    info = s.get("/marketplace/info?name=invoice_demo&version=1.5.0", token=ALICE_TOKEN).json()
    assert info["status"] == "OK" and "readme" not in info and "icon" not in info, info


def test_jobs_follow_a_run_through_its_events(stack, browser, package):
    """A background run: the jobs tab lists it, follows jobs/events (read with fetch, the token in the header)
    to its end and shows its records."""
    ensure_installed(stack, package)
    for i in range(6):
        with open(os.path.join(DEMO, "invoice-1001.txt"), "rb") as f:
            stack.put_file("/alice/web_jobs/in/inv-%d.txt" % i, f.read(), ALICE_TOKEN)
    r = stack.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0",
                                     "input_folder": "/alice/web_jobs/in"}, token=ALICE_TOKEN)
    assert r.status_code in (200, 202), r.text
    job = r.json()["job_id"]
    login(browser, stack.url, ALICE_TOKEN)
    wait(browser, "the catalog", lambda: css(browser, "#catalog").is_displayed())
    css(browser, '.tab[data-tab="jobs"]').click()
    row = wait(browser, "the job's row", lambda: css(browser, '#jobs-table tr[data-job="%s"]' % job))
    row.find_element("css selector", "button").click()  # Follow while it runs, Results once it has ended
    wait(browser, "the job's records", lambda: css(browser, "#job-results").text.count("invoice_no = INV-1001") == 6,
         timeout=60)
    assert css(browser, "#job-bar").get_attribute("style").replace(" ", "") == "width:100%;"
    assert "COMPLETE" in css(browser, "#job-msg").text
    # the stream itself, read by the page: an ended job answers with its end event at once
    ended = browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; followJob(arguments[0]).then(done, (e) => done('error: ' + e));",
        job)
    assert ended is True, ended
    shot(browser, "jobs-followed")


def test_an_upload_past_the_servers_limit_shows_why(stack_factory, browser, package):
    s = stack_factory({"IBSOL_MAX_UPLOAD": "1000"})
    login(browser, s.url, ADMIN_TOKEN)
    wait(browser, "the catalog", lambda: css(browser, "#catalog").is_displayed())
    css(browser, "#publish-file").send_keys(package)
    css(browser, "#publish-btn").click()
    msg = wait(browser, "the refusal", lambda: visible_message(browser).startswith("Too large") and visible_message(browser))
    assert msg.startswith("Too large for the server: ") and "1000" in msg, msg
    assert css(browser, "#apps-empty").is_displayed()
    shot(browser, "publish-too-large")


def test_a_scan_with_a_table_field(stack, browser):
    """A scan (shown as it is) and a TABLE field: its rows beside the page, each cell's box drawn, a row's cells
    highlighted when the row is hovered, boxes scaled by the page size the pages call gives."""
    import json
    from test_tables import ITEMS, content
    with open(os.path.join(EXAMPLE, "refiners/invoice.ibrefiner")) as f:  # the example may have line items itself
        has_items = any(x["name"] == "items" for x in json.load(f)["fields"])
    folder = content(stack, "web_tables", [] if has_items else [ITEMS])
    with open(os.path.join(stack.data, "drive", folder.lstrip("/"), "package.json")) as f:
        manifest = json.load(f)
    stack.put_file(folder + "/package.json", json.dumps(dict(manifest, name="web_tables")))
    r = stack.post("/solution/create", {"content_folder": folder, "output_folder": "/admin/web_tables_build"})
    assert r.status_code == 200, r.text
    assert stack.post("/marketplace/publish", {"ibsolution_path": r.json()["ibsolution_path"]}).status_code == 200
    assert stack.post("/marketplace/install", {"name": "web_tables", "version": "1.0.0"}).status_code == 200
    login(browser, stack.url, ALICE_TOKEN)
    wait(browser, "the catalog", lambda: css(browser, "#catalog").is_displayed())
    css(browser, '.tab[data-tab="playground"]').click()
    run_in_playground(browser, "web_tables 1.0.0", os.path.join(DEMO, "invoice-1003-scan.png"),
                      "return document.querySelectorAll('#boxes .box.cell').length > 0 && "
                      "document.getElementById('page-img').naturalWidth > 0", timeout=90)
    items = css(browser, 'tr.field[data-key="items"]')
    assert "Copy paper, 10 boxes" in items.text
    rec = browser.execute_script("return state.run.records[0]")
    total = [f for f in rec["results"] if f["key"] == "total"][0]
    fid = css(browser, 'tr.field[data-key="total"]').get_attribute("data-field")
    head = stack.get("/api/v1/pages", token=ALICE_TOKEN, params={"path": browser.execute_script("return state.run.path")})
    assert head.status_code == 200 and head.headers["Content-Type"] == "image/png"
    page_w = float(head.headers["X-Page-Width"])
    img = browser.execute_script("const r = document.getElementById('page-img').getBoundingClientRect();"
                                 "return [r.left, r.top, r.width, r.height];")
    box = browser.execute_script("const r = document.querySelector('#boxes [data-box=\"%s\"]').getBoundingClientRect();"
                                 "return [r.left, r.top, r.width, r.height];" % fid)
    scale = img[2] / page_w
    x0, y0, x1, y1 = total["bbox"]
    want = [img[0] + x0 * scale, img[1] + y0 * scale, (x1 - x0) * scale, (y1 - y0) * scale]
    for got, exp in zip(box, want):
        assert abs(got - exp) < 2.5, (box, want, total)
    # hovering the table's first row highlights that row's cells
    from selenium.webdriver.common.action_chains import ActionChains
    row = css(browser, 'tr[data-field="%s.0"]' % items.get_attribute("data-field"))
    ActionChains(browser).move_to_element(row).perform()
    wait(browser, "the row's highlighted cells", lambda: browser.execute_script(
        "return document.querySelectorAll('#boxes .box.cell.hot').length") == len(
        [f for f in rec["results"] if f["key"] == "items"][0]["cells"][0]))
    shot(browser, "playground-scan-table")


def test_jobs_follow_live_and_cancel(stack_factory, browser, package):
    """A job still running: Follow shows its progress as jobs/events brings it, Cancel stops it, and the stream's
    end shows it CANCELLED."""
    s = stack_factory({"IBSOL_POOL": "1"})  # one file at a time: the job runs for seconds
    ensure_installed(s, package)
    with open(os.path.join(DEMO, "invoice-1003-scan.png"), "rb") as f:
        scan = f.read()
    for i in range(12):  # OCR of each takes a good part of a second
        s.put_file("/alice/slow/in/scan-%02d.png" % i, scan, ALICE_TOKEN)
    r = s.post("/solution/run", {"name": "invoice_demo", "version": "1.0.0", "input_folder": "/alice/slow/in"},
               token=ALICE_TOKEN)
    assert r.status_code in (200, 202), r.text
    job = r.json()["job_id"]
    login(browser, s.url, ALICE_TOKEN)
    wait(browser, "the catalog", lambda: css(browser, "#catalog").is_displayed())
    css(browser, '.tab[data-tab="jobs"]').click()
    row = wait(browser, "the job's row", lambda: css(browser, '#jobs-table tr[data-job="%s"]' % job))
    buttons = row.find_elements("css selector", "button")
    assert [b.text for b in buttons] == ["Follow", "Cancel"]
    buttons[0].click()
    wait(browser, "live progress", lambda: "RUNNING: Completed" in css(browser, "#job-msg").text, timeout=60)
    shot(browser, "jobs-live")
    css(browser, '#jobs-table tr[data-job="%s"] button.danger' % job).click()
    wait(browser, "the cancelled job", lambda: css(browser, "#job-msg").text.startswith("CANCELLED"), timeout=60)
    assert "is being cancelled" in visible_message(browser)
    done = s.get("/jobs/status?job_id=" + job, token=ALICE_TOKEN).json()
    assert done["state"] == "DONE" and '"status":"CANCELLED"' in done["cur_status"].replace(" ", ""), done
