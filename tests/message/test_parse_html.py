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


TEXT = "<p>Dear customer, your statement is ready to read.</p>"  # 40 letters before


@pytest.mark.parametrize(
    ("html", "letters", "lead"),
    [
        # white-on-white filler after the text: its letters, none of them a preview
        pytest.param(
            TEXT + '<font color="#FFFFF1">William yes sure Ford</font>', 18, 0, id="filler"
        ),
        pytest.param(TEXT + "<FONT COLOR=white>hidden words</FONT>", 11, 0, id="upper-case"),
        pytest.param(TEXT + "<p style='COLOR: #fff'>hidden words</p>", 11, 0, id="style"),
        pytest.param(
            '<body bgcolor="#FFFFFF">' + TEXT + "<span style='color:#eeeeee'>pale</span>",
            4,
            0,
            id="light-on-light",
        ),
        # before the text: a preview line
        pytest.param("<font color=white>Our sale starts</font>" + TEXT, 13, 13, id="preview"),
        # what a reader sees
        pytest.param(
            '<table bgcolor="#003366"><tr><td><font color="#FFFFFF">On blue</font></td></tr>'
            "</table>" + TEXT,
            0,
            0,
            id="on-dark",
        ),
        pytest.param(
            "<div style='background: #222'><p style='color:#fff'>On grey</p></div>",
            0,
            0,
            id="style-background",
        ),
        pytest.param(
            "<table><tr><td background='sky.jpg'><font color=white>On a picture</font></td>"
            "</tr></table>",
            0,
            0,
            id="image",
        ),
        pytest.param(
            "<style>.top {background: navy}</style><div class=top>"
            "<font color=white>Painted by the sheet</font></div>",
            0,
            0,
            id="style-sheet",
        ),
        pytest.param(TEXT + '<font color="#FF0000">Red</font>', 0, 0, id="coloured"),
        pytest.param(
            TEXT + "<font color=white>in <font color=black>shown</font> it</font>",
            4,
            0,
            id="own-colour-inside",
        ),
        pytest.param(TEXT + "<p bgcolor=white>white background only</p>", 0, 0, id="bgcolor"),
    ],
)
def test_camouflaged_letters(html: str, letters: int, lead: int) -> None:
    rendered = render_html(html)
    assert (rendered.camouflaged, rendered.camouflaged_lead) == (letters, lead)
    assert render_html(html.encode()) == rendered  # the UTF-8 bytes read the same


def test_camouflaged_letters_reach_the_part() -> None:
    raw = b"Content-Type: text/html\n\n" + (TEXT + "<font color=#fffff0>lorem</font>").encode()
    (part,) = parse_message(raw).parts
    assert (part.camouflaged, part.camouflaged_lead) == (5, 0)


def test_camouflage_search_is_bounded() -> None:
    """A page of thousands of light elements, or of light elements nested hundreds deep
    around a long text, is read up to the bounds, not to its end."""
    many = TEXT + "".join(f"<font color=white style='x:{i}'>abcde</font>" for i in range(600))
    assert render_html(many).camouflaged == 500 * 5  # the first 500 coloured elements
    nested = TEXT + "<font color=white>" * 50 + "abcde<br>" * 30_000 + "</font>" * 50
    rendered = render_html(nested)
    assert not rendered.too_deep
    assert 0 < rendered.camouflaged < 30_000 * 5  # the node budget, not the whole text
