// bgclient: a real BuildKit control-API client for buildgate's interop tests.
// It speaks to dockerd's Docker-style doors (--docker) or to native gRPC
// (--grpc), using BuildKit's own Go packages as Debian ships them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type cmdFunc func(ctx context.Context, t *transport, args []string) error

var commands = map[string]cmdFunc{
	"listworkers":     cmdListWorkers,
	"diskusage":       cmdDiskUsage,
	"prune":           cmdPrune,
	"info":            cmdInfo,
	"solve-mkfile":    cmdSolveMkfile,
	"solve-exec":      cmdSolveExec,
	"solve-exec-host": cmdSolveExecHost,
	"bigcontext":      cmdBigContext,
	"hang":            cmdHang,
	"moby-export":     cmdMobyExport,
	"bridge-insecure": cmdBridgeInsecure,
	"session-hold":    cmdSessionHold,
	"dockerfile":      cmdDockerfile,
	"status":          cmdStatus,
	"solve-steal":     cmdSolveSteal,
	"wire-tricks":     cmdWireTricks,
}

// commands that do not need a gRPC connection
var rawCommands = map[string]func(args []string) error{
	"rawsend":   cmdRawSend,
	"truncated": cmdTruncated,
}

func usage() {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	for n := range rawCommands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(os.Stderr, "usage: bgclient (--docker ADDR | --grpc ADDR) [--token T] [--eager] [--timeout D] COMMAND [flags]\ncommands: %s\n", strings.Join(names, " "))
	os.Exit(2)
}

// errText renders an error so tests can match it: gRPC errors carry the code
// name, also when wrapped (fmt.Errorf %w or pkg/errors).
func errText(err error) string {
	type grpcStatus interface{ GRPCStatus() *status.Status }
	for e := err; e != nil; {
		if gs, ok := e.(grpcStatus); ok {
			st := gs.GRPCStatus()
			if e == err {
				return fmt.Sprintf("code=%s desc=%s", st.Code(), st.Message())
			}
			return fmt.Sprintf("code=%s desc=%s (%v)", st.Code(), st.Message(), err)
		}
		if u := errors.Unwrap(e); u != nil {
			e = u
			continue
		}
		c, ok := e.(interface{ Cause() error })
		if !ok {
			break
		}
		e = c.Cause()
	}
	return err.Error()
}

func main() {
	fs := flag.NewFlagSet("bgclient", flag.ExitOnError)
	docker := fs.String("docker", "", "Docker-style endpoint (unix:///path or tcp://host:port): /grpc and /session upgrades")
	native := fs.String("grpc", "", "native gRPC endpoint (unix:///path or tcp://host:port): Control.Session for sessions")
	token := fs.String("token", "", "bearer token (Authorization header on upgrades, authorization metadata on native gRPC)")
	eager := fs.Bool("eager", false, "on --docker, send the HTTP/2 preface without waiting for the 101")
	grpcSession := fs.Bool("session-over-grpc", false, "on --docker, run sessions as Control.Session on the /grpc connection instead of a /session upgrade")
	prefix := fs.String("api-prefix", "", "on --docker, a prefix for /grpc and /session (e.g. /v1.41)")
	timeout := fs.Duration("timeout", 5*time.Minute, "overall deadline")
	fs.Usage = usage
	fs.Parse(os.Args[1:])
	if fs.NArg() < 1 {
		usage()
	}
	name, args := fs.Arg(0), fs.Args()[1:]

	if rc, ok := rawCommands[name]; ok {
		if err := rc(args); err != nil {
			fmt.Printf("error: %s\n", errText(err))
			os.Exit(1)
		}
		return
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown command %q\n", name)
		usage()
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; cancel() }()

	t := &transport{docker: *docker, native: *native, token: *token, eager: *eager, prefix: *prefix, grpcSession: *grpcSession}
	if err := t.connect(ctx); err != nil {
		fmt.Printf("error: %s\n", errText(err))
		os.Exit(1)
	}
	defer t.cc.Close()
	if err := cmd(ctx, t, args); err != nil {
		fmt.Printf("error: %s\n", errText(err))
		os.Exit(1)
	}
}

func cmdListWorkers(ctx context.Context, t *transport, args []string) error {
	resp, err := t.ctl.ListWorkers(ctx, &controlapi.ListWorkersRequest{})
	if err != nil {
		return err
	}
	for _, w := range resp.Record {
		var ps []string
		for _, p := range w.Platforms {
			ps = append(ps, p.OS+"/"+p.Architecture+p.Variant)
		}
		fmt.Printf("worker %s platforms=%s\n", w.ID, strings.Join(ps, ","))
	}
	fmt.Printf("workers: %d\n", len(resp.Record))
	if len(resp.Record) == 0 {
		return fmt.Errorf("no workers")
	}
	return nil
}

func cmdDiskUsage(ctx context.Context, t *transport, args []string) error {
	resp, err := t.ctl.DiskUsage(ctx, &controlapi.DiskUsageRequest{})
	if err != nil {
		return err
	}
	var total int64
	for _, r := range resp.Record {
		total += r.Size_
	}
	fmt.Printf("diskusage: %d records, %d bytes\n", len(resp.Record), total)
	return nil
}

func cmdPrune(ctx context.Context, t *transport, args []string) error {
	st, err := t.ctl.Prune(ctx, &controlapi.PruneRequest{})
	if err != nil {
		return err
	}
	n := 0
	var size int64
	for {
		r, err := st.Recv()
		if err != nil {
			if isEOF(err) {
				break
			}
			return err
		}
		n++
		size += r.Size_
	}
	fmt.Printf("prune: %d records, %d bytes\n", n, size)
	return nil
}

func cmdInfo(ctx context.Context, t *transport, args []string) error {
	// The v0.8 Go package has no Info; call it by name with an empty request.
	var out []byte
	err := t.cc.Invoke(ctx, "/moby.buildkit.v1.Control/Info", rawMsg(nil), &out, rawCodecOpt())
	if err != nil {
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented {
			fmt.Printf("info: Unimplemented (%s)\n", st.Message())
			return nil
		}
		return err
	}
	fmt.Printf("info: %d bytes answer\n", len(out))
	return nil
}
