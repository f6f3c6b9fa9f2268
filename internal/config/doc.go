// Package config owns evidenced's configuration file: its YAML key names (a
// contract with operators and with the example in configs/), its defaults,
// and the rules a configuration must satisfy before the daemon or any command
// acts on it.
//
// Loading is defaults → strict decode → resolve paths → Validate. Invariants
// of a *Config returned by Load or Parse:
//
//   - Every key in the file was known: a typo fails at start-up instead of
//     silently leaving a default in force. The decode is go.yaml.in/yaml/v3
//     with KnownFields(true); a pre-pass over the YAML node tree exists only
//     to name the key path ("cameras[3].serial") and line in errors.
//   - Every path (state_dir, sources.watch, control_socket) is absolute and
//     clean. A relative path in the file is taken relative to the directory
//     holding the config file, never to the process's working directory, so
//     a config means the same thing whoever starts the daemon and from where.
//     Parse resolves against the directory of its name argument (the current
//     directory when name has no directory part).
//   - Validate passed, so e.g. Retention.DefaultClass names a class, serials
//     are unique and usable as folder names, and ObjectStore, when non-nil,
//     is complete.
//
// Every error from Load, Parse and Validate wraps ErrInvalid, so the CLI can
// map all of them to one exit code. Validation problems are *FieldError
// values (joined with errors.Join when there are several), each naming the
// file, line and key.
//
// Credentials are never part of the configuration: there are no keys for
// them, and keys that look like credentials are refused with a pointer to the
// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, …), which the SDK's
// default chain reads.
package config
