package main

// The generator: every fixture and a set of synthetic messages, each also
// mutated many times with a fixed seed, so a run is reproducible.  The
// mutations are the ways a decoder can read bytes differently from
// BuildKit's gogo-generated code (PROTOCOL.md section 6): field numbers past
// 2^32, 0 and 2^29, groups, over-long varints, duplicated scalars,
// sub-messages and map entries, map entries out of order or incomplete,
// two oneof members, NULs and invalid UTF-8, whitespace and JSON tricks in
// attrs, unknown fields, and session names that look namespaced.

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

type fspec struct {
	sub string // message type of a length-delimited field ("" = string/bytes)
	str bool   // a string the policy may match on
	enum bool  // a varint the policy reads as an enum
}

// Field numbers and types from BuildKit (PROTOCOL.md section 4).
var schema = map[string]map[uint64]fspec{
	"control.SolveRequest": {1: {str: true}, 2: {sub: "Definition"}, 3: {str: true}, 4: {sub: "MapSS"},
		5: {str: true}, 6: {str: true}, 7: {sub: "MapSS"}, 8: {sub: "CacheOptions"}, 9: {str: true},
		10: {sub: "MapSDef"}, 11: {}, 12: {sub: "Policy"}, 13: {sub: "Typed"}, 14: {}, 15: {str: true}},
	"CacheOptions": {1: {str: true}, 2: {str: true}, 3: {sub: "MapSS"}, 4: {sub: "Typed"}, 5: {sub: "Typed"}},
	"Typed":        {1: {str: true}, 2: {sub: "MapSS"}},
	"MapSS":        {1: {str: true}, 2: {str: true}},
	"MapSDef":      {1: {str: true}, 2: {sub: "Definition"}},
	"MapSMeta":     {1: {str: true}, 2: {sub: "OpMetadata"}},
	"OpMetadata":   {1: {}, 2: {sub: "MapSS"}},
	"Definition":   {1: {sub: "Op"}, 2: {sub: "MapSMeta"}},
	"Op": {1: {sub: "Input"}, 2: {sub: "ExecOp"}, 3: {sub: "SourceOp"}, 4: {sub: "Empty"}, 5: {sub: "BuildOp"},
		6: {sub: "Empty"}, 7: {sub: "Empty"}, 10: {sub: "Empty"}, 11: {sub: "Empty"}},
	"Input":  {1: {str: true}, 2: {}},
	"ExecOp": {1: {sub: "Meta"}, 2: {sub: "Mount"}, 3: {enum: true}, 4: {enum: true}, 5: {sub: "SecretEnv"}, 6: {sub: "CDIDevice"}},
	"Meta": {1: {str: true}, 2: {str: true}, 3: {str: true}, 4: {str: true}, 5: {sub: "Empty"}, 6: {sub: "HostIP"},
		7: {str: true}, 9: {sub: "Ulimit"}, 10: {str: true}},
	"HostIP": {1: {str: true}, 2: {str: true}},
	"Ulimit": {1: {str: true}, 2: {}, 3: {}},
	"Mount": {1: {}, 2: {str: true}, 3: {str: true}, 4: {}, 5: {}, 6: {enum: true}, 20: {sub: "CacheOpt"},
		21: {sub: "SecretOpt"}, 22: {sub: "SecretOpt"}, 23: {str: true}},
	"CacheOpt":     {1: {str: true}, 2: {enum: true}},
	"SecretOpt":    {1: {str: true}, 2: {}, 3: {}, 4: {}, 5: {}},
	"SecretEnv":    {1: {str: true}, 2: {str: true}, 3: {}},
	"CDIDevice":    {1: {str: true}, 2: {}},
	"SourceOp":     {1: {str: true}, 2: {sub: "MapSS"}},
	"BuildOp":      {1: {}, 2: {sub: "Empty"}, 3: {sub: "Definition"}, 4: {sub: "MapSS"}},
	"Policy":       {1: {}, 2: {sub: "Rule"}},
	"Rule":         {1: {enum: true}, 2: {sub: "Selector"}, 3: {sub: "Update"}},
	"Selector":     {1: {str: true}, 2: {}},
	"Update":       {1: {str: true}, 2: {sub: "MapSS"}},
	"Empty":        {},
	"gateway.SolveRequest": {1: {sub: "Definition"}, 2: {str: true}, 3: {sub: "MapSS"}, 4: {str: true}, 5: {}, 6: {},
		10: {}, 11: {}, 12: {sub: "Typed"}, 13: {sub: "MapSDef"}, 14: {}, 15: {sub: "Policy"}},
	"NewContainerRequest": {1: {str: true}, 2: {sub: "Mount"}, 3: {enum: true}, 4: {sub: "Empty"}, 5: {sub: "Empty"},
		6: {sub: "HostIP"}, 7: {str: true}},
	"ExecMessage": {1: {str: true}, 2: {sub: "InitMessage"}, 3: {sub: "Empty"}, 4: {sub: "Empty"}, 5: {sub: "Empty"},
		6: {sub: "Empty"}, 7: {sub: "Empty"}, 8: {sub: "Empty"}},
	"InitMessage":               {1: {str: true}, 2: {sub: "Meta"}, 3: {}, 4: {}, 5: {enum: true}, 6: {sub: "SecretEnv"}},
	"StatusRequest":             {1: {str: true}},
	"ResolveSourceMetaRequest":  {1: {sub: "SourceOp"}, 3: {str: true}, 4: {str: true}},
	"ResolveImageConfigRequest": {1: {str: true}, 2: {sub: "Empty"}, 3: {str: true}, 4: {str: true}, 6: {str: true}, 7: {str: true}},
}

