package tunnel

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// pair is a connected TCP pair on loopback (real half-closes).
func pair(t *testing.T) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn)
	go func() { c, _ := ln.Accept(); done <- c }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-done
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// tunnelled is a client and a far end joined by Pipe, as the proxy and
// the relay join them; the result arrives on the channel.
func tunnelled(t *testing.T, early string) (client, far *net.TCPConn, res chan [2]int64) {
	client, clientSide := pair(t)
	farSide, far := pair(t)
	res = make(chan [2]int64, 1)
	go func() {
		var from io.Reader = clientSide
		if early != "" {
			from = io.MultiReader(strings.NewReader(early), clientSide)
		}
		in, out := Pipe(clientSide, from, farSide, farSide)
		res <- [2]int64{in, out}
	}()
	return client, far, res
}

// TestRequestThenResponse: the client sends and half-closes; the far side
// reads to EOF, answers and closes; the client reads the whole answer.
// Bytes read ahead of the tunnel go first.
func TestRequestThenResponse(t *testing.T) {
	client, far, res := tunnelled(t, "early ")
	client.Write([]byte("request"))
	client.CloseWrite()
	got, _ := io.ReadAll(far)
	if string(got) != "early request" {
		t.Fatalf("far got %q", got)
	}
	far.Write([]byte(strings.Repeat("r", 100000)))
	far.Close()
	back, _ := io.ReadAll(client)
	if len(back) != 100000 {
		t.Fatalf("client got %d bytes back", len(back))
	}
	if r := <-res; r != [2]int64{13, 100000} {
		t.Fatalf("counted %v", r)
	}
}

// TestFarEndsFirst: the far side half-closes; the client still sends for
// a moment (within Drain) and that arrives; then both are closed, even
// though the client never closes.
func TestFarEndsFirst(t *testing.T) {
	client, far, res := tunnelled(t, "")
	far.Write([]byte("bye"))
	far.CloseWrite()
	buf := make([]byte, 3)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "bye" {
		t.Fatalf("client read %q %v", buf, err)
	}
	if n, err := client.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("the client's side was not half-closed: %d %v", n, err)
	}
	client.Write([]byte("last words"))
	got := make([]byte, 10)
	if _, err := io.ReadFull(far, got); err != nil || string(got) != "last words" {
		t.Fatalf("far got %q %v after its half-close", got, err)
	}
	// The client never closes: Pipe still ends, after Drain.
	select {
	case <-res:
	case <-time.After(Drain + 5*time.Second):
		t.Fatal("a client that never closes kept the tunnel open")
	}
}

// TestClientEndsFarLingers: a far side that never closes after the
// client's half-close is cut after Drain.
func TestClientEndsFarLingers(t *testing.T) {
	client, far, res := tunnelled(t, "")
	client.CloseWrite()
	if got, _ := io.ReadAll(io.LimitReader(far, 1)); len(got) != 0 {
		t.Fatal("unexpected bytes")
	}
	select {
	case <-res:
	case <-time.After(Drain + 5*time.Second):
		t.Fatal("a far side that never closes kept the tunnel open")
	}
	if _, err := far.Write(bytes.Repeat([]byte("x"), 1<<20)); err == nil {
		// A write may still succeed into the socket buffer; a read says it.
		far.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := far.Read(make([]byte, 1)); err == nil {
			t.Fatal("the far side is still connected")
		}
	}
}

// TestErrorCutsBoth: a reset on one side cuts the other at once.
func TestErrorCutsBoth(t *testing.T) {
	client, far, res := tunnelled(t, "")
	client.SetLinger(0)
	client.Close() // RST
	far.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := far.Read(make([]byte, 1)); err == nil {
		t.Fatal("the far side still reads after the client was reset")
	}
	select {
	case <-res:
	case <-time.After(5 * time.Second):
		t.Fatal("Pipe did not end on a reset")
	}
}

func TestRegistry(t *testing.T) {
	var r Registry
	a, b := pair(t)
	if !r.Add(a, b) || r.Open() != 1 {
		t.Fatal("Add")
	}
	r.Cut()
	if _, err := a.Write([]byte("x")); err == nil {
		t.Fatal("Cut left a connection open")
	}
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
		t.Fatal("Close returned before the tunnel was Done")
	case <-time.After(50 * time.Millisecond):
	}
	r.Done(a, b)
	<-done
	if r.Open() != 0 || r.Add(a) {
		t.Fatal("a closed registry took a tunnel")
	}
}
