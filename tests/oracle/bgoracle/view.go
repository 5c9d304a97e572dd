package main

// The canonical view of what BuildKit's Go code reads from a message: the
// same flat "path": "value" form as policy/dump.c (see policy/dump.h).
//
// The view is built by reflection over Go field names, so one description
// serves two decoders: BuildKit v0.8's own generated types (authoritative for
// the fields they know) and gogo types generated from the project's proto/
// (fields newer than v0.8).  A field the decoded type does not have is simply
// not listed.

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	extra "bgoracle/gen/extra"
)

type view map[string]string

// readNewerMeta: read Meta fields newer than the decoding type from its
// unknown bytes.  Off while building v0.8's view, which must be what v0.8
// reads (it ignores them), on for the proto/-generated family.
var readNewerMeta bool

// esc writes bytes as printable ASCII, exactly as dump.c's esc().
func esc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			b.WriteString(`\\`)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}

func (v view) str(p, s string) {
	if s != "" {
		v[p] = esc(s)
	}
}

func (v view) num(p string, x int64) {
	if x != 0 {
		v[p] = strconv.FormatInt(x, 10)
	}
}

// deref follows pointers and interfaces; ok is false at a nil.
func deref(x reflect.Value) (reflect.Value, bool) {
	for x.IsValid() && (x.Kind() == reflect.Ptr || x.Kind() == reflect.Interface) {
		if x.IsNil() {
			return reflect.Value{}, false
		}
		x = x.Elem()
	}
	return x, x.IsValid()
}

// field: the first of names that the struct x has.
func field(x reflect.Value, names ...string) (reflect.Value, bool) {
	x, ok := deref(x)
	if !ok || x.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	for _, n := range names {
		if f := x.FieldByName(n); f.IsValid() {
			return f, true
		}
	}
	return reflect.Value{}, false
}

func gs(x reflect.Value, names ...string) string {
	f, ok := field(x, names...)
	if !ok {
		return ""
	}
	switch f.Kind() {
	case reflect.String:
		return f.String()
	case reflect.Slice:
		if f.Type().Elem().Kind() == reflect.Uint8 {
			return string(f.Bytes())
		}
	}
	return ""
}

func gi(x reflect.Value, names ...string) int64 {
	f, ok := field(x, names...)
	if !ok {
		return 0
	}
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return f.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(f.Uint())
	case reflect.Bool:
		if f.Bool() {
			return 1
		}
	}
	return 0
}

func gm(x reflect.Value, names ...string) reflect.Value {
	f, ok := field(x, names...)
	if !ok {
		return reflect.Value{}
	}
	f, _ = deref(f)
	return f
}

func (v view) slist(p string, x reflect.Value, names ...string) {
	f, ok := field(x, names...)
	if !ok || f.Kind() != reflect.Slice {
		return
	}
	v.num(p+"#", int64(f.Len()))
	for i := 0; i < f.Len(); i++ {
		v.str(fmt.Sprintf("%s[%d]", p, i), f.Index(i).String())
	}
}

func (v view) smap(p string, x reflect.Value, names ...string) {
	f, ok := field(x, names...)
	if !ok || f.Kind() != reflect.Map {
		return
	}
	v.num(p+"#", int64(f.Len()))
	it := f.MapRange()
	for it.Next() {
		v.str(p+"["+esc(it.Key().String())+"]", it.Value().String())
	}
}

func goMap(x reflect.Value, name string) map[string]string {
	f, ok := field(x, name)
	if !ok || f.Kind() != reflect.Map {
		return nil
	}
	m := map[string]string{}
	it := f.MapRange()
	for it.Next() {
		m[it.Key().String()] = it.Value().String()
	}
	return m
}

// {Type, Attrs} lists.
func (v view) typed(p string, x reflect.Value, names ...string) {
	f, ok := field(x, names...)
	if !ok || f.Kind() != reflect.Slice {
		return
	}
	v.num(p+"#", int64(f.Len()))
	for i := 0; i < f.Len(); i++ {
		q := fmt.Sprintf("%s[%d]", p, i)
		v.str(q+".Type", gs(f.Index(i), "Type"))
		v.smap(q+".Attrs", f.Index(i), "Attrs")
	}
}

