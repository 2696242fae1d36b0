package policy

// ValidID reports whether s is a valid identifier (lists, profiles,
// categories, zones), for callers that check one before building a policy.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// ValidUAI reports whether s is a UAI (7 digits and a capital letter).
func ValidUAI(s string) bool { return uaiPattern.MatchString(s) }
