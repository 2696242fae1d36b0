// Package killtest holds the kill -9 test of the edge's journal: a real
// `vigie edge` process under mixed DNS and HTTP load, killed and
// restarted again and again, then its journal checked against what the
// clients received. It has no code outside its test.
package killtest
