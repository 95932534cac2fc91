package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hotswap/hotswap"
	"github.com/hotswap/hotswap/internal/pgtest"
)

// clusterSwap is a swap's answer, with the nodes that did not follow.
type clusterSwap struct {
	Phase            string
	SourceDeployment string
	TargetDeployment string
	LaggingNodes     []string
}

// TestClusterSwapsAndDeploys runs three nodes on one PostgreSQL store behind
// HAProxy, which health-checks GET /healthz, under steady load of 64
// keep-alive clients: 20 swaps and 5 deploys through the nodes in turn, each
// followed by every node serving the new deployment at once; a SIGKILL of
// one node, after which everything stored is still there through the
// others; and a rolling restart of all three (drain, stop, start again,
// rejoin). Not one GET may fail throughout.
func TestClusterSwapsAndDeploys(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	lb := pgtest.HAProxy(t, c.backends())
	for i := range c.nodes {
		lb.WaitStatus(t, i, "UP")
	}
	a := c.nodes[0].api()
	a.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "web"}, nil)
	a.must(http.StatusCreated, "POST", "/api/v1/apps/web/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "envapp"))
	prod := a.deploy("web", "production", pkg)
	staging := c.nodes[1].api().deploy("web", "staging", pkg)
	everyNodeServes := func(after string) {
		t.Helper()
		for _, nd := range c.nodes {
			nd.serves("web.localhost", prod, after)
			nd.serves("web-staging.localhost", staging, after)
		}
	}
	everyNodeServes("the first deploys")

	ld := startLoad(lb.Addr, "web.localhost", "/api/whoami", 64, 50*time.Millisecond)
	t.Cleanup(ld.stop)
	// POSTs beside them: HAProxy retries those only when they never
	// reached a node, so a node killed mid-request fails them (counted
	// and reported); anything else must not.
	posts := startLoadMethod("POST", lb.Addr, "web.localhost", "/api/whoami", 8, 50*time.Millisecond)
	t.Cleanup(posts.stop)
	time.Sleep(time.Second)

	// 20 swaps and 5 deploys, each through another node than the last.
	deploys := 0
	for i := 0; i < 20; i++ {
		if i%4 == 0 {
			nd := c.nodes[(i+1)%3]
			staging = nd.api().deploy("web", "staging", pkg)
			deploys++
			everyNodeServes(fmt.Sprintf("deploy %d to staging through %s", deploys, nd.name))
		}
		nd := c.nodes[i%3]
		var r clusterSwap
		start := time.Now()
		nd.api().must(http.StatusOK, "POST", "/api/v1/apps/web/swap", map[string]any{"slot": "staging"}, &r)
		if r.Phase != "completed" || len(r.LaggingNodes) != 0 {
			t.Fatalf("swap %d through %s = %+v, want completed and followed by every node", i+1, nd.name, r)
		}
		prod, staging = staging, prod
		everyNodeServes(fmt.Sprintf("swap %d through %s (took %s)", i+1, nd.name, time.Since(start).Round(time.Millisecond)))
	}
	ld.check(t, "the end of the swaps and deploys")
	posts.check(t, "the end of the swaps and deploys")
	t.Logf("20 swaps and %d deploys: %d GETs, none failed", deploys, ld.ok.Load())

	// SIGKILL one node mid-load: HAProxy's retries hide it from the GETs,
	// and what is stored stays readable through the others.
	keys := a.keys("web", "production")
	deps := deploymentIDs(a, "web")
	victim := c.nodes[2]
	victimID := victim.nodeID()
	victim.kill()
	lb.WaitStatus(t, 2, "DOWN")
	time.Sleep(2 * time.Second) // load on the survivors alone
	ld.check(t, "the SIGKILL of n2")
	postsLost := posts.allow()
	t.Logf("SIGKILL of n2 mid-load: 0 GETs failed (HAProxy retried them on the other nodes); %d of %d POSTs failed (not retried once they reached a node, so none runs twice)", postsLost, posts.ok.Load()+posts.failed.Load())
	for _, nd := range c.nodes[:2] {
		api := nd.api()
		var apps struct{ Apps []struct{ Name string } }
		api.must(http.StatusOK, "GET", "/api/v1/apps", nil, &apps)
		if len(apps.Apps) != 1 || apps.Apps[0].Name != "web" {
			t.Errorf("after the SIGKILL of n2: node %s lists apps %+v, want web", nd.name, apps.Apps)
		}
		if got := api.slotDeployment("web", "production"); got != prod {
			t.Errorf("after the SIGKILL of n2: node %s says production has %s, want %s", nd.name, got, prod)
		}
		if got := api.slotDeployment("web", "staging"); got != staging {
			t.Errorf("after the SIGKILL of n2: node %s says staging has %s, want %s", nd.name, got, staging)
		}
		if diff := cmp.Diff(keys, api.keys("web", "production")); diff != "" {
			t.Errorf("after the SIGKILL of n2: node %s has other production keys (-before +after):\n%s", nd.name, diff)
		}
		if diff := cmp.Diff(deps, deploymentIDs(api, "web")); diff != "" {
			t.Errorf("after the SIGKILL of n2: node %s lists other deployments (-before +after):\n%s", nd.name, diff)
		}
		nd.serves("web.localhost", prod, "the SIGKILL of n2")
	}
	// A swap goes on without the dead node; at most that node lags.
	var r clusterSwap
	start := time.Now()
	a.must(http.StatusOK, "POST", "/api/v1/apps/web/swap", map[string]any{"slot": "staging"}, &r)
	if r.Phase != "completed" || slices.ContainsFunc(r.LaggingNodes, func(label string) bool { return !strings.Contains(label, victimID) }) {
		t.Fatalf("swap through n0 with n2 (%s) dead = %+v, want completed, lagging at most n2", victimID, r)
	}
	prod, staging = staging, prod
	t.Logf("swap with n2 dead took %s, lagging %v", time.Since(start).Round(time.Millisecond), r.LaggingNodes)
	for _, nd := range c.nodes[:2] {
		nd.serves("web.localhost", prod, "the swap with n2 dead")
		nd.serves("web-staging.localhost", staging, "the swap with n2 dead")
	}
	victim.start()
	lb.WaitStatus(t, 2, "UP")
	everyNodeServes("the restart of n2")
	ld.check(t, "the restart of n2")
	posts.check(t, "the restart of n2")

	// Rolling upgrade: each node in turn drains (through the API, or
	// SIGTERM), stops, starts again and rejoins.
	for i, nd := range c.nodes {
		how := "SIGTERM"
		if i == 1 {
			nd.signal(syscall.SIGTERM)
		} else {
			how = "POST /api/v1/node/drain"
			var res struct{ Node, State string }
			nd.api().must(http.StatusAccepted, "POST", "/api/v1/node/drain", nil, &res)
			if res.State != "draining" {
				t.Errorf("drain of %s answered %+v, want state draining", nd.name, res)
			}
			// During the drain delay the node still listens, and says no.
			if resp, err := http.Get("http://" + nd.fnAddr + "/healthz"); err == nil {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("draining node %s: GET /healthz = %d %s, want 503", nd.name, resp.StatusCode, body)
				}
			}
		}
		nd.waitExit(60 * time.Second)
		lb.WaitStatus(t, i, "DOWN")
		ld.check(t, fmt.Sprintf("the drain of %s (%s)", nd.name, how))
		posts.check(t, fmt.Sprintf("the drain of %s (%s)", nd.name, how))
		nd.start()
		lb.WaitStatus(t, i, "UP")
		everyNodeServes("the restart of " + nd.name)
		ld.check(t, "the restart of "+nd.name)
		posts.check(t, "the restart of "+nd.name)
	}
	// The upgraded cluster still swaps.
	a = c.nodes[0].api()
	a.must(http.StatusOK, "POST", "/api/v1/apps/web/swap", map[string]any{"slot": "staging"}, &r)
	if r.Phase != "completed" || len(r.LaggingNodes) != 0 {
		t.Fatalf("swap after the rolling upgrade = %+v, want completed and followed by every node", r)
	}
	prod, staging = staging, prod
	everyNodeServes("the swap after the rolling upgrade")
	ld.stop()
	posts.stop()
	ld.check(t, "the end")
	posts.check(t, "the end")
	t.Logf("%d GETs through HAProxy, none failed; %d POSTs, %d failed, all at the SIGKILL\n%s", ld.ok.Load(), posts.ok.Load()+posts.failed.Load(), postsLost, lbDump(lb))
}

