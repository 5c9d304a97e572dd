package main

// Cross-session checks: one client holds a session that exposes a context
// directory (session-hold); another names that session ID in its own LLB
// (solve-steal). BuildKit binds nothing to the session ID, so against a bare
// daemon the second client reads the first one's files; a gateway that
// isolates tenants must make the foreign ID unreachable.

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
)

func cmdSessionHold(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("session-hold", flag.ExitOnError)
	cdir := fs.String("context", "", "directory the session exposes as \"context\"")
	fs.Parse(args)
	if *cdir == "" {
		return fmt.Errorf("--context is required")
	}
	s, err := session.NewSession(ctx, "bgclient", "bgclient-"+identity.NewID())
	if err != nil {
		return err
	}
	s.Allow(filesync.NewFSSyncProvider([]filesync.SyncedDir{{Name: "context", Dir: *cdir}}))
	fmt.Printf("session-hold: id=%s\n", s.ID())
	err = s.Run(ctx, t.sessionDialer())
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("session closed by peer")
	}
	return err
}

// solve-steal names another client's session as its own (SolveRequest.Session):
// the daemon then reads that client's "context" directory. The result goes to
// the moby exporter under --name, so the test can see the build succeeded.
func cmdSolveSteal(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("solve-steal", flag.ExitOnError)
	victim := fs.String("session", "", "somebody else's session ID")
	file := fs.String("file", "secret.txt", "file to copy out of that session's context")
	name := fs.String("name", "", "image name for the moby exporter")
	fs.Parse(args)
	if *victim == "" || *name == "" {
		return fmt.Errorf("--session and --name are required")
	}
	_, err := runSolve(ctx, t, solveOpts{
		exporter: "moby", attrs: map[string]string{"name": *name}, session: *victim,
		prepare: func(string) (*llb.Definition, error) {
			src := llb.Local("context", llb.SharedKeyHint("bgclient-steal"), llb.IncludePatterns([]string{*file}))
			return llb.Scratch().File(llb.Copy(src, "/"+*file, "/"+*file)).Marshal(ctx)
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("solve-steal: built %s from %s in session %s\n", *name, *file, *victim)
	return nil
}

var _ = os.Getpid
var _ = ioutil.ReadFile
var _ = filepath.Join
var _ = strings.TrimSpace
