#!/usr/bin/env python3
"""tests/check-calls.py: the call graph between source files has no circle.

The include graph (tests/check-includes.py) cannot see calls declared in a
shared header: every file of the HTTP/2 engine includes only gateway/h2_int.h,
yet may call any other.  So this reads the compiled objects instead: for each
object of gateway/, policy/ and proto/ (generated protobuf-c code left out),
`nm` lists the external symbols it defines and the ones it uses, and a use of
a symbol another file defines is an edge from file to file (a function called
or a table referenced; a call through a function pointer handed over at run
time is not an edge, which is what makes callbacks the way a lower file
reaches a higher one).  Prints every circle, as the files and the symbols
that close it, and exits 1 if there is one.

Usage: tests/check-calls.py [OBJDIR]   (default build/obj; run by `make unit`)
"""
import os, subprocess, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
objdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, 'build', 'obj')
defs, uses = {}, {}
for d in ('proto', 'policy', 'gateway'):
    path = os.path.join(objdir, d)
    if not os.path.isdir(path):
        sys.exit('check-calls: %s missing (build first)' % path)
    for f in sorted(os.listdir(path)):
        if not f.endswith('.o') or '.pb-c' in f:
            continue
        if not os.path.exists(os.path.join(ROOT, d, f[:-2] + '.c')):
            continue  # a stale object of a removed file
        mod = d + '/' + f[:-2]
        uses[mod] = set()
        out = subprocess.run(['nm', os.path.join(path, f)], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in 'TDBRC':
                defs[p[2]] = mod
            elif len(p) == 2 and p[0] == 'U':
                uses[mod].add(p[1])

graph = {m: {} for m in uses}
for m, syms in uses.items():
    for s in syms:
        t = defs.get(s)
        if t and t != m:
            graph[m].setdefault(t, []).append(s)

# Strongly connected components (Tarjan, iterative): each with more than one
# file is a circle.
index, low, onstack, stack, comps, counter = {}, {}, set(), [], [], [0]
for root in sorted(graph):
    if root in index:
        continue
    work = [(root, iter(sorted(graph[root])))]
    index[root] = low[root] = counter[0]; counter[0] += 1
    stack.append(root); onstack.add(root)
    while work:
        v, it = work[-1]
        for w in it:
            if w not in index:
                index[w] = low[w] = counter[0]; counter[0] += 1
                stack.append(w); onstack.add(w)
                work.append((w, iter(sorted(graph[w]))))
                break
            if w in onstack:
                low[v] = min(low[v], index[w])
        else:
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); onstack.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))

for comp in comps:
    print('call circle among: ' + ' '.join(comp))
    for a in comp:
        for b in sorted(graph[a]):
            if b in comp:
                print('  %s -> %s: %s' % (a, b, ' '.join(sorted(graph[a][b]))))
print('call graph: %d files, %d edges, %s' % (len(graph), sum(len(v) for v in graph.values()),
                                            'no circle' if not comps else '%d circle(s)' % len(comps)))
sys.exit(1 if comps else 0)
