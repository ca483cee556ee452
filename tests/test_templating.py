import re

import jinja2
import pytest
from markupsafe import Markup

from spamfilter_plugin.errors import InvalidInput
from spamfilter_plugin.templating import environment, make_environment, render_fragment, stylesheet


def test_j2_templates_autoescape():
    env = environment()
    tpl = env.from_string("{{ value }}")
    assert tpl.render(value="<script>x</script>") == "&lt;script&gt;x&lt;/script&gt;"
    assert env.autoescape("toy/page.html.j2") is True
    assert env.autoescape("anything.j2") is True


def test_undefined_names_fail():
    with pytest.raises(jinja2.UndefinedError):
        environment().from_string("{{ missing }}").render()
    with pytest.raises(jinja2.UndefinedError):
        render_fragment("toy", "domain", csrf_token="t", info={})  # 'domain' not given


def test_render_fragment_escapes_and_carries_csrf():
    from spamfilter_plugin.events import Domain

    html = render_fragment(
        "toy",
        "domain",
        domain=Domain("x.example"),
        info={"destination": '"><img src=x>'},
        csrf_token="abc",
    )
    assert isinstance(html, Markup)
    assert '"><img' not in html and "&#34;&gt;&lt;img src=x&gt;" in html
    assert '<input type="hidden" name="csrf_token" value="abc">' in html
    assert "<script" not in html


def test_macros_require_the_csrf_token():
    env = environment()
    tpl = env.from_string(
        '{% import "_macros.html.j2" as ui %}{% call ui.form("a", csrf_token) %}x{% endcall %}'
    )
    with pytest.raises(jinja2.UndefinedError):
        tpl.render()
    assert 'value="t1"' in tpl.render(csrf_token="t1")


@pytest.mark.parametrize("vendor,name", [("../etc", "x"), ("toy", "../../passwd"), ("Toy", "x")])
def test_template_names_are_checked(vendor, name):
    with pytest.raises(InvalidInput):
        render_fragment(vendor, name)


def test_stylesheet_is_namespaced():
    """Every rule of the shared stylesheet applies inside a fragment (.sfp-fragment) or our
    own pages (.sfp-ui) only: a panel's elements are never styled by it."""
    css = re.sub(r"/\*.*?\*/", "", stylesheet(), flags=re.S)
    selectors = [
        rule.split("{")[-2].strip() for rule in css.split("}") if "{" in rule
    ]  # the rule's own selector, inside an @media block too
    assert len(selectors) > 20
    for selector in selectors:
        assert selector.startswith((".sfp-fragment", ":is(.sfp-fragment, .sfp-ui)")), selector


def test_the_console_stylesheet_uses_the_design_tokens():
    """The console's layout takes its colours and spacing from the shared tokens, which the
    fragments use too, so a fragment inside the console looks like the console."""
    from spamfilter_plugin.web.site import console_css

    tokens = set(re.findall(r"(--sfp-[a-z0-9-]+):", stylesheet()))
    used = set(re.findall(r"var\((--sfp-[a-z0-9-]+)\)", console_css() + stylesheet()))
    assert {"--sfp-primary", "--sfp-danger", "--sfp-ok-bg", "--sfp-err-bg"} <= tokens
    assert used and used <= tokens, used - tokens


def test_package_templates_are_found_without_extra_loaders():
    env = make_environment()
    assert "_macros.html.j2" in env.list_templates()


def test_every_number_input_gets_the_bounds_of_its_schema():
    """A number input without a step refuses decimals in the browser; every number field is
    made by ui.number, with the min, max and step its schema allows."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "templates"
    for path in root.rglob("*.j2"):
        text = path.read_text(encoding="utf-8")
        if path.name != "_macros.html.j2":
            assert 'type="number"' not in text, f"{path}: use ui.number"
        for call in re.findall(r"ui\.number\(([^)]*)\)", text):
            assert call.count(",") >= 3, f"{path}: ui.number({call}) without its bounds"


def test_number_bounds_follow_the_schema():
    from marshmallow import Schema, fields, validate

    from spamfilter_plugin.templating import number_bounds

    class Form(Schema):
        score = fields.Float(validate=validate.Range(0, 100))
        port = fields.Integer(validate=validate.Range(1, 65535))
        text = fields.String(metadata={"min": -9, "max": 9, "step": 0.01})

    assert number_bounds(Form, "score") == {"min": 0, "max": 100, "step": "any"}
    assert number_bounds(Form(), "port") == {"min": 1, "max": 65535, "step": 1}
    assert number_bounds(Form, "text") == {"min": -9, "max": 9, "step": 0.01}


def test_console_times_say_their_zone_and_how_long_ago():
    from spamfilter_plugin.templating import format_when, relative_time

    now = 1_800_000_000.0
    assert relative_time(now - 10, now) == "just now"
    assert relative_time(now - 180, now) == "3 min ago"
    assert relative_time(now + 2 * 3600, now) == "in 2 h"
    assert relative_time(now - 3 * 86400, now) == "3 d ago"
    shown = str(format_when(now - 180, now))
    assert shown.startswith('<time datetime="2027-01-15T07:57:00Z">2027-01-15 07:57 UTC')
    assert "(3 min ago)" in shown


def test_fragment_times_say_their_zone_and_how_long_ago():
    import time

    env = make_environment()
    html = env.from_string("{{ t|sfp_time }}").render(t=time.time() - 180)
    assert re.fullmatch(
        r'<time datetime="[0-9T:-]+Z">\d{4}-\d\d-\d\d \d\d:\d\d UTC '
        r'<small class="sfp-ago">\(3 min ago\)</small></time>',
        html,
    ), html
    assert env.from_string("{{ t|sfp_time }}").render(t="not a time") == "not a time"
