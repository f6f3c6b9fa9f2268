// Package faultproxy is an HTTP proxy on 127.0.0.1 that sits between a test
// client and a real S3 server and injects faults into chosen requests: an
// error status (500, 503), a connection reset part-way through the request
// body, a stall (the body is taken and no answer given), a delay, and one
// byte of the request body flipped on its way to the server. It counts the
// request-body bytes it receives, so a test can assert how much was sent
// (and therefore re-sent).
//
// The Host header is passed through unchanged so SigV4 signatures made for
// the proxy's address still verify at the server. Import only from tests.
package faultproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Fault is what happens to a matching request.
type Fault int

// Faults.
const (
	Status500 Fault = iota + 1 // answer 500 InternalError without forwarding
	Status503                  // answer 503 SlowDown without forwarding
	Reset                      // read half the body, then reset the connection (RST)
	Stall                      // read the body, answer nothing until the client gives up
	Delay                      // wait Rule.Delay, then forward normally
	Corrupt                    // flip one byte in the middle of the body, forward
)

func (f Fault) String() string {
	return [...]string{"none", "500", "503", "reset", "stall", "delay", "corrupt"}[f]
}

// Rule injects Fault into the next Times requests that Match (Times <= 0:
// every one).
type Rule struct {
	Match func(*http.Request) bool
	Fault Fault
	Times int
	Delay time.Duration
}

// Proxy is one running fault proxy.
type Proxy struct {
	URL string // http://127.0.0.1:PORT

	target *url.URL
	srv    *http.Server
	rp     *httputil.ReverseProxy

	mu       sync.Mutex
	rules    []*Rule
	injected map[Fault]int
	// corruptAnswers are the statuses the server gave to corrupted bodies.
	corruptAnswers []int

	bodyBytes atomic.Int64 // request-body bytes received from clients
	requests  atomic.Int64
}

// Start runs a proxy to target (a base URL such as s3srv.Server.Endpoint)
// until t ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("faultproxy: target %q: %v", target, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: listen: %v", err)
	}
	p := &Proxy{URL: "http://" + ln.Addr().String(), target: u, injected: map[Fault]int{}}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the signature covers the client's Host
		},
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 16,
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The server is down or went away mid-request: what a load
			// balancer in front of a dead node answers.
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.srv.Shutdown(ctx)
		p.srv.Close()
	})
	return p
}

// Add installs a rule; rules are tried in the order added.
func (p *Proxy) Add(r Rule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rr := r
	p.rules = append(p.rules, &rr)
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Injected is how many times f was injected.
func (p *Proxy) Injected(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.injected[f]
}

// CorruptAnswers returns the HTTP status the server answered each
// corrupted request with (400 when its checksum check refused it).
func (p *Proxy) CorruptAnswers() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.corruptAnswers...)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 && code >= 200 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// BodyBytes is the number of request-body bytes received from clients so
// far, whatever became of the request.
func (p *Proxy) BodyBytes() int64 { return p.bodyBytes.Load() }

// Requests is the number of requests received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

func (p *Proxy) pick(r *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, rule := range p.rules {
		if rule.Match != nil && !rule.Match(r) {
			continue
		}
		if rule.Times > 0 {
			rule.Times--
			if rule.Times == 0 {
				p.rules = append(p.rules[:i:i], p.rules[i+1:]...)
			}
		}
		p.injected[rule.Fault]++
		cp := *rule
		return &cp
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	r.Body = &countingBody{r: r.Body, n: &p.bodyBytes}
	rule := p.pick(r)
	if rule == nil {
		p.rp.ServeHTTP(w, r)
		return
	}
	switch rule.Fault {
	case Status500, Status503:
		io.Copy(io.Discard, r.Body)
		code, s3code := http.StatusInternalServerError, "InternalError"
		if rule.Fault == Status503 {
			code, s3code = http.StatusServiceUnavailable, "SlowDown"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+s3code+`</Code><Message>injected by faultproxy</Message></Error>`)
	case Reset:
		if r.ContentLength > 0 {
			io.CopyN(io.Discard, r.Body, r.ContentLength/2)
		}
		reset(w)
	case Stall:
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done() // the client's timeout (or close) ends it
	case Delay:
		select {
		case <-time.After(rule.Delay):
		case <-r.Context().Done():
			return
		}
		p.rp.ServeHTTP(w, r)
	case Corrupt:
		r.Body = &corruptBody{r: r.Body, at: max(r.ContentLength/2, 0)}
		sw := &statusWriter{ResponseWriter: w}
		p.rp.ServeHTTP(sw, r)
		p.mu.Lock()
		p.corruptAnswers = append(p.corruptAnswers, sw.code)
		p.mu.Unlock()
	default:
		p.rp.ServeHTTP(w, r)
	}
}

// reset closes the client connection with SO_LINGER 0: the client sees
// ECONNRESET, as from a crashed middlebox.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(errors.New("faultproxy: response writer cannot be hijacked"))
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

type countingBody struct {
	r io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingBody) Close() error { return c.r.Close() }

// corruptBody flips the byte at offset at.
type corruptBody struct {
	r   io.ReadCloser
	at  int64
	off int64
}

func (c *corruptBody) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if c.at >= c.off && c.at < c.off+int64(n) {
		b[c.at-c.off] ^= 0x01
	}
	c.off += int64(n)
	return n, err
}

func (c *corruptBody) Close() error { return c.r.Close() }

// IsUploadPart matches UploadPart requests (PUT ?partNumber&uploadId).
func IsUploadPart(r *http.Request) bool {
	q := r.URL.Query()
	return r.Method == http.MethodPut && q.Has("partNumber") && q.Has("uploadId")
}

// IsPutObject matches a single PutObject (a PUT with a body and no
// sub-resource).
func IsPutObject(r *http.Request) bool {
	q := r.URL.Query()
	q.Del("x-id") // the SDK names the operation: ?x-id=PutObject
	return r.Method == http.MethodPut && len(q) == 0 && r.URL.Path != "" && r.ContentLength > 0
}

// IsComplete matches CompleteMultipartUpload (POST ?uploadId).
func IsComplete(r *http.Request) bool {
	return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
}

// IsHead matches HEAD requests (the existing-version check, Stat).
func IsHead(r *http.Request) bool { return r.Method == http.MethodHead }

// Any matches every request.
func Any(*http.Request) bool { return true }

// And matches when all of fs match.
func And(fs ...func(*http.Request) bool) func(*http.Request) bool {
	return func(r *http.Request) bool {
		for _, f := range fs {
			if !f(r) {
				return false
			}
		}
		return true
	}
}
