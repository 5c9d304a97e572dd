package main

// Commands for the "semantics" interop section (issue 9): an ExecOp that
// asks for an LLB power (Meta.extraHosts), and a probe of a cache mount by ID
// that writes or reads a marker file, to show that tenants under isolate get
// separate cache mounts for the same ID.

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/identity"
)

func init() {
	commands["exec-extrahost"] = cmdExecExtraHost
	commands["cache-probe"] = cmdCacheProbe
}

// runProbe runs one shell line on the busybox context with network none and
// the given extra options, and returns what it wrote to /out/result.txt.
// A random NONCE in the environment makes every definition new, so the
// solver's own cache never answers instead of running the command (and no
// ignore-cache is needed: with it BuildKit prunes the op's cache mounts).
func runProbe(ctx context.Context, t *transport, cdir, shell string, opts ...llb.RunOption) (string, error) {
	if err := needBusybox(cdir); err != nil {
		return "", err
	}
	out, err := ioutil.TempDir("", "bgclient-probe")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(out)
	_, err = runSolve(ctx, t, solveOpts{
		exporter: "local", outDir: out, contextDir: cdir,
		prepare: func(id string) (*llb.Definition, error) {
			root := llb.Local("context", llb.SessionID(id), llb.SharedKeyHint("bgclient-context"))
			ro := []llb.RunOption{llb.Args([]string{"/bin/busybox", "sh", "-c", shell}),
				llb.Network(llb.NetModeNone), llb.AddEnv("PATH", "/bin"), llb.AddEnv("NONCE", identity.NewID())}
			run := root.Run(append(ro, opts...)...)
			return run.AddMount("/out", llb.Scratch()).Marshal(ctx)
		},
	})
	if err != nil {
		return "", err
	}
	got, err := ioutil.ReadFile(filepath.Join(out, "result.txt"))
	if err != nil {
		return "", fmt.Errorf("exported file: %v", err)
	}
	return strings.TrimSpace(string(got)), nil
}

// exec-extrahost: Meta.extraHosts = bgtest.invalid -> 192.0.2.7; succeeds
// when the container's /etc/hosts has the entry.
func cmdExecExtraHost(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("exec-extrahost", flag.ExitOnError)
	cdir := fs.String("context", "", "context directory with bin/busybox")
	fs.Parse(args)
	got, err := runProbe(ctx, t, *cdir, "grep bgtest.invalid /etc/hosts > /out/result.txt",
		llb.AddExtraHost("bgtest.invalid", net.ParseIP("192.0.2.7")))
	if err != nil {
		return err
	}
	if !strings.Contains(got, "192.0.2.7") {
		return fmt.Errorf("/etc/hosts lacks the extra host: %q", got)
	}
	fmt.Printf("exec-extrahost: ok %q\n", got)
	return nil
}

// cache-probe --id ID (--write MARKER | --read): a shared cache mount with
// that ID at /cache; --write stores MARKER in /cache/marker, --read prints
// "cache-probe: marker=<content>" or "cache-probe: marker=absent".
func cmdCacheProbe(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("cache-probe", flag.ExitOnError)
	cdir := fs.String("context", "", "context directory with bin/busybox")
	id := fs.String("id", "", "cache mount ID")
	write := fs.String("write", "", "marker to write")
	read := fs.Bool("read", false, "read the marker")
	fs.Parse(args)
	if *id == "" || (*write == "") == !*read {
		return fmt.Errorf("cache-probe needs --id and exactly one of --write MARKER, --read")
	}
	shell := "if [ -e /cache/marker ]; then cat /cache/marker; else echo absent; fi > /out/result.txt"
	if *write != "" {
		shell = "echo '" + strings.Replace(*write, "'", "", -1) + "' > /cache/marker && cat /cache/marker > /out/result.txt"
	}
	got, err := runProbe(ctx, t, *cdir, shell,
		llb.AddMount("/cache", llb.Scratch(), llb.AsPersistentCacheDir(*id, llb.CacheMountShared)))
	if err != nil {
		return err
	}
	fmt.Printf("cache-probe: marker=%s\n", got)
	return nil
}
