package main

// wire-tricks: requests whose bytes BuildKit's Go decoder reads differently
// from a naive C reader (issue 9).  Each is sent as raw bytes and the outcome
// printed as one line, "case NAME: ok" or "case NAME: code=C desc=D", for
// tests/interop/run.sh to judge.  The gateway must refuse every trick before
// the backend sees it, and still forward the honest twin of the first one.

import (
	"context"
	"fmt"
	"math/rand"
	"strings"

	"github.com/moby/buildkit/client/llb"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func wireCase(ctx context.Context, t *transport, name, method string, msg []byte) {
	var out rawMsg
	err := t.cc.Invoke(ctx, method, rawMsg(msg), &out, rawCodecOpt())
	if err == nil {
		fmt.Printf("case %s: ok\n", name)
		return
	}
	st, _ := status.FromError(err)
	fmt.Printf("case %s: code=%s desc=%s\n", name, st.Code(), strings.ReplaceAll(st.Message(), "\n", " "))
}

// A Control.SolveRequest that exports the given definition with the moby
// exporter (fields 3/4, which every daemon reads) under |image|.
func wireSolve(ref string, def []byte, image string) []byte {
	var entry, w pbw
	entry.str(1, "name")
	entry.bytes(2, []byte(image))
	w.str(1, ref)
	w.bytes(2, def)
	w.str(3, "moby")
	w.bytes(4, entry.b)
	return w.b
}

func cmdWireTricks(ctx context.Context, t *transport, args []string) error {
	d, err := llb.Scratch().File(llb.Mkfile("/wire.txt", 0644, []byte("wire\n"))).Marshal(ctx)
	if err != nil {
		return err
	}
	def, err := d.ToPB().Marshal()
	if err != nil {
		return err
	}
	const solve = "/moby.buildkit.v1.Control/Solve"
	ref := func() string { return fmt.Sprintf("wire%d", rand.Int63()) }

	// an image name with a NUL: a C string ends at it, Go keeps every byte
	wireCase(ctx, t, "solve-nul-name", solve, wireSolve(ref(), def, "wire-app\x00,victim/app:latest"))
	// its honest twin reaches the daemon and builds
	wireCase(ctx, t, "solve-honest-name", solve, wireSolve(ref(), def, "wire-app:1"))

	// Session twice: Go keeps the last one
	var dup pbw
	dup.str(1, ref())
	dup.bytes(2, def)
	dup.str(5, "mine")
	dup.str(5, "dev.theirs")
	wireCase(ctx, t, "solve-duplicate-session", solve, dup.b)

	// SessionID tagged as field 6 + 2^32: BuildKit reads field 6
	var ric pbw
	ric.str(1, "docker.io/library/busybox:latest")
	ric.varint((6+1<<32)<<3 | 2)
	ric.varint(uint64(len("dev.theirs")))
	ric.b = append(ric.b, "dev.theirs"...)
	bctx := metadata.AppendToOutgoingContext(ctx, "buildkit-controlapi-buildid", ref())
	wireCase(bctx, t, "resolve-session-field-2^32", "/moby.buildkit.v1.frontend.LLBBridge/ResolveImageConfig", ric.b)

	// an ExecOp of 4 million empty mounts: 8 MB that would expand ~80x
	var exec, op, bigdef pbw
	exec.b = make([]byte, 0, 8000010)
	for i := 0; i < 4000000; i++ {
		exec.b = append(exec.b, 0x12, 0x00)
	}
	op.bytes(2, exec.b)
	bigdef.bytes(1, op.b)
	var big pbw
	big.str(1, ref())
	big.bytes(2, bigdef.b)
	wireCase(ctx, t, "solve-4m-empty-mounts", solve, big.b)
	return nil
}