// deploymentIDs lists the IDs of app's deployments, sorted.
func deploymentIDs(s *server, app string) []string {
	s.t.Helper()
	var res struct{ Deployments []struct{ ID string } }
	s.must(http.StatusOK, "GET", "/api/v1/apps/"+app+"/deployments", nil, &res)
	var ids []string
	for _, d := range res.Deployments {
		ids = append(ids, d.ID)
	}
	sort.Strings(ids)
	return ids
}

var (
	timerPkgOnce sync.Once
	timerPkgDir  string
	timerPkgErr  error
)

// clusterTimerPackage returns a folder holding testdata/clustertimer with
// its handler built, once per test process.
func clusterTimerPackage(t testing.TB) string {
	t.Helper()
	timerPkgOnce.Do(func() {
		if timerPkgDir, timerPkgErr = os.MkdirTemp("", "hotswap-clustertimer-"); timerPkgErr != nil {
			return
		}
		src := filepath.Join(repoRoot(), "cmd", "hotswap", "testdata", "clustertimer")
		if timerPkgErr = os.CopyFS(filepath.Join(timerPkgDir, "pkg"), os.DirFS(src)); timerPkgErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(timerPkgDir, "pkg", "handler"), "./cmd/hotswap/testdata/clustertimer")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			timerPkgErr = fmt.Errorf("build clustertimer: %v\n%s", err, out)
		}
	})
	if timerPkgErr != nil {
		t.Fatal(timerPkgErr)
	}
	return filepath.Join(timerPkgDir, "pkg")
}

