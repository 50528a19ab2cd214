"""The dashboard's pages: one layout, and each page's title, body and script.

``templates/layout.html`` holds what every page shares (the head with its
style sheet and the common scripts, the body's frame); ``templates/<name>.html``
holds only that page's ``<main>``, and ``static/<name>.js`` its own script.
Pages are assembled once, from the package's files, and served as bytes: no
request reaches the disk, and no build step stands between the files and the
browser. The header bar is not here: ``common.js`` (``D.header``) draws it,
because it shows the signed-in key and wires sign-out.

This module does not serve anything or check sessions (``views`` does).
"""

from __future__ import annotations

import functools
import html
import string
from importlib import resources

#: each page's name (its body and script) and title, shown as "<title> · Dialer"
TITLES = {
    "campaigns": "Campaigns",
    "campaign": "Campaign",
    "new": "New campaign",
    "accounts": "Accounts",
    "signin": "Sign in",
}


def _template(name: str) -> str:
    return resources.files("dialer.receiver.ui").joinpath("templates", name).read_text("utf-8")


@functools.cache
def render(name: str) -> bytes:
    """The whole page ``name``, read and assembled on first use, then kept."""
    layout = string.Template(_template("layout.html"))
    return layout.substitute(
        # values are escaped into the layout; the body is our own markup, inserted as is
        title=html.escape(TITLES[name]),
        script=html.escape(f"{name}.js"),
        body=_template(f"{name}.html").rstrip("\n"),
    ).encode()
