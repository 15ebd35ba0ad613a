//! The integration tests, as one test binary: the library and the test
//! dependencies are linked once instead of once per file. Each module was a
//! test binary of its own; they now run as threads of one process, so
//! nothing here may rely on being alone in it (see `support`).

mod support;

mod admin;
mod client_cli;
mod client_tls;
mod cloud_client;
mod cloud_credentials;
mod cloud_sign;
mod cloud_tracing;
mod emulator_faults;
mod emulator_quotas;
mod emulator_state;
mod emulator_vectors;
mod emulator_wire;
mod end_to_end;
mod fidelity;
mod fleet;
mod foundation;
mod observability;
mod properties;
mod replicas;
mod security_authz;
mod security_connections;
mod security_limits;
mod security_revocation;
mod security_secrets;
mod security_startup;
mod security_throttle;
mod security_tls;
mod watch_fanout;
