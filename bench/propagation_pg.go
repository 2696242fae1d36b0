package main

import (
	"context"
	"fmt"
	"io"
	"time"

	cpbench "vigie/bench/controlplane"
)

// propagationPGPart runs bench/controlplane on PostgreSQL (issue 15): a
// throwaway cluster, two control-plane processes sharing it, 10,000
// simulated edges parked on long-polls spread over both, one-domain
// publications through the first; against, in the same run, the
// SQLite control plane alone with 1,000 edges (the propagation part's
// set-up, whole-bundle baseline left out).
func propagationPGPart() part {
	return part{Name: "propagation-pg",
		About: "publish a one-domain change to 10,000 edges over two control-plane replicas on PostgreSQL (bench/controlplane -postgres)",
		Peers: "one control plane on SQLite with 1,000 edges, same run",
		Run: func(ctx context.Context, opt options, log io.Writer) (partOutput, error) {
			var out partOutput
			sq := cpbench.Options{Root: opt.Root, Log: log, Edges: 1000, Rounds: 3, SkipBaseline: true}
			pg := cpbench.Options{Root: opt.Root, Log: log, Edges: 10000, Rounds: 3, SkipBaseline: true, Postgres: true, Replicas: 2}
			if opt.Short {
				sq.Edges, sq.Rounds = 200, 1
				pg.Edges, pg.Rounds = 2000, 1
			}
			out.Commands = append(out.Commands,
				fmt.Sprintf("go run ./bench/controlplane/cmd -edges %d -rounds %d -skip-baseline", sq.Edges, sq.Rounds),
				fmt.Sprintf("go run ./bench/controlplane/cmd -edges %d -rounds %d -skip-baseline -postgres -replicas %d", pg.Edges, pg.Rounds, pg.Replicas))
			base, err := cpbench.Run(ctx, sq)
			if err != nil {
				return out, fmt.Errorf("sqlite baseline: %w", err)
			}
			res, err := cpbench.Run(ctx, pg)
			if res == nil {
				return out, err
			}
			out.Figures = propagationPGFigures(res, base)
			out.Notes = append(out.Notes,
				fmt.Sprintf("PostgreSQL: %d edges over %d replicas, load %s → %s; SQLite: %d edges, load %s → %s",
					res.Edges, len(res.Replicas), res.LoadBefore, res.LoadAfter, base.Edges, base.LoadBefore, base.LoadAfter),
				"the simulated edges (agents verifying every answer) run in the benchmark's process on the same two cores as the replicas and PostgreSQL: on a real deployment each edge pays its share on its own CPU")
			for i, m := range res.Replicas {
				out.Notes = append(out.Notes, fmt.Sprintf("replica %d: %d edges, resident %s before them, %s with them parked",
					i+1, m.Edges, humanBytes(float64(m.RSSBefore)), humanBytes(float64(m.RSSParked))))
			}
			return out, err
		}}
}

func propagationPGFigures(r, base *cpbench.Result) []Figure {
	src := "bench/controlplane -postgres"
	secs := func(d time.Duration) float64 { return d.Seconds() }
	d, b := r.Delta, base.Delta
	perEdge := func(d time.Duration, n int) float64 { return float64(d) / 1e6 / float64(max(1, n)) }
	sqlite := fmt.Sprintf("SQLite, one process, %d edges", b.Edges)
	return []Figure{
		{Name: fmt.Sprintf("publish → applied on all %d edges, %d replicas on PostgreSQL (p100)", d.Edges, len(r.Replicas)),
			Value: secs(d.AppliedP100), Unit: "s", Better: Lower, Peer: sqlite, PeerValue: secs(b.AppliedP100), TargetValue: 5, Source: src},
		{Name: "publish → applied, p50, PostgreSQL replicas", Value: secs(d.AppliedP50), Unit: "s", Better: Lower,
			Peer: sqlite, PeerValue: secs(b.AppliedP50), Source: src},
		{Name: "replicas' resident memory per parked edge", Value: r.BytesPerEdge(), Unit: "B", Better: Lower,
			Peer: sqlite, PeerValue: base.BytesPerEdge(), Source: src,
			Note: "growth of the processes' RSS from before the edges arrived to all parked, over the edges"},
		{Name: "control plane CPU per edge to fan a publication out", Value: perEdge(d.CPUFanout, d.Edges), Unit: "ms", Better: Lower,
			Peer: sqlite, PeerValue: perEdge(b.CPUFanout, b.Edges), Source: src, Note: "all replicas' CPU, per edge reached"},
		{Name: "simulated edges' CPU per edge and publication (the harness)", Value: perEdge(d.CPUEdges, d.Edges), Unit: "ms", Better: Lower,
			Peer: sqlite, PeerValue: perEdge(b.CPUEdges, b.Edges), Source: src,
			Note: "this process's CPU during the fan-out: on the same cores as the replicas"},
	}
}
