"""``spamfilter ui``: settings pages for panel pages written in PHP or Perl (or run as
scripts): render a fragment, apply a submitted form, serve a whole page request, or make a
login link into the console, each for the panel user the panel authenticated."""

from __future__ import annotations

import os
import sys

from ._common import EXIT_OK, EXIT_USAGE, CliError, print_json, runtime

SCOPES = ("admin", "domain", "mailbox")


def register(sub) -> None:
    u = sub.add_parser(
        "ui",
        help="settings pages for panel users (render, submit, page, link)",
        description="Settings pages inside a panel. --user is the login the panel "
        "authenticated (an account, a reseller, the admin, or a mailbox address); it sees "
        "only what the panel's records give it, and anything else is refused (exit 2) and "
        "logged.",
    )
    usub = u.add_subparsers(dest="ui_action", metavar="ACTION")
    usub.required = True
    for add in (_add_render, _add_submit, _add_page, _add_link):
        add(usub)


def _common(p, target: bool = True) -> None:
    p.add_argument("--user", required=True, help="the panel user the panel logged in")
    if target:
        p.add_argument("--scope", required=True, choices=SCOPES, help="which page")
        p.add_argument(
            "--target", help="the domain (--scope domain) or the address (--scope mailbox)"
        )
        p.add_argument("--vendor", help="one vendor's fragment (default: every vendor's)")


def _add_render(usub) -> None:
    r = usub.add_parser("render", help="print the settings fragments (HTML) for a page")
    _common(r)
    r.add_argument(
        "--csrf-token",
        help="the panel's own form token to put in each form (the panel checks it on submit); "
        "default: a token signed for this user, which 'ui submit' checks",
    )
    r.add_argument(
        "--form-url",
        help="post every form to this URL (the panel page), naming the form in sfp_form",
    )
    r.add_argument("--query", default="", help="the page's query string (a=1&b=2; default none)")
    r.add_argument("--json", action="store_true", help="print [{vendor, name, title, html}]")
    r.set_defaults(func=_render)


def _add_submit(usub) -> None:
    s = usub.add_parser(
        "submit",
        help="apply a submitted form read from standard input (JSON or urlencoded); print "
        "the outcome as JSON",
    )
    _common(s)
    s.add_argument(
        "--csrf-checked",
        action="store_true",
        help="the panel has checked its own form token; do not check ours",
    )
    s.set_defaults(func=_submit)


def _add_page(usub) -> None:
    p = usub.add_parser(
        "page",
        help="answer one page request CGI-style (a DirectAdmin plugin page, a WHM CGI, a "
        "cPanel live page): print the HTML to put into the panel's page; a POST body is read "
        "from standard input",
    )
    _common(p, target=False)
    p.add_argument(
        "--level",
        choices=("admin", "reseller", "user"),
        default="user",
        help="the panel level the page belongs to (admin pages refuse other users; default user)",
    )
    p.add_argument(
        "--method",
        default=os.environ.get("REQUEST_METHOD", "GET"),
        help="GET or POST (default: $REQUEST_METHOD); a POST body is read from standard input",
    )
    p.add_argument(
        "--query",
        default=os.environ.get("QUERY_STRING", ""),
        help="the page's query string (default: $QUERY_STRING)",
    )
    p.add_argument("--page-url", default="", help="the page's own URL (default: relative)")
    p.set_defaults(func=_page)


def _add_link(usub) -> None:
    link = usub.add_parser(
        "link",
        help="print a one-use link (two minutes) that logs the user in to the console",
    )
    who = link.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="the panel user the panel logged in")
    who.add_argument(
        "--console-admin",
        action="store_true",
        help="a link for the console's own admin ([console] username), which works while "
        "password logins are slowed down; root only",
    )
    link.add_argument("--to", default="/", help="the console path to open (default /)")
    link.set_defaults(func=_link)


def _pages(args):
    """The pages of the config.  Run through sudo by a panel page (as the panel user), only
    that user's own pages may be asked for."""
    from ..web.panel_pages import PanelPages

    invoker = os.environ.get("SUDO_USER", "")
    if invoker and invoker != "root" and getattr(args, "console_admin", False):
        print("spamfilter: refused: --console-admin is for root, not through sudo", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)
    if invoker and invoker != "root" and args.user != invoker:
        print(
            f"spamfilter: refused: --user {args.user} is not {invoker}, who ran this through sudo",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE)
    return PanelPages(runtime(args))


def _refused(exc) -> int:
    print(f"spamfilter: refused: {exc}", file=sys.stderr)
    return EXIT_USAGE


def _render(args) -> int:
    from urllib.parse import parse_qsl

    from ..web.access import Refused

    pages = _pages(args)
    try:
        viewer = pages.viewer(args.user)
        fragments = pages.render(
            viewer,
            args.scope,
            args.target,
            vendor=args.vendor,
            csrf_token=args.csrf_token,
            form_url=args.form_url,
            query=dict(parse_qsl(args.query)),
        )
    except Refused as exc:
        return _refused(exc)
    finally:
        pages.close()
    if args.json:
        print_json(
            [
                {"vendor": f.vendor, "name": f.name, "title": f.title, "html": str(f.html)}
                for f in fragments
            ]
        )
    else:
        print("\n".join(str(f.html) for f in fragments))
    return EXIT_OK


def _submit(args) -> int:
    from ..web.access import Refused
    from ..web.panel_pages import read_form, result_json

    form = read_form(sys.stdin.read())
    pages = _pages(args)
    try:
        viewer = pages.viewer(args.user)
        result = pages.submit(
            viewer,
            args.scope,
            args.target,
            form,
            vendor=args.vendor,
            csrf_checked=args.csrf_checked,
        )
    except Refused as exc:
        print_json({"ok": False, "message": str(exc), "refused": True})
        return EXIT_USAGE
    finally:
        pages.close()
    print_json(result_json(result))
    return EXIT_OK if result.ok else 1


def _page(args) -> int:
    from ..web.panel_pages import page

    method = args.method.upper()
    if method not in ("GET", "POST"):
        raise CliError(f"--method: {args.method!r} is not GET or POST")
    body = sys.stdin.read(1024 * 1024) if method == "POST" else ""
    pages = _pages(args)
    try:
        sys.stdout.write(
            page(
                pages,
                args.user,
                args.level,
                method=method,
                query_string=args.query,
                body=body,
                page_url=args.page_url,
            )
        )
    finally:
        pages.close()
    return EXIT_OK


def _link(args) -> int:
    from ..web.access import Refused, Viewer, console_key, console_path, login_token

    if console_path(args.to) != args.to:
        raise CliError(
            "--to: give a path on the console, such as /settings/domain/example.com/ "
            "(no scheme, host, backslash, space or control character)"
        )
    pages = _pages(args)
    try:
        if args.console_admin:
            viewer = Viewer("admin", pages.runtime.config.console["username"])
        else:
            viewer = pages.viewer(args.user)
    except Refused as exc:
        return _refused(exc)
    finally:
        pages.close()
    base = pages.runtime.config.console["public_url"] or "http://127.0.0.1:8025/"
    key = console_key(pages.state_dir)
    token = login_token(key, viewer, args.to, console=args.console_admin)
    print(base.rstrip("/") + "/enter/" + token)
    return EXIT_OK
