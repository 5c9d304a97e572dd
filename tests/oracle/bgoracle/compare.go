package main

// compare: the gateway's view (buildgate check --dump --batch) against
// BuildKit's (bgoracle decode), message by message and field by field; and,
// for bytes the gateway forwards, Exporter/ExporterAttrs against Exporters[0]
// (old and new daemons must read the same exporter).
//
// A message is not compared when the gateway refused it (it never reaches
// the daemon) or when BuildKit's decoder itself rejects it (the daemon
// answers with an error and builds nothing).  A path ending in "!" on the
// Go side marks a part BuildKit fails on when it gets there (an op that does
// not decode, cache-imports that is not valid JSON): everything under it is
// left out of the comparison.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type diff struct{ path, goV, gateV string }

func (d diff) String() string {
	if strings.Contains(d.path, "=") { // an old/new pair of fields (exporterPair)
		return fmt.Sprintf("%s: %s, %s", d.path, d.goV, d.gateV)
	}
	return fmt.Sprintf("%s: BuildKit reads %q, the gateway reads %q", d.path, d.goV, d.gateV)
}

func readJSONLines(path string) ([]map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []map[string]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<28)
	for sc.Scan() {
		m := map[string]string{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s line %d: %v", path, len(out)+1, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func readLines(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), nil
}

func readStream(path string) ([]*record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var out []*record
	for {
		rec, err := readRecord(r)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return out, nil
		}
		out = append(out, rec)
	}
}

func compareViews(g, c map[string]string) []diff {
	var skip []string
	for k := range g {
		if strings.HasSuffix(k, "!") {
			skip = append(skip, strings.TrimSuffix(k, "!"))
		}
	}
	skipped := func(k string) bool {
		if strings.HasPrefix(k, "?") || strings.HasPrefix(k, "^") {
			return true
		}
		for _, p := range skip {
			if k == p+"!" || strings.HasPrefix(k, p+".") || strings.HasPrefix(k, p+"#") || strings.HasPrefix(k, p+"[") {
				return true
			}
		}
		return false
	}
	v08only := g["?gen_error"] != ""
	keys := map[string]bool{}
	for k := range g {
		keys[k] = true
	}
	for k := range c {
		keys[k] = true
	}
	var ds []diff
	for k := range keys {
		if skipped(k) {
			continue
		}
		gv, gok := g[k]
		cv, cok := c[k]
		if v08only && !gok && newerThanV08.MatchString(k) {
			continue // a v0.8 daemon neither reads nor sees this field
		}
		if gok != cok || gv != cv {
			if !gok {
				gv = "(absent)"
			}
			if !cok {
				cv = "(absent)"
			}
			ds = append(ds, diff{k, gv, cv})
		}
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].path < ds[j].path })
	return ds
}

// exporterPair: in bytes that reach the daemon, a daemon older than v0.13
// reads Exporter/ExporterAttrs (3/4) and a newer one Exporters (13) when it
// is not empty: the two must say the same, or the policy judged only one of
// them (PROTOCOL.md section 6, "Exporter fields").
func exporterPair(g map[string]string) []diff {
	if g["Exporters#"] == "" {
		return nil
	}
	var ds []diff
	if g["Exporter"] != g["Exporters[0].Type"] {
		ds = append(ds, diff{"Exporter=Exporters[0].Type", "v0.13+ reads " + strconv.Quote(g["Exporters[0].Type"]),
			"older daemons read " + strconv.Quote(g["Exporter"])})
	}
	for k, v := range g {
		if strings.HasPrefix(k, "ExporterAttrs") {
			if w := g["Exporters[0].Attrs"+strings.TrimPrefix(k, "ExporterAttrs")]; w != v {
				ds = append(ds, diff{"ExporterAttrs=Exporters[0].Attrs" + strings.TrimPrefix(k, "ExporterAttrs"),
					"v0.13+ reads " + strconv.Quote(w), "older daemons read " + strconv.Quote(v)})
			}
		}
		if strings.HasPrefix(k, "Exporters[0].Attrs") && g["ExporterAttrs"+strings.TrimPrefix(k, "Exporters[0].Attrs")] == "" {
			ds = append(ds, diff{"ExporterAttrs=Exporters[0].Attrs" + strings.TrimPrefix(k, "Exporters[0].Attrs"),
				"v0.13+ reads " + strconv.Quote(v), "older daemons read \"\""})
		}
	}
	return ds
}

var (
	idxRe = regexp.MustCompile(`\[[^\]]*\]`)
	// Paths of fields BuildKit v0.8 does not have (PROTOCOL.md section 4).
	// When only v0.8's decoder accepts a message (newer ones refuse it),
	// these are not compared.
	newerThanV08 = regexp.MustCompile(`^(Exporters|EnableSessionExporter|SourcePolicySession|SourcePolicy|SourcePolicies|extraHosts|hostname|SessionID)\b|\.(secretenv|cdiDevices|ulimit|cgroupParent)\b`)
)

