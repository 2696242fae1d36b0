package policy

import "errors"

// Problems lists the problems a validation error holds, one string each,
// in order. Validate joins its problems (errors.Join), and a caller may
// wrap that join once more to name what it validated ("firewall: school
// 0671234X: ..."); each problem already names its place in the policy
// ("schools[1].zones[0].profile: ..."), so the wrapping is dropped rather
// than repeated on every line. The API, the publisher and the UI all list
// a policy's problems through this one function.
func Problems(err error) []string {
	var out []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if u := errors.Unwrap(err); u != nil {
			if _, ok := u.(interface{ Unwrap() []error }); ok {
				walk(u)
				return
			}
		}
		out = append(out, err.Error())
	}
	if err != nil {
		walk(err)
	}
	return out
}
