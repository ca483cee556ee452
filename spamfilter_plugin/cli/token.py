"""``spamfilter token create|list|revoke``: the JSON API's tokens, kept as digests in the
queue's store (:mod:`..tokens`)."""

from __future__ import annotations

import time

from ._common import EXIT_OK, CliError, audited, print_json


def register(sub) -> None:
    t = sub.add_parser(
        "token",
        help="make, list and revoke the JSON API's tokens",
        description="A token is shown once, when it is made; only its SHA-256 digest is "
        "kept, in the queue's store (shared by the fleet). It sees and changes what a "
        "console user of its role would.",
    )
    verbs = t.add_subparsers(dest="verb", required=True, metavar="create|list|revoke")
    c = verbs.add_parser("create", help="make a token and print it once")
    c.add_argument("name", help="the token's name (lower-case letters, digits, . _ -)")
    c.add_argument(
        "--role",
        required=True,
        help="admin, reseller:USER (the reseller's customers' domains) or account:USER (the "
        "panel account's own domains and mailboxes); required, no default",
    )
    c.add_argument(
        "--expires",
        type=float,
        metavar="DAYS",
        help="days until it stops working (default: never; 1 to 3650)",
    )
    c.add_argument("--json", action="store_true", help="print JSON instead of text")
    c.set_defaults(func=_create)
    ls = verbs.add_parser("list", help="every token: name, role, created, expires, last used")
    ls.add_argument("--json", action="store_true", help="print JSON instead of text")
    ls.set_defaults(func=_list)
    r = verbs.add_parser("revoke", help="stop a token from working, at once")
    r.add_argument("name", help="the token's name")
    r.set_defaults(func=_revoke)


def _queue(args):
    from ..manager import load_runtime
    from ..queue import queue_of

    return queue_of(load_runtime(args.config).config)


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp)) if stamp else "-"


def _create(args) -> int:
    from .. import tokens
    from ..errors import InvalidInput

    with _queue(args) as queue:
        try:
            token, record = tokens.create(queue, args.name, args.role, expires_days=args.expires)
        except InvalidInput as exc:
            raise CliError(exc.message) from None
    audited(args.config, action="token create", scope="token", target=args.name,
            outcome=f"ok: {tokens.shown(record)['role']}")  # fmt: skip
    if args.json:
        print_json({"token": token, **tokens.shown(record)})
    else:
        print(token)
        print(
            f"token {args.name} ({tokens.shown(record)['role']}, expires "
            f"{_when(record['expires_at']) if record['expires_at'] else 'never'}): shown this "
            "once; send it as 'Authorization: Bearer <token>'"
        )
    return EXIT_OK


def _list(args) -> int:
    from .. import tokens

    with _queue(args) as queue:
        found = [tokens.shown(r) for r in queue.tokens()]
    if args.json:
        print_json({"tokens": found})
        return EXIT_OK
    if not found:
        print("no tokens")
    for t in found:
        state = "EXPIRED" if t["expired"] else f"expires {_when(t['expires_at'])}"
        print(
            f"{t['name']}\t{t['role']}\tcreated {_when(t['created_at'])}\t{state}\t"
            f"last used {_when(t['last_used_at'])}"
        )
    return EXIT_OK


def _revoke(args) -> int:
    with _queue(args) as queue:
        removed = queue.token_remove(args.name)
    if not removed:
        raise CliError(f"token {args.name!r}: no such token (see 'spamfilter token list')")
    audited(args.config, action="token revoke", scope="token", target=args.name, outcome="ok")
    print(f"token {args.name} revoked: it no longer works")
    return EXIT_OK