// tickRecord is one run of the clustertimer handler's timer.
type tickRecord struct {
	Next, Last, Received string
	PastDue              bool
	PID                  int
	Ancestors            []int

	occurrence time.Time // Next less the one-second period
	node       string    // the node whose handler ran it
}

// readTicks reads the timer runs recorded so far and tells which node made
// each.
func readTicks(t *testing.T, c *cluster, path string) []tickRecord {
	t.Helper()
	owner := map[int]string{}
	for _, nd := range c.nodes {
		for _, pid := range nd.allPIDs() {
			owner[pid] = nd.name
		}
	}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []tickRecord
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		var r tickRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v: %q", path, n, err, sc.Text())
		}
		next, err := time.Parse(time.RFC3339Nano, r.Next)
		if err != nil {
			t.Fatalf("%s:%d: ScheduleStatus.Next %q: %v", path, n, r.Next, err)
		}
		r.occurrence = next.Add(-time.Second)
		r.node = "unknown (ancestors " + fmt.Sprint(r.Ancestors) + ")"
		for _, pid := range r.Ancestors {
			if name, ok := owner[pid]; ok {
				r.node = name
				break
			}
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestClusterTimerExactlyOnce runs a one-second timer on three nodes for
// two minutes and SIGKILLs the node that fires it halfway: every occurrence
// runs exactly once across the cluster, none twice, none missed.
func TestClusterTimerExactlyOnce(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3)
	// Every node's handler (user hotswap-handler when the tests run as
	// root) appends to one file.
	tickDir := t.TempDir()
	shareTempDir(t, tickDir)
	if err := os.Chmod(tickDir, 0o777); err != nil {
		t.Fatal(err)
	}
	tickFile := filepath.Join(tickDir, "ticks")
	a := c.nodes[0].api()
	a.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "clock"}, nil)
	a.setSettings("clock", "production", false, "TICK_FILE", tickFile)
	a.deploy("clock", "production", zipDir(t, clusterTimerPackage(t)))
	// Every node runs the timer from the deploy's answer on; leave a
	// margin for the first occurrences.
	from := time.Now().Add(3 * time.Second).Truncate(time.Second)

	time.Sleep(60 * time.Second)
	recs := readTicks(t, c, tickFile)
	if len(recs) == 0 {
		t.Fatalf("the timer did not run in 60s")
	}
	last := recs[len(recs)-1]
	var victim *node
	for _, nd := range c.nodes {
		if nd.name == last.node {
			victim = nd
		}
	}
	if victim == nil {
		t.Fatalf("the last run (%+v) was made by no node of the cluster", last)
	}
	victim.kill()
	killed := time.Now()
	t.Logf("killed %s, which ran the occurrence at %s, at %s", victim.name, last.occurrence.UTC().Format("15:04:05"), killed.UTC().Format("15:04:05.000"))

	time.Sleep(60 * time.Second)
	to := time.Now().Add(-3 * time.Second).Truncate(time.Second)
	recs = readTicks(t, c, tickFile)

	runs := map[int64][]tickRecord{} // by occurrence, Unix seconds
	perNode := map[string]int{}
	var problems []string
	for _, r := range recs {
		runs[r.occurrence.Unix()] = append(runs[r.occurrence.Unix()], r)
		perNode[r.node]++
		if r.PastDue {
			// An occurrence the killed node claimed and did not finish,
			// taken over by another once the claimer went silent.
			t.Logf("occurrence %s ran late, past due, on %s at %s", r.occurrence.UTC().Format("15:04:05"), r.node, r.Received)
		}
	}
	describe := func(rs []tickRecord) string {
		var s []string
		for _, r := range rs {
			s = append(s, fmt.Sprintf("%s at %s (next %s, last %s, past due %v)", r.node, r.Received, r.Next, r.Last, r.PastDue))
		}
		return strings.Join(s, "; ")
	}
	for at, rs := range runs {
		if len(rs) > 1 {
			problems = append(problems, fmt.Sprintf("occurrence %s ran %d times: %s", time.Unix(at, 0).UTC().Format("15:04:05"), len(rs), describe(rs)))
		}
	}
	afterKill := 0
	for at := from; !at.After(to); at = at.Add(time.Second) {
		sec := at.Unix()
		if len(runs[sec]) == 0 {
			problems = append(problems, fmt.Sprintf("occurrence %s never ran (runs of the one before: %s | of the one after: %s)", at.UTC().Format("15:04:05"), describe(runs[sec-1]), describe(runs[sec+1])))
		}
		if at.After(killed.Add(time.Second)) {
			for _, r := range runs[sec] {
				if r.node == victim.name {
					problems = append(problems, fmt.Sprintf("occurrence %s ran on %s, killed at %s", at.UTC().Format("15:04:05"), victim.name, killed.UTC().Format("15:04:05.000")))
				}
			}
			afterKill += len(runs[sec])
		}
	}
	sort.Strings(problems)
	t.Logf("%d runs from %s to %s (UTC), by node: %v", len(recs), from.UTC().Format("15:04:05"), to.UTC().Format("15:04:05"), perNode)
	if afterKill == 0 {
		t.Errorf("no node ran the timer after %s was killed", victim.name)
	}
	if len(problems) > 0 {
		t.Errorf("the one-second timer did not run exactly once per occurrence (%d problems):\n%s", len(problems), strings.Join(problems, "\n"))
	}
}

