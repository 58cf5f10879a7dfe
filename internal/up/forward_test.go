package up

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// The CA forwarder passes bytes both ways, and close cuts the connections
// still open so that up's teardown never waits on a client.
func TestForwarderRelaysAndCloseCutsConnections(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "echo: "+line)
				io.Copy(io.Discard, c)
			}()
		}
	}()
	f, err := forwardTCP("127.0.0.1:0", target.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", f.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "hello\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != "echo: hello\n" {
		t.Fatalf("through the forwarder: %q, %v", got, err)
	}

	f.close() // returns only once every pipe has ended
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the client's connection is still open after close")
	}
	if _, err := net.Dial("tcp", f.ln.Addr().String()); err == nil {
		t.Error("the forwarder still accepts after close")
	}
}