var methodType = map[string]string{
	ctl + "Solve":             "control.SolveRequest",
	br + "Solve":              "gateway.SolveRequest",
	br + "NewContainer":       "NewContainerRequest",
	br + "ExecProcess":        "ExecMessage",
	ctl + "Status":            "StatusRequest",
	br + "ResolveImageConfig": "ResolveImageConfigRequest",
	br + "ResolveSourceMeta":  "ResolveSourceMetaRequest",
}

type base struct {
	name, method string
	m            *pmsg
	raw          []byte // as captured (unparsed bases are used as they are)
}

// fixtureMethod: the method of a captured request from its file name.
var capturedRe = regexp.MustCompile(`(moby\.buildkit\.v1(?:\.frontend)?)\.(Control|LLBBridge)-([A-Za-z]+)-req-\d+\.bin$`)

func fixtureMethod(path string) string {
	n := filepath.Base(path)
	if m := capturedRe.FindStringSubmatch(n); m != nil {
		return "/" + m[1] + "." + m[2] + "/" + m[3]
	}
	switch {
	case strings.HasSuffix(n, "-resp.bin"):
		return ""
	case strings.HasPrefix(n, "control-solve") || strings.HasPrefix(n, "dockerfile-solve-req"):
		return ctl + "Solve"
	case strings.HasPrefix(n, "bridge-solve"):
		return br + "Solve"
	case strings.HasPrefix(n, "control-status") || strings.HasPrefix(n, "dockerfile-status-req"):
		return ctl + "Status"
	}
	return ""
}

