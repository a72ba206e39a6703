#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Check that the module's layers only look down.

Reads every `crate::` path in rust/**/*.rs (outside KUnit test modules, which
may look anywhere) and fails when
  - two files import each other in a circle, or
  - a file names a module of its own layer or a higher one (other than its own
    folder), per LAYERS below: the one place the layering is written down.

Prints each offence, then a summary line; exits 1 on any offence.
"""
import pathlib
import re
import sys

# Top-level modules of the crate, lowest first. Modules on one line are side by
# side: neither may name the other.
LAYERS = [
    ["shim", "uapi"],
    ["process", "memdebug"],
    ["bank"],
    ["memory"],
    ["policy"],
    ["front"],
    ["device", "debugfs"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "rust")
files = sorted(root.rglob("*.rs"))
crate_root = next(p for p in files if p.name.endswith("_main.rs"))


def modpath(p):
    if p == crate_root:
        return ()
    parts = list(p.relative_to(root).with_suffix("").parts)
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


mods = {modpath(p): p for p in files}
REF = re.compile(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)")
GROUP = re.compile(r"use\s+crate::\{([^;]*)\};", re.S)
NAME = re.compile(r"[a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*")


def references(text):
    """Module paths a file names through `crate::`."""
    text = re.split(r"#\[kunit_tests", text)[0]
    text = re.sub(r"//.*", "", text)
    names = [m.group(1) for m in REF.finditer(text)]
    for g in GROUP.finditer(text):
        # `use crate::{a::{b, c}, d}`: the first segment of each item is what counts.
        depth, item = 0, ""
        for ch in g.group(1) + ",":
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                m = NAME.match(item.strip())
                if m:
                    names.append(m.group(0))
                item = ""
            else:
                item += ch
    return names


edges = {p: set() for p in files}
offences = []
for p in files:
    here = modpath(p)
    for n in references(p.read_text(errors="replace")):
        parts = tuple(n.split("::"))
        target = next((mods[parts[:k]] for k in range(len(parts), 0, -1) if parts[:k] in mods), None)
        if target is None or target == p:
            continue
        edges[p].add(target)
        if not here:
            continue  # the crate root sits above everything
        mine, theirs = here[0], parts[0]
        if mine == theirs:
            continue  # within one folder
        if mine not in RANK or theirs not in RANK:
            offences.append(f"{p}: {mine if mine not in RANK else theirs} is in no layer (tools/testing/layers.py)")
        elif RANK[theirs] >= RANK[mine]:
            offences.append(f"{p}: names crate::{n}, which is not below {mine}")

# Circles: strongly connected components (Tarjan).
index, low, stack, on, out = {}, {}, [], set(), []
counter = [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges[v]:
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            out.append(comp)


sys.setrecursionlimit(10000)
for v in files:
    if v not in index:
        visit(v)
for c in out:
    offences.append("circle: " + ", ".join(sorted(str(x) for x in c)))
for o in sorted(set(offences)):
    print(o)
print(f"layers: {len(files)} files, {sum(len(e) for e in edges.values())} imports, {len(set(offences))} offences")
sys.exit(1 if offences else 0)
