package main

// dockerfile: the Dockerfile frontend built into the daemon, reached the two
// ways real clients do: buildctl puts Frontend "dockerfile.v0" in Control.Solve;
// buildx (--bridge) sends Control.Solve with no Frontend and runs the frontend
// through LLBBridge.Solve, then hands the result back with LLBBridge.Return.

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

func cmdDockerfile(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("dockerfile", flag.ExitOnError)
	out := fs.String("out", "", "output directory")
	viaBridge := fs.Bool("bridge", false, "run the frontend through LLBBridge.Solve (the buildx flow)")
	fs.Parse(args)
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	const content = "hello from a Dockerfile\n"
	cdir, err := ioutil.TempDir("", "bgclient-df")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cdir)
	if err := ioutil.WriteFile(filepath.Join(cdir, "hello.txt"), []byte(content), 0644); err != nil {
		return err
	}
	if err := ioutil.WriteFile(filepath.Join(cdir, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /df/hello.txt\n"), 0644); err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0755); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := session.NewSession(ctx, "bgclient", "bgclient-"+identity.NewID())
	if err != nil {
		return err
	}
	s.Allow(filesync.NewFSSyncProvider([]filesync.SyncedDir{{Name: "context", Dir: cdir}, {Name: "dockerfile", Dir: cdir}}))
	s.Allow(filesync.NewFSSyncTargetDir(*out))
	go s.Run(ctx, t.sessionDialer())
	defer s.Close()

	attrs := map[string]string{"filename": "Dockerfile"}
	ref := identity.NewID()
	req := &controlapi.SolveRequest{Ref: ref, Exporter: "local", Session: s.ID()}
	if !*viaBridge {
		req.Frontend = "dockerfile.v0"
		req.FrontendAttrs = attrs
		if _, err := t.ctl.Solve(ctx, req); err != nil {
			return err
		}
	} else {
		req.FrontendAttrs = attrs
		solveDone := make(chan error, 1)
		go func() {
			_, err := t.ctl.Solve(ctx, req)
			solveDone <- err
		}()
		bctx := metadata.AppendToOutgoingContext(ctx, "buildkit-controlapi-buildid", ref)
		var sreq pbw
		sreq.str(2, "dockerfile.v0")
		keys := make([]string, 0, len(attrs))
		for k := range attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			var e pbw
			e.str(1, k)
			e.str(2, attrs[k])
			sreq.bytes(3, e.b)
		}
		sreq.uint(5, 1) // allowResultReturn
		sreq.uint(6, 1) // allowResultArrayRef
		var sresp []byte
		if err := t.cc.Invoke(bctx, bridge+"Solve", rawMsg(sreq.b), &sresp, rawCodecOpt(), grpc.WaitForReady(true)); err != nil {
			cancel()
			return fmt.Errorf("LLBBridge.Solve: %w", err)
		}
		resultID, err := solveResultID(sresp)
		if err != nil {
			return err
		}
		fmt.Printf("dockerfile: LLBBridge.Solve ok ref=%s\n", resultID)
		var rref, res, rreq pbw
		rref.str(1, resultID)
		res.bytes(3, rref.b) // Result.ref
		rreq.bytes(1, res.b) // ReturnRequest.result
		var rresp []byte
		if err := t.cc.Invoke(bctx, bridge+"Return", rawMsg(rreq.b), &rresp, rawCodecOpt()); err != nil {
			cancel()
			return fmt.Errorf("LLBBridge.Return: %w", err)
		}
		select {
		case err := <-solveDone:
			if err != nil {
				return err
			}
		case <-time.After(60 * time.Second):
			return fmt.Errorf("Control.Solve did not finish after LLBBridge.Return")
		}
	}
	got, err := ioutil.ReadFile(filepath.Join(*out, "df", "hello.txt"))
	if err != nil {
		return fmt.Errorf("exported file: %v", err)
	}
	if string(got) != content {
		return fmt.Errorf("exported content %q, want %q", got, content)
	}
	mode := "Control.Solve frontend"
	if *viaBridge {
		mode = "LLBBridge frontend"
	}
	fmt.Printf("dockerfile: ok (%s) %q\n", mode, strings.TrimSpace(string(got)))
	return nil
}
