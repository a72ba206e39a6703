#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Count the results in a moreram VM console log.

Reads KTAP from the module's KUnit suites (a case that ran more than once,
e.g. on every module load, counts once, with its worst result) and the
"moreram-test: ok|not ok NAME" lines of the integration tests. KUnit suites
built into the kernel itself are not ours and are not counted. Prints one
line per result, then "counts PASSED FAILED" as the last line.
"""
import re
import sys

TS = re.compile(r'^\[\s*\d+\.\d+\] ?')
SUBTEST = re.compile(r'^(\s*)# Subtest: (\S+)')
RESULT = re.compile(r'^(\s*)(not ok|ok) \d+ (\S+)(.*)$')
GUEST = re.compile(r'^moreram-test: (not ok|ok) (\S+?)(?:: (.*))?$')


def main(path):
    kunit = {}   # "suite.case" -> (ok, why)
    suites = {}  # indent -> suite name being run at that depth
    guest = []
    with open(path, errors='replace') as f:
        for raw in f:
            line = raw.rstrip('\n')
            g = GUEST.match(line)
            if g:
                guest.append((g.group(1) == 'ok', g.group(2), g.group(3) or ''))
                continue
            if not TS.match(line):
                continue
            body = TS.sub('', line, count=1)
            m = SUBTEST.match(body)
            if m:
                suites[len(m.group(1))] = m.group(2)
                continue
            m = RESULT.match(body)
            if not m:
                continue
            indent, ok, name, rest = len(m.group(1)), m.group(2) == 'ok', m.group(3), m.group(4)
            if '# SKIP' in rest:
                continue
            # A case sits one level inside the suite announced at its own indent.
            suite = suites.get(indent)
            if suite is None or suite == name:
                # A suite's own result line: a failed suite with no failed case
                # (e.g. it crashed) must still count as a failure.
                key = f'{name}.(suite)'
                if ok:
                    continue
            else:
                key = f'{suite}.{name}'
            prev = kunit.get(key, (True, ''))
            kunit[key] = (prev[0] and ok, rest.strip() if not ok else prev[1])

    passed = failed = 0
    for key, (ok, why) in sorted(kunit.items()):
        if not key.startswith('moreram'):
            continue
        print(f"{'PASS' if ok else 'FAIL'} kunit {key}{'' if ok else ' ' + why}")
        passed += ok
        failed += not ok
    for ok, name, why in guest:
        print(f"{'PASS' if ok else 'FAIL'} vm {name}{'' if ok else ': ' + why}")
        passed += ok
        failed += not ok
    print(f'counts {passed} {failed}')


if __name__ == '__main__':
    main(sys.argv[1])
