"""The web console in headless Chromium (issue #12), driven by Playwright
with Debian's chromium; console_test.sh starts mailroomd and runs this.

The workload first, over the HTTP API: 10 messages on topic T; a group
that fetches and acks nothing (it lags by every record); a group with one
attempt per message that rejects one (quarantined in T.dlq). Then the
console, opened with the token in its address: it loads with no console
error and no page error; its lag table shows the lagging group with the
lag the API reports; its dead-letter table lists the quarantined message
(count 1, its reason); Show opens the record; Replay moves it back to T
(T's records go from 10 to 11). A second quarantined message (another
reason) is purged from a console opened without the token: its reads are
refused, so it asks for the token; once it is entered, Purge purges (the
API then lists none open). A
process reports restarts (as mr_actors_report does: 2, then 5, of
supervisor "accounts"): the supervision panel shows 5 and the process.
Screenshots are kept in ARTIFACTS, console-failed.png when a check fails.

Environment: MRT_URL (the HTTP API), MRT_TOKEN, MRT_TOPIC, ARTIFACTS.
Exit: 0 passed, 1 failed (an assertion), 77 skipped (no Playwright).
"""
import json
import os
import sys
import time
import urllib.request

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    print("SKIP: python3 has no playwright (scripts/deps.sh test installs it with pip)")
    sys.exit(77)

CHROMIUM = "/usr/bin/chromium"
if not os.access(CHROMIUM, os.X_OK):
    print("SKIP: no %s (scripts/deps.sh test installs Debian's chromium)" % CHROMIUM)
    sys.exit(77)

U, TOKEN, T = os.environ["MRT_URL"], os.environ["MRT_TOKEN"], os.environ["MRT_TOPIC"]
D = T + ".dlq"
LAGGING, POISON = T + "-lagging", T + "-poison"
ARTIFACTS = os.environ["ARTIFACTS"]


def call(method, path, body=None):
    req = urllib.request.Request(
        U + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)


def records(topic):
    """The records of topic's partitions, by their ends."""
    n = 0
    for p in range(2):
        r = call("GET", "/v1/topics/%s/partitions/%d/records?max_records=1" % (topic, p))
        n += r["high_watermark"] - r["log_start"]
    return n


def wait(what, fn, secs=60):
    deadline = time.time() + secs
    while True:
        v = fn()
        if v:
            return v
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.3)


# ---- the workload ----
r = call("POST", "/v1/topics/%s/messages" % T,
         {"messages": [{"key": "k%d" % i, "value": "v%d" % i} for i in range(10)]})
assert r["published"] == 10, r
lag_s = call("POST", "/v1/sessions", {"group": LAGGING, "topics": [T]})["session"]
call("POST", "/v1/sessions/%s/fetch" % lag_s, {"max_messages": 1, "wait_ms": 3000})
poison_s = call("POST", "/v1/sessions",
                {"group": POISON, "topics": [T], "mode": "unordered",
                 "retry": {"max_attempts": 1}})["session"]
got = []
wait("the poison group's messages", lambda: got.extend(
    call("POST", "/v1/sessions/%s/fetch" % poison_s,
         {"max_messages": 100, "wait_ms": 1000})["messages"]) or len(got) >= 10)
bad, old = got[0], got[1]
call("POST", "/v1/sessions/%s/reject" % poison_s,
     {"handles": [bad["handle"]], "reason": "bad schema: no total"})
call("POST", "/v1/sessions/%s/reject" % poison_s,
     {"handles": [old["handle"]], "reason": "too old: expired"})
call("POST", "/v1/sessions/%s/ack" % poison_s, {"handles": [m["handle"] for m in got[2:]]})
wait("the quarantined records in " + D,
     lambda: call("GET", "/v1/dlq/%s" % D)["matched"] == 2)
want_lag = wait("the lagging group's lag", lambda: sum(
    p["lag"] for p in call("GET", "/v1/lag?group=%s&refresh=true" % LAGGING)["partitions"]
    if p["topic"] == T and p["lag"] >= 0) == 10 and 10)
print("workload: 10 published, %s lags by %d, two messages quarantined in %s"
      % (LAGGING, want_lag, D))
for n in (2, 5):
    call("POST", "/v1/actors", {"process": "bank/4242", "instance": "c0ffee",
                                "supervisors": [{"name": "accounts", "restarts": n}]})

# ---- the console ----
errors = []


