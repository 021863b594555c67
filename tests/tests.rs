//! The one integration-test binary (it links burn once): runs the real `zoo` executable.

mod bad_input;
mod cli;
mod cyclegan;
mod eval;
mod export;
mod fuzz;
mod hardening;
mod pix2pix;
mod util;
mod watch;
