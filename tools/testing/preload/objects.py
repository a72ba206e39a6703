# SPDX-License-Identifier: GPL-2.0
"""Python objects for the preload's test: builds ROWS rows of Python objects (a few hundred
bytes each: an int, a string, a list), sorts them, prints digests of the result, and starts a
subprocess that hashes some of it. Its output depends only on ROWS.

    python3 objects.py ROWS
"""
import hashlib
import subprocess
import sys

n = int(sys.argv[1])
rows = [((i * 7919) % n, (str(i) + " ") * 60, [i, -i]) for i in range(n)]
rows.sort()
h = hashlib.sha256()
for key, s, pair in rows[::97]:
    h.update(b"%d %s %d\n" % (key, s.encode(), pair[1]))
print(len(rows), rows[0][0], rows[-1][0], h.hexdigest())
keys = "\n".join(str(key) + " " + s[:12] for key, s, _ in rows[:: max(1, n // 20000)]).encode()
child = subprocess.run(["sha256sum"], input=keys, capture_output=True, check=True)
print(child.stdout.decode().split()[0], hashlib.sha256(keys).hexdigest())
