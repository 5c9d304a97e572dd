package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"github.com/moby/buildkit/util/entitlements"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || err == io.EOF
}

type solveOpts struct {
	def          *llb.Definition
	exporter     string
	attrs        map[string]string
	outDir       string
	contextDir   string
	entitlements []string
	status       bool
	// onVertex sees every status update (for "exec started" watching)
	onStatus func(*controlapi.StatusResponse)
	// prepare lets a command build its definition once the session ID is known
	prepare func(sessionID string) (*llb.Definition, error)
	// session, when set, is sent as SolveRequest.Session instead of our own
	session string
	// ref, when set, is the build ref (otherwise a random one)
	ref string
	// attach: more session attachables (e.g. a secrets provider)
	attach []session.Attachable
}

type statusCount struct {
	vertexes, statuses, logs int
	names                    map[string]string // digest -> name
	completed                map[string]bool
	started                  map[string]bool
	errors                   []string
}

func runSolve(ctx context.Context, t *transport, o solveOpts) (*statusCount, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := session.NewSession(ctx, "bgclient", "bgclient-"+identity.NewID())
	if err != nil {
		return nil, err
	}
	if o.contextDir != "" {
		s.Allow(filesync.NewFSSyncProvider([]filesync.SyncedDir{{Name: "context", Dir: o.contextDir}}))
	}
	if o.outDir != "" {
		if err := os.MkdirAll(o.outDir, 0755); err != nil {
			return nil, err
		}
		s.Allow(filesync.NewFSSyncTargetDir(o.outDir))
	}
	for _, a := range o.attach {
		s.Allow(a)
	}
	sessErr := make(chan error, 1)
	go func() { sessErr <- s.Run(ctx, t.sessionDialer()) }()
	defer s.Close()

	def := o.def
	if o.prepare != nil {
		if def, err = o.prepare(s.ID()); err != nil {
			return nil, err
		}
	}
	ref := o.ref
	if ref == "" {
		ref = identity.NewID()
	}
	req := &controlapi.SolveRequest{
		Ref:           ref,
		Definition:    def.ToPB(),
		Exporter:      o.exporter,
		ExporterAttrs: o.attrs,
		Session:       s.ID(),
	}
	if o.session != "" {
		req.Session = o.session
	}
	for _, e := range o.entitlements {
		req.Entitlements = append(req.Entitlements, entitlements.Entitlement(e))
	}

	sc := &statusCount{names: map[string]string{}, completed: map[string]bool{}, started: map[string]bool{}}
	var wg sync.WaitGroup
	if o.status || o.onStatus != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := t.ctl.Status(ctx, &controlapi.StatusRequest{Ref: ref})
			if err != nil {
				sc.errors = append(sc.errors, errText(err))
				return
			}
			for {
				r, err := st.Recv()
				if err != nil {
					if !isEOF(err) && ctx.Err() == nil {
						sc.errors = append(sc.errors, errText(err))
					}
					return
				}
				sc.vertexes += len(r.Vertexes)
				sc.statuses += len(r.Statuses)
				sc.logs += len(r.Logs)
				for _, v := range r.Vertexes {
					d := string(v.Digest)
					sc.names[d] = v.Name
					if v.Started != nil {
						sc.started[d] = true
					}
					if v.Completed != nil && v.Error == "" {
						sc.completed[d] = true
					}
				}
				if o.onStatus != nil {
					o.onStatus(r)
				}
			}
		}()
	}

	type result struct {
		resp *controlapi.SolveResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, err := t.ctl.Solve(ctx, req)
		done <- result{r, err}
	}()
	var res result
	select {
	case res = <-done:
	case err := <-sessErr:
		// the session ended before the solve did: report it, but give the solve a moment
		select {
		case res = <-done:
		case <-time.After(5 * time.Second):
			if err == nil {
				err = fmt.Errorf("session closed by peer")
			}
			return sc, fmt.Errorf("session: %v", err)
		}
	}
	if res.err != nil {
		cancel()
		wg.Wait()
		return sc, res.err
	}
	// the status stream ends by itself once the job is over
	stDone := make(chan struct{})
	go func() { wg.Wait(); close(stDone) }()
	select {
	case <-stDone:
	case <-time.After(10 * time.Second):
		cancel()
		<-stDone
	}
	for k, v := range res.resp.ExporterResponse {
		fmt.Printf("exporter-response %s=%s\n", k, v)
	}
	return sc, nil
}

