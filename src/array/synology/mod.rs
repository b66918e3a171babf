//! Synology DSM WebAPI client (issue #3 fills it in).
