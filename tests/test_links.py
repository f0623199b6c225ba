"""Links in emails from any sender (`remind` as well as `serve`, under PACING_BASE_URL or
--base-url, https unless --insecure-links), and the pages they lead to: undo after a one-click
unsubscribe, used and replayed links that change nothing and say where things stand, expired
links that say how else to change it, the delivery choice (each, daily, weekly) and
`pacing db delivery`. Real `serve` processes on loopback, a real SMTP server, a real state
store; the pages checked by axe-core and vnu."""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from smtpd import SmtpServer
from typing import Any

import pytest
from serving import CLI, printed_urls, serving

from pacing.adapters.state import State
from pacing.reminders.actions import Links

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / "tests" / "kit" / "node_modules"
AXE = KIT / "axe-core" / "axe.min.js"
VNU = KIT / "vnu-jar" / "build" / "dist" / "vnu.jar"
AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
ITEM = "targeted-l3-2024/step-3/box-27-plan-for-improvement-link"
STEP_3 = '"targeted-l3-2024/step-3/box-28-submission" = 2024-12-05\n'
LEAD = "lortega@sunrise.example.org"
PUBLIC = "https://cim.example.org"
NOW = "2024-11-20T16:00:05Z"  # just after box 27's 14-day reminder (08:00 Los Angeles)
AT = dt.datetime(2024, 11, 20, 16, tzinfo=dt.UTC)  # links are made as of the served clock
PAGES: dict[str, str] = {}  # name -> an /act page's HTML, for the a11y checks at the end


@dataclass
class Served:
    base: str
    folder: Path
    env: dict[str, str]

    @property
    def state(self) -> State:
        return State(f"sqlite:///{self.env['PACING_STATE_DIR']}/pacing.db")

    def links(self, ttl: dt.timedelta = dt.timedelta(days=60)) -> Links:
        return Links(self.base, self.state.feed_secrets()[0], ttl=ttl)


def sunrise_folder(root: Path) -> Path:
    leas = root / "leas"
    leas.mkdir()
    text = (ROOT / "examples" / "sunrise-usd.toml").read_text()
    (leas / "sunrise-usd.toml").write_text(text.replace(STEP_3, ""))
    return leas


def environment(state: Path, **more: str) -> dict[str, str]:
    state.mkdir(exist_ok=True)
    env = {**os.environ, "PACING_STATE_DIR": str(state), "NO_COLOR": "1", "PACING_NOW": NOW,
           **more}  # fmt: skip
    for name in ("PACING_DB", "PACING_FEED_SECRET", "PACING_BASE_URL",
                 "PACING_UNSUBSCRIBE_MAILTO", "PACING_SMTP_HOST"):  # fmt: skip
        if name not in more:
            env.pop(name, None)
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip


