package main

// Transports: the Docker-style HTTP/1.1 upgrade doors (/grpc and /session, as
// buildx's docker driver uses them) and native gRPC with prior knowledge
// (sessions then ride Control.Session through grpchijack).

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/grpchijack"
	"google.golang.org/grpc"
)

// dialAddr opens a raw stream connection to unix:///path or tcp://host:port.
func dialAddr(ctx context.Context, addr string) (net.Conn, error) {
	u, err := url.Parse(addr)
	if err != nil {
		return nil, fmt.Errorf("bad address %q: %v", addr, err)
	}
	var d net.Dialer
	switch u.Scheme {
	case "unix":
		p := u.Path
		if p == "" {
			p = u.Opaque
		}
		return d.DialContext(ctx, "unix", p)
	case "tcp":
		return d.DialContext(ctx, "tcp", u.Host)
	}
	return nil, fmt.Errorf("unsupported address scheme %q (want unix:// or tcp://)", u.Scheme)
}

// upgradeHead builds the HTTP/1.1 upgrade request the way moby's DialHijack does:
// empty Host, Content-Length 0, Connection/Upgrade, then extra headers one line per value.
func upgradeHead(path string, meta map[string][]string, token string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: \r\nUser-Agent: bgclient\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n", path)
	if token != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range meta[k] {
			fmt.Fprintf(&b, "%s: %s\r\n", http.CanonicalHeaderKey(k), v)
		}
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

// upgradedConn consumes the "101 Switching Protocols" head on its first Read,
// so the request and the HTTP/2 preface can go out without waiting for it.
type upgradedConn struct {
	net.Conn
	path string
	once sync.Once
	br   *bufio.Reader
	err  error
}

func (c *upgradedConn) readHead() {
	c.br = bufio.NewReaderSize(c.Conn, 4096)
	line, err := c.br.ReadString('\n')
	if err != nil {
		c.err = fmt.Errorf("upgrade %s: reading status line: %v", c.path, err)
		return
	}
	status := strings.TrimRight(line, "\r\n")
	f := strings.SplitN(status, " ", 3)
	if len(f) < 2 || !strings.HasPrefix(f[0], "HTTP/1.") || f[1] != "101" {
		// read what follows (a short body usually says why) for the message
		rest := make([]byte, 512)
		c.Conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _ := c.br.Read(rest)
		c.err = fmt.Errorf("unable to upgrade %s: got %q %q", c.path, status, string(rest[:n]))
		return
	}
	for {
		l, err := c.br.ReadString('\n')
		if err != nil {
			c.err = fmt.Errorf("upgrade %s: reading response head: %v", c.path, err)
			return
		}
		if l == "\r\n" || l == "\n" {
			return
		}
	}
}

func (c *upgradedConn) Read(p []byte) (int, error) {
	c.once.Do(c.readHead)
	if c.err != nil {
		return 0, c.err
	}
	return c.br.Read(p)
}

func dialUpgrade(ctx context.Context, addr, path string, meta map[string][]string, token string) (*upgradedConn, error) {
	conn, err := dialAddr(ctx, addr)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Write(upgradeHead(path, meta, token)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("upgrade %s: write: %v", path, err)
	}
	return &upgradedConn{Conn: conn, path: path}, nil
}

type bearer struct{ token string }

func (b bearer) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}
func (b bearer) RequireTransportSecurity() bool { return false }

type transport struct {
	docker string // docker-style address, or ""
	native string // native gRPC address, or ""
	token  string
	// eager: send the HTTP/2 preface right behind the /grpc upgrade request
	// without waiting for the 101 (what the buildx capture shows on the wire).
	// dockerd 20.10 can lose those bytes in its HTTP server's read buffer, so
	// the default waits for the 101 like moby's DialHijack does.
	eager  bool
	// prefix goes before /grpc and /session (e.g. /v1.41, a versioned API path)
	prefix string
	// grpcSession: on docker, sessions ride Control.Session on the /grpc
	// connection (the bench's direct baseline for native Control.Session)
	grpcSession bool
	cc     *grpc.ClientConn
	ctl    controlapi.ControlClient
}

func (t *transport) connect(ctx context.Context) error {
	opts := []grpc.DialOption{
		grpc.WithInsecure(),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20), grpc.MaxCallSendMsgSize(16<<20)),
	}
	switch {
	case t.docker != "":
		addr := t.docker
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			c, err := dialUpgrade(ctx, addr, t.prefix+"/grpc", nil, t.token)
			if err != nil || t.eager {
				return c, err
			}
			c.once.Do(c.readHead)
			if c.err != nil {
				c.Close()
				return nil, c.err
			}
			return c, nil
		}))
	case t.native != "":
		addr := t.native
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return dialAddr(ctx, addr)
		}))
		if t.token != "" {
			opts = append(opts, grpc.WithPerRPCCredentials(bearer{t.token}))
		}
	default:
		return fmt.Errorf("need --docker ADDR or --grpc ADDR")
	}
	cc, err := grpc.DialContext(ctx, "passthrough:///buildkit", opts...)
	if err != nil {
		return err
	}
	t.cc = cc
	t.ctl = controlapi.NewControlClient(cc)
	return nil
}

// sessionDialer returns how a session reaches the daemon on this transport.
func (t *transport) sessionDialer() session.Dialer {
	if t.docker != "" && !t.grpcSession {
		return func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			c, err := dialUpgrade(ctx, t.docker, t.prefix+"/session", meta, t.token)
			if err != nil {
				return nil, err
			}
			// Here the daemon speaks first (after the 101), so check the head now.
			c.once.Do(c.readHead)
			if c.err != nil {
				c.Close()
				return nil, c.err
			}
			return c, nil
		}
	}
	return grpchijack.Dialer(t.ctl)
}
