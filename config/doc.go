// Package config holds the one configuration of Sésame: Default() runs with
// no file at all; Load applies a YAML file, then SESAME_<SECTION>_<KEY>
// environment variables, then SESAME_…_FILE for secrets; Validate reports
// every problem at once, each naming its key.
//
// It knows nothing of the rest of the project: constructors receive the
// sub-structs they need.
package config