def lag_and_supervision(page):
    # The lagging group's rows, and their sum as the API reports it.
    lag_rows = page.locator("#lag-table tbody tr", has_text=LAGGING)
    lag_rows.first.wait_for(timeout=20000)
    shown = 0
    for i in range(lag_rows.count()):
        cells = lag_rows.nth(i).locator("td").all_inner_texts()
        assert cells[0] == LAGGING and cells[1] == T, cells
        shown += int(cells[3])
    assert shown == want_lag, ("console lag", shown, "api lag", want_lag)
    print("ok: the console shows %s lagging by %d" % (LAGGING, shown))

    # Supervision: the restarts the process reported, and the process.
    sup = page.locator("#sup-table tbody tr", has_text="accounts")
    sup.wait_for(timeout=20000)
    cells = sup.locator("td").all_inner_texts()
    assert cells[0] == "accounts" and cells[1] == "5", cells
    proc = page.locator("#proc-table tbody tr", has_text="bank/4242")
    proc.wait_for(timeout=20000)
    assert "accounts 5" in proc.locator("td").all_inner_texts()[2]
    print("ok: the console shows the supervisor's 5 restarts and its process")


def dlq_row(page, reason):
    # The dead-letter queue: the console picks the first *.dlq topic.
    page.fill("#dlq-topic", D)
    page.click("#dlq-form button")
    row = page.locator("#dlq-table tbody tr", has_text=reason)
    row.wait_for(timeout=20000)
    return row


def show_and_replay(page):
    row = dlq_row(page, "bad schema")
    cells = row.locator("td").all_inner_texts()
    assert cells[1] == "1" and "bad schema: no total" in cells[2] and T in cells[3], cells
    row.locator("button", has_text="Show").click()
    page.wait_for_selector("#dlq-record:not([hidden])", timeout=20000)
    shown_record = json.loads(page.inner_text("#dlq-record"))
    assert shown_record["payload"] == bad["value"], (shown_record["payload"], bad["value"])
    print("ok: the console lists and shows the quarantined message")
    page.screenshot(path=os.path.join(ARTIFACTS, "console.png"), full_page=True)

    before = records(T)
    row.locator("button", has_text="Replay").click()
    page.wait_for_selector("#notice:has-text('Replayed 1 of 1')", timeout=30000)
    wait("the replayed record in " + T, lambda: records(T) == before + 1)
    print("ok: Replay moved the message back to %s (%d records, was %d)"
          % (T, before + 1, before))
    page.screenshot(path=os.path.join(ARTIFACTS, "console-replayed.png"), full_page=True)


def purge_asking_for_the_token(page):
    # Every read needs the token too (one is set): the console asks.
    page.wait_for_selector("#token-form.want", timeout=20000)
    page.wait_for_selector("#notice:has-text('needs the token')", timeout=20000)
    page.fill("#token", TOKEN)
    page.press("#token", "Enter")
    page.wait_for_selector("#token-form:not(.want)", timeout=20000)
    page.wait_for_selector("#kafka.ok", timeout=20000)
    row = dlq_row(page, "too old")
    row.locator("button", has_text="Purge").click()
    page.wait_for_selector("#notice:has-text('Purged 1 of 1')", timeout=30000)
    wait("the purged record gone from the open ones",
         lambda: call("GET", "/v1/dlq/%s" % D)["matched"] == 0)
    print("ok: opened without the token, the console asks for it; given, "
          "Purge purges")


with sync_playwright() as pw:
    browser = pw.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync"])
    page = None
    try:
        for with_token in (True, False):
            ctx = browser.new_context(viewport={"width": 1280, "height": 1400})
            page = ctx.new_page()
            # Without the token its first reads are refused (401), on
            # purpose: Chromium logs each as a failed load.
            page.on("console",
                    lambda m, t=with_token: m.type == "error" and
                    (t or "401" not in m.text) and errors.append("console: " + m.text))
            page.on("pageerror", lambda e: errors.append("page: %s" % e))
            page.on("dialog", lambda d: d.accept())
            if with_token:
                page.goto(U + "/#token=" + TOKEN)
                assert "#token" not in page.url, "the token stays in the address: " + page.url
                page.wait_for_selector("#kafka.ok", timeout=20000)
                lag_and_supervision(page)
                show_and_replay(page)
            else:
                page.goto(U + "/")
                purge_asking_for_the_token(page)
            ctx.close()
    except BaseException:
        if page is not None:
            page.screenshot(path=os.path.join(ARTIFACTS, "console-failed.png"),
                            full_page=True)
            print("the console when the check failed: %s"
                  % os.path.join(ARTIFACTS, "console-failed.png"))
        raise
    finally:
        browser.close()

assert not errors, errors
print("ok: no console or page errors")
