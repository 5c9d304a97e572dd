package main

// Probes for the gateway's inspection memory:
//
//   stall: a raw HTTP/2 client that opens many gRPC streams of an
//   inspected method, sends on each the 5-byte prefix of a large message and
//   then as much of its body as flow control lets it (never the last byte),
//   and stalls.  It reports how much each stream could send and how each
//   ended (the gateway should end them itself with a gRPC status).
//
//   solve-big: a legitimate large Control.Solve (an LLB FileOp mkfile of
//   --size bytes), optionally several at once on one connection.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/client/llb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

type stallStream struct {
	id       uint32
	conn     int
	sent     int   // bytes of DATA payload sent (prefix included)
	win      int64 // send window
	ended    bool
	how      string // "grpc-status=8 grpc-message=..." or "rst_stream ..." or "goaway"
	status   string
	endAfter time.Duration
}

// stallConn runs |n| streams on one connection until each has ended or the
// deadline passes.
func stallConn(addr string, conn, n, declare, send int, method, token string, start, deadline time.Time) ([]*stallStream, error) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c, err := dialAddr(ctx, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		return nil, err
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
	if err := fr.WriteSettings(); err != nil {
		return nil, err
	}
	// What the peer lets us send: RFC 9113 initial values until its SETTINGS.
	connWin, initWin, maxFrame := int64(65535), int64(65535), 16384
	streams := map[uint32]*stallStream{}
	var order []*stallStream
	for i := 0; i < n; i++ {
		s := &stallStream{id: uint32(2*i + 1), conn: conn, win: initWin}
		var hb bytes.Buffer
		enc := hpack.NewEncoder(&hb)
		hdrs := [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", method}, {":authority", "buildkit"},
			{"content-type", "application/grpc"}, {"te", "trailers"}}
		if token != "" {
			hdrs = append(hdrs, [2]string{"authorization", "Bearer " + token})
		}
		for _, kv := range hdrs {
			enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: s.id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
			return nil, err
		}
		streams[s.id] = s
		order = append(order, s)
	}

	// The reader hands frames over as events; only this goroutine writes.
	type event struct {
		kind     string // settings, ping, window, headers, rst, goaway, error
		stream   uint32
		n        int64
		settings map[http2.SettingID]uint32
		ping     [8]byte
		fields   map[string]string
		end      bool
		err      error
	}
	evs := make(chan event, 256)
	go func() {
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				evs <- event{kind: "error", err: err}
				return
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if f.IsAck() {
					continue
				}
				m := map[http2.SettingID]uint32{}
				f.ForeachSetting(func(s http2.Setting) error { m[s.ID] = s.Val; return nil })
				evs <- event{kind: "settings", settings: m}
			case *http2.PingFrame:
				if !f.IsAck() {
					evs <- event{kind: "ping", ping: f.Data}
				}
			case *http2.WindowUpdateFrame:
				evs <- event{kind: "window", stream: f.StreamID, n: int64(f.Increment)}
			case *http2.MetaHeadersFrame:
				m := map[string]string{}
				for _, hf := range f.Fields {
					m[hf.Name] = hf.Value
				}
				evs <- event{kind: "headers", stream: f.StreamID, fields: m, end: f.StreamEnded()}
			case *http2.DataFrame:
				// answers carry nothing we need; give the window back
				if l := len(f.Data()); l > 0 {
					evs <- event{kind: "data", stream: f.StreamID, n: int64(l), end: f.StreamEnded()}
				}
			case *http2.RSTStreamFrame:
				evs <- event{kind: "rst", stream: f.StreamID, fields: map[string]string{"code": f.ErrCode.String()}}
			case *http2.GoAwayFrame:
				evs <- event{kind: "goaway", fields: map[string]string{"code": f.ErrCode.String(), "debug": string(f.DebugData())}}
			}
		}
	}()

	total := 5 + send
	payload := make([]byte, maxFrame)
	live := n
	end := func(s *stallStream, how, status string) {
		if s.ended {
			return
		}
		s.ended, s.how, s.status, s.endAfter = true, how, status, time.Since(start)
		live--
	}
	handle := func(e event) error {
		switch e.kind {
		case "error":
			for _, s := range order {
				end(s, "connection ended: "+e.err.Error(), "")
			}
			return e.err
		case "settings":
			if v, ok := e.settings[http2.SettingInitialWindowSize]; ok {
				delta := int64(v) - initWin
				initWin = int64(v)
				for _, s := range order {
					s.win += delta
				}
			}
			if v, ok := e.settings[http2.SettingMaxFrameSize]; ok && int(v) > maxFrame {
				maxFrame = int(v)
				if maxFrame > 65536 {
					maxFrame = 65536
				}
				payload = make([]byte, maxFrame)
			}
			return fr.WriteSettingsAck()
		case "ping":
			return fr.WritePing(true, e.ping)
		case "window":
			if e.stream == 0 {
				connWin += e.n
			} else if s := streams[e.stream]; s != nil {
				s.win += e.n
			}
		case "data":
			if err := fr.WriteWindowUpdate(0, uint32(e.n)); err != nil {
				return err
			}
			if s := streams[e.stream]; s != nil && !s.ended && !e.end {
				return fr.WriteWindowUpdate(e.stream, uint32(e.n))
			}
		case "headers":
			s := streams[e.stream]
			if s == nil {
				return nil
			}
			if st, ok := e.fields["grpc-status"]; ok {
				end(s, fmt.Sprintf("grpc-status=%s grpc-message=%q", st, e.fields["grpc-message"]), st)
				// as grpc-go does when the answer ends first: we will send no more
				return fr.WriteRSTStream(s.id, http2.ErrCodeCancel)
			}
		case "rst":
			if s := streams[e.stream]; s != nil {
				end(s, "rst_stream "+e.fields["code"], "")
			}
		case "goaway":
			for _, s := range order {
				if !s.ended {
					end(s, "goaway "+e.fields["code"]+" "+e.fields["debug"], "")
				}
			}
		}
		return nil
	}

	next := 0
	for live > 0 {
		// Take every pending event first: windows and endings change what may be sent.
		for drained := false; !drained; {
			select {
			case e := <-evs:
				if err := handle(e); err != nil {
					return order, nil
				}
			default:
				drained = true
			}
		}
		if live == 0 {
			break
		}
		// One DATA frame on the next stream that may send, round robin.
		var s *stallStream
		for i := 0; i < n && connWin > 0; i++ {
			cand := order[(next+i)%n]
			if !cand.ended && cand.sent < total && cand.win > 0 {
				s = cand
				next = (next + i + 1) % n
				break
			}
		}
		if s == nil {
			select {
			case e := <-evs:
				if err := handle(e); err != nil {
					return order, nil
				}
			case <-ctx.Done():
				return order, nil
			}
			continue
		}
		k := int64(total - s.sent)
		for _, lim := range []int64{s.win, connWin, int64(maxFrame)} {
			if k > lim {
				k = lim
			}
		}
		chunk := payload[:k]
		for i := range chunk {
			chunk[i] = 0
		}
		if s.sent < 5 { // the gRPC prefix: uncompressed, |declare| bytes
			var pfx [5]byte
			binary.BigEndian.PutUint32(pfx[1:], uint32(declare))
			copy(chunk, pfx[s.sent:])
		}
		if err := fr.WriteData(s.id, false, chunk); err != nil {
			return order, nil
		}
		s.sent += int(k)
		s.win -= k
		connWin -= k
	}
	return order, nil
}

