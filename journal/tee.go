package journal

// Tee is a Sink that appends every record to each of its sinks in turn
// (the edge's durable journal and a test's or the demo's Memory).
type Tee []Sink

// Append appends r to every sink.
func (t Tee) Append(r *Record) {
	for _, s := range t {
		s.Append(r)
	}
}