// The frontends' readings of attrs: the dockerfile frontend decodes
// cache-imports with encoding/json into {Type, Attrs} entries (keys matched
// case-insensitively, last match wins) and takes BUILDKIT_SYNTAX as
// strings.SplitN(strings.TrimSpace(v), " ", 2)[0].
func (v view) attrReadings(attrs map[string]string) {
	if ci := attrs["cache-imports"]; ci != "" {
		var entries []struct {
			Type  string
			Attrs map[string]string
		}
		if err := json.Unmarshal([]byte(ci), &entries); err != nil {
			// the frontend fails the build: nothing is imported
			v["~cache-imports!"] = "go: " + esc(err.Error())
		} else {
			v.num("~cache-imports#", int64(len(entries)))
			for i, e := range entries {
				v.str(fmt.Sprintf("~cache-imports[%d].Type", i), e.Type)
			}
		}
	}
	if sy, ok := attrs["build-arg:BUILDKIT_SYNTAX"]; ok {
		v.str("~BUILDKIT_SYNTAX", strings.SplitN(strings.TrimSpace(sy), " ", 2)[0])
	}
}

// unrecognized: the unknown-field bytes gogo kept for a message.
func unrecognized(x reflect.Value) []byte {
	f, ok := field(x, "XXX_unrecognized")
	if !ok {
		return nil
	}
	return f.Bytes()
}

func (v view) meta(p string, x reflect.Value) {
	if _, ok := deref(x); !ok {
		return
	}
	v.slist(p+".args", x, "Args")
	v.slist(p+".env", x, "Env")
	v.str(p+".cwd", gs(x, "Cwd"))
	v.str(p+".user", gs(x, "User"))
	v.str(p+".hostname", gs(x, "Hostname"))
	if f, ok := field(x, "ExtraHosts"); ok {
		v.num(p+".extraHosts#", int64(f.Len()))
		for i := 0; i < f.Len(); i++ {
			v.str(fmt.Sprintf("%s.extraHosts[%d].Host", p, i), gs(f.Index(i), "Host"))
			v.str(fmt.Sprintf("%s.extraHosts[%d].IP", p, i), gs(f.Index(i), "IP"))
		}
	}
	// ulimit (9) and cgroupParent (10): declared fields when the type has
	// them, else read from the unknown bytes with the same gogo rules.
	ul, hasUl := field(x, "Ulimit")
	cg := gs(x, "CgroupParent")
	if !hasUl && readNewerMeta {
		var me extra.MetaExtra
		if err := me.Unmarshal(unrecognized(x)); err == nil {
			ul = reflect.ValueOf(me.Ulimit)
			cg = me.CgroupParent
		} else {
			v[p+".ulimit!"] = "go: " + esc(err.Error())
		}
	}
	v.str(p+".cgroupParent", cg)
	if ul.IsValid() {
		v.num(p+".ulimit#", int64(ul.Len()))
		for i := 0; i < ul.Len(); i++ {
			q := fmt.Sprintf("%s.ulimit[%d]", p, i)
			v.str(q+".Name", gs(ul.Index(i), "Name"))
			v.num(q+".Soft", gi(ul.Index(i), "Soft"))
			v.num(q+".Hard", gi(ul.Index(i), "Hard"))
		}
	}
}

func (v view) mount(p string, x reflect.Value) {
	v.num(p+".input", gi(x, "Input"))
	v.str(p+".dest", gs(x, "Dest"))
	v.num(p+".type", gi(x, "MountType"))
	v.num(p+".readonly", gi(x, "Readonly"))
	c := gm(x, "CacheOpt")
	v.str(p+".cacheOpt.ID", gs(c, "ID"))
	v.num(p+".cacheOpt.sharing", gi(c, "Sharing"))
	v.str(p+".secretOpt.ID", gs(gm(x, "SecretOpt"), "ID"))
	v.str(p+".SSHOpt.ID", gs(gm(x, "SSHOpt"), "ID"))
}

func (v view) mounts(p string, x reflect.Value, names ...string) {
	f, ok := field(x, names...)
	if !ok {
		return
	}
	v.num(p+"#", int64(f.Len()))
	for i := 0; i < f.Len(); i++ {
		v.mount(fmt.Sprintf("%s[%d]", p, i), f.Index(i))
	}
}

func (v view) secretenv(p string, x reflect.Value) {
	f, ok := field(x, "Secretenv")
	if !ok {
		return
	}
	v.num(p+".secretenv#", int64(f.Len()))
	for i := 0; i < f.Len(); i++ {
		v.str(fmt.Sprintf("%s.secretenv[%d].ID", p, i), gs(f.Index(i), "ID"))
		v.str(fmt.Sprintf("%s.secretenv[%d].name", p, i), gs(f.Index(i), "Name"))
	}
}

