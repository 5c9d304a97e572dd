package main

// Issue 11 probes: session names in BuildKit's "prefix:" form, secret mounts
// served by the client's own session, and the identity rule (a call that
// presents another tenant's token on an identified connection).

import (
	"context"
	"flag"
	"fmt"
	"io/ioutil"
	"path/filepath"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/secrets"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// mapSecrets serves secrets from memory (Debian's secretsprovider package
// needs a module it does not ship).
type mapSecrets map[string][]byte

func (m mapSecrets) Register(s *grpc.Server) { secrets.RegisterSecretsServer(s, m) }

func (m mapSecrets) GetSecret(ctx context.Context, req *secrets.GetSecretRequest) (*secrets.GetSecretResponse, error) {
	v, ok := m[req.ID]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "secret %s not found", req.ID)
	}
	return &secrets.GetSecretResponse{Data: v}, nil
}

func init() {
	commands["steal-local"] = cmdStealLocal
	commands["solve-secret"] = cmdSolveSecret
	commands["identity-probe"] = cmdIdentityProbe
	commands["session-key"] = cmdSessionKey
}

// session-key opens a session with the shared key --key (buildctl sends "")
// and keeps it for --seconds, so a test can read what the backend receives.
func cmdSessionKey(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("session-key", flag.ExitOnError)
	key := fs.String("key", "", "X-Docker-Expose-Session-Sharedkey to send")
	secs := fs.Duration("for", 2*time.Second, "how long to keep the session")
	fs.Parse(args)
	s, err := session.NewSession(ctx, "bgclient", *key)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *secs)
	defer cancel()
	fmt.Printf("session-key: id=%s key=%q\n", s.ID(), *key)
	err = s.Run(ctx, t.sessionDialer())
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = fmt.Errorf("session closed by peer")
	}
	return err
}

// steal-local names another session in the local source's local.session
// attr (not in SolveRequest.Session): the job runs with our own session,
// exposing --context, and the result is exported to --out.
func cmdStealLocal(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("steal-local", flag.ExitOnError)
	victim := fs.String("session", "", "the session ID to put in local.session")
	own := fs.String("context", "", "our own context directory")
	out := fs.String("out", "", "local export directory")
	file := fs.String("file", "secret.txt", "file to copy out of the named session's context")
	fs.Parse(args)
	if *victim == "" || *own == "" || *out == "" {
		return fmt.Errorf("--session, --context and --out are required")
	}
	_, err := runSolve(ctx, t, solveOpts{
		exporter: "local", outDir: *out, contextDir: *own,
		prepare: func(string) (*llb.Definition, error) {
			src := llb.Local("context", llb.SessionID(*victim), llb.SharedKeyHint("bgclient-steal-local"),
				llb.IncludePatterns([]string{*file}))
			return llb.Scratch().File(llb.Copy(src, "/"+*file, "/"+*file)).Marshal(ctx)
		},
	})
	if err != nil {
		return err
	}
	dt, _ := ioutil.ReadFile(filepath.Join(*out, *file))
	fmt.Printf("steal-local: exported %q\n", string(dt))
	return nil
}

// solve-secret mounts a secret that our own session serves (--value, id
// "bgsecret") into a busybox exec and exports what the exec read to --out.
func cmdSolveSecret(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("solve-secret", flag.ExitOnError)
	cdir := fs.String("context", "", "context with bin/busybox")
	out := fs.String("out", "", "local export directory")
	value := fs.String("value", "", "the secret's value")
	fs.Parse(args)
	if *cdir == "" || *out == "" || *value == "" {
		return fmt.Errorf("--context, --out and --value are required")
	}
	o := solveOpts{exporter: "local", outDir: *out, contextDir: *cdir}
	o.prepare = func(string) (*llb.Definition, error) {
		root := llb.Local("context", llb.SharedKeyHint("bgclient-secret"))
		run := root.Run(llb.Args([]string{"/bin/busybox", "sh", "-c", "/bin/busybox cat /run/secrets/bgsecret > /out/got"}),
			llb.Network(llb.NetModeNone),
			llb.AddSecret("/run/secrets/bgsecret", llb.SecretID("bgsecret")))
		return run.AddMount("/out", llb.Scratch()).Marshal(ctx)
	}
	o.attach = append(o.attach, mapSecrets{"bgsecret": []byte(*value)})
	if _, err := runSolve(ctx, t, o); err != nil {
		return err
	}
	dt, err := ioutil.ReadFile(filepath.Join(*out, "got"))
	if err != nil {
		return err
	}
	fmt.Printf("solve-secret: read %q\n", string(dt))
	return nil
}

// identity-probe makes two ListWorkers calls on one connection: the first as
// the transport is configured, the second with "authorization: Bearer --as"
// metadata added to that call alone.
func cmdIdentityProbe(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("identity-probe", flag.ExitOnError)
	as := fs.String("as", "", "token the second call presents")
	fs.Parse(args)
	if *as == "" {
		return fmt.Errorf("--as is required")
	}
	res := func(err error) string {
		if err == nil {
			return "OK"
		}
		return errText(err)
	}
	_, err1 := t.ctl.ListWorkers(ctx, &controlapi.ListWorkersRequest{})
	_, err2 := t.ctl.ListWorkers(ctx, &controlapi.ListWorkersRequest{}, grpc.PerRPCCredentials(bearer{*as}))
	fmt.Printf("identity-probe: first=%s\nidentity-probe: second=%s\n", res(err1), res(err2))
	return nil
}
