package journal

import "time"

// MaxRetention is the longest any copy of the journal is kept: one year,
// the retention décret 2021-1362 sets for connection data. Browsing data
// may be kept less (the CNIL and académie charters often say 6 months),
// never more; a legal hold is the only way past it.
const MaxRetention = 365 * 24 * time.Hour

// Default retentions per stream.
const (
	DefaultConnexionsRetention = MaxRetention
	DefaultNavigationRetention = 183 * 24 * time.Hour // six months
)