func cmdStall(args []string) error {
	fs := flag.NewFlagSet("stall", flag.ExitOnError)
	addr := fs.String("addr", "", "unix:///path or tcp://host:port (native gRPC)")
	nstreams := fs.Int("streams", 32, "streams in all")
	nconns := fs.Int("conns", 1, "connections the streams are spread over")
	declareS := fs.String("declare", "16M", "message length the gRPC prefix declares")
	sendS := fs.String("send", "", "body bytes to send at most (default: declared length - 1)")
	method := fs.String("method", "/moby.buildkit.v1.Control/Solve", "gRPC method")
	token := fs.String("token", "", "bearer token")
	timeout := fs.Duration("timeout", 60*time.Second, "give up waiting for the streams to end after this")
	fs.Parse(args)
	declare64, err := parseSize(*declareS)
	if err != nil || declare64 < 1 || declare64 > 1<<31 {
		return fmt.Errorf("bad --declare %q", *declareS)
	}
	declare, send := int(declare64), int(declare64)-1
	if *sendS != "" {
		send64, err := parseSize(*sendS)
		if err != nil || send64 < 0 {
			return fmt.Errorf("bad --send %q", *sendS)
		}
		send = int(send64)
	}
	if *nconns < 1 || *nstreams < *nconns {
		return fmt.Errorf("want 1 <= --conns <= --streams")
	}
	start := time.Now()
	deadline := start.Add(*timeout)
	var mu sync.Mutex
	var all []*stallStream
	var errs []string
	var wg sync.WaitGroup
	for c := 0; c < *nconns; c++ {
		n := *nstreams / *nconns
		if c < *nstreams%*nconns {
			n++
		}
		wg.Add(1)
		go func(c, n int) {
			defer wg.Done()
			ss, err := stallConn(*addr, c, n, declare, send, *method, *token, start, deadline)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, ss...)
			if err != nil {
				errs = append(errs, err.Error())
			}
		}(c, n)
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("stall: %s", strings.Join(errs, "; "))
	}
	var sent int
	var maxEnd time.Duration
	byStatus := map[string]int{}
	ended := 0
	for _, s := range all {
		sent += s.sent
		if s.ended {
			ended++
			if s.endAfter > maxEnd {
				maxEnd = s.endAfter
			}
		}
		byStatus[s.status]++
		fmt.Printf("stall: conn %d stream %d sent=%d ended=%v after=%.1fs %s\n", s.conn, s.id, s.sent, s.ended,
			s.endAfter.Seconds(), s.how)
	}
	var st []string
	for k, v := range byStatus {
		if k == "" {
			k = "none"
		}
		st = append(st, fmt.Sprintf("%s:%d", k, v))
	}
	fmt.Printf("stall: streams=%d ended=%d sent=%d MiB last_end=%.1fs statuses=%s\n", len(all), ended, sent>>20,
		maxEnd.Seconds(), strings.Join(st, ","))
	if ended < len(all) {
		return fmt.Errorf("stall: %d of %d streams did not end within %v", len(all)-ended, len(all), *timeout)
	}
	return nil
}