def http(url: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def text(page: str) -> str:
    """The page's words: head and tags out, entities decoded, spaces folded."""
    body = re.sub(
        r"</?(strong|code|em|a)\b[^>]*>", "", re.sub(r"<head>.*</head>", "", page, flags=re.S)
    )
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def form_target(url: str, page: str, label: str) -> str:
    """The absolute URL the form whose button says `label` posts to."""
    for action, button in re.findall(r'<form method="post"(?: action="([^"]*)")?>(.*?)</form>',
                                     page, re.S):  # fmt: skip
        if f">{label}</button>" in button:
            return urllib.parse.urljoin(url, html.unescape(action)) if action else url
    raise AssertionError(f"no {label!r} button in {page}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`serve --no-reminders` on loopback (its pages only: the links are made here, as the
    daemon makes them, under the served base URL)."""
    root = tmp_path_factory.mktemp("links")
    folder = sunrise_folder(root)
    env = environment(root / "state")
    with serving(folder, env, root / "serve.log", "--no-reminders") as (base, _):
        yield Served(base, folder, env)


# ---------------------------------------------------------------- links from any sender


def wait_for(smtp: SmtpServer, to: str) -> Message:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with smtp.sink.lock:
            found = [m for m in smtp.sink.messages if m["To"] == to]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no email to {to}: {[m['To'] for m in smtp.sink.messages]}")


def bodies(message: Message) -> list[str]:
    return [p.get_payload(decode=True).decode() for p in message.walk() if not p.is_multipart()]


def test_remind_with_pacing_base_url_builds_links_a_served_instance_accepts(
    tmp_path: Path,
) -> None:
    """`remind` alone (no `serve` in the process) under PACING_BASE_URL: its emails carry the
    LEA's page, Mark done and one-click unsubscribe links, and a `serve` sharing the state
    store (here behind the public URL's stand-in on loopback) accepts them."""
    folder = sunrise_folder(tmp_path)
    with SmtpServer() as smtp:
        env = environment(tmp_path / "state", PACING_BASE_URL=PUBLIC + "/",
                          PACING_SMTP_HOST="127.0.0.1", PACING_SMTP_PORT=str(smtp.port),
                          PACING_SMTP_TLS="none", PACING_MAIL_FROM="cim@pacing.test",
                          PACING_LATE_SECONDS="3600")  # fmt: skip
        preview = run(env, "remind", str(folder), "--dry-run", "--from", "2024-11-20")
        assert preview.returncode == 0, preview.stderr
        assert f"links under {PUBLIC} (PACING_BASE_URL)" in preview.stderr
        daemon = subprocess.Popen([*CLI, "remind", str(folder)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            message = wait_for(smtp, LEAD)
        finally:
            daemon.terminate()
            _, err = daemon.communicate(timeout=30)
    assert f"emails carry links under {PUBLIC}" in err, err
    body = "\n".join(bodies(message))
    unsubscribe = " ".join(str(message["List-Unsubscribe"]).split()).split(", ")[0].strip("<>")
    assert unsubscribe.startswith(f"{PUBLIC}/act/unsubscribe/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    done = next(w for w in re.findall(r"https://[^\s\"<>]+", body) if "/act/done/" in w)
    # the page link: the very URL `serve` (and `pacing feeds`) gives for this LEA
    urls = printed_urls(run(env, "feeds", str(folder), "--base-url", PUBLIC).stdout)
    page = urls["sunrise-usd"][1]
    assert page in body

    with serving(folder, env, tmp_path / "serve.log", "--no-reminders") as (base, _):
        local = {url: url.replace(PUBLIC, base) for url in (page, done, unsubscribe)}
        status, shown = http(local[page])
        assert status == 200 and "Sunrise" in shown
        status, shown = http(local[done])
        assert status == 200 and "Mark done" in shown
        status, shown = http(local[unsubscribe], b"List-Unsubscribe=One-Click")
        assert status == 200 and "no more reminders" in shown, shown
    assert list(State(f"sqlite:///{tmp_path}/state/pacing.db").opted_out("sunrise-usd")) == [LEAD]


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(w in lines[0] for w in words), lines[0]


def test_http_base_url_is_refused_without_insecure_links(tmp_path: Path) -> None:
    profile = str(sunrise_folder(tmp_path) / "sunrise-usd.toml")
    env = environment(tmp_path / "state")
    preview = ("remind", profile, "--dry-run", "--from", "2024-11-20", "--until", "2024-11-21")
    http_url = "http://cim.example.org"
    # the flag: exit 2, naming it; the variable: exit 1, naming it
    one_line_error(run(env, *preview, "--base-url", http_url), 2, "--base-url", "https")
    one_line_error(run(env, "serve", str(tmp_path / "leas"), "--port", "1", "--base-url",
                       http_url), 2, "--base-url", "https")  # fmt: skip
    one_line_error(run(env, *preview, "--base-url", "cim.example.org"), 2, "--base-url")
    one_line_error(run({**env, "PACING_BASE_URL": http_url}, *preview), 1,
                   "PACING_BASE_URL", "https", "--insecure-links")  # fmt: skip
    one_line_error(run({**env, "PACING_UNSUBSCRIBE_MAILTO": "nobody"}, *preview), 1,
                   "PACING_UNSUBSCRIBE_MAILTO")  # fmt: skip
    config = tmp_path / "state" / "pacing.toml"
    config.write_text(f'[links]\nbase_url = "{http_url}"\n')
    one_line_error(run(env, *preview), 1, str(config), "links.base_url", "https")
    config.unlink()

    # --insecure-links: for testing on loopback, and the preview says where links point
    for options, words in (
        (("--base-url", http_url, "--insecure-links"), f"links under {http_url} (--base-url)"),
        (("--insecure-links",), "no links"),
        ((), "no links (page, Mark done, one-click unsubscribe): no --base-url or PACING_BASE_URL"),
    ):
        result = run(env, *preview, *options)
        assert result.returncode == 0 and words in result.stderr, result.stderr
    result = run({**env, "PACING_BASE_URL": http_url}, *preview, "--insecure-links")
    assert result.returncode == 0 and f"links under {http_url} (PACING_BASE_URL)" in result.stderr
    config.write_text(f'[links]\nbase_url = "{PUBLIC}"\nunsubscribe_mailto = "cim@x.org"\n')
    result = run(env, *preview)
    assert f"links under {PUBLIC} ({config}: links.base_url)" in result.stderr
    assert "List-Unsubscribe mailto: cim@x.org" in result.stderr
    result = run({**env, "PACING_BASE_URL": "https://other.example.org"}, *preview)
    assert "links under https://other.example.org (PACING_BASE_URL)" in result.stderr
    # https but nothing sent: serve --no-reminders may keep an http URL for its pages
    assert run(env, "feeds", str(tmp_path / "leas"), "--base-url", http_url).returncode == 0
    # `feeds` prints the URLs `serve` serves: under PACING_BASE_URL too
    printed = run({**env, "PACING_BASE_URL": PUBLIC}, "feeds", str(tmp_path / "leas")).stdout
    assert printed_urls(printed)["sunrise-usd"][1].startswith(f"{PUBLIC}/feeds/sunrise-usd/")


# ---------------------------------------------------------------- the pages


def test_undo_after_one_click_unsubscribe_restores(served: Served) -> None:
    who = "undo@sunrise.example.org"
    now = AT
    url = served.links().unsubscribe("sunrise-usd", who, now)
    status, page = http(url)
    assert status == 200 and "Stop the reminders for Sunrise" in text(page)
    PAGES["unsubscribe-confirm"] = page
    status, page = http(url, b"List-Unsubscribe=One-Click")
    assert status == 200 and f"{who} will get no more reminders for Sunrise" in text(page)
    PAGES["unsubscribed"] = page
    assert who in served.state.opted_out("sunrise-usd")
    undo = form_target(url, page, "Undo")
    assert "/act/resubscribe/" in undo
    counter = served.state.plan_counter()
    status, again = http(undo, b"")
    assert status == 200 and f"{who} gets the reminders for Sunrise" in text(again)
    assert "again" in text(again)
    PAGES["resubscribed"] = again
    assert who not in served.state.opted_out("sunrise-usd")
    assert served.state.plan_counter() > counter  # running daemons re-plan
    # the undo page offers the way back; a replayed undo changes nothing and says so
    status, replay = http(undo, b"")
    assert status == 200 and "Reminders are on" in replay and "again." not in text(replay)
    assert "/act/unsubscribe/" in form_target(undo, replay, "Unsubscribe")
    # an undo link opened (GET) while unsubscribed asks first
    served.state.opt_out("sunrise-usd", who, now)
    status, ask = http(undo)
    assert (
        status == 200 and "Send them again" in ask and who in served.state.opted_out("sunrise-usd")
    )
    PAGES["resubscribe-confirm"] = ask


def test_a_used_link_says_where_things_stand_and_a_replay_changes_nothing(
    served: Served,
) -> None:
    who = "Replay@Sunrise.example.org"
    links = served.links()
    url = links.unsubscribe("sunrise-usd", who, AT)
    assert http(url, b"List-Unsubscribe=One-Click")[0] == 200
    first = served.state.opted_out("sunrise-usd")[who.lower()]
    time.sleep(1.1)
    status, page = http(url, b"List-Unsubscribe=One-Click")  # a replay: the first one stands
    assert status == 200 and served.state.opted_out("sunrise-usd")[who.lower()] == first
    words = text(page)
    assert (f"{who.lower()} gets no reminders for Sunrise Unified School District since "
            "November 20, 2024") in words  # fmt: skip
    assert "Undo" in words and form_target(url, page, "Undo")
    PAGES["unsubscribe-used"] = page
    status, page = http(url)  # a used link opened again: the same
    assert status == 200 and "since November 20, 2024" in text(page) and "Undo" in page

    done = links.done("sunrise-usd", who, ITEM, AT)
    status, page = http(done)
    assert status == 200 and "Mark this done?" in page
    PAGES["done-confirm"] = page
    status, page = http(done, b"")
    assert status == 200 and "is marked done" in page
    mark = served.state.done_marks("sunrise-usd")[ITEM]
    time.sleep(1.1)
    status, page = http(done, b"")  # a replay: the first mark stands
    assert status == 200 and served.state.done_marks("sunrise-usd")[ITEM] == mark
    words = text(page)
    assert (
        "Plan for Improvement link (Sunrise Unified School District) is marked done since "
        "November 20, 2024"
        in words
        and f"by {who.lower()}" in words
    )
    assert "pacing undo sunrise-usd.toml " + ITEM in words
    PAGES["done-used"] = page
    served.state.mark_done("sunrise-usd", ITEM, None)


def test_an_expired_link_says_where_the_address_stands_and_how_else(served: Served) -> None:
    who = "expired@sunrise.example.org"
    old = served.links(ttl=dt.timedelta(days=-1))
    now = AT
    url = old.unsubscribe("sunrise-usd", who, now)
    status, page = http(url, b"List-Unsubscribe=One-Click")
    words = text(page)
    assert status == 410 and "expired" in words and who not in served.state.opted_out("sunrise-usd")
    assert f"{who} gets the reminders for Sunrise Unified School District" in words
    assert "newer reminder email" in words and "CIM team lead" in words
    PAGES["expired-on"] = page

    served.state.opt_out("sunrise-usd", who, dt.datetime(2024, 10, 2, 17, tzinfo=dt.UTC))
    status, page = http(old.resubscribe("sunrise-usd", who, now))
    words = text(page)
    assert status == 410
    assert (
        f"{who} gets no reminders for Sunrise Unified School District since October 2, "
        "2024" in words
    )
    assert "any newer reminder email carries a fresh link" in words.lower()
    assert "CIM team lead" in words and f"pacing db opt-in sunrise-usd.toml {who}" in words
    PAGES["expired-off"] = page
    # the operator's command, as shown, works
    profile = served.folder / "sunrise-usd.toml"
    result = run(served.env, "db", "opt-in", str(profile), who)
    assert result.returncode == 0, result.stderr
    assert who not in served.state.opted_out("sunrise-usd")

    status, page = http(old.done("sunrise-usd", who, ITEM, now), b"")
    assert status == 410 and ITEM not in served.state.done_marks("sunrise-usd")
    assert f"pacing done sunrise-usd.toml {ITEM}" in text(page)
    assert "is not marked done" in text(page)
    status, page = http(old.delivery(who, now), b"mode=weekly")
    assert status == 410 and who not in served.state.deliveries()
    assert f"pacing db delivery {who} MODE" in text(page) and "each" in text(page)

    # forged: 404, whatever the action
    token = url.rsplit("/", 1)[1]
    for action in ("unsubscribe", "resubscribe", "done", "delivery", "nope"):
        assert http(f"{served.base}/act/{action}/{token[:-2]}xx", b"")[0] == 404
    assert http(f"{served.base}/act/resubscribe/{token}")[0] == 404  # not its action


def test_delivery_link_round_trip(served: Served) -> None:
    who = "Delivery@Sunrise.example.org"
    url = served.links().delivery(who, AT)
    assert "/act/delivery/" in url
    status, page = http(url)
    words = text(page)
    assert status == 200
    assert "each: every reminder, several on one morning bundled in one email" in words
    assert "daily: one summary each working morning" in words
    assert "weekly: the Monday overview, plus any overdue CDE deadline at once" in words
    assert re.search(r'value="each" checked', page)  # the current one: the default
    assert page.count('type="radio" name="mode"') == 3 and "<script" not in page
    PAGES["delivery"] = page

    counter = served.state.plan_counter()
    status, page = http(url, b"mode=weekly")
    assert status == 200 and "Saved" in page
    PAGES["delivery-saved"] = page
    mode, since = served.state.deliveries()[who.lower()]
    assert mode == "weekly" and served.state.plan_counter() > counter
    status, page = http(url)
    assert re.search(r'value="weekly" checked', page) and "chosen on November 20, 2024" in text(
        page
    )
    time.sleep(1.1)
    assert http(url, b"mode=weekly")[0] == 200  # a replay: nothing changes
    assert served.state.deliveries()[who.lower()] == (mode, since)
    assert http(url, b"mode=daily")[0] == 200
    assert served.state.deliveries()[who.lower()][0] == "daily"
    status, page = http(url, b"mode=hourly")
    assert status == 400 and served.state.deliveries()[who.lower()][0] == "daily"
    PAGES["delivery-bad"] = page
    assert http(url, b"")[0] == 400


def test_db_delivery(tmp_path: Path) -> None:
    env = environment(tmp_path / "state")
    result = run(env, "db", "delivery", "Pat@Sunrise.example.org", "daily")
    assert result.returncode == 0 and "pat@sunrise.example.org gets email: daily" in result.stdout
    state = State(f"sqlite:///{tmp_path}/state/pacing.db")
    assert state.deliveries()["pat@sunrise.example.org"][0] == "daily"
    counter = state.plan_counter()
    result = run(env, "db", "delivery", "pat@sunrise.example.org", "weekly")
    assert "gets email: weekly (was daily)" in result.stdout
    assert state.deliveries()["pat@sunrise.example.org"][0] == "weekly"
    assert state.plan_counter() > counter
    result = run(env, "db", "delivery", "pat@sunrise.example.org", "weekly")
    assert result.returncode == 0 and "already" in result.stdout
    bad = run(env, "db", "delivery", "pat@sunrise.example.org", "hourly")
    assert bad.returncode == 2 and "hourly" in bad.stderr
    bad = run(env, "db", "delivery", "not-an-address", "daily")
    assert bad.returncode == 2 and "ADDRESS" in bad.stderr
    assert set(state.deliveries()) == {"pat@sunrise.example.org"}
    with pytest.raises(ValueError):
        state.set_delivery("x@y.org", "hourly", AT)


def test_delivery_choices_are_shared_through_postgresql() -> None:
    """Two instances on one PostgreSQL store: a choice made through one is what the other
    plans with; the same choice again keeps its time and does not make daemons re-plan."""
    from pg import fresh_database

    with fresh_database() as url:
        one, two = State(url), State(url)
        assert one.schema_version() == "0005" and two.deliveries() == {}
        counter = two.plan_counter()
        one.set_delivery("Pat@X.org", "weekly", AT)
        assert two.deliveries() == {"pat@x.org": ("weekly", AT)}
        assert two.plan_counter() == counter + 1
        two.set_delivery("pat@x.org", "weekly", AT + dt.timedelta(days=1))
        assert one.deliveries() == {"pat@x.org": ("weekly", AT)}
        assert one.plan_counter() == counter + 1
        two.set_delivery("pat@x.org", "each", AT + dt.timedelta(days=2))
        assert one.deliveries() == {"pat@x.org": ("each", AT + dt.timedelta(days=2))}
        for state in (one, two):
            state.engine.dispose()


# ---------------------------------------------------------------- accessible pages


@pytest.fixture(scope="module")
def page_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    assert len(PAGES) >= 10, sorted(PAGES)  # the tests above ran and kept their pages
    root = tmp_path_factory.mktemp("act-pages")
    out = []
    for name, page in sorted(PAGES.items()):
        (path := root / f"{name}.html").write_text(page)
        out.append(path)
    return out


@pytest.mark.parametrize("width", (1280, 390))
def test_act_pages_pass_axe(browser: Any, page_files: list[Path], width: int) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run tests/setup.sh (npm ci in tests/kit)")
    script = AXE.read_text()
    for path in page_files:
        page = browser.new_page(viewport={"width": width, "height": 800})
        try:
            page.goto(path.as_uri(), wait_until="load")
            page.add_script_tag(content=script)
            result = page.evaluate(
                "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", AA
            )
            bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
                   for v in result["violations"]]  # fmt: skip
            assert bad == [], (path.name, width, bad)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, path.name
        finally:
            page.close()


def test_act_pages_pass_vnu(page_files: list[Path]) -> None:
    java = shutil.which("java")
    if not VNU.exists() or java is None:
        pytest.fail("vnu (tests/kit) and java are needed: run tests/setup.sh")
    result = subprocess.run([java, "-jar", str(VNU), "--errors-only", "--format", "json",
                             *map(str, page_files)], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    messages = json.loads(result.stderr or result.stdout)["messages"]
    assert [(Path(m.get("url", "")).name, m["message"]) for m in messages] == []