func loadFixtures(dirs []string) ([]base, error) {
	var out []base
	seen := map[string]bool{}
	for _, d := range dirs {
		err := filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || !strings.HasSuffix(p, ".bin") {
				return err
			}
			meth := fixtureMethod(p)
			if methodType[meth] == "" {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if seen[meth+string(b)] {
				return nil
			}
			seen[meth+string(b)] = true
			bs := base{name: strings.TrimPrefix(p, d+"/"), method: meth, raw: b}
			if m, err := parse(methodType[meth], b, 0); err == nil {
				bs.m = m
			}
			out = append(out, bs)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// ---- synthetic messages -------------------------------------------------------

const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func opBytes(fields ...*pfield) *pfield { return fm(1, msg("Op", fields...)) }

func syntheticDefinition() *pmsg {
	meta := msg("Meta", fs(1, "/bin/sh"), fs(1, "-c"), fs(1, "make"), fs(2, "PATH=/bin"), fs(3, "/src"), fs(4, "root"),
		fm(6, msg("HostIP", fs(1, "db"), fs(2, "10.0.0.2"))), fs(7, "builder"),
		fm(9, msg("Ulimit", fs(1, "nofile"), fv(2, 1024), fv(3, 4096))), fs(10, "/sys/fs/cgroup/other"))
	exec := msg("ExecOp", fm(1, meta),
		fm(2, msg("Mount", fv(1, 0), fs(3, "/"))),
		fm(2, msg("Mount", fv(1, 0xffffffffffffffff), fs(3, "/root/.cache/go-build"), fv(6, 3),
			fm(20, msg("CacheOpt", fs(1, "go-build"), fv(2, 1))))),
		fm(2, msg("Mount", fv(1, 0xffffffffffffffff), fs(3, "/run/secrets/tok"), fv(6, 1),
			fm(21, msg("SecretOpt", fs(1, "tok"))))),
		fm(2, msg("Mount", fv(1, 0xffffffffffffffff), fs(3, "/run/ssh"), fv(6, 2),
			fm(22, msg("SecretOpt", fs(1, "default"))))),
		fv(3, 2), fv(4, 0),
		fm(5, msg("SecretEnv", fs(1, "tok"), fs(2, "TOKEN"))))
	return msg("Definition",
		opBytes(fm(3, msg("SourceOp", fs(1, "docker-image://docker.io/library/alpine:latest")))),
		opBytes(fm(3, msg("SourceOp", fs(1, "local://context"), entry(2, "local.session", "s3ss10n"),
			entry(2, "local.sharedkeyhint", "context")))),
		opBytes(fm(1, msg("Input", fs(1, dg))), fm(2, exec)),
		opBytes(fm(1, msg("Input", fs(1, dg))), fm(6, msg("Empty"))),
		fm(2, msg("MapSMeta", fs(1, dg), fm(2, msg("OpMetadata", fv(1, 1))))))
}

func synthetic() []base {
	def := syntheticDefinition
	cs := msg("control.SolveRequest", fs(1, "ref1"), fm(2, def()), fs(3, "image"),
		entry(4, "name", "registry.example.com/oracle/app:1"), entry(4, "push", "false"),
		fs(5, "s3ss10n"), fs(6, "dockerfile.v0"),
		entry(7, "filename", "Dockerfile"),
		entry(7, "cache-imports", `[{"Type":"local","Attrs":{"src":"x"}}]`),
		entry(7, "build-arg:BUILDKIT_SYNTAX", "docker/dockerfile:1.5"),
		entry(7, "local-sessionid:context", "s3ss10n"),
		fm(8, msg("CacheOptions", fm(5, msg("Typed", fs(1, "registry"), entry(2, "ref", "r/c"))),
			fm(4, msg("Typed", fs(1, "inline"))))),
		fs(9, "network.host"),
		fm(10, msg("MapSDef", fs(1, "context"), fm(2, def()))),
		fm(12, msg("Policy", fv(1, 1), fm(2, msg("Rule", fv(1, 2), fm(2, msg("Selector", fs(1, "docker-image://*"))),
			fm(3, msg("Update", fs(1, "docker-image://mirror/x"), entry(2, "local.session", "s3ss10n"))))))),
		fm(13, msg("Typed", fs(1, "image"), entry(2, "name", "registry.example.com/oracle/app:1"), entry(2, "push", "false"))),
		fs(15, "s3ss10n"))
	bs := msg("gateway.SolveRequest", fm(1, def()), fs(2, "dockerfile.v0"),
		entry(3, "cache-imports", `[{"type":"registry","attrs":{"ref":"r/c"}}]`),
		entry(3, "build-arg:BUILDKIT_SYNTAX", "docker/dockerfile:1"),
		fs(4, "registry.example.com/cache:latest"), fv(5, 1), fv(10, 1),
		&pfield{num: 11, wt: 2, data: []byte(`{"name":"eG9v"}`)},
		fm(12, msg("Typed", fs(1, "local"), entry(2, "src", "x"))),
		fm(13, msg("MapSDef", fs(1, "context"), fm(2, def()))))
	nc := msg("NewContainerRequest", fs(1, "ctr1"),
		fm(2, msg("Mount", fv(1, 0), fs(3, "/"))),
		fm(2, msg("Mount", fv(1, 0xffffffffffffffff), fs(3, "/cache"), fv(6, 3), fm(20, msg("CacheOpt", fs(1, "npm"))))),
		fm(2, msg("Mount", fv(1, 0xffffffffffffffff), fs(3, "/run/secrets/x"), fv(6, 1), fm(21, msg("SecretOpt", fs(1, "x"))))),
		fv(3, 2), fm(6, msg("HostIP", fs(1, "h"), fs(2, "10.1.1.1"))), fs(7, "box"))
	ex := msg("ExecMessage", fs(1, "p1"), fm(2, msg("InitMessage", fs(1, "ctr1"),
		fm(2, msg("Meta", fs(1, "sh"), fs(2, "A=1"), fs(3, "/"))), &pfield{num: 3, wt: 2, data: []byte{0, 1, 2}},
		fv(4, 1), fv(5, 0), fm(6, msg("SecretEnv", fs(1, "tok"), fs(2, "TOKEN"))))))
	st := msg("StatusRequest", fs(1, "ref1"))
	rs := msg("ResolveSourceMetaRequest", fm(1, msg("SourceOp", fs(1, "oci-layout://store/app:1"),
		entry(2, "oci.session", "s3ss10n"), entry(2, "oci.store", "store"), entry(2, "local.session", "s3ss10n"))),
		fs(3, "resolve"))
	ri := msg("ResolveImageConfigRequest", fs(1, "docker.io/library/alpine:latest"), fs(3, "default"), fs(6, "s3ss10n"))
	return []base{
		{name: "synthetic/control-solve", method: ctl + "Solve", m: cs},
		{name: "synthetic/bridge-solve", method: br + "Solve", m: bs},
		{name: "synthetic/new-container", method: br + "NewContainer", m: nc},
		{name: "synthetic/exec-init", method: br + "ExecProcess", m: ex},
		{name: "synthetic/status", method: ctl + "Status", m: st},
		{name: "synthetic/resolve-image", method: br + "ResolveImageConfig", m: ri},
		{name: "synthetic/resolve-source", method: br + "ResolveSourceMeta", m: rs},
	}
}

// ---- mutations ------------------------------------------------------------------

type loc struct {
	parent *pmsg
	idx    int
}

func (l loc) f() *pfield { return l.parent.fields[l.idx] }

// walk lists every field of the tree (depth first).
func walk(m *pmsg, out []loc) []loc {
	for i, f := range m.fields {
		out = append(out, loc{m, i})
		if f.sub != nil {
			out = walk(f.sub, out)
		}
	}
	return out
}

func pick(r *rand.Rand, m *pmsg, keep func(msgType string, f *pfield) bool) (loc, bool) {
	all := walk(m, nil)
	var c []loc
	for _, l := range all {
		if l.f().raw == nil && keep(l.parent.typ, l.f()) {
			c = append(c, l)
		}
	}
	if len(c) == 0 {
		return loc{}, false
	}
	return c[r.Intn(len(c))], true
}

func allMsgs(m *pmsg, out []*pmsg) []*pmsg {
	out = append(out, m)
	for _, f := range m.fields {
		if f.sub != nil {
			out = allMsgs(f.sub, out)
		}
	}
	return out
}

func insertAt(r *rand.Rand, m *pmsg, f *pfield) {
	i := r.Intn(len(m.fields) + 1)
	m.fields = append(m.fields, nil)
	copy(m.fields[i+1:], m.fields[i:])
	m.fields[i] = f
}

func isStr(typ string, f *pfield) bool {
	s, ok := schema[typ][f.num]
	return ok && s.str && f.wt == 2 && f.sub == nil
}

var evilStrings = []string{
	"registry.example.com/ci/app\x00,docker.io/library/alpine:latest",
	"oracle\x00.other", "\x00", "a\xffb", "\xc0\x80", "\xed\xa0\x80", "caf\xc3", "x:alice.ID", "alice.ID",
	"oracle.alice", ":alice", "oracle.", ".", "other.s3ss10n", " s3ss10n", "s3ss10n ", "\u00a0x", "\u017f", "\u212a",
	"sha256:" + strings.Repeat("A", 64), strings.Repeat("x", 300),
}

var syntaxValues = []string{
	" docker/dockerfile:1", "\tdocker/dockerfile:1", "\ndocker/dockerfile:1", "\u00a0docker/dockerfile:1",
	"\u3000evil/frontend", "evil/frontend\t--x", "  ", "evil/frontend extra", "\x00evil/frontend",
	"\vevil/frontend", "\u0085evil/frontend", "evil/frontend\x00docker/dockerfile:1",
}

var jsonValues = []string{
	`[{"Type":"local","TYPE":"s3"}]`, `[{"type":"local","Type":"gha"}]`, `[{"Type":"local","type":"s3"}]`,
	`[{"tYpE":"s3"}]`, `[{"Type":"local","Type":"s3"}]`, `[{"Type":"local","Attrs":{"src":"a"},"Attr\u017f":{"src":"b"}}]`,
	`[{"Type":"local","\u0054ype":"s3"}]`, `[{"Type":"registry"},{"TYPE":"gha"}]`, `[{"Type":1}]`, `[1]`, `null`,
	`[{"Type":"local"}] `, ` [{"Type":"local"}]`, `[{"Type":"lo\u0000cal"}]`, `[{"Type":"local\u212a"}]`, `{"Type":"local"}`,
	`[{"Type":"local","Attrs":{"src":"x","SRC":"y"}}]`, `[{"Type":null}]`, `[{"Type":"local"},]`, `[{"Type":"\ud800"}]`,
}

type mutation struct {
	name string
	do   func(r *rand.Rand, m *pmsg) bool
}

var bigNums = []uint64{1<<29 - 1, 1 << 29, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1<<32 + 5, 1 << 35, 1<<61 - 1}

var mutations = []mutation{
	{"tag-plus-2^32k", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(string, *pfield) bool { return true })
		if ok {
			l.f().num += uint64(1+r.Intn(3)) << 32
		}
		return ok
	}},
	{"tag-plus-2^31", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(string, *pfield) bool { return true })
		if ok {
			l.f().num += 1 << 31
		}
		return ok
	}},
	{"overlong-tag", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(string, *pfield) bool { return true })
		if ok {
			l.f().pad = 1 + r.Intn(8) // up to 10 bytes: more is an error in Go
		}
		return ok
	}},
	{"overlong-len-or-value", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(_ string, f *pfield) bool { return f.wt == 0 || f.wt == 2 })
		if ok {
			l.f().vpad = 1 + r.Intn(9)
		}
		return ok
	}},
	{"field0", func(r *rand.Rand, m *pmsg) bool {
		ms := allMsgs(m, nil)
		raws := [][]byte{{0x02, 0x00}, {0x80, 0x00, 0x00}, {0x00, 0x01}, {0x82, 0x80, 0x80, 0x80, 0x10, 0x00}}
		insertAt(r, ms[r.Intn(len(ms))], &pfield{raw: raws[r.Intn(len(raws))]})
		return true
	}},
	{"big-field-number", func(r *rand.Rand, m *pmsg) bool {
		ms := allMsgs(m, nil)
		n := bigNums[r.Intn(len(bigNums))]
		insertAt(r, ms[r.Intn(len(ms))], &pfield{num: n, wt: 2, data: []byte("x")})
		return true
	}},
	{"group", func(r *rand.Rand, m *pmsg) bool {
		ms := allMsgs(m, nil)
		t := ms[r.Intn(len(ms))]
		num := uint64(r.Intn(30) + 1)
		g := &pfield{num: num, wt: 3, group: []*pfield{fs(1, "g"), fv(2, 7)}}
		if r.Intn(4) == 0 {
			g = &pfield{raw: putVarint(nil, num<<3|4, 0)} // a stray end-group
		}
		insertAt(r, t, g)
		return true
	}},
	{"dup-scalar", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(_ string, f *pfield) bool { return f.sub == nil && f.wt != 3 })
		if !ok {
			return false
		}
		d := l.f().clone()
		if d.wt == 2 {
			d.data = []byte(evilStrings[r.Intn(len(evilStrings))])
		} else {
			d.v = uint64(r.Intn(5))
		}
		insertAt(r, l.parent, d)
		return true
	}},
	{"dup-submessage", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(_ string, f *pfield) bool { return f.sub != nil })
		if !ok {
			return false
		}
		d := l.f().clone()
		if len(d.sub.fields) > 0 && r.Intn(2) == 0 {
			d.sub.fields = d.sub.fields[r.Intn(len(d.sub.fields)):]
		}
		insertAt(r, l.parent, d)
		return true
	}},
	{"map-entry-tricks", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(_ string, f *pfield) bool {
			return f.sub != nil && strings.HasPrefix(f.sub.typ, "Map")
		})
		if !ok {
			return false
		}
		e := l.f().sub
		switch r.Intn(7) {
		case 0: // same key again, another value, after or before
			d := l.f().clone()
			for _, x := range d.sub.fields {
				if x.num == 2 && x.sub == nil {
					x.data = []byte(evilStrings[r.Intn(len(evilStrings))])
				}
			}
			insertAt(r, l.parent, d)
		case 1: // value before key
			for i, j := 0, len(e.fields)-1; i < j; i, j = i+1, j-1 {
				e.fields[i], e.fields[j] = e.fields[j], e.fields[i]
			}
		case 2: // no key
			e.fields = filter(e.fields, 1)
		case 3: // no value
			e.fields = filter(e.fields, 2)
		case 4: // key twice in the entry
			for _, x := range e.fields {
				if x.num == 1 {
					d := x.clone()
					d.data = []byte(evilStrings[r.Intn(len(evilStrings))])
					e.fields = append(e.fields, d)
					break
				}
			}
		case 5: // key tagged 1 + 2^32
			for _, x := range e.fields {
				if x.num == 1 {
					d := x.clone()
					d.num += 1 << 32
					d.data = []byte("local.session")
					e.fields = append(e.fields, d)
					break
				}
			}
		case 6: // unknown field inside the entry
			insertAt(r, e, fs(3, "zzz"))
		}
		return true
	}},
	{"two-oneof-members", func(r *rand.Rand, m *pmsg) bool {
		var t []*pmsg
		for _, x := range allMsgs(m, nil) {
			if x.typ == "Op" || x.typ == "ExecMessage" {
				t = append(t, x)
			}
		}
		if len(t) == 0 {
			return false
		}
		x := t[r.Intn(len(t))]
		if x.typ == "Op" {
			others := []*pfield{fm(3, msg("SourceOp", fs(1, "docker-image://evil.example/x"))),
				fm(2, msg("ExecOp", fv(3, 1), fv(4, 1))), fm(4, msg("Empty")), fm(6, msg("Empty")),
				fm(8, msg("Empty")), fm(5, msg("BuildOp"))}
			insertAt(r, x, others[r.Intn(len(others))])
		} else {
			others := []*pfield{fm(3, msg("Empty")), fm(4, msg("Empty")), fm(8, msg("Empty")),
				fm(2, msg("InitMessage", fs(1, "c2"), fv(5, 1)))}
			insertAt(r, x, others[r.Intn(len(others))])
		}
		return true
	}},
	{"evil-string", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, isStr)
		if !ok {
			return false
		}
		f := l.f()
		s := evilStrings[r.Intn(len(evilStrings))]
		switch r.Intn(3) {
		case 0:
			f.data = []byte(s)
		case 1:
			f.data = append(append([]byte(nil), f.data...), s...)
		default:
			at := 0
			if len(f.data) > 0 {
				at = r.Intn(len(f.data))
			}
			f.data = append(append(append([]byte(nil), f.data[:at]...), s...), f.data[at:]...)
		}
		return true
	}},
	{"syntax-whitespace", func(r *rand.Rand, m *pmsg) bool {
		num := attrField(m)
		if num == 0 {
			return false
		}
		insertAt(r, m, entry(num, "build-arg:BUILDKIT_SYNTAX", syntaxValues[r.Intn(len(syntaxValues))]))
		return true
	}},
	{"cache-imports-json", func(r *rand.Rand, m *pmsg) bool {
		num := attrField(m)
		if num == 0 {
			return false
		}
		insertAt(r, m, entry(num, "cache-imports", jsonValues[r.Intn(len(jsonValues))]))
		return true
	}},
	{"unknown-field", func(r *rand.Rand, m *pmsg) bool {
		ms := allMsgs(m, nil)
		t := ms[r.Intn(len(ms))]
		num := uint64(12 + r.Intn(40))
		for {
			if _, ok := schema[t.typ][num]; !ok {
				break
			}
			num++
		}
		wts := []*pfield{fv(num, uint64(r.Int63())), {num: num, wt: 1, v: 7}, {num: num, wt: 5, v: 9}, fs(num, "unknown")}
		insertAt(r, t, wts[r.Intn(len(wts))])
		return true
	}},
	{"wrong-wire-type", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(string, *pfield) bool { return true })
		if !ok {
			return false
		}
		f := l.f()
		if f.wt == 2 {
			*f = pfield{num: f.num, wt: 0, v: 1}
		} else {
			*f = pfield{num: f.num, wt: 2, data: []byte{byte(f.v)}}
		}
		return true
	}},
	{"enum-values", func(r *rand.Rand, m *pmsg) bool {
		l, ok := pick(r, m, func(typ string, f *pfield) bool { return schema[typ][f.num].enum && f.wt == 0 })
		if !ok {
			// add one: network host on an exec op, or insecure security
			for _, x := range allMsgs(m, nil) {
				if x.typ == "ExecOp" || x.typ == "NewContainerRequest" {
					x.fields = append(x.fields, fv(3, 1<<32|2))
					return true
				}
			}
			return false
		}
		vals := []uint64{0, 1, 2, 3, 5, 1<<32 | 1, 1<<32 | 2, 0xffffffffffffffff, 1 << 31, 0x7fffffff}
		l.f().v = vals[r.Intn(len(vals))]
		return true
	}},
	{"session-names", func(r *rand.Rand, m *pmsg) bool {
		names := []string{"x:alice.ID", "alice.ID", "oracle.x", "other.x", ":x", "x:", "oracle:x"}
		var targets []loc
		for _, l := range walk(m, nil) {
			f := l.f()
			switch {
			case (l.parent.typ == "control.SolveRequest" && (f.num == 1 || f.num == 5 || f.num == 15)) ||
				(l.parent.typ == "StatusRequest" && f.num == 1) ||
				(l.parent.typ == "ResolveImageConfigRequest" && f.num == 6):
				targets = append(targets, l)
			case l.parent.typ == "MapSS" && f.num == 2 && len(l.parent.fields) > 0 &&
				strings.Contains(string(l.parent.fields[0].data), "session"):
				targets = append(targets, l)
			}
		}
		if len(targets) == 0 {
			return false
		}
		targets[r.Intn(len(targets))].f().data = []byte(names[r.Intn(len(names))])
		return true
	}},
	{"exporters-pair", func(r *rand.Rand, m *pmsg) bool {
		if m.typ != "control.SolveRequest" {
			return false
		}
		switch r.Intn(4) {
		case 3:
			// 4 as long as Exporters[0].Attrs, with one key twice: a
			// comparison that counts entries and looks keys up one way
			// finds them equal
			var e0 *pmsg
			for _, f := range m.fields {
				if f.num == 13 && f.sub != nil {
					e0 = f.sub
					break
				}
			}
			if e0 == nil {
				e0 = msg("Typed", fs(1, "image"), entry(2, "name", "registry.example.com/oracle/app:1"), entry(2, "push", "false"))
				insertAt(r, m, fm(13, e0))
			}
			var ents []*pfield
			for _, f := range e0.fields {
				if f.num == 2 && f.sub != nil {
					ents = append(ents, f.clone())
				}
			}
			if len(ents) < 2 {
				ents = append(ents, entry(2, "push", "false"))
			}
			ents[len(ents)-1] = ents[0].clone()
			m.fields = filter(m.fields, 4)
			for _, f := range ents {
				f.num = 4
				m.fields = append(m.fields, f)
			}
		case 0:
			insertAt(r, m, entry(4, "push", "true"))
		case 1:
			insertAt(r, m, fm(13, msg("Typed", fs(1, "image"), entry(2, "store", "false"), entry(2, "store", "true"))))
		default:
			insertAt(r, m, fs(3, "local"))
		}
		return true
	}},
	{"llb-powers", func(r *rand.Rand, m *pmsg) bool {
		for _, x := range allMsgs(m, nil) {
			if x.typ == "Meta" {
				adds := []*pfield{fm(9, msg("Ulimit", fs(1, "core"), fv(2, 1), fv(3, 2))), fs(10, "/other-tenant"),
					fm(6, msg("HostIP", fs(1, "x"), fs(2, "1.2.3.4"))), fs(7, "h\x00ost"), fs(11, "x")}
				insertAt(r, x, adds[r.Intn(len(adds))])
				return true
			}
		}
		return false
	}},
	{"packed-repeated", func(r *rand.Rand, m *pmsg) bool {
		for _, x := range allMsgs(m, nil) {
			if x.typ == "InitMessage" {
				if r.Intn(2) == 0 {
					insertAt(r, x, fv(3, 9))
				} else {
					insertAt(r, x, &pfield{num: 3, wt: 2, data: []byte{3, 4, 0x80, 0x01}})
				}
				return true
			}
		}
		return false
	}},
}

