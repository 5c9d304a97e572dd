package main

// Byte-level helpers: a raw gRPC codec (for methods the v0.8 Go package lacks
// or cannot compile), a tiny protobuf writer/reader, and the malformed-input
// probes (rawsend, truncated).

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
)

type rawMsg []byte

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case rawMsg:
		return []byte(m), nil
	case *rawMsg:
		return []byte(*m), nil
	case []byte:
		return m, nil
	case *[]byte:
		return *m, nil
	}
	return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
}
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	switch m := v.(type) {
	case *[]byte:
		*m = append((*m)[:0], data...)
		return nil
	case *rawMsg:
		*m = append((*m)[:0], data...)
		return nil
	}
	return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
}

func rawCodecOpt() grpc.CallOption { return grpc.ForceCodec(rawCodec{}) }

// pbw writes protobuf fields.
type pbw struct{ b []byte }

func (w *pbw) varint(v uint64) {
	var tmp [10]byte
	n := binary.PutUvarint(tmp[:], v)
	w.b = append(w.b, tmp[:n]...)
}
func (w *pbw) tag(f int, wt int) { w.varint(uint64(f)<<3 | uint64(wt)) }
func (w *pbw) uint(f int, v uint64) {
	if v != 0 {
		w.tag(f, 0)
		w.varint(v)
	}
}
func (w *pbw) bytes(f int, v []byte) { w.tag(f, 2); w.varint(uint64(len(v))); w.b = append(w.b, v...) }
func (w *pbw) str(f int, s string) {
	if s != "" {
		w.bytes(f, []byte(s))
	}
}

// pbFields parses one level of a protobuf message: field number -> raw values
// (varints are returned as their decimal string in ints).
type pbField struct {
	num  int
	wt   int
	val  uint64
	data []byte
}

func pbParse(b []byte) ([]pbField, error) {
	var out []pbField
	for len(b) > 0 {
		k, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("bad tag")
		}
		b = b[n:]
		f := pbField{num: int(k >> 3), wt: int(k & 7)}
		switch f.wt {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, fmt.Errorf("bad varint")
			}
			f.val, b = v, b[n:]
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, fmt.Errorf("bad length")
			}
			f.data, b = b[n:n+int(l)], b[n+int(l):]
		case 1:
			if len(b) < 8 {
				return nil, fmt.Errorf("short fixed64")
			}
			b = b[8:]
		case 5:
			if len(b) < 4 {
				return nil, fmt.Errorf("short fixed32")
			}
			b = b[4:]
		default:
			return nil, fmt.Errorf("wire type %d", f.wt)
		}
		out = append(out, f)
	}
	return out, nil
}

// cmdRawSend writes bytes to an address and prints what comes back until the
// peer closes or the timeout passes.
func cmdRawSend(args []string) error {
	fs := flag.NewFlagSet("rawsend", flag.ExitOnError)
	addr := fs.String("addr", "", "unix:///path or tcp://host:port")
	hx := fs.String("hex", "", "bytes to send, hex")
	file := fs.String("file", "", "file with the bytes to send (- for stdin)")
	text := fs.String("text", "", "bytes to send; \\r \\n \\xHH escapes are understood")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	max := fs.Int("max", 2048, "print at most this many bytes of the answer")
	fs.Parse(args)
	var data []byte
	var err error
	switch {
	case *hx != "":
		data, err = hex.DecodeString(*hx)
	case *file == "-":
		data, err = ioutil.ReadAll(os.Stdin)
	case *file != "":
		data, err = ioutil.ReadFile(*file)
	default:
		data = []byte(unescape(*text))
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := dialAddr(ctx, *addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(*timeout))
	// write in the background: a peer may answer (and close) before reading it all
	werr := make(chan error, 1)
	go func() { _, err := c.Write(data); werr <- err }()
	var got bytes.Buffer
	buf := make([]byte, 32<<10)
	end := "closed"
	for {
		n, err := c.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				end = "timeout"
			} else if err != io.EOF {
				end = "closed (" + err.Error() + ")"
			}
			break
		}
	}
	out := got.Bytes()
	if len(out) > *max {
		out = out[:*max]
	}
	fmt.Printf("rawsend: sent %d bytes, got %d bytes, %s\n", len(data), got.Len(), end)
	fmt.Printf("%s\n", strings.ToValidUTF8(string(out), "?"))
	return nil
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case 'r':
				b.WriteByte('\r')
				i++
				continue
			case 'n':
				b.WriteByte('\n')
				i++
				continue
			case 'x':
				if i+3 < len(s) {
					if v, err := hex.DecodeString(s[i+2 : i+4]); err == nil {
						b.Write(v)
						i += 3
						continue
					}
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cmdTruncated opens a native HTTP/2 connection, starts a gRPC call and sends
// a DATA frame whose gRPC prefix promises more bytes than it carries, then
// ends the stream. A correct server ends the call with a gRPC error status.
func cmdTruncated(args []string) error {
	fs := flag.NewFlagSet("truncated", flag.ExitOnError)
	addr := fs.String("addr", "", "unix:///path or tcp://host:port (native gRPC)")
	method := fs.String("method", "/moby.buildkit.v1.Control/ListWorkers", "gRPC method")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for the end of the stream")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := dialAddr(ctx, *addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(*timeout))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return err
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", *method},
		{":authority", "buildkit"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		return err
	}
	// gRPC prefix: uncompressed, length 100, but only 3 bytes follow
	if err := fr.WriteData(1, true, []byte{0, 0, 0, 0, 100, 0x0a, 0x01, 0x41}); err != nil {
		return err
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				fmt.Println("truncated: timeout (no end of stream)")
				return fmt.Errorf("truncated: the call hung")
			}
			fmt.Printf("truncated: connection ended: %v\n", err)
			return fmt.Errorf("truncated: connection closed without a gRPC status")
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != 1 {
				continue
			}
			st, msg := f.PseudoValue("status"), ""
			gs := ""
			for _, hf := range f.Fields {
				if hf.Name == "grpc-status" {
					gs = hf.Value
				}
				if hf.Name == "grpc-message" {
					msg = hf.Value
				}
			}
			if gs != "" {
				fmt.Printf("truncated: grpc-status=%s grpc-message=%q\n", gs, msg)
				if gs == "0" {
					return fmt.Errorf("truncated: server reported success for a truncated message")
				}
				return nil
			}
			if st != "" {
				fmt.Printf("truncated: response :status=%s\n", st)
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				fmt.Printf("truncated: rst_stream %v\n", f.ErrCode)
				return nil
			}
		case *http2.GoAwayFrame:
			fmt.Printf("truncated: goaway %v %q\n", f.ErrCode, f.DebugData())
			return nil
		}
	}
}
