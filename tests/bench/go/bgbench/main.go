// bgbench: load tools for tests/bench/run.sh (GOPATH mode, offline).
//
//	bgbench unary  -target ADDR -c N [-d DUR] [-warmup DUR]   closed-loop Control.ListWorkers
//	bgbench server -listen PATH                               tiny native gRPC Control server
//	bgbench idle   -target unix://PATH -n N                    hold N idle HTTP/2 connections
//	bgbench solve  -target ADDR -c N [-rounds R]               N concurrent small builds
//
// ADDR is docker+unix://PATH (the client does Docker's POST /grpc upgrade
// itself, as buildx's docker driver does) or unix://PATH (native gRPC, h2c
// with prior knowledge).  Results are one JSON object on stdout.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	apitypes "github.com/moby/buildkit/api/types"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func die(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "bgbench: "+format+"\n", a...)
	os.Exit(1)
}

func emit(v interface{}) {
	b, _ := json.Marshal(v)
	fmt.Println(string(b))
}

// ---------- dialing ----------

// upgradedConn keeps the bytes the engine sent right behind its 101.
type upgradedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *upgradedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// dialTarget opens one transport-level connection to ADDR.
func dialTarget(ctx context.Context, target string) (net.Conn, error) {
	docker := strings.HasPrefix(target, "docker+")
	addr := strings.TrimPrefix(target, "docker+")
	if !strings.HasPrefix(addr, "unix://") {
		return nil, fmt.Errorf("unsupported target %q", target)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", strings.TrimPrefix(addr, "unix://"))
	if err != nil {
		return nil, err
	}
	if !docker {
		return c, nil
	}
	// The same request head buildx's docker driver sends.
	head := "POST /grpc HTTP/1.1\r\nHost: \r\nUser-Agent: bgbench\r\nContent-Length: 0\r\n" +
		"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
	if _, err := io.WriteString(c, head); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, 32*1024)
	status, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("/grpc upgrade: %v", err)
	}
	if !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("/grpc upgrade refused: %q", strings.TrimSpace(status))
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("/grpc upgrade: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	return &upgradedConn{Conn: c, r: r}, nil
}

func grpcConn(ctx context.Context, target string) (*grpc.ClientConn, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return grpc.DialContext(dctx, "passthrough:///buildgate-bench",
		grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return dialTarget(ctx, target)
		}))
}

// ---------- unary ----------

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i].Nanoseconds()) / 1000.0
}

