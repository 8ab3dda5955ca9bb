package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	startAttempts = 5                // new port per attempt, in case another process took ours
	startTimeout  = 10 * time.Second // until the server answers
	clusterSlots  = 16384
	busOffset     = 10000 // a cluster node also listens on port+10000
)

// StartServer starts a standalone redis-server on a free 127.0.0.1 port and
// returns its address (host:port). The server keeps no data on disk and is
// killed in t.Cleanup.
func StartServer(t testing.TB) (addr string) {
	t.Helper()
	bin := lookPath(t, "redis-server")
	p := startNode(t, bin, false)
	return p.addr
}

// StartCluster starts masters cluster-enabled redis-server nodes without
// replicas, assigns the 16384 slots evenly, joins them and waits until
// every node reports cluster_state:ok. It returns the node addresses, to
// be used as the Addrs of a cluster client.
func StartCluster(t testing.TB, masters int) []string {
	t.Helper()
	if masters < 1 {
		t.Fatalf("redistest: StartCluster needs at least one master, got %d", masters)
	}
	bin := lookPath(t, "redis-server")
	addrs := make([]string, masters)
	for i := range masters {
		addrs[i] = startNode(t, bin, true).addr
	}
	for i, addr := range addrs {
		first := i * clusterSlots / masters
		last := (i+1)*clusterSlots/masters - 1
		// Distinct epochs before meeting, as redis-cli --cluster create does.
		mustDo(t, addr, "CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1))
		mustDo(t, addr, "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(first), strconv.Itoa(last))
	}
	host, port, _ := net.SplitHostPort(addrs[0])
	for _, addr := range addrs[1:] {
		mustDo(t, addr, "CLUSTER", "MEET", host, port)
	}
	deadline := time.Now().Add(20 * time.Second)
	want := "cluster_known_nodes:" + strconv.Itoa(masters)
	for _, addr := range addrs {
		for {
			info, err := do(addr, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ready: %q, %v", addr, info, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return addrs
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redistest: %s not found on PATH; CI must install it (apt-get install redis-server)", name)
	}
	t.Skipf("redistest: %s not found on PATH, skipping; `make test` installs it", name)
	return ""
}

type node struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process was reaped
	err    error         // of cmd.Wait, valid after exited
}

// answers reports whether this node, and not another server that won a
// race for the port (tests start servers in parallel), answers on addr.
func (n *node) answers() bool {
	info, err := do(n.addr, "INFO", "server")
	return err == nil && strings.Contains(info, "\nprocess_id:"+strconv.Itoa(n.cmd.Process.Pid)+"\r\n")
}

func (n *node) stop() {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// startNode starts one server, retrying on a fresh port when the one picked
// was taken in the meantime, and registers its cleanup.
func startNode(t testing.TB, bin string, cluster bool) *node {
	t.Helper()
	var lastErr error
	for range startAttempts {
		port, err := freePort(cluster)
		if err != nil {
			lastErr = err
			continue
		}
		dir := t.TempDir()
		args := []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"),
		}
		if cluster {
			args = append(args,
				"--cluster-enabled", "yes",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
				"--cluster-node-timeout", "2000")
		}
		n, err := launch(bin, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir, args)
		if err != nil {
			lastErr = err
			continue
		}
		t.Cleanup(n.stop)
		return n
	}
	t.Fatalf("redistest: cannot start redis-server after %d attempts: %v", startAttempts, lastErr)
	return nil
}

func launch(bin, addr, dir string, args []string) (*node, error) {
	n := &node{addr: addr, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
	}()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-n.exited:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			return nil, fmt.Errorf("redis-server on %s exited (%v): %s", addr, n.err, lastLines(string(log), 5))
		default:
		}
		if n.answers() {
			return n, nil
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("redis-server on %s did not answer within %v", addr, startTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// freePort returns a port that was free a moment ago. For cluster nodes the
// port must stay below 65535-busOffset and its bus port must be free too.
func freePort(cluster bool) (int, error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := true
		if cluster {
			ok = port < 65535-busOffset
			if ok {
				bus, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+busOffset)))
				if ok = err == nil; ok {
					_ = bus.Close()
				}
			}
		}
		_ = l.Close()
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("no free port pair found")
}

func mustDo(t testing.TB, addr string, args ...string) {
	t.Helper()
	if _, err := do(addr, args...); err != nil {
		t.Fatalf("redistest: %s %v: %v", addr, args, err)
	}
}

// do sends one command over a fresh connection and returns a simple,
// integer or bulk string reply; an error reply becomes an error. It is just
// enough RESP for PING and the CLUSTER commands used here.
func do(addr string, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		size, err := strconv.Atoi(line[1:])
		if err != nil || size < 0 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:size]), nil
	default:
		return "", fmt.Errorf("unsupported reply %q", line)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
