//! Cross-service tests live in `tests/tests/`; they drive the `redress` binary and the client SDK.