func (sc *statusCount) execCompleted() bool {
	for d, n := range sc.names {
		if strings.Contains(n, "busybox") && sc.completed[d] {
			return true
		}
	}
	return false
}

func (sc *statusCount) print() {
	fmt.Printf("status: vertexes=%d statuses=%d logs=%d exec_completed=%v\n", sc.vertexes, sc.statuses, sc.logs, sc.execCompleted())
	for _, e := range sc.errors {
		fmt.Printf("status-error: %s\n", e)
	}
}

func cmdSolveMkfile(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("solve-mkfile", flag.ExitOnError)
	out := fs.String("out", "", "output directory")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	const content = "hello from buildgate\n"
	def, err := llb.Scratch().File(llb.Mkfile("/hello.txt", 0644, []byte(content))).Marshal(ctx)
	if err != nil {
		return err
	}
	if _, err := runSolve(ctx, t, solveOpts{def: def, exporter: "local", outDir: *out}); err != nil {
		return err
	}
	got, err := ioutil.ReadFile(filepath.Join(*out, "hello.txt"))
	if err != nil {
		return fmt.Errorf("exported file: %v", err)
	}
	if string(got) != content {
		return fmt.Errorf("exported content %q, want %q", got, content)
	}
	fmt.Printf("solve-mkfile: ok %s/hello.txt %q\n", *out, strings.TrimSpace(string(got)))
	return nil
}

// execDef builds: root = local "context" (holding /bin/busybox), run a shell
// line with the given network mode, export the scratch mount at /out.
func execDef(ctx context.Context, sessionID, shell string, net llb.StateOption) (*llb.Definition, error) {
	root := llb.Local("context", llb.SessionID(sessionID), llb.SharedKeyHint("bgclient-context"))
	run := root.Run(llb.Args([]string{"/bin/busybox", "sh", "-c", shell}), net,
		llb.AddEnv("PATH", "/bin"), llb.IgnoreCache)
	out := run.AddMount("/out", llb.Scratch())
	return out.Marshal(ctx)
}

