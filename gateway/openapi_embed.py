#!/usr/bin/env python3
# Build step of ibsol-gateway: docs/openapi.yaml (the one source of the API reference) becomes the JSON the
# gateway serves at GET /openapi.json, as a C file defining gw_openapi_json (NUL-terminated) and its length.
# Usage: openapi_embed.py docs/openapi.yaml OUT.c
# A document that is not what the gateway may serve stops the build with a message naming the file and place.
import json
import os
import sys

try:
    import yaml
except ImportError:
    sys.exit("openapi_embed.py: python3-yaml is needed to build the gateway (apt-get install python3-yaml)")


def fail(src, msg):
    sys.exit(f"{src}: {msg}")


def check_keys(src, node, where):
    # JSON keys are strings; YAML would read an unquoted 200 as a number, or yes/no as booleans, and the JSON
    # would then say something other than the file.
    if isinstance(node, dict):
        for k, v in node.items():
            if not isinstance(k, str):
                fail(src, f"key {k!r} under {where or 'the top'} is not a string: quote it ('{k}')")
            check_keys(src, v, f"{where}.{k}" if where else k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_keys(src, v, f"{where}[{i}]")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: openapi_embed.py docs/openapi.yaml OUT.c")
    src, out = sys.argv[1], sys.argv[2]
    try:
        with open(src, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError) as e:
        fail(src, f"cannot be read: {e}")
    except yaml.YAMLError as e:
        fail(src, f"is not valid YAML: {e}")
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1."):
        fail(src, "is not an OpenAPI 3.1 document (its top needs openapi: 3.1.x)")
    check_keys(src, doc, "")
    try:
        # ASCII only (\uXXXX escapes), so the C literal below needs no care for encodings.
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        fail(src, f"holds a value JSON cannot carry (quote dates and times): {e}")
    lines = ["/* Generated from docs/openapi.yaml by gateway/openapi_embed.py at build time: do not edit. */",
             "#include <stddef.h>", "", "const char gw_openapi_json[] ="]
    # Short adjacent literals: C11 promises only 4095 characters in one.
    for i in range(0, len(text), 100):
        chunk = text[i:i + 100].replace("\\", "\\\\").replace('"', '\\"').replace("?", "\\?")
        lines.append(f'    "{chunk}"')
    lines[-1] += ";"
    lines.append("const size_t gw_openapi_json_len = sizeof gw_openapi_json - 1;")
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
