package main

import (
	"testing"
	"time"

	cpbench "vigie/bench/controlplane"
)

func TestPropagationPGFigures(t *testing.T) {
	pg := &cpbench.Result{Edges: 10000, Backend: "postgres",
		Delta: cpbench.Mode{Edges: 10000, AppliedP50: 2 * time.Second, AppliedP100: 6 * time.Second, CPUFanout: 4 * time.Second, CPUEdges: 8 * time.Second},
		Replicas: []cpbench.ReplicaMemory{{Edges: 5000, RSSBefore: 50 << 20, RSSParked: 50<<20 + 5000*40<<10},
			{Edges: 5000, RSSBefore: 40 << 20, RSSParked: 40<<20 + 5000*20<<10}}}
	sq := &cpbench.Result{Edges: 1000, Backend: "sqlite",
		Delta:    cpbench.Mode{Edges: 1000, AppliedP50: time.Second / 2, AppliedP100: 3 * time.Second / 2, CPUFanout: time.Second / 10},
		Replicas: []cpbench.ReplicaMemory{{Edges: 1000, RSSBefore: 50 << 20, RSSParked: 50<<20 + 1000*30<<10}}}
	figs := propagationPGFigures(pg, sq)
	byName := map[string]Figure{}
	for _, f := range figs {
		f.finish()
		byName[f.Name] = f
	}
	p100, ok := byName["publish → applied on all 10000 edges, 2 replicas on PostgreSQL (p100)"]
	if !ok {
		t.Fatalf("no p100 figure in %+v", figs)
	}
	if p100.Value != 6 || p100.PeerValue != 1.5 || p100.Ratio != 4 || p100.Met == nil || *p100.Met {
		t.Fatalf("p100 figure %+v: want 6 s against 1.5 s, ratio 4, target 5 s missed", p100)
	}
	mem := byName["replicas' resident memory per parked edge"]
	if mem.Value != 30<<10 || mem.PeerValue != 30<<10 {
		t.Fatalf("memory per edge %v against %v, want 30 KiB for both", mem.Value, mem.PeerValue)
	}
	cpu := byName["control plane CPU per edge to fan a publication out"]
	if cpu.Value != 0.4 || cpu.PeerValue != 0.1 || cpu.Unit != "ms" {
		t.Fatalf("CPU per edge %v %s against %v, want 0.4 ms against 0.1", cpu.Value, cpu.Unit, cpu.PeerValue)
	}
}