// decoder turns the bytes of one Op into a decoded value (one per family).
type decoder struct {
	name string
	op   func([]byte) (interface{}, error)
}

func opKind(b []byte) string {
	var k extra.OpKind
	if k.Unmarshal(b) != nil {
		return ""
	}
	switch k.Op.(type) {
	case *extra.OpKind_Exec:
		return "exec"
	case *extra.OpKind_Source:
		return "source"
	case *extra.OpKind_File:
		return "file"
	case *extra.OpKind_Build:
		return "build"
	case *extra.OpKind_Merge:
		return "merge"
	case *extra.OpKind_Diff:
		return "diff"
	case *extra.OpKind_Passthrough:
		return "passthrough"
	}
	return ""
}

func (v view) op(d *decoder, p string, b []byte, depth int) {
	o, err := d.op(b)
	if err != nil {
		// BuildKit fails the solve when it loads this op
		v[p+"!"] = "go: " + esc(err.Error())
		return
	}
	x := reflect.ValueOf(o)
	if f, ok := field(x, "Inputs"); ok {
		v.num(p+".inputs#", int64(f.Len()))
		for i := 0; i < f.Len(); i++ {
			v.str(fmt.Sprintf("%s.inputs[%d]", p, i), gs(f.Index(i), "Digest"))
		}
	}
	v.str(p+".kind", opKind(b))
	one, _ := field(x, "Op")
	if e := gm(one, "Exec"); e.IsValid() {
		v.meta(p+".exec.meta", gm(e, "Meta"))
		v.num(p+".exec.network", gi(e, "Network"))
		v.num(p+".exec.security", gi(e, "Security"))
		v.mounts(p+".exec.mounts", e, "Mounts")
		v.secretenv(p+".exec", e)
		if f, ok := field(e, "CdiDevices"); ok {
			v.num(p+".exec.cdiDevices#", int64(f.Len()))
			for i := 0; i < f.Len(); i++ {
				v.str(fmt.Sprintf("%s.exec.cdiDevices[%d].name", p, i), gs(f.Index(i), "Name"))
			}
		}
	}
	if s := gm(one, "Source"); s.IsValid() {
		v.str(p+".source.identifier", gs(s, "Identifier"))
		v.smap(p+".source.attrs", s, "Attrs")
	}
	if bo := gm(one, "Build"); bo.IsValid() {
		v.num(p+".build.builder", gi(bo, "Builder"))
		v.smap(p+".build.attrs", bo, "Attrs")
		v.definition(d, p+".build.def", gm(bo, "Def"), depth+1)
	}
}

func (v view) definition(d *decoder, p string, x reflect.Value, depth int) {
	if _, ok := deref(x); !ok {
		return
	}
	if depth > 8 {
		v[p+"!"] = "too deep"
		return
	}
	f, ok := field(x, "Def")
	if !ok {
		return
	}
	v.num(p+".def#", int64(f.Len()))
	for i := 0; i < f.Len(); i++ {
		v.op(d, fmt.Sprintf("%s.def[%d]", p, i), f.Index(i).Bytes(), depth)
	}
}

func (v view) definitionsMap(d *decoder, p string, x reflect.Value, name string) {
	f, ok := field(x, name)
	if !ok || f.Kind() != reflect.Map {
		return
	}
	v.num(p+"#", int64(f.Len()))
	it := f.MapRange()
	for it.Next() {
		v.definition(d, p+"["+esc(it.Key().String())+"]", it.Value(), 0)
	}
}

func (v view) sourcePolicy(p string, x reflect.Value) {
	if _, ok := deref(x); !ok {
		return
	}
	v.num(p+".version", gi(x, "Version"))
	f, ok := field(x, "Rules")
	if !ok {
		return
	}
	v.num(p+".rules#", int64(f.Len()))
	for i := 0; i < f.Len(); i++ {
		r := f.Index(i)
		q := fmt.Sprintf("%s.rules[%d]", p, i)
		v.num(q+".action", gi(r, "Action"))
		v.str(q+".selector.identifier", gs(gm(r, "Selector"), "Identifier"))
		u := gm(r, "Updates")
		v.str(q+".updates.identifier", gs(u, "Identifier"))
		v.smap(q+".updates.attrs", u, "Attrs")
	}
}

// ---- per message type ------------------------------------------------------

