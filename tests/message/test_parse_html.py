"""HTML to readable text and its links."""

from __future__ import annotations

import pytest

from seawall.message import parse_message
from seawall.message.html import Link, render_flat, render_html, too_deep


@pytest.mark.parametrize(
    ("html", "text"),
    [
        pytest.param("<p>Hello <b>World</b></p>", "Hello World", id="inline"),
        pytest.param("<p>end.</p><p>Start</p>", "end. Start", id="blocks-separate"),
        pytest.param("F<span>a</span>cebook", "Facebook", id="letter-spans-join"),
        pytest.param("a<br>b<BR/>c<Div>d</DIV>e", "a b c d e", id="case-insensitive-blocks"),
        pytest.param("<td>Price</td><td>10 €</td>", "Price 10 €", id="cells"),
        pytest.param("<script>var x='<p>no</p>';</script>yes", "yes", id="script"),
        pytest.param("<style>p{color:red}</style>shown", "shown", id="style"),
        pytest.param("<head><title>T</title></head><body>B</body>", "B", id="no-title"),
        pytest.param("a&nbsp;&amp;&nbsp;b &lt;tag&gt;", "a & b <tag>", id="entities"),
        pytest.param("<!-- hidden --> seen", "seen", id="comment"),
        pytest.param("  lots   of\n\n white\tspace  ", "lots of white space", id="spaces"),
        pytest.param("<frameset><frame src='x'></frameset>", "", id="frameset"),
        pytest.param("", "", id="empty"),
        pytest.param("<<<>>></p></div><p", "<<<>>>", id="broken"),
    ],
)
def test_text(html: str, text: str) -> None:
    assert render_html(html).text == text


def test_links() -> None:
    rendered = render_html(
        '<a href="http://a.example/">Click <b>here</b></a>'
        '<a name="anchor">no href</a>'
        '<img src="http://img.example/p.png">'
        '<area href="http://area.example/">'
        '<iframe src="http://frame.example/"></iframe>'
        '<form action="http://post.example/login"><input></form>'
        '<meta http-equiv="Refresh" content="0; URL=\'http://refresh.example/\'">'
    )
    assert rendered.links == [
        Link("http://a.example/", "href", "Click here"),
        Link("http://area.example/", "href", None),
        Link("http://img.example/p.png", "src", None),
        Link("http://frame.example/", "src", None),
        Link("http://post.example/login", "action", None),
        Link("http://refresh.example/", "href", None),
    ]


def test_html_part_in_a_message() -> None:
    raw = (
        b"Content-Type: text/html; charset=windows-1252\r\n\r\n"
        b'<html><body><p>Gr\xfc\xdfe</p><a href="https://www.paypal.com.evil.example/x">'
        b"www.paypal.com</a></body></html>"
    )
    msg = parse_message(raw)
    assert msg.has_html
    assert msg.text == "Grüße www.paypal.com"
    href, shown = msg.urls
    assert (href.host, href.source, href.link_text) == (
        "www.paypal.com.evil.example",
        "href",
        "www.paypal.com",
    )
    assert (shown.host, shown.source) == ("www.paypal.com", "bare")


@pytest.mark.parametrize(
    "html",
    [
        "<table>" + "<tr><td><font>cell</td>" * 5000 + "</table>",  # unclosed <font> in cells
        "<ul>" + "<li><b>item" * 5000 + "</ul>",  # unclosed <li> and <b>
        "<p>para" * 5000,
        "<div>x</div>" * 5000,
        "<br>" * 20000,
    ],
)
def test_messy_but_shallow_html_is_not_too_deep(html: str) -> None:
    assert not too_deep(html)
    assert not render_html(html).too_deep


def test_deep_html_is_rendered_flat() -> None:
    html = '<div><a href="http://deep.example/">deep &amp; down</a>' * 20000
    assert too_deep(html)
    rendered = render_html(html)
    assert rendered.too_deep
    assert rendered.text.startswith("deep & down deep & down")
    assert rendered.links[0] == Link("http://deep.example/", "href", None)


def test_render_flat() -> None:
    rendered = render_flat(
        "<p>a<b>b</b> &lt;c&gt;<img src='http://i.example/x.png'><form action=/p>"
    )
    assert rendered.text == "a b <c>"
    assert rendered.links == [
        Link("http://i.example/x.png", "src", None),
        Link("/p", "action", None),
    ]
