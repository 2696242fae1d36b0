package main

// flowsPart: conntrack events handled against the kernel's own tool on
// the same flood, the recorder's CPU per flow, the sealed size of a flow
// record, and the requisition search over a day of flows.
func flowsPart() part {
	return goBenchPart("flows",
		"conntrack flow records and the requisition search (proxy/flows, journal/segment, journal/who)",
		"conntrack -E -e NEW on the same flood (Debian conntrack); gzip of JSON lines; a decode-everything scan",
		[]goBench{
			{Pkg: "./proxy/flows/", Pattern: "^BenchmarkConntrackFlood$", Benchtime: "50000x", Count: 3, ShortBenchtime: "5000x", ShortCount: 1},
			{Pkg: "./proxy/flows/", Pattern: "^BenchmarkRecordFlow$", Benchtime: "1s", Count: 3, ShortBenchtime: "100ms", ShortCount: 1},
			{Pkg: "./journal/segment/", Pattern: "^BenchmarkSealFlows$", Benchtime: "3x", Count: 1, ShortBenchtime: "1x", ShortCount: 1},
			// The 5M-record archive takes minutes to build: no short version.
			{Pkg: "./journal/who/", Pattern: "^Benchmark(Who|BaselineWhoDecodeAll)$", Benchtime: "3x", Count: 1, SkipShort: true},
		},
		[]comparison{
			{Name: "new flows/s generated and handled", Bench: "BenchmarkConntrackFlood", Metric: "new-flows/s", Unit: "flows/s", Better: Higher, TargetValue: 50000,
				Note: "the generator (one Go loop in a namespace) sets the pace on a shared machine"},
			{Name: "share of the flood's flows the recorder saw", Bench: "BenchmarkConntrackFlood", Metric: "recorder-seen-ratio", Unit: "", Better: Higher,
				Peer: "conntrack -E", PeerMetric: "conntrack-E-seen-ratio", TargetValue: 1},
			{Name: "recorder CPU at 1,000 flows/s", Bench: "BenchmarkRecordFlow", Metric: "cpu-ms-per-s-per-1k-flows", Unit: "ms/s", Better: Lower},
			{Name: "sealed bytes per flow record", Bench: "BenchmarkSealFlows/vigie", Metric: "sealed-bytes/record", Unit: "B/record", Better: Lower,
				Peer: "gzip of JSON lines", PeerBench: "BenchmarkSealFlows/baseline-gzip-json", TargetValue: 40},
			{Name: "logs who over 5M flow records", Bench: "BenchmarkWho", Metric: "s/query", Unit: "s", Better: Lower,
				Peer: "decode-everything scan", PeerBench: "BenchmarkBaselineWhoDecodeAll", TargetValue: 1},
		})
}