// clusterPipeline is a release pipeline with an approval before the swap
// into production.
const clusterPipeline = `name: orders-release
artifact: {feed: orders}
stages:
  - name: staging
    deploy: {app: orders, slot: staging}
    checks:
      - http: {path: /api/whoami, expect: [200]}
        retries: 0
  - name: production
    after: [staging]
    approval: {approvers: [qa-lead], required: 1}
    swap: {app: orders, slot: staging, target: production}
`

// waitClusterRelease polls a release through one node until cond holds,
// for a minute at most (a change of leader takes a few seconds).
func waitClusterRelease(nd *node, s *server, id, what string, cond func(releaseJSON) bool) releaseJSON {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := s.release(id)
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("release %s through node %s: not %s after a minute: state %s %s\n%s", r.Name, nd.name, what, r.State, r.Detail, r.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// releaseLeader returns the node that runs the cluster's releases, as its
// log says, waiting 30s at most for one to take the lead.
func releaseLeader(c *cluster) *node {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var leaders []*node
		for _, nd := range c.nodes {
			if strings.Contains(nd.logTail(1000), "this node runs the releases now") {
				leaders = append(leaders, nd)
			}
		}
		switch {
		case len(leaders) == 1:
			return leaders[0]
		case len(leaders) > 1:
			c.t.Fatalf("%d nodes say they run the releases, want one", len(leaders))
		case time.Now().After(deadline):
			c.t.Fatalf("no node says it runs the releases after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterReleaseSurvivesNodeLoss creates a release through the node
// that runs the releases, SIGKILLs that node while the release waits for
// approval, approves through another node, and the release completes:
// production serves the artifact on every live node.
func TestClusterReleaseSurvivesNodeLoss(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 3, "--release-tick", "100ms")
	na := releaseLeader(c)
	var others []*node
	for _, nd := range c.nodes {
		if nd != na {
			others = append(others, nd)
		}
	}
	nb, nc := others[0], others[1]
	a := na.api()
	a.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "orders"}, nil)
	a.must(http.StatusCreated, "POST", "/api/v1/apps/orders/slots", map[string]string{"name": "staging"}, nil)
	pkg := zipDir(t, examplePackage(t, "envapp"))
	prod0 := a.deploy("orders", "production", pkg)
	ciToken, qaToken := a.createUser("ci", "deployer"), a.createUser("qa-lead", "approver")
	a.must(http.StatusCreated, "POST", "/api/v1/pipelines", []byte(clusterPipeline), nil)

	ci := a.as(ciToken)
	ci.must(http.StatusCreated, "POST", "/api/v1/feeds/orders/artifacts?version=1.0.0&branch=main&commit=c0ffee", pkg, nil)
	var created releaseJSON
	ci.must(http.StatusCreated, "POST", "/api/v1/releases", map[string]string{"pipeline": "orders-release", "version": "1.0.0"}, &created)
	r := waitClusterRelease(na, a, created.ID, "waiting for approval", stageIs("production", "waiting for approval"))
	_, _, staged := r.stage("staging")
	if staged == "" || staged == prod0 {
		t.Fatalf("release %s staged deployment %q (production has %s)\n%s", r.Name, staged, prod0, r.log())
	}
	for _, nd := range c.nodes {
		nd.serves("orders-staging.localhost", staged, "the staging stage of "+r.Name)
		nd.serves("orders.localhost", prod0, "the staging stage of "+r.Name)
	}

	na.kill()
	qa := nb.api().as(qaToken)
	start := time.Now()
	qa.must(http.StatusOK, "POST", "/api/v1/releases/"+created.ID+"/approve", map[string]string{"stage": "production", "comment": na.name + " is gone"}, nil)
	t.Logf("approval through %s with %s, which ran the releases, dead answered in %s", nb.name, na.name, time.Since(start).Round(time.Millisecond))
	r = waitClusterRelease(nb, nb.api(), created.ID, "succeeded", releaseIs("succeeded"))
	for _, nd := range []*node{nb, nc} {
		nd.serves("orders.localhost", staged, r.Name+" completed")
		nd.serves("orders-staging.localhost", prod0, r.Name+" completed")
	}
	if got := nc.api().release(created.ID).State; got != "succeeded" {
		t.Errorf("release %s through %s is %s, want succeeded", r.Name, nc.name, got)
	}
}

// TestClusterProgressiveSwapReadsEveryNode: on two nodes, production's
// requests go to the node that does not run the rollouts only; the leader's
// analysis still sees the new build's 5% 500s there (the nodes share their
// request counts through the store) and rolls it back, and both nodes then
// route everything to production.
func TestClusterProgressiveSwapReadsEveryNode(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2)
	leader := releaseLeader(c)
	other := c.nodes[0]
	if other == leader {
		other = c.nodes[1]
	}
	a := leader.api()
	a.must(http.StatusCreated, "POST", "/api/v1/apps", map[string]string{"name": "shop"}, nil)
	a.must(http.StatusCreated, "POST", "/api/v1/apps/shop/slots", map[string]string{"name": "staging"}, nil)
	prod := a.deploy("shop", hotswap.ProductionSlot, zipDir(t, examplePackage(t, "envapp")))
	bad := copyPackage(t, "envapp")
	if err := os.WriteFile(filepath.Join(bad, "fail-every"), []byte("20\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	staging := a.deploy("shop", "staging", zipDir(t, bad))
	l := startSteadyLoad(t, other.fnAddr, "shop.localhost", 6)
	defer l.end()

	var ro hotswap.Rollout
	other.api().must(http.StatusCreated, "POST", "/api/v1/apps/shop/rollouts", map[string]any{
		"slot": "staging", "strategy": "canary:20", "step": "2m", "analysis": "maxErrorRate=1%,minRequests=100",
	}, &ro)
	end := a.waitRollout("shop", ro.ID, 90*time.Second)
	if end.State != hotswap.RolloutFailed || !strings.Contains(end.Reason, "over maxErrorRate 1%") {
		t.Fatalf("rollout %s (%s): want failed on the error rate the other node saw", end.State, end.Reason)
	}
	t.Logf("failed after %v: %s", end.Updated.Sub(end.Created).Round(time.Millisecond), end.Reason)
	for _, nd := range c.nodes {
		nd.serves("shop.localhost", prod, "the rollback")
		nd.serves("shop-staging.localhost", staging, "the rollback")
	}
}