func needBusybox(dir string) error {
	if dir == "" {
		return fmt.Errorf("--context DIR is required (a directory with bin/busybox)")
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err != nil {
		return fmt.Errorf("context %s has no bin/busybox: %v", dir, err)
	}
	return nil
}

func solveExec(ctx context.Context, t *transport, args []string, name string, host bool) error {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	cdir := fs.String("context", "", "context directory with bin/busybox")
	out := fs.String("out", "", "output directory")
	fs.Parse(args)
	if err := needBusybox(*cdir); err != nil {
		return err
	}
	if *out == "" {
		d, err := ioutil.TempDir("", "bgclient-out")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*out = d
	}
	const want = "ran-in-buildkit"
	netOpt := llb.Network(llb.NetModeNone)
	var ents []string
	if host {
		netOpt = llb.Network(llb.NetModeHost)
		ents = []string{"network.host"}
	}
	sc, err := runSolve(ctx, t, solveOpts{
		exporter: "local", outDir: *out, contextDir: *cdir, entitlements: ents, status: true,
		prepare: func(id string) (*llb.Definition, error) {
			return execDef(ctx, id, "echo "+want+" > /out/result.txt", netOpt)
		},
	})
	if sc != nil {
		sc.print()
	}
	if err != nil {
		return err
	}
	got, err := ioutil.ReadFile(filepath.Join(*out, "result.txt"))
	if err != nil {
		return fmt.Errorf("exported file: %v", err)
	}
	if strings.TrimSpace(string(got)) != want {
		return fmt.Errorf("exported content %q, want %q", got, want)
	}
	fmt.Printf("%s: ok result.txt=%q\n", name, strings.TrimSpace(string(got)))
	return nil
}

func cmdSolveExec(ctx context.Context, t *transport, args []string) error {
	return solveExec(ctx, t, args, "solve-exec", false)
}

func cmdSolveExecHost(ctx context.Context, t *transport, args []string) error {
	return solveExec(ctx, t, args, "solve-exec-host", true)
}

func cmdHang(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("hang", flag.ExitOnError)
	cdir := fs.String("context", "", "context directory with bin/busybox")
	secs := fs.Int("seconds", 600, "how long the exec sleeps (a distinctive value lets a test find the process)")
	ref := fs.String("ref", "", "build ref (default random)")
	fs.Parse(args)
	if err := needBusybox(*cdir); err != nil {
		return err
	}
	out, err := ioutil.TempDir("", "bgclient-hang")
	if err != nil {
		return err
	}
	defer os.RemoveAll(out)
	var once sync.Once
	_, err = runSolve(ctx, t, solveOpts{
		exporter: "local", outDir: out, contextDir: *cdir, ref: *ref,
		onStatus: func(r *controlapi.StatusResponse) {
			for _, v := range r.Vertexes {
				if strings.Contains(v.Name, "sleep") && v.Started != nil {
					once.Do(func() { fmt.Printf("hang: exec started %s\n", v.Digest) })
				}
			}
		},
		prepare: func(id string) (*llb.Definition, error) {
			return execDef(ctx, id, fmt.Sprintf("/bin/busybox sleep %d", *secs), llb.Network(llb.NetModeNone))
		},
	})
	if err != nil {
		return err
	}
	fmt.Println("hang: build finished (unexpected)")
	return nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

func cmdBigContext(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("bigcontext", flag.ExitOnError)
	size := fs.String("size", "256M", "size of the random file")
	out := fs.String("out", "", "output directory")
	fs.Parse(args)
	n, err := parseSize(*size)
	if err != nil {
		return fmt.Errorf("--size: %v", err)
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	cdir, err := ioutil.TempDir("", "bgclient-big")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cdir)
	f, err := os.Create(filepath.Join(cdir, "big"))
	if err != nil {
		return err
	}
	h := sha256.New()
	rnd := rand.New(rand.NewSource(time.Now().UnixNano()))
	if _, err := io.CopyN(io.MultiWriter(f, h), rnd, n); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	inSum := hex.EncodeToString(h.Sum(nil))
	start := time.Now()
	_, err = runSolve(ctx, t, solveOpts{
		exporter: "local", outDir: *out, contextDir: cdir,
		prepare: func(id string) (*llb.Definition, error) {
			local := llb.Local("context", llb.SessionID(id), llb.SharedKeyHint("bgclient-big"))
			return llb.Scratch().File(llb.Copy(local, "/big", "/big")).Marshal(ctx)
		},
	})
	if err != nil {
		return err
	}
	outSum, outN, err := hashFile(filepath.Join(*out, "big"))
	if err != nil {
		return fmt.Errorf("exported file: %v", err)
	}
	fmt.Printf("bigcontext: in  sha256=%s bytes=%d\nbigcontext: out sha256=%s bytes=%d (%.1fs)\n", inSum, n, outSum, outN, time.Since(start).Seconds())
	if outSum != inSum || outN != n {
		return fmt.Errorf("bigcontext: output differs from input")
	}
	fmt.Println("bigcontext: ok byte-exact")
	return nil
}

func cmdMobyExport(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("moby-export", flag.ExitOnError)
	name := fs.String("name", "", "image name")
	cdir := fs.String("context", "", "context directory (its contents become the image), optional")
	fs.Parse(args)
	if *name == "" {
		return fmt.Errorf("--name is required")
	}
	o := solveOpts{exporter: "moby", attrs: map[string]string{"name": *name}}
	if *cdir != "" {
		o.contextDir = *cdir
		o.prepare = func(id string) (*llb.Definition, error) {
			return llb.Local("context", llb.SessionID(id), llb.SharedKeyHint("bgclient-context")).Marshal(ctx)
		}
	} else {
		def, err := llb.Scratch().File(llb.Mkfile("/hello.txt", 0644, []byte("hello image\n"))).Marshal(ctx)
		if err != nil {
			return err
		}
		o.def = def
	}
	if _, err := runSolve(ctx, t, o); err != nil {
		return err
	}
	fmt.Printf("moby-export: ok name=%s\n", *name)
	return nil
}

var _ = bytes.Equal
var _ = status.Code
var _ = codes.OK

// status --ref R --wait D: watch a build's Status stream for at most D and
// count what it shows (a build of another client, for isolation checks).
func cmdStatus(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("status", flag.ExitOnError)
	ref := fs.String("ref", "", "build ref")
	wait := fs.Duration("wait", 3*time.Second, "how long to watch")
	fs.Parse(args)
	if *ref == "" {
		return fmt.Errorf("--ref is required")
	}
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	st, err := t.ctl.Status(ctx, &controlapi.StatusRequest{Ref: *ref})
	if err != nil {
		return err
	}
	nv, ns := 0, 0
	var serr error
	for {
		r, err := st.Recv()
		if err != nil {
			if !isEOF(err) && ctx.Err() == nil {
				serr = err
			}
			break
		}
		nv += len(r.Vertexes)
		ns += len(r.Statuses)
	}
	fmt.Printf("status: ref=%s vertexes=%d statuses=%d\n", *ref, nv, ns)
	return serr
}
