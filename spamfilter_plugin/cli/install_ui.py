"""``spamfilter install-ui PANEL``: put the settings pages into DirectAdmin (a plugin) or
cPanel (a WHM page and a cPanel user page), the panel's documented way."""

from __future__ import annotations

from .install_hooks import run_steps


def register(sub) -> None:
    p = sub.add_parser(
        "install-ui",
        help="add the settings pages to a panel (DirectAdmin plugin; WHM and cPanel pages)",
        description="DirectAdmin: write the plugin folder plugins/spamfilter (plugin.conf and "
        "admin, reseller and user pages). cPanel: write a WHM CGI and register it with "
        "register_appconfig, and a cPanel live page added to the Email group with "
        "install_plugin. Both write a sudoers drop-in so user-level pages (run as the panel "
        "user) can call 'spamfilter ui page' for that user only. Each step is printed; "
        "running it twice changes nothing more. Files go under [panel] root.",
    )
    p.add_argument("panel", choices=("directadmin", "cpanel"), help="the panel")
    p.add_argument("--dry-run", action="store_true", help="print the steps, take none")
    p.set_defaults(func=cmd_install_ui)


def cmd_install_ui(args) -> int:
    return run_steps(args, "install_ui")