// cmdSolveBig solves a definition whose one FileOp makes a file of --size
// pseudo-random bytes, so the SolveRequest is a little larger than --size.
func cmdSolveBig(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("solve-big", flag.ExitOnError)
	sizeS := fs.String("size", "12M", "file size (the Solve message is this plus a few hundred bytes)")
	out := fs.String("out", "", "output directory")
	parallel := fs.Int("parallel", 1, "Solves at once on this one connection")
	fs.Parse(args)
	size64, err := parseSize(*sizeS)
	if err != nil || size64 < 1 || size64 > 1<<30 {
		return fmt.Errorf("bad --size %q", *sizeS)
	}
	size := int(size64)
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	errs := make([]error, *parallel)
	var wg sync.WaitGroup
	for i := 0; i < *parallel; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			data := make([]byte, size)
			rand.New(rand.NewSource(int64(i + 1))).Read(data)
			sum := sha256.Sum256(data)
			def, err := llb.Scratch().File(llb.Mkfile("/big.bin", 0644, data)).Marshal(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			dir := filepath.Join(*out, strconv.Itoa(i))
			msg := 0
			for _, d := range def.Def {
				msg += len(d)
			}
			start := time.Now()
			if _, err := runSolve(ctx, t, solveOpts{def: def, exporter: "local", outDir: dir}); err != nil {
				errs[i] = err
				fmt.Printf("solve-big %d: definition %d bytes: %s (%.1fs)\n", i, msg, errText(err), time.Since(start).Seconds())
				return
			}
			got, err := ioutil.ReadFile(filepath.Join(dir, "big.bin"))
			if err != nil {
				errs[i] = fmt.Errorf("exported file: %v", err)
				return
			}
			gs := sha256.Sum256(got)
			if gs != sum {
				errs[i] = fmt.Errorf("exported file differs (%d bytes, want %d)", len(got), size)
				return
			}
			os.RemoveAll(dir)
			fmt.Printf("solve-big %d: ok definition %d bytes, exported %d bytes sha256 %s (%.1fs)\n", i, msg, len(got),
				hex.EncodeToString(gs[:8]), time.Since(start).Seconds())
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