func cmdUnary(args []string) {
	fs := flag.NewFlagSet("unary", flag.ExitOnError)
	target := fs.String("target", "", "docker+unix://PATH or unix://PATH")
	conns := fs.Int("c", 1, "connections, one call in flight on each")
	dur := fs.Duration("d", 3*time.Second, "measured duration")
	warm := fs.Duration("warmup", 500*time.Millisecond, "unmeasured warm-up")
	method := fs.String("method", "listworkers", "listworkers, or info (Control.Info: BuildKit < v0.11 answers "+
		"UNIMPLEMENTED at once, so the backend does no work; that status counts as success)")
	fs.Parse(args)
	var call func(cc *grpc.ClientConn) (int, error)
	switch *method {
	case "listworkers":
		call = func(cc *grpc.ClientConn) (int, error) {
			resp, err := controlapi.NewControlClient(cc).ListWorkers(context.Background(), &controlapi.ListWorkersRequest{})
			if err != nil {
				return 0, err
			}
			return resp.Size(), nil
		}
	case "info":
		call = func(cc *grpc.ClientConn) (int, error) {
			// InfoRequest is empty, like ListWorkersRequest; the answer is not decoded.
			var resp controlapi.ListWorkersResponse
			err := cc.Invoke(context.Background(), "/moby.buildkit.v1.Control/Info", &controlapi.ListWorkersRequest{}, &resp)
			if status.Code(err) == codes.Unimplemented {
				return 0, nil
			}
			return resp.Size(), err
		}
	default:
		die("unknown -method %q", *method)
	}

	ctx := context.Background()
	clients := make([]*grpc.ClientConn, *conns)
	for i := range clients {
		cc, err := grpcConn(ctx, *target)
		if err != nil {
			die("dial %s: %v", *target, err)
		}
		defer cc.Close()
		clients[i] = cc
		// The first call on a connection may pay for a backend dial: not measured.
		if _, err := call(cc); err != nil {
			die("%s via %s: %v", *method, *target, err)
		}
	}

	var (
		mu      sync.Mutex
		lat     []time.Duration
		errs    int
		firstEr string
		respLen int
	)
	start := time.Now()
	measureFrom := start.Add(*warm)
	end := measureFrom.Add(*dur)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func(cc *grpc.ClientConn) {
			defer wg.Done()
			local := make([]time.Duration, 0, 65536)
			nerr := 0
			var fe string
			rl := 0
			for {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				n, err := call(cc)
				t1 := time.Now()
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					nerr++
					if fe == "" {
						fe = err.Error()
					}
					continue
				}
				if rl == 0 {
					rl = n
				}
				local = append(local, t1.Sub(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += nerr
			if firstEr == "" {
				firstEr = fe
			}
			if rl > 0 {
				respLen = rl
			}
			mu.Unlock()
		}(clients[i])
	}
	wg.Wait()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	secs := dur.Seconds()
	emit(map[string]interface{}{
		"calls": len(lat), "errors": errs, "first_error": firstEr, "secs": secs,
		"rps": float64(len(lat)) / secs, "p50_us": percentile(lat, 0.50), "p99_us": percentile(lat, 0.99),
		"resp_bytes": respLen,
	})
	if len(lat) == 0 {
		os.Exit(1)
	}
}

// ---------- server ----------

type benchControl struct {
	controlapi.UnimplementedControlServer
	resp *controlapi.ListWorkersResponse
}

func (s *benchControl) ListWorkers(ctx context.Context, r *controlapi.ListWorkersRequest) (*controlapi.ListWorkersResponse, error) {
	return s.resp, nil
}

func cmdServer(args []string) {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	listen := fs.String("listen", "", "unix socket path")
	fs.Parse(args)
	os.Remove(*listen)
	l, err := net.Listen("unix", *listen)
	if err != nil {
		die("listen: %v", err)
	}
	os.Chmod(*listen, 0666)
	// Shaped like dockerd's answer: one worker, a few labels, one platform.
	resp := &controlapi.ListWorkersResponse{Record: []*apitypes.WorkerRecord{{
		ID: "bench0000000000000000000000",
		Labels: map[string]string{
			"org.mobyproject.buildkit.worker.executor":    "oci",
			"org.mobyproject.buildkit.worker.hostname":    "bench",
			"org.mobyproject.buildkit.worker.snapshotter": "overlayfs",
		},
		Platforms: []pb.Platform{{OS: "linux", Architecture: "amd64"}},
	}}}
	srv := grpc.NewServer()
	controlapi.RegisterControlServer(srv, &benchControl{resp: resp})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; srv.Stop(); os.Remove(*listen); os.Exit(0) }()
	if err := srv.Serve(l); err != nil {
		die("serve: %v", err)
	}
}

// ---------- idle ----------

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// idleOne completes the preface + SETTINGS exchange and returns the open conn.
func idleOne(path string) (net.Conn, error) {
	var c net.Conn
	var err error
	for try := 0; ; try++ {
		c, err = net.Dial("unix", path)
		if err == nil {
			break
		}
		// A full accept backlog answers EAGAIN on a unix socket: wait, retry.
		if errors.Is(err, syscall.EAGAIN) && try < 2000 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// preface, then an empty SETTINGS frame
	hello := append([]byte(h2Preface), 0, 0, 0, 4, 0, 0, 0, 0, 0)
	if _, err := c.Write(hello); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(c, 4096)
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			c.Close()
			return nil, fmt.Errorf("reading server SETTINGS: %v", err)
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			c.Close()
			return nil, err
		}
		if hdr[3] == 4 && hdr[4]&1 == 0 {
			break
		}
	}
	// acknowledge the server's SETTINGS
	if _, err := c.Write([]byte{0, 0, 0, 4, 1, 0, 0, 0, 0}); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func cmdIdle(args []string) {
	fs := flag.NewFlagSet("idle", flag.ExitOnError)
	target := fs.String("target", "", "unix://PATH")
	n := fs.Int("n", 1000, "connections")
	par := fs.Int("p", 32, "connections being set up at once")
	fs.Parse(args)
	path := strings.TrimPrefix(*target, "unix://")
	conns := make([]net.Conn, *n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := 0
	t0 := time.Now()
	for w := 0; w < *par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := firstErr != nil
				mu.Unlock()
				if i >= *n || stop {
					return
				}
				c, err := idleOne(path)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %v", i, err)
					}
					mu.Unlock()
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		die("%v", firstErr)
	}
	emit(map[string]interface{}{"ready": *n, "setup_secs": time.Since(t0).Seconds()})
	// Hold until stdin closes (the harness closes it after measuring) or a signal.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-sig:
	case <-done:
	}
	for _, c := range conns {
		c.Close()
	}
}

