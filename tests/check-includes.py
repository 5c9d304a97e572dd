#!/usr/bin/env python3
"""tests/check-includes.py: the include graph has no circle and the layers point one way.

Reads the #include "..." lines of gateway/, policy/ and proto/.  Two graphs
must have no circle: the headers among themselves, and the modules, where a
module is a name without .c/.h (foo.c and foo.h are one module) and an edge
goes from a .c file to the module of each header it includes.  (A header that
includes its own module's internal header, as policy_int.h includes
policy.h, is the first graph's business, not a circle of modules.)  Calls
declared in a shared header (gateway/gw.h) are not seen here.
Layers: proto/ includes only proto/; policy/ only policy/ and proto/;
gateway/ anything.  Prints each violation and exits 1; run by `make unit`.
"""
import os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
RANK = {'proto': 0, 'policy': 1, 'gateway': 2}
inc = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
graph, hgraph, bad = {}, {}, []
for d in RANK:
    for f in sorted(os.listdir(os.path.join(ROOT, d))):
        if not f.endswith(('.c', '.h')):
            continue
        mod = d + '/' + f[:-2]
        graph.setdefault(mod, set())
        if f.endswith('.h'):
            hgraph.setdefault(d + '/' + f, set())
        for line in open(os.path.join(ROOT, d, f), encoding='utf-8', errors='replace'):
            m = inc.match(line)
            if not m or m.group(1).startswith(('bg_revision', 'proto/') ) and m.group(1).endswith('.pb-c.h'):
                continue
            tgt = m.group(1)
            top = tgt.split('/')[0]
            if top not in RANK:
                continue
            if RANK[top] > RANK[d]:
                bad.append('%s/%s includes %s: %s/ must not depend on %s/' % (d, f, tgt, d, top))
            if f.endswith('.h'):
                hgraph[d + '/' + f].add(tgt)
            elif tgt[:-2] != mod:
                graph[mod].add(tgt[:-2])

# Circles: depth-first search, reporting each back edge's cycle once.
def circles(graph):
  state, stack = {}, []
  def visit(m):
    state[m] = 1
    stack.append(m)
    for n in sorted(graph.get(m, ())):
        if state.get(n) == 1:
            bad.append('circle: ' + ' -> '.join(stack[stack.index(n):] + [n]))
        elif not state.get(n):
            visit(n)
    stack.pop()
    state[m] = 2
  for m in sorted(graph):
    if not state.get(m):
        visit(m)
circles(hgraph)
circles(graph)
for b in bad:
    print(b)
print('include graph: %d headers, %d modules, %d edges, %s' % (len(hgraph), len(graph), sum(len(v) for v in graph.values()),
                                                   'no circle' if not bad else '%d problem(s)' % len(bad)))
sys.exit(1 if bad else 0)