func (v view) controlSolve(d *decoder, x reflect.Value) {
	v.str("Ref", gs(x, "Ref"))
	v.str("Session", gs(x, "Session"))
	v.str("Frontend", gs(x, "Frontend"))
	v.str("Exporter", gs(x, "Exporter", "ExporterDeprecated"))
	v.smap("ExporterAttrs", x, "ExporterAttrs", "ExporterAttrsDeprecated")
	v.smap("FrontendAttrs", x, "FrontendAttrs")
	v.attrReadings(goMap(x, "FrontendAttrs"))
	v.slist("Entitlements", x, "Entitlements")
	if c := gm(x, "Cache"); c.IsValid() {
		v.str("Cache.ExportRef", gs(c, "ExportRefDeprecated"))
		v.slist("Cache.ImportRefs", c, "ImportRefsDeprecated")
		v.typed("Cache.Exports", c, "Exports")
		v.typed("Cache.Imports", c, "Imports")
	}
	v.definition(d, "Definition", gm(x, "Definition"), 0)
	v.definitionsMap(d, "FrontendInputs", x, "FrontendInputs")
	v.typed("Exporters", x, "Exporters")
	v.num("EnableSessionExporter", gi(x, "EnableSessionExporter"))
	v.str("SourcePolicySession", gs(x, "SourcePolicySession"))
	v.sourcePolicy("SourcePolicy", gm(x, "SourcePolicy"))
}

func (v view) bridgeSolve(d *decoder, x reflect.Value) {
	v.definition(d, "Definition", gm(x, "Definition"), 0)
	v.str("Frontend", gs(x, "Frontend"))
	v.smap("FrontendOpt", x, "FrontendOpt")
	v.attrReadings(goMap(x, "FrontendOpt"))
	// v0.8 daemons turn these refs into registry cache imports
	v.slist("ImportCacheRefs", x, "ImportCacheRefsDeprecated")
	v.typed("CacheImports", x, "CacheImports")
	v.definitionsMap(d, "FrontendInputs", x, "FrontendInputs")
	v.str("ExporterAttr", gs(x, "ExporterAttr"))
	if f, ok := field(x, "SourcePolicies"); ok {
		v.num("SourcePolicies#", int64(f.Len()))
		for i := 0; i < f.Len(); i++ {
			v.sourcePolicy(fmt.Sprintf("SourcePolicies[%d]", i), f.Index(i))
		}
	}
}

func (v view) newContainer(d *decoder, x reflect.Value) {
	v.str("ContainerID", gs(x, "ContainerID"))
	v.mounts("Mounts", x, "Mounts")
	v.num("Network", gi(x, "Network"))
	if f, ok := field(x, "ExtraHosts"); ok {
		v.num("extraHosts#", int64(f.Len()))
		for i := 0; i < f.Len(); i++ {
			v.str(fmt.Sprintf("extraHosts[%d].Host", i), gs(f.Index(i), "Host"))
			v.str(fmt.Sprintf("extraHosts[%d].IP", i), gs(f.Index(i), "IP"))
		}
	}
	v.str("hostname", gs(x, "Hostname"))
}

func execKind(b []byte) string {
	var k extra.ExecKind
	if k.Unmarshal(b) != nil || k.Input == nil {
		return ""
	}
	// *extra.ExecKind_Init -> "Init"
	n := reflect.TypeOf(k.Input).Elem().Name()
	return n[strings.LastIndexByte(n, '_')+1:]
}

func (v view) execMessage(d *decoder, x reflect.Value, raw []byte) {
	v.str("ProcessID", gs(x, "ProcessID"))
	v.str("input", execKind(raw))
	in, _ := field(x, "Input")
	if i := gm(in, "Init"); i.IsValid() {
		v.str("Init.ContainerID", gs(i, "ContainerID"))
		v.meta("Init.Meta", gm(i, "Meta"))
		v.num("Init.Security", gi(i, "Security"))
		v.num("Init.Tty", gi(i, "Tty"))
		v.secretenv("Init", i)
	}
}

// ResolveSourceMeta: the session names in the SourceOp's attrs, the only
// fields the gateway reads there (isolate_bridge.c).
func (v view) sourceMetaSessions(x reflect.Value) {
	attrs := goMap(gm(x, "Source"), "Attrs")
	for _, k := range []string{"local.session", "oci.session"} {
		v.str("Source.attrs["+k+"]", attrs[k])
	}
}
