//! End-to-end tests: the real baton binary on real git repositories in temp dirs.

mod plan;
mod store;
mod support;
