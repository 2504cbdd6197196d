#!/usr/bin/env python3
"""Check that the models and the code still name each other (docs/VERIFICATION.md).

Each model's header lists the C functions it stands for on lines of the form
    * Code: engine/FILE.c func func ...
For each: FILE must still define func, and the code must name the model there: the comment
just above the definition mentions tests/model/MODEL.pml, or one comment of FILE (or of its
header FILE.h) mentions both tests/model/MODEL.pml and func. A rename or a move on either side
then fails this test, which says which name to look at.

    names.py SOURCE_ROOT MODEL.pml...
Exit 0 when every name holds, 1 (listing each that does not) otherwise."""
import os
import re
import sys

COMMENT = re.compile(r"/\*.*?\*/", re.S)


def definition(text, func):
    """The offset of func's definition in text (a line that starts a declaration, names func,
    and opens its body, not a prototype), or -1."""
    pat = re.compile(r"^[a-z][^;{}()\n]*[ *]" + re.escape(func) + r"\([^;{]*?\)\s*\{", re.M | re.S)
    m = pat.search(text)
    return m.start() if m else -1


def comment_above(text, at):
    """The comment block that ends on the line just above offset at, or ''."""
    before = text[:at].rstrip()
    if not before.endswith("*/"):
        return ""
    start = before.rfind("/*")
    return before[start:] if start >= 0 else ""


def main():
    root, models = sys.argv[1], sys.argv[2:]
    bad = []
    checked = 0
    for model in models:
        name = os.path.basename(model)
        tag = "tests/model/" + name
        with open(model) as f:
            head = f.read()
        for m in re.finditer(r"^ \* Code: (\S+) (.+)$", head, re.M):
            path, funcs = m.group(1), m.group(2).split()
            try:
                with open(os.path.join(root, path)) as f:
                    text = f.read()
            except OSError:
                bad.append(f"{name}: {path}: no such file")
                continue
            hdr = os.path.join(root, re.sub(r"\.c$", ".h", path))
            comments = COMMENT.findall(text)
            if hdr != os.path.join(root, path) and os.path.exists(hdr):
                with open(hdr) as f:
                    comments += COMMENT.findall(f.read())
            for func in funcs:
                checked += 1
                at = definition(text, func)
                if at < 0:
                    bad.append(f"{name}: {path} no longer defines {func}")
                    continue
                if tag in comment_above(text, at):
                    continue
                if any(tag in c and re.search(r"\b" + re.escape(func) + r"\b", c) for c in comments):
                    continue
                bad.append(f"{name}: {path}: {func} does not name the model (a comment at it: "
                           f"'Model: {tag}')")
    for b in bad:
        print("FAIL:", b)
    print(f"{checked} function names checked, {len(bad)} wrong")
    return 1 if bad or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
