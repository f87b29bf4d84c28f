package testnet

// A network of p2pchain node processes, as p2pchain testnet --processes and
// p2pchain bench --processes run it: each node is a child process of the
// p2pchain binary with its own data directory, ports and API, wired by a
// topology through the nodes' APIs (POST /api/v1/peers).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/p2pchain/p2pchain/internal/chain"
)

// ProcConfig says how to start a network of node processes.
type ProcConfig struct {
	Binary   string // the p2pchain executable (os.Executable for the running one)
	Nodes    int
	Topology Topology
	// Dir holds node i's data directory, Dir/node-i, and everything it
	// printed, Dir/node-i.log (and an authority network's file,
	// Dir/network.toml).
	Dir string
	// Params: the network's name and difficulty are passed to every node
	// (--network, --difficulty); an authority network takes its name and
	// reading limit.
	Params chain.Params
	// Authorities, if above 0, makes an authority network of the first
	// Authorities nodes, as NetworkConfig.Authorities does; the nodes run
	// it with --network-file.
	Authorities int
	// NetworkFile, if set, is the path of an authority network's file that
	// every node runs (--network-file), instead of one made by Authorities.
	NetworkFile string
	LogLevel    string        // the nodes' --log-level ("": warn)
	Parallel    int           // nodes started and links dialled at once (0: 4 per CPU, 8 to 32)
	Seed        uint64        // seed of the random topology (0: a random one)
	Timeout     time.Duration // for a node to start, and for the links to come up (0: 60 s)
	StopTimeout time.Duration // Close: from SIGTERM to SIGKILL (0: 10 s)
	// MaxProcs is each node process's GOMAXPROCS: 0 picks it by
	// SharedProcs (1 where the nodes outnumber the cores fourfold, else
	// the Go default); below 0 leaves it to the Go default whatever the
	// count.
	MaxProcs int
	// ProfileDir, if set, makes every node write a CPU profile of its run
	// there (--cpuprofile DIR/node-i.cpu.pprof, written when it stops), for
	// go tool pprof.
	ProfileDir string
}

// ProcNode is one node process of a ProcNetwork.
type ProcNode struct {
	Index int
	ID    string // libp2p peer ID
	Addr  string // TCP listen multiaddr with /p2p/ID: what other nodes dial
	API   string // API base URL, http://127.0.0.1:PORT
	Dir   string // data directory
	Log   string // file of its standard output and error

	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has exited and been waited for
}

