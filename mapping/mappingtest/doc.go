// Package mappingtest is the conformance suite that every mapping.Store must pass, run
// by package mapping's tests against Memory and Postgres. It knows the Store interface and
// the behaviour DESIGN.md and SECURITY.md ask of it; it must not know how a store keeps
// its data.
package mappingtest
