package p2p_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/multiformats/go-multiaddr"

	"github.com/p2pchain/p2pchain/internal/p2p"
	"github.com/p2pchain/p2pchain/internal/testnet"
)

// BenchmarkGossipFloor measures what go-libp2p's GossipSub alone costs, on
// the shape of `p2pchain bench propagation --processes`: N processes on
// 127.0.0.1 (TCP, Noise, yamux; GossipSub with the node's options: no
// author, content message ids), each dialling 3 random earlier ones, with
// GOMAXPROCS=1 when they outnumber the cores fourfold; a message of 430
// bytes (a one-reading block's size) published at a random process, timed
// until every process's subscription delivered it (each says so on a pipe,
// as a node's event stream tells the bench), one message at a time. Its
// validator accepts at once: no decoding, no checks, no store, no API. So
// its figures are a floor under the node's: what the network stack costs
// before the node does any work.
//
//	go test -run '^$' -bench GossipFloor -benchtime 100x ./internal/p2p
func BenchmarkGossipFloor(b *testing.B) {
	for _, n := range []int{20, 50} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { gossipFloor(b, n, false) })
	}
}

// BenchmarkGossipFloorSynced is BenchmarkGossipFloor with one durable write
// before each relay: every process's validator appends the message to a
// file of its own and syncs it (fsync) before it accepts, as a node writes
// a block durably before it relays it. The difference from the floor is
// what that write costs the network, without the rest of the node.
//
//	go test -run '^$' -bench GossipFloorSynced -benchtime 100x ./internal/p2p
func BenchmarkGossipFloorSynced(b *testing.B) {
	for _, n := range []int{20, 50} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) { gossipFloor(b, n, true) })
	}
}

// TestGossipFloorChild is one process of BenchmarkGossipFloor; it skips
// unless the benchmark started it.
func TestGossipFloorChild(t *testing.T) {
	if os.Getenv("P2PCHAIN_GOSSIP_FLOOR_CHILD") == "" {
		t.Skip("a helper process of BenchmarkGossipFloor")
	}
	ctx := context.Background()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Security(noise.ID, noise.New), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	ps, err := pubsub.NewGossipSub(ctx, h, p2p.GossipOptions(1<<20)...)
	if err != nil {
		t.Fatal(err)
	}
	accept := func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
		return pubsub.ValidationAccept
	}
	if path := os.Getenv("P2PCHAIN_GOSSIP_FLOOR_SYNC"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		var fmu sync.Mutex
		accept = func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
			fmu.Lock()
			defer fmu.Unlock()
			if _, err := f.Write(m.Data); err != nil {
				return pubsub.ValidationIgnore
			}
			if err := f.Sync(); err != nil {
				return pubsub.ValidationIgnore
			}
			return pubsub.ValidationAccept
		}
	}
	if err := ps.RegisterTopicValidator("floor", accept); err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join("floor")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	say := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		_, _ = out.WriteString(s + "\n")
		_ = out.Flush()
	}
	say(fmt.Sprintf("addr %s/p2p/%s", h.Addrs()[0], h.ID()))
	go func() {
		for {
			m, err := sub.Next(ctx)
			if err != nil {
				return
			}
			say("got " + strings.Fields(string(m.Data))[0])
		}
	}()
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 2 && f[0] == "dial":
			ai, err := peer.AddrInfoFromP2pAddr(multiaddr.StringCast(f[1]))
			if err == nil {
				err = h.Connect(ctx, *ai)
			}
			if err != nil {
				say("error " + err.Error())
			}
		case len(f) == 2 && f[0] == "pub":
			if err := topic.Publish(ctx, []byte(f[1]+" "+strings.Repeat("x", 430-len(f[1])-1))); err != nil {
				say("error " + err.Error())
			}
		}
	}
	os.Exit(0) // the benchmark closed our stdin: done
}

type floorProc struct {
	cmd  *exec.Cmd
	in   *bufio.Writer
	addr string
}

