package main

// A protobuf wire tree the generator can mutate field by field and encode
// back, including encodings no well-behaved encoder produces (over-long
// varints, field numbers past 2^32, groups, raw garbage).

import (
	"errors"
)

type pfield struct {
	num   uint64 // field number as encoded: may exceed 2^29, 2^32, ...
	wt    int
	pad   int    // extra continuation bytes in the tag (over-long encoding)
	v     uint64 // wt 0, 1, 5
	vpad  int    // over-long varint value (wt 0) or length (wt 2)
	data  []byte // wt 2 payload when sub == nil
	sub   *pmsg  // wt 2 payload parsed as a message of the schema
	raw   []byte // emitted verbatim instead of everything above
	group []*pfield
}

type pmsg struct {
	typ    string
	fields []*pfield
}

func putVarint(b []byte, v uint64, pad int) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	if pad <= 0 {
		return append(b, byte(v))
	}
	b = append(b, byte(v)|0x80)
	for i := 1; i < pad; i++ {
		b = append(b, 0x80)
	}
	return append(b, 0)
}

func getVarint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for s := uint(0); s < 70; s += 7 {
		if i >= len(b) {
			return 0, 0, errors.New("short varint")
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << s
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, 0, errors.New("varint too long")
}

func (f *pfield) encode(b []byte) []byte {
	if f.raw != nil {
		return append(b, f.raw...)
	}
	b = putVarint(b, f.num<<3|uint64(f.wt), f.pad)
	switch f.wt {
	case 0:
		b = putVarint(b, f.v, f.vpad)
	case 1:
		for i := 0; i < 8; i++ {
			b = append(b, byte(f.v>>(8*i)))
		}
	case 5:
		for i := 0; i < 4; i++ {
			b = append(b, byte(f.v>>(8*i)))
		}
	case 2:
		p := f.data
		if f.sub != nil {
			p = f.sub.encode(nil)
		}
		b = putVarint(b, uint64(len(p)), f.vpad)
		b = append(b, p...)
	case 3:
		for _, g := range f.group {
			b = g.encode(b)
		}
		b = putVarint(b, f.num<<3|4, 0)
	}
	return b
}

func (m *pmsg) encode(b []byte) []byte {
	for _, f := range m.fields {
		b = f.encode(b)
	}
	return b
}

func (m *pmsg) clone() *pmsg {
	if m == nil {
		return nil
	}
	n := &pmsg{typ: m.typ, fields: make([]*pfield, len(m.fields))}
	for i, f := range m.fields {
		n.fields[i] = f.clone()
	}
	return n
}

func (f *pfield) clone() *pfield {
	g := *f
	g.data = append([]byte(nil), f.data...)
	g.raw = append([]byte(nil), f.raw...)
	if f.raw == nil {
		g.raw = nil
	}
	g.sub = f.sub.clone()
	g.group = nil
	for _, x := range f.group {
		g.group = append(g.group, x.clone())
	}
	return &g
}

// parse reads b as a message of schema type typ; length-delimited fields
// the schema names as messages are parsed recursively (and kept as bytes
// when they do not parse).
func parse(typ string, b []byte, depth int) (*pmsg, error) {
	m := &pmsg{typ: typ}
	sc := schema[typ]
	for i := 0; i < len(b); {
		key, j, err := getVarint(b, i)
		if err != nil {
			return nil, err
		}
		f := &pfield{num: key >> 3, wt: int(key & 7)}
		i = j
		switch f.wt {
		case 0:
			if f.v, i, err = getVarint(b, i); err != nil {
				return nil, err
			}
		case 1, 5:
			n := 8
			if f.wt == 5 {
				n = 4
			}
			if len(b)-i < n {
				return nil, errors.New("short fixed")
			}
			for k := 0; k < n; k++ {
				f.v |= uint64(b[i+k]) << (8 * k)
			}
			i += n
		case 2:
			l, j, err := getVarint(b, i)
			if err != nil || l > uint64(len(b)-j) {
				return nil, errors.New("bad length")
			}
			f.data = append([]byte(nil), b[j:j+int(l)]...)
			i = j + int(l)
			if st, ok := sc[f.num]; ok && st.sub != "" && depth < 20 {
				if s, err := parse(st.sub, f.data, depth+1); err == nil {
					f.sub, f.data = s, nil
				}
			}
		default:
			return nil, errors.New("group or bad wire type")
		}
		m.fields = append(m.fields, f)
	}
	return m, nil
}

// ---- building messages ------------------------------------------------------

func fs(num uint64, s string) *pfield { return &pfield{num: num, wt: 2, data: []byte(s)} }
func fv(num uint64, v uint64) *pfield { return &pfield{num: num, wt: 0, v: v} }
func fm(num uint64, m *pmsg) *pfield  { return &pfield{num: num, wt: 2, sub: m} }
func msg(typ string, fields ...*pfield) *pmsg {
	return &pmsg{typ: typ, fields: fields}
}
func entry(num uint64, k, v string) *pfield {
	return fm(num, msg("MapSS", fs(1, k), fs(2, v)))
}
