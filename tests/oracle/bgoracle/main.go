// bgoracle: the differential oracle of buildgate's policy decoder.
//
//	bgoracle decode  < stream          what BuildKit's Go code reads, one JSON line per message
//	bgoracle gen [-n N] [-seed S] -fixtures DIR... -o stream -labels FILE
//	bgoracle compare -stream S -labels L -go G -gate C [-seeds DIR] [-show N]
//
// A stream is a sequence of records: 4-byte big-endian length + method
// ("/moby.buildkit.v1.Control/Solve"), 4-byte big-endian length + message
// (no gRPC prefix).  `buildgate check --dump --batch` reads the same stream.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"

	control08 "github.com/moby/buildkit/api/services/control"
	gateway08 "github.com/moby/buildkit/frontend/gateway/pb"
	pb08 "github.com/moby/buildkit/solver/pb"

	control "bgoracle/gen/control"
	extra "bgoracle/gen/extra"
	gateway "bgoracle/gen/gateway"
	ops "bgoracle/gen/ops"
)

type record struct {
	method string
	msg    []byte
}

func readRecord(r io.Reader) (*record, error) {
	var n uint32
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		if err == io.EOF {
			return nil, nil
		}
		return nil, err
	}
	m := make([]byte, n)
	if _, err := io.ReadFull(r, m); err != nil {
		return nil, err
	}
	if err := binary.Read(r, binary.BigEndian, &n); err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return &record{string(m), b}, nil
}

func writeRecord(w io.Writer, rec *record) {
	binary.Write(w, binary.BigEndian, uint32(len(rec.method)))
	io.WriteString(w, rec.method)
	binary.Write(w, binary.BigEndian, uint32(len(rec.msg)))
	w.Write(rec.msg)
}

type unmarshaler interface{ Unmarshal([]byte) error }

// One message type as each decoder family sees it.
type kind struct {
	v08, gen func() unmarshaler // nil: the family has no such type
	view     func(v view, d *decoder, x reflect.Value, raw []byte)
}

const (
	ctl = "/moby.buildkit.v1.Control/"
	br  = "/moby.buildkit.v1.frontend.LLBBridge/"
)

var kinds = map[string]kind{
	ctl + "Solve": {
		func() unmarshaler { return &control08.SolveRequest{} },
		func() unmarshaler { return &control.SolveRequest{} },
		func(v view, d *decoder, x reflect.Value, _ []byte) { v.controlSolve(d, x) }},
	br + "Solve": {
		func() unmarshaler { return &gateway08.SolveRequest{} },
		func() unmarshaler { return &gateway.SolveRequest{} },
		func(v view, d *decoder, x reflect.Value, _ []byte) { v.bridgeSolve(d, x) }},
	br + "NewContainer": {
		func() unmarshaler { return &gateway08.NewContainerRequest{} },
		func() unmarshaler { return &gateway.NewContainerRequest{} },
		func(v view, d *decoder, x reflect.Value, _ []byte) { v.newContainer(d, x) }},
	br + "ExecProcess": {
		func() unmarshaler { return &gateway08.ExecMessage{} },
		func() unmarshaler { return &gateway.ExecMessage{} },
		func(v view, d *decoder, x reflect.Value, raw []byte) { v.execMessage(d, x, raw) }},
	ctl + "Status": {
		func() unmarshaler { return &control08.StatusRequest{} },
		func() unmarshaler { return &control.StatusRequest{} },
		func(v view, d *decoder, x reflect.Value, _ []byte) { v.str("Ref", gs(x, "Ref")) }},
	br + "ResolveSourceMeta": {
		nil,
		func() unmarshaler { return &extra.ResolveSourceMetaRequest{} },
		func(v view, d *decoder, x reflect.Value, _ []byte) { v.sourceMetaSessions(x) }},
	br + "ResolveImageConfig": {
		func() unmarshaler { return &gateway08.ResolveImageConfigRequest{} },
		func() unmarshaler { return &extra.ResolveImageConfigRequest{} },
		func(v view, d *decoder, x reflect.Value, _ []byte) { v.str("SessionID", gs(x, "SessionID")) }},
}

var dec08 = &decoder{"v0.8", func(b []byte) (interface{}, error) { o := &pb08.Op{}; return o, o.Unmarshal(b) }}
var decGen = &decoder{"proto/", func(b []byte) (interface{}, error) { o := &ops.Op{}; return o, o.Unmarshal(b) }}

func viewWith(k kind, mk func() unmarshaler, d *decoder, raw []byte) (view, error) {
	m := mk()
	if err := m.Unmarshal(raw); err != nil {
		return nil, err
	}
	v := view{}
	readNewerMeta = d == decGen
	k.view(v, d, reflect.ValueOf(m), raw)
	return v, nil
}

// goView: BuildKit v0.8's reading, completed with the proto/-generated
// decoder's reading of the fields v0.8 does not know.  "?self" lists paths
// where the two families read a field both know differently (that would be
// a mistake in proto/*.proto, not in the gateway).
func goView(method string, raw []byte) map[string]string {
	k, ok := kinds[method]
	if !ok {
		return map[string]string{"go_error": "no view for method " + esc(method)}
	}
	if k.v08 == nil { // a type v0.8 does not have
		vg, err := viewWith(k, k.gen, decGen, raw)
		if err != nil {
			return map[string]string{"go_error": esc(err.Error())}
		}
		return vg
	}
	v08, err08 := viewWith(k, k.v08, dec08, raw)
	if err08 != nil {
		// BuildKit answers the call with an error: nothing is built
		return map[string]string{"go_error": esc(err08.Error())}
	}
	vg, errg := viewWith(k, k.gen, decGen, raw)
	if errg != nil {
		// newer daemons refuse it; v0.8 reads it: compare with v0.8's
		// reading, on the fields v0.8 knows (see compare.go)
		v08["?gen_error"] = esc(errg.Error())
		return v08
	}
	var self []string
	for p, x := range v08 {
		if y, ok := vg[p]; ok && y != x {
			self = append(self, p)
		}
		vg[p] = x
	}
	if len(self) > 0 {
		sort.Strings(self)
		b, _ := json.Marshal(self)
		vg["?self"] = string(b)
	}
	return vg
}

func cmdDecode() error {
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for {
		rec, err := readRecord(in)
		if err != nil {
			return err
		}
		if rec == nil {
			return nil
		}
		if err := enc.Encode(goView(rec.method, rec.msg)); err != nil {
			return err
		}
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bgoracle decode|gen|compare ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "decode":
		err = cmdDecode()
	case "gen":
		err = cmdGen(os.Args[2:])
	case "compare":
		var bad bool
		bad, err = cmdCompare(os.Args[2:])
		if err == nil && bad {
			os.Exit(1)
		}
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bgoracle:", err)
		os.Exit(2)
	}
}
