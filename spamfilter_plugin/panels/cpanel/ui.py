"""cPanel's settings pages: a WHM page (a CGI under ``whostmgr/docroot/cgi/spamfilter/``,
registered with ``register_appconfig``) for the admin, and a cPanel user page (a live page
under the theme, added to the Email group with ``install_plugin``); the user is
``$REMOTE_USER``."""

from __future__ import annotations

import json
import os
import tarfile
import tempfile

from .. import Panel
from ..steps import MARK, Steps, prune, remove_ours
from ..ui import page_command, remove_sudoers, sudoers

ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48"><path fill="#1f3a5f" '
    'd="M24 4 8 10v12c0 10 7 18 16 22 9-4 16-12 16-22V10z"/><path fill="#fff" '
    'd="M14 18h20v14H14zm2 2v1l8 5 8-5v-1z"/></svg>\n'
)


APPCONFIG = """\
name=spamfilter
service=whostmgr
user=root
url=/cgi/spamfilter/index.cgi
acls=all
displayname=Spam filtering
entryurl=spamfilter/index.cgi
target=_self
"""

LIVE_PAGE = """\
#!/usr/local/cpanel/3rdparty/bin/perl
{mark}
use strict;
use warnings;
use Cpanel::LiveAPI ();

my $cpanel = Cpanel::LiveAPI->new();
print "Content-type: text/html; charset=utf-8\\r\\n\\r\\n";
print $cpanel->header('Spam filtering');
my $body = '';
if (($ENV{{REQUEST_METHOD}} || 'GET') eq 'POST') {{
    read(STDIN, $body, $ENV{{CONTENT_LENGTH}} || 0);
}}
open(my $page, '|-', {argv}, '--user=' . ($ENV{{REMOTE_USER}} || ''),
    '--method=' . ($ENV{{REQUEST_METHOD}} || 'GET'), '--query=' . ($ENV{{QUERY_STRING}} || ''))
    or die "spamfilter: $!";
print {{$page}} $body;
close($page);
print $cpanel->footer();
$cpanel->end();
"""


def _perl_list(argv: list[str]) -> str:
    return ", ".join("'" + a.replace("\\", "\\\\").replace("'", "\\'") + "'" for a in argv)


def _plugin(panel: Panel, steps: Steps, tool: str) -> None:
    """Run cPanel's ``install_plugin`` or ``uninstall_plugin`` on our plugin tarball (the
    link in the Email group)."""
    theme = panel.conf["theme"]
    install_json = json.dumps(
        [
            {
                "type": "link",
                "id": "spamfilter",
                "name": "Spam filtering",
                "group_id": "email",
                "order": 99,
                "uri": "spamfilter/index.live.pl",
                "featuremanager": True,
                "icon": "spamfilter.svg",
            }
        ],
        indent=2,
    )
    if steps.dry_run:
        steps.note(f"would run: {tool} <plugin tarball> --theme {theme}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "spamfilter")
        os.mkdir(folder)
        for name, text in (("install.json", install_json), ("spamfilter.svg", ICON)):
            with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
                fh.write(text + ("\n" if name.endswith(".json") else ""))
        tarball = os.path.join(tmp, "spamfilter.tar.gz")
        with tarfile.open(tarball, "w:gz") as tar:
            tar.add(folder, arcname="spamfilter")
        steps.run([tool, tarball, "--theme", theme])


def _sibling(path: str, name: str) -> str:
    """cPanel's tool *name* beside *path* (``unregister_appconfig`` beside
    ``register_appconfig``, ``uninstall_plugin`` beside ``install_plugin``)."""
    return os.path.join(os.path.dirname(path), name)


def _cgi(panel: Panel) -> str:
    return panel.path("usr/local/cpanel/whostmgr/docroot/cgi/spamfilter")


def _live(panel: Panel) -> str:
    return panel.path("usr/local/cpanel/base/frontend", panel.conf["theme"], "spamfilter",
                      "index.live.pl")  # fmt: skip


def install_ui(panel: Panel, command: list[str], steps: Steps) -> None:
    cgi = _cgi(panel)
    steps.write(
        os.path.join(cgi, "index.cgi"),
        f"#!/bin/sh\n{MARK}\n"
        "printf 'Content-Type: text/html; charset=utf-8\\r\\n\\r\\n'\n"
        'printf \'<!doctype html><html><head><meta charset="utf-8"><title>Spam filtering'
        "</title></head><body>'\n"
        f"{page_command(command, 'REMOTE_USER', 'admin', None)}\n"
        "printf '</body></html>'\n",
        0o755,
    )
    conf = os.path.join(cgi, "spamfilter.conf")
    steps.write(conf, APPCONFIG, 0o644)
    steps.run([panel.conf["register_appconfig"], conf])

    live = _live(panel)
    argv = [panel.conf["sudo"], "-n", *command, "ui", "page", "--level", "user"]
    steps.write(live, LIVE_PAGE.format(mark=MARK, argv=_perl_list(argv)), 0o755)
    _plugin(panel, steps, panel.conf["install_plugin"])
    sudoers(panel, command, steps)


def uninstall_ui(panel: Panel, command: list[str], steps: Steps) -> None:
    cgi = _cgi(panel)
    conf = os.path.join(cgi, "spamfilter.conf")
    if os.path.exists(conf):
        steps.run([_sibling(panel.conf["register_appconfig"], "unregister_appconfig"), conf])
        remove_ours(steps, conf, "name=spamfilter")
    remove_ours(steps, os.path.join(cgi, "index.cgi"))
    prune(steps, cgi, os.path.dirname(cgi))
    if remove_ours(steps, _live(panel)):
        _plugin(panel, steps, _sibling(panel.conf["install_plugin"], "uninstall_plugin"))
    prune(steps, os.path.dirname(_live(panel)), os.path.dirname(os.path.dirname(_live(panel))))
    remove_sudoers(panel, steps)
