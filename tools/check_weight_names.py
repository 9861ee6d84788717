#!/usr/bin/env python3
"""Lists weight-name strings that are spelled in more than one main source file.

Every canonical weight name should be spelled in one table (core's *Parameters files); the runtimes, graphs and
tasks ask the table. A "weight-name string" is a Java string literal made only of the pieces that canonical names
are made of: the dot-separated parts of every tensor name in the fixtures' safetensors headers (all three model
families), plus numbers and format placeholders. Converters' source-format tables (LAVIS and Hugging Face rename
rules) spell source names by design and are listed apart.

usage: tools/check_weight_names.py [REPO_ROOT]     exit 0 when no string is shared, 1 otherwise
"""
import json
import pathlib
import re
import struct
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)

pieces = set()
for header in root.glob("fixtures/blip2-tiny-*/model.safetensors"):
    with open(header, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        names = json.loads(f.read(size))
    for name in names:
        if name != "__metadata__":
            pieces.update(p for p in name.split(".") if not p.isdigit())
generic = {"weight", "bias"}
placeholder = re.compile(r"^(\d+|%d|%s)$")
literal = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def is_weight_name(text):
    parts = [p for p in text.strip(".").split(".") if p]
    named = [p for p in parts if not placeholder.match(p)]
    # one- and two-letter strings (q, k, v: buffer names in the runtime) say nothing about a weight
    return len(text) > 2 and bool(named) and all(p in pieces for p in named) and not all(p in generic for p in named)


spelled = {}
for source in sorted(root.glob("*/src/main/java/**/*.java")):
    text = source.read_text(encoding="utf-8")
    for match in literal.finditer(text):
        if is_weight_name(match.group(1)):
            spelled.setdefault(match.group(1), set()).add(str(source.relative_to(root)))

source_tables = "converters/"
shared = {s: files for s, files in spelled.items() if len({f for f in files if not f.startswith(source_tables)}) > 1}
for s, files in sorted(shared.items()):
    print(f'"{s}": ' + ", ".join(sorted(files)))
in_tables = sorted(s for s, files in spelled.items() if any(f.startswith(source_tables) for f in files)
                   and any(not f.startswith(source_tables) for f in files))
if in_tables:
    print("also in converters' source-format tables (by design): " + ", ".join(f'"{s}"' for s in in_tables))
print(f"{len(spelled)} weight-name strings in main sources, {len(shared)} spelled in more than one file "
      "outside the converters' source-format tables")
sys.exit(1 if shared else 0)
