package main

// Commands for the interop section "frontends": what a tenant can ask of
// the daemon-side Dockerfile frontend through its attrs, and a Solve sent
// as the very first stream of a connection.
//
//   dockerfile-opts --dockerfile TEXT [--context DIR] --out DIR [--opt k=v]...
//       Control.Solve with Frontend dockerfile.v0, the given attrs (what
//       `buildctl build --opt` sends) and the local exporter; prints every
//       exported file as "file: PATH CONTENT".
//   solve-plain
//       Control.Solve of a one-file definition with no session and no
//       exporter, so that the Solve is the first (and only) stream.

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
)

func init() {
	commands["dockerfile-opts"] = cmdDockerfileOpts
	commands["solve-plain"] = cmdSolvePlain
}

type optList map[string]string

func (o optList) String() string { return fmt.Sprint(map[string]string(o)) }
func (o optList) Set(v string) error {
	kv := strings.SplitN(v, "=", 2)
	if len(kv) != 2 {
		return fmt.Errorf("--opt wants key=value")
	}
	o[kv[0]] = kv[1]
	return nil
}

func cmdDockerfileOpts(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("dockerfile-opts", flag.ExitOnError)
	dockerfile := fs.String("dockerfile", "", "Dockerfile text (\\n for newlines)")
	cdir := fs.String("context", "", "context directory (default: an empty one)")
	out := fs.String("out", "", "output directory")
	attrs := optList{"filename": "Dockerfile"}
	fs.Var(attrs, "opt", "frontend attr key=value (repeatable)")
	fs.Parse(args)
	if *dockerfile == "" || *out == "" {
		return fmt.Errorf("--dockerfile and --out are required")
	}
	ddir, err := ioutil.TempDir("", "bgclient-dfo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(ddir)
	text := strings.Replace(*dockerfile, `\n`, "\n", -1)
	if err := ioutil.WriteFile(filepath.Join(ddir, "Dockerfile"), []byte(text), 0644); err != nil {
		return err
	}
	if *cdir == "" {
		*cdir = ddir
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
	s.Allow(filesync.NewFSSyncProvider([]filesync.SyncedDir{{Name: "context", Dir: *cdir}, {Name: "dockerfile", Dir: ddir}}))
	s.Allow(filesync.NewFSSyncTargetDir(*out))
	go s.Run(ctx, t.sessionDialer())
	defer s.Close()
	req := &controlapi.SolveRequest{
		Ref:           identity.NewID(),
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		Exporter:      "local",
		Session:       s.ID(),
	}
	if _, err := t.ctl.Solve(ctx, req); err != nil {
		return err
	}
	filepath.Walk(*out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			dt, _ := ioutil.ReadFile(p)
			fmt.Printf("file: %s %q\n", strings.TrimPrefix(p, *out), dt)
		}
		return nil
	})
	fmt.Println("dockerfile-opts: ok")
	return nil
}

func cmdSolvePlain(ctx context.Context, t *transport, args []string) error {
	def, err := llb.Scratch().File(llb.Mkfile("/plain.txt", 0644, []byte("plain\n"))).Marshal(ctx)
	if err != nil {
		return err
	}
	if _, err := t.ctl.Solve(ctx, &controlapi.SolveRequest{Ref: identity.NewID(), Definition: def.ToPB()}); err != nil {
		return err
	}
	fmt.Println("solve-plain: ok")
	return nil
}