// fieldClass: a path without indexes and map keys ("Definition.def[].exec.meta.ulimit#").
func fieldClass(p string) string { return idxRe.ReplaceAllString(p, "[]") }

var methodIndex = map[string]byte{ // tests/fuzz/fuzz_policy_call.c methods[]
	ctl + "Solve": 0, br + "Solve": 1, br + "NewContainer": 2, br + "ExecProcess": 3, ctl + "Status": 4,
	br + "ResolveImageConfig": 10, br + "ResolveSourceMeta": 11,
}

func cmdCompare(args []string) (bool, error) {
	fl := flag.NewFlagSet("compare", flag.ContinueOnError)
	stream := fl.String("stream", "", "the message stream")
	labels := fl.String("labels", "", "labels written by gen")
	goOut := fl.String("go", "", "bgoracle decode output")
	gateOut := fl.String("gate", "", "buildgate check --dump --batch output")
	show := fl.Int("show", 5, "disagreements to print in detail")
	examples := fl.Bool("examples", false, "print one example of each disagreeing field")
	forwarded := fl.Bool("forwarded", false, "the stream is the bytes the gateway forwarded (the second pass)")
	rewritten := fl.String("rewritten", "", "write the messages the gateway rewrote (stream, and labels beside it) to check them again")
	seeds := fl.String("seeds", "", "write up to 48 interesting messages as libFuzzer seeds under DIR/fuzz_inspect and DIR/fuzz_policy_call")
	if err := fl.Parse(args); err != nil {
		return false, err
	}
	recs, err := readStream(*stream)
	if err != nil {
		return false, err
	}
	lab, err := readLines(*labels)
	if err != nil {
		return false, err
	}
	gv, err := readJSONLines(*goOut)
	if err != nil {
		return false, err
	}
	cv, err := readJSONLines(*gateOut)
	if err != nil {
		return false, err
	}
	if len(recs) != len(lab) || len(recs) != len(gv) || len(recs) != len(cv) {
		return true, fmt.Errorf("counts differ: %d messages, %d labels, %d Go views, %d gateway views",
			len(recs), len(lab), len(gv), len(cv))
	}
	var compared, refused, goRefused, disagree, selfNotes, failures int
	classes := map[string]int{}        // field class -> messages
	example := map[string]string{}     // field class -> first disagreement seen
	mutClasses := map[string]int{}     // mutation -> messages with a disagreement
	refusals := map[string]int{}       // refusal reason (shortened) -> messages
	var seedList []seedRec
	seedSeen := map[string]bool{}
	addSeed := func(key string, rec *record) {
		if !seedSeen[key] {
			seedSeen[key] = true
			seedList = append(seedList, seedRec{key, rec})
		}
	}
	var rw []*record
	var rwLabels []string
	shown := 0
	for i, rec := range recs {
		g, c := gv[i], cv[i]
		label := strings.SplitN(lab[i], "\t", 2)[0]
		if h := c["^rewritten"]; h != "" {
			if b, err := hex.DecodeString(h); err == nil {
				rw = append(rw, &record{rec.method, b})
				rwLabels = append(rwLabels, "rewritten-"+lab[i])
			}
		}
		if r, ok := c["refused"]; ok {
			refused++
			short := regexp.MustCompile(`[0-9]+`).ReplaceAllString(r, "N")
			if len(short) > 90 {
				short = short[:90]
			}
			refusals[short]++
			addSeed("refused:"+label+":"+short, rec)
			continue
		}
		if _, ok := c["refused"]; !ok && (c["forwarded"] != "" || c["error"] != "") {
			failures++
			fmt.Printf("oracle: message %d (%s, %s): the gateway produced no view: %v\n", i, rec.method, lab[i], c)
			continue
		}
		if _, ok := g["go_error"]; ok {
			goRefused++
			continue
		}
		if g["?self"] != "" {
			selfNotes++
		}
		compared++
		ds := compareViews(g, c)
		if *forwarded || c["^rewritten"] == "" {
			// forwarded as it is: what each daemon generation reads from it
			ds = append(ds, exporterPair(g)...)
		}
		if len(ds) == 0 {
			continue
		}
		disagree++
		seenC := map[string]bool{}
		for _, d := range ds {
			fc := fieldClass(d.path)
			if !seenC[fc] {
				seenC[fc] = true
				classes[fc]++
				if _, ok := example[fc]; !ok {
					example[fc] = fmt.Sprintf("message %d (%s): %s", i, label, d.String())
				}
			}
		}
		for _, mname := range strings.Split(label, "+") {
			mutClasses[mname]++
		}
		addSeed("disagree:"+label+":"+fieldClass(ds[0].path), rec)
		if shown < *show {
			shown++
			fmt.Printf("oracle: disagreement #%d: message %d, %s, mutations %s (base %s):\n", shown, i, rec.method,
				label, strings.SplitN(lab[i]+"\t", "\t", 3)[1])
			for k, d := range ds {
				if k == 6 {
					fmt.Printf("    ... %d more fields\n", len(ds)-k)
					break
				}
				fmt.Printf("    %s\n", d.String())
			}
		}
	}
	if disagree > 0 {
		fmt.Println("oracle: disagreeing fields (messages per field):")
		printTop(classes, 25)
		if *examples {
			fmt.Println("oracle: one example per field:")
			var ks []string
			for k := range example {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			for _, k := range ks {
				fmt.Printf("    %s\n", example[k])
			}
		}
		fmt.Println("oracle: mutations behind the disagreements (messages per mutation):")
		printTop(mutClasses, 25)
	}
	if len(refusals) > 0 {
		fmt.Println("oracle: gateway refusals (messages per reason):")
		printTop(refusals, 12)
	}
	if *rewritten != "" {
		f, err := os.Create(*rewritten)
		if err != nil {
			return true, err
		}
		w := bufio.NewWriter(f)
		for _, r := range rw {
			writeRecord(w, r)
		}
		if err := w.Flush(); err != nil {
			return true, err
		}
		f.Close()
		lb := strings.Join(rwLabels, "\n")
		if lb != "" {
			lb += "\n"
		}
		if err := os.WriteFile(*rewritten+".labels", []byte(lb), 0o644); err != nil {
			return true, err
		}
	}
	if *seeds != "" {
		if err := writeSeeds(*seeds, seedList); err != nil {
			return true, err
		}
	}
	if selfNotes > 0 {
		fmt.Printf("oracle: note: in %d messages BuildKit v0.8's decoder and the proto/-generated one read a field both know differently\n", selfNotes)
	}
	fmt.Printf("oracle: %d messages: %d compared, %d refused by the gateway, %d refused by BuildKit's decoder\n",
		len(recs), compared, refused, goRefused)
	fmt.Printf("oracle: %d compared, %d refused by the gateway, %d disagreements\n", compared, refused, disagree+failures)
	return disagree+failures > 0, nil
}

func printTop(m map[string]int, n int) {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	sort.Slice(l, func(i, j int) bool { return l[i].v > l[j].v || (l[i].v == l[j].v && l[i].k < l[j].k) })
	for i, x := range l {
		if i == n {
			fmt.Printf("    ... %d more\n", len(l)-n)
			break
		}
		fmt.Printf("    %6d  %s\n", x.v, x.k)
	}
}

// writeSeeds: up to 16 disagreements (one per disagreeing field, they are
// the bugs) and 8 refusals (one per reason), each as the raw message for
// fuzz_inspect and in the fuzz_policy_call form (options byte 1 =
// multi-tenant builder, method index, message).
type seedRec struct {
	key string
	rec *record
}

func writeSeeds(dir string, l []seedRec) error {
	var picked []int
	used := map[string]bool{}
	quota := map[string]int{"disagree": 16, "refused": 8}
	for i, s := range l {
		parts := strings.SplitN(s.key, ":", 3)
		k := parts[0] + ":" + parts[2]
		if !used[k] && quota[parts[0]] > 0 && len(s.rec.msg) <= 64*1024 {
			used[k] = true
			quota[parts[0]]--
			picked = append(picked, i)
		}
	}
	for _, t := range []string{"fuzz_inspect", "fuzz_policy_call"} {
		if err := os.MkdirAll(filepath.Join(dir, t), 0o755); err != nil {
			return err
		}
	}
	for _, i := range picked {
		s := l[i]
		h := sha256.Sum256([]byte(s.key))
		kind := strings.SplitN(s.key, ":", 2)[0]
		name := fmt.Sprintf("oracle-%s-%x", kind, h[:6])
		if err := os.WriteFile(filepath.Join(dir, "fuzz_inspect", name), s.rec.msg, 0o644); err != nil {
			return err
		}
		if mi, ok := methodIndex[s.rec.method]; ok {
			b := append([]byte{1, mi}, s.rec.msg...)
			if err := os.WriteFile(filepath.Join(dir, "fuzz_policy_call", name), b, 0o644); err != nil {
				return err
			}
		}
	}
	fmt.Printf("oracle: wrote %d seeds under %s\n", len(picked), dir)
	return nil
}
