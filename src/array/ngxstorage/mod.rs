//! NGXStorage REST API v2 client (issue #4 fills it in).
