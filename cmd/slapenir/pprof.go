package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// servePprof serves Go's profiler on addr, for taking a profile of the real
// binary under load (bench/peers.sh with PPROF=1). It is off unless asked for and
// only ever on a loopback address of its own: the profiler shows memory,
// goroutine stacks and command lines, which the agent-facing port must never
// serve. The returned func stops it.
func servePprof(addr, proxyListen string, log *slog.Logger) (net.Addr, func(), error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: --pprof %q: want HOST:PORT on a loopback address, such as 127.0.0.1:6060: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, fmt.Errorf("proxy: --pprof %q: the profiler is served on loopback only (127.0.0.1, ::1 or localhost); it exposes memory and stacks", addr)
	}
	if addr == proxyListen {
		return nil, nil, fmt.Errorf("proxy: --pprof %q is the proxy's own listen address; give the profiler a port of its own", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("proxy: --pprof: cannot listen on %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Warn("profiler on: Go's pprof is served on this loopback address for benchmarking; leave --pprof off in production",
		"pprof", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr(), func() { _ = srv.Close() }, nil
}