func gossipFloor(b *testing.B, n int, synced bool) {
	b.StopTimer()
	dir := b.TempDir()
	events := make(chan [2]string, 1<<16) // process, line
	procs := make([]*floorProc, n)
	env := append(os.Environ(), "P2PCHAIN_GOSSIP_FLOOR_CHILD=1")
	if mp := testnet.SharedProcs(n, runtime.NumCPU()); mp > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(mp))
	}
	for i := range procs {
		c := exec.Command(os.Args[0], "-test.run=^TestGossipFloorChild$")
		c.Env = env
		if synced {
			c.Env = append(slices.Clone(env), "P2PCHAIN_GOSSIP_FLOOR_SYNC="+filepath.Join(dir, strconv.Itoa(i)))
		}
		w, err := c.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		r, err := c.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		p := &floorProc{cmd: c, in: bufio.NewWriter(w)}
		b.Cleanup(func() { _ = w.Close(); _ = c.Wait() })
		sc := bufio.NewScanner(r)
		if !sc.Scan() || !strings.HasPrefix(sc.Text(), "addr ") {
			b.Fatalf("process %d: %q, want its address", i, sc.Text())
		}
		p.addr = strings.TrimPrefix(sc.Text(), "addr ")
		go func() {
			for sc.Scan() {
				events <- [2]string{strconv.Itoa(i), sc.Text()}
			}
		}()
		procs[i] = p
	}
	send := func(p *floorProc, line string) {
		_, _ = p.in.WriteString(line + "\n")
		_ = p.in.Flush()
	}
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for i := 1; i < n; i++ {
		for _, j := range rng.Perm(i)[:min(3, i)] {
			send(procs[i], "dial "+procs[j].addr)
		}
	}
	time.Sleep(5 * time.Second) // dials, then GossipSub's meshes (a heartbeat a second)
	for drained := false; !drained; {
		select {
		case e := <-events:
			if strings.HasPrefix(e[1], "error") {
				b.Fatalf("process %s: %s", e[0], e[1])
			}
		default:
			drained = true
		}
	}
	pids := make([]int, len(procs))
	for i, p := range procs {
		pids[i] = p.cmd.Process.Pid
	}
	cpu := func() time.Duration {
		sum, err := testnet.ProcessesCPUTime(pids)
		if err != nil {
			b.Skipf("no process CPU time here: %v", err)
		}
		return sum
	}
	var ports []int
	for _, p := range procs {
		port, err := testnet.TCPPort(p.addr)
		if err != nil {
			b.Fatal(err)
		}
		ports = append(ports, port)
	}
	wire := testnet.WireMeter(ports)
	wire0, wireErr := wire(context.Background())
	cpu0 := cpu()
	b.StartTimer()
	lat := make([]time.Duration, 0, b.N)
	for m := range b.N {
		start := time.Now()
		send(procs[rng.IntN(n)], "pub "+strconv.Itoa(m))
		want, got := "got "+strconv.Itoa(m), 0
		timeout := time.After(30 * time.Second)
		for got < n {
			select {
			case e := <-events:
				if e[1] == want {
					got++
				} else if strings.HasPrefix(e[1], "error") {
					b.Fatalf("process %s: %s", e[0], e[1])
				}
			case <-timeout:
				b.Fatalf("message %d reached %d of %d processes in 30 s", m, got, n)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cpu1 := cpu()
	if wireErr == nil {
		// The bytes on the wire the same way bench propagation counts them
		// (TCP payload between the processes), for comparison with its
		// wire_bytes_per_node_per_block.
		if wire1, err := wire(context.Background()); err == nil {
			bytes, _ := wire1.Since(wire0)
			b.ReportMetric(float64(bytes)/float64(n*b.N), "wire-bytes/node/msg")
		}
	}
	b.ReportMetric(testnet.Percentile(lat, 0.50), "p50-ms")
	b.ReportMetric(testnet.Percentile(lat, 0.99), "p99-ms")
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/float64(n*b.N), "cpu-ms/node/msg")
}