// ---------- solve ----------

// oneBuild runs one Solve of a small uncacheable definition with a Status
// stream beside it, as buildctl does.
func oneBuild(ctx context.Context, cl controlapi.ControlClient, ref string, files int) error {
	st := llb.Scratch()
	for i := 0; i < files; i++ {
		st = st.File(llb.Mkfile(fmt.Sprintf("/f%d", i), 0644, []byte(ref+strings.Repeat("x", 4096))))
	}
	def, err := st.Marshal(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	statusDone := make(chan error, 1)
	go func() {
		stc, err := cl.Status(sctx, &controlapi.StatusRequest{Ref: ref})
		if err != nil {
			statusDone <- err
			return
		}
		for {
			if _, err := stc.Recv(); err != nil {
				if err == io.EOF {
					err = nil
				}
				statusDone <- err
				return
			}
		}
	}()
	_, err = cl.Solve(ctx, &controlapi.SolveRequest{Ref: ref, Definition: def.ToPB()})
	if err != nil {
		return err
	}
	select {
	case <-statusDone:
	case <-time.After(5 * time.Second):
	}
	return nil
}

func cmdSolve(args []string) {
	fs := flag.NewFlagSet("solve", flag.ExitOnError)
	target := fs.String("target", "", "docker+unix://PATH or unix://PATH")
	n := fs.Int("c", 16, "concurrent builds (one connection each)")
	rounds := fs.Int("rounds", 3, "builds per worker, back to back")
	files := fs.Int("files", 32, "FileOp Mkfile actions per build")
	fs.Parse(args)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	nok := 0
	t0 := time.Now()
	for w := 0; w < *n; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			cc, err := grpcConn(ctx, *target)
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
				return
			}
			defer cc.Close()
			cl := controlapi.NewControlClient(cc)
			for r := 0; r < *rounds; r++ {
				ref := fmt.Sprintf("bgbench%d%d%d", time.Now().UnixNano(), w, r)
				if err := oneBuild(ctx, cl, ref, *files); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mu.Lock()
				nok++
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	out := map[string]interface{}{"builds": nok, "secs": time.Since(t0).Seconds()}
	if firstErr != nil {
		out["error"] = firstErr.Error()
	}
	emit(out)
	if firstErr != nil {
		os.Exit(1)
	}
}

// ---------- hashtime ----------

// cmdHashtime times crypto/sha256 over a file, as bgclient bigcontext hashes
// its exported file inside the interval it reports.
func cmdHashtime(args []string) {
	fs := flag.NewFlagSet("hashtime", flag.ExitOnError)
	file := fs.String("file", "", "file to hash")
	fs.Parse(args)
	f, err := os.Open(*file)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	t0 := time.Now()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		die("%v", err)
	}
	emit(map[string]interface{}{"bytes": n, "secs": time.Since(t0).Seconds()})
}

func main() {
	if len(os.Args) < 2 {
		die("usage: bgbench unary|server|idle|solve [flags]")
	}
	switch os.Args[1] {
	case "unary":
		cmdUnary(os.Args[2:])
	case "server":
		cmdServer(os.Args[2:])
	case "idle":
		cmdIdle(os.Args[2:])
	case "solve":
		cmdSolve(os.Args[2:])
	case "hashtime":
		cmdHashtime(os.Args[2:])
	default:
		die("unknown command %q", os.Args[1])
	}
}
