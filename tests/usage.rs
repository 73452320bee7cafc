//! Resource usage on the exit status: CPU time and peak memory as the kernel
//! counted them, for a child that burns a known amount of each.

mod support;
use support::*;

use std::time::Duration;

use procession::{Command, Event, Stdio, Supervisor};

#[test]
fn a_child_that_burns_200_ms_of_cpu_reports_it() {
    let _g = Guard::new();
    let status = pt_cmd(["spin", "200"]).status().unwrap();
    let usage = status.usage().unwrap();
    // pt spun until its own CPU clock (user + system) had run 200 ms more.
    // The kernel splits that total between user and system time by
    // sampling, so under load a spinning loop can show tens of ms of system
    // time (CI saw 179 + 23 ms): the total is exact, the split is not.
    assert!(usage.cpu_time() >= Duration::from_millis(195), "{usage:?}");
    assert!(usage.user_time() >= Duration::from_millis(100), "{usage:?}");
    assert!(usage.cpu_time() < Duration::from_millis(600), "{usage:?}");
    assert_eq!(usage.cpu_time(), usage.user_time() + usage.system_time());
    // A child that sleeps as long uses next to nothing.
    let usage = Command::new("sleep")
        .arg("0.2")
        .status()
        .unwrap()
        .usage()
        .unwrap();
    assert!(usage.cpu_time() < Duration::from_millis(50), "{usage:?}");
}

#[test]
fn peak_memory_is_reported_in_bytes() {
    let _g = Guard::new();
    let big = pt_cmd(["touch-mib", "64"])
        .status()
        .unwrap()
        .usage()
        .unwrap();
    assert!(big.max_rss() >= 64 << 20, "{big:?}");
    assert!(big.max_rss() < 128 << 20, "{big:?}");
    let small = pt_cmd(["touch-mib", "1"])
        .status()
        .unwrap()
        .usage()
        .unwrap();
    assert!(small.max_rss() < 32 << 20, "{small:?}");
    assert!(small.max_rss() >= 1 << 20, "{small:?}");
}

#[test]
fn every_way_of_waiting_reports_the_usage() {
    let _g = Guard::new();
    let spin = || pt_cmd(["spin", "50"]);
    let at_least = Duration::from_millis(45);
    let mut child = spin().spawn().unwrap();
    assert!(child.wait().unwrap().usage().unwrap().cpu_time() >= at_least);
    let out = spin().output().unwrap();
    assert!(out.status.usage().unwrap().cpu_time() >= at_least);
    let mut child = spin().spawn().unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
    assert!(status.usage().unwrap().cpu_time() >= at_least);
    let last = spin().events().unwrap().last().unwrap().unwrap();
    let Event::Exit(status) = last else {
        panic!("{last:?}")
    };
    assert!(status.usage().unwrap().cpu_time() >= at_least);
}

#[test]
fn a_supervised_childs_exit_carries_its_usage() {
    let _g = Guard::new();
    let sup = Supervisor::new();
    let spin = sup
        .spawn(pt_cmd(["spin", "200"]).stdin(Stdio::null()))
        .unwrap();
    let touch = sup
        .spawn(pt_cmd(["touch-mib", "64"]).stdin(Stdio::null()))
        .unwrap();
    let monitor = spin.monitor();
    let exit = spin.wait().unwrap();
    let usage = exit.status().unwrap().usage().unwrap();
    // As for a Child: the total CPU time is exact, the user/system split is not.
    assert!(usage.cpu_time() >= Duration::from_millis(195), "{usage:?}");
    assert!(usage.cpu_time() < Duration::from_millis(600), "{usage:?}");
    // A monitor gets the same status, usage included.
    assert_eq!(monitor.recv(), exit);
    let big = touch.wait().unwrap().status().unwrap().usage().unwrap();
    assert!(big.max_rss() >= 64 << 20, "{big:?}");
    assert!(big.max_rss() < 128 << 20, "{big:?}");
}