func filter(fs []*pfield, drop uint64) []*pfield {
	var out []*pfield
	for _, f := range fs {
		if f.num != drop {
			out = append(out, f)
		}
	}
	return out
}

// attrField: the field number of the frontend attrs map of a solve request.
func attrField(m *pmsg) uint64 {
	switch m.typ {
	case "control.SolveRequest":
		return 7
	case "gateway.SolveRequest":
		return 3
	}
	return 0
}

// byte-level mutations of an encoded message
func bitflip(r *rand.Rand, b []byte) []byte {
	b = append([]byte(nil), b...)
	if len(b) == 0 {
		return b
	}
	for k := 0; k < 1+r.Intn(3); k++ {
		b[r.Intn(len(b))] ^= byte(1 << uint(r.Intn(8)))
	}
	return b
}

func cmdGen(args []string) error {
	fl := flag.NewFlagSet("gen", flag.ContinueOnError)
	n := fl.Int("n", 12000, "messages to write (fixtures and synthetic ones included)")
	seed := fl.Int64("seed", 1, "random seed")
	out := fl.String("o", "", "stream file to write")
	labels := fl.String("labels", "", "file for one label per message (mutations applied, base)")
	var dirs multiFlag
	fl.Var(&dirs, "fixtures", "a directory of captured messages (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	bases, err := loadFixtures(dirs)
	if err != nil {
		return err
	}
	bases = append(bases, synthetic()...)
	of, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer of.Close()
	lf, err := os.Create(*labels)
	if err != nil {
		return err
	}
	defer lf.Close()
	w := bufio.NewWriterSize(of, 1<<20)
	lw := bufio.NewWriter(lf)
	r := rand.New(rand.NewSource(*seed))
	count := 0
	emit := func(method string, b []byte, label string) {
		writeRecord(w, &record{method, b})
		fmt.Fprintln(lw, label)
		count++
	}
	for _, b := range bases {
		raw := b.raw
		if raw == nil {
			raw = b.m.encode(nil)
		}
		emit(b.method, raw, "none\t"+b.name)
	}
	// every method gets its share, whatever the number of its fixtures
	byMethod := map[string][]base{}
	var methods []string
	for _, b := range bases {
		if b.m != nil {
			if byMethod[b.method] == nil {
				methods = append(methods, b.method)
			}
			byMethod[b.method] = append(byMethod[b.method], b)
		}
	}
	for i := 0; count < *n; i++ {
		bl := byMethod[methods[i%len(methods)]]
		b := bl[(i/len(methods))%len(bl)]
		m := b.m.clone()
		var names []string
		for k := 0; k < 1+r.Intn(3); k++ {
			mu := mutations[r.Intn(len(mutations))]
			if mu.do(r, m) {
				names = append(names, mu.name)
			}
		}
		enc := m.encode(nil)
		switch r.Intn(40) {
		case 0:
			enc = bitflip(r, enc)
			names = append(names, "bitflip")
		case 1:
			if len(enc) > 0 {
				enc = enc[:r.Intn(len(enc))]
				names = append(names, "truncate")
			}
		}
		if len(names) == 0 {
			names = []string{"none"}
		}
		emit(b.method, enc, strings.Join(names, "+")+"\t"+b.name)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return lw.Flush()
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }
