"""Build hooks: the console's screenshots live with the tests that take them
(``tests/screenshots``); the site serves them as ``screenshots/``.  The API reference page
and ``openapi.json`` are made from the API's OpenAPI document, itself made from the
schemas the API validates with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File

SHOTS = Path(__file__).resolve().parent.parent / "tests" / "screenshots"


def on_files(files, config):
    for png in sorted(SHOTS.glob("*.png")):
        files.append(File.generated(config, f"screenshots/{png.name}", abs_src_path=str(png)))
    from spamfilter_plugin import __version__
    from spamfilter_plugin.web.apischema import openapi

    spec = openapi(__version__)
    files.append(File.generated(config, "openapi.json", content=json.dumps(spec, indent=1)))
    files.append(File.generated(config, "api-reference.md", content=reference(spec)))
    return files


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        inner = schema["additionalProperties"]
        return f"object of {_type(inner)}" if inner else "object"
    if "enum" in schema:
        return f"{kind}: " + ", ".join(f"`{v}`" for v in schema["enum"])
    return kind


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def reference(spec: dict[str, Any]) -> str:
    """The OpenAPI document as a page: each operation, then each schema."""
    base = spec["servers"][0]["url"]
    lines = [
        "# API reference",
        "",
        f"Made from the API's [OpenAPI {spec['openapi']} document](openapi.json) (also served "
        f"by the console at `{base}/openapi.json`); [The JSON API](api.md) explains it with "
        "examples.",
        "",
    ]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            lines += [f"## `{method.upper()} {base}{path}`", "", op["summary"] + ".", ""]
            lines += [op["description"], ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | what |", "|---|---|---|---|"]
                for p in params:
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} | "
                        f"{_cell(p.get('description'))} |"
                    )
                lines.append("")
            body = op.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                lines += [f"Body: {_type(schema)}. {_cell(schema.get('description'))}", ""]
            lines += ["| answer | body |", "|---|---|"]
            for code, answer in op["responses"].items():
                kind, content = next(iter(answer["content"].items()))
                lines.append(
                    f"| {code} | {_type(content['schema'])} (`{kind}`): "
                    f"{_cell(answer['description'])} |"
                )
            lines.append("")
    lines += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        lines += [f"### {name}", "", "| field | type | required | what |", "|---|---|---|---|"]
        required = set(schema.get("required", []))
        for field, prop in schema.get("properties", {}).items():
            lines.append(
                f"| `{field}` | {_cell(_type(prop))} | {'yes' if field in required else ''} | "
                f"{_cell(prop.get('description'))} |"
            )
        lines.append("")
    return "\n".join(lines)
