"""``spamfilter mx``: the MX records of protected domains: status, switch, restore."""

from __future__ import annotations

from ..errors import SpamFilterError
from ._common import EXIT_OK, EXIT_VENDOR, CliError, audited, note, print_json, runtime


def register(sub) -> None:
    m = sub.add_parser(
        "mx",
        help="show, switch and restore the MX records of protected domains",
        description="The vendor with manage_mx (on when its table gives mx = [...]) gets a "
        "domain's mail: after it accepts a domain, the destination is checked by SMTP, the "
        "MX set is recorded and switched through the panel, and the switch is verified by "
        "DNS lookup. States: queued, skipped (remote mail), destination refused, switching, "
        "pending, verified, wrong, restored, gone. See docs/mx.md.",
    )
    msub = m.add_subparsers(dest="mx_command", metavar="ACTION")
    msub.required = True
    st = msub.add_parser(
        "status",
        help="per domain: the managing vendor, recorded and current MX, state and when",
        description="Per domain: the managing vendor, the MX set recorded before the switch, "
        "the set DNS gave at the last check, the state and when. With DOMAIN, DNS is asked "
        "again now.",
    )
    st.add_argument("domain", nargs="?", help="one domain (default: every known domain)")
    st.set_defaults(action=_status)
    sw = msub.add_parser(
        "switch",
        help="queue the switch of a domain's MX to the managing vendor",
        description="Queue the MX switch of DOMAIN from its first step (the destination "
        "check); the worker carries it out. Use after fixing a refused destination.",
    )
    sw.add_argument("domain", help="the domain whose MX to switch (Unicode or punycode)")
    sw.add_argument("--destination", help="the host to check (default: [general] mail_host)")
    sw.set_defaults(action=_switch)
    rs = msub.add_parser(
        "restore",
        help="put back the MX records recorded before the switch (run before uninstalling)",
        description="Put back the MX set recorded before the switch, at once, through the "
        "panel: records pointing at the vendor's MX hosts are removed, the recorded ones "
        "added; with nothing recorded the fallback is [general] mail_host. A zone is never "
        "left without MX. Exit 1 when a domain could not be restored.",
    )
    rs.add_argument("domain", nargs="?", help="the domain whose MX to put back (or --all)")
    rs.add_argument("--all", action="store_true", help="every domain whose MX was switched")
    rs.add_argument("--dry-run", action="store_true", help="say what would change; change none")
    rs.set_defaults(action=_restore)
    for sp in (st, sw, rs):
        sp.add_argument("--json", action="store_true", help="print JSON instead of text")
    m.set_defaults(func=cmd_mx)


def cmd_mx(args) -> int:
    return args.action(runtime(args), args)


def _domain(value: str) -> str:
    from ..eventdata import normalise_domain

    try:
        return normalise_domain(value, "domain")
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _status(rt, args) -> int:
    from ..mx.flow import store
    from ..mx.lookup import lookup
    from ..store.mx import shown

    db = store(rt)
    rows = db.all()
    if args.domain:
        name = _domain(args.domain)
        rows = [r for r in rows if r.domain == name]
        if not rows:
            raise CliError(
                f"{name}: no MX record is kept for it (not protected by a vendor "
                "that manages MX); 'spamfilter mx switch' starts one"
            )
        mx = rt.config.mx
        answer = lookup(
            name, nameservers=mx["nameservers"], port=mx["dns_port"], timeout=mx["dns_timeout"]
        )
        if answer.status in ("found", "none"):
            import time

            rows = [db.put(name, rows[0].vendor, seen=list(answer.records), checked_at=time.time())]
    if args.json:
        print_json({"domains": [r.to_dict() for r in rows]})
        return EXIT_OK
    if not rows:
        print("no domain's MX is managed yet")
    for r in rows:
        d = r.to_dict()
        print(f"{r.domain}  [{r.vendor}]  {r.state}" + (f": {r.detail}" if r.detail else ""))
        print(f"    recorded: {shown(r.recorded)}")
        seen = shown(r.seen) if r.seen is not None else "not looked up yet"
        print(f"    current:  {seen}" + (f" (checked {d['checked_at']})" if r.checked_at else ""))
        if r.switched_at:
            print(f"    switched: {d['switched_at']}")
    return EXIT_OK


def _switch(rt, args) -> int:
    from ..mx.flow import queue_switch

    name = _domain(args.domain)
    try:
        ids = queue_switch(rt, name, args.destination)
    except SpamFilterError as exc:
        raise CliError(str(exc)) from None
    audited(rt.config, action="mx switch", scope="domain", target=name,
            outcome=f"ok: queued (row {', '.join(map(str, ids))})")  # fmt: skip
    if args.json:
        print_json({"domain": name, "queued": ids})
    else:
        print(f"{name}: MX switch queued (row {', '.join(map(str, ids))}); the worker does it")
    return EXIT_OK


def _restore(rt, args) -> int:
    from ..mx.flow import SWITCHED, manager, restore, store
    from ..mx.plan import EmptyZone

    if bool(args.domain) == bool(args.all):
        raise CliError("give one DOMAIN or --all")
    db = store(rt)
    if args.all:
        targets = [(r.domain, r.vendor) for r in db.all() if r.state in SWITCHED]
    else:
        name = _domain(args.domain)
        known = db.get(name)
        vendor = known.vendor if known else manager(rt.config)
        if vendor is None:
            raise CliError("no vendor manages MX records and none is recorded for " + name)
        targets = [(name, vendor)]
    results, failed = [], 0
    for i, (name, vendor) in enumerate(targets, 1):
        if len(targets) > 1 and not args.json:
            note(f"[{i}/{len(targets)}] {name}")
        try:
            message, ok = restore(rt, vendor, name, dry_run=args.dry_run), True
        except (SpamFilterError, EmptyZone) as exc:
            message, ok = f"{name}: NOT restored: {exc}", False
            failed += 1
        results.append({"domain": name, "vendor": vendor, "ok": ok, "message": message})
        if not args.dry_run:
            audited(rt.config, action="mx restore", scope="domain", target=name, vendor=vendor,
                    outcome=("ok: " if ok else "failed: ") + message)  # fmt: skip
        if not args.json:
            print(message)
    if args.json:
        print_json({"dry_run": args.dry_run, "domains": results})
    elif not targets:
        print("no domain's MX is switched; nothing to restore")
    return EXIT_VENDOR if failed else EXIT_OK
