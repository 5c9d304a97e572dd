package main

// bridge-insecure: the client-side frontend flow (Control.Solve without a
// Definition or Frontend, LLBBridge calls tagged with the build ID), ending in
// an interactive container process with SecurityMode INSECURE. Interactive
// containers were not entitlement-checked before BuildKit v0.12.5, so a
// gateway policy has to stop it.  The LLBBridge Go package does not compile
// against Debian's fsutil, so messages are written by hand.

import (
	"context"
	"flag"
	"fmt"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/identity"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/filesync"
	opspb "github.com/moby/buildkit/solver/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const bridge = "/moby.buildkit.v1.frontend.LLBBridge/"

func cmdBridgeInsecure(ctx context.Context, t *transport, args []string) error {
	fs := flag.NewFlagSet("bridge-insecure", flag.ExitOnError)
	cdir := fs.String("context", "", "context directory with bin/busybox")
	fs.Parse(args)
	if err := needBusybox(*cdir); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := session.NewSession(ctx, "bgclient", "bgclient-"+identity.NewID())
	if err != nil {
		return err
	}
	s.Allow(filesync.NewFSSyncProvider([]filesync.SyncedDir{{Name: "context", Dir: *cdir}}))
	go s.Run(ctx, t.sessionDialer())
	defer s.Close()

	ref := identity.NewID()
	solveDone := make(chan error, 1)
	go func() {
		_, err := t.ctl.Solve(ctx, &controlapi.SolveRequest{Ref: ref, Session: s.ID()})
		solveDone <- err
	}()
	bctx := metadata.AppendToOutgoingContext(ctx, "buildkit-controlapi-buildid", ref)

	// finish ends the client-side build with LLBBridge.Return and waits for Control.Solve.
	finish := func() {
		var w pbw
		w.bytes(1, nil) // Result{} (empty)
		var out []byte
		rctx, rcancel := context.WithTimeout(bctx, 10*time.Second)
		defer rcancel()
		t.cc.Invoke(rctx, bridge+"Return", rawMsg(w.b), &out, rawCodecOpt())
		select {
		case <-solveDone:
		case <-time.After(10 * time.Second):
		}
	}
	fail := func(step string, err error) error {
		if st, ok := status.FromError(err); ok && st.Code() == codes.Unimplemented {
			fmt.Printf("bridge-insecure: %s Unimplemented (%s)\n", step, st.Message())
		}
		select {
		case serr := <-solveDone:
			if serr != nil {
				fmt.Printf("bridge-insecure: Control.Solve: %s\n", errText(serr))
			}
		default:
			finish()
		}
		return fmt.Errorf("%s: %w", step, err)
	}

	// 1. LLBBridge.Solve of the busybox context
	def, err := llb.Local("context", llb.SessionID(s.ID()), llb.SharedKeyHint("bgclient-context")).Marshal(ctx)
	if err != nil {
		return err
	}
	defBytes, err := def.ToPB().Marshal()
	if err != nil {
		return err
	}
	var sreq pbw
	sreq.bytes(1, defBytes) // Definition
	sreq.uint(5, 1)         // allowResultReturn
	sreq.uint(6, 1)         // allowResultArrayRef
	var sresp []byte
	if err := t.cc.Invoke(bctx, bridge+"Solve", rawMsg(sreq.b), &sresp, rawCodecOpt(), grpc.WaitForReady(true)); err != nil {
		return fail("LLBBridge.Solve", err)
	}
	resultID, err := solveResultID(sresp)
	if err != nil {
		return fail("LLBBridge.Solve answer", err)
	}
	fmt.Printf("bridge-insecure: LLBBridge.Solve ok ref=%s\n", resultID)

	// 2. NewContainer with the result as its root
	ctrID := "bgclient-" + identity.NewID()
	m := &opspb.Mount{Dest: "/", ResultID: resultID, Input: -1}
	mb, err := m.Marshal()
	if err != nil {
		return err
	}
	var creq pbw
	creq.str(1, ctrID)
	creq.bytes(2, mb)
	creq.uint(3, uint64(opspb.NetMode_NONE))
	var cresp []byte
	if err := t.cc.Invoke(bctx, bridge+"NewContainer", rawMsg(creq.b), &cresp, rawCodecOpt()); err != nil {
		return fail("LLBBridge.NewContainer", err)
	}
	fmt.Printf("bridge-insecure: NewContainer ok id=%s\n", ctrID)
	release := func() {
		var r pbw
		r.str(1, ctrID)
		var out []byte
		t.cc.Invoke(bctx, bridge+"ReleaseContainer", rawMsg(r.b), &out, rawCodecOpt())
	}

	// 3. ExecProcess Init with Security = INSECURE
	meta := &opspb.Meta{Args: []string{"/bin/busybox", "sh", "-c", "echo insecure-process-ran"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	metab, err := meta.Marshal()
	if err != nil {
		return err
	}
	var init pbw
	init.str(1, ctrID)
	init.bytes(2, metab)
	init.bytes(3, []byte{1, 2}) // Fds, packed: stdout, stderr
	init.uint(5, uint64(opspb.SecurityMode_INSECURE))
	var em pbw
	pid := ctrID + ":" + identity.NewID()
	em.str(1, pid)
	em.bytes(2, init.b)
	desc := &grpc.StreamDesc{StreamName: "ExecProcess", ServerStreams: true, ClientStreams: true}
	st, err := t.cc.NewStream(bctx, desc, bridge+"ExecProcess", rawCodecOpt())
	if err != nil {
		release()
		return fail("LLBBridge.ExecProcess", err)
	}
	if err := st.SendMsg(rawMsg(em.b)); err != nil {
		release()
		return fail("LLBBridge.ExecProcess send", err)
	}
	var output []byte
	exitCode := int64(-1)
	var execErr error
	for {
		var msg []byte
		if err := st.RecvMsg(&msg); err != nil {
			if !isEOF(err) {
				execErr = err
			}
			break
		}
		fields, err := pbParse(msg)
		if err != nil {
			execErr = err
			break
		}
		done := false
		for _, f := range fields {
			switch f.num {
			case 3: // FdMessage{Fd 1, Data 2, EOF 3}
				ff, _ := pbParse(f.data)
				for _, x := range ff {
					if x.num == 2 {
						output = append(output, x.data...)
					}
				}
			case 5:
				fmt.Println("bridge-insecure: process started")
			case 6: // ExitMessage{Code 1, Error 2}
				exitCode = 0
				ff, _ := pbParse(f.data)
				for _, x := range ff {
					if x.num == 1 {
						exitCode = int64(x.val)
					}
				}
			case 7:
				done = true
			}
		}
		if done {
			break
		}
	}
	st.CloseSend()
	release()
	if execErr != nil {
		return fail("LLBBridge.ExecProcess", execErr)
	}
	finish()
	fmt.Printf("bridge-insecure: INSECURE process ran exit=%d output=%q\n", exitCode, output)
	return nil
}

// solveResultID digs the result ref ID out of an LLBBridge SolveResponse:
// ref (1), or result (3) -> ref (3).id (1) / refDeprecated (1).
func solveResultID(b []byte) (string, error) {
	fields, err := pbParse(b)
	if err != nil {
		return "", err
	}
	for _, f := range fields {
		if f.num == 3 && f.wt == 2 {
			rf, err := pbParse(f.data)
			if err != nil {
				return "", err
			}
			for _, r := range rf {
				if r.num == 1 && r.wt == 2 {
					return string(r.data), nil
				}
				if r.num == 3 && r.wt == 2 {
					inner, err := pbParse(r.data)
					if err != nil {
						return "", err
					}
					for _, x := range inner {
						if x.num == 1 && x.wt == 2 {
							return string(x.data), nil
						}
					}
				}
			}
		}
	}
	for _, f := range fields {
		if f.num == 1 && f.wt == 2 && len(f.data) > 0 {
			return string(f.data), nil
		}
	}
	return "", fmt.Errorf("no result ref in LLBBridge.Solve answer (%d bytes)", len(b))
}
