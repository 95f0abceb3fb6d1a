package main

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGINT while a request is in flight: the request is answered (its body
// arrives after the signal), then the process exits 0 after "stopped".
func TestShutdownDrainsInFlightRequests(t *testing.T) {
	s := startServe(t, t.TempDir())
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "username=nurse&password=x&flow=00000000-0000-0000-0000-000000000000"
	head := "POST /login HTTP/1.1\r\nHost: " + strings.TrimPrefix(s.url, "http://") +
		"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	// The headers and half the body: the handler is running, reading.
	if _, err := conn.Write([]byte(head + body[:10])); err != nil {
		t.Fatal(err)
	}
	// A second request on another connection proves the first one's
	// headers were read (requests on one server are served in parallel).
	if code, _ := get(t, s.url+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d", code)
	}
	if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(s.logs.String(), "shutting down") {
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown after SIGINT:\n%s", s.logs)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
	if _, err := conn.Write([]byte(body[10:])); err != nil {
		t.Fatalf("the in-flight request's connection was closed: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the in-flight request: %v\n%s", err, s.logs)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Errorf("in-flight request: %d", resp.StatusCode)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, s.logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after the drain")
	}
	if !strings.Contains(s.logs.String(), "stopped") {
		t.Errorf("no clean stop:\n%s", s.logs)
	}
}
