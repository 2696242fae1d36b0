package main

// flowsPart: conntrack events handled against the kernel's own tool on
// the same flood (bench/flowflood), the recorder's CPU per flow, the sealed size of a flow
// record, and the requisition search over a day of flows.
func flowsPart() part {
	return goBenchPart("flows",
		"conntrack flow records and the requisition search (proxy/flows, journal/segment, journal/who)",
		"conntrack -E -e NEW on the same flood (Debian conntrack); gzip of JSON lines; a decode-everything scan",
		[]goBench{
			// The ladder of floods runs once whatever b.N (bench/flowflood):
			// raw-socket senders, the recorder and conntrack -E side by side.
			{Pkg: "./bench/flowflood/", Pattern: "^BenchmarkConntrackFloodSteps$", Benchtime: "1x", Count: 1, ShortBenchtime: "1x", ShortCount: 1,
				ShortEnv: []string{"VIGIE_FLOOD_SHORT=1"}},
			{Pkg: "./proxy/flows/", Pattern: "^BenchmarkRecordFlow$", Benchtime: "1s", Count: 3, ShortBenchtime: "100ms", ShortCount: 1},
			{Pkg: "./journal/segment/", Pattern: "^BenchmarkSealFlows$", Benchtime: "3x", Count: 1, ShortBenchtime: "1x", ShortCount: 1},
			// The 5M-record archive takes minutes to build: no short version.
			{Pkg: "./journal/who/", Pattern: "^Benchmark(Who|BaselineWhoDecodeAll)$", Benchtime: "3x", Count: 1, SkipShort: true},
		},
		[]comparison{
			{Name: "new flows/s handled with nothing lost", Bench: "BenchmarkConntrackFloodSteps", Metric: "recorder-lossless-flows/s", Unit: "flows/s", Better: Higher,
				Peer: "conntrack -E -e NEW", PeerMetric: "conntrack-E-lossless-flows/s", TargetValue: 50000,
				Note: "highest step of the ladder where the listener saw every flow the kernel made (nf_conntrack_count) and its socket never overran"},
			{Name: "flood generator's highest rate (raw UDP sendmmsg senders)", Bench: "BenchmarkConntrackFloodSteps", Metric: "generator-max-flows/s", Unit: "flows/s", Better: Higher,
				Note: "new flows made by the gateway's kernel per second; a rate the listeners cannot be shown above"},
			{Name: "share of the flows seen at the ladder's fastest step", Bench: "BenchmarkConntrackFloodSteps", Metric: "top-step-recorder-seen-share", Unit: "", Better: Higher,
				Peer: "conntrack -E -e NEW", PeerMetric: "top-step-conntrack-E-seen-share", TargetValue: 1,
				Note: "what each listener saw of the flows the kernel made when the senders went fastest"},
			{Name: "recorder CPU at 1,000 flows/s, flood (NEW event, destroy, record)", Bench: "BenchmarkConntrackFloodSteps", Metric: "recorder-cpu-ms-per-s-per-1k-flows", Unit: "ms/s", Better: Lower,
				Peer: "conntrack -E printing the NEW events", PeerMetric: "conntrack-E-cpu-ms-per-s-per-1k-flows",
				Note: "process CPU per flow at the recorder's fastest lossless step, the same flood for both; conntrack -E does only the NEW half"},
			{Name: "kernel's path at 1,000 flows/s (forward, conntrack, NAT, events)", Bench: "BenchmarkConntrackFloodSteps", Metric: "kernel-path-cpu-ms-per-s-per-1k-flows", Unit: "ms/s", Better: Lower,
				Note: "the senders' CPU, in whose context the gateway's whole path runs"},
			{Name: "recorder CPU at 1,000 flows/s", Bench: "BenchmarkRecordFlow", Metric: "cpu-ms-per-s-per-1k-flows", Unit: "ms/s", Better: Lower},
			{Name: "sealed bytes per flow record", Bench: "BenchmarkSealFlows/vigie", Metric: "sealed-bytes/record", Unit: "B/record", Better: Lower,
				Peer: "gzip of JSON lines", PeerBench: "BenchmarkSealFlows/baseline-gzip-json", TargetValue: 40},
			{Name: "logs who over 5M flow records", Bench: "BenchmarkWho", Metric: "s/query", Unit: "s", Better: Lower,
				Peer: "decode-everything scan", PeerBench: "BenchmarkBaselineWhoDecodeAll", TargetValue: 1},
		})
}
