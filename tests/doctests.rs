//! The crate's doc examples (and the README's), run under the leak guard.
//!
//! nextest does not run doctests, and a doctest cannot hold a [`Guard`] of
//! its own: it runs in a process of rustdoc's harness. So this test runs
//! `cargo test --doc` as its child. The test process is a child subreaper:
//! anything an example left behind, a child it never reaped (a zombie of
//! the harness, handed to us when the harness exits) or a descendant still
//! running, is re-parented to this process, and the Guard fails the test on
//! it, naming the process. Descriptors are not checked here (they die with
//! the harness process).
//!
//! Run with the `tokio` feature only, with every feature, so that the async
//! examples are included; the run without features has the sync examples
//! in the same crate, already covered here.
#![cfg(feature = "tokio")]

mod support;
use support::*;

use std::process::{Command as StdCommand, Stdio as StdStdio};

#[test]
fn doc_examples_pass_and_leave_nothing_behind() {
    let _g = Guard::new();
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<this test> -> target
    let target_dir = exe
        .ancestors()
        .nth(3)
        .expect("the target directory")
        .to_path_buf();
    let out = StdCommand::new(env!("CARGO"))
        .args(["test", "--doc", "--all-features", "--package", "procession"])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(StdStdio::null())
        .output()
        .expect("run cargo test --doc");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "doctests failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // They really ran: the summary line counts them.
    let passed: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(" ").next()?.parse::<usize>().ok())
        .sum();
    assert!(passed >= 100, "only {passed} doctests ran:\n{stdout}");
}
