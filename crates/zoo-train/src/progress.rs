//! Progress bars for the commands that take more than a few seconds (training, classifier
//! training, evaluation, downloads, translation of large folders). The CLI turns them on once
//! ([`enable`]: not `--quiet`, and stderr is a terminal); off, every bar is hidden, so logs and
//! tests see only the log lines.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use indicatif::ProgressBar;
use indicatif::{MultiProgress, ProgressStyle};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Every drawn bar belongs to one set, so that a bar started while another runs (the
/// classifier's training inside an evaluation) is drawn below it instead of over it.
static BARS: LazyLock<MultiProgress> = LazyLock::new(MultiProgress::new);

/// Turns progress bars on or off for the whole process.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether bars are drawn.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A bar over `len` units of work, labelled `what` (hidden when bars are off).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    bar_if(enabled(), len, what)
}

/// [`bar`], drawn only if `on`.
pub fn bar_if(on: bool, len: u64, what: &str) -> ProgressBar {
    let bar = if on {
        BARS.add(ProgressBar::new(len))
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

/// A bar over `len` bytes (a download), labelled `what`.
pub fn bytes_bar(len: u64, what: &str) -> ProgressBar {
    let bar = bar(len, what);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{elapsed_precise}] {bar:30} {bytes}/{total_bytes} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar
}

/// A spinner for work of unknown length (a download, an evaluation's phases); `set_message`
/// says what it is doing. It is cleared when dropped, also on an early return.
pub fn spinner(what: &str) -> Spinner {
    let bar = if enabled() {
        BARS.add(ProgressBar::new_spinner())
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {msg}")
            .expect("static template"),
    );
    bar.set_prefix(what.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    Spinner(bar)
}

/// A [`spinner`]: derefs to its bar, cleared on drop.
pub struct Spinner(ProgressBar);

impl std::ops::Deref for Spinner {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