// PID returns the node's process ID (0 if it is not running).
func (n *ProcNode) PID() int {
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// ProcNetwork is a running network of node processes.
type ProcNetwork struct {
	Nodes   []*ProcNode
	Links   [][2]int // the dials made (Topology.Links)
	Network string   // authority network: its network file ("" on proof of work)

	cfg         ProcConfig
	mu          sync.Mutex // guards the nodes' ID, Addr and API, which a restart changes, and partitioned
	partitioned bool       // between Partition and Heal
}

// StartProcs starts cfg.Nodes node processes, cfg.Parallel at a time, waits
// for each one's banner (peer ID, address, API), then connects them by
// cfg.Topology, each link through the dialling node's API. It does not wait
// for the links to be up: see WaitPeers. On error it stops what it started.
//
// The children are in process groups of their own, so that a Ctrl-C at the
// terminal reaches the parent only and the parent stops them in order; on
// Linux each one also gets SIGKILL if the parent dies (Pdeathsig), so a
// killed parent leaves no orphans.
func StartProcs(ctx context.Context, cfg ProcConfig) (_ *ProcNetwork, err error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("a network needs at least one node, not %d", cfg.Nodes)
	}
	if cfg.Binary == "" {
		return nil, errors.New("no p2pchain binary to run")
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = "warn"
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = min(max(4*runtime.NumCPU(), 8), 32)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.MaxProcs == 0 {
		cfg.MaxProcs = SharedProcs(cfg.Nodes, runtime.NumCPU())
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	pn := &ProcNetwork{cfg: cfg}
	defer func() {
		if err != nil {
			pn.Close()
		}
	}()
	switch {
	case cfg.NetworkFile != "":
		pn.Network = cfg.NetworkFile
	case cfg.Authorities > 0:
		if err := pn.writeNetworkFile(); err != nil {
			return nil, err
		}
	}
	pn.Nodes = make([]*ProcNode, cfg.Nodes)
	for i := range pn.Nodes {
		pn.Nodes[i] = &ProcNode{Index: i, Dir: filepath.Join(cfg.Dir, "node-"+strconv.Itoa(i)),
			Log: filepath.Join(cfg.Dir, "node-"+strconv.Itoa(i)+".log")}
	}
	if err := parallel(ctx, cfg.Nodes, cfg.Parallel, false, func(i int) error {
		if err := pn.start(ctx, pn.Nodes[i], false); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	pn.Links = cfg.Topology.Links(cfg.Nodes, rand.New(rand.NewPCG(seed, seed)))
	if err := pn.connect(ctx, pn.Links); err != nil {
		return nil, err
	}
	return pn, nil
}

// writeNetworkFile makes the authority network's file from the first
// Authorities nodes' identities (created in their data directories).
func (pn *ProcNetwork) writeNetworkFile() error {
	tmp := &Network{}
	f, err := tmp.authorityFile(NetworkConfig{Nodes: pn.cfg.Nodes, Dir: pn.cfg.Dir, Params: pn.cfg.Params, Authorities: pn.cfg.Authorities})
	if cerr := tmp.Close(); err == nil {
		err = cerr // unlock the directories for the processes
	}
	if err != nil {
		return err
	}
	pn.Network = filepath.Join(pn.cfg.Dir, "network.toml")
	return os.WriteFile(pn.Network, f.Encode(), 0o600)
}

// args returns the node command line of a node.
//
// With samePorts, a node that ran before listens on the TCP port (and QUIC
// on the same number) and serves its API on the port it had, so that its
// TCP address and API URL stay what the table printed (and its peers'
// records of them stay good).
func (pn *ProcNetwork) args(n *ProcNode, samePorts bool) []string {
	listen, api := "0", "127.0.0.1:0"
	if samePorts {
		pn.mu.Lock()
		addr, url := n.Addr, n.API
		pn.mu.Unlock()
		if p, err := TCPPort(addr); err == nil {
			listen = strconv.Itoa(p)
		}
		if _, port, err := net.SplitHostPort(strings.TrimPrefix(url, "http://")); err == nil {
			api = "127.0.0.1:" + port
		}
	}
	args := []string{"node", "--data", n.Dir, "-l", listen, "-ip", "127.0.0.1", "-api", api,
		"-mdns=false", "-dht=false", "--log-level", pn.cfg.LogLevel}
	if pn.cfg.ProfileDir != "" {
		args = append(args, "--cpuprofile", filepath.Join(pn.cfg.ProfileDir, filepath.Base(n.Dir)+".cpu.pprof"))
	}
	if pn.Network != "" {
		return append(args, "--network-file", pn.Network)
	}
	return append(args, "--network", pn.cfg.Params.Name, "--difficulty", strconv.Itoa(int(pn.cfg.Params.Difficulty)))
}

// SharedProcs is the GOMAXPROCS a node process gets when nodes node
// processes share cores cores: 1 where they outnumber the cores fourfold
// (each node's share is then a quarter of a core or less, and a Go runtime
// sized for every core spends its share spinning its idle threads and
// waking them: with 20 processes on 2 cores GOMAXPROCS=1 cut the CPU per
// node per block from 2.01 to 1.43 ms in a pair of runs; at 50 the effect
// was within the noise), else 0, the Go default (a node
// that has cores to itself checks a block's signatures on all of them). A
// container with a CPU limit gets the same from Go itself, which sizes
// GOMAXPROCS to the limit.
func SharedProcs(nodes, cores int) int {
	if nodes >= 4*cores {
		return 1
	}
	return 0
}

// childEnv is this process's environment without the P2PCHAIN_ settings
// that would change a node's (its peers, ports, data directory), so that
// every node runs with the flags given to it alone.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "P2PCHAIN_") && !strings.HasPrefix(kv, "P2PCHAIN_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// start starts a node's process and waits for its banner.
func (pn *ProcNetwork) start(ctx context.Context, n *ProcNode, samePorts bool) error {
	logf, err := os.OpenFile(n.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		logf.Close()
		return err
	}
	cmd := exec.Command(pn.cfg.Binary, pn.args(n, samePorts)...)
	cmd.Env = childEnv()
	if pn.cfg.MaxProcs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(pn.cfg.MaxProcs))
	}
	cmd.Stdout, cmd.Stderr = w, w // stdin: /dev/null, so the node shows no prompt
	cmd.SysProcAttr = childAttr()
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		logf.Close()
		return err
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	banner := make(chan ProcNode, 1)
	go func() {
		defer logf.Close()
		defer r.Close()
		readBanner(r, logf, banner)
	}()
	go func() {
		_ = cmd.Wait()
		close(n.exited)
	}()
	t := time.NewTimer(pn.cfg.Timeout)
	defer t.Stop()
	select {
	case b := <-banner:
		pn.mu.Lock()
		n.ID, n.Addr, n.API = b.ID, b.Addr, b.API
		pn.mu.Unlock()
		return nil
	case <-n.exited:
		return fmt.Errorf("exited before it was ready (%s); its output:\n%s", cmd.ProcessState, tail(n.Log, 10))
	case <-t.C:
		err = fmt.Errorf("not ready after %v; its output:\n%s", pn.cfg.Timeout, tail(n.Log, 10))
	case <-ctx.Done():
		err = ctx.Err()
	}
	n.stop(time.Second)
	return err
}

// readBanner copies a node's output to log line by line and sends its peer
// ID, TCP address and API URL on banner once it has printed all three
// (see printBanner in cmd/p2pchain).
func readBanner(r io.Reader, log io.Writer, banner chan<- ProcNode) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	var b ProcNode
	sent := false
	for s.Scan() {
		line := s.Text()
		_, _ = fmt.Fprintln(log, line)
		if sent {
			continue
		}
		switch {
		case strings.HasPrefix(line, "p2pchain node ") && b.ID == "":
			b.ID = strings.TrimPrefix(line, "p2pchain node ")
		case strings.HasPrefix(line, "  /ip4/") && strings.Contains(line, "/tcp/") && b.Addr == "":
			b.Addr = strings.TrimSpace(line)
		case strings.HasPrefix(line, "explorer and API: "):
			b.API = strings.TrimSuffix(strings.TrimPrefix(line, "explorer and API: "), "/")
		}
		if b.ID != "" && b.Addr != "" && b.API != "" {
			banner <- b
			sent = true
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// stop sends SIGTERM to a node's process, then SIGKILL if it has not exited
// within timeout, and waits for it.
func (n *ProcNode) stop(timeout time.Duration) {
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(timeout):
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// Kill kills node i at once (SIGKILL), as a crash would.
func (pn *ProcNetwork) Kill(i int) {
	n := pn.Nodes[i]
	if n.cmd != nil {
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
}

// Running reports whether node i's process is running.
func (pn *ProcNetwork) Running(i int) bool {
	n := pn.Nodes[i]
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Exits returns a channel that receives, for each node process that exits
// from now until ctx ends, an error naming the node, its process ID, how
// it exited and the end of its log: a measurement that needs every node
// stops at the first (Meters.Down, ThroughputConfig.Down). The channel
// holds one error per node, so nothing waits for a reader.
func (pn *ProcNetwork) Exits(ctx context.Context) <-chan error {
	out := make(chan error, len(pn.Nodes))
	for _, n := range pn.Nodes {
		cmd, exited := n.cmd, n.exited
		if cmd == nil {
			continue
		}
		go func() {
			select {
			case <-exited:
				out <- fmt.Errorf("node %d (pid %d) exited: %s; the end of its log (%s):\n%s",
					n.Index, cmd.Process.Pid, cmd.ProcessState, filepath.Base(n.Log), tail(n.Log, 10))
			case <-ctx.Done():
			}
		}()
	}
	return out
}

// Stop stops node i (SIGTERM, then SIGKILL after the stop timeout).
func (pn *ProcNetwork) Stop(i int) { pn.Nodes[i].stop(pn.cfg.StopTimeout) }

// Restart starts node i again (stopping it first if it runs) with its data
// directory, on its TCP and API ports where they are still free (its
// address and API URL stay), and dials its links again. It comes back in
// the network's state of now, whatever it was when the node went down: while
// partitioned it blocks the other half and dials only its links within its
// half (the others block it already, or skipped it and so never blocked
// it); otherwise it dials all its links (its block list, in the memory of
// the process that stopped, is gone, and a Heal unblocked it at the others).
// Links to nodes that are not running are left to those nodes' restarts.
func (pn *ProcNetwork) Restart(ctx context.Context, i int) error {
	pn.Stop(i)
	if err := pn.start(ctx, pn.Nodes[i], pn.portsFree(pn.Nodes[i])); err != nil {
		return fmt.Errorf("node %d: %w", i, err)
	}
	pn.mu.Lock()
	partitioned := pn.partitioned
	pn.mu.Unlock()
	var links [][2]int
	for _, l := range pn.Links {
		// A link to a node that is not running is dialled when that
		// node restarts (a link dialled by it goes through its API).
		other := l[0] + l[1] - i
		if (l[0] == i || l[1] == i) && !(partitioned && crosses(len(pn.Nodes), l)) && pn.Running(other) {
			links = append(links, l)
		}
	}
	if partitioned {
		// Its block list was in the memory of the process that stopped.
		if err := pn.blockOthers(ctx, i, "block"); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	return pn.connect(ctx, links)
}

func crosses(n int, l [2]int) bool { return len(CrossLinks(n, [][2]int{l})) == 1 }

// maxIDsPerRequest is how many peer IDs a block or unblock request carries:
// its body must stay under the API's limit (4 KiB).
const maxIDsPerRequest = 50

// blockOthers asks node i to block (op "block") or unblock ("unblock") the
// nodes of the other half, through POST /api/v1/peers/block or unblock.
func (pn *ProcNetwork) blockOthers(ctx context.Context, i int, op string) error {
	pn.mu.Lock()
	api := pn.Nodes[i].API
	var ids []string
	for _, j := range otherHalf(len(pn.Nodes), i) {
		ids = append(ids, pn.Nodes[j].ID)
	}
	pn.mu.Unlock()
	for len(ids) > 0 {
		k := min(len(ids), maxIDsPerRequest)
		body, _ := json.Marshal(map[string][]string{"peer_ids": ids[:k]})
		if err := postJSON(ctx, api+"/api/v1/peers/"+op, body, nil); err != nil {
			return err
		}
		ids = ids[k:]
	}
	return nil
}

// Partition cuts the network in two (Halves), as Network.Partition does,
// through the nodes' APIs (POST /api/v1/peers/block), Parallel nodes at a
// time. It returns the links it cut and the nodes it skipped because they
// were not running. Every running node is asked, whatever the others
// answer; the error names each node that failed. A node restarted before
// Heal (one skipped here included) blocks the other half again and dials
// only its links within its half.
func (pn *ProcNetwork) Partition(ctx context.Context) (cut [][2]int, skipped []int, err error) {
	n := len(pn.Nodes)
	if n < 2 {
		return nil, nil, errFewNodes(n)
	}
	pn.mu.Lock()
	pn.partitioned = true
	pn.mu.Unlock()
	skipped, err = pn.blockAll(ctx, "block")
	return CrossLinks(n, pn.Links), skipped, err
}

// Heal undoes Partition through the nodes' APIs: every running node
// unblocks the other half (POST /api/v1/peers/unblock), then the links that
// cross the cut between running nodes are dialled again, even where some
// unblock failed. It returns those links and the nodes it skipped because
// they were not running: restarted, such a node dials all its links (its
// block list was in the memory of the process that stopped).
func (pn *ProcNetwork) Heal(ctx context.Context) (dialled [][2]int, skipped []int, err error) {
	n := len(pn.Nodes)
	if n < 2 {
		return nil, nil, errFewNodes(n)
	}
	pn.mu.Lock()
	pn.partitioned = false
	pn.mu.Unlock()
	skipped, err = pn.blockAll(ctx, "unblock")
	for _, l := range CrossLinks(n, pn.Links) {
		if pn.Running(l[0]) && pn.Running(l[1]) {
			dialled = append(dialled, l)
		}
	}
	return dialled, skipped, errors.Join(err, pn.connect(ctx, dialled))
}

// blockAll runs blockOthers with op on every running node, Parallel at a
// time, and returns the nodes it skipped because they were not running.
func (pn *ProcNetwork) blockAll(ctx context.Context, op string) (skipped []int, err error) {
	for i := range pn.Nodes {
		if !pn.Running(i) {
			skipped = append(skipped, i)
		}
	}
	err = parallel(ctx, len(pn.Nodes), pn.cfg.Parallel, true, func(i int) error {
		if !pn.Running(i) {
			return nil
		}
		if err := pn.blockOthers(ctx, i, op); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
		return nil
	})
	return skipped, err
}

// Close stops every node: SIGTERM to all at once, then SIGKILL to those
// still running after the stop timeout. It waits for every process.
func (pn *ProcNetwork) Close() error {
	var wg sync.WaitGroup
	for _, n := range pn.Nodes {
		if n == nil || n.cmd == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop(pn.cfg.StopTimeout)
		}()
	}
	wg.Wait()
	return nil
}

// connect dials links ([i, j]: node i dials node j) through the dialling
// nodes' APIs, Parallel at a time, every one whatever the others' dials
// return.
func (pn *ProcNetwork) connect(ctx context.Context, links [][2]int) error {
	return parallel(ctx, len(links), pn.cfg.Parallel, true, func(k int) error {
		l := links[k]
		var err error
		pn.mu.Lock()
		api, addr := pn.Nodes[l[0]].API, pn.Nodes[l[1]].Addr
		pn.mu.Unlock()
		for try := 1; ; try++ { // a dial can fail while the other node is busy starting
			if err = postPeer(ctx, api, addr); err == nil || ctx.Err() != nil || try == 3 {
				break
			}
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("node %d dialing node %d: %w", l[0], l[1], err)
		}
		return nil
	})
}

var apiClient = &http.Client{Timeout: 30 * time.Second}

// postPeer asks the node at api to connect to addr (POST /api/v1/peers).
func postPeer(ctx context.Context, api, addr string) error {
	body, _ := json.Marshal(map[string]string{"addr": addr})
	return postJSON(ctx, api+"/api/v1/peers", body, nil)
}

// postJSON posts body and decodes a 2xx answer into out (if not nil).
func postJSON(ctx context.Context, url string, body []byte, out any) error {
	return postJSONWith(ctx, apiClient, url, body, out)
}

// postJSONWith is postJSON through client.
func postJSONWith(ctx context.Context, client *http.Client, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// getJSON decodes the JSON answer of GET url into out.
func getJSON(ctx context.Context, url string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// APIStatus is the part of GET /api/v1/status the harness reads.
type APIStatus struct {
	PeerID string `json:"peer_id"`
	Height uint64 `json:"height"`
	Peers  int    `json:"peers"`
}

// Status asks every node for its status, Parallel at a time.
func (pn *ProcNetwork) Status(ctx context.Context) ([]APIStatus, error) {
	apis := pn.APIs()
	out := make([]APIStatus, len(apis))
	err := parallel(ctx, len(apis), pn.cfg.Parallel, false, func(i int) error {
		return getJSON(ctx, apis[i]+"/api/v1/status", &out[i])
	})
	return out, err
}

// portsFree reports whether the ports node n had (its TCP listen port, the
// same number for QUIC over UDP, its API port) can be bound again: a
// restart then takes them (args); if another process took one meanwhile,
// the node starts on new ones.
func (pn *ProcNetwork) portsFree(n *ProcNode) bool {
	pn.mu.Lock()
	addr, url := n.Addr, n.API
	pn.mu.Unlock()
	port, err := TCPPort(addr)
	if err != nil {
		return false
	}
	p := strconv.Itoa(port)
	apiAddr := strings.TrimPrefix(url, "http://")
	for _, try := range []func() (io.Closer, error){
		func() (io.Closer, error) { return net.Listen("tcp", "127.0.0.1:"+p) },
		func() (io.Closer, error) { return net.ListenPacket("udp", "127.0.0.1:"+p) },
		func() (io.Closer, error) { return net.Listen("tcp", apiAddr) },
	} {
		c, err := try()
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// TCPPorts returns the nodes' libp2p TCP listen ports (for WireMeter).
func (pn *ProcNetwork) TCPPorts() ([]int, error) {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	out := make([]int, len(pn.Nodes))
	for i, n := range pn.Nodes {
		p, err := TCPPort(n.Addr)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
		out[i] = p
	}
	return out, nil
}

// Degrees returns how many peers each node has once every link is up.
func (pn *ProcNetwork) Degrees() []int {
	return degrees(len(pn.Nodes), pn.Links)
}

// WaitPeers waits until every node reports at least the peers its links
// give it, for at most the start timeout.
func (pn *ProcNetwork) WaitPeers(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, pn.cfg.Timeout)
	defer cancel()
	want := pn.Degrees()
	for {
		st, err := pn.Status(ctx)
		if err == nil {
			var short []string
			for i, s := range st {
				if s.Peers < want[i] {
					short = append(short, fmt.Sprintf("node %d: %d of %d", i, s.Peers, want[i]))
				}
			}
			if len(short) == 0 {
				return nil
			}
			err = fmt.Errorf("peers not all connected (%s)", strings.Join(short[:min(len(short), 10)], ", "))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// APIs returns the nodes' API URLs.
func (pn *ProcNetwork) APIs() []string {
	pn.mu.Lock()
	defer pn.mu.Unlock()
	out := make([]string, len(pn.Nodes))
	for i, n := range pn.Nodes {
		out[i] = n.API
	}
	return out
}

// HTTPLoad submits readings through nodes' APIs at a steady rate.
type HTTPLoad struct {
	done                           chan struct{}
	submitted, failed, unreachable atomic.Int64
	mu                             sync.Mutex
	lastErr, lastUnreachable       error
}

// StartHTTPLoad posts perSecond readings a second (subject "load", heart
// rates cycling from 60 to 119) to the nodes in turn until ctx ends, from
// up to 16 requests at once. apis is asked for the nodes' API URLs before
// each request, so a node restarted on other ports is still reached.
func StartHTTPLoad(ctx context.Context, apis func() []string, perSecond float64) *HTTPLoad {
	l := &HTTPLoad{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		defer wg.Wait()
		pace(ctx, perSecond, func(k int) bool {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return false
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				body := fmt.Appendf(nil, `{"subject":"load","bpm":%d}`, 60+k%60)
				urls := apis()
				if err := postJSON(ctx, urls[k%len(urls)]+"/api/v1/readings", body, nil); err != nil {
					if ctx.Err() != nil {
						return
					}
					// A connection refused (nothing listens: a node
					// down) is no refusal by a node. A timeout or a reset
					// may have met a node that took the reading: counted
					// as failed, with its error.
					l.mu.Lock()
					if errors.Is(err, syscall.ECONNREFUSED) {
						l.unreachable.Add(1)
						l.lastUnreachable = err
					} else {
						l.failed.Add(1)
						l.lastErr = err
					}
					l.mu.Unlock()
					return
				}
				l.submitted.Add(1)
			}()
			return true
		})
	}()
	return l
}

// Wait waits until the load has stopped.
func (l *HTTPLoad) Wait() { <-l.done }

// Stats counts the readings accepted, refused and sent to no node that
// answered so far (Confirmed is not counted: 0).
func (l *HTTPLoad) Stats() LoadStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return LoadStats{Submitted: int(l.submitted.Load()), Failed: int(l.failed.Load()), LastErr: l.lastErr,
		Unreachable: int(l.unreachable.Load()), LastUnreachable: l.lastUnreachable}
}

// parallel runs f(0) to f(n-1), at most limit at once, until ctx ends.
// With all false it starts no more once one failed, and returns the first
// error (in order); with all true every one runs whatever the others
// return, and their errors come back in order as one: the first three,
// and how many more failed.
func parallel(ctx context.Context, n, limit int, all bool, f func(i int) error) error {
	errs := make([]error, n)
	var failed atomic.Bool
	sem := make(chan struct{}, max(limit, 1))
	var wg sync.WaitGroup
	for i := 0; i < n && ctx.Err() == nil && (all || !failed.Load()); i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if errs[i] = f(i); errs[i] != nil {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	var got []error
	for _, err := range errs {
		if err != nil {
			got = append(got, err)
		}
	}
	switch {
	case len(got) == 0:
		return ctx.Err()
	case !all:
		return got[0]
	case len(got) > 3:
		got = append(got[:3], fmt.Errorf("and %d more failed", len(got)-3))
	}
	return errors.Join(got...)
}

// MaxProcs is the GOMAXPROCS the node processes run with (0: Go's
// default), as ProcConfig.MaxProcs resolved.
func (pn *ProcNetwork) MaxProcs() int { return max(pn.cfg.MaxProcs, 0) }

// CPU returns a CPU function for MeasurePropagation that sums the CPU time
// (user and system) of the network's running node processes, read from
// /proc/PID/stat (ProcessCPUTime): unlike ProcessCPU it costs the nodes
// nothing (a scrape of /metrics costs each node milliseconds of encoding and
// compression, inside the window it measures). The resolution is the
// kernel's clock tick. Where there is no /proc (not Linux) it is
// ProcessCPU of the nodes' /metrics.
func (pn *ProcNetwork) CPU() func(context.Context) (float64, error) {
	if runtime.GOOS != "linux" {
		return ProcessCPU(pn.APIs())
	}
	return func(context.Context) (float64, error) {
		pn.mu.Lock()
		pids := make([]int, 0, len(pn.Nodes))
		for _, n := range pn.Nodes {
			if pid := n.PID(); pid > 0 {
				pids = append(pids, pid)
			}
		}
		pn.mu.Unlock()
		sum, err := ProcessesCPUTime(pids)
		return sum.Seconds(), err
	}
}

// ProcessesCPUTime sums ProcessCPUTime over pids (what it could read, and
// the first error).
func ProcessesCPUTime(pids []int) (time.Duration, error) {
	var sum time.Duration
	for _, pid := range pids {
		d, err := ProcessCPUTime(pid)
		if err != nil {
			return sum, err
		}
		sum += d
	}
	return sum, nil
}
